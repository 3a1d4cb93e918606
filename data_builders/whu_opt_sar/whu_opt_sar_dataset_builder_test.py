"""Tests of the WHU-OPT-SAR builder on dummy data in the published layout."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_builders import public_common
from data_builders.built_examples import tiles_by_position
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


def test_stored_pixels_are_an_independent_rasterio_read(tmp_path):
  """Every stored tile equals the same window of a plain rasterio read of its
  scene's three files:

    optical  the 4 bands in file order (R, G, B, NIR), uint8, unconverted;
    sar      the 1-band uint8 SAR image, unconverted;
    label    the documented codes 0 background, 10 farmland, 20 city,
             30 village, 40 water, 50 forest, 60 road, 70 others (Li et al.
             2022; the dataset's README) as class indices 0..7 (code / 10,
             written out as a table below);

  and every 256-pixel tile of each scene (row-major, no overlap, edge strips
  left out; max_background_fraction 1.0 keeps all) is stored once. Integer
  data: exact. A swapped band, optical and SAR mixed up, a label remap left
  out or shifted fails.
  """
  import rasterio
  from etils import epath

  manual = epath.Path(__file__).parent / "dummy_data"
  code_to_class = {0: 0, 10: 1, 20: 2, 30: 3, 40: 4, 50: 5, 60: 6, 70: 7}
  stored = tiles_by_position(whu.Builder(data_dir=str(tmp_path)), manual, 256)

  expected_keys = set()
  for optical_path in sorted(manual.glob("optical/*.tif")):
    scene = optical_path.name[:-len(".tif")]
    files = {}
    for folder, count in (("optical", 4), ("sar", 1), ("lbl", 1)):
      with rasterio.open(str(manual / folder / f"{scene}.tif")) as image:
        files[folder] = np.moveaxis(image.read(), 0, -1)
      assert files[folder].shape[-1] == count
      assert files[folder].dtype == np.uint8
    codes = files["lbl"][..., 0]
    assert set(np.unique(codes)) <= set(code_to_class)
    classes = np.zeros(codes.shape, np.uint8)
    for code, index in code_to_class.items():
      classes[codes == code] = index
    rows, cols = codes.shape
    for row in range(0, rows - 255, 256):
      for col in range(0, cols - 255, 256):
        expected_keys.add((scene, row, col))
        example = stored[(scene, row, col)]
        window = np.s_[row:row + 256, col:col + 256]
        for name, expected in (("s2", files["optical"][window]),
                               ("s1", files["sar"][window]),
                               ("lulc", classes[window])):
          assert example[name].dtype == np.uint8
          np.testing.assert_array_equal(example[name], expected,
                                        err_msg=f"{name} {scene} {row} {col}")
  assert set(stored) == expected_keys and len(expected_keys) == 10
