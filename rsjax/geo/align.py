"""Registering multi-source rasters onto one reference grid, window by window.

A `ReferenceGrid` is a CRS, an affine transform and a size. `reference_grid`
builds the default one: the CRS of the first source (pass the optical raster
first), 10 m pixels snapped to that raster's own pixel lattice, covering the
intersection of every source's extent transformed into that CRS.

Every source is resampled onto a window of the grid with
`rasterio.warp.reproject`: bilinear by default for continuous data (cubic on
request), nearest by default for categorical data (mode on request), so a land
cover map or a mask never gets an interpolated value. Only the block of the
source that covers the target window (plus a margin for the resampling kernel)
is read, so a scene of any size is aligned with memory bounded by the window:

    grid = reference_grid([s2, s1, lulc, dem])
    with AlignedReader([Source(s2, name="s2"), Source(s1, name="s1"),
                        Source(lulc, name="lulc", categorical=True),
                        Source(dem, name="dem")], grid) as reader:
      for tile in grid_tiles(grid, tile_size=256):   # rsjax.geo.tiles
        arrays = reader.read(tile.window)            # {"s2": AlignedArray, ...}

Nodata travels as a mask: source pixels that GDAL's mask marks invalid (or that
are not finite) are never mixed into valid output pixels, and output pixels
without data (outside a source, or under its nodata) are False in `valid`.
Every error names the source file, and the grid window or band it concerns
(`rsjax.geo.io`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Sequence

import numpy as np
import rasterio
import rasterio.errors
import rasterio.warp
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.windows import Window

from rsjax.geo import io

CONTINUOUS_RESAMPLING = (Resampling.bilinear, Resampling.cubic,
                         Resampling.nearest, Resampling.average)
CATEGORICAL_RESAMPLING = (Resampling.nearest, Resampling.mode)
_SNAP_TOLERANCE = 1e-6  # in pixels: float noise when snapping to a lattice


def window_transform(window: Window, transform: Affine) -> Affine:
  """The affine transform of a window's own pixel grid."""
  return transform @ Affine.translation(window.col_off, window.row_off)


def window_bounds(window: Window,
                  transform: Affine) -> tuple[float, float, float, float]:
  """(left, bottom, right, top) of a window of a north-up grid."""
  left, top = transform @ (window.col_off, window.row_off)
  right, bottom = transform @ (window.col_off + window.width,
                               window.row_off + window.height)
  return (min(left, right), min(bottom, top), max(left, right),
          max(bottom, top))


def bounds_window(bounds: tuple[float, float, float, float],
                  transform: Affine) -> Window:
  """The (fractional) window of a north-up grid covering `bounds`."""
  left, bottom, right, top = bounds
  col_start, row_start = ~transform @ (left, top)
  col_stop, row_stop = ~transform @ (right, bottom)
  col_start, col_stop = sorted((col_start, col_stop))
  row_start, row_stop = sorted((row_start, row_stop))
  return Window(col_start, row_start, col_stop - col_start,
                row_stop - row_start)


