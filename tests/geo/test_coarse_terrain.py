"""rsjax.geo.coarse_terrain: RS-SPADE's terrain at the DEM's 30 m (Sec. 2.1),
resampled onto the 10 m grid."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from scipy import ndimage

from rsjax.geo import bands, coarse_terrain, terrain
from rsjax.geo import scene as scene_lib

ORIGIN = (500_000.0, 5_200_000.0)   # west, north of the DEM (UTM 33N)
BAND = {name: i for i, name in enumerate(bands.TERRAIN_BANDS)}


def _write_dem(path, elevation, res=30.0):
  rows, cols = elevation.shape
  with rasterio.open(path, "w", driver="GTiff", width=cols, height=rows,
                     count=1, dtype="float32", crs="EPSG:32633",
                     transform=Affine(res, 0, ORIGIN[0], 0, -res, ORIGIN[1]),
                     nodata=-9999.0) as out:
    out.write(elevation.astype(np.float32)[None])
  return str(path)


def _read(path, window, dem_resolution):
  with scene_lib.SceneReader({"dem": path}, resolution=10.0,
                             dem_resolution=dem_resolution) as reader:
    assert reader.grid.res == (10.0, 10.0)
    assert reader.grid.transform.c == ORIGIN[0]
    assert reader.grid.transform.f == ORIGIN[1]
    arrays, valid = reader.read(window)
  return arrays["dem"], valid


def test_plane_at_30_m_gives_the_plane_and_its_slope_on_10_m(tmp_path):
  """z = 100 + 0.1 east + 0.05 north, 30 m posts. Bilinear interpolation of
  a plane is the plane, Horn's gradient of a plane is exact, so every 10 m
  pixel holds z at its centre, slope atan(hypot(0.1, 0.05)) = 6.3794 deg and
  aspect atan2(-0.1, -0.05) mod 360 = 243.435 deg (down-slope to the
  south-west). Tolerances: elevations near 100 m in float32 are exact to
  ~1e-5 m; slope and aspect from 30 m differences of such values to 1e-5
  deg, given 1e-4."""
  rows, cols = np.mgrid[0:20, 0:20]
  east, north = 30.0 * (cols + 0.5), -30.0 * (rows + 0.5)
  path = _write_dem(tmp_path / "dem.tif", 100 + 0.1 * east + 0.05 * north)
  window = Window(7, 5, 24, 30)
  dem, valid = _read(path, window, 30.0)
  assert dem.shape == (30, 24, 4) and valid.all()
  fine_rows, fine_cols = np.mgrid[5:35, 7:31]
  expected = 100 + 0.1 * 10.0 * (fine_cols + 0.5) - 0.05 * 10.0 * (
      fine_rows + 0.5)
  np.testing.assert_allclose(dem[..., BAND["elevation"]], expected, atol=1e-4)
  np.testing.assert_allclose(dem[..., BAND["slope"]], 6.379370208442807,
                             atol=1e-4)
  np.testing.assert_allclose(dem[..., BAND["aspect"]], 243.43494882292202,
                             atol=1e-4)


def test_rough_terrain_is_derived_at_30_m_then_interpolated(tmp_path):
  """A random 30 m DEM: each band on the 10 m window equals scipy's linear
  interpolation (`map_coordinates`, order 1) of that band computed on the
  30 m raster, at the fine centres' coarse positions (r + 0.5) / 3 - 0.5.
  Not the same as slope on an elevation first interpolated to 10 m (the
  default), which the test also checks. float64 interpolation of float32
  bands: 1e-4 of a degree / a metre is far above the rounding (float32
  posts below 50 m are within 2e-6 m; slopes of tens of degrees within
  1e-5 deg); aspect's float32 error (~1e-5 deg) grows by at most 1 / 0.1
  where the interpolated vector is longer than 0.1: 1e-3 deg."""
  elevation = np.random.default_rng(0).uniform(0, 50, (16, 16)).astype(
      np.float32)
  path = _write_dem(tmp_path / "dem.tif", elevation)
  window = Window(6, 9, 20, 18)
  dem, valid = _read(path, window, 30.0)
  assert valid.all()
  rows_u = (np.arange(9, 27) + 0.5) / 3 - 0.5
  cols_u = (np.arange(6, 26) + 0.5) / 3 - 0.5
  coords = np.meshgrid(rows_u, cols_u, indexing="ij")
  for name in ("elevation", "slope", "hillshade"):
    band = elevation if name == "elevation" else getattr(terrain, name)(
        elevation, res=(30.0, 30.0))
    expected = ndimage.map_coordinates(band.astype(np.float64), coords,
                                       order=1)
    np.testing.assert_allclose(dem[..., BAND[name]], expected, atol=1e-4,
                               err_msg=name)
  # Aspect: the 30 m aspects' unit vectors interpolated the same way
  # (random terrain has no flat cell), back to degrees; compared circularly.
  slope30 = terrain.slope(elevation, res=(30.0, 30.0))
  assert (slope30 > 0).all()
  radians = np.deg2rad(terrain.aspect(elevation, res=(30.0, 30.0)).astype(
      np.float64))
  east, north = (ndimage.map_coordinates(f(radians), coords, order=1)
                 for f in (np.sin, np.cos))
  turn = (dem[..., BAND["aspect"]] - np.rad2deg(np.arctan2(east, north))
          + 180.0) % 360.0 - 180.0
  steady = np.hypot(east, north) > 0.1   # not where directions cancel
  assert steady.mean() > 0.9
  np.testing.assert_allclose(turn[steady], 0.0, atol=1e-3)
  on_grid, _ = _read(path, window, None)
  assert np.abs(on_grid[..., BAND["slope"]] - dem[..., BAND["slope"]]).max() > 1


def test_aspect_is_interpolated_as_a_direction():
  """Half-way between 350 and 10 deg is 0 (north), not 180; a flat cell
  (slope 0) adds no direction, and all-flat neighbours give 0."""
  aspect = np.array([[350.0, 10.0], [90.0, 0.0]])
  slope = np.array([[5.0, 5.0], [0.0, 0.0]])
  valid = np.ones((2, 2), bool)
  out, ok = coarse_terrain.bilinear_aspect(
      aspect, slope, valid, np.array([0.0, 1.0]), np.array([0.5]), 0, 0)
  assert ok.all()
  np.testing.assert_allclose(np.mod(out[0, 0] + 180, 360) - 180, 0.0,
                             atol=1e-9)
  assert out[1, 0] == 0.0           # both neighbours flat


def test_a_hole_in_the_30_m_dem_reaches_the_10_m_pixels_that_use_it(tmp_path):
  """A nodata 30 m post invalidates the 3x3 posts whose gradient needs it,
  and every 10 m pixel with a positive weight on one of those."""
  elevation = np.full((12, 12), 10.0, np.float32)
  elevation[6, 6] = -9999.0
  path = _write_dem(tmp_path / "dem.tif", elevation)
  dem, valid = _read(path, Window(0, 0, 36, 36), 30.0)
  rows_u = (np.arange(36) + 0.5) / 3 - 0.5
  lower = np.floor(rows_u)
  touches = ((lower <= 7) & (lower + (rows_u > lower) >= 5))
  expected_invalid = touches[:, None] & touches[None, :]
  # Away from the DEM's edge (posts 0 and 11 lack a neighbour: fine rows
  # 0-3 and 32-35 use them), only the hole's pixels are invalid.
  np.testing.assert_array_equal(~valid[4:32, 4:32],
                                expected_invalid[4:32, 4:32])
  assert not valid[:4].any() and valid[4, 4:32].all()
  assert (dem[~valid] == 0).all()


def test_a_resolution_finer_than_the_grid_is_refused(tmp_path):
  path = _write_dem(tmp_path / "dem.tif", np.zeros((8, 8), np.float32))
  with pytest.raises(ValueError, match="finer than the grid"):
    _read(path, Window(0, 0, 8, 8), 5.0)
