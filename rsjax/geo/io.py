"""Opening GeoTIFFs and reading windows of them, with nodata as a boolean mask.

Every raster that enters rsjax goes through `open_raster`, which turns GDAL's
failures into errors that name the file: a missing or unreadable file, a raster
without a CRS, a band count other than the one the caller expects. Reads are
windowed (`read_window`): only the requested block of pixels is read from disk,
so memory is bounded by the window, not by the scene. A read that fails (a
truncated or corrupt file whose header opens) raises a `RasterError` naming
the file, the bands and the window; a window without a valid pixel, when the
caller asks for one, an `EmptyWindowError` naming the file, the window and
the bands that hold no valid pixel when others do (`empty_bands`).

Nodata is never a magic number in the returned data. A pixel is valid when
GDAL's mask says so for every band read (the mask covers a nodata value, an
internal mask band or an alpha band) and, for floating-point rasters, when its
value is finite. Invalid pixels are returned as 0 next to a boolean `valid` mask.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np
import rasterio
import rasterio.errors
from rasterio.windows import Window


class RasterError(ValueError):
  """A raster cannot be used as given; the message names the file."""


class EmptyWindowError(RasterError):
  """A window holds no valid pixel of a raster."""


@dataclasses.dataclass(frozen=True)
class WindowRead:
  """Pixels of one window of a raster.

  Attributes:
    data: (bands, rows, cols) array in the raster's dtype; 0 where invalid.
    valid: (rows, cols) boolean mask, True where every band holds data.
    band_valid: (bands, rows, cols) boolean mask, True where that band holds
      data (None where the reader does not keep it).
  """
  data: np.ndarray
  valid: np.ndarray
  band_valid: np.ndarray | None = None


def _is_local_path(path: str) -> bool:
  return "://" not in path and not path.startswith("/vsi")


def open_raster(path: str | os.PathLike,
                *, expected_bands: int | None = None) -> rasterio.DatasetReader:
  """Opens a georeferenced raster for reading, or raises an error naming it.

  Args:
    path: a local path or any URL/VSI path GDAL understands.
    expected_bands: if given, the band count the caller's config says the file
      has; a different count raises a `RasterError`.

  Returns:
    An open `rasterio.DatasetReader`; close it (or use it in a `with` block).

  Raises:
    FileNotFoundError: a local path that does not exist.
    RasterError: a file GDAL cannot read, a raster without a CRS, or a band
      count other than `expected_bands`.
  """
  path = os.fspath(path)
  if _is_local_path(path) and not os.path.exists(path):
    raise FileNotFoundError(f"raster not found: {path}")
  try:
    dataset = rasterio.open(path)
  except rasterio.errors.RasterioIOError as error:
    raise RasterError(f"{path}: cannot be read as a raster: {error}") from error
  try:
    check_raster(dataset, expected_bands=expected_bands)
  except RasterError:
    dataset.close()
    raise
  return dataset


def check_raster(dataset: rasterio.DatasetReader,
                 *, expected_bands: int | None = None) -> None:
  """Raises a `RasterError` naming the file if `dataset` cannot be aligned."""
  if dataset.crs is None:
    raise RasterError(
        f"{dataset.name}: raster has no CRS; it cannot be placed on a map. "
        "Assign one (e.g. `gdal_edit.py -a_srs EPSG:XXXX`) before using it.")
  if dataset.transform.is_identity:
    raise RasterError(
        f"{dataset.name}: raster has no geotransform (pixel grid unknown).")
  if expected_bands is not None and dataset.count != expected_bands:
    raise RasterError(
        f"{dataset.name}: has {dataset.count} band(s), expected "
        f"{expected_bands}.")


def check_band_indexes(dataset: rasterio.DatasetReader,
                       bands: Sequence[int] | None) -> list[int]:
  """Returns the 1-based band indexes to read (all if `bands` is None)."""
  if bands is None:
    return list(range(1, dataset.count + 1))
  bands = [int(band) for band in bands]
  missing = [band for band in bands if not 1 <= band <= dataset.count]
  if missing:
    raise RasterError(
        f"{dataset.name}: band(s) {missing} requested, but the raster has "
        f"bands 1..{dataset.count}.")
  return bands


def clip_window(window: Window, height: int, width: int) -> Window | None:
  """Rounds `window` outwards to whole pixels and clips it to the raster.

  Returns None when nothing of the window lies inside the raster.
  """
  col_start = max(0, math.floor(window.col_off))
  row_start = max(0, math.floor(window.row_off))
  col_stop = min(width, math.ceil(window.col_off + window.width))
  row_stop = min(height, math.ceil(window.row_off + window.height))
  if col_stop <= col_start or row_stop <= row_start:
    return None
  return Window(col_start, row_start, col_stop - col_start,
                row_stop - row_start)


def read_window(dataset: rasterio.DatasetReader, window: Window | None = None,
                *, bands: Sequence[int] | None = None,
                allow_empty: bool = True) -> WindowRead:
  """Reads one window of an open raster with its validity mask.

  Args:
    dataset: an open raster (see `open_raster`).
    window: pixel window in the raster's own grid, within its bounds; None
      reads the whole raster (only sensible for small rasters).
    bands: 1-based band indexes to read; all bands if None.
    allow_empty: if False, a window without any valid pixel raises an
      `EmptyWindowError`.

  Returns:
    A `WindowRead` with (bands, rows, cols) data and a (rows, cols) mask.
  """
  indexes = check_band_indexes(dataset, bands)
  if window is None:
    window = Window(0, 0, dataset.width, dataset.height)
  try:
    masked = dataset.read(indexes, window=window, masked=True)
  except rasterio.errors.RasterioError as error:
    # GDAL's own words (which block failed) are in the cause.
    raise RasterError(
        f"{dataset.name}: the pixels of {bands_str(dataset, indexes)} in "
        f"window {window_str(window)} cannot be read "
        f"({error.__cause__ or error}); the file may be truncated or "
        "corrupt.") from error
  data = np.ma.getdata(masked)
  band_valid = ~np.ma.getmaskarray(masked)
  if np.issubdtype(data.dtype, np.floating):
    band_valid &= np.isfinite(data)
  valid = band_valid.all(axis=0)
  data = np.where(valid[None], data, np.zeros((), data.dtype))
  if not allow_empty and not valid.any():
    raise EmptyWindowError(
        f"{dataset.name}: window {window_str(window)} holds no valid pixel "
        f"(all nodata){empty_bands(dataset, indexes, band_valid)}.")
  return WindowRead(data=data, valid=valid, band_valid=band_valid)


def bands_str(dataset: rasterio.DatasetReader, indexes: Sequence[int]) -> str:
  """'band 2 (VH)' or 'bands 1 (VV), 2 (VH)': 1-based indexes, with the
  file's band descriptions where it has them."""
  descriptions = dataset.descriptions  # one per band, each a str or None
  named = []
  for index in indexes:
    description = descriptions[index - 1]
    named.append(f"{index} ({description})" if description else str(index))
  return ("band " if len(named) == 1 else "bands ") + ", ".join(named)


def empty_bands(dataset: rasterio.DatasetReader, indexes: Sequence[int],
                band_valid: np.ndarray) -> str:
  """'; band 2 (VH) holds no valid pixel' when some of the bands read
  (`band_valid`: (bands, rows, cols)) are empty and others are not, so
  that a window is empty because of those bands; '' otherwise."""
  has_data = band_valid.reshape(len(indexes), -1).any(axis=1)
  if has_data.all() or not has_data.any():
    return ""
  empty = [index for index, data in zip(indexes, has_data) if not data]
  return f"; {bands_str(dataset, empty)} holds no valid pixel"


def window_str(window: Window) -> str:
  """A short description of a window for error messages."""
  return (f"(col_off={window.col_off:g}, row_off={window.row_off:g}, "
          f"width={window.width:g}, height={window.height:g})")
