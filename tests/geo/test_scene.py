"""rsjax.geo.scene, the one reader of a scene folder (the dataset builder's
tiles and full-scene inference's windows): finding the sources, the grid, and
windows in physical units."""

import os
import pathlib
import shutil

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from rsjax.geo import align, io, sar, synthetic, terrain
from rsjax.geo import scene as scene_lib
from rsjax.store import staging

DUMMY_DIR = (pathlib.Path(__file__).resolve().parents[2] / "data_builders"
             / "rs_multisource" / "dummy_data")
ALL_SOURCES = ("s2", "s1", "lulc", "dem", "s2_cloudy", "cloud_mask", "s2_t2",
               "s1_t2", "lulc_t2", "s2_coarse")


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp("inputs_scene")
  synthetic.make_scene(5, folder, size=64, change_fraction=0.2,
                       coarse_ratio=3, cloud_coverage=0.3)
  return str(folder)


# Per source, (rows, cols) of the file's own pixels set to its nodata value,
# and blocks of valid-looking but out-of-range classes: each source loses
# different pixels, so `valid` must be the AND of all of them. The DEM is on
# its own geographic, coarser grid: its hole falls on rows 22-30, cols 28-35
# of the 10 m grid, where its 3x3 erosion widens it by a pixel.
HOLES = {"s2": (slice(0, 10), slice(40, 64)), "s1": (slice(20, 30), slice(0, 20)),
         "lulc": (slice(40, 50), slice(30, 50)),
         "cloud_mask": (slice(10, 20), slice(10, 16)),
         "dem": (slice(17, 20), slice(28, 32))}
OUT_OF_RANGE = {"lulc": ((slice(5, 9), slice(5, 9)), 9),
                "cloud_mask": ((slice(30, 34), slice(50, 60)), 3)}


@pytest.fixture(scope="module")
def holey_scene_dir(scene_dir, tmp_path_factory):
  """`scene_dir` with nodata holes and out-of-range classes (HOLES,
  OUT_OF_RANGE) written into its rasters."""
  folder = tmp_path_factory.mktemp("holey_scene")
  for name in os.listdir(scene_dir):
    shutil.copy(os.path.join(scene_dir, name), folder / name)
  for name, (rows, cols) in HOLES.items():
    with rasterio.open(folder / f"{name}.tif", "r+") as raster:
      data = raster.read()
      data[:, rows, cols] = raster.nodata
      if name in OUT_OF_RANGE:
        (o_rows, o_cols), value = OUT_OF_RANGE[name]
        data[:, o_rows, o_cols] = value
      raster.write(data)
  return str(folder)


def test_source_layout():
  assert sorted(scene_lib.SOURCE_SPECS) == sorted(ALL_SOURCES)
  assert dict(scene_lib.DEFAULT_PATTERNS) == {
      name: f"{name}.tif" for name in ALL_SOURCES}
  bands = {"optical": 4, "sar": 2, "labels": 1, "cloud_mask": 1, "dem": 1}
  for spec in scene_lib.SOURCE_SPECS.values():
    assert spec.bands == bands[spec.kind]
    assert spec.categorical == (spec.kind in ("labels", "cloud_mask"))
  limits = {spec.kind: spec.class_limit
            for spec in scene_lib.SOURCE_SPECS.values() if spec.categorical}
  assert limits == {"labels": scene_lib.NUM_LULC_CLASSES,
                    "cloud_mask": scene_lib.NUM_CLOUD_MASK_VALUES} == {
                        "labels": 9, "cloud_mask": 3}
  assert sorted(scene_lib.GRID_PREFERENCE) == sorted(scene_lib.SOURCE_SPECS)


def _eroded(valid):
  """True where the whole 3x3 neighbourhood is (an independent erosion)."""
  return np.lib.stride_tricks.sliding_window_view(valid, (3, 3)).all((-2, -1))


@pytest.mark.parametrize("scene, s2_scale, s1_units, crs", [
    ("scene_dir", 1e-4, "linear", None), ("scene_dir", 2e-4, "db", None),
    ("holey_scene_dir", 1e-4, "linear", None),
    # Another CRS and pixel size: every source is resampled, labels nearest.
    ("holey_scene_dir", 1e-4, "linear", "EPSG:3035")])