@dataclasses.dataclass(frozen=True)
class ReferenceGrid:
  """The pixel grid every source is resampled onto (north-up)."""
  crs: CRS
  transform: Affine
  width: int
  height: int

  @property
  def shape(self) -> tuple[int, int]:
    return (self.height, self.width)

  @property
  def res(self) -> tuple[float, float]:
    """Pixel size (xres, yres) in CRS units, both positive."""
    return (abs(self.transform.a), abs(self.transform.e))

  @property
  def bounds(self) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) in CRS units."""
    return window_bounds(self.full_window, self.transform)

  @property
  def full_window(self) -> Window:
    return Window(0, 0, self.width, self.height)

  def window_transform(self, window: Window) -> Affine:
    """The affine transform of a window of this grid."""
    return window_transform(window, self.transform)

  def window_bounds(self, window: Window) -> tuple[float, float, float, float]:
    return window_bounds(window, self.transform)

  def profile(self, *, count: int, dtype: str, **options) -> dict:
    """A rasterio profile to write a GeoTIFF on this grid."""
    return dict(driver="GTiff", crs=self.crs, transform=self.transform,
                width=self.width, height=self.height, count=count,
                dtype=dtype, **options)

  @classmethod
  def from_raster(cls, path: str | os.PathLike) -> ReferenceGrid:
    """The grid of an existing raster (e.g. to align onto it exactly)."""
    with io.open_raster(path) as dataset:
      return cls(crs=dataset.crs, transform=dataset.transform,
                 width=dataset.width, height=dataset.height)


@dataclasses.dataclass(frozen=True)
class Source:
  """One raster to align and how to resample it.

  Attributes:
    path: the raster file.
    name: key of this source in `AlignedReader.read`'s result; defaults to the
      file name without extension.
    categorical: True for class labels and masks (LULC, cloud masks): only
      nearest or mode resampling, and the output keeps the source dtype.
    bands: 1-based band indexes to read; all bands if None.
    expected_bands: band count the config says the file has; checked on open.
    resampling: overrides the default (bilinear, or nearest if categorical).
  """
  path: str | os.PathLike
  name: str | None = None
  categorical: bool = False
  bands: tuple[int, ...] | None = None
  expected_bands: int | None = None
  resampling: Resampling | None = None

  def __post_init__(self):
    self.method  # Raises now for a resampling that does not fit the data.

  @property
  def key(self) -> str:
    if self.name is not None:
      return self.name
    return os.path.splitext(os.path.basename(os.fspath(self.path)))[0]

  @property
  def method(self) -> Resampling:
    """The resampling used, checked against the kind of data."""
    # `is None`, not `or`: Resampling.nearest is 0, which is falsy.
    if self.categorical:
      default, allowed = Resampling.nearest, CATEGORICAL_RESAMPLING
    else:
      default, allowed = Resampling.bilinear, CONTINUOUS_RESAMPLING
    method = default if self.resampling is None else self.resampling
    if method not in allowed:
      kind = "categorical" if self.categorical else "continuous"
      raise ValueError(
          f"{os.fspath(self.path)}: resampling {method.name!r} is not allowed "
          f"for {kind} data; use one of {[m.name for m in allowed]}.")
    return method


@dataclasses.dataclass(frozen=True)
class AlignedArray:
  """One source on one window of the reference grid.

  Attributes:
    data: (bands, rows, cols); float32 for continuous sources, the source dtype
      for categorical ones. Invalid pixels hold 0: read `valid`, not the value.
    valid: (rows, cols) boolean mask, True where every band holds data.
  """
  data: np.ndarray
  valid: np.ndarray


def _as_source(source: Source | str | os.PathLike) -> Source:
  return source if isinstance(source, Source) else Source(path=source)


def _as_resolution(resolution) -> tuple[float, float]:
  pair = (resolution, resolution) if np.ndim(resolution) == 0 else resolution
  pair = tuple(float(value) for value in pair)
  if len(pair) != 2 or not all(math.isfinite(v) and v > 0 for v in pair):
    raise ValueError(
        "resolution must be a positive pixel size or a pair (xres, yres), "
        f"got {resolution!r}.")
  return pair


def _snap(value: float, origin: float, step: float, rounding) -> float:
  steps = (value - origin) / step
  nearest = round(steps)
  if abs(steps - nearest) < _SNAP_TOLERANCE:
    steps = nearest
  return origin + rounding(steps) * step


def reference_grid(sources: Sequence[Source | str | os.PathLike], *,
                   crs: CRS | str | None = None, resolution=10.0,
                   bounds: tuple[float, float, float, float] | None = None,
                   ) -> ReferenceGrid:
  """The grid the sources are aligned onto.

  Args:
    sources: the rasters, the optical one first: its CRS and pixel lattice
      define the grid unless `crs` is given.
    crs: the grid's CRS; defaults to the first source's, which must then be
      projected (metric pixels for 10 m tiles and terrain derivatives).
    resolution: pixel size in CRS units, a number or (xres, yres).
    bounds: (left, bottom, right, top) in the grid CRS; defaults to the
      intersection of every source's extent.

  Raises:
    RasterError: a source that cannot be opened, or extents that do not
      overlap (the message names the files).
  """
  sources = [_as_source(source) for source in sources]
  if not sources:
    raise ValueError("reference_grid: at least one source is needed.")
  xres, yres = _as_resolution(resolution)
  extents = []
  for source in sources:
    with io.open_raster(source.path,
                        expected_bands=source.expected_bands) as dataset:
      extents.append((dataset.name, dataset.crs, dataset.bounds,
                      dataset.transform))
  first_name, first_crs, _, first_transform = extents[0]
  if crs is None:
    crs = first_crs
    if crs.is_geographic:
      raise io.RasterError(
          f"{first_name}: the first source's CRS ({crs}) is geographic; pass "
          "a projected `crs` (e.g. the UTM zone) for metric pixels.")
  crs = CRS.from_user_input(crs)

  if bounds is None:
    left, bottom, right, top = -math.inf, -math.inf, math.inf, math.inf
    for index, (name, source_crs, source_bounds, _) in enumerate(extents):
      try:
        b = rasterio.warp.transform_bounds(source_crs, crs, *source_bounds,
                                           densify_pts=21)
      except (rasterio.errors.RasterioError, rasterio.errors.CRSError) as error:
        raise io.RasterError(f"{name}: its extent cannot be transformed from "
                             f"{source_crs} to {crs}: {error}") from error
      left, bottom = max(left, b[0]), max(bottom, b[1])
      right, top = min(right, b[2]), min(top, b[3])
      if left >= right or bottom >= top:
        names = ", ".join(n for n, *_ in extents[:index + 1])
        raise io.RasterError(
            f"the extents of these rasters do not overlap: {names} "
            f"(in {crs}, {name} covers {tuple(round(v, 3) for v in b)}).")
  else:
    left, bottom, right, top = bounds

  # Snap inwards onto the first raster's lattice if it is in the grid CRS, so
  # its pixels are kept as they are; otherwise onto multiples of the pixel size.
  if first_crs == crs:
    x_origin, y_origin = first_transform.c, first_transform.f
  else:
    x_origin, y_origin = 0.0, 0.0
  left = _snap(left, x_origin, xres, math.ceil)
  right = _snap(right, x_origin, xres, math.floor)
  top = _snap(top, y_origin, yres, math.floor)
  bottom = _snap(bottom, y_origin, yres, math.ceil)
  width = round((right - left) / xres)
  height = round((top - bottom) / yres)
  if width <= 0 or height <= 0:
    names = ", ".join(name for name, *_ in extents)
    raise io.RasterError(
        f"the common extent of {names} is smaller than one {xres}x{yres} "
        "pixel.")
  transform = Affine(xres, 0.0, left, 0.0, -yres, top)
  return ReferenceGrid(crs=crs, transform=transform, width=width,
                       height=height)


def _source_window(dataset, grid: ReferenceGrid, window: Window,
                   method: Resampling) -> Window | None:
  """The block of `dataset` that covers `window` of the grid, with a margin."""
  window_bounds = grid.window_bounds(window)
  left, bottom, right, top = rasterio.warp.transform_bounds(
      grid.crs, dataset.crs, *window_bounds, densify_pts=21)
  block = bounds_window((left, bottom, right, top), dataset.transform)
  # The kernel of a downsampling warp spans several source pixels per target
  # pixel; nearest needs one pixel of slack for rounding.
  scale = max(1.0, block.width / max(window.width, 1),
              block.height / max(window.height, 1))
  radius = {Resampling.nearest: 0, Resampling.bilinear: 1,
            Resampling.cubic: 2}.get(method, 1)
  margin = math.ceil(radius * scale) + 1
  block = Window(block.col_off - margin, block.row_off - margin,
                 block.width + 2 * margin, block.height + 2 * margin)
  return io.clip_window(block, dataset.height, dataset.width)


def align_window(dataset: rasterio.DatasetReader, source: Source,
                 grid: ReferenceGrid, window: Window | None = None, *,
                 allow_empty: bool = False) -> AlignedArray:
  """Resamples an open source onto one window of the grid.

  Args:
    dataset: the source, opened with `io.open_raster`.
    source: how to read and resample it.
    grid: the reference grid.
    window: a window of the grid in pixels; the whole grid if None.
    allow_empty: if False, a window without any valid pixel raises an
      `EmptyWindowError` naming the file.
  """
  if window is None:
    window = grid.full_window
  window = Window(int(window.col_off), int(window.row_off), int(window.width),
                  int(window.height))
  method = source.method
  indexes = io.check_band_indexes(dataset, source.bands)
  target = np.full((len(indexes), window.height, window.width), np.nan)
  read = None
  try:
    block = _source_window(dataset, grid, window, method)
    if block is not None:
      read = io.read_window(dataset, block, bands=indexes)
      pixels = np.where(read.valid[None], read.data.astype(np.float64),
                        np.nan)
      rasterio.warp.reproject(
          source=pixels, destination=target,
          src_transform=window_transform(block, dataset.transform),
          src_crs=dataset.crs, src_nodata=np.nan,
          dst_transform=grid.window_transform(window), dst_crs=grid.crs,
          dst_nodata=np.nan, resampling=method)
  except (rasterio.errors.RasterioError, rasterio.errors.CRSError) as error:
    raise io.RasterError(
        f"{dataset.name}: cannot be resampled onto grid window "
        f"{io.window_str(window)} ({grid.crs}): {error}") from error
  valid = np.isfinite(target).all(axis=0)
  if not allow_empty and not valid.any():
    # Bands without a valid pixel in the block read say why, if others have.
    bands = "" if read is None else io.empty_bands(dataset, indexes,
                                                   read.band_valid)
    raise io.EmptyWindowError(
        f"{dataset.name}: grid window {io.window_str(window)} holds no valid "
        f"pixel of this raster (all nodata or outside its extent){bands}.")
  target = np.where(valid[None], target, 0.0)
  dtype = dataset.dtypes[indexes[0] - 1] if source.categorical else np.float32
  return AlignedArray(data=target.astype(dtype), valid=valid)


def read_aligned(source: Source | str | os.PathLike, grid: ReferenceGrid,
                 window: Window | None = None, *,
                 allow_empty: bool = False) -> AlignedArray:
  """Opens one source, resamples it onto a window of the grid and closes it."""
  source = _as_source(source)
  with io.open_raster(source.path,
                      expected_bands=source.expected_bands) as dataset:
    return align_window(dataset, source, grid, window,
                        allow_empty=allow_empty)


class AlignedReader:
  """Reads every source onto windows of one grid, keeping the files open.

  Use as a context manager; `read(window)` returns {source key: AlignedArray}.
  """

  def __init__(self, sources: Iterable[Source | str | os.PathLike],
               grid: ReferenceGrid):
    self.sources = [_as_source(source) for source in sources]
    keys = [source.key for source in self.sources]
    if len(set(keys)) != len(keys):
      raise ValueError(f"AlignedReader: source names must be unique: {keys}.")
    self.grid = grid
    self._datasets = []
    try:
      for source in self.sources:
        self._datasets.append(
            io.open_raster(source.path, expected_bands=source.expected_bands))
    except Exception:
      self.close()
      raise

  def read(self, window: Window | None = None, *,
           allow_empty: bool = False) -> dict[str, AlignedArray]:
    return {
        source.key: align_window(dataset, source, self.grid, window,
                                 allow_empty=allow_empty)
        for source, dataset in zip(self.sources, self._datasets)
    }

  def close(self) -> None:
    for dataset in self._datasets:
      dataset.close()
    self._datasets = []

  def __enter__(self) -> AlignedReader:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
