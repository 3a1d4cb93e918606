"""Tests of the SEN12MS-CR builder on dummy data in the published layout."""

from __future__ import annotations

import pytest
import tensorflow_datasets as tfds

from data_builders import public_common
from data_builders.sen12ms_cr import sen12ms_cr_dataset_builder


class Sen12msCrBuilderTest(tfds.testing.DatasetBuilderTestCase):
  """4 triplets of 3 scenes in two seasons, split by scene."""
  DATASET_CLASS = sen12ms_cr_dataset_builder.Builder
  SPLITS = {"train": 1, "validation": 2, "test": 1}


def test_missing_cloudy_patch_is_named(tmp_path):
  manual = tmp_path / "manual"
  for modality in ("s1", "s2", "s2_cloudy"):
    scene = manual / f"ROIs1970_fall_{modality}" / f"{modality}_4"
    scene.mkdir(parents=True)
    patches = (1, 2) if modality != "s2_cloudy" else (1,)
    for k in patches:
      (scene / f"ROIs1970_fall_{modality}_4_p{k}.tif").write_bytes(b"")
  builder = sen12ms_cr_dataset_builder.Builder(config="rgbn",
                                               data_dir=tmp_path / "data")
  config = tfds.download.DownloadConfig(manual_dir=manual)
  with pytest.raises(public_common.ManualDataError,
                     match="ROIs1970_fall_s2_cloudy_4_p2.tif"):
    builder.download_and_prepare(download_config=config)
