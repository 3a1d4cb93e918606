"""Local copies of input files kept on object storage, for readers that need
a local path.

GDAL (rasterio) reads a scene's GeoTIFFs by seeking in local files. A scene
on object storage (`gs://bucket/scenes/area_1`, `rsjax.store.paths`) is
listed and downloaded through `etils.epath`, the same client and credentials
as a remote workdir, not through GDAL's own `/vsigs/` driver, which has its
own settings. A `Stage` downloads each remote file whole, once, into a
temporary folder of its own (under TMPDIR) that is removed when the stage
closes; local paths pass through unchanged. The copy keeps the file's name,
so messages and file-name patterns read the same.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from rsjax.store import paths


class Stage:
  """Remote files copied to a temporary local folder for the `with` block.

  `local(path)` returns a local path to read `path` from: `path` itself when
  it is local, else the copy (downloaded on the first call).
  """

  def __init__(self):
    self._folder: str | None = None
    self._copies: dict[str, str] = {}

  def __enter__(self) -> "Stage":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def local(self, path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not paths.is_remote(path):
      return path
    uri = paths.absolute(path)
    if uri not in self._copies:
      if self._folder is None:
        self._folder = tempfile.mkdtemp(prefix="rsjax-stage-")
      remote = paths.of(uri)
      # One sub-folder per file: two scenes may hold files of one name.
      folder = os.path.join(self._folder, str(len(self._copies)))
      os.makedirs(folder)
      copy = os.path.join(folder, remote.name)
      try:
        with remote.open("rb") as source, open(copy, "wb") as target:
          shutil.copyfileobj(source, target, length=16 * 2**20)
      except FileNotFoundError:
        raise FileNotFoundError(f"{uri}: no such object") from None
      except OSError as error:
        raise OSError(f"{uri}: cannot be downloaded ({type(error).__name__}: "
                      f"{error})") from error
      self._copies[uri] = copy
    return self._copies[uri]

  def close(self) -> None:
    if self._folder is not None:
      shutil.rmtree(self._folder, ignore_errors=True)
    self._folder, self._copies = None, {}


def list_files(folder: str | os.PathLike) -> list[str]:
  """Sorted URIs of the files directly in a remote `folder` (names starting
  with '.' left out, as for a local scene folder)."""
  return sorted(paths.join(folder, entry.name)
                for entry in paths.of(folder).iterdir()
                if not entry.name.startswith(".") and entry.is_file())
