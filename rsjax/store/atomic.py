"""Files that are complete or absent: write under a temporary name, flush to
disk, rename.

Every output rsjax writes (reports, tables, figures, sample grids, rows files,
generated-array directories, rasters) goes through `atomic_path`, so a killed
run never leaves a file or directory that looks whole: a reader sees the old
version or the new one. The temporary name lies beside the target (same
folder, so the rename stays on one filesystem) and starts with the target's
name, so a leftover from a killed writer is easy to recognise and is replaced
by the next write.

A file on object storage (`gs://...`, `rsjax.store.paths`) is written to a
local temporary file first and uploaded once complete: an object store shows
an upload whole or not at all, so it is as safe. A directory there would
appear file by file (object stores have no directories to rename), so it is
refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from rsjax.store import paths


def _fsync(path: str) -> None:
  """Flushes a file, or every file of a directory tree, to disk."""
  if os.path.isdir(path):
    for root, _, names in os.walk(path):
      for name in names:
        _fsync(os.path.join(root, name))
    return
  with open(path, "rb") as f:
    os.fsync(f.fileno())


def _fsync_directory(directory: str) -> None:
  """Makes a rename inside `directory` durable (POSIX; a no-op elsewhere)."""
  try:
    descriptor = os.open(directory, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(descriptor)
  except OSError:
    pass
  finally:
    os.close(descriptor)


def _remove(path: str) -> None:
  if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path, ignore_errors=True)
  elif os.path.lexists(path):
    os.remove(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "") -> Iterator[str]:
  """Yields a temporary path beside `path` to write a file or a directory to;
  once the block ends without error it is flushed and renamed to `path`
  (replacing what was there), on error it is removed.

  `suffix` ends the temporary name, for writers that pick a format by
  extension (e.g. `suffix=".png"`). Parent folders are created. A remote
  `path` gets a local temporary path, uploaded at the end.
  """
  if paths.is_remote(path):
    with _uploaded(path, suffix) as temporary:
      yield temporary
    return
  path = os.path.abspath(os.fspath(path))
  directory = os.path.dirname(path)
  os.makedirs(directory, exist_ok=True)
  temporary = os.path.join(
      directory, f".{os.path.basename(path)}.partial-{os.getpid()}{suffix}")
  _remove(temporary)
  try:
    yield temporary
    if not os.path.lexists(temporary):
      raise FileNotFoundError(f"{path}: nothing was written to {temporary}")
    _fsync(temporary)
    if os.path.isdir(temporary) and os.path.isdir(path):
      shutil.rmtree(path)  # os.replace cannot replace a non-empty directory
    os.replace(temporary, path)
    _fsync_directory(directory)
  finally:
    _remove(temporary)


@contextlib.contextmanager
def _uploaded(path: str | os.PathLike, suffix: str) -> Iterator[str]:
  """A local temporary path whose file is uploaded to the remote `path`
  once the block ends without error."""
  target = paths.of(path)
  with tempfile.TemporaryDirectory(prefix="rsjax-upload-") as folder:
    temporary = os.path.join(folder, f"{target.name}{suffix}")
    yield temporary
    if not os.path.lexists(temporary):
      raise FileNotFoundError(f"{path}: nothing was written to {temporary}")
    if os.path.isdir(temporary):
      raise NotImplementedError(
          f"{path}: a directory cannot be written to object storage whole "
          f"(it would appear file by file); write it to a local path")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(temporary, "rb") as f:
      target.write_bytes(f.read())


def write_text(path: str | os.PathLike, text: str) -> str:
  """Writes `text` to `path` atomically; returns the path."""
  with atomic_path(path) as temporary:
    with open(temporary, "w") as f:
      f.write(text)
  return os.fspath(path)


def write_json(path: str | os.PathLike, value: Any, **dump_kwargs: Any) -> str:
  """Writes `value` as JSON (indent 2 unless given) to `path` atomically."""
  dump_kwargs.setdefault("indent", 2)
  return write_text(path, json.dumps(value, **dump_kwargs))
