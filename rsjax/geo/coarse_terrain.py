"""Terrain at the DEM's own resolution, resampled onto the finer grid.

RS-SPADE (rs_spade_multisource_fusion, Sec. 2.1, p. 2) takes S2 and S1 at
10 m and "the Digital Elevation Model (DEM) data, complemented by pertinent
terrain analysis data, ... at a 30-meter resolution" (the Copernicus DEM
GLO-30), and registers every source onto one grid (Sec. 2.2). So the
terrain bands (elevation, slope, aspect, hillshade; `rsjax.geo.terrain`) are
computed on a grid of the DEM's resolution and then brought to the 10 m grid,
instead of computing slope on an elevation already interpolated to 10 m
(which reads the bilinear ramps between 30 m posts as terrain). The paper
names no resampling method; rsjax interpolates bilinearly, as it resamples
every continuous source (`rsjax.geo.align`):

- the coarse grid has the fine grid's CRS and origin and pixels `factor`
  times larger (`coarse_grid`), so with factor 3 each 30 m pixel covers
  3 x 3 pixels of 10 m;
- fine pixel r (centre r + 0.5 in fine pixels) lies at the fractional coarse
  index u = (r + 0.5) / factor - 0.5 (coarse centres at i + 0.5), and takes
  (1 - t) x[floor(u)] + t x[floor(u) + 1], t = u - floor(u), in rows and
  columns (`bilinear`);
- aspect is a direction: its unit vectors (sin, cos) are interpolated and
  turned back into degrees clockwise from north; flat cells (slope 0) carry
  no direction and are left out, and a pixel whose neighbours are all flat
  keeps `terrain.aspect`'s flat value 0 (`bilinear_aspect`);
- a fine pixel is valid where every coarse neighbour with a positive weight
  is (which already needs that neighbour's whole 3x3 DEM neighbourhood).
"""

from __future__ import annotations

import math

import numpy as np
from affine import Affine
from rasterio.windows import Window

from rsjax.geo import align
from rsjax.geo import bands
from rsjax.geo import terrain


def scale_factors(grid: align.ReferenceGrid, resolution: float
                  ) -> tuple[float, float]:
  """(column, row) factors of a `resolution` grid over `grid`'s pixels;
  a resolution finer than the grid's is refused."""
  factors = tuple(float(resolution) / r for r in grid.res)
  if min(factors) < 1.0:
    raise ValueError(f"dem_resolution {resolution} is finer than the grid's "
                     f"{grid.res}; the terrain is computed on the coarser "
                     f"grid and resampled to the finer one.")
  return factors


def coarse_grid(grid: align.ReferenceGrid, resolution: float
                ) -> align.ReferenceGrid:
  """`grid`'s CRS and origin with pixels of `resolution` CRS units."""
  fx, fy = scale_factors(grid, resolution)
  return align.ReferenceGrid(
      crs=grid.crs, transform=grid.transform @ Affine.scale(fx, fy),
      width=math.ceil(grid.width / fx), height=math.ceil(grid.height / fy))


def coarse_positions(offset: int, size: int, factor: float) -> np.ndarray:
  """Fractional coarse indices u of fine pixels offset .. offset + size - 1."""
  return (np.arange(offset, offset + size, dtype=np.float64) + 0.5) / factor \
      - 0.5


