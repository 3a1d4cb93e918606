"""`tfds build` (TFDS's own command line) builds the tiny synthetic config offline."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_tfds_build_command_builds_the_synthetic_config(tmp_path):
  command = [sys.executable, "-m", "tensorflow_datasets.scripts.cli.main",
             "build", "data_builders/rs_multisource", "--config",
             "synthetic_tiny", "--data_dir", str(tmp_path),
             "--file_format", "array_record"]
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  version_dirs = list((tmp_path / "rs_multisource" / "synthetic_tiny").iterdir())
  assert len(version_dirs) == 1
  built = {p.name for p in version_dirs[0].iterdir()}
  assert "dataset_info.json" in built
  assert any(name.startswith("rs_multisource-train.array_record") for name in built)
