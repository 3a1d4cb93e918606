"""Scenes and outputs without data: refused, naming the file, band and why.

An input band without a single valid pixel over the scene's grid (every
value NaN, the file's nodata, or, for land cover and cloud masks, outside the
class table, as `rsjax.geo.scene.SceneReader` reads them) can only give an
output that is nodata everywhere. `check_inputs_have_data` scans every band
of every source file over the part of the file that covers the grid, strip
by strip (`STRIP_PIXELS` pixels a read, so memory stays bounded), and stops
reading a band at its first valid pixel: a scene with data costs one strip
per band, only an empty band is read whole. Full-scene inference runs it
before any window is predicted and before any output file is created; a
`NoDataError` names every empty band at once (file, band number and name).

An output can still be all nodata when each input has data: where the
sources' valid areas do not meet (a pixel is valid where every source has
data), or where the generator's predictions are not finite. Inference counts
the valid pixels it writes and, if there are none, raises
`empty_output_error`'s `NoDataError` naming the output and the reason
instead of publishing it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import rasterio.warp
from rasterio.windows import Window

from rsjax.geo import align, io
from rsjax.geo import scene as scene_lib

STRIP_PIXELS = 1 << 20   # pixels of one band read at once (4 MB as float32)


class NoDataError(ValueError):
  """An input band or the output holds no valid pixel over the scene.

  Attributes:
    problems: one line per empty band (or the output's reason).
  """

  def __init__(self, message: str, problems: Sequence[str] = ()):
    super().__init__(message)
    self.problems = tuple(problems)


def _grid_block(dataset, grid: align.ReferenceGrid) -> Window | None:
  """The window of `dataset` covering the grid's extent (None: outside)."""
  bounds = rasterio.warp.transform_bounds(grid.crs, dataset.crs, *grid.bounds,
                                          densify_pts=21)
  return io.clip_window(align.bounds_window(bounds, dataset.transform),
                        dataset.height, dataset.width)


def empty_bands(dataset, grid: align.ReferenceGrid, *,
                class_limit: int | None = None) -> list[int]:
  """1-based bands of an open raster without a valid pixel over the grid.

  Valid: unmasked by GDAL (nodata, mask band), finite, and for class rasters
  (`class_limit` given) in [0, class_limit).
  """
  remaining = list(range(1, dataset.count + 1))
  block = _grid_block(dataset, grid)
  if block is None:
    return remaining
  rows = max(1, STRIP_PIXELS // block.width)
  stop = block.row_off + block.height
  for row in range(block.row_off, stop, rows):
    strip = Window(block.col_off, row, block.width, min(rows, stop - row))
    for band in list(remaining):
      read = io.read_window(dataset, strip, bands=[band])
      valid = read.valid
      if class_limit is not None:
        valid = valid & (read.data[0] >= 0) & (read.data[0] < class_limit)
      if valid.any():
        remaining.remove(band)
    if not remaining:
      break
  return remaining


def check_inputs_have_data(inputs: scene_lib.SceneReader,
                           names: Sequence[str] | None = None) -> None:
  """NoDataError naming each band of the sources `names` (default: all of
  `inputs`) that has no valid pixel over `inputs.grid`."""
  grid = inputs.grid
  problems = []
  for name in names if names is not None else inputs.sources:
    path = os.fspath(inputs.sources[name].path)
    spec = scene_lib.SOURCE_SPECS[name]
    with io.open_raster(path, expected_bands=spec.bands) as dataset:
      empty = empty_bands(dataset, grid, class_limit=spec.class_limit)
    for band in empty:
      classes = (f" or outside the classes 0..{spec.class_limit - 1}"
                 if spec.class_limit is not None else "")
      problems.append(
          f"{path}: band {band} ({spec.band_names[band - 1]}) of source "
          f"{name!r} is NaN or nodata{classes} at every pixel over the grid")
  if problems:
    raise NoDataError(
        f"{len(problems)} input band(s) hold no data over the scene's grid "
        f"({grid.crs.to_string()}, {grid.width}x{grid.height} pixels of "
        f"{grid.res[0]:g} m), so every output pixel would be nodata; fix or "
        "replace the file (--source NAME=PATH):\n  " + "\n  ".join(problems),
        problems)


def empty_output_error(output: str | os.PathLike, fields: Sequence[str],
                       valid_input_pixels: int) -> NoDataError:
  """The NoDataError for an output whose every pixel would be nodata."""
  if valid_input_pixels == 0:
    why = (f"no pixel of the grid has data in every input {list(fields)} at "
           "once (each has data, but their valid areas do not meet)")
  else:
    why = (f"the generator's prediction is not finite (NaN or inf) at all "
           f"{valid_input_pixels} pixels where the inputs have data")
  message = (f"{os.fspath(output)}: not written, every pixel would be "
             f"nodata: {why}.")
  return NoDataError(message, [message])
