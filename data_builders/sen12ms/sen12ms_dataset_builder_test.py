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


def test_stored_s2_is_an_independent_rasterio_read_over_10000(tmp_path):
  """Every stored S2 pixel of every dummy patch (all 13 bands) equals the
  GeoTIFF's digital number read with plain rasterio, divided by 10000: the
  documented Sentinel-2 L1C scale (rsjax/geo/bands.py, DN / 10000 =
  reflectance). A 10x (or any) scaling mistake in the builder or its constant
  makes every pixel differ by far more than the tolerance.

  Tolerance: DNs are uint16, exact in float32; the builder multiplies by
  float32(1e-4) (relative rounding <= 2**-24) and rounds the product to float32
  (<= 2**-24 again), so stored / (DN / 10000) - 1 is within 2 * 2**-24 = 2**-23.
  """
  import numpy as np
  import rasterio
  from etils import epath

  manual = epath.Path(__file__).parent / "dummy_data"
  builder = sen12ms_dataset_builder.Builder(config="all",
                                            data_dir=str(tmp_path))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual))
  checked = 0
  for split in ("train", "validation", "test"):
    for example in tfds.as_numpy(builder.as_dataset(split=split)):
      season = example["season"].decode()
      scene, patch = int(example["scene"]), int(example["patch"])
      path = (manual / season / f"s2_{scene}"
              / f"{season}_s2_{scene}_p{patch}.tif")
      with rasterio.open(str(path)) as image:
        dn = image.read()  # (13, rows, cols) uint16 digital numbers
      assert dn.dtype == np.uint16 and dn.max() > 1000  # real DNs, not zeros
      expected = np.moveaxis(dn.astype(np.float64) / 10_000.0, 0, -1)
      stored = example["s2"]
      assert stored.shape == expected.shape == (256, 256, 13)
      np.testing.assert_allclose(stored, expected, rtol=2.0**-23, atol=0,
                                 err_msg=str(path))
      checked += 1
  assert checked == 5
