"""The quick-start job runs and writes its metrics file atomically."""

import json

import numpy as np

from launch import demo


def test_demo_writes_metrics(tmp_path):
  result = demo.run(tmp_path / "run")
  on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
  assert on_disk == result
  assert not list((tmp_path / "run").glob("*.tmp"))
  # The degraded cloud area must score worse than the clear area.
  assert on_disk["cloudy"]["psnr"][0] < on_disk["clear"]["psnr"][0]
  assert 0 < on_disk["segmentation"]["miou"] < 1
  assert np.isfinite(on_disk["all"]["q"][0])
