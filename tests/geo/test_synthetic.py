"""Tests for rsjax.geo.synthetic: files, determinism and physical coherence.

The checks are independent of the generator's internals: the DEM is
reprojected onto the LULC grid with GDAL (rasterio.warp.reproject) and its
slope and hillshade are recomputed here with np.gradient.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from scipy import ndimage
from rasterio.warp import Resampling, reproject, transform_bounds

from rsjax.geo import synthetic, synthetic_fields
from tests.geo import synthetic_fingerprint

SIZE = 128
CHANGE = 0.2
CLOUDS = 0.3
RATIO = 4
WATER, TREES, GRASS, CROPS, BARE, SNOW = 0, 1, 2, 4, 7, 8


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
  return synthetic.make_scene(
      3, tmp_path_factory.mktemp("scene"), size=SIZE, change_fraction=CHANGE,
      coarse_ratio=RATIO, cloud_coverage=CLOUDS)


def _read(scene, name):
  with rasterio.open(scene.paths[name]) as src:
    return src.read()


@pytest.fixture(scope="module")
def dem_on_lulc_grid(scene):
  """The DEM resampled onto the 10 m UTM grid by GDAL, and its slope."""
  with rasterio.open(scene.paths["dem"]) as src:
    elevation = np.zeros(scene.shape, np.float32)
    reproject(src.read(1), elevation, src_transform=src.transform,
              src_crs=src.crs, dst_transform=scene.transform,
              dst_crs=scene.crs, resampling=Resampling.bilinear)
  grad_north, grad_east = np.gradient(elevation.astype(np.float64),
                                      scene.resolution_m)
  grad_north = -grad_north  # rows grow southwards
  slope = np.rad2deg(np.arctan(np.hypot(grad_east, grad_north)))
  return elevation, grad_east, grad_north, slope


def _lulc_under_sar(scene, lulc):
  """The LULC class under every SAR pixel centre (255 outside the LULC grid)."""
  with rasterio.open(scene.paths["s1"]) as src:
    cols, rows = np.meshgrid(np.arange(src.width) + 0.5,
                             np.arange(src.height) + 0.5)
    xs, ys = src.transform @ (cols, rows)
  lulc_cols, lulc_rows = ~scene.transform @ (xs, ys)
  lulc_rows = np.floor(lulc_rows).astype(int)
  lulc_cols = np.floor(lulc_cols).astype(int)
  inside = ((lulc_rows >= 0) & (lulc_rows < lulc.shape[0]) & (lulc_cols >= 0)
            & (lulc_cols < lulc.shape[1]))
  under = np.full(xs.shape, 255)
  under[inside] = lulc[lulc_rows[inside], lulc_cols[inside]]
  return under


def test_files_have_the_right_crs_dtype_bands_and_resolution(scene):
  expected = {
      "lulc": ("uint8", 1, "EPSG:32633", 10.0, 255),
      "s2": ("uint16", 4, "EPSG:32633", 10.0, 0),
      "s1": ("float32", 2, "EPSG:32633", 10.0, 0),
      "dem": ("float32", 1, "EPSG:4326", 1 / 3600, -9999),
      "lulc_t2": ("uint8", 1, "EPSG:32633", 10.0, 255),
      "s2_t2": ("uint16", 4, "EPSG:32633", 10.0, 0),
      "s1_t2": ("float32", 2, "EPSG:32633", 10.0, 0),
      "s2_coarse": ("uint16", 4, "EPSG:32633", 10.0 * RATIO, 0),
      "s2_cloudy": ("uint16", 4, "EPSG:32633", 10.0, 0),
      "cloud_mask": ("uint8", 1, "EPSG:32633", 10.0, 255),
  }
  assert set(scene.paths) == set(expected)
  for name, (dtype, count, crs, res, nodata) in expected.items():
    with rasterio.open(scene.paths[name]) as src:
      assert src.dtypes == (dtype,) * count, name
      assert src.crs == rasterio.crs.CRS.from_string(crs), name
      np.testing.assert_allclose(src.res, (res, res), rtol=1e-9, err_msg=name)
      assert src.nodata == nodata, name
  with rasterio.open(scene.paths["s2"]) as src:
    assert src.descriptions == ("B2", "B3", "B4", "B8")
    assert src.shape == (SIZE, SIZE) and src.transform == scene.transform
  with rasterio.open(scene.paths["s1"]) as src:
    assert src.descriptions == ("VV", "VH")
    # The SAR grid is shifted by a non-integer number of pixels.
    shift = ~scene.transform @ (src.transform.c, src.transform.f)
    np.testing.assert_allclose(shift, (3.5, 2.25))


def test_dem_covers_the_optical_and_sar_extents(scene):
  with rasterio.open(scene.paths["dem"]) as dem:
    for name in ("s2", "s1"):
      with rasterio.open(scene.paths[name]) as src:
        west, south, east, north = transform_bounds(src.crs, dem.crs,
                                                    *src.bounds)
      assert dem.bounds.left < west and dem.bounds.right > east
      assert dem.bounds.bottom < south and dem.bounds.top > north
    assert np.all(np.isfinite(dem.read(1)))


def test_same_seed_gives_the_same_bytes(scene, tmp_path):
  again = synthetic.make_scene(
      3, tmp_path / "again", size=SIZE, change_fraction=CHANGE,
      coarse_ratio=RATIO, cloud_coverage=CLOUDS)
  for name, path in scene.paths.items():
    assert path.read_bytes() == again.paths[name].read_bytes(), name
  other = synthetic.make_scene(4, tmp_path / "other", size=SIZE)
  assert not np.array_equal(_read(scene, "lulc"), _read(other, "lulc"))
  assert not np.array_equal(_read(scene, "s1"), _read(other, "s1"))


def test_land_cover_follows_the_terrain(scene, dem_on_lulc_grid):
  lulc = _read(scene, "lulc")[0]
  elevation, _, _, slope = dem_on_lulc_grid
  assert (lulc < 9).all()
  water, snow, trees = lulc == WATER, lulc == SNOW, lulc == TREES
  assert water.mean() > 0.03 and snow.mean() > 0.03 and trees.mean() > 0.1
  # Water is low, snow is high.
  assert np.median(elevation[water]) < np.quantile(elevation, 0.15)
  assert np.median(elevation[snow]) > np.quantile(elevation, 0.85)
  # Lakes are flat; forests stand on slopes steeper than crop fields.
  assert np.median(slope[water]) < 2.0
  assert np.median(slope[trees]) > np.median(slope[lulc == CROPS]) + 5.0


def test_optical_and_sar_agree_with_the_land_cover(scene):
  lulc = _read(scene, "lulc")[0]
  s2 = _read(scene, "s2").astype(np.float64) / 10000.0
  water, land = lulc == WATER, (lulc != WATER) & (lulc != SNOW)
  nir = s2[3]
  assert nir[water].mean() < 0.05
  assert nir[land].mean() > 4 * nir[water].mean()
  # Vegetation's red edge: NIR >> red over trees; snow is bright and flat.
  assert np.median(s2[3][lulc == TREES] / s2[2][lulc == TREES]) > 4
  assert s2[:3, lulc == SNOW].mean() > 0.4

  sigma0 = _read(scene, "s1")
  under = _lulc_under_sar(scene, lulc)
  vv_db = 10 * np.log10(sigma0[0])
  sar_water = under == WATER
  sar_land = (under != WATER) & (under != 255)
  assert sar_water.sum() > 100
  assert np.mean(vv_db[sar_water]) < np.mean(vv_db[sar_land]) - 8.0
  assert np.all(sigma0 > 0)


def test_optical_follows_the_terrain_illumination(scene, dem_on_lulc_grid):
  # Hillshade of the DEM for the generator's sun; within one class the
  # brightness must rise with it.
  _, grad_east, grad_north, _ = dem_on_lulc_grid
  azimuth, zenith = np.deg2rad(150.0), np.deg2rad(40.0)
  sun = (np.sin(zenith) * np.sin(azimuth), np.sin(zenith) * np.cos(azimuth),
         np.cos(zenith))
  hillshade = ((-grad_east * sun[0] - grad_north * sun[1] + sun[2])
               / np.sqrt(1 + grad_east**2 + grad_north**2))
  lulc = _read(scene, "lulc")[0]
  nir = _read(scene, "s2")[3].astype(np.float64)
  interior = np.zeros_like(lulc, bool)
  interior[2:-2, 2:-2] = True
  trees = (lulc == TREES) & interior
  assert np.corrcoef(hillshade[trees], nir[trees])[0, 1] > 0.5


def test_sar_speckle_is_multilook_gamma(scene):
  under = _lulc_under_sar(scene, _read(scene, "lulc")[0])
  vh = _read(scene, "s1")[1]
  # Deep inside lakes (no mixed pixels at the shore).
  values = vh[ndimage.binary_erosion(under == WATER, iterations=3)]
  assert values.size > 50
  # Gamma(L=4.4) speckle has a coefficient of variation 1/sqrt(4.4) ~ 0.48.
  assert 0.35 < values.std() / values.mean() < 0.65


def test_second_date_changes_about_the_requested_fraction(scene):
  before, after = _read(scene, "lulc")[0], _read(scene, "lulc_t2")[0]
  changed = before != after
  assert abs(changed.mean() - CHANGE) < 0.05
  assert scene.changed_fraction == pytest.approx(changed.mean())
  s2, s2_t2 = _read(scene, "s2"), _read(scene, "s2_t2")
  difference = np.abs(s2.astype(np.float64) - s2_t2).mean(axis=0)
  assert difference[changed].mean() > 2 * difference[~changed].mean()


def _block_means(image):
  return image.astype(np.float64).reshape(
      4, SIZE // RATIO, RATIO, SIZE // RATIO, RATIO).mean(axis=(2, 4))


def test_coarse_image_is_the_blurred_downsampled_optical(scene):
  """The coarse image views the second date (the fusion paper's LR image is
  the t2 one, Sec. II, Tables I and V)."""
  with rasterio.open(scene.paths["s2_coarse"]) as src:
    coarse = src.read().astype(np.float64)
    assert src.shape == (SIZE // RATIO, SIZE // RATIO)
    assert src.transform.c == scene.transform.c
    assert src.transform.f == scene.transform.f
  fine = _read(scene, "s2_t2").astype(np.float64)
  block_means = _block_means(fine)
  # The PSF is wider than a block, so close to but smoother than block means.
  relative = np.abs(coarse - block_means).mean() / fine.mean()
  assert relative < 0.15
  assert coarse.std() < block_means.std()


def test_coarse_image_is_of_the_second_date_where_land_cover_changed(scene):
  """On coarse pixels whose land cover changed between the dates, the coarse
  image is far closer to the t2 image's block means than to the t1 ones."""
  with rasterio.open(scene.paths["s2_coarse"]) as src:
    coarse = src.read().astype(np.float64)
  changed = _block_means(
      (_read(scene, "lulc") != _read(scene, "lulc_t2"))[0][None]
      .repeat(4, 0))[0] > 0.75
  assert changed.sum() >= 10  # enough changed coarse pixels to judge
  to_t1 = np.abs(coarse - _block_means(_read(scene, "s2")))[:, changed]
  to_t2 = np.abs(coarse - _block_means(_read(scene, "s2_t2")))[:, changed]
  assert to_t2.mean() < 0.5 * to_t1.mean()


