"""A workdir on object storage (issue 22): `launch.train --workdir
gs://bucket/run` writes config.json, metrics.jsonl, sample grids, the lock
and Orbax checkpoints there and resumes from them; `launch.evaluate` reads
the run there and writes its report beside it; neither makes a local folder
named `gs:`. The bucket is a GCS emulator in this process (`gcs_emulator`).
"""

import json
import os

import pytest

import gcs_emulator
import train_processes


@pytest.fixture
def gcs():
  with gcs_emulator.running() as running:
    yield running


def _train(url, config_path, workdir, cwd):
  return gcs_emulator.run(url, cwd, "-m", "emulated_gcs_launch",
                          "launch.train", f"--config={config_path}",
                          f"--workdir={workdir}")


def test_a_gs_workdir_is_written_and_resumed_there(gcs, tmp_path):
  url, bucket = gcs
  workdir = f"gs://{gcs_emulator.BUCKET}/runs/pix2pix"
  cwd = tmp_path / "cwd"
  cwd.mkdir()
  first = train_processes.config_file(tmp_path, 2)
  result = _train(url, first, workdir, cwd)
  assert result.returncode == 0, result.stderr[-4000:]

  (tmp_path / "longer").mkdir()
  longer = train_processes.config_file(tmp_path / "longer", 3)
  result = _train(url, longer, workdir, cwd)
  assert result.returncode == 0, result.stderr[-4000:]
  # Resumed from the bucket's step 2: steps 1 and 2 are not trained again.
  assert "step 3/3 (" in result.stderr and "step 1/3 (" not in result.stderr

  result = gcs_emulator.run(url, cwd, "-m", "emulated_gcs_launch",
                            "launch.evaluate",
                            f"--workdir={workdir}", "--split=validation",
                            "--num_batches=1")
  assert result.returncode == 0, result.stderr[-4000:]

  assert os.listdir(cwd) == []  # no folder named gs:
  root = "runs/pix2pix"
  names = bucket.names(root)
  assert {"config.json", "metrics.jsonl", "samples/step_000002.png",
          "samples/step_000003.png"} <= names, names
  assert {f"eval/scores_validation.{kind}" for kind in ("md", "csv", "json")
          } | {"eval/curves.png", "eval/samples_validation_pix2pix.png"
               } <= names, names
  assert json.loads(bucket.read(f"{root}/eval/scores_validation.json"))[
      "runs"][0]["step"] == 3
  assert "LOCK" not in names  # released
  steps = {name.split("/")[1] for name in names
           if name.startswith("checkpoints/")}
  assert steps == {"1", "2", "3"}
  assert json.loads(bucket.read(f"{root}/config.json"))["total_steps"] == 3
  lines = [json.loads(l)
           for l in bucket.read(f"{root}/metrics.jsonl").splitlines()]
  logged = [l["step"] for l in lines if "train/g_loss" in l]
  assert logged == [1, 2, 3]
  assert sum("hparams" in l for l in lines) == 1
