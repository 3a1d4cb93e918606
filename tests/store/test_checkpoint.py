"""Checkpoints that no longer restore, made from a real tiny run's: reading a
trained run names the damaged step and moves nothing; resuming training
falls back to the newest step that restores, moving each newer one aside
(never deleting it); if none restores, the error names each step and why."""

import logging
import os
import re
import shutil

import jax
import pytest

import checkpoint_damage
import run_results
import tiny_configs
from rsjax.store import checkpoint
from rsjax.systems import trained
from rsjax.train import trainer

# A failed Orbax restore leaves the coroutines of its other array reads never
# awaited; Python reports each when it is collected.
pytestmark = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning")

@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, devices):
  """A workdir with checkpoints 1, 2 and 3 of the tiny pix2pix run."""
  del devices
  workdir = str(tmp_path_factory.mktemp("trained"))
  trainer.train_and_evaluate(tiny_configs.memory_config(steps=3), workdir)
  return workdir


@pytest.fixture
def workdir(trained_run, tmp_path):
  """A copy of `trained_run` to damage."""
  copy = str(tmp_path / "run")
  shutil.copytree(trained_run, copy)
  return copy


def _target(workdir):
  """(abstract State, shardings) to restore the run onto."""
  run = trained.load_run(workdir, step=1)
  return (jax.eval_shape(lambda: run.state),
          jax.tree.map(lambda x: x.sharding, run.state))


def _steps(workdir):
  return sorted(os.listdir(os.path.join(workdir, "checkpoints")))


def _restore_latest(workdir):
  manager = checkpoint.make_manager(workdir, keep=10, interval=1)
  try:
    return manager, checkpoint.restore_latest(manager, *_target(workdir))
  finally:
    manager.close()


@pytest.mark.parametrize("damage", sorted(checkpoint_damage.DAMAGES))
def test_a_damaged_newest_step_is_named_then_moved_aside_on_resume(
    trained_run, workdir, damage, caplog):
  checkpoint_damage.damage(workdir, 3, damage)
  held = run_results.files(os.path.join(workdir, "checkpoints", "3"))

  # Reading the trained run names the step and changes nothing.
  with pytest.raises(checkpoint.RestoreError,
                     match=r"the checkpoint of step 3 \(.*checkpoints/3\) "
                     r"does not restore: \w+: .*; the workdir has steps "
                     r"\[1, 2, 3\]"):
    trained.load_run(workdir)
  assert _steps(workdir) == ["1", "2", "3"]
  assert not os.path.exists(os.path.join(workdir, "checkpoints_damaged"))

  # Resuming restores step 2 and moves step 3 aside, whole.
  with caplog.at_level(logging.WARNING):
    manager, (state, step) = _restore_latest(workdir)
  assert step == 2
  run_results.assert_states_equal(
      state, trained.load_run(trained_run, step=2).state)
  assert _steps(workdir) == ["1", "2"]
  assert manager.all_steps() == [1, 2]   # the manager forgot step 3 too
  [aside] = os.listdir(os.path.join(workdir, "checkpoints_damaged"))
  assert re.fullmatch(r"3-\d{8}T\d{6}Z", aside)
  moved = os.path.join(workdir, "checkpoints_damaged", aside)
  assert run_results.files(moved) == held
  assert re.search(
      r"checkpoint of step 3 in .*checkpoints does not restore \(\w+: .+\); "
      rf"moved to {re.escape(moved)}, resuming from step 2", caplog.text)


def test_the_newest_step_that_restores_is_taken_past_several(
    trained_run, workdir):
  checkpoint_damage.damage(workdir, 3, "empty_step_folder")
  checkpoint_damage.damage(workdir, 2, "truncated_array_files")
  _, (state, step) = _restore_latest(workdir)
  assert step == 1
  run_results.assert_states_equal(
      state, trained.load_run(trained_run, step=1).state)
  assert _steps(workdir) == ["1"]
  assert sorted(name.split("-")[0] for name in os.listdir(
      os.path.join(workdir, "checkpoints_damaged"))) == ["2", "3"]


def test_when_no_step_restores_each_is_named_and_none_is_moved(workdir):
  target = _target(workdir)
  checkpoint_damage.damage(workdir, 3, "empty_step_folder")
  checkpoint_damage.damage(workdir, 2, "missing_metadata")
  checkpoint_damage.damage(workdir, 1, "deleted_array_files")
  manager = checkpoint.make_manager(workdir, keep=10, interval=1)
  try:
    with pytest.raises(checkpoint.RestoreError) as failed:
      checkpoint.restore_latest(manager, *target)
  finally:
    manager.close()
  assert re.fullmatch(
      r".*checkpoints: no checkpoint restores; step 3: \w+: .+; "
      r"step 2: \w+: .+; step 1: \w+: .+", str(failed.value))
  assert _steps(workdir) == ["1", "2", "3"]
  assert not os.path.exists(os.path.join(workdir, "checkpoints_damaged"))


def test_a_workdir_without_checkpoints_starts_from_scratch(tmp_path, workdir):
  target = _target(workdir)
  manager = checkpoint.make_manager(tmp_path, keep=10, interval=1)
  try:
    assert checkpoint.restore_latest(manager, *target) == (None, 0)
  finally:
    manager.close()
