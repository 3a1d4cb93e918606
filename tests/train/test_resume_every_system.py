"""Exact resume for every system: N steps straight == a run killed right after
its checkpoint of step k, resumed by a second `train_and_evaluate` on its
workdir for the remaining N - k steps.

The killed run is the straight run's workdir as it was when checkpoint k had
been written (config.json, checkpoints 1..k, the metrics of steps 1..k): what
a SIGKILL then leaves. (SIGTERM and `stop_after`, which save before stopping,
and a new process are exercised for pix2pix in tests/train/test_trainer.py.)
Checkpoint k was saved asynchronously while the straight run went on with
the donated state, so a save that kept references instead of copies would
show here too.

Every part of the State (params, batch_stats, opt_state, ema_params, rng,
step) of checkpoint N and every logged training metric of steps k+1..N must be
bit-identical: both runs execute the same compiled step program (the test
checks the step is traced once per run) on the same devices on the same
inputs (the batch of step s depends only on the data seed and s), so a resumed
run can only differ if something it needs was not restored - optimizer
moments, EMA, a schedule's count, the RNG key, BatchNorm or spectral-norm
statistics, the data position - never by float rounding.
"""

from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
import pytest

import tiny_configs
from rsjax.store import checkpoint as checkpoint_lib
from rsjax.systems import base
from rsjax.systems import trained
from rsjax.systems.csebgan import mask as mask_lib
from rsjax.train import trainer

STEPS, KILLED_AFTER = 4, 2
"""N and k: 24 memory tiles at batch 8 are 3 steps an epoch, so the resumed
run starts inside the first epoch and crosses into the second; cloud removal
trains stage 1 for 3 steps, so its resumed run replays a step of each stage."""

SYSTEMS = {
    "pix2pix_ema": tiny_configs.memory_pix2pix_ema,
    "rs_spade": tiny_configs.memory_rs_spade,
    "unet_seg": tiny_configs.memory_segmentation,
    "fusion_seg": lambda steps, seed: tiny_configs.memory_segmentation(
        steps, seed, fusion="gated"),
    "cloud_removal": tiny_configs.memory_cloud_removal,
    "csebgan": tiny_configs.memory_csebgan,
    "cycle_fusion": tiny_configs.memory_cycle_fusion,
}
SEEDS = range(5)
"""Seeds (model and data) of every system. Each run traces and lowers its
step anew (3 to 15 s of CPU per system and run even with the compilation
cache) and writes Orbax checkpoints, so the 35 cases take about 5 min of
CPU; RS-SPADE and CSEBGAN are most of it."""
CASES = [(name, seed) for name in SYSTEMS for seed in SEEDS]


class _CountTraces:
  """A system whose train_step counts how often it is traced."""

  def __init__(self, system, traces):
    self._system, self._traces = system, traces

  def __getattr__(self, name):
    return getattr(self._system, name)

  def train_step(self, state, batch):
    self._traces.append(1)
    return self._system.train_step(state, batch)


def _config(name, seed):
  config = SYSTEMS[name](STEPS, seed)
  config.checkpoint_every = KILLED_AFTER   # checkpoints k and N only
  return config


def _run(config, workdir, monkeypatch) -> tuple[list[int], int]:
  """Trains to STEPS (without the final evaluation, which changes nothing):
  (the step the run started from, how often its train_step was traced)."""
  started, traces = [], []
  restore_or_init = trainer.Trainer.restore_or_init
  get_system = base.get_system

  def spy(self, example_batch):
    state, step = restore_or_init(self, example_batch)
    started.append(step)
    return state, step

  with monkeypatch.context() as patch:
    patch.setattr(trainer.Trainer, "restore_or_init", spy)
    patch.setattr(base, "get_system",
                  lambda config: _CountTraces(get_system(config), traces))
    trainer.train_and_evaluate(config, workdir, stop_after=STEPS)
  return started, len(traces)


def _kill_after(straight, killed, step):
  """`killed`: the workdir `straight` was when checkpoint `step` was done."""
  os.makedirs(os.path.join(killed, "checkpoints"))
  shutil.copy(os.path.join(straight, "config.json"), killed)
  for saved in range(1, step + 1):
    source = os.path.join(straight, "checkpoints", str(saved))
    if os.path.isdir(source):
      shutil.copytree(source, os.path.join(killed, "checkpoints", str(saved)))
  with open(os.path.join(straight, "metrics.jsonl")) as f, \
       open(os.path.join(killed, "metrics.jsonl"), "w") as out:
    out.writelines(l for l in f if json.loads(l).get("step", 0) <= step)


def _train_metrics(workdir) -> dict[int, dict[str, float]]:
  """{step: {'train/...': value}} of metrics.jsonl, as written."""
  out = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      record = json.loads(line)
      scalars = {k: v for k, v in record.items() if k.startswith("train/")}
      if scalars:
        assert record["step"] not in out, f"step {record['step']} logged twice"
        out[record["step"]] = scalars
  return out


def _newest_states(config, *workdirs):
  """[(step, State on the host)] of the newest checkpoint of each workdir."""
  run = trained.load_run(workdirs[0], config=config)
  shardings = jax.tree.map(lambda x: x.sharding, run.state)
  out = [(run.step, run.state)]
  for workdir in workdirs[1:]:
    state, step = checkpoint_lib.restore(workdir, run.state, shardings)
    out.append((step, state))
  return [(step, jax.tree.map(np.asarray, jax.device_get(state)))
          for step, state in out]


def _checkpoints(workdir) -> list[int]:
  return sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))
                if s.isdigit())


@pytest.mark.parametrize("name,seed", CASES)
def test_resume_is_exact(name, seed, tmp_path, monkeypatch, devices):
  # CSEBGAN checks its labels in the step through a host callback, which
  # keeps XLA's executable out of the persistent cache: every run would
  # compile it again (~20 s). The check only raises on bad labels (none
  # here) and leaves the state alone, so it is off for both runs.
  monkeypatch.setattr(mask_lib.MaskConditioned, "check_labels",
                      lambda self, batch: None)
  straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
  assert _run(_config(name, seed), straight, monkeypatch) == ([0], 1)
  assert _checkpoints(straight) == [KILLED_AFTER, STEPS]

  _kill_after(straight, killed, KILLED_AFTER)
  assert _checkpoints(killed) == [KILLED_AFTER]
  # Resumes from the checkpoint on disk (nothing of the straight run is in
  # memory: train_and_evaluate builds trainer, iterators and state anew), and
  # its first step runs the program of all other steps.
  assert _run(_config(name, seed), killed, monkeypatch) == ([KILLED_AFTER], 1)
  assert _checkpoints(killed) == [KILLED_AFTER, STEPS]

  config = _config(name, seed)
  (step_a, a), (step_b, b) = _newest_states(config, straight, killed)
  assert step_a == step_b == int(a.step) == int(b.step) == STEPS
  assert (a.ema_params is not None) == (name == "pix2pix_ema")
  leaves_a, tree_a = jax.tree_util.tree_flatten_with_path(a)
  leaves_b, tree_b = jax.tree_util.tree_flatten_with_path(b)
  assert tree_a == tree_b
  for (path, x), (_, y) in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))

  metrics_a, metrics_b = _train_metrics(straight), _train_metrics(killed)
  assert sorted(metrics_a) == sorted(metrics_b) == list(range(1, STEPS + 1))
  assert metrics_a == metrics_b
