"""Tests of the GID-15 builder on dummy data in the published layout."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_builders import public_common
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
