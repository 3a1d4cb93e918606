"""Where a run's files live: a local path, or an object-store URI.

A workdir, a data_dir or an output may be a local folder or a URI of a
filesystem that `etils.epath` reaches (`gs://bucket/run`, `s3://...`):
epath uses TensorFlow's filesystems where TensorFlow is installed, fsspec
(gcsfs, s3fs) elsewhere, and Orbax checkpoints go to the same URI through
TensorStore. Local paths are made absolute; a URI is kept as it is, never
taken for a relative local path (which would make a folder named `gs:`).
"""

from __future__ import annotations

import os
import re

from etils import epath

_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_remote(path: str | os.PathLike) -> bool:
  """Whether `path` is a URI (`gs://...`) rather than a local path."""
  return bool(_URI.match(os.fspath(path)))


def absolute(path: str | os.PathLike) -> str:
  """`path` made absolute if local; a URI unchanged (no trailing slash)."""
  path = os.fspath(path)
  if is_remote(path):
    return path.rstrip("/")
  return os.path.abspath(path)


def join(path: str | os.PathLike, *names: str) -> str:
  """`absolute(path)` joined with `names` ('/' for URIs)."""
  if is_remote(path):
    return "/".join([absolute(path), *names])
  return os.path.join(absolute(path), *names)


def of(path: str | os.PathLike) -> epath.Path:
  """An epath.Path of `absolute(path)`, to read and write either kind."""
  return epath.Path(absolute(path))


def check_reachable(path: str | os.PathLike) -> None:
  """OSError naming `path` if it is a URI whose store cannot be reached (no
  network, no credentials, a store that refuses); a local path passes."""
  if not is_remote(path):
    return
  try:
    of(path).exists()
  except Exception as error:  # pylint: disable=broad-except
    # Each filesystem raises its own types (TensorFlow's OpError, fsspec's
    # and google-auth's); the first line says which it was.
    lines = str(error).strip().splitlines()
    raise OSError(f"{os.fspath(path)}: cannot be reached ({type(error).__name__}"
                  f": {lines[0] if lines else ''}); check the credentials "
                  f"and the network of this machine") from error