def test_windows_are_the_aligned_sources_in_physical_units(
    scene, s2_scale, s1_units, crs, request):
  paths = scene_lib.find_sources(request.getfixturevalue(scene), ALL_SOURCES)
  grid_args = {} if crs is None else {"crs": crs, "resolution": 13.0}
  with scene_lib.SceneReader(paths, s2_scale=s2_scale, s1_units=s1_units,
                             **grid_args) as reader, \
      rasterio.open(paths["s2"]) as s2:
    grid = reader.grid
    if crs is None:
      # The S2 raster defines the grid: its CRS and pixel lattice, 10 m.
      assert grid.crs == s2.crs and grid.res == (10.0, 10.0)
      offset = ~s2.transform @ (grid.transform.c, grid.transform.f)
      np.testing.assert_allclose(offset, np.round(offset), atol=1e-6)
    else:
      assert grid.crs.to_epsg() == 3035 and grid.res == (13.0, 13.0)
    for name, source in reader.sources.items():
      spec = scene_lib.SOURCE_SPECS[name]
      assert (source.path, source.name, source.categorical,
              source.expected_bands) == (paths[name], name, spec.categorical,
                                         spec.bands)
    # Inside the scene, across its edge, and wholly outside every source.
    for window in (Window(0, 0, 32, 32), Window(17, 9, 40, 23),
                   Window(40, 36, 40, 40), Window(100, 90, 8, 8)):
      arrays, valid = reader.read(window)
      expected_valid = np.ones_like(valid)
      for name in ALL_SOURCES:
        spec = scene_lib.SOURCE_SPECS[name]
        source = align.Source(paths[name], categorical=spec.categorical)
        if spec.kind == "dem":
          halo = Window(window.col_off - 1, window.row_off - 1,
                        window.width + 2, window.height + 2)
          aligned = align.read_aligned(source, grid, halo, allow_empty=True)
          source_valid = _eroded(aligned.valid)
          elevation = aligned.data[0, 1:-1, 1:-1]
          assert arrays[name].shape == valid.shape + (4,)
          assert arrays[name].dtype == np.float32
          np.testing.assert_allclose(
              arrays[name][..., 0], np.where(source_valid, elevation, 0),
              atol=1e-4, err_msg=name)
        else:
          aligned = align.read_aligned(source, grid, window, allow_empty=True)
          source_valid, data = aligned.valid, aligned.data
          if spec.categorical:
            source_valid = source_valid & (data[0] < spec.class_limit)
            expected = np.where(source_valid, data[0], 0)
            assert arrays[name].dtype == np.uint8, name
          else:
            expected = np.moveaxis(data, 0, -1)
            if spec.kind == "optical":
              expected = expected * np.float32(s2_scale)
            elif s1_units == "linear":
              expected = sar.to_db(expected)
            expected = np.where(source_valid[..., None], expected, 0)
            assert arrays[name].dtype == np.float32, name
          np.testing.assert_allclose(arrays[name], expected, rtol=1e-6,
                                     atol=1e-6, err_msg=name)
        expected_valid &= source_valid
      np.testing.assert_array_equal(valid, expected_valid)
      inside = window.col_off < 64 and window.row_off < 64
      assert valid.any() == inside
      if scene == "holey_scene_dir" or not inside:
        assert not valid.all()


def test_terrain_of_adjacent_windows_equals_one_big_window(scene_dir):
  """The DEM halo makes window borders exact: two halves == the whole (up to
  GDAL's float noise of warping different blocks; edge replication instead
  of the halo would be off by degrees of slope at the joint)."""
  paths = scene_lib.find_sources(scene_dir, ("s1", "dem"))
  with scene_lib.SceneReader(paths) as reader:
    whole, whole_valid = reader.read(Window(4, 6, 40, 30))
    left, left_valid = reader.read(Window(4, 6, 19, 30))
    right, right_valid = reader.read(Window(23, 6, 21, 30))
  joined = np.concatenate([left["dem"], right["dem"]], axis=1)
  elevation, slope, aspect, hillshade = np.moveaxis(joined, -1, 0)
  np.testing.assert_allclose(elevation, whole["dem"][..., 0], atol=5e-3)
  np.testing.assert_allclose(slope, whole["dem"][..., 1], atol=2e-2)
  np.testing.assert_allclose(hillshade, whole["dem"][..., 3], atol=1e-3)
  steep = slope > 2.0       # aspect of flat ground is noise
  np.testing.assert_allclose(aspect[steep], whole["dem"][..., 2][steep],
                             atol=0.5)
  np.testing.assert_array_equal(
      np.concatenate([left_valid, right_valid], axis=1), whole_valid)


