"""Terrain derivatives of a DEM: slope, aspect and hillshade, as in gdaldem.

All three use Horn's (1981) 3x3 gradient, the default of GDAL's `gdaldem`.
With the 3x3 neighbourhood of a cell (row 0 is north, column 0 is west)

    a b c
    d e f
    g h i

the gradient towards east (x) and north (y) is

    dz/dx = ((c + 2f + i) - (a + 2d + g)) / (8 * xres)
    dz/dy = ((a + 2b + c) - (g + 2h + i)) / (8 * yres)

and, with gdaldem's formulas,

    slope     = atan(sqrt(dz/dx^2 + dz/dy^2))                 in degrees
    aspect    = direction of steepest descent, clockwise from north, in
                [0, 360): atan2(-dz/dx, -dz/dy); `flat_value` where the
                gradient is exactly zero
    hillshade = max(0, (sin(alt) - cos(alt) * (sin(az) dz/dx + cos(az) dz/dy))
                       / sqrt(1 + dz/dx^2 + dz/dy^2))

hillshade is the cosine of the angle between the surface normal
(-dz/dx, -dz/dy, 1) and the direction of the sun (azimuth `az` clockwise from
north, `altitude` above the horizon), clipped at 0; gdaldem's byte output is
1 + 254 times this value (0 in shadow becomes 1). gdaldem's aspect uses the
raw differences (square pixels); here the differences are divided by the pixel
size, which is identical for square pixels and correct for rectangular ones.

Edge cells use edge replication (the DEM is padded by repeating its border), so
the output has the input's shape and is never NaN for finite input.

The pixel size `res` must be in the same unit as the elevations (metres). The
Copernicus DEM is distributed in EPSG:4326 (pixel size in degrees): compute the
derivatives after aligning it onto the metric reference grid (`rsjax.geo.align`),
never on the geographic grid.

Every function takes numpy or jax arrays of shape (..., rows, cols) and returns
the same kind of array; jax inputs work under `jit` and `vmap`.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np


def _namespace(dem):
  return jnp if isinstance(dem, jax.Array) else np


def _check_res(name: str, res) -> tuple[float, float]:
  values = (res, res) if np.ndim(res) == 0 else tuple(res)
  if all(isinstance(v, numbers.Real) and not isinstance(v, bool)
         for v in values):
    values = tuple(float(value) for value in values)
  else:
    values = ()
  if len(values) != 2 or not all(math.isfinite(v) and v > 0 for v in values):
    raise ValueError(
        f"{name}: res must be a positive pixel size in map units, a number or "
        f"a pair (xres, yres), got {res!r}.")
  return values


def _as_float(xp, dem):
  dem = xp.asarray(dem)
  if dem.ndim < 2:
    raise ValueError(
        f"expected a DEM of shape (..., rows, cols), got shape {dem.shape}.")
  if not xp.issubdtype(dem.dtype, xp.floating):
    dem = dem.astype(xp.float32)
  return dem


def horn_gradient(dem, *, res):
  """Horn's gradient (dz/dx towards east, dz/dy towards north) of a DEM.

  Args:
    dem: elevations, shape (..., rows, cols), north-up (row 0 is north).
    res: pixel size in the elevations' unit, a number or (xres, yres).

  Returns:
    (dz_dx, dz_dy), each of the DEM's shape.
  """
  xres, yres = _check_res("horn_gradient", res)
  xp = _namespace(dem)
  dem = _as_float(xp, dem)
  pad = [(0, 0)] * (dem.ndim - 2) + [(1, 1), (1, 1)]
  padded = xp.pad(dem, pad, mode="edge")
  rows, cols = dem.shape[-2:]

  def cell(row, col):  # The neighbour at offset (row - 1, col - 1).
    return padded[..., row:row + rows, col:col + cols]

  a, b, c = cell(0, 0), cell(0, 1), cell(0, 2)
  d, f = cell(1, 0), cell(1, 2)
  g, h, i = cell(2, 0), cell(2, 1), cell(2, 2)
  dz_dx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * xres)
  dz_dy = ((a + 2 * b + c) - (g + 2 * h + i)) / (8 * yres)
  return dz_dx, dz_dy


def slope(dem, *, res):
  """Slope in degrees, in [0, 90): atan of the Horn gradient's magnitude."""
  _check_res("slope", res)
  xp = _namespace(dem)
  dz_dx, dz_dy = horn_gradient(dem, res=res)
  return xp.degrees(xp.arctan(xp.sqrt(dz_dx**2 + dz_dy**2)))


def aspect(dem, *, res, flat_value: float = 0.0):
  """Aspect in degrees clockwise from north, in [0, 360).

  The direction the slope faces (steepest descent): 0 north, 90 east, 180
  south, 270 west. Cells whose gradient is exactly zero get `flat_value`.
  """
  _check_res("aspect", res)
  xp = _namespace(dem)
  dz_dx, dz_dy = horn_gradient(dem, res=res)
  degrees = xp.mod(xp.degrees(xp.arctan2(-dz_dx, -dz_dy)), 360.0)
  degrees = xp.where(degrees >= 360.0, 0.0, degrees)
  flat = (dz_dx == 0) & (dz_dy == 0)
  return xp.where(flat, xp.asarray(flat_value, degrees.dtype), degrees)


def hillshade(dem, *, res, azimuth: float = 315.0, altitude: float = 45.0):
  """Hillshade in [0, 1]: cos of the angle between normal and sun, >= 0.

  Args:
    dem: elevations, shape (..., rows, cols), north-up.
    res: pixel size in the elevations' unit, a number or (xres, yres).
    azimuth: direction of the sun in degrees clockwise from north.
    altitude: elevation of the sun above the horizon in degrees.
  """
  _check_res("hillshade", res)
  xp = _namespace(dem)
  dz_dx, dz_dy = horn_gradient(dem, res=res)
  azimuth_rad, altitude_rad = math.radians(azimuth), math.radians(altitude)
  cosine = (math.sin(altitude_rad) - math.cos(altitude_rad) * (
      math.sin(azimuth_rad) * dz_dx + math.cos(azimuth_rad) * dz_dy))
  cosine = cosine / xp.sqrt(1 + dz_dx**2 + dz_dy**2)
  return xp.clip(cosine, 0.0, 1.0)
