"""Terrain derivatives against hand-computed Horn cases and gdaldem's formulas."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.geo import terrain


def plane(rows, cols, *, east, north, res=(1.0, 1.0)):
  """z rising by `east` per map unit towards east and `north` towards north."""
  xres, yres = res
  x = np.arange(cols) * xres
  y = -np.arange(rows) * yres  # Row 0 is the northernmost.
  return east * x[None, :] + north * y[:, None]


def gdaldem_reference(dem, xres, yres, azimuth, altitude):
  """gdaldem's Horn formulas, cell by cell, on an edge-replicated DEM.

  Written from GDAL's documented algorithm with its own sign conventions
  (window w[0..8] row-major, dx = right - left, dy = bottom - top), as an
  independent check of the vectorized implementation.
  """
  padded = np.pad(dem.astype(np.float64), 1, mode="edge")
  rows, cols = dem.shape
  slope = np.zeros((rows, cols))
  aspect = np.zeros((rows, cols))
  shade = np.zeros((rows, cols))
  az, alt = math.radians(azimuth), math.radians(altitude)
  for r in range(rows):
    for c in range(cols):
      w = padded[r:r + 3, c:c + 3].ravel()
      dx = ((w[2] + 2 * w[5] + w[8]) - (w[0] + 2 * w[3] + w[6])) / (8 * xres)
      dy = ((w[6] + 2 * w[7] + w[8]) - (w[0] + 2 * w[1] + w[2])) / (8 * yres)
      slope[r, c] = math.degrees(math.atan(math.sqrt(dx * dx + dy * dy)))
      if dx == 0 and dy == 0:
        aspect[r, c] = 0.0
      else:
        angle = math.degrees(math.atan2(dy, -dx))
        angle = 450.0 - angle if angle > 90.0 else 90.0 - angle
        aspect[r, c] = 0.0 if angle == 360.0 else angle
      # gdaldem hillshade: x = left - right, y = (bottom - top) / nsres with a
      # negative nsres (north-up), i.e. y = top - bottom.
      x, y = -dx, -dy
      cang = (math.sin(alt) - (y * math.cos(az) * math.cos(alt)
                               - x * math.sin(az) * math.cos(alt)))
      cang /= math.sqrt(1 + x * x + y * y)
      shade[r, c] = max(cang, 0.0)
  return slope, aspect, shade


def test_plane_with_known_gradient_gives_exact_slope_and_aspect():
  dem = plane(6, 7, east=3.0, north=4.0, res=(10.0, 10.0))
  inner = (slice(1, -1), slice(1, -1))
  np.testing.assert_allclose(terrain.slope(dem, res=10.0)[inner],
                             math.degrees(math.atan(5.0)), rtol=1e-12)
  # Rising to the north-east: the slope faces (descends towards) south-west.
  np.testing.assert_allclose(terrain.aspect(dem, res=10.0)[inner],
                             180.0 + math.degrees(math.atan2(3.0, 4.0)),
                             rtol=1e-12)


def test_edge_replication_halves_the_gradient_across_the_border():
  dem = plane(5, 6, east=2.0, north=0.0)
  gradient_x, gradient_y = terrain.horn_gradient(dem, res=1.0)
  np.testing.assert_allclose(gradient_x[:, 1:-1], 2.0, rtol=1e-12)
  # The replicated column duplicates the edge cell: (z1 - z0) / 2.
  np.testing.assert_allclose(gradient_x[:, [0, -1]], 1.0, rtol=1e-12)
  np.testing.assert_array_equal(gradient_y, 0.0)
  assert terrain.slope(dem, res=1.0).shape == dem.shape


@pytest.mark.parametrize("east, north, expected", [
    (-1.0, 0.0, 90.0),   # falls towards east: east-facing
    (0.0, -1.0, 0.0),    # falls towards north: north-facing
    (1.0, 0.0, 270.0),   # west-facing
    (0.0, 1.0, 180.0),   # south-facing
    (-1.0, -1.0, 45.0),  # north-east-facing
])
def test_aspect_of_facing_planes(east, north, expected):
  dem = plane(5, 5, east=east, north=north)
  result = terrain.aspect(dem, res=1.0)
  np.testing.assert_allclose(result[1:-1, 1:-1], expected, atol=1e-9)
  assert ((result >= 0) & (result < 360)).all()


def test_slope_of_45_degree_plane_uses_the_resolution():
  dem = plane(4, 4, east=2.0, north=0.0, res=(2.0, 2.0)) / 2.0
  np.testing.assert_allclose(terrain.slope(dem, res=2.0)[:, 1:-1], 45.0,
                             rtol=1e-12)
  # Rectangular pixels: a plane sampled at (xres, yres) = (3, 0.5).
  dem = plane(5, 5, east=0.5, north=2.0, res=(3.0, 0.5))
  expected = math.degrees(math.atan(math.hypot(0.5, 2.0)))
  np.testing.assert_allclose(terrain.slope(dem, res=(3.0, 0.5))[1:-1, 1:-1],
                             expected, rtol=1e-12)


def test_flat_dem_gets_flat_value_and_zenith_hillshade():
  dem = np.full((4, 5), 123.0)
  np.testing.assert_array_equal(terrain.slope(dem, res=30.0), 0.0)
  np.testing.assert_array_equal(terrain.aspect(dem, res=30.0), 0.0)
  np.testing.assert_array_equal(
      terrain.aspect(dem, res=30.0, flat_value=-1.0), -1.0)
  np.testing.assert_allclose(terrain.hillshade(dem, res=30.0, altitude=30.0),
                             0.5, rtol=1e-12)


def test_hillshade_of_planes_facing_and_away_from_the_sun():
  facing_sun = plane(5, 5, east=0.0, north=-1.0)  # 45 deg, faces north
  shade = terrain.hillshade(facing_sun, res=1.0, azimuth=0.0, altitude=45.0)
  np.testing.assert_allclose(shade[1:-1], 1.0, rtol=1e-12)  # Normal points at sun.
  away = plane(5, 5, east=0.0, north=2.0)
  shade = terrain.hillshade(away, res=1.0, azimuth=0.0, altitude=20.0)
  np.testing.assert_array_equal(shade, 0.0)  # In its own shadow: clipped.


def test_matches_gdaldem_formulas_on_a_random_dem():
  rng = np.random.default_rng(0)
  dem = rng.normal(size=(9, 11)).cumsum(0).cumsum(1) * 5.0
  dem[3:5, 4:6] = dem[3, 4]  # A flat patch keeps the flat branch honest.
  xres, yres = 10.0, 12.5
  slope, aspect, shade = gdaldem_reference(dem, xres, yres, 300.0, 35.0)
  res = (xres, yres)
  np.testing.assert_allclose(terrain.slope(dem, res=res), slope, atol=1e-9)
  np.testing.assert_allclose(terrain.aspect(dem, res=res), aspect, atol=1e-9)
  np.testing.assert_allclose(
      terrain.hillshade(dem, res=res, azimuth=300.0, altitude=35.0), shade,
      atol=1e-12)


def test_jax_and_numpy_agree_and_keep_shape_without_nan():
  rng = np.random.default_rng(1)
  dem = (rng.normal(size=(2, 8, 6)) * 20).astype(np.float32)
  for function in (terrain.slope, terrain.aspect, terrain.hillshade):
    expected = function(dem, res=(10.0, 20.0))
    jitted = jax.jit(lambda d, f=function: f(d, res=(10.0, 20.0)))
    result = jitted(jnp.asarray(dem))
    assert isinstance(result, jax.Array)
    assert isinstance(expected, np.ndarray)
    assert result.shape == expected.shape == dem.shape
    assert result.dtype == expected.dtype == np.float32
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(np.asarray(result), expected, atol=1e-3)


def test_integer_dem_and_single_pixel():
  dem = np.arange(12, dtype=np.int16).reshape(3, 4)
  assert terrain.slope(dem, res=1.0).dtype == np.float32
  np.testing.assert_array_equal(terrain.slope(np.ones((1, 1)), res=1.0), 0.0)


@pytest.mark.parametrize("res", [0.0, -10.0, (10.0, 0.0), (1.0, 2.0, 3.0),
                                 float("nan"), "10"])
def test_bad_resolution_raises(res):
  for function in (terrain.horn_gradient, terrain.slope, terrain.aspect,
                   terrain.hillshade):
    with pytest.raises(ValueError,
                       match=f"^{function.__name__}: res must be a positive"):
      function(np.zeros((3, 3)), res=res)


def test_dem_shape_error_and_float_dtypes_kept():
  with pytest.raises(ValueError, match=r"expected a DEM of shape \(\.\.\., "
                     r"rows, cols\), got shape \(5,\)"):
    terrain.slope(np.zeros(5), res=1.0)
  # Floating DEMs keep their precision; only integers become float32.
  for dtype in (np.float16, np.float64):
    assert terrain.slope(np.ones((3, 3), dtype), res=1.0).dtype == dtype


def test_aspect_rounding_to_360_is_north():
  """atan2 of a descent a hair west of north is a tiny negative angle; in
  float32, 360 plus it rounds to 360.0, which is north and must read 0."""
  dem = (np.arange(3)[:, None] + np.arange(3)[None, :]).astype(np.float32)
  # dz/dx = 1e-9 (rows 1 apart, xres 1e9), dz/dy = -1: the angle is -1e-9 rad.
  for xp in (np, jnp):
    np.testing.assert_array_equal(
        terrain.aspect(xp.asarray(dem), res=(1e9, 1.0)), 0.0)


def test_hillshade_defaults_are_gdaldems_sun():
  """gdaldem's default sun: azimuth 315 (north-west), altitude 45 degrees."""
  rng = np.random.default_rng(3)
  dem = rng.normal(size=(6, 7)).cumsum(0).cumsum(1) * 8.0
  *_, shade = gdaldem_reference(dem, 10.0, 10.0, 315.0, 45.0)
  np.testing.assert_allclose(terrain.hillshade(dem, res=10.0), shade,
                             atol=1e-12)