def test_dem_derivatives_see_real_neighbours():
  paths = {n: str(DUMMY_DIR / "scene_a" / f"{n}.tif")
           for n in ("s2", "s1", "lulc", "dem")}
  with scene_lib.SceneReader(paths) as reader:
    arrays, valid = reader.read(Window(32, 32, 32, 32))
    big = align.read_aligned(align.Source(paths["dem"]), reader.grid,
                             Window(0, 0, 96, 96))
  elevation = big.data[0]
  res = reader.grid.res
  reference = np.stack([
      elevation, terrain.slope(elevation, res=res),
      terrain.aspect(elevation, res=res),
      terrain.hillshade(elevation, res=res)], axis=-1)[32:64, 32:64]
  assert valid.all()
  dem = arrays["dem"]
  # Window-wise and full-grid warps differ by GDAL's approximate transformer
  # (millimetres of elevation); aspect only means something on slopes.
  np.testing.assert_allclose(dem[..., 0], reference[..., 0], atol=0.05)
  np.testing.assert_allclose(dem[..., 1], reference[..., 1], atol=0.05)
  np.testing.assert_allclose(dem[..., 3], reference[..., 3], atol=1e-3)
  steep = reference[..., 1] > 5
  np.testing.assert_allclose(dem[..., 2][steep], reference[..., 2][steep],
                             atol=0.5)
  # Edge replication of the tile alone would be wrong on its border.
  replicated = terrain.slope(dem[..., 0], res=res)
  border = np.ones((32, 32), bool)
  border[1:-1, 1:-1] = False
  assert np.abs(replicated - reference[..., 1])[border].max() > 1.0


def test_grid_prefers_fine_sources_and_takes_a_crs(scene_dir):
  paths = scene_lib.find_sources(scene_dir, ("dem", "s1", "lulc"))
  with scene_lib.SceneReader(paths) as reader:
    assert reader.grid.crs.to_epsg() == 32633       # lulc's, not the DEM's
  with scene_lib.SceneReader(paths, crs="EPSG:3035",
                             resolution=20.0) as reader:
    assert reader.grid.crs.to_epsg() == 3035 and reader.grid.res == (20, 20)
  grid = align.ReferenceGrid.from_raster(paths["lulc"])
  with scene_lib.SceneReader(paths, grid=grid) as reader:
    assert reader.grid == grid


def test_missing_source_names_the_source_and_pattern(scene_dir, tmp_path):
  for name in ("s1.tif", "lulc.tif"):
    shutil.copy(os.path.join(scene_dir, name), tmp_path / name)
  with pytest.raises(scene_lib.SceneError, match=r"'dem'.*'dem\.tif'"):
    scene_lib.find_sources(str(tmp_path), ("s1", "lulc", "dem"))
  paths = scene_lib.find_sources(
      str(tmp_path), ("s1", "lulc", "dem"),
      overrides={"dem": os.path.join(scene_dir, "dem.tif")})
  assert paths["dem"] == os.path.join(scene_dir, "dem.tif")
  files = ",".join(os.path.join(scene_dir, f) for f in ("s1.tif", "dem.tif"))
  assert set(scene_lib.find_sources(files, ("s1", "dem"))) == {"s1", "dem"}


def test_every_problem_is_named_at_once(scene_dir, tmp_path):
  shutil.copy(os.path.join(scene_dir, "s1.tif"), tmp_path / "s1.tif")
  shutil.copy(os.path.join(scene_dir, "s1.tif"), tmp_path / "s1_copy.tif")
  with pytest.raises(scene_lib.SceneError) as error:
    scene_lib.find_sources(str(tmp_path), ("s1", "lulc", "dem"),
                           patterns={"s1": "s1*.tif"}, hint="try harder")
  assert len(error.value.problems) == 3
  message = str(error.value)
  assert f"{tmp_path}: no file for source 'lulc' (pattern 'lulc.tif')" in (
      message)
  assert "2 files match source 's1' (pattern 's1*.tif')" in message
  assert "(try harder)" in message


def test_wrong_band_count_and_unknown_source_are_refused(scene_dir):
  with pytest.raises(scene_lib.SceneError, match="'s1'.*expected 2"):
    scene_lib.find_sources(
        None, ("s1",), overrides={"s1": os.path.join(scene_dir, "s2.tif")})
  with pytest.raises(scene_lib.SceneError, match="unknown source"):
    scene_lib.find_sources(scene_dir, ("sentinel3",))
  with pytest.raises(scene_lib.SceneError, match="unknown source"):
    scene_lib.SceneReader({"sentinel3": os.path.join(scene_dir, "s2.tif")})
  with pytest.raises(scene_lib.SceneError, match="^no source to read.$"):
    scene_lib.SceneReader({})
  # Paths given to the reader directly are checked as find_sources does.
  with pytest.raises(io.RasterError, match="expected 2"):
    scene_lib.SceneReader({"s1": os.path.join(scene_dir, "s2.tif")},
                          grid=align.ReferenceGrid.from_raster(
                              os.path.join(scene_dir, "s2.tif")))
  with pytest.raises(ValueError, match="s1_units"):
    scene_lib.SceneReader({"s1": os.path.join(scene_dir, "s1.tif")},
                          s1_units="amplitude")


