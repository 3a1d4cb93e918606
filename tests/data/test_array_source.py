"""rsjax.data.array_source: rows of an arrays directory."""

import json

import numpy as np
import pytest

from rsjax.data.array_source import ArraySource


@pytest.fixture
def arrays_dir(tmp_path):
  # Row r of s2 is filled with r, of lulc with r % 9: each row names itself.
  rows = np.arange(5)
  np.save(tmp_path / "s2.npy",
          np.broadcast_to(rows[:, None, None, None], (5, 2, 2, 4))
          .astype(np.float32))
  np.save(tmp_path / "lulc.npy",
          np.broadcast_to(rows[:, None, None] % 9, (5, 2, 2)).astype(np.uint8))
  (tmp_path / "meta.json").write_text(json.dumps({"fields": ["s2", "lulc"]}))
  return tmp_path


def test_rows_are_indexed_through_the_row_list(arrays_dir):
  source = ArraySource(str(arrays_dir), rows=np.array([4, 1, 1, 3]))
  assert len(source) == 4
  # Index i reads row rows[i]; negative indices count from the end.
  for index, row in [(0, 4), (1, 1), (3, 3), (-1, 3), (-4, 4)]:
    example = source[index]
    assert set(example) == {"s2", "lulc"}
    np.testing.assert_array_equal(example["s2"], np.full((2, 2, 4), row))
    np.testing.assert_array_equal(example["lulc"], np.full((2, 2), row))
  for bad in (4, -5):
    with pytest.raises(IndexError, match=f"index {bad} out of range"):
      source[bad]
  items = source.__getitems__([2, 0])
  assert [int(item["s2"][0, 0, 0]) for item in items] == [1, 4]
