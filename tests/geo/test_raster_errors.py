"""Every error of a bad raster names the file, and the band or window where
known: a raster without a CRS, pixel data that cannot be read (a truncated
GeoTIFF whose header still opens), an S1 file whose VH band is all NaN, and
an extent or a warp that rasterio cannot transform, read through each layer
of rsjax/geo (io, align, scene)."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import rasterio
import rasterio.errors
from affine import Affine
from rasterio.windows import Window

from rsjax.geo import align, io
from rsjax.geo import scene as scene_lib
from tests.geo.test_io import write_raster

S1_BANDS = ("VV", "VH")


def _s1(path, vh):
  """A 2-band float S1 raster (64 x 64) with band descriptions, VH = `vh`."""
  vv = np.random.default_rng(0).uniform(0.01, 0.5, (64, 64))
  data = np.stack([vv, np.broadcast_to(vh, vv.shape)]).astype(np.float32)
  with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=2,
                     dtype="float32", crs="EPSG:32633",
                     transform=Affine(10, 0, 500000, 0, -10, 5000000)
                     ) as dataset:
    dataset.descriptions = S1_BANDS  # before the pixels: the header first
    dataset.write(data)
  return path


def _truncated(path):
  """An S1 raster cut to half its size: the header opens, pixels fail."""
  path = _s1(path, 0.1)
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.truncate(size // 2)
  with rasterio.open(path) as dataset:  # the header still opens
    assert dataset.count == 2
  return path


def _no_crs(path):
  return write_raster(path, np.ones((2, 8, 8), np.float32), crs=None)


def _whole(path):
  with io.open_raster(path) as dataset:
    return Window(0, 0, dataset.width, dataset.height)


def _read_window(path, **kwargs):
  with io.open_raster(path) as dataset:
    io.read_window(dataset, **kwargs)


def _read_aligned(path, **kwargs):
  grid = align.ReferenceGrid.from_raster(path)
  align.read_aligned(align.Source(path), grid, **kwargs)


def _scene_window(path):
  with scene_lib.SceneReader({"s1": path}, s1_units="db") as reader:
    reader.read(Window(0, 0, 64, 64))


WHOLE = re.escape(io.window_str(Window(0, 0, 64, 64)))
# (case, make the raster, what to do with it, exception, message patterns
# besides the file's path).
CASES = [
    ("no CRS: open", _no_crs, io.open_raster, io.RasterError, ["no CRS"]),
    ("no CRS: grid of it", _no_crs, align.ReferenceGrid.from_raster,
     io.RasterError, ["no CRS"]),
    ("no CRS: scene source", _no_crs,
     lambda path: scene_lib.find_sources([path], ["s1"],
                                         patterns={"s1": "*.tif"}),
     scene_lib.SceneError, ["source 's1'", "no CRS"]),
    ("corrupt pixels: window read", _truncated,
     lambda path: _read_window(path, window=_whole(path)), io.RasterError,
     [r"the pixels of bands 1 \(VV\), 2 \(VH\) in window " + WHOLE,
      "cannot be read", "IReadBlock failed",  # GDAL's words on the block
      "truncated or corrupt"]),
    ("corrupt pixels: one band", _truncated,
     lambda path: _read_window(path, window=_whole(path), bands=[2]),
     io.RasterError, [r"the pixels of band 2 \(VH\) in window " + WHOLE]),
    ("corrupt pixels: aligned read", _truncated, _read_aligned,
     io.RasterError, ["cannot be read"]),
    ("corrupt pixels: scene window", _truncated, _scene_window,
     io.RasterError, ["cannot be read"]),
    ("all-NaN VH band: window read", lambda p: _s1(p, np.nan),
     lambda path: _read_window(path, allow_empty=False),
     io.EmptyWindowError,
     [f"window {WHOLE} holds no valid pixel",
      r"; band 2 \(VH\) holds no valid pixel\.$"]),
    ("all-NaN VH band: aligned read", lambda p: _s1(p, np.nan),
     _read_aligned, io.EmptyWindowError,
     [f"grid window {WHOLE} holds no valid pixel",
      r"; band 2 \(VH\) holds no valid pixel\.$"]),
]


@pytest.mark.parametrize("make, act, error, patterns",
                         [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_raster_errors_name_the_file_band_and_window(tmp_path, make, act,
                                                      error, patterns):
  path = make(str(tmp_path / "s1.tif"))
  with pytest.raises(error) as raised:
    act(path)
  message = str(raised.value)
  assert path in message
  for pattern in patterns:
    assert re.search(pattern, message), (pattern, message)


def test_only_the_empty_bands_of_a_partly_empty_window_are_named(tmp_path):
  path = _s1(str(tmp_path / "s1.tif"), np.nan)
  with io.open_raster(path) as dataset:
    some = np.array([[True], [False]])
    assert io.empty_bands(dataset, [1, 2], some) == (
        "; band 2 (VH) holds no valid pixel")
    assert io.empty_bands(dataset, [2, 1], some) == (
        "; band 1 (VV) holds no valid pixel")
    assert io.empty_bands(dataset, [1, 2], np.ones((2, 1), bool)) == ""
    assert io.empty_bands(dataset, [1, 2], np.zeros((2, 1), bool)) == ""
    # The VH band alone: empty, but no other band tells it apart.
    with pytest.raises(io.EmptyWindowError) as raised:
      io.read_window(dataset, bands=[2], allow_empty=False)
    assert str(raised.value).endswith("holds no valid pixel (all nodata).")


def test_bands_are_numbered_and_named_where_the_file_describes_them(
    tmp_path):
  described = _s1(str(tmp_path / "s1.tif"), 0.1)
  plain = write_raster(tmp_path / "plain.tif", np.ones((3, 4, 4), np.uint8))
  with io.open_raster(described) as s1, io.open_raster(plain) as other:
    assert io.bands_str(s1, [2]) == "band 2 (VH)"
    assert io.bands_str(s1, [1, 2]) == "bands 1 (VV), 2 (VH)"
    assert io.bands_str(other, [3]) == "band 3"
    assert io.bands_str(other, [1, 3]) == "bands 1, 3"


@pytest.mark.parametrize("function, error", [
    ("transform_bounds", rasterio.errors.CRSError("bad transform")),
    ("reproject", rasterio.errors.RasterioError("warp failed"))])
def test_failed_transforms_name_the_source(tmp_path, monkeypatch, function,
                                           error):
  path = _s1(str(tmp_path / "s1.tif"), 0.1)
  grid = align.ReferenceGrid.from_raster(path)

  def fail(*args, **kwargs):
    raise error

  monkeypatch.setattr(rasterio.warp, function, fail)
  with pytest.raises(io.RasterError) as raised:
    if function == "transform_bounds":
      align.reference_grid([path])
    else:
      align.read_aligned(path, grid, Window(0, 0, 8, 8))
  message = str(raised.value)
  assert message.startswith(f"{path}: ") and str(error) in message
  if function == "transform_bounds":
    assert "its extent cannot be transformed from EPSG:32633" in message
  else:
    assert f"grid window {io.window_str(Window(0, 0, 8, 8))}" in message
