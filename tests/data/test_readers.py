"""rsjax.data.readers: evaluation padding, and the empty batches of a process
that runs out of examples before the others."""

import itertools
import re

import numpy as np
import pytest

from rsjax.data import pipeline, readers
from rsjax.data.memory_source import MemorySource

# TFDataReader imports tensorflow_datasets; importing it here (TF kept off
# accelerators) puts the import in collection, not in a test's time.
pipeline.import_tfds()

FIELDS = ("s2", "lulc", "scene_id")


def test_eval_padding_rows_are_zero_empty_text_and_mask_zero():
  # 3 examples in batches of 2: the second batch is example 2 and one pad row.
  source = MemorySource(3, tile_size=4, fields=FIELDS, seed=0)
  reader = readers.RandomAccessReader(
      source, FIELDS, global_batch=2, process_index=0, process_count=1,
      seed=0, shuffle=False, train=False, num_threads=1)
  try:
    batch = reader.read(1)
  finally:
    reader.close()
  np.testing.assert_array_equal(batch["mask"], [1.0, 0.0])
  np.testing.assert_array_equal(batch["s2"][0], source[2]["s2"])
  np.testing.assert_array_equal(batch["s2"][1], np.zeros((4, 4, 4)))
  np.testing.assert_array_equal(batch["lulc"][1], np.zeros((4, 4)))
  # Text stays bytes in the padding: b"", not 0 or None.
  assert batch["scene_id"].dtype == object
  assert batch["scene_id"].tolist() == [source[2]["scene_id"], b""]


class _FakeBuilder:
  """The two things TFDataReader asks of a tfds builder: the split size and
  `as_dataset` of a slice 'split[lo:hi]'."""

  def __init__(self, examples):
    import types
    self.examples = examples
    count = len(next(iter(examples.values())))
    self.info = types.SimpleNamespace(splits=dict(
        test=types.SimpleNamespace(num_examples=count)))

  def as_dataset(self, *, split, shuffle_files, read_config):
    import tensorflow as tf
    del shuffle_files, read_config
    lo, hi = map(int, re.fullmatch(r"test\[(\d+):(\d+)\]", split).groups())
    return tf.data.Dataset.from_tensor_slices(
        {k: v[lo:hi] for k, v in self.examples.items()})


def test_random_access_training_order_is_a_seeded_permutation_per_epoch():
  """Shuffled training visits every example once an epoch in an order that
  depends on (seed, epoch) only; unshuffled, in index order; two processes
  take the two halves of each global batch."""
  source = MemorySource(12, tile_size=2, fields=("s2",))

  def order(seed, shuffle, process_index=0, process_count=1, epoch=0):
    reader = readers.RandomAccessReader(
        source, ("s2",), global_batch=4, process_index=process_index,
        process_count=process_count, seed=seed, shuffle=shuffle, train=True)
    steps = range(3 * epoch, 3 * epoch + 3)
    indices = np.concatenate([reader.indices(step) for step in steps])
    reader.close()
    return indices

  first, second = order(7, True), order(7, True, epoch=1)
  for epoch in (first, second):
    np.testing.assert_array_equal(np.sort(epoch), np.arange(12))
  assert not np.array_equal(first, np.arange(12))
  assert not np.array_equal(first, second)
  np.testing.assert_array_equal(order(7, True), first)
  assert not np.array_equal(order(8, True), first)
  np.testing.assert_array_equal(order(7, False), np.arange(12))
  halves = [order(7, True, index, 2).reshape(3, 2) for index in (0, 1)]
  np.testing.assert_array_equal(
      np.concatenate(halves, axis=1).ravel(), first)


class _TakeOnly:
  """A source that only gathers batches (`len` + `take`)."""

  def __init__(self, source):
    self.source = source

  def __len__(self):
    return len(self.source)

  def take(self, indices):
    return self.source.take(indices)


class _GetItemsOnly:
  """A source read a list of examples at a time (`len` + `__getitems__`)."""

  def __init__(self, source):
    self.source = source

  def __len__(self):
    return len(self.source)

  def __getitems__(self, indices):
    return self.source.__getitems__(indices)


def test_random_access_reads_any_random_access_source_alike():
  """Gathering sources (`take`), batch-reading ones (`__getitems__`, as
  tfds.data_source) and plain lists of examples give the same batches,
  including an evaluation batch that is all padding (index -1)."""
  source = MemorySource(6, tile_size=2, fields=("s2", "lulc"), seed=1)
  examples = [source[i] for i in range(6)]
  kinds = {"take": _TakeOnly(source), "getitems": _GetItemsOnly(source),
           "list": examples}
  for train, steps in ((True, range(4)), (False, range(2))):
    batches = {}
    for kind, src in kinds.items():
      reader = readers.RandomAccessReader(
          src, ("s2", "lulc"), global_batch=4, process_index=1,
          process_count=2, seed=0, shuffle=train, train=train, num_threads=2)
      batches[kind] = [reader.read(step) for step in steps]
      if not train:  # step 1: global rows 4..7, process 1 holds 6 and 7
        np.testing.assert_array_equal(reader.indices(1), [-1, -1])
      reader.close()
    for kind in ("getitems", "list"):
      for got, want in zip(batches[kind], batches["take"]):
        assert set(got) == set(want), kind
        for name in want:
          np.testing.assert_array_equal(got[name], want[name], err_msg=kind)
  empty = batches["take"][-1]
  np.testing.assert_array_equal(empty["mask"], [0.0, 0.0])


