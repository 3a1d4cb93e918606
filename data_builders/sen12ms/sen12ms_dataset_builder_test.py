"""Tests of the SEN12MS builder on dummy data in the published layout."""

from __future__ import annotations

import pytest
import tensorflow_datasets as tfds

from data_builders import public_common
from data_builders.sen12ms import sen12ms_dataset_builder


class Sen12msBuilderTest(tfds.testing.DatasetBuilderTestCase):
  """5 triplets of 4 scenes; spring scene 15 is an official hold-out scene."""
  DATASET_CLASS = sen12ms_dataset_builder.Builder
  SPLITS = {"train": 3, "validation": 1, "test": 1}


def test_holdout_list_has_the_26_published_scenes():
  assert len(set(sen12ms_dataset_builder.HOLDOUT_SCENES)) == 26


def test_missing_lc_folder_is_named(tmp_path):
  spring = tmp_path / "manual" / "ROIs1158_spring"
  for modality in ("s1", "s2"):
    (spring / f"{modality}_1").mkdir(parents=True)
    (spring / f"{modality}_1" / f"ROIs1158_spring_{modality}_1_p1.tif"
     ).write_bytes(b"")
  builder = sen12ms_dataset_builder.Builder(config="rgbn",
                                            data_dir=tmp_path / "data")
  config = tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
  with pytest.raises(public_common.ManualDataError, match="lc_1"):
    builder.download_and_prepare(download_config=config)
