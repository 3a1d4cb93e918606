"""A workdir on object storage (issue 22): `launch.train --workdir
gs://bucket/run` writes config.json, metrics.jsonl, sample grids, the lock
and Orbax checkpoints there and resumes from them; `launch.evaluate` reads
the run there and writes its report beside it; neither makes a local folder
named `gs:`. The bucket is a GCS emulator in this process
(gcp-storage-emulator, in memory); the run is a subprocess that reaches it
through gcsfs and TensorStore (`emulated_gcs_train`).
"""

import json
import os
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

import train_processes

from gcp_storage_emulator import server as emulator
from gcp_storage_emulator.handlers import objects

BUCKET = "rsjax-test"


def _download_with_generation(original):
  """The emulator's media download, also sending the object's generation
  (x-goog-generation), as GCS does; TensorStore's OCDBT checkpoints read
  the generation of every object they read and refuse a reply without it
  ("Malformed StorageGeneration")."""
  def download(request, response, storage, *args, **kwargs):
    original(request, response, storage, *args, **kwargs)
    try:
      found = storage.get_file_obj(request.params["bucket_name"],
                                   request.params["object_id"])
    except Exception:  # pylint: disable=broad-except  (a 404 already)
      return
    response["x-goog-generation"] = str(found["generation"])
  return download


class Bucket:
  """The emulator's bucket, read over GCS's JSON API with urllib: a reader
  independent of the gcsfs and TensorStore clients the run writes with."""

  def __init__(self, url: str, name: str):
    self.url, self.name = url, name

  def names(self, prefix: str) -> set[str]:
    query = urllib.parse.urlencode({"prefix": prefix + "/"})
    with urllib.request.urlopen(
        f"{self.url}/storage/v1/b/{self.name}/o?{query}") as reply:
      items = json.load(reply).get("items", [])
    return {item["name"][len(prefix) + 1:] for item in items}

  def read(self, name: str) -> bytes:
    quoted = urllib.parse.quote(name, safe="")
    with urllib.request.urlopen(
        f"{self.url}/storage/v1/b/{self.name}/o/{quoted}?alt=media") as reply:
      return reply.read()


@pytest.fixture
def gcs(monkeypatch):
  """(endpoint URL, Bucket) of an empty in-memory GCS."""
  monkeypatch.setattr(objects, "download",
                      _download_with_generation(objects.download))
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  server = emulator.create_server("127.0.0.1", port, in_memory=True,
                                  default_bucket=BUCKET)
  server.start()
  url = f"http://127.0.0.1:{port}"
  try:
    yield url, Bucket(url, BUCKET)
  finally:
    server.stop()


def _run(url, cwd, module, *flags):
  """`python -m module flags` with the emulator as its GCS."""
  env = dict(train_processes.ENV, EPATH_USE_TF="false",
             STORAGE_EMULATOR_HOST=url, TENSORSTORE_GCS_HTTP_URL=url,
             GOOGLE_AUTH_TOKEN_FOR_TESTING="emulator")
  return subprocess.run([sys.executable, "-m", module, *flags], cwd=cwd,
                        env=env, capture_output=True, text=True, timeout=600)


def _train(url, config_path, workdir, cwd):
  return _run(url, cwd, "emulated_gcs_train", f"--config={config_path}",
              f"--workdir={workdir}")


def test_a_gs_workdir_is_written_and_resumed_there(gcs, tmp_path):
  url, bucket = gcs
  workdir = f"gs://{BUCKET}/runs/pix2pix"
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
  assert "] [3] train/" in result.stderr and "] [1] train/" not in result.stderr

  result = _run(url, cwd, "launch.evaluate", f"--workdir={workdir}",
                "--split=validation", "--num_batches=1")
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