def test_cloudy_copy_and_its_mask(scene):
  mask = _read(scene, "cloud_mask")[0]
  assert abs((mask == 1).mean() - CLOUDS) < 0.03
  assert scene.cloud_coverage == pytest.approx((mask == 1).mean())
  assert (mask == 2).any()
  clear, cloudy = _read(scene, "s2"), _read(scene, "s2_cloudy")
  np.testing.assert_array_equal(cloudy[:, mask == 0], clear[:, mask == 0])
  assert cloudy[:3, mask == 1].mean() > 2 * clear[:3, mask == 1].mean()
  assert np.all(cloudy[:, mask == 2] <= clear[:, mask == 2])


def test_shadows_fall_away_from_the_sun_at_the_cloud_height(scene):
  """A shadow lies h tan(zenith) from its cloud on the ground, away from the
  sun. The synthetic sun stands at azimuth 150 deg (SSE), zenith 40 deg and
  clouds at 200 m (make_scene's default) on a 10 m grid: 16.8 px to the NNW,
  i.e. 16.8 cos(30 deg) = 14.5 px north (up) and 16.8 sin(30 deg) = 8.4 px
  west (left). The shift that lays the cloud mask best onto the shadow mask
  is found by search and must be that one, to the pixel rounding."""
  from rsjax.geo import synthetic_sensors
  assert (synthetic_sensors.SUN_AZIMUTH_DEG,
          synthetic_sensors.SUN_ZENITH_DEG) == (150.0, 40.0)
  distance = 200.0 * np.tan(np.deg2rad(40.0)) / 10.0
  expected = (-distance * np.cos(np.deg2rad(30.0)),
              -distance * np.sin(np.deg2rad(30.0)))
  mask = _read(scene, "cloud_mask")[0]
  cloud, shadow = mask == 1, mask == 2
  padded = np.pad(cloud, 40)

  def covered(rows, cols):   # shadow pixels under the cloud moved by (rows, cols)
    moved = padded[40 - rows:40 - rows + SIZE, 40 - cols:40 - cols + SIZE]
    return np.count_nonzero(moved & shadow)

  shifts = [(r, c) for r in range(-40, 41) for c in range(-40, 41)]
  best = max(shifts, key=lambda shift: covered(*shift))
  assert covered(*best) > 0.5 * np.count_nonzero(shadow)
  np.testing.assert_allclose(best, expected, atol=1.0)