def test_training_processes_hold_equal_slices():
  """In training every process needs the same steps per epoch: 5 examples
  over 2 processes are [0, 2) and [2, 4), and example 4 is left out (in
  evaluation, below, process 1 takes [2, 5))."""
  examples = {"s2": np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1)
                    * np.ones((1, 4, 4, 4), np.float32),
              "lulc": np.arange(5).reshape(5, 1, 1) * np.ones((1, 4, 4), int)}
  for index, bounds in ((0, (0, 2)), (1, (2, 4))):
    reader = readers.TFDataReader(
        _FakeBuilder(examples), "test", ("s2", "lulc"), global_batch=2,
        process_index=index, process_count=2, seed=0, shuffle=False,
        train=True, shuffle_buffer=1)
    assert (reader.lo, reader.hi, reader.steps_per_epoch) == (*bounds, 2)
    batches = list(itertools.islice(reader.batches(), 3))
    seen = [batch["s2"][0, 0, 0, 0] for batch in batches]
    assert seen == [bounds[0], bounds[0] + 1, bounds[0]]  # then repeats
    for batch in batches:  # int64 labels come out as the contract's uint8
      assert batch["lulc"].dtype == np.uint8
      assert batch["lulc"][0, 0, 0] == batch["s2"][0, 0, 0, 0]
  # A process's slice of 2 holds exactly one local batch of 2; a global batch
  # of 6 (3 a process) is more than a slice holds.
  one = readers.TFDataReader(
      _FakeBuilder(examples), "test", ("s2",), global_batch=4,
      process_index=1, process_count=2, seed=0, shuffle=False, train=True,
      shuffle_buffer=1)
  assert one.steps_per_epoch == 1
  with pytest.raises(ValueError, match=re.escape(
      "batch_size 6 is larger than the split (5 examples over 2 "
      "processes).")):
    readers.TFDataReader(
        _FakeBuilder(examples), "test", ("s2",), global_batch=6,
        process_index=0, process_count=2, seed=0, shuffle=False, train=True,
        shuffle_buffer=1)


def test_every_process_yields_the_same_number_of_eval_batches():
  """9 examples over 2 processes, one a batch: process 0 reads [0, 4) (4.5
  rounds to even), process 1 [4, 9); both yield ceil(4.5) = 5 batches, so
  process 0 ends with one empty batch after its 4 real ones."""
  examples = {"s2": np.arange(9, dtype=np.float32).reshape(9, 1, 1, 1)
                    * np.ones((1, 2, 2, 4), np.float32)}
  counts = []
  for index in (0, 1):
    reader = readers.TFDataReader(
        _FakeBuilder(examples), "test", ("s2",), global_batch=2,
        process_index=index, process_count=2, seed=0, shuffle=False,
        train=False, shuffle_buffer=1)
    batches = list(reader.batches())
    counts.append([float(batch["mask"].sum()) for batch in batches])
    first = 4 * index
    np.testing.assert_array_equal(
        [batch["s2"][0, 0, 0, 0] for batch in batches if batch["mask"][0]],
        np.arange(first, first + 4 + index))
  assert counts == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]


def test_a_process_out_of_examples_yields_empty_masked_batches():
  # 5 test examples over 2 processes in local batches of 2: process 0 holds
  # examples [0, 2) (split_bounds rounds 2.5 to even), process 1 [2, 5), so
  # both yield ceil(3 / 2) = 2 batches and process 0's second one is empty:
  # every row padding, as the pad rows of a partial batch are.
  rng = np.random.default_rng(0)
  examples = {
      "s2": rng.uniform(0, 1, (5, 4, 4, 4)).astype(np.float32),
      "lulc": rng.integers(0, 9, (5, 4, 4)),  # int64, cast to uint8.
      "scene_id": np.array([b"a", b"b", b"c", b"d", b"e"]),
  }
  reader = readers.TFDataReader(
      _FakeBuilder(examples), "test", FIELDS, global_batch=4,
      process_index=0, process_count=2, seed=0, shuffle=False, train=False,
      shuffle_buffer=1)
  batches = list(reader.batches())
  assert len(batches) == 2
  real, empty = batches
  np.testing.assert_array_equal(real["mask"], [1.0, 1.0])
  np.testing.assert_array_equal(real["s2"], examples["s2"][:2])
  assert real["scene_id"].tolist() == [b"a", b"b"]
  assert set(empty) == set(FIELDS) | {"mask"}
  np.testing.assert_array_equal(empty["mask"], [0.0, 0.0])
  # Every process must yield the same dtypes (one global array per field).
  assert empty["mask"].dtype == real["mask"].dtype == np.float32
  for name in ("s2", "lulc"):
    assert empty[name].shape == real[name].shape, name
    assert empty[name].dtype == real[name].dtype, name
    assert not empty[name].any(), name
  assert empty["lulc"].dtype == np.uint8
  assert empty["scene_id"].dtype == object
  assert empty["scene_id"].tolist() == [b"", b""]
