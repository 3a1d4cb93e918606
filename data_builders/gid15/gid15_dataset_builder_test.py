"""Tests of the GID-15 builder on dummy data in the published layout."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_builders import public_common
from data_builders.built_examples import tiles_by_position
from data_builders.gid15 import gid15_dataset_builder as gid15


class Gid15BuilderTest(tfds.testing.DatasetBuilderTestCase):
  """6 scenes of 520x300: 2 tiles each, one tile > 80% unknown; split 4:1:1."""
  DATASET_CLASS = gid15.Builder
  SPLITS = {"train": 7, "validation": 2, "test": 2}


def test_palette_colours_map_to_their_class_and_others_to_unknown():
  rgb = np.asarray(gid15.PALETTE + ((1, 2, 3),), np.uint8)[None]
  classes, unmatched = gid15.colours_to_classes(rgb)
  np.testing.assert_array_equal(classes[0], list(range(16)) + [0])
  assert unmatched == 1
  assert len(gid15.CLASS_NAMES) == len(set(gid15.PALETTE)) == 16


def test_missing_image_is_named(tmp_path):
  root = tmp_path / "manual" / gid15.TOP_FOLDERS[0]
  (root / "label_15classes").mkdir(parents=True)
  (root / "image_RGB").mkdir()
  (root / "label_15classes" / "GF2_X-MSS1_label.tif").write_bytes(b"")
  builder = gid15.Builder(config="rgb", data_dir=tmp_path / "data")
  config = tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
  with pytest.raises(public_common.ManualDataError,
                     match="image_RGB/GF2_X-MSS1.tif"):
    builder.download_and_prepare(download_config=config)


def test_wrong_manual_dir_names_the_expected_folder(tmp_path):
  builder = gid15.Builder(config="rgb", data_dir=tmp_path / "data")
  (tmp_path / "manual" / "GID").mkdir(parents=True)  # the wrong folder.
  config = tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
  with pytest.raises(public_common.ManualDataError,
                     match="Fine_Land-cover_Classification_15classes"):
    builder.download_and_prepare(download_config=config)


# GID-15's label colours as the dataset documents them (Tong et al. 2020, the
# GID project page's 15-class legend), class index in legend order, 0 unknown
# (black). Written out here, not taken from the builder's PALETTE.
GID15_LEGEND = {
    (0, 0, 0): 0,          # unknown
    (200, 0, 0): 1,        # industrial land
    (250, 0, 150): 2,      # urban residential
    (200, 150, 150): 3,    # rural residential
    (250, 150, 150): 4,    # traffic land
    (0, 200, 0): 5,        # paddy field
    (150, 250, 0): 6,      # irrigated land
    (150, 200, 150): 7,    # dry cropland
    (200, 0, 200): 8,      # garden plot
    (150, 0, 250): 9,      # arbor woodland
    (150, 150, 250): 10,   # shrub land
    (250, 200, 0): 11,     # natural grassland
    (200, 200, 0): 12,     # artificial grassland
    (0, 0, 200): 13,       # river
    (0, 150, 200): 14,     # lake
    (0, 200, 250): 15,     # pond
}


@pytest.mark.parametrize("config, folder, bands", [
    ("rgb", "image_RGB", 3), ("nirrgb", "image_NirRGB", 4)])
def test_stored_pixels_are_an_independent_rasterio_read(tmp_path, config,
                                                        folder, bands):
  """Every stored tile equals the same window of a plain rasterio read of its
  scene, for both configs:

    image  the scene's bands in file order (image_RGB: R, G, B; image_NirRGB:
           NIR, R, G, B), uint8, unconverted;
    label  each pixel's RGB colour looked up in the documented GID-15 legend
           above (every dummy colour is in it);

  and exactly the 256-pixel tiles of each scene (row-major, no overlap, edge
  strips left out) with at most 80% unknown pixels are stored. Integer data:
  exact. A swapped band, a wrong or shifted legend, a flipped window or a
  wrong unknown filter fails.
  """
  import rasterio
  from etils import epath

  root = (epath.Path(__file__).parent / "dummy_data"
          / "Fine_Land-cover_Classification_15classes")
  stored = tiles_by_position(
      gid15.Builder(config=config, data_dir=str(tmp_path)), root.parent, 256)

  expected_keys = set()
  for label_path in sorted(root.glob("label_15classes/*_label.tif")):
    scene = label_path.name[:-len("_label.tif")]
    with rasterio.open(str(label_path)) as label_file, rasterio.open(
        str(root / folder / f"{scene}.tif")) as image_file:
      colours = np.moveaxis(label_file.read(), 0, -1)  # (rows, cols, RGB)
      image = np.moveaxis(image_file.read(), 0, -1)
      assert image.shape[-1] == bands and image.dtype == np.uint8
      assert label_file.count == 3 and image.shape[:2] == colours.shape[:2]
    classes = np.full(colours.shape[:2], -1)
    for colour, index in GID15_LEGEND.items():
      classes[(colours == colour).all(axis=-1)] = index
    assert (classes >= 0).all()  # the dummy labels use legend colours only
    for row in range(0, colours.shape[0] - 255, 256):
      for col in range(0, colours.shape[1] - 255, 256):
        tile = classes[row:row + 256, col:col + 256]
        if (tile == 0).mean() > 0.8:
          assert (scene, row, col) not in stored
          continue
        expected_keys.add((scene, row, col))
        example = stored[(scene, row, col)]
        np.testing.assert_array_equal(
            example["s2"], image[row:row + 256, col:col + 256],
            err_msg=f"image {scene} {row} {col}")
        assert example["lulc"].dtype == np.uint8
        np.testing.assert_array_equal(example["lulc"], tile,
                                      err_msg=f"label {scene} {row} {col}")
  assert set(stored) == expected_keys and len(expected_keys) == 11


def test_tiles_more_than_80_percent_unknown_are_dropped(tmp_path):
  """The csebgan paper drops tiles with more than 80% unknown pixels. The
  dummy tiles are either 0% or ~90% unknown, so a copy of the dummy data gets
  one scene's tiles painted black (unknown) on 70% and on 82% of their rows:
  the first is kept, the second dropped (any threshold outside (0.70, 0.82]
  fails)."""
  import shutil

  import rasterio
  from etils import epath

  manual = tmp_path / "manual"
  shutil.copytree(str(epath.Path(__file__).parent / "dummy_data"), manual)
  root = manual / "Fine_Land-cover_Classification_15classes"
  scene = "GF2_PMS2__L1A0000607681-MSS2"
  path = root / "label_15classes" / f"{scene}_label.tif"
  with rasterio.open(path) as label:
    profile, colours = label.profile, label.read()
  assert (colours[:, :512].max(axis=0) > 0).all()  # no unknown pixel yet
  kept_rows, dropped_rows = round(0.70 * 256), round(0.82 * 256)
  colours[:, :kept_rows] = 0
  colours[:, 256:256 + dropped_rows] = 0
  with rasterio.open(path, "w", **profile) as label:
    label.write(colours)
  builder = gid15.Builder(config="rgb", data_dir=str(tmp_path / "data"))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual))
  offsets = {int(example["row_off"])
             for split in ("train", "validation", "test")
             for example in tfds.as_numpy(builder.as_dataset(split=split))
             if example["image_id"].decode() == scene}
  assert offsets == {0}
