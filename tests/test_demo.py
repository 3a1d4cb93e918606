"""The main job (`make demo`) end to end, at the smallest size, and what a
person sees while it runs."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import tensorboard_events
import train_processes
from launch import demo
from tiny_configs import tiny_rs_spade

# The demo's console at the default verbosity (issue 20: about 40 lines).
LINE_BUDGET = 40


@pytest.mark.slow
def test_demo_trains_scores_and_reports(tmp_path, synthetic_tiny, devices):
  config = tiny_rs_spade(synthetic_tiny)
  result = demo.run(str(tmp_path / "demo"), data_dir=synthetic_tiny,
                    config=config)
  report = (tmp_path / "demo" / "report.md").read_text()
  assert "| RS-SPADE" in report and "| baseline: mean training image" in report
  assert (tmp_path / "demo" / "samples.png").stat().st_size > 0
  saved = json.loads((tmp_path / "demo" / "report.json").read_text())
  for name in ("rs_spade", "baseline"):
    assert set(saved["scores"][name]) == {"psnr", "ssim", "sam"}
    assert all(np.isfinite(v) for v in saved["scores"][name].values())
  assert result["scores"] == saved["scores"]


def test_baseline_scores_match_the_metrics_directly(synthetic_tiny, devices):
  """The mean-image baseline goes through the same scoring as the systems."""
  from rsjax import mesh as mesh_lib
  from rsjax import metrics
  from rsjax.data import pipeline
  config = tiny_rs_spade(synthetic_tiny)
  mesh = mesh_lib.make_mesh(config.mesh)
  image = demo.mean_training_image(config, mesh)
  assert image.shape == (64, 64, 4) and np.all(np.abs(image) <= 1)
  scores = demo.score_baseline(config, mesh, image, "test")
  it = pipeline.create_iterator(config.data, mesh, train=False, split="test")
  targets = np.concatenate([np.asarray(b["s2"])[np.asarray(b["mask"]) > 0]
                            for b in it])
  it.close()
  pred = np.broadcast_to((image + 1) / 2, targets.shape)
  want = metrics.psnr(pred, (targets + 1) / 2, data_range=1.0).mean()
  np.testing.assert_allclose(scores["psnr"], want, rtol=1e-5)


@pytest.mark.slow
def test_demo_console_shows_progress_in_few_lines(tmp_path):
  """`rsjax-demo --smoke` run from another folder, as installed, on one CPU
  device: the output stays within the line budget, and progress lines come
  while the dataset is built, the step compiles, training runs and the
  splits are scored, in that order (each line is stamped HH:MM:SS as it is
  logged)."""
  env = {k: v for k, v in train_processes.ENV.items()
         if k not in ("PYTHONPATH", "XLA_FLAGS")}
  command = os.path.join(os.path.dirname(sys.executable), "rsjax-demo")
  result = subprocess.run([command, "--workdir", "runs/demo", "--smoke"],
                          cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
  output = result.stdout + result.stderr
  assert result.returncode == 0, output[-3000:]
  lines = output.splitlines()
  assert len(lines) <= LINE_BUDGET, output
  assert not any("parameter" in l and "|" in l for l in lines), output
  logged = [l[9:] for l in result.stderr.splitlines()
            if re.match(r"\d\d:\d\d:\d\d ", l)]
  order = [r"generating synthetic scenes: 2/2", r"writing train: \d+/\d+ tiles",
           r"compiling the train step \.\.\.$",
           r"compiled the train step in \d+",
           r"step 5/30 \(17 %\), [\d.]+ steps/s, \d+ s left  d_fake",
           r"step 30/30 \(100 %\)", r"evaluating on validation: 1/1 batches",
           r"3/3 scoring", r"evaluating on test: 1/1 batches"]
  position = 0
  for pattern in order:
    found = [i for i, l in enumerate(logged) if re.match(pattern, l)]
    assert found and found[0] >= position, (pattern, logged)
    position = found[0]
  workdir = tmp_path / "runs" / "demo"
  assert (workdir / "params.txt").exists()
  # TensorBoard holds the evaluation's sample grid and scores.
  assert {"validation/samples", "validation/scores"} <= (
      tensorboard_events.tags(workdir)[30])
  assert "rs_spade: PSNR" in result.stdout
