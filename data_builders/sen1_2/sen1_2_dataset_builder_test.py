"""Tests of the SEN1-2 builder on dummy data in the published layout."""

from __future__ import annotations

import pytest
import tensorflow_datasets as tfds

from data_builders import public_common
from data_builders.sen1_2 import sen1_2_dataset_builder


class Sen12BuilderTest(tfds.testing.DatasetBuilderTestCase):
  """Builds the dummy data: 6 patches of 4 scenes, split by scene."""
  DATASET_CLASS = sen1_2_dataset_builder.Builder
  SPLITS = {"train": 3, "validation": 2, "test": 1}


def test_missing_manual_dir_names_the_season_folders(tmp_path):
  builder = sen1_2_dataset_builder.Builder(data_dir=tmp_path / "data")
  config = tfds.download.DownloadConfig(manual_dir=tmp_path / "empty")
  (tmp_path / "empty" / "ROIs1158_spring").mkdir(parents=True)
  with pytest.raises(public_common.ManualDataError,
                     match="ROIs1868_summer"):
    builder.download_and_prepare(download_config=config)


def test_s1_without_s2_names_the_missing_folder(tmp_path):
  scene = tmp_path / "manual" / "ROIs1158_spring" / "s1_3"
  scene.mkdir(parents=True)
  (scene / "ROIs1158_spring_s1_3_p1.png").write_bytes(b"")
  builder = sen1_2_dataset_builder.Builder(data_dir=tmp_path / "data")
  config = tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
  with pytest.raises(public_common.ManualDataError, match="s2_3"):
    builder.download_and_prepare(download_config=config)
