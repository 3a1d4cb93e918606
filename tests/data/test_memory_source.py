"""rsjax.data.memory_source: layout, ranges, determinism."""

import numpy as np
import pytest

from rsjax.data import fields, normalize
from rsjax.data.memory_source import MemorySource

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
