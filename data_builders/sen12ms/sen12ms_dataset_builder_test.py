"""Tests of the SEN12MS builder on dummy data in the published layout."""

from __future__ import annotations

import pytest
import tensorflow_datasets as tfds

from data_builders import public_common
from data_builders.built_examples import built_examples
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


# The documented SEN12MS file contents (Schmitt et al. 2019; the builder's
# docstring), written out here rather than taken from the builder: the s2
# GeoTIFF's 13 bands in file order, the rgbn config's bands, and IGBP as band 1
# of the lc GeoTIFF.
S2_FILE_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9",
                 "B10", "B11", "B12")
CONFIG_BANDS = {"all": S2_FILE_BANDS, "rgbn": ("B2", "B3", "B4", "B8")}
IGBP_BAND = 1


@pytest.mark.parametrize("config", ["all", "rgbn"])
def test_stored_pixels_are_an_independent_rasterio_read(tmp_path, config):
  """Every stored pixel of every dummy patch, for both configs, equals a plain
  rasterio read of its GeoTIFF with the documented conversion written out:

    s2    the config's bands picked by name from the 13-band file order, DN /
          10000 (Sentinel-2 L1C reflectance x 10^4, rsjax/geo/bands.py);
    s1    the file's float32 sigma0, already in dB (checked: within
          [-50, 5]), stored unchanged, VV then VH;
    lulc  band 1 (IGBP, codes 1..17) of the lc file, as uint8;

  plus the CRS and affine transform of the s1 file. A 10x scale, a band
  picked or ordered wrongly (any two bands of the dummy data differ), or
  another lc band makes pixels differ by far more than the tolerances.

  Tolerance for s2: DNs are uint16, exact in float32; the builder multiplies
  by float32(1e-4) (relative rounding <= 2**-24) and rounds the product to
  float32 (<= 2**-24 again), so stored / (DN / 10000) - 1 is within 2 * 2**-24
  = 2**-23. s1 and lulc are copied: exact.
  """
  import numpy as np
  import rasterio
  from etils import epath

  manual = epath.Path(__file__).parent / "dummy_data"
  builder = sen12ms_dataset_builder.Builder(config=config,
                                            data_dir=str(tmp_path))
  picked = [S2_FILE_BANDS.index(name) for name in CONFIG_BANDS[config]]
  checked = 0
  for example in built_examples(builder, manual):
    season = example["season"].decode()
    scene, patch = int(example["scene"]), int(example["patch"])

    def read(modality, season=season, scene=scene, patch=patch):
      path = (manual / season / f"{modality}_{scene}"
              / f"{season}_{modality}_{scene}_p{patch}.tif")
      with rasterio.open(str(path)) as image:
        return image.read(), image.crs, image.transform

    dn, _, _ = read("s2")  # (13, rows, cols) uint16 digital numbers
    assert dn.dtype == np.uint16 and dn.shape[0] == 13
    assert dn.max() > 1000  # real DNs, not zeros
    expected = np.moveaxis(dn[picked].astype(np.float64) / 10_000.0, 0, -1)
    assert example["s2"].shape == expected.shape == (
        256, 256, len(picked))
    np.testing.assert_allclose(example["s2"], expected, rtol=2.0**-23,
                               atol=0, err_msg=f"s2 {example['id']}")

    sigma0_db, crs, transform = read("s1")
    assert sigma0_db.dtype == np.float32 and sigma0_db.shape[0] == 2
    assert -50 <= sigma0_db.min() and sigma0_db.max() <= 5  # dB, not linear
    np.testing.assert_array_equal(example["s1"],
                                  np.moveaxis(sigma0_db, 0, -1))
    assert example["s1"].dtype == np.float32

    lc, _, _ = read("lc")
    assert lc.shape[0] == 4 and 1 <= lc[IGBP_BAND - 1].min()
    assert lc[IGBP_BAND - 1].max() <= 17
    assert example["lulc"].dtype == np.uint8
    np.testing.assert_array_equal(example["lulc"], lc[IGBP_BAND - 1])

    assert rasterio.crs.CRS.from_wkt(example["crs"].decode()) == crs
    np.testing.assert_array_equal(example["transform"],
                                  tuple(transform)[:6])
    checked += 1
  assert checked == 5


def _rewrite(path, transform):
  """Rewrites a dummy GeoTIFF with `transform(data)` of the same shape."""
  import rasterio  # pylint: disable=g-import-not-at-top
  with rasterio.open(path) as f:
    profile, data = f.profile, f.read()
  new = transform(data)
  profile.update(dtype=new.dtype.name,
                 predictor=3 if new.dtype.kind == "f" else 2)
  with rasterio.open(path, "w", **profile) as f:
    f.write(new)


