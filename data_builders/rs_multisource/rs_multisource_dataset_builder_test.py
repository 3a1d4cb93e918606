"""Tests of the rs_multisource builder: each config built into a temporary data_dir.

synthetic_tiny is built as is; geotiff is built on dummy_data/ (two real scene
folders, see make_dummy_data.py) with 32-pixel tiles, its only change. The
full `synthetic` config is built by benchmarks/dataset_build.py, not here.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import shutil

import numpy as np
import pytest
import rasterio
import tensorflow_datasets as tfds
from rasterio.windows import Window

from data_builders.rs_multisource import rs_multisource_dataset_builder as rsms
from data_builders.rs_multisource import scenes as scenes_lib
from data_builders.rs_multisource import splits as splits_lib
from rsjax.geo import scene as geo_scene

DUMMY_DIR = pathlib.Path(__file__).resolve().parent / "dummy_data"
GEOTIFF_TEST = dataclasses.replace(rsms.GEOTIFF, name="geotiff_test",
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
  version_dir = tmp_path / "data" / "rs_multisource" / "geotiff_test" / "1.0.0"
  assert not (version_dir / "dataset_info.json").exists()


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
  with pytest.raises(ValueError, match="optional feature group"):
    dataclasses.replace(rsms.GEOTIFF, optional=("clouds", "fog"))
  with pytest.raises(ValueError, match="s1_units"):
    dataclasses.replace(rsms.GEOTIFF, s1_units="amplitude")
  with pytest.raises(ValueError, match="unknown sources"):
    dataclasses.replace(rsms.GEOTIFF, patterns={"s3": "*.tif"})
