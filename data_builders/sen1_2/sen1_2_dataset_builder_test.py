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


def test_stored_pixels_are_an_independent_pil_read(tmp_path):
  """Every stored pixel of every dummy pair equals a plain PIL read of its PNG:
  SEN1-2 (Schmitt et al. 2018) publishes 8-bit images, s1 one grey VV band,
  s2 RGB (B4, B3, B2) in the PNG's channel order, and the builder stores them
  unconverted (lossless PNG encoding in TFDS). Integer data: exact. A swapped
  channel, a flip, s1 and s2 mixed up or a rescaling fails.
  """
  import numpy as np
  from etils import epath
  from PIL import Image

  manual = epath.Path(__file__).parent / "dummy_data"
  builder = sen1_2_dataset_builder.Builder(data_dir=str(tmp_path))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual))
  checked = 0
  for split in ("train", "validation", "test"):
    for example in tfds.as_numpy(builder.as_dataset(split=split)):
      season = example["season"].decode()
      scene, patch = int(example["scene"]), int(example["patch"])
      for name, mode in (("s1", "L"), ("s2", "RGB")):
        path = (manual / season / f"{name}_{scene}"
                / f"{season}_{name}_{scene}_p{patch}.png")
        with Image.open(str(path)) as image:
          assert image.mode == mode  # the published 8-bit modes: no convert
          expected = np.asarray(image)
        expected = expected.reshape(256, 256, -1)
        assert len(np.unique(expected)) > 10  # real pixels, not a constant
        assert example[name].dtype == np.uint8
        np.testing.assert_array_equal(example[name], expected,
                                      err_msg=str(path))
      checked += 1
  assert checked == 6
