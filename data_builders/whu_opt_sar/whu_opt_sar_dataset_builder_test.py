"""Tests of the WHU-OPT-SAR builder on dummy data in the published layout."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_builders import public_common
from data_builders.whu_opt_sar import whu_opt_sar_dataset_builder as whu
from rsjax.geo import io as geo_io


class WhuOptSarBuilderTest(tfds.testing.DatasetBuilderTestCase):
  """5 scenes of 300x520 (2 tiles each); 2 are official test scenes."""
  DATASET_CLASS = whu.Builder
  SPLITS = {"train": 4, "validation": 2, "test": 4}


def test_label_values_map_to_classes_and_bad_values_fail():
  np.testing.assert_array_equal(
      whu.label_classes(np.arange(0, 80, 10, dtype=np.uint8), "x"),
      np.arange(8))
  with pytest.raises(geo_io.RasterError, match="15"):
    whu.label_classes(np.asarray([0, 15], np.uint8), "x")


def test_scene_without_sar_is_named(tmp_path):
  manual = tmp_path / "manual"
  for folder in ("optical", "sar", "lbl"):
    (manual / folder).mkdir(parents=True)
  for folder in ("optical", "lbl"):
    (manual / folder / "NH49E001013.tif").write_bytes(b"")
  builder = whu.Builder(data_dir=tmp_path / "data")
  config = tfds.download.DownloadConfig(manual_dir=manual)
  with pytest.raises(public_common.ManualDataError,
                     match="sar/NH49E001013.tif"):
    builder.download_and_prepare(download_config=config)
