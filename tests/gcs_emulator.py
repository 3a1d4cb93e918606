"""An in-memory GCS for tests (gcp-storage-emulator, run in the test's
process), and subprocesses that reach it: `etils.epath` through gcsfs
(EPATH_USE_TF=false, STORAGE_EMULATOR_HOST), Orbax through TensorStore
(TENSORSTORE_GCS_HTTP_URL). TensorFlow's own GCS client cannot be pointed
at an emulator (it always calls www.googleapis.com), so nothing under test
may use it: see `emulated_gcs_launch`."""

import contextlib
import json
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

from gcp_storage_emulator import server as emulator
from gcp_storage_emulator.handlers import objects

import train_processes

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

  def write(self, name: str, data: bytes) -> None:
    """Uploads `data` as object `name` (a simple media upload)."""
    query = urllib.parse.urlencode({"uploadType": "media", "name": name})
    request = urllib.request.Request(
        f"{self.url}/upload/storage/v1/b/{self.name}/o?{query}", data=data,
        method="POST", headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(request).close()

  def read(self, name: str) -> bytes:
    quoted = urllib.parse.quote(name, safe="")
    with urllib.request.urlopen(
        f"{self.url}/storage/v1/b/{self.name}/o/{quoted}?alt=media") as reply:
      return reply.read()


@contextlib.contextmanager
def running():
  """(endpoint URL, Bucket) of an empty in-memory GCS, for the block."""
  original = objects.download
  objects.download = _download_with_generation(original)
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
    objects.download = original


def run(url, cwd, *args, timeout=600, **env) -> subprocess.CompletedProcess:
  """`python ARGS` in `cwd` with the environment variables `env` and the
  emulator at `url` as its GCS."""
  env = dict(train_processes.ENV, EPATH_USE_TF="false",
             STORAGE_EMULATOR_HOST=url, TENSORSTORE_GCS_HTTP_URL=url,
             GOOGLE_AUTH_TOKEN_FOR_TESTING="emulator", **env)
  return subprocess.run([sys.executable, *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout)
