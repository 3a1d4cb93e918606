"""rsjax.geo.units: the declared units of each source and the check of a
file's values against them (the error names file, band, range and fix).

The observed ranges are compared for equality: a band's min and max are
values of the array itself, converted from float32 / uint16 / uint8 to a
Python float, which is exact, so no tolerance is needed.
"""

import os
import pathlib
import shutil

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from rsjax.geo import bands, io, units
from rsjax.geo import scene as scene_lib

DUMMY_DIR = (pathlib.Path(__file__).resolve().parents[2] / "data_builders"
             / "rs_multisource" / "dummy_data")
S2_BANDS = bands.S2_BANDS
# ESA WorldCover's codes of the Dynamic World classes 0..8 (a remap a user
# might give; the order of the table is what the test needs, not its truth).
WORLDCOVER = {80: 0, 10: 1, 30: 2, 90: 3, 40: 4, 20: 5, 50: 6, 60: 7, 70: 8}


def _raises(values, *, source, units_name, **kwargs) -> units.UnitsError:
  names = scene_lib.SOURCE_SPECS[source].band_names
  with pytest.raises(units.UnitsError) as raised:
    units.check_range(values, source=source, units=units_name,
                      path="/data/area/x.tif", band_names=names, **kwargs)
  error = raised.value
  assert isinstance(error, scene_lib.SceneError)
  assert str(error).startswith("/data/area/x.tif: band ")
  return error


def _dn(rng, shape=(4, 8, 8)):
  return rng.integers(1, 12_000, size=shape).astype(np.uint16)


def test_sentinel2_digital_numbers_and_reflectance():
  rng = np.random.default_rng(0)
  dn = _dn(rng)
  ranges = units.check_range(dn, source="s2", units="dn", path="x.tif",
                             band_names=S2_BANDS)
  assert [r.band for r in ranges] == list(S2_BANDS)
  assert [(r.count, r.minimum, r.maximum) for r in ranges] == [
      (64, float(b.min()), float(b.max())) for b in dn]
  # Whole-valued floats (a float32 export of DN) and saturation are DN.
  saturated = dn.astype(np.float32)
  saturated[2, 0, 0] = units.S2_DN_MAX
  units.check_range(saturated, source="s2_t2", units="dn", path="x.tif",
                    band_names=S2_BANDS)

  reflectance = dn.astype(np.float32) / 10_000
  error = _raises(reflectance, source="s2", units_name="dn")
  assert error.setting == "s2_units='reflectance'"
  assert error.band == "B2" and error.source == "s2"
  assert error.observed == (float(reflectance[0].min()),
                            float(reflectance[0].max()))
  assert "band 1 (B2) of source 's2'" in str(error)
  assert "with a fraction" in str(error)
  assert "set s2_units='reflectance' in the builder config" in str(error)
  units.check_range(reflectance, source="s2", units="reflectance",
                    path="x.tif", band_names=S2_BANDS)

  error = _raises(dn, source="s2_cloudy", units_name="reflectance")
  assert error.setting == "s2_units='dn'"
  assert "lie in -0.1..6.5535" in str(error)

  # A 0/1 mask is whole-valued but too dark to be DN.
  mask = np.ones((4, 8, 8), np.uint16)
  error = _raises(mask, source="s2", units_name="dn")
  assert "largest value is at most 1" in str(error)
  # ... and above 65535 is not a 16-bit DN.
  error = _raises(dn.astype(np.float32) * 10, source="s2", units_name="dn")
  assert "lie in 0..65535" in str(error) and error.setting is None


def test_sentinel1_db_linear_and_integer_rasters():
  rng = np.random.default_rng(1)
  linear = rng.gamma(2.0, 0.05, size=(2, 8, 8)).astype(np.float32)
  db = (10 * np.log10(linear)).astype(np.float32)
  units.check_range(linear, source="s1", units="linear", path="x.tif",
                    band_names=bands.S1_BANDS)
  units.check_range(db, source="s1", units="db", path="x.tif",
                    band_names=bands.S1_BANDS)

  error = _raises(linear, source="s1", units_name="db")  # linear as dB
  assert error.setting == "s1_units='linear'"
  assert "no value is below 0" in str(error)
  error = _raises(db, source="s1_t2", units_name="linear")  # dB as linear
  assert error.setting == "s1_units='db'"
  assert "band 1 (VV) of source 's1_t2'" in str(error)

  stretched = np.clip((db + 30) * 6, 0, 255).astype(np.uint8)
  for declared in ("db", "linear"):
    error = _raises(stretched, source="s1", units_name=declared)
    assert "(uint8)" in str(error) and "floating-point" in str(error)
    assert error.setting is None and "no s1_units accepts it" in str(error)
  # A float 8-bit stretch as dB is caught by the range.
  error = _raises(stretched.astype(np.float32), source="s1",
                  units_name="db")
  assert "lie in -60..30" in str(error)


