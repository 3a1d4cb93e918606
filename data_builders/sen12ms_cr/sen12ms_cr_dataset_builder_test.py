"""Tests of the SEN12MS-CR builder on dummy data in the published layout."""

from __future__ import annotations

import pytest
import tensorflow_datasets as tfds

from data_builders import public_common
from data_builders.built_examples import built_examples
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


# SEN12MS-CR's documented file contents (Ebel et al. 2021; the builder's
# docstring), written out here rather than taken from the builder: the 13
# Sentinel-2 L1C bands of the s2 and s2_cloudy GeoTIFFs in file order, and the
# rgbn config's bands.
S2_FILE_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9",
                 "B10", "B11", "B12")
CONFIG_BANDS = {"all": S2_FILE_BANDS, "rgbn": ("B2", "B3", "B4", "B8")}


@pytest.mark.parametrize("config", ["all", "rgbn"])
def test_stored_pixels_are_an_independent_rasterio_read(tmp_path, config):
  """Every stored pixel of every dummy triplet, for both configs, equals a
  plain rasterio read of its GeoTIFF with the documented conversion:

    s2, s2_cloudy  the config's bands picked by name from the 13-band file
                   order, DN / 10000 (L1C reflectance x 10^4);
    s1             the file's float32 sigma0, already in dB (checked: within
                   [-50, 5]), unchanged, VV then VH;

  plus the CRS and transform of the s1 file. A wrong scale, a band picked or
  ordered wrongly, or s2 and s2_cloudy swapped (they differ under the clouds)
  fails.

  Tolerance for s2 / s2_cloudy: uint16 DNs are exact in float32; the builder
  multiplies by float32(1e-4) (relative error <= 2**-24) and rounds to float32
  (<= 2**-24), so stored / (DN / 10000) - 1 is within 2**-23. s1 is copied:
  exact.
  """
  import numpy as np
  import rasterio
  from etils import epath

  manual = epath.Path(__file__).parent / "dummy_data"
  builder = sen12ms_cr_dataset_builder.Builder(config=config,
                                               data_dir=str(tmp_path))
  picked = [S2_FILE_BANDS.index(name) for name in CONFIG_BANDS[config]]
  checked = 0
  for example in built_examples(builder, manual):
    season = example["season"].decode()
    scene, patch = int(example["scene"]), int(example["patch"])

    def read(modality, season=season, scene=scene, patch=patch):
      path = (manual / f"{season}_{modality}" / f"{modality}_{scene}"
              / f"{season}_{modality}_{scene}_p{patch}.tif")
      with rasterio.open(str(path)) as image:
        return image.read(), image.crs, image.transform

    for name in ("s2", "s2_cloudy"):
      dn, _, _ = read(name)
      assert dn.dtype == np.uint16 and dn.shape[0] == 13
      assert dn.max() > 1000  # real DNs, not zeros
      expected = np.moveaxis(dn[picked].astype(np.float64) / 10_000.0, 0,
                             -1)
      assert example[name].shape == expected.shape == (
          256, 256, len(picked))
      np.testing.assert_allclose(example[name], expected, rtol=2.0**-23,
                                 atol=0, err_msg=f"{name} {example['id']}")

    sigma0_db, crs, transform = read("s1")
    assert sigma0_db.dtype == np.float32 and sigma0_db.shape[0] == 2
    assert -50 <= sigma0_db.min() and sigma0_db.max() <= 5  # dB, not linear
    assert example["s1"].dtype == np.float32
    np.testing.assert_array_equal(example["s1"],
                                  np.moveaxis(sigma0_db, 0, -1))
    assert rasterio.crs.CRS.from_wkt(example["crs"].decode()) == crs
    np.testing.assert_array_equal(example["transform"],
                                  tuple(transform)[:6])
    checked += 1
  assert checked == 4
