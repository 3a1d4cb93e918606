"""An experiment workdir on object storage (issue 22): `launch.experiment
--workdir gs://...` runs the augmentation experiment with its rows files,
sub-runs, table and plots in the bucket, reads the rows back from there to
train, keeps the memory-mapped generated arrays in a local folder under
TMPDIR, makes no local folder named `gs:`, and a second run resumes: it
trains nothing again. The bucket is a GCS emulator (`gcs_emulator`)."""

import hashlib
import io
import json
import re

import numpy as np

import gcs_emulator

_CONFIG = """
import tiny_configs
def get_config(arg=None):
  return tiny_configs.tiny_augment({generator!r}, fractions=(1.0,))
"""


def test_augmentation_experiment_in_a_bucket(generator_dir, tmp_path):
  config = tmp_path / "augment_config.py"
  config.write_text(_CONFIG.format(generator=generator_dir))
  for name in ("cwd", "tmp"):
    (tmp_path / name).mkdir()
  workdir = f"gs://{gcs_emulator.BUCKET}/experiments/augment"

  def run(url):
    return gcs_emulator.run(
        url, tmp_path / "cwd", "-m", "emulated_gcs_launch",
        "launch.experiment", f"--config={config}", f"--workdir={workdir}",
        TMPDIR=str(tmp_path / "tmp"), timeout=900)

  with gcs_emulator.running() as (url, bucket):
    result = run(url)
    assert result.returncode == 0, result.stderr[-4000:]
    # The sub-runs' training lines (rsjax.train.progress).
    assert re.search(r"step 2/\d+ \(", result.stderr), result.stderr[-4000:]
    names = bucket.names("experiments/augment")
    assert {"augmentation.md", "augmentation.csv", "augmentation.json",
            "class_iou_change.png", "validation_miou.png", "rows/true_f1.npy",
            "rows/mix_f1.npy", "runs/true_f1/test_scores.json",
            "runs/mix_f1/test_scores.json", "runs/true_f1/config.json",
            "runs/mix_f1/metrics.jsonl"} <= names, names
    assert not any(name.startswith("generated/") for name in names)
    document = json.loads(bucket.read("experiments/augment/augmentation.json"))
    (row,) = document["rows"]
    assert row["real_tiles"] == 32 and row["mix_tiles"] == 64
    mix_rows = np.load(io.BytesIO(
        bucket.read("experiments/augment/rows/mix_f1.npy")))
    np.testing.assert_array_equal(mix_rows, np.arange(64))
    local = (tmp_path / "tmp" / "rsjax-generated"
             / hashlib.sha256(workdir.encode()).hexdigest()[:16])
    meta = json.loads((local / "meta.json").read_text())
    assert meta["num_real"] == 32 and meta["generator_workdir"] == generator_dir

    metrics = bucket.read("experiments/augment/runs/mix_f1/metrics.jsonl")
    again = run(url)
    assert again.returncode == 0, again.stderr[-4000:]
    assert bucket.read("experiments/augment/runs/mix_f1/metrics.jsonl") == (
        metrics)
    assert "train/" not in again.stderr   # resumed: nothing trained again
  assert list((tmp_path / "cwd").iterdir()) == []