@pytest.mark.parametrize("modality, transform, band, setting_words", [
    # S2 exported as float reflectance (DN / 10000) instead of DN.
    ("s2", lambda d: (d / 10000).astype("float32"), "B1", "reflectance"),
    # S1 exported as linear power instead of dB.
    ("s1", lambda d: (10 ** (d / 10)).astype("float32"), "VV", "linear"),
    # IGBP codes beyond the 17 classes (e.g. a 0..255 reclassification).
    ("lc", lambda d: (d + 100).astype(d.dtype), "igbp", "class codes"),
])
def test_wrong_units_stop_the_build_naming_file_and_band(
    tmp_path, modality, transform, band, setting_words):
  import shutil  # pylint: disable=g-import-not-at-top
  manual = tmp_path / "manual"
  shutil.copytree(sen12ms_dataset_builder.Builder.code_path.parent
                  / "dummy_data", manual)
  broken = sorted(manual.rglob(f"*_{modality}_*_p*.tif"))[0]
  _rewrite(broken, transform)
  builder = sen12ms_dataset_builder.Builder(config="all",
                                            data_dir=tmp_path / "data")
  config = tfds.download.DownloadConfig(manual_dir=manual)
  from rsjax.geo import units  # pylint: disable=g-import-not-at-top
  with pytest.raises(units.UnitsError) as error:
    builder.download_and_prepare(download_config=config)
  message = str(error.value)
  assert str(broken) in message and band in message, message
  assert setting_words in message, message
  # Nothing that looks like a built dataset is left.
  assert not list((tmp_path / "data").rglob("dataset_info.json"))


def test_a_copy_in_reflectance_and_linear_power_builds_the_same_dataset(
    tmp_path):
  """s2_units='reflectance' and s1_units='linear' read a copy exported as
  reflectance (DN / 10000) and linear sigma0 (10^(dB/10)) into the dataset
  the published files give."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  dummy = sen12ms_dataset_builder.Builder.code_path.parent / "dummy_data"
  manual = tmp_path / "manual"
  shutil.copytree(dummy, manual)
  for path in manual.rglob("*_s2_*_p*.tif"):
    _rewrite(path, lambda d: (d.astype("float64") / 10000).astype("float32"))
  for path in manual.rglob("*_s1_*_p*.tif"):
    _rewrite(path, lambda d: (10 ** (d.astype("float64") / 10)
                              ).astype("float32"))
  base = next(c for c in sen12ms_dataset_builder.Builder.BUILDER_CONFIGS
              if c.name == "rgbn")
  exported = dataclasses.replace(base, name="rgbn_exported",
                                 s2_units="reflectance", s1_units="linear")

  def examples(config, manual_dir, data_dir):
    builder = sen12ms_dataset_builder.Builder(config=config,
                                              data_dir=data_dir)
    return {example["id"]: example
            for example in built_examples(builder, manual_dir)}

  plain = examples("rgbn", dummy, tmp_path / "plain")
  copy = examples(exported, manual, tmp_path / "copy")
  assert plain.keys() == copy.keys() and len(plain) == 5
  for key, example in plain.items():
    other = copy[key]
    # float32(DN / 10000) vs float32(DN) * float32(1e-4): each rounded
    # once or twice to float32, so within 2 ulps of values <= 6.6.
    np.testing.assert_allclose(other["s2"], example["s2"], rtol=3e-7,
                               atol=0)
    # dB -> float32 linear -> dB: the linear value's relative rounding
    # (6e-8) is 2.6e-7 dB, plus float32 rounding of dB values <= 25
    # (ulp 1.9e-6).
    np.testing.assert_allclose(other["s1"], example["s1"], rtol=0,
                               atol=5e-6)
    np.testing.assert_array_equal(other["lulc"], example["lulc"])


def test_build_report_counts_items_examples_classes_and_ranges(tmp_path):
  """build_report.json of the dummy data, against the fixture written out:
  5 patches (the hold-out spring scene 15 is the test split), every patch
  written, IGBP codes of make_public_dummy_data, DN / 10000 ranges."""
  import json  # pylint: disable=g-import-not-at-top
  import pathlib  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import rasterio  # pylint: disable=g-import-not-at-top
  dummy = pathlib.Path(str(sen12ms_dataset_builder.Builder.code_path.parent
                           / "dummy_data"))
  builder = sen12ms_dataset_builder.Builder(config="rgbn",
                                            data_dir=tmp_path / "data")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=dummy))
  report = json.loads((builder.data_path / "build_report.json").read_text())
  assert report["items"] == {"train": 3, "validation": 1, "test": 1}
  assert report["examples"] == report["items"]
  assert set(report["not_written"].values()) == {0}
  # The IGBP codes the fixture holds, counted with an independent read.
  counts = {}
  for path in sorted(dummy.rglob("*_lc_*_p*.tif")):
    with rasterio.open(path) as f:
      codes, n = np.unique(f.read(1), return_counts=True)
    for code, c in zip(codes.tolist(), n.tolist()):
      name = sen12ms_dataset_builder.IGBP_CLASSES[code]
      counts[name] = counts.get(name, 0) + c
  assert report["classes"]["lulc"] == counts
  # B2's stored range is the files' band 2 range / 10000 (float32 product).
  low, high = [], []
  for path in sorted(dummy.rglob("*_s2_*_p*.tif")):
    with rasterio.open(path) as f:
      band = f.read(2)
    low.append(band.min()), high.append(band.max())
  (b2,) = [r for r in report["ranges"]["s2"] if r["band"] == "B2"]
  scale = np.float32(1e-4)
  assert b2["min"] == float(np.float32(min(low)) * scale)
  assert b2["max"] == float(np.float32(max(high)) * scale)
