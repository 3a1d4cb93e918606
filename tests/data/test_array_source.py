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


def test_rows_from_a_file_and_whole_float_indices(arrays_dir):
  np.save(arrays_dir / "rows.npy", np.array([2, 0]))
  for rows in (str(arrays_dir / "rows.npy"), arrays_dir / "rows.npy",
               np.array([2.0, 0.0])):
    source = ArraySource(str(arrays_dir), rows=rows)
    assert source.rows.dtype == np.int64
    assert [int(source[i]["s2"][0, 0, 0]) for i in (0, 1)] == [2, 0]


@pytest.mark.parametrize("rows", [np.array([[0, 1]]), np.array([], int),
                                  np.array([0, -1]), np.array([4, 5]),
                                  np.array([-1, 5])])
def test_bad_rows_name_the_key_and_the_valid_range(arrays_dir, rows):
  with pytest.raises(ValueError, match=r"^config\.data\.train_rows .*: "
                     r"expected a non-empty 1-D array of row indices in "
                     r"\[0, 5\)$"):
    ArraySource(str(arrays_dir), rows=rows)


def test_every_row_from_first_to_last_is_valid(arrays_dir):
  source = ArraySource(str(arrays_dir), rows=np.array([0, 4]))
  assert [int(source[i]["s2"][0, 0, 0]) for i in (0, 1)] == [0, 4]


def test_fields_are_selected_and_checked(arrays_dir):
  source = ArraySource(str(arrays_dir), fields=["lulc"])
  assert source.fields == ("lulc",)
  assert set(source[0]) == {"lulc"}
  assert ArraySource(str(arrays_dir)).fields == ("s2", "lulc")
  with pytest.raises(KeyError, match=r"config\.data\.fields \['s1'\] are not "
                     r"in the arrays directory .* \(it has \['s2', 'lulc'\]\)"):
    ArraySource(str(arrays_dir), fields=["s2", "s1"])


def test_a_directory_without_meta_is_refused(tmp_path):
  with pytest.raises(FileNotFoundError, match=(
      r"config\.data\.train_arrays: .* is not a complete arrays directory "
      r"\(no meta\.json\); write it with .*write_generated")):
    ArraySource(str(tmp_path))


def test_take_stacks_rows_in_the_given_order(arrays_dir):
  source = ArraySource(str(arrays_dir), rows=np.array([4, 1, 3, 0]))
  batch = source.take([2, 0, 2, 3])
  np.testing.assert_array_equal(batch["s2"][:, 0, 0, 0], [3, 4, 3, 0])
  np.testing.assert_array_equal(batch["lulc"][:, 0, 0], [3, 4, 3, 0])