def test_land_cover_codes_class_map_and_fractions():
  labels = np.arange(9, dtype=np.uint8).reshape(1, 3, 3)
  ranges = units.check_range(labels, source="lulc", units="classes",
                             path="x.tif", band_names=("label",))
  assert ranges[0].codes == {code: 1 for code in range(9)}

  wrong = labels.copy()
  wrong[0, 0, 0] = 12
  error = _raises(wrong, source="lulc", units_name="classes")
  assert "codes [12] are not in the class table of 9 classes" in str(error)
  assert "the largest code, 12, needs more classes" in str(error)
  assert "give a class_map" in str(error) and error.setting is None

  worldcover = np.array(sorted(WORLDCOVER), np.uint8).reshape(1, 3, 3)
  _raises(worldcover, source="lulc_t2", units_name="classes")
  units.check_range(worldcover, source="lulc", units="classes", path="x.tif",
                    band_names=("label",), class_map=WORLDCOVER)
  error = _raises(np.array([[[10, 95]]], np.uint8), source="lulc",
                  units_name="classes", class_map=WORLDCOVER)
  assert "codes [95] are not keys of class_map" in str(error)

  fractional = labels.astype(np.float32) + np.float32(0.5)
  error = _raises(fractional, source="lulc", units_name="classes")
  assert "with a fraction (e.g. 0.5)" in str(error)
  assert "nearest neighbour" in str(error)
  units.check_range(labels.astype(np.float32), source="lulc",
                    units="classes", path="x.tif", band_names=("label",))

  error = _raises(np.full((1, 2, 2), 3, np.uint8), source="cloud_mask",
                  units_name="classes")
  assert "0..2" in str(error)


def test_elevation_and_masks():
  dem = np.array([[[120.0, -32768.0]]], np.float32)
  error = _raises(dem, source="dem", units_name="metres")
  assert "-32768" in str(error) and "lie in -500..9000" in str(error)
  # The same value under the valid mask is not judged, nor are NaN.
  units.check_range(dem, source="dem", units="metres", path="x.tif",
                    band_names=("elevation",),
                    valid=np.array([[True, False]]))
  ranges = units.check_range(np.full((1, 2, 2), np.nan, np.float32),
                             source="dem", units="metres", path="x.tif",
                             band_names=("elevation",))
  assert ranges[0].count == 0 and ranges[0].observed() == "no valid value"


def test_declarations_and_bad_arguments():
  assert units.declared("optical", "dn") is units.S2_DN
  assert units.S2_DN.high == 2**16 - 1
  assert units.S2_REFLECTANCE.high == units.S2_DN.high / 10_000
  assert units.declared("labels", "classes").classes == (
      bands.DYNAMIC_WORLD_CLASSES)
  with pytest.raises(ValueError, match=r"s2_units must be one of \['dn', "):
    units.declared("optical", "toa")
  with pytest.raises(ValueError, match="not a scene source"):
    units.check_range(np.zeros((1, 2, 2)), source="sen12ms_s2", units="dn",
                      path="x.tif", band_names=("B1",))
  # A public dataset's source: its kind given, or its own Units.
  units.check_range(np.full((1, 2, 2), 500, np.uint16), source="sen12ms_s2",
                    kind="optical", units="dn", path="x.tif",
                    band_names=("B1",))
  with pytest.raises(units.UnitsError) as raised:
    units.check_range(np.full((1, 2, 2), 0.05, np.float32),
                      source="sen12ms_s2", kind="optical", units="dn",
                      path="x.tif", band_names=("B1",), setting="s2_values")
  assert raised.value.setting == "s2_values='reflectance'"
  igbp = units.class_codes([f"igbp_{i}" for i in range(17)])
  units.check_range(np.full((1, 2, 2), 16, np.uint8), source="sen12ms_lc",
                    units=igbp, path="x.tif", band_names=("IGBP",))


