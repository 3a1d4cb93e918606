"""Local paths and object-store URIs: a URI is never taken for a relative
local path (which would make a folder named `gs:`), and a directory output
is refused on object storage before anything is uploaded."""

import os

import pytest

from rsjax.store import atomic, paths


@pytest.mark.parametrize("path, remote", [
    ("gs://bucket/run", True), ("s3://b/k", True), ("gcs+x.y-z://b", True),
    ("run", False), ("/abs/run", False), ("gs:/bucket", False),
    ("./gs://x", False), ("1s://b", False)])
def test_is_remote(path, remote):
  assert paths.is_remote(path) is remote


def test_absolute_keeps_a_uri_and_anchors_a_local_path(tmp_path,
                                                       monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert paths.absolute("gs://bucket/run/") == "gs://bucket/run"
  assert paths.absolute("run") == os.path.join(str(tmp_path), "run")
  assert paths.join("gs://bucket/run/", "checkpoints", "3") == (
      "gs://bucket/run/checkpoints/3")
  assert paths.join("run", "checkpoints") == os.path.join(
      str(tmp_path), "run", "checkpoints")
  assert os.fspath(paths.of("gs://bucket/run")) == "gs://bucket/run"
  assert os.listdir(tmp_path) == []


def test_a_directory_is_refused_on_object_storage(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(NotImplementedError,
                     match="gs://bucket/arrays: a directory cannot"):
    with atomic.atomic_path("gs://bucket/arrays") as temporary:
      os.makedirs(os.path.join(temporary, "part"))
  assert os.listdir(tmp_path) == []
