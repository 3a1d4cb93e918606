"""`tfds build` (TFDS's own command line, as installed with the package and its
tfds-cli extra) builds the tiny synthetic config offline, with nothing on
PYTHONPATH: by the builder's folder from the repository root, and by its
registered name from any other folder (`--imports` names the module that
registers it)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TFDS = os.path.join(os.path.dirname(sys.executable), "tfds")


@pytest.mark.slow
@pytest.mark.parametrize("in_root, args", [
    (True, ["data_builders/rs_multisource", "--config", "synthetic_tiny"]),
    (False, ["--imports",
             "data_builders.rs_multisource.rs_multisource_dataset_builder",
             "rs_multisource/synthetic_tiny"]),
], ids=["folder_in_root", "imports_elsewhere"])
def test_tfds_build_command_builds_the_synthetic_config(tmp_path, in_root,
                                                        args):
  data_dir = tmp_path / "tensorflow_datasets"
  command = [TFDS, "build", *args, "--data_dir", str(data_dir),
             "--file_format", "array_record"]
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env.update(CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run(command, cwd=ROOT if in_root else tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  built_dir = data_dir / "rs_multisource" / "synthetic_tiny"
  version_dirs = list(built_dir.iterdir())
  assert len(version_dirs) == 1
  built = {p.name for p in version_dirs[0].iterdir()}
  assert "dataset_info.json" in built
  assert any(name.startswith("rs_multisource-train.array_record") for name in built)