def test_scan_file_reads_in_strips_like_one_array(monkeypatch):
  path = DUMMY_DIR / "scene_b" / "s2.tif"
  with rasterio.open(path) as dataset:
    data = dataset.read()
    valid = ~np.ma.getmaskarray(dataset.read(masked=True))
  whole = units.band_ranges(data, band_names=S2_BANDS, valid=valid)
  assert whole[0].count < data[0].size  # scene_b's nodata hole is left out
  monkeypatch.setattr(units, "ROWS_PER_READ", 7)  # 112 rows: 16 strips
  strips, dtype = units.scan_file(path, band_names=S2_BANDS)
  assert dtype == "uint16"
  assert [r.as_dict() for r in strips] == [r.as_dict() for r in whole]
  lulc = units.check_file(DUMMY_DIR / "scene_a" / "lulc.tif", source="lulc",
                          units="classes")
  with rasterio.open(DUMMY_DIR / "scene_a" / "lulc.tif") as dataset:
    codes, counts = np.unique(dataset.read(1, masked=True).compressed(),
                              return_counts=True)
  assert lulc[0].codes == dict(zip(codes.tolist(), counts.tolist()))


def test_check_file_names_the_file_of_float_reflectance(tmp_path):
  path = tmp_path / "s2.tif"
  with rasterio.open(DUMMY_DIR / "scene_a" / "s2.tif") as source:
    profile, data = source.profile, source.read()
  profile.update(dtype="float32")
  with rasterio.open(path, "w", **profile) as target:
    target.write(data.astype(np.float32) / 10_000)
  with pytest.raises(units.UnitsError) as raised:
    units.check_file(path, source="s2", units="dn")
  assert str(raised.value).startswith(f"{path}: band 1 (B2) of source 's2'")
  assert raised.value.setting == "s2_units='reflectance'"


def test_scene_reader_remaps_land_cover_codes(tmp_path):
  scene = tmp_path / "scene"
  shutil.copytree(DUMMY_DIR / "scene_a", scene)
  to_code = {target: code for code, target in WORLDCOVER.items()}
  with rasterio.open(scene / "lulc.tif", "r+") as lulc:
    classes = lulc.read(1)
    nodata = classes == lulc.nodata
    lulc.write(np.where(nodata, lulc.nodata, np.vectorize(to_code.get)(
        np.where(nodata, 0, classes))).astype(np.uint8)[None])
  paths = {"s2": str(scene / "s2.tif"), "lulc": str(scene / "lulc.tif")}
  original = {"s2": paths["s2"], "lulc": str(DUMMY_DIR / "scene_a" /
                                             "lulc.tif")}
  window = Window(0, 0, 64, 64)
  with scene_lib.SceneReader(original) as reader:
    expected, expected_valid = reader.read(window)
  with scene_lib.SceneReader(paths, class_map=WORLDCOVER) as reader:
    arrays, valid = reader.read(window)
  np.testing.assert_array_equal(arrays["lulc"], expected["lulc"])
  np.testing.assert_array_equal(valid, expected_valid)
  # Without the map, the codes are outside the table: nodata to the reader
  # (a builder's units check stops before that).
  with scene_lib.SceneReader(paths) as reader:
    assert not reader.read(window)[1].any()


def test_class_map_checks_and_remap():
  assert scene_lib.check_class_map(None) is None
  assert scene_lib.check_class_map({10.0: 1}) == {10: 1}
  for bad, match in (({10: 9}, "outside the 9 land-cover classes"),
                     ({10.5: 1}, "whole numbers"), ({}, "empty")):
    with pytest.raises(ValueError, match=match):
      scene_lib.check_class_map(bad)
  values = np.array([[10, 20], [95, 10]], np.uint8)
  classes, valid = scene_lib.remap_classes(
      values, np.array([[True, True], [True, False]]), {10: 3, 20: 0})
  np.testing.assert_array_equal(classes, [[3, 0], [0, 0]])
  np.testing.assert_array_equal(valid, [[True, True], [False, False]])


def test_units_error_is_a_scene_error_with_its_problem():
  error = _raises(np.full((1, 1, 1), 40, np.uint8), source="lulc",
                  units_name="classes")
  assert error.problems == (str(error),)
  assert not isinstance(error, io.RasterError)
  assert os.fspath(error.path) == "/data/area/x.tif"