def test_bad_arguments_name_the_problem(tmp_path):
  with pytest.raises(ValueError, match="change_fraction"):
    synthetic.make_scene(0, tmp_path, size=32, change_fraction=1.5)
  with pytest.raises(ValueError, match="projected"):
    synthetic.make_scene(0, tmp_path, size=32, crs="EPSG:4326")
  with pytest.raises(ValueError, match="coarse_ratio"):
    synthetic.make_scene(0, tmp_path, size=32, coarse_ratio=64)
  with pytest.raises(ValueError, match=r"change_fraction must be in \[0, 1\)"):
    synthetic.make_scene(0, tmp_path, size=32, change_fraction=1.0)
  for size in ((8, 64), (64, 8)):
    with pytest.raises(ValueError, match="size must be at least 16 pixels"):
      synthetic.make_scene(0, tmp_path, size=size)
  for coverage in (-0.1, 1.5):
    with pytest.raises(ValueError, match=r"cloud_coverage must be in \[0, 1\]"):
      synthetic.make_scene(0, tmp_path, size=32, cloud_coverage=coverage)


def test_non_square_scene(tmp_path):
  scene = synthetic.make_scene(1, tmp_path, size=(32, 48), coarse_ratio=8)
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
      p.name for p in scene.paths.values())
  assert _read(scene, "s2").shape == (4, 32, 48)
  assert _read(scene, "s1").shape == (2, 32, 48)
  assert _read(scene, "s2_coarse").shape == (4, 4, 6)


