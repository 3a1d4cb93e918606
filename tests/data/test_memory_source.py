"""rsjax.data.memory_source: layout, ranges, determinism."""

import numpy as np
import pytest

from rsjax.data import fields, normalize
from rsjax.data.memory_source import MemorySource, random_example

ALL = tuple(fields.SPATIAL) + tuple(fields.METADATA)


def test_layout_matches_contract():
  src = MemorySource(3, tile_size=16, fields=ALL, seed=1)
  assert len(src) == 3
  example = src[1]
  for name in ALL:
    shape, dtype = fields.spec(name, 16)
    if dtype is object:  # text comes back as bytes, as from tfds.data_source
      assert isinstance(example[name], bytes), name
      continue
    assert example[name].shape == shape, name
    assert example[name].dtype == np.dtype(dtype), name
  batch = src.take([2, 0])
  assert batch["s2"].shape == (2, 16, 16, 4)
  np.testing.assert_array_equal(batch["s2"][1], src[0]["s2"])


def test_values_inside_normalization_ranges():
  src = MemorySource(4, tile_size=16, fields=ALL, seed=2)
  b = src.take(range(4))
  cfg = normalize.resolve_config()
  assert b["s2"].min() >= 0 and b["s2"].max() <= cfg["s2"]["high"]
  for c, pol in enumerate(("VV", "VH")):
    low, high = cfg["s1"]["ranges"][pol]
    assert low <= b["s1"][..., c].min() and b["s1"][..., c].max() <= high
  assert b["lulc"].max() <= 8 and b["cloud_mask"].max() <= 2
  dem = b["dem"]
  assert 0 <= dem[..., 1].min() and dem[..., 1].max() <= 90
  assert 0 <= dem[..., 2].min() and dem[..., 2].max() < 360
  assert 0 <= dem[..., 3].min() and dem[..., 3].max() <= 1


def test_values_fill_their_documented_ranges():
  """Each raster spans its documented range (a scale applied twice or a
  class never drawn shows here); aspect stays below 360 (north is 0), which
  131072 uniform draws reach within 0.01 degrees of; `valid` is all ones."""
  src = MemorySource(2, tile_size=256, fields=("s1", "lulc", "dem", "valid",
                                               "cloud_mask"), seed=3)
  b = src.take([0, 1])
  cfg = normalize.resolve_config()
  for c, pol in enumerate(("VV", "VH")):
    low, high = cfg["s1"]["ranges"][pol]
    values = b["s1"][..., c]
    assert values.min() < low + 0.01 * (high - low), pol
    assert values.max() > high - 0.01 * (high - low), pol
  np.testing.assert_array_equal(np.unique(b["lulc"]), np.arange(9))
  np.testing.assert_array_equal(np.unique(b["cloud_mask"]), [0, 1, 2])
  np.testing.assert_array_equal(b["valid"], 1)
  dem_max = (2500.0, 60.0, 359.99, 1.0)  # aspect capped below 360
  for c, top in enumerate(dem_max):
    channel = b["dem"][..., c]
    assert 0 <= channel.min() < 0.01 * top, c
    assert 0.99 * top < channel.max() <= top, c
  s2 = MemorySource(1, tile_size=64, fields=("s2",), seed=3)[0]["s2"]
  assert 0 <= s2.min() < 0.01 and 0.59 < s2.max() <= 0.6


def test_georeferencing_lays_tiles_side_by_side():
  """Tile i is column i of one row on the documented 10 m UTM 33N grid."""
  t = 8
  src = MemorySource(3, tile_size=t, fields=ALL, seed=4)
  for i in range(3):
    e = src[i]
    assert e["crs"] == b"EPSG:32633"
    assert e["scene_id"] == f"memory_4_{i}".encode()
    assert (int(e["tile_row"]), int(e["tile_col"])) == (0, i)
    np.testing.assert_array_equal(
        e["transform"], [10.0, 0.0, 500000.0 + 10.0 * t * i, 0.0, -10.0,
                         4500000.0])


def test_defaults_and_a_single_example():
  """The defaults are seed 0 and 256 px tiles; one example is a dataset."""
  src = MemorySource(1, tile_size=4)
  assert (len(src), src.seed, src.tile_size) == (1, 0, 4)
  assert src.fields == fields.DEFAULT_FIELDS
  want = random_example(0, 0, 4, fields.DEFAULT_FIELDS)
  for name in fields.DEFAULT_FIELDS:
    np.testing.assert_array_equal(src[0][name], want[name])
  assert MemorySource(1, fields=("valid",))[0]["valid"].shape == (256, 256)


def test_deterministic_and_independent_of_size():
  a = MemorySource(2, tile_size=8, seed=5)
  b = MemorySource(4, tile_size=8, seed=5)
  c = MemorySource(2, tile_size=8, seed=6)
  np.testing.assert_array_equal(a[1]["s1"], b[1]["s1"])
  assert not np.array_equal(a[1]["s1"], c[1]["s1"])


def test_errors():
  with pytest.raises(KeyError, match="unknown field 'ndvi'"):
    MemorySource(2, fields=("s2", "ndvi"))
  with pytest.raises(ValueError, match="num_examples"):
    MemorySource(0)
  with pytest.raises(IndexError):
    MemorySource(2, tile_size=8)[2]


def test_indexing_like_a_list():
  # Valid indices are -n..n-1, as for a Python list; others raise IndexError.
  src = MemorySource(3, tile_size=4, fields=("s2", "lulc"), seed=0)
  np.testing.assert_array_equal(src[-3]["s2"], src[0]["s2"])
  np.testing.assert_array_equal(src[-1]["lulc"], src[2]["lulc"])
  for bad in (3, -4):
    with pytest.raises(IndexError, match=f"index {bad} out of range"):
      src[bad]
  items = src.__getitems__(np.array([2, 0, 2]))
  assert len(items) == 3
  for item, index in zip(items, (2, 0, 2)):
    for name in ("s2", "lulc"):
      np.testing.assert_array_equal(item[name], src[index][name])
