"""Training resumes past a damaged checkpoint: with the newest checkpoint
damaged in each way a crash or a disk does it (tests/checkpoint_damage.py), a
run resumes from the step before, moves the damaged step aside, and ends
bit-identical (every State leaf, every logged training metric) to a run that
was never interrupted; with no checkpoint that restores it stops naming each
step, and starts nothing anew.

Bit-identical, as in tests/train/test_resume_every_system.py: both runs run
the same compiled step on the same inputs (the batch of step s depends only
on the data seed and s), so any difference is something not restored, or a
data position not rewound to the step that was restored.
"""

import logging
import os
import re
import shutil

import pytest

import checkpoint_damage
import run_results
from rsjax.store import checkpoint
from rsjax.systems import trained
from rsjax.train import trainer
from tiny_configs import memory_config

STEPS, STOPPED_AT = 6, 3

# A failed Orbax restore leaves the coroutines of its other array reads never
# awaited; Python reports each when it is collected.
pytestmark = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, devices):
  """(straight, stopped): the tiny pix2pix run to STEPS uninterrupted, and
  the same run stopped after its checkpoint of step STOPPED_AT."""
  del devices
  straight = str(tmp_path_factory.mktemp("straight"))
  trainer.train_and_evaluate(memory_config(steps=STEPS), straight)
  stopped = str(tmp_path_factory.mktemp("stopped"))
  trainer.train_and_evaluate(memory_config(steps=STEPS), stopped,
                             stop_after=STOPPED_AT)
  return straight, stopped


def _copy(workdir, tmp_path) -> str:
  copy = str(tmp_path / "run")
  shutil.copytree(workdir, copy)
  return copy


def _files_but_events(workdir) -> dict[str, int]:
  """The workdir's files but TensorBoard's events files (its writer opens a
  new one before the run restores)."""
  return {path: size for path, size in run_results.files(workdir).items()
          if not path.startswith("events.out.tfevents.")}


@pytest.mark.parametrize("damage", sorted(checkpoint_damage.DAMAGES))
def test_a_run_resumes_before_a_damaged_step_and_ends_as_if_uninterrupted(
    runs, damage, tmp_path, caplog):
  straight, stopped = runs
  workdir = _copy(stopped, tmp_path)
  checkpoint_damage.damage(workdir, STOPPED_AT, damage)
  with caplog.at_level(logging.INFO):
    trainer.train_and_evaluate(memory_config(steps=STEPS), workdir)
  restored = STOPPED_AT - 1
  assert re.search(
      rf"checkpoint of step {STOPPED_AT} in \S+ does not restore \(\w+: .+\); "
      rf"moved to \S+checkpoints_damaged/{STOPPED_AT}-\S+, resuming from step "
      rf"{restored}", caplog.text)
  assert f"resumed from step {restored} in" in caplog.text
  [aside] = os.listdir(os.path.join(workdir, "checkpoints_damaged"))
  assert aside.startswith(f"{STOPPED_AT}-")
  assert checkpoint.steps(workdir) == list(range(1, STEPS + 1))

  run_results.assert_states_equal(trained.load_run(workdir).state,
                                  trained.load_run(straight).state)
  logged = run_results.train_lines(workdir)
  assert [line["step"] for line in logged] == list(range(1, STEPS + 1))
  assert logged == run_results.train_lines(straight)


def test_a_run_whose_checkpoints_all_fail_stops_naming_each(runs, tmp_path):
  _, stopped = runs
  workdir = _copy(stopped, tmp_path)
  for step, damage in zip(range(1, STOPPED_AT + 1),
                          sorted(checkpoint_damage.DAMAGES)):
    checkpoint_damage.damage(workdir, step, damage)
  before = _files_but_events(workdir)
  with pytest.raises(checkpoint.RestoreError,
                     match=r"no checkpoint restores; step 3: .+; step 2: .+; "
                     r"step 1: .+"):
    trainer.train_and_evaluate(memory_config(steps=STEPS), workdir)
  assert _files_but_events(workdir) == before  # nothing moved or written