def _tolerance(path: str) -> tuple[float, float]:
  """(rtol, atol) for a fingerprint entry.

  Every file but the cloudy ones is computed in float64 numpy, where machines
  differ only by the last bits of libm/SIMD transcendental functions and BLAS
  summation order (~1e-15 relative), and then stored as uint16 or float32: a
  stored value changes only at an exact rounding tie, and a 4 x 4 block mean of
  1024+ pixels by far less than 1e-6 relative. Class rasters come from float64
  fields compared with thresholds, so their counts are exact. The clouds are
  made by XLA's CPU kernels, which may round differently (float32 ulps) on
  another CPU; a cloud edge pixel then moves, so each block count may differ
  by 2 pixels and each cloudy block mean by 2 pixels' worth of the full
  reflectance range (10000 DN over the smallest block, 1024 pixels).
  """
  if "cloud_mask" in path:
    return 0.0, 2.0
  if "s2_cloudy" in path:
    return 0.0, 2 * 10000 / 1024
  if path.endswith("cloud_coverage"):
    return 0.0, 2 / 128**2
  return 1e-6, 1e-9


def _compare(expected, actual, path=""):
  if isinstance(expected, dict):
    assert isinstance(actual, dict) and sorted(actual) == sorted(expected), (
        f"{path}: keys {sorted(actual)} != {sorted(expected)}")
    for key in expected:
      _compare(expected[key], actual[key], f"{path}/{key}")
  elif isinstance(expected, list):
    assert isinstance(actual, list) and len(actual) == len(expected), (
        f"{path}: {actual!r:.200} != {expected!r:.200}")
    for index, (e, a) in enumerate(zip(expected, actual)):
      _compare(e, a, f"{path}[{index}]")
  elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
    rtol, atol = _tolerance(path)
    assert isinstance(actual, (int, float)), f"{path}: {actual!r}"
    assert abs(actual - expected) <= atol + rtol * abs(expected), (
        f"{path}: {actual!r} != stored {expected!r} (rtol {rtol}, atol {atol})")
  else:
    assert actual == expected, f"{path}: {actual!r} != stored {expected!r}"


