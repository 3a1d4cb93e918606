"""CloudRemoval end to end: the trainer on 8 simulated devices and
rs_multisource/synthetic_tiny, stopped (checkpoint) in the middle of the
sequential schedule, resumed, evaluated; the restored weights still show the
N(0, 0.02) init."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from rsjax.systems import trained as trained_lib
from rsjax.train import trainer
from test_cloud_removal import NETWORKS, tiny_config


@pytest.mark.slow
def test_train_stop_resume_evaluate(tmp_path, synthetic_tiny, devices):
  config = tiny_config(eval_clouds=None)            # synthetic clouds in eval
  config.data.data_dir = synthetic_tiny
  config.data.name = "rs_multisource/synthetic_tiny"
  config.total_steps = 3                            # stage 1: steps 0-1
  config.train_crop = 32                            # of the 64-pixel tiles
  config.stage1_fraction = 2 / 3
  config.eval_every = 1000
  config.checkpoint_every = config.log_every = 1
  config.num_eval_batches = 1
  workdir = str(tmp_path)
  assert trainer.train_and_evaluate(config, workdir, stop_after=2) == {}
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  scores = trainer.train_and_evaluate(config, workdir)       # resumes at 2
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2", "3"]
  for name in ("psnr", "ssim", "psnr_cloudy", "psnr_clear", "stage1_psnr",
               "stage1_ssim"):
    assert np.isfinite(scores[name]), (name, scores)
  assert 0 < scores["cloud_fraction"] < 1
  lines = [json.loads(line) for line in
           (tmp_path / "metrics.jsonl").read_text().splitlines()]
  trained = {l["step"]: l for l in lines if "train/stage1_active" in l}
  assert sorted(trained) == [1, 2, 3]
  assert [trained[s]["train/stage2_active"] for s in (1, 2, 3)] == [0, 0, 1]
  assert any("validation/psnr_cloudy" in l for l in lines)
  assert (tmp_path / "samples" / "step_000003.png").exists()

  # The checkpoint holds both GANs; weights still look like N(0, 0.02).
  run = trained_lib.load_run(workdir)
  state, step = run.state, run.step
  assert step == 3 and set(state.params) == set(NETWORKS)
  kernels = np.concatenate([
      np.asarray(leaf).ravel() for path, leaf in
      jax.tree_util.tree_leaves_with_path(jax.device_get(state.params))
      if "kernel" in jax.tree_util.keystr(path)])
  assert kernels.size > 10_000
  np.testing.assert_allclose(kernels.std(), 0.02, rtol=0.05)
