"""Tests of the rs_multisource builder: each config built into a temporary data_dir.

synthetic_tiny is built as is; geotiff is built on dummy_data/ (two real scene
folders, see make_dummy_data.py) with 32-pixel tiles, its only change. The
full `synthetic` config is built by benchmarks/dataset_build.py, not here.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
import shutil

import numpy as np
import pytest
import rasterio
import tensorflow_datasets as tfds
from rasterio.windows import Window

from data_builders.rs_multisource import build_report as report_lib
from data_builders.rs_multisource import rs_multisource_dataset_builder as rsms
from data_builders.rs_multisource import scenes as scenes_lib
from data_builders.rs_multisource import splits as splits_lib
from rsjax.geo import scene as geo_scene
from rsjax.geo import synthetic
from rsjax.geo import units as geo_units

DUMMY_DIR = pathlib.Path(__file__).resolve().parent / "dummy_data"
# The terrain of the 10 m grid (dem_resolution None), whose independent read
# is test_geotiff_pixels_are_an_independent_read_of_the_scene_files; the
# geotiff config's 30 m terrain (RS-SPADE Sec. 2.1) is GEOTIFF_30M's.
GEOTIFF_TEST = dataclasses.replace(rsms.GEOTIFF, name="geotiff_test",
                                   tile_size=32, block_size=32,
                                   dem_resolution=None)
GEOTIFF_30M = dataclasses.replace(rsms.GEOTIFF, name="geotiff_30m",
                                  tile_size=32, block_size=32)


def _build(config, data_dir, manual_dir=None):
  builder = rsms.Builder(config=config, data_dir=str(data_dir))
  download_config = tfds.download.DownloadConfig(
      manual_dir=None if manual_dir is None else str(manual_dir))
  builder.download_and_prepare(download_config=download_config)
  return builder


def _examples(builder, split):
  examples = list(tfds.as_numpy(builder.as_dataset(split=split)))
  return sorted(examples, key=lambda e: (e["scene_id"], e["tile_row"],
                                         e["tile_col"]))


def _check_split_sizes(builder, tiles_per_block):
  sizes = {s: builder.info.splits[s].num_examples for s in rsms.SPLITS}
  total = sum(sizes.values())
  for split, share in zip(rsms.SPLITS, (0.7, 0.2, 0.1)):
    assert abs(sizes[split] - share * total) <= tiles_per_block, sizes
  return sizes


def _check_features(builder, example):
  config = builder.builder_config
  features = builder.info.features
  size = config.tile_size
  expected = {"s2": (size, size, 4), "s1": (size, size, 2),
              "lulc": (size, size), "dem": (size, size, 4),
              "valid": (size, size), "transform": (6,)}
  for name, shape in expected.items():
    assert features[name].shape == shape and example[name].shape == shape
  for name in features:
    if name not in ("scene_id", "crs"):
      assert example[name].dtype == features[name].np_dtype, name
  assert example["lulc"].max() < 9 and example["valid"].max() <= 1
  dem = example["dem"]
  assert 0 <= dem[..., 1].min() and dem[..., 1].max() < 90
  assert 0 <= dem[..., 2].min() and dem[..., 2].max() < 360
  assert 0 <= dem[..., 3].min() and dem[..., 3].max() <= 1
  crs = rasterio.crs.CRS.from_wkt(example["crs"].decode())
  assert crs.is_projected


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return _build("synthetic_tiny", tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def geotiff(tmp_path_factory):
  return _build(GEOTIFF_TEST, tmp_path_factory.mktemp("geotiff"), DUMMY_DIR)


def test_tiny_features_and_splits(tiny):
  examples = _examples(tiny, "train")
  _check_features(tiny, examples[0])
  features = tiny.info.features
  for name, shape in (("s2_cloudy", (64, 64, 4)), ("cloud_mask", (64, 64)),
                      ("s2_t2", (64, 64, 4)), ("s1_t2", (64, 64, 2)),
                      ("lulc_t2", (64, 64)), ("s2_coarse", (64, 64, 4))):
    assert features[name].shape == shape
  sizes = _check_split_sizes(tiny, tiles_per_block=4)
  assert sum(sizes.values()) == 2 * 16  # Every tile of two 4x4 tilings.
  # Synthetic scenes have no gap: every pixel of every tile is valid.
  assert all(e["valid"].all() for e in examples)
  assert set(np.unique(np.concatenate([e["cloud_mask"] for e in examples]))
             ) <= {0, 1, 2}


def test_tiny_splits_are_spatial_blocks(tiny):
  where = {}
  for split in rsms.SPLITS:
    for e in _examples(tiny, split):
      block = (e["scene_id"], e["tile_row"] // 2, e["tile_col"] // 2)
      where.setdefault(block, set()).add(split)
  assert all(len(splits) == 1 for splits in where.values())


def test_tiny_builds_are_identical(tiny, tmp_path):
  again = _build("synthetic_tiny", tmp_path)
  for split in rsms.SPLITS:
    first, second = _examples(tiny, split), _examples(again, split)
    assert len(first) == len(second)
    for a, b in zip(first, second):
      assert a.keys() == b.keys()
      for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_tiny_sources_agree_physically(tiny):
  examples = [e for split in rsms.SPLITS for e in _examples(tiny, split)]
  lulc = np.stack([e["lulc"] for e in examples])
  nir = np.stack([e["s2"][..., 3] for e in examples])
  vv = np.stack([e["s1"][..., 0] for e in examples])
  water, land = lulc == 0, (lulc != 0) & (lulc != 8)
  assert water.sum() > 1000  # Enough water pixels to judge.
  assert nir[water].mean() < 0.1 < nir[land].mean()
  assert vv[water].mean() < vv[land].mean() - 5.0
  coarse = np.stack([e["s2_coarse"] for e in examples])
  fine = np.stack([e["s2"] for e in examples])
  assert np.corrcoef(coarse.ravel(), fine.ravel())[0, 1] > 0.8


def test_geotiff_on_dummy_data(geotiff):
  sizes = _check_split_sizes(geotiff, tiles_per_block=1)
  examples = [e for s in rsms.SPLITS for e in _examples(geotiff, s)]
  _check_features(geotiff, examples[0])
  tiles = {(e["scene_id"].decode(), int(e["tile_row"]), int(e["tile_col"]))
           for e in examples}
  # 3x3 tiles of 32 px per scene; scene_b's S2 nodata hole drops its (0, 0).
  assert ("scene_b", 0, 0) not in tiles and len(tiles) == 17
  assert sum(sizes.values()) == 17
  example = next(e for e in examples if e["scene_id"] == b"scene_a"
                 and e["tile_row"] == 1 and e["tile_col"] == 2)
  scene = scenes_lib.find_scenes(DUMMY_DIR, scenes_lib.REQUIRED_SOURCES,
                                 geo_scene.DEFAULT_PATTERNS)[0]
  with geo_scene.SceneReader(scene.paths) as reader:
    expected = reader.grid.window_transform(Window(64, 32, 32, 32))
  np.testing.assert_array_equal(example["transform"], tuple(expected)[:6])
  assert -35 < example["s1"].mean() < 5  # dB, not linear power.
  assert 0 < example["s2"].mean() < 1    # Reflectance, not DN.


def _scene_copy(tmp_path):
  root = tmp_path / "manual"
  shutil.copytree(DUMMY_DIR, root)
  return root


def _break_band_count(root):
  path = root / "scene_a" / "dem.tif"
  with rasterio.open(path) as src:
    profile, data = src.profile, src.read()
  profile.update(count=2)
  with rasterio.open(path, "w", **profile) as dst:
    dst.write(np.concatenate([data, data]))


@pytest.mark.parametrize("damage, expected", [
    (lambda root: shutil.rmtree(root), "does not exist"),
    (lambda root: (root / "scene_a" / "s1.tif").unlink(),
     "scene_a: no file for source 's1'"),
    (lambda root: (root / "scene_b" / "lulc.tif").write_bytes(b"not a tif"),
     "scene_b/lulc.tif: cannot be read"),
    (_break_band_count, "dem.tif: has 2 band(s), expected 1"),
], ids=["missing_folder", "missing_source", "unreadable", "band_count"])
def test_bad_manual_dir_fails_clearly(tmp_path, damage, expected):
  root = _scene_copy(tmp_path)
  damage(root)
  with pytest.raises((AssertionError, ValueError), match=re.escape(expected)):
    _build(GEOTIFF_TEST, tmp_path / "data", root)
  version_dir = (tmp_path / "data" / "rs_multisource" / "geotiff_test"
                 / str(rsms.Builder.VERSION))
  assert not (version_dir / "dataset_info.json").exists()


def _report(builder) -> dict:
  with open(pathlib.Path(builder.data_dir) / report_lib.FILENAME) as f:
    return json.load(f)


def test_blocks_shrink_until_every_split_has_a_tile(tmp_path):
  # One 4096-px block per scene would leave validation and test empty (the
  # two scenes of dummy_data are two blocks); blocks shrink instead.
  config = dataclasses.replace(GEOTIFF_TEST, block_size=4096)
  builder = _build(config, tmp_path / "data", DUMMY_DIR)
  sizes = {s: builder.info.splits[s].num_examples for s in rsms.SPLITS}
  assert sum(sizes.values()) == 17 and min(sizes.values()) >= 1, sizes
  report = _report(builder)
  assert report["splits"]["configured_block_size"] == 4096
  # 4096 -> 2048 -> ... -> 64 still give two or three blocks a scene for
  # 17 tiles; the first size with a tile in every split is the report's.
  assert report["splits"]["block_size"] in splits_lib.block_sizes(4096, 32)
  assert report["splits"]["block_size"] < 4096
  assert report["splits"]["tiles"] == sizes


def test_a_split_of_zero_ratio_is_named_with_the_tile_counts(tmp_path):
  config = dataclasses.replace(GEOTIFF_TEST, split_ratios=(1.0, 1.0, 0.0))
  with pytest.raises(geo_scene.SceneError) as raised:
    _build(config, tmp_path / "data", DUMMY_DIR)
  assert str(raised.value).startswith(
      "split(s) ['test'] get no tile: the 17 tile(s) of 32 px in the scenes "
      f"under {DUMMY_DIR} fall into 17 spatial block(s) of 32 px")
  assert "check split_ratios" in str(raised.value)
  assert not list((tmp_path / "data").rglob("dataset_info.json"))


def test_fewer_than_three_tiles_stop_before_writing(tmp_path):
  # 64-px tiles: one per 112-px scene, and scene_b's is dropped (its S2
  # nodata hole is more than 1 % of the tile).
  config = dataclasses.replace(GEOTIFF_TEST, tile_size=64, block_size=None)
  with pytest.raises(geo_scene.SceneError) as raised:
    _build(config, tmp_path / "data", DUMMY_DIR)
  message = str(raised.value)
  assert message.startswith(
      f"found 1 tile(s) of 64 px with at most 1% nodata in the scenes under "
      f"{DUMMY_DIR} (scene_a: 1 kept; scene_b: all 1 tile(s) of 64 px "
      "dropped (1 nodata)); a build needs at least 3, one per split. The "
      "smallest area that works is 64 x 192 px (0.64 x 1.92 km at 10 m)")
  assert message.endswith("Nothing was written.")
  assert not list((tmp_path / "data").rglob("*.tfrecord*"))
  assert not list((tmp_path / "data").rglob("dataset_info.json"))


def test_a_single_600_px_scene_builds_into_three_splits(tmp_path):
  """The default geotiff config (256-px tiles, 512-px blocks) on one
  600 x 600 px scene: 2 x 2 tiles in one block, so blocks shrink to one tile
  and train, validation and test each get at least one."""
  manual = tmp_path / "manual"
  synthetic.make_scene(11, manual / "area", size=600)
  builder = _build("geotiff", tmp_path / "data", manual)
  sizes = {s: builder.info.splits[s].num_examples for s in rsms.SPLITS}
  assert sizes == {"train": 2, "validation": 1, "test": 1}, sizes
  report = _report(builder)
  assert report["splits"]["block_size"] == 256
  assert report["splits"]["configured_block_size"] == 512
  assert report["splits"]["tiles"] == sizes
  assert report["splits"]["shares"] == {"train": 0.5, "validation": 0.25,
                                        "test": 0.25}


def test_failed_build_leaves_no_dataset_and_rebuild_works(tmp_path,
                                                          monkeypatch):
  original = geo_scene.SceneReader.read
  calls = {"n": 0}

  def crash_during_writing(self, window):
    calls["n"] += 1
    if calls["n"] > 17 + 5:  # After the first pass and 5 written examples.
      raise OSError("disk vanished")
    return original(self, window)

  monkeypatch.setattr(geo_scene.SceneReader, "read", crash_during_writing)
  with pytest.raises(OSError, match="disk vanished"):
    _build(GEOTIFF_TEST, tmp_path, DUMMY_DIR)
  config_dir = tmp_path / "rs_multisource" / "geotiff_test"
  assert not list(config_dir.rglob("dataset_info.json"))
  monkeypatch.setattr(geo_scene.SceneReader, "read", original)
  builder = rsms.Builder(config=GEOTIFF_TEST, data_dir=str(tmp_path))
  assert not builder.is_prepared()
  builder = _build(GEOTIFF_TEST, tmp_path, DUMMY_DIR)
  assert sum(s.num_examples for s in builder.info.splits.values()) == 17


# ESA WorldCover's codes for the Dynamic World classes 0..8 (as a user's
# class_map would give them; only that it is a one-to-one map matters here).
WORLDCOVER = {80: 0, 10: 1, 30: 2, 90: 3, 40: 4, 20: 5, 50: 6, 60: 7, 70: 8}


def _rewrite(scene, source, change):
  """Rewrites `<root>/<scene>/<source>.tif` of a scene copy: `change(data,
  profile)` returns the new data and profile updates."""
  def damage(root):
    path = root / scene / f"{source}.tif"
    with rasterio.open(path) as src:
      profile, data = src.profile, src.read()
    data, updates = change(data, profile)
    profile.update(updates)
    with rasterio.open(path, "w", **profile) as dst:
      dst.write(data)
  return damage


def _as_reflectance(data, profile):
  return data.astype(np.float32) / 10_000, dict(dtype="float32")


def _as_db(data, profile):
  return (10 * np.log10(np.maximum(data, 1e-5))).astype(np.float32), {}


def _as_8bit(data, profile):
  db = 10 * np.log10(np.maximum(data, 1e-5))
  return np.clip((db + 30) * 6, 1, 255).astype(np.uint8), dict(
      dtype="uint8", nodata=0)


def _fractional(data, profile):
  values = data.astype(np.float32)
  return np.where(data == profile["nodata"], values, values + 0.5), dict(
      dtype="float32")


def _worldcover(data, profile):
  to_code = {target: code for code, target in WORLDCOVER.items()}
  coded = np.vectorize(lambda v: to_code.get(int(v), v))(data)
  return coded.astype(np.uint8), {}


def _code_nine(data, profile):
  data[:, 40:44, 40:44] = 9
  return data, {}


@pytest.mark.parametrize("damage, options, file, band, expected", [
    (_rewrite("scene_b", "s2", _as_reflectance), {}, "scene_b/s2.tif",
     "band 1 (B2)", "set s2_units='reflectance' in the builder config"),
    (_rewrite("scene_a", "s1", _as_8bit), {"s1_units": "db"},
     "scene_a/s1.tif", "band 1 (VV)", "(uint8), declared as Sentinel-1 "
     "sigma0 in dB"),
    (None, {"s1_units": "db"}, "scene_a/s1.tif", "band 1 (VV)",
     "set s1_units='linear' in the builder config"),
    (_rewrite("scene_b", "s1", _as_db), {}, "scene_b/s1.tif", "band 1 (VV)",
     "set s1_units='db' in the builder config"),
    (_rewrite("scene_a", "lulc", _fractional), {}, "scene_a/lulc.tif",
     "band 1 (label)", "values with a fraction (e.g. "),
    (_rewrite("scene_b", "lulc", _worldcover), {}, "scene_b/lulc.tif",
     "band 1 (label)", "are not in the class table of 9 classes"),
    (_rewrite("scene_a", "lulc", _code_nine), {}, "scene_a/lulc.tif",
     "band 1 (label)", "codes [9] are not in the class table of 9 classes "
     "(0..8: water, trees, grass, flooded_vegetation, crops, "
     "shrub_and_scrub, built, bare, snow_and_ice); the largest code, 9, "
     "needs more classes than that"),
    (_rewrite("scene_a", "lulc", _worldcover),
     {"class_map": {k: v for k, v in WORLDCOVER.items() if k != 60}},
     "scene_a/lulc.tif", "band 1 (label)",
     "codes [60] are not keys of class_map"),
], ids=["s2_reflectance_as_dn", "s1_8bit_as_db", "s1_linear_as_db",
        "s1_db_as_linear", "lulc_fractional_float", "lulc_unknown_codes",
        "lulc_code_beyond_class_count", "lulc_code_missing_from_class_map"])
def test_wrong_units_stop_the_build_naming_file_and_band(
    tmp_path, damage, options, file, band, expected):
  root = _scene_copy(tmp_path)
  if damage is not None:
    damage(root)
  config = dataclasses.replace(GEOTIFF_TEST, **options)
  with pytest.raises(geo_units.UnitsError) as raised:
    _build(config, tmp_path / "data", root)
  message = str(raised.value)
  assert message.startswith(f"{root / file}: {band} of source ")
  assert expected in message, message
  # Stopped at the door: no example file, no dataset that looks complete.
  assert not list((tmp_path / "data").rglob("*.tfrecord*"))
  assert not list((tmp_path / "data").rglob("dataset_info.json"))
  assert not list((tmp_path / "data").rglob(report_lib.FILENAME))


def test_class_map_reads_other_codes_as_the_classes(tmp_path, geotiff):
  root = _scene_copy(tmp_path)
  for scene in ("scene_a", "scene_b"):
    _rewrite(scene, "lulc", _worldcover)(root)
  config = dataclasses.replace(GEOTIFF_TEST, class_map=WORLDCOVER)
  builder = _build(config, tmp_path / "data", root)
  for split in rsms.SPLITS:
    mapped, original = _examples(builder, split), _examples(geotiff, split)
    assert len(mapped) == len(original)
    for a, b in zip(mapped, original):
      np.testing.assert_array_equal(a["lulc"], b["lulc"])
      np.testing.assert_array_equal(a["valid"], b["valid"])


def test_an_all_nodata_scene_is_reported_not_dropped_silently(tmp_path):
  root = _scene_copy(tmp_path)
  shutil.copytree(root / "scene_a", root / "scene_c")
  _rewrite("scene_c", "s2", lambda data, _: (np.zeros_like(data), {}))(root)
  builder = _build(GEOTIFF_TEST, tmp_path / "data", root)
  assert sum(s.num_examples for s in builder.info.splits.values()) == 17
  report = _report(builder)
  assert report["scenes_read"] == 3
  assert report["scenes_without_tiles"] == {
      "scene_c": f"no valid pixel in {root / 'scene_c' / 's2.tif'} (bands "
                 "B2, B3, B4, B8: all nodata)"}
  assert "no tile from scene_c: no valid pixel in" in (
      builder._report.text())


def test_build_report_says_what_was_written(geotiff):
  report = _report(geotiff)
  assert report["config"] == "geotiff_test" and report["scenes_read"] == 2
  assert report["units"] == {"s2": "dn", "s1": "linear", "lulc": "classes",
                             "dem": "metres"}
  assert report["tiles"] == {"in_grids": 18, "kept": 17,
                             "dropped": {"nodata": 1, "split_border": 0}}
  assert report["scenes_without_tiles"] == {}
  by_scene = {scene["scene_id"]: scene for scene in report["scenes"]}
  assert by_scene["scene_b"]["dropped"] == {"nodata": 1, "split_border": 0}
  for scene in by_scene.values():  # 3 x 3 tiles of 32 px on the common grid
    rows, cols = scene["grid"]
    assert scene["uncovered_edge"] == [rows - 96, cols - 96]
    assert 0 <= rows - 96 < 32 and 0 <= cols - 96 < 32
  examples = {split: _examples(geotiff, split) for split in rsms.SPLITS}
  assert report["splits"]["tiles"] == {
      split: len(examples[split]) for split in rsms.SPLITS}
  # Blocks are single 32-px tiles: each block's split is its example's.
  for split, split_examples in examples.items():
    for e in split_examples:
      blocks = by_scene[e["scene_id"].decode()]["blocks"]
      block = next(b for b in blocks
                   if b["block"] == [int(e["tile_row"]), int(e["tile_col"])])
      assert block == {"block": block["block"], "split": split, "tiles": 1}
  stored = [e for split in rsms.SPLITS for e in examples[split]]
  valid = [e["valid"].astype(bool) for e in stored]
  # Class counts are integers and the ranges are float32 values of the
  # stored arrays themselves: both are compared exactly.
  labels = np.concatenate([e["lulc"][v] for e, v in zip(stored, valid)])
  assert report["classes"]["lulc"] == dict(zip(
      rsms.CLASS_NAMES, np.bincount(labels, minlength=9).tolist()))
  for source, names in (("s2", ("B2", "B3", "B4", "B8")), ("s1", ("VV", "VH")),
                        ("dem", ("elevation", "slope", "aspect",
                                 "hillshade"))):
    values = np.concatenate([e[source][v] for e, v in zip(stored, valid)])
    assert report["tile_ranges"][source] == [
        {"band": name, "count": len(values), "min": float(values[:, i].min()),
         "max": float(values[:, i].max())} for i, name in enumerate(names)]
  # The files' ranges in the files' units (S2 DN), read here with rasterio.
  dn = [rasterio.open(DUMMY_DIR / scene / "s2.tif").read(masked=True)
        for scene in ("scene_a", "scene_b")]
  assert report["file_ranges"]["s2"][0] == {
      "band": "B2", "count": int(sum(d[0].count() for d in dn)),
      "min": float(min(d[0].min() for d in dn)),
      "max": float(max(d[0].max() for d in dn))}


@pytest.mark.parametrize("blocks", [3, 4, 5, 6])
def test_every_split_gets_a_block_from_three_blocks_on(blocks):
  for seed in range(10):
    counts = {("scene", i, 0): 1 for i in range(blocks)}
    result = splits_lib.balanced_block_splits(counts, ratios=(7, 2, 1),
                                              seed=seed)
    assert set(result.values()) == set(rsms.SPLITS), (seed, result)
  # A split of ratio 0 is not filled.
  result = splits_lib.balanced_block_splits(
      {("scene", i, 0): 1 for i in range(6)}, ratios=(1, 1, 0), seed=0)
  assert set(result.values()) == {"train", "validation"}


def test_block_sizes_halve_down_to_the_tile_step():
  assert splits_lib.block_sizes(512, 256) == [512, 256]
  assert splits_lib.block_sizes(4096, 32) == [4096, 2048, 1024, 512, 256,
                                              128, 64, 32]
  assert splits_lib.block_sizes(200, 64) == [200, 100, 64]
  assert splits_lib.block_sizes(32, 32) == [32]


def test_balanced_block_splits_within_one_block():
  rng = np.random.default_rng(0)
  counts = {("scene", i, 0): int(c) for i, c in
            enumerate(rng.integers(1, 5, size=30))}
  result = splits_lib.balanced_block_splits(counts, ratios=(7, 2, 1), seed=3)
  assert result == splits_lib.balanced_block_splits(
      counts, ratios=(7, 2, 1), seed=3)
  total = sum(counts.values())
  for split, share in zip(rsms.SPLITS, (0.7, 0.2, 0.1)):
    size = sum(c for k, c in counts.items() if result[k] == split)
    assert abs(size - share * total) <= max(counts.values())
  assert result != splits_lib.balanced_block_splits(
      counts, ratios=(7, 2, 1), seed=4)


def test_config_errors():
  with pytest.raises(ValueError, match="s2_units must be 'dn' or"):
    dataclasses.replace(rsms.GEOTIFF, s2_units="toa")
  with pytest.raises(ValueError, match="maps code 10 to class 9, outside"):
    dataclasses.replace(rsms.GEOTIFF, class_map={10: 9})
  with pytest.raises(ValueError, match="optional feature group"):
    dataclasses.replace(rsms.GEOTIFF, optional=("clouds", "fog"))
  with pytest.raises(ValueError, match="s1_units"):
    dataclasses.replace(rsms.GEOTIFF, s1_units="amplitude")
  with pytest.raises(ValueError, match="unknown sources"):
    dataclasses.replace(rsms.GEOTIFF, patterns={"s3": "*.tif"})


def _horn_terrain(elevation, res):
  """Slope, aspect, hillshade (deg, deg, [0, 1]) of the interior cells of a
  float64 elevation array, from the documented definitions (the builder's
  docstring: Horn 3x3, sun azimuth 315, altitude 45), written out here.
  Rows run south, columns east; the output loses one cell on each side.
  """
  z = elevation
  a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
  d, f = z[1:-1, :-2], z[1:-1, 2:]
  g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
  east = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * res)   # dz/dx
  north = ((a + 2 * b + c) - (g + 2 * h + i)) / (8 * res)  # dz/dy
  slope = np.degrees(np.arctan(np.hypot(east, north)))
  # Steepest descent (-dz/dx, -dz/dy) as a bearing clockwise from north.
  aspect = np.degrees(np.arctan2(-east, -north)) % 360.0
  azimuth, altitude = np.radians(315.0), np.radians(45.0)
  sun = (np.sin(azimuth) * np.cos(altitude), np.cos(azimuth) * np.cos(altitude),
         np.sin(altitude))
  # cos(angle) of the surface normal (-dz/dx, -dz/dy, 1) and the sun, >= 0.
  hillshade = np.maximum(0.0, (-east * sun[0] - north * sun[1] + sun[2])
                         / np.sqrt(1 + east**2 + north**2))
  return slope, aspect, hillshade, np.hypot(east, north)


def test_geotiff_pixels_are_an_independent_read_of_the_scene_files(geotiff):
  """Every stored pixel of every geotiff tile (dummy_data, 17 tiles), where
  the tile is valid, against the scene's files read in this test with
  rasterio, with each documented conversion written out:

    s2    the S2 grid is the tile grid (the stored transform is a whole-pixel
          offset into s2.tif, same CRS and 10 m): DN / 10000, bands B2, B3,
          B4, B8 in file order; a pixel with a 0 (nodata) band is invalid.
    lulc  the same window of lulc.tif, unchanged (nearest on the same grid).
    s1    s1.tif (linear sigma0, VV then VH) lies on a grid shifted by 3.5
          and 2.25 pixels: bilinear of the four linear neighbours, weights from
          the two transforms, computed here in numpy, then dB = 10 log10
          (resampled in linear power, then converted).
    dem   dem.tif (EPSG:4326) reprojected by rasterio (bilinear, the same call
          any GDAL user makes) onto the tile grid grown by one pixel; slope,
          aspect, hillshade of that elevation from the formulas written out in
          `_horn_terrain`.

  Fails for a wrong S2 scale, swapped bands, S1 kept linear, dB taken before
  resampling (a different value where neighbours differ), another sun, or a
  wrong slope/aspect formula.

  Tolerances, float32 unit roundoff u = 2**-24:
    s2: stored = float32(float32(DN) * float32(1e-4)): relative <= 2u.
    s1: the builder resamples in float64 (dyadic weights), rounds to float32
      (relative u: 10/ln10 * u = 2.6e-7 dB), takes log10 in float32 (a few
      ulp of a value < 4: <= 4 * 2**-22 * 10 = 9.5e-6 dB) and multiplies by
      10 (half an ulp of |dB| < 64: 2**-19); sum < 2**-16 dB.
    elevation: both sides are the same float64 GDAL warp of the same grid
      window (the builder's source window differs by a whole-pixel offset),
      rounded to float32: <= one ulp below 512 m, 2**-15 m.
    terrain: the builder works in float32 on the rounded elevations: each
      Horn numerator has input error <= 8 u zmax (weights sum to 8) and <= 14
      rounding steps of sums below 4 zmax plus the division, so the gradient
      error is eps <= 30 u zmax / (8 res) per component, zmax = 512 m. Then
      slope (deg) <= deg(sqrt2 eps) + a few ulp of 90; aspect <= deg(2 sqrt2
      eps / |grad|) (compared where |grad| > 8 eps; flatter cells have no
      numerically defined aspect) plus a few ulp of 360; hillshade, whose
      gradient wrt (dz/dx, dz/dy) is at most 2 in norm, <= 2 sqrt2 eps + 8 u.
  """
  import rasterio.warp
  from affine import Affine

  u, zmax, res = 2.0**-24, 512.0, 10.0
  eps = 30 * u * zmax / (8 * res)
  examples = [e for s in rsms.SPLITS for e in _examples(geotiff, s)]
  assert len(examples) == 17
  compared = {"s2": 0, "s1": 0, "dem": 0, "aspect": 0}
  for example in examples:
    scene = DUMMY_DIR / example["scene_id"].decode()
    tile = Affine(*example["transform"])
    valid = example["valid"].astype(bool)
    rows, cols = valid.shape
    files = {}
    for name in ("s2", "s1", "lulc"):
      with rasterio.open(scene / f"{name}.tif") as image:
        files[name] = (image.read(), image.transform, image.crs)
    crs = files["s2"][2]
    assert rasterio.crs.CRS.from_wkt(example["crs"].decode()) == crs

    # s2 and lulc: whole-pixel offsets into files on the tile's lattice.
    for name in ("s2", "lulc"):
      data, transform, file_crs = files[name]
      assert file_crs == crs and transform.a == tile.a == res
      col0, row0 = ~transform * (tile.c, tile.f)
      assert col0 == int(col0) and row0 == int(row0)
      files[name] = data[:, int(row0):int(row0) + rows,
                         int(col0):int(col0) + cols]
    dn = files["s2"]  # (4, rows, cols) uint16, B2 B3 B4 B8
    assert dn.shape == (4, rows, cols) and dn.dtype == np.uint16
    assert not valid[(dn == 0).any(axis=0)].any()  # nodata is invalid
    expected = np.moveaxis(dn.astype(np.float64) / 10_000.0, 0, -1)
    np.testing.assert_allclose(example["s2"][valid], expected[valid],
                               rtol=2 * u, atol=0)
    compared["s2"] += valid.sum()
    np.testing.assert_array_equal(example["lulc"][valid],
                                  files["lulc"][0][valid])

    # s1: bilinear in linear power from the transforms, then dB.
    sigma0, s1_transform, s1_crs = files["s1"]
    assert s1_crs == crs and sigma0.dtype == np.float32
    centres_x = tile.c + res * (np.arange(cols) + 0.5)
    centres_y = tile.f - res * (np.arange(rows) + 0.5)
    x = (centres_x - s1_transform.c) / s1_transform.a - 0.5
    y = (centres_y - s1_transform.f) / s1_transform.e - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    wx, wy = x - x0, y - y0
    assert set(wx) == {0.5} and set(wy) == {0.75}  # a real interpolation
    inside = ((y0 >= 0) & (y0 + 1 < sigma0.shape[1]))[:, None] & (
        (x0 >= 0) & (x0 + 1 < sigma0.shape[2]))[None, :]
    y0c = np.clip(y0, 0, sigma0.shape[1] - 2)[:, None]
    x0c = np.clip(x0, 0, sigma0.shape[2] - 2)[None, :]
    s = sigma0.astype(np.float64)
    corners = [s[:, y0c, x0c], s[:, y0c, x0c + 1], s[:, y0c + 1, x0c],
               s[:, y0c + 1, x0c + 1]]
    linear = ((1 - wy)[:, None] * ((1 - wx)[None] * corners[0]
                                   + wx[None] * corners[1])
              + wy[:, None] * ((1 - wx)[None] * corners[2]
                               + wx[None] * corners[3]))
    usable = valid & inside & (np.stack(corners) > 0).all(axis=(0, 1))
    assert linear[:, usable].min() > 1e-5  # above the dB floor
    expected_db = np.moveaxis(10.0 * np.log10(linear), 0, -1)
    np.testing.assert_allclose(example["s1"][usable], expected_db[usable],
                               rtol=0, atol=2.0**-16)
    compared["s1"] += usable.sum()

    # dem: rasterio reprojection onto the tile grown by one pixel, then Horn.
    with rasterio.open(scene / "dem.tif") as dem_file:
      source = dem_file.read(1).astype(np.float64)
      source[source == dem_file.nodata] = np.nan
      elevation = np.full((rows + 2, cols + 2), np.nan)
      rasterio.warp.reproject(
          source=source, destination=elevation,
          src_transform=dem_file.transform, src_crs=dem_file.crs,
          src_nodata=np.nan, dst_transform=tile * Affine.translation(-1, -1),
          dst_crs=crs, dst_nodata=np.nan,
          resampling=rasterio.warp.Resampling.bilinear)
    assert np.nanmax(elevation) < zmax and np.nanmin(elevation) >= 0
    halo_ok = np.ones((rows, cols), bool)
    for dr in range(3):
      for dc in range(3):
        halo_ok &= np.isfinite(elevation[dr:dr + rows, dc:dc + cols])
    usable = valid & halo_ok
    slope, aspect, hillshade, grad = _horn_terrain(elevation, res)
    dem = example["dem"]
    np.testing.assert_allclose(dem[..., 0][usable],
                               elevation[1:-1, 1:-1][usable],
                               rtol=0, atol=2.0**-15)
    np.testing.assert_allclose(dem[..., 1][usable], slope[usable], rtol=0,
                               atol=np.degrees(np.sqrt(2) * eps) + 8 * u * 128)
    steep = usable & (grad > 8 * eps)
    turn = (dem[..., 2] - aspect + 180.0) % 360.0 - 180.0  # circular
    bound = np.degrees(2 * np.sqrt(2) * eps / np.maximum(grad, eps))
    assert (np.abs(turn[steep]) <= bound[steep] + 8 * u * 512).all(), (
        np.abs(turn[steep]).max())
    np.testing.assert_allclose(dem[..., 3][usable], hillshade[usable], rtol=0,
                               atol=2 * np.sqrt(2) * eps + 8 * u)
    compared["dem"] += usable.sum()
    compared["aspect"] += steep.sum()
  # Most of the 17 * 32 * 32 pixels were compared, not a few corners.
  assert min(compared.values()) > 0.9 * 17 * 32 * 32, compared


def test_geotiff_config_is_the_papers_data():
  """RS-SPADE: DEM and terrain at 30 m (Sec. 2.1), a 7:2:1 split (Sec.
  3.2), 10 m S2 / S1 grid (Sec. 2.1); synthetic configs keep 1.1.0's
  terrain."""
  assert rsms.GEOTIFF.dem_resolution == 30.0
  assert tuple(rsms.GEOTIFF.split_ratios) == (7.0, 2.0, 1.0)
  assert rsms.GEOTIFF.resolution == 10.0
  assert rsms.SYNTHETIC.dem_resolution is None
  assert str(rsms.Builder.VERSION) == "1.2.0"
  with pytest.raises(ValueError, match="dem_resolution"):
    dataclasses.replace(rsms.GEOTIFF, name="finer", dem_resolution=5.0)


def test_geotiff_terrain_at_30_m_is_an_independent_read(tmp_path):
  """The geotiff config's terrain (RS-SPADE Sec. 2.1: the DEM and its
  terrain at 30 m): per tile, GDAL's bilinear warp of dem.tif onto a 30 m
  grid with the 10 m grid's origin, Horn's terrain of it written out
  (`_horn_terrain`, res 30), then scipy's linear interpolation
  (`map_coordinates`, order 1) at each 10 m centre's position on it,
  (x - x0) / 30 - 0.5. Fails for terrain taken on the 10 m grid, another
  lattice origin or a half-pixel shift.

  Tolerances (u = 2**-24, zmax = 512 m): elevation, a convex combination of
  float32-rounded posts (half an ulp below 512 m, 2**-15) rounded again to
  float32: 2**-14. Slope and hillshade: the per-post float32 bounds of
  test_geotiff_pixels_are_an_independent_read_of_the_scene_files with res
  30 (a convex combination keeps them), doubled for the output rounding.
  """
  import rasterio.warp
  from affine import Affine
  from scipy import ndimage

  builder = _build(GEOTIFF_30M, tmp_path / "data", DUMMY_DIR)
  u, zmax, res = 2.0**-24, 512.0, 30.0
  eps = 30 * u * zmax / (8 * res)
  examples = [e for s in rsms.SPLITS for e in _examples(builder, s)]
  assert len(examples) == 17
  compared = 0
  scenes = {scene.scene_id: scene for scene in scenes_lib.find_scenes(
      DUMMY_DIR, scenes_lib.REQUIRED_SOURCES, geo_scene.DEFAULT_PATTERNS)}
  for example in examples:
    scene = scenes[example["scene_id"].decode()]
    with geo_scene.SceneReader(scene.paths) as reader:
      x0, y0 = reader.grid.transform.c, reader.grid.transform.f
      crs = reader.grid.crs
    tile = Affine(*example["transform"])
    rows, cols = example["valid"].shape
    col_u = (tile.c + 10.0 * (np.arange(cols) + 0.5) - x0) / res - 0.5
    row_u = (y0 - (tile.f - 10.0 * (np.arange(rows) + 0.5))) / res - 0.5
    c0, r0 = int(np.floor(col_u[0])) - 1, int(np.floor(row_u[0])) - 1
    shape = (int(np.floor(row_u[-1])) + 3 - r0, int(np.floor(col_u[-1])) + 3
             - c0)
    with rasterio.open(scene.paths["dem"]) as dem_file:
      source = dem_file.read(1).astype(np.float64)
      source[source == dem_file.nodata] = np.nan
      elevation = np.full(shape, np.nan)
      rasterio.warp.reproject(
          source=source, destination=elevation,
          src_transform=dem_file.transform, src_crs=dem_file.crs,
          src_nodata=np.nan,
          dst_transform=Affine(res, 0, x0 + res * c0, 0, -res, y0 - res * r0),
          dst_crs=crs, dst_nodata=np.nan,
          resampling=rasterio.warp.Resampling.bilinear)
    slope, _, hillshade, _ = _horn_terrain(elevation, res)
    coords = np.meshgrid(row_u - (r0 + 1), col_u - (c0 + 1), indexing="ij")
    expected = {name: ndimage.map_coordinates(band, coords, order=1)
                for name, band in (("elevation", elevation[1:-1, 1:-1]),
                                   ("slope", slope),
                                   ("hillshade", hillshade))}
    usable = example["valid"].astype(bool) & np.isfinite(
        expected["elevation"]) & np.isfinite(expected["slope"])
    dem = example["dem"]
    np.testing.assert_allclose(dem[..., 0][usable],
                               expected["elevation"][usable], rtol=0,
                               atol=2.0**-14)
    np.testing.assert_allclose(
        dem[..., 1][usable], expected["slope"][usable], rtol=0,
        atol=2 * (np.degrees(np.sqrt(2) * eps) + 8 * u * 128))
    np.testing.assert_allclose(dem[..., 3][usable],
                               expected["hillshade"][usable], rtol=0,
                               atol=2 * (2 * np.sqrt(2) * eps + 8 * u))
    compared += usable.sum()
  assert compared > 0.9 * 17 * 32 * 32, compared