def test_the_world_is_the_stored_one(tmp_path):
  """The synthetic world is still the one the project's numbers were measured
  on (`tests/geo/synthetic_fingerprint.py` says why and how to update it)."""
  stored = json.loads(synthetic_fingerprint.STORED.read_text())
  actual = json.loads(json.dumps(synthetic_fingerprint.world_fingerprint(
      tmp_path)))
  _compare(stored, actual)


def test_terrain_gradient_is_the_derivative_of_the_elevation():
  """The analytic gradient the land cover and the sensors use equals central
  differences of the elevation (h = 1 cm; float64 central differences of a
  smooth field are exact to ~1e-7 here), including 0 on the summit plateaus
  where the relief is clipped."""
  xs = np.linspace(-640.0, 640.0, 81)
  x, y = np.meshgrid(xs, xs)
  landscape = synthetic_fields.Landscape(
      np.random.default_rng(1), extent_m=1280.0, calibration_xy=(x, y))
  surface = landscape.sample(x, y)
  h = 0.01
  dz_dx = (landscape.elevation(x + h, y) - landscape.elevation(x - h, y)) / (
      2 * h)
  dz_dy = (landscape.elevation(x, y + h) - landscape.elevation(x, y - h)) / (
      2 * h)
  top = landscape.base_elevation_m + landscape.relief_m
  plateau = surface.raw_elevation >= top
  assert plateau.sum() > 50  # this seed's terrain reaches the clip
  np.testing.assert_array_equal(surface.grad_x[plateau], 0.0)
  np.testing.assert_array_equal(surface.grad_y[plateau], 0.0)
  # Away from the lake shores and plateau edges (kinks of the elevation):
  smooth = ((np.abs(surface.raw_elevation - landscape.lake_level_m) > 1.0)
            & (np.abs(surface.raw_elevation - top) > 1.0))
  np.testing.assert_allclose(surface.grad_x[smooth], dz_dx[smooth], atol=1e-6)
  np.testing.assert_allclose(surface.grad_y[smooth], dz_dy[smooth], atol=1e-6)


