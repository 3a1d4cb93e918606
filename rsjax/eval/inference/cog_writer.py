"""Streaming rows of a raster into a Cloud-Optimized GeoTIFF, atomically.

GDAL's COG driver only creates a file by copying a finished dataset, so rows
are streamed into an uncompressed tiled GeoTIFF next to the target (hidden,
`.<name>.<pid>.rows.tif`), which is then copied with the COG driver
(compressed, internal tiles and overviews) through `rsjax.store.atomic` onto
the target. An interrupted run (an exception, Ctrl-C, SIGTERM turned into an
exception) removes its partial files; a killed one leaves only hidden files:
nothing named like the output ever exists unless it is whole. An output on
object storage (`gs://...`) streams its rows to the local temporary folder
and is uploaded once whole.

What GIS tools read of each band (`gdalinfo`, QGIS, rasterio's
`descriptions`, `units`, `scales`, `offsets`, `nodata`) is set on the rows'
file, and the COG copy keeps it: a band's name, its units, and the scale and
offset that turn stored values into those units; a class map also gets its
classes' colour table.

    with CogWriter("out.tif", grid.profile(count=4, dtype="uint16", nodata=0),
                   resampling="average", descriptions=("B2", "B3", "B4", "B8"),
                   units=("reflectance",) * 4, scales=(1e-4,) * 4) as writer:
      writer.write_rows(row, data)          # data: (bands, rows, width)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from rsjax.store import atomic
from rsjax.store import paths


def check_output_path(path: str | os.PathLike) -> str:
  """The absolute output path (a URI as it is); ValueError if it cannot be
  written there (checked for local paths; object storage answers when the
  finished file is uploaded)."""
  if paths.is_remote(path):
    if os.fspath(path).endswith("/"):
      raise ValueError(f"--output {path} is a folder; give a .tif file name.")
    return paths.absolute(path)
  path = os.path.abspath(os.fspath(path))
  folder = os.path.dirname(path)
  if os.path.isdir(path):
    raise ValueError(f"--output {path} is a folder; give a .tif file name.")
  if not os.path.isdir(folder):
    raise ValueError(f"--output {path}: folder {folder} does not exist.")
  if not os.access(folder, os.W_OK):
    raise ValueError(f"--output {path}: folder {folder} is not writable.")
  return path


class CogWriter:
  """Writes row blocks of a raster, then publishes it as a COG (see module)."""

  def __init__(self, path: str | os.PathLike, profile: dict, *,
               compress: str = "deflate", blocksize: int = 256,
               resampling: str = "average",
               descriptions: Sequence[str] = (), units: Sequence[str] = (),
               scales: Sequence[float] = (), offsets: Sequence[float] = (),
               colormap: Mapping[int, tuple[int, int, int]] | None = None,
               tags: dict | None = None):
    """Checks the output path; nothing is written before `__enter__`.

    Args:
      path: the COG to publish (a local path or a `gs://...` URI).
      profile: rasterio profile of the raster (size, count, dtype, nodata,
        CRS, transform); the writer sets the driver and layout.
      compress, blocksize, resampling: the COG's compression, tile side and
        overview resampling.
      descriptions, units, scales, offsets: one per band each (or empty:
        not set); see the module docstring.
      colormap: {value: (r, g, b)} colour table of a one-band uint8 raster
        (a class map), which GIS tools draw as it is.
      tags: dataset-level metadata.

    Raises:
      ValueError: an output path that cannot be written, or band metadata
        with another number of entries than the raster has bands.
    """
    self.path = check_output_path(path)
    if colormap and (profile["count"] != 1 or profile["dtype"] != "uint8"):
      raise ValueError(
          f"{self.path}: a colour table needs one uint8 band, not "
          f"{profile['count']} {profile['dtype']} band(s).")
    self.colormap = dict(colormap or {})
    self.band_metadata = {}
    for name, values in (("descriptions", descriptions), ("units", units),
                         ("scales", scales), ("offsets", offsets)):
      values = tuple(values)
      if not values:
        continue
      if len(values) != profile["count"]:
        raise ValueError(
            f"{self.path}: {len(values)} band {name} {list(values)} for "
            f"{profile['count']} band(s); give one per band.")
      self.band_metadata[name] = values
    folder, name = self.path.rsplit("/", 1)
    if paths.is_remote(self.path):  # rows are written in place: local disk
      folder = tempfile.gettempdir()
    self.partial = os.path.join(folder, f".{name}.{os.getpid()}.rows.tif")
    self.profile = dict(profile, driver="GTiff", tiled=True,
                        blockxsize=blocksize, blockysize=blocksize,
                        compress=None, BIGTIFF="IF_SAFER")
    self.cog_options = dict(COMPRESS=compress.upper(), BLOCKSIZE=blocksize,
                            OVERVIEW_RESAMPLING=resampling.upper(),
                            BIGTIFF="IF_SAFER")
    if compress.lower() in ("deflate", "lzw", "zstd"):
      float_data = np.dtype(profile["dtype"]).kind == "f"
      self.cog_options["PREDICTOR"] = "FLOATING_POINT" if float_data else "YES"
    self.tags = dict(tags or {})
    self._dataset = None
    self.rows_written = 0

  def __enter__(self) -> CogWriter:
    self._dataset = rasterio.open(self.partial, "w", **self.profile)
    for name, values in self.band_metadata.items():
      setattr(self._dataset, name, values)
    if self.tags:
      self._dataset.update_tags(**self.tags)
    if self.colormap:
      self._dataset.write_colormap(1, self.colormap)
    return self

  def write_rows(self, row: int, data: np.ndarray) -> None:
    """Writes (bands, rows, width) data at grid row `row`."""
    if data.shape[1] == 0:
      return
    window = Window(0, row, data.shape[2], data.shape[1])
    self._dataset.write(data.astype(self.profile["dtype"], copy=False),
                        window=window)
    self.rows_written += data.shape[1]

  def __exit__(self, exc_type, exc, traceback) -> None:
    try:
      self._dataset.close()
      if exc_type is None:
        if self.rows_written != self.profile["height"]:
          raise RuntimeError(
              f"{self.path}: {self.rows_written} of {self.profile['height']} "
              "rows were written; not publishing an incomplete raster.")
        with atomic.atomic_path(self.path, suffix=".tif") as temporary:
          rasterio.shutil.copy(self.partial, temporary, driver="COG",
                               **self.cog_options)
    finally:
      if os.path.exists(self.partial):
        os.remove(self.partial)
