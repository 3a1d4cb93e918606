"""CSEBGAN end to end: the trainer on 8 simulated devices and the embedded
synthetic dataset (64-pixel tiles): train, checkpoint, resume, evaluate."""

from __future__ import annotations

import json
import os

import numpy as np

from rsjax.train import trainer
from test_csebgan import tiny_config


def test_train_checkpoint_resume_evaluate(tmp_path, synthetic_tiny, devices):
  config = tiny_config(total_steps=3)
  config.data.data_dir = synthetic_tiny
  config.data.name = "rs_multisource/synthetic_tiny"
  config.data.batch_size = config.data.eval_batch_size = 8
  config.log_every = config.checkpoint_every = 1
  config.eval_every = 1000
  config.num_eval_batches = 1
  workdir = str(tmp_path)
  assert trainer.train_and_evaluate(config, workdir, stop_after=2) == {}
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  scores = trainer.train_and_evaluate(config, workdir)      # resumes at 2
  assert {"psnr", "ssim", "sam", "miou", "fwiou", "pixel_accuracy",
          "pixel_diversity", "pixel_mcsd", "pixel_mocd"} == set(scores)
  assert all(np.isfinite(v) for v in scores.values()), scores
  lines = [json.loads(line) for line in
           (tmp_path / "metrics.jsonl").read_text().splitlines()]
  steps = [line["step"] for line in lines if "train/g_loss" in line]
  assert steps == [1, 2, 3]
  assert all(line["train/loss_is_finite"] == 1.0 for line in lines
             if "train/g_loss" in line)
  assert (tmp_path / "samples" / "step_000003.png").exists()
  assert json.loads((tmp_path / "config.json").read_text())["system"] == "csebgan"