def test_scene_given_as_files_folders_and_strings(scene_dir, tmp_path):
  s1, dem = (os.path.join(scene_dir, f) for f in ("s1.tif", "dem.tif"))
  # One file, a list, a comma-separated string (empty parts ignored).
  assert scene_lib.find_sources(s1, ("s1",)) == {"s1": s1}
  assert scene_lib.find_sources([s1, dem], ("s1", "dem")) == {"s1": s1,
                                                              "dem": dem}
  assert scene_lib.find_sources(f"{s1},,{dem},", ("dem",)) == {"dem": dem}
  # A folder whose name holds a comma is a folder; hidden files and
  # subfolders whose names match a pattern are not sources.
  folder = tmp_path / "area 1, 2024"
  folder.mkdir()
  shutil.copy(s1, folder / "s1.tif")
  shutil.copy(s1, folder / "._s1.tif")     # macOS metadata
  (folder / "dem.tif").mkdir()
  for pattern in ("s1.tif", "*s1.tif"):
    assert scene_lib.find_sources(str(folder), ("s1",),
                                  patterns={"s1": pattern}) == {
                                      "s1": str(folder / "s1.tif")}
  with pytest.raises(scene_lib.SceneError) as error:
    scene_lib.find_sources(str(folder), ("dem",))
  assert error.value.problems == (
      f"{folder}: no file for source 'dem' (pattern 'dem.tif')",)


def test_files_that_do_not_exist_are_named(scene_dir, tmp_path):
  s1 = os.path.join(scene_dir, "s1.tif")
  for scene, missing in ((str(tmp_path / "nowhere.tif"),
                          [str(tmp_path / "nowhere.tif")]),
                         (f"{s1},{tmp_path}/x.tif", [f"{tmp_path}/x.tif"])):
    with pytest.raises(scene_lib.SceneError) as error:
      scene_lib.find_sources(scene, ("s1",))
    assert str(error.value) == (
        f"scene: no such file(s) {missing}; give a scene folder or a "
        "comma-separated list of GeoTIFFs.")


def test_problems_name_where_the_sources_were_looked_for(scene_dir):
  s1, dem = (os.path.join(scene_dir, f) for f in ("s1.tif", "dem.tif"))
  with pytest.raises(scene_lib.SceneError) as error:
    scene_lib.find_sources([s1, dem], ("lulc",))
  assert str(error.value) == (
      f"1 problem(s) with the sources of the files {s1}, {dem}:\n"
      f"  the files {s1}, {dem}: no file for source 'lulc' "
      "(pattern 'lulc.tif')")
  with pytest.raises(scene_lib.SceneError) as error:
    scene_lib.find_sources(None, ("s1", "dem"), overrides={"s1": s1})
  assert str(error.value) == (
      "1 problem(s) with the sources of no scene:\n"
      "  no scene: no file for source 'dem' (pattern 'dem.tif')")
  with pytest.raises(scene_lib.SceneError) as error:
    scene_lib.find_sources(scene_dir, ("s1",), patterns={"s1": "s*.tif"})
  assert str(error.value).endswith("; make the pattern specific")
  with pytest.raises(scene_lib.SceneError) as error:
    scene_lib.find_sources(scene_dir, ("s3",))
  assert error.value.problems == (str(error.value),)
  assert str(error.value).startswith("unknown source(s) ['s3']; scene sources")


def test_a_remote_source_needs_a_stage_and_a_local_one_passes_through_it(
    scene_dir):
  """Without a `staging.Stage`, a file on object storage is a named problem
  (nothing is contacted); with one, a local file is used where it lies."""
  with pytest.raises(scene_lib.SceneError) as error:
    scene_lib.find_sources(None, ("s1",),
                           overrides={"s1": "gs://bucket/area/s1.tif"})
  assert error.value.problems == (
      "source 's1': gs://bucket/area/s1.tif is on object storage; this "
      "reader takes local files only",)
  s1 = os.path.join(scene_dir, "s1.tif")
  with staging.Stage() as stage:
    assert scene_lib.find_sources(s1, ("s1",), stage=stage) == {"s1": s1}
