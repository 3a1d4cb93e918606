"""Scene inputs of full-scene inference (rsjax.eval.scene_reader): finding
the sources, and reading windows exactly as the dataset builder reads tiles
(checked against data_builders.rs_multisource.scenes.SceneReader)."""

import os
import shutil

import numpy as np
import pytest
from rasterio.windows import Window

from data_builders.rs_multisource import scenes as builder_scenes
from rsjax.eval import scene_reader
from rsjax.geo import synthetic


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp("inputs_scene")
  synthetic.make_scene(5, folder, size=64)
  return str(folder)


def test_layout_is_the_dataset_scene_layout():
  assert dict(scene_reader.DEFAULT_PATTERNS) == dict(
      builder_scenes.DEFAULT_PATTERNS)
  for name, spec in builder_scenes.SOURCE_SPECS.items():
    kind = scene_reader.SOURCE_KINDS[name]
    assert kind == spec.kind
    assert scene_reader.FILE_BANDS[kind] == spec.bands
  assert scene_reader.CLASS_LIMITS == {
      "labels": builder_scenes.NUM_LULC_CLASSES,
      "cloud_mask": builder_scenes.NUM_CLOUD_MASK_VALUES}
  assert sorted(scene_reader.GRID_PREFERENCE) == sorted(
      scene_reader.SOURCE_KINDS)


def test_windows_match_the_dataset_builder_tiles(scene_dir):
  names = ("s2", "s1", "lulc", "dem")
  paths = scene_reader.find_sources(scene_dir, names)
  scene = builder_scenes.Scene("a", paths)
  with builder_scenes.SceneReader(scene) as builder, \
      scene_reader.SceneInputs(paths) as inputs:
    assert inputs.grid == builder.grid
    for window in (Window(0, 0, 32, 32), Window(17, 9, 40, 23)):
      expected, expected_valid = builder.read_tile(window)
      arrays, valid = inputs.read(window)
      np.testing.assert_array_equal(valid, expected_valid)
      for name in names:
        np.testing.assert_allclose(arrays[name], expected[name], rtol=1e-6,
                                   atol=1e-6, err_msg=name)


def test_terrain_of_adjacent_windows_equals_one_big_window(scene_dir):
  """The DEM halo makes window borders exact: two halves == the whole (up to
  GDAL's float noise of warping different blocks; edge replication instead
  of the halo would be off by degrees of slope at the joint)."""
  paths = scene_reader.find_sources(scene_dir, ("s1", "dem"))
  with scene_reader.SceneInputs(paths) as inputs:
    whole, whole_valid = inputs.read(Window(4, 6, 40, 30))
    left, left_valid = inputs.read(Window(4, 6, 19, 30))
    right, right_valid = inputs.read(Window(23, 6, 21, 30))
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


def test_grid_prefers_fine_sources_and_takes_a_crs(scene_dir):
  paths = scene_reader.find_sources(scene_dir, ("dem", "s1", "lulc"))
  with scene_reader.SceneInputs(paths) as inputs:
    assert inputs.grid.crs.to_epsg() == 32633       # lulc's, not the DEM's
  with scene_reader.SceneInputs(paths, crs="EPSG:3035",
                                resolution=20.0) as inputs:
    assert inputs.grid.crs.to_epsg() == 3035 and inputs.grid.res == (20, 20)


def test_missing_source_names_the_source_and_pattern(scene_dir, tmp_path):
  for name in ("s1.tif", "lulc.tif"):
    shutil.copy(os.path.join(scene_dir, name), tmp_path / name)
  with pytest.raises(scene_reader.SceneError, match=r"'dem'.*'dem\.tif'"):
    scene_reader.find_sources(str(tmp_path), ("s1", "lulc", "dem"))
  paths = scene_reader.find_sources(
      str(tmp_path), ("s1", "lulc", "dem"),
      overrides={"dem": os.path.join(scene_dir, "dem.tif")})
  assert paths["dem"] == os.path.join(scene_dir, "dem.tif")
  files = ",".join(os.path.join(scene_dir, f) for f in ("s1.tif", "dem.tif"))
  assert set(scene_reader.find_sources(files, ("s1", "dem"))) == {"s1", "dem"}


def test_wrong_band_count_and_unknown_source_are_refused(scene_dir):
  with pytest.raises(scene_reader.SceneError, match="'s1'.*expected 2"):
    scene_reader.find_sources(
        None, ("s1",), overrides={"s1": os.path.join(scene_dir, "s2.tif")})
  with pytest.raises(scene_reader.SceneError, match="unknown source"):
    scene_reader.find_sources(scene_dir, ("sentinel3",))