def _weights(u: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
  """(index of the lower neighbour relative to `first`, weight of the upper
  one) for fractional indices u."""
  lower = np.floor(u)
  return (lower - first).astype(np.int64), u - lower


def bilinear(values: np.ndarray, valid: np.ndarray, rows_u: np.ndarray,
             cols_u: np.ndarray, first_row: int, first_col: int
             ) -> tuple[np.ndarray, np.ndarray]:
  """Bilinear samples of (rows, cols, ...) `values` at fractional coarse
  indices (rows_u x cols_u); `values[0, 0]` is coarse pixel (first_row,
  first_col). Returns (samples, valid): valid where every neighbour with a
  positive weight is."""
  r, tr = _weights(rows_u, first_row)
  c, tc = _weights(cols_u, first_col)
  extra = (1,) * (values.ndim - 2)
  tr2 = tr.reshape((-1, 1) + extra)
  tc2 = tc.reshape((1, -1) + extra)
  corners = ((0, 0, (1 - tr2) * (1 - tc2)), (0, 1, (1 - tr2) * tc2),
             (1, 0, tr2 * (1 - tc2)), (1, 1, tr2 * tc2))
  out = np.zeros((len(r), len(c)) + values.shape[2:], np.float64)
  ok = np.ones((len(r), len(c)), bool)
  for dr, dc, weight in corners:
    rows = np.minimum(r + dr, values.shape[0] - 1)
    cols = np.minimum(c + dc, values.shape[1] - 1)
    block = values[rows[:, None], cols[None, :]]
    out += weight * block
    used = weight.reshape(weight.shape[:2]) > 0
    ok &= ~used | valid[rows[:, None], cols[None, :]]
  return out, ok


def bilinear_aspect(aspect: np.ndarray, slope: np.ndarray, valid: np.ndarray,
                    rows_u, cols_u, first_row: int, first_col: int
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Aspect (degrees clockwise from north) interpolated as unit vectors;
  flat coarse cells (slope 0) are left out, all-flat pixels get 0."""
  radians = np.deg2rad(aspect.astype(np.float64))
  sloped = slope > 0
  vectors = np.stack([np.sin(radians) * sloped, np.cos(radians) * sloped], -1)
  sampled, ok = bilinear(vectors, valid, rows_u, cols_u, first_row,
                         first_col)
  east, north = sampled[..., 0], sampled[..., 1]
  degrees = np.mod(np.rad2deg(np.arctan2(east, north)), 360.0)
  return np.where(np.hypot(east, north) > 0, degrees, 0.0), ok


def read_terrain(read_coarse, grid: align.ReferenceGrid, window: Window,
                 resolution: float) -> tuple[np.ndarray, np.ndarray]:
  """`bands.TERRAIN_BANDS` (rows, cols, 4) float32 and valid on `window` of
  the fine `grid`, computed on the `resolution` grid.

  `read_coarse(coarse_grid, coarse_window)` returns the elevation
  (`align.AlignedArray`) on a window of the coarse grid; it is called once,
  for the coarse pixels the window's samples need plus a one-pixel halo
  for the 3x3 terrain gradient.
  """
  coarse = coarse_grid(grid, resolution)
  fx, fy = scale_factors(grid, resolution)
  rows_u = coarse_positions(int(window.row_off), int(window.height), fy)
  cols_u = coarse_positions(int(window.col_off), int(window.width), fx)
  row0, col0 = int(np.floor(rows_u[0])), int(np.floor(cols_u[0]))
  row1, col1 = int(np.floor(rows_u[-1])) + 1, int(np.floor(cols_u[-1])) + 1
  halo = Window(col0 - 1, row0 - 1, col1 - col0 + 3, row1 - row0 + 3)
  aligned = read_coarse(coarse, halo)
  elevation = aligned.data[0].astype(np.float32)
  res = coarse.res
  slope = terrain.slope(elevation, res=res)[1:-1, 1:-1]
  derived = {
      "elevation": elevation[1:-1, 1:-1],
      "slope": slope,
      "hillshade": terrain.hillshade(elevation, res=res)[1:-1, 1:-1]}
  valid = erode3(aligned.valid)
  scalar = np.stack([derived[b] for b in ("elevation", "slope", "hillshade")],
                    -1)
  sampled, ok = bilinear(scalar, valid, rows_u, cols_u, row0, col0)
  aspect, _ = bilinear_aspect(
      terrain.aspect(elevation, res=res)[1:-1, 1:-1], slope, valid, rows_u,
      cols_u, row0, col0)
  out = {"elevation": sampled[..., 0], "slope": sampled[..., 1],
         "hillshade": sampled[..., 2], "aspect": aspect}
  data = np.stack([out[b] for b in bands.TERRAIN_BANDS], -1)
  return np.where(ok[..., None], data, 0.0).astype(np.float32), ok


def erode3(mask: np.ndarray) -> np.ndarray:
  """True where the whole 3x3 neighbourhood is True; shape shrinks by 2."""
  rows, cols = mask.shape[0] - 2, mask.shape[1] - 2
  out = np.ones((rows, cols), bool)
  for dr in range(3):
    for dc in range(3):
      out &= mask[dr:dr + rows, dc:dc + cols]
  return out
