"""Opening rasters and windowed reads: masks and errors that name the file."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from rsjax.geo import io


def write_raster(path, data, *, crs="EPSG:32633", nodata=None,
                 transform=Affine(10, 0, 500000, 0, -10, 5000000)):
  data = np.asarray(data)
  if data.ndim == 2:
    data = data[None]
  profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1],
                 count=data.shape[0], dtype=data.dtype.name, transform=transform,
                 nodata=nodata)
  if crs is not None:
    profile["crs"] = crs
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
    with rasterio.open(path, "w", **profile) as dataset:
      dataset.write(data)
  return str(path)


def test_window_read_returns_data_and_mask(tmp_path):
  data = np.arange(3 * 20 * 30, dtype=np.int16).reshape(3, 20, 30)
  data[1, 5, 7] = -9999  # Nodata in one band invalidates the pixel.
  path = write_raster(tmp_path / "s2.tif", data, nodata=-9999)
  with io.open_raster(path, expected_bands=3) as dataset:
    read = io.read_window(dataset, Window(4, 2, 10, 6), bands=[1, 2])
  assert read.data.shape == (2, 6, 10)
  assert read.data.dtype == np.int16   # masking keeps the file's dtype
  assert read.valid.shape == (6, 10)
  assert not read.valid[3, 3]
  assert read.valid.sum() == 59
  np.testing.assert_array_equal(read.data[:, 3, 3], 0)
  assert (read.data != -9999).all()
  np.testing.assert_array_equal(read.data[0, 0], data[0, 2, 4:14])


def test_non_finite_floats_are_invalid(tmp_path):
  data = np.ones((8, 8), np.float32)
  data[0, 0], data[1, 1] = np.nan, np.inf
  path = write_raster(tmp_path / "dem.tif", data)
  with io.open_raster(path) as dataset:
    read = io.read_window(dataset)
  assert read.valid.sum() == 62
  assert np.isfinite(read.data).all()


def test_missing_file_is_named(tmp_path):
  path = tmp_path / "missing.tif"
  with pytest.raises(FileNotFoundError, match="missing.tif"):
    io.open_raster(path)


def test_unreadable_file_is_named(tmp_path):
  path = tmp_path / "broken.tif"
  path.write_bytes(b"this is not a GeoTIFF")
  with pytest.raises(io.RasterError, match="broken.tif"):
    io.open_raster(path)


def test_raster_without_crs_is_named(tmp_path):
  path = write_raster(tmp_path / "nocrs.tif", np.zeros((4, 4), np.uint8),
                      crs=None)
  with pytest.raises(io.RasterError, match=r"nocrs.tif: raster has no CRS; "
                     r"it cannot be placed on a map\. Assign one \(e\.g\. "
                     r"`gdal_edit\.py -a_srs EPSG:XXXX`\) before using it\.$"):
    io.open_raster(path)


def test_raster_without_geotransform_is_named(tmp_path):
  path = write_raster(tmp_path / "nogrid.tif", np.zeros((4, 4), np.uint8),
                      transform=Affine.identity())
  with pytest.raises(io.RasterError, match=r"nogrid.tif: raster has no "
                     r"geotransform \(pixel grid unknown\)\.$"):
    io.open_raster(path)


def test_band_count_mismatch_is_named(tmp_path):
  path = write_raster(tmp_path / "s1.tif", np.zeros((3, 4, 4), np.float32))
  with pytest.raises(io.RasterError,
                     match=r"s1.tif: has 3 band\(s\), expected 2"):
    io.open_raster(path, expected_bands=2)
  with io.open_raster(path) as dataset:
    with pytest.raises(io.RasterError, match=r"s1.tif.*band\(s\) \[4\]"):
      io.read_window(dataset, bands=[4])


def test_all_nodata_window_is_named(tmp_path):
  data = np.full((10, 10), 7, np.uint8)
  data[:5] = 0
  path = write_raster(tmp_path / "lulc.tif", data, nodata=0)
  with io.open_raster(path) as dataset:
    with pytest.raises(io.EmptyWindowError, match="lulc.tif.*no valid pixel"):
      io.read_window(dataset, Window(0, 0, 10, 5), allow_empty=False)
    read = io.read_window(dataset, Window(0, 0, 10, 5))
  assert not read.valid.any()


def test_clip_window():
  assert io.clip_window(Window(-2.5, 3.2, 10, 4), 20, 6) == Window(0, 3, 6, 5)
  assert io.clip_window(Window(30, 0, 4, 4), 20, 20) is None
  # A window that only touches the raster's last row or column holds none.
  assert io.clip_window(Window(0, 20, 4, 4), 20, 20) is None
  assert io.clip_window(Window(20, 0, 4, 4), 20, 20) is None


def test_gdal_virtual_paths_are_not_looked_up_on_disk():
  """A /vsi path (GDAL's in-memory, archive and network filesystems) or a
  URL is handed to GDAL, whose error names it; only a local path that does
  not exist is a FileNotFoundError."""
  for path in ("/vsimem/rsjax_missing.tif", "zip+file://rsjax_missing.zip"):
    with pytest.raises(io.RasterError, match="rsjax_missing"):
      io.open_raster(path)
