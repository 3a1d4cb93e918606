"""The main job (`make demo`) end to end, at the smallest size."""

import json

import numpy as np
import pytest

from launch import demo
from tiny_configs import tiny_rs_spade


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