def test_requested_area_fractions_are_met(tmp_path):
  """water_fraction, snow_fraction and built_fraction set the share of lakes,
  snow and built-up land (quantiles over a sample of the scene, so within a
  few per cent of the pixels; built-up land is drawn only where the urban
  field's share falls on the plains, so below the request, but more of it
  than with the default 0.06)."""
  scene = synthetic.make_scene(2, tmp_path, size=96, water_fraction=0.2,
                               snow_fraction=0.15, built_fraction=0.12)
  fractions = scene.class_fractions
  assert abs(fractions[WATER] - 0.2) < 0.03, fractions
  assert abs(fractions[SNOW] - 0.15) < 0.03, fractions
  default = synthetic.make_scene(2, tmp_path / "default", size=96)
  built = 6
  assert 0 < default.class_fractions[built] < fractions[built] <= 0.12
  landscape = synthetic_fields.Landscape(
      np.random.default_rng(0), extent_m=640.0,
      calibration_xy=np.meshgrid(np.linspace(-320, 320, 9),
                                 np.linspace(-320, 320, 9)))
  surface = landscape.sample(np.zeros(1), np.zeros(1))
  with pytest.raises(ValueError, match="date must be 0 or 1, got 2"):
    landscape.land_cover(surface, date=2)


def test_boundary_coverages_and_a_new_nested_folder(tmp_path):
  """Coverage 0 and 1 are valid (a clear and an overcast copy), so are
  coarse ratios from 2 to the scene's side, and the output folder is created
  with its parents."""
  clear = synthetic.make_scene(0, tmp_path / "a" / "b", size=16,
                               cloud_coverage=0.0)
  assert clear.cloud_coverage == 0.0
  overcast = synthetic.make_scene(0, tmp_path / "c", size=16,
                                  cloud_coverage=1.0)
  assert overcast.cloud_coverage == 1.0
  for ratio in (2, 16):  # the smallest ratio and one coarse pixel
    scene = synthetic.make_scene(0, tmp_path / f"r{ratio}", size=16,
                                 coarse_ratio=ratio)
    with rasterio.open(scene.paths["s2_coarse"]) as src:
      assert src.shape == (16 // ratio, 16 // ratio)


def test_reflectance_to_digital_numbers_keeps_zero_for_nodata():
  """Sentinel-2 L2A digital numbers are reflectance x 10000, rounded to the
  nearest; 0 is the nodata value, so a valid pixel is at least 1, and the top
  of uint16 is 65535, never wrapped around (hand-computed values)."""
  from rsjax.geo import synthetic_sensors
  reflectance = np.array([-0.05, 0.0, 0.00004, 0.00005, 0.00026, 0.1234,
                          6.5535, 7.0])
  np.testing.assert_array_equal(
      synthetic_sensors.to_uint16_reflectance(reflectance),
      np.array([1, 1, 1, 1, 3, 1234, 65535, 65535], np.uint16))
  assert synthetic_sensors.to_uint16_reflectance(reflectance).dtype == np.uint16


def test_a_coarse_sensor_sees_whole_blocks_only():
  """Downsampling 10 fine pixels by 4 gives 2 coarse pixels (a partial block
  at the edge is dropped), centred on their blocks: fine positions 1.5 and
  5.5, so each row of weights is symmetric about its centre and sums to 1."""
  from rsjax.geo import synthetic_sensors
  weights = synthetic_sensors.coarse_sensor_matrix(10, 4)
  assert weights.shape == (2, 10)
  np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
  for row, centre in enumerate((1.5, 5.5)):
    left = np.arange(10) < centre
    mirrored = (2 * centre - np.arange(10)).astype(int)
    inside = (mirrored >= 0) & (mirrored < 10)
    np.testing.assert_allclose(weights[row, inside],
                               weights[row, mirrored[inside]], rtol=1e-12)
    assert weights[row, left].max() == weights[row, int(centre)]
