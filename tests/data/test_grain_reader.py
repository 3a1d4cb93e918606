"""rsjax.data.grain_reader: the input pipeline on Grain keeps the guarantees
of rsjax's own random-access reader (exact resume, deterministic order,
batches independent of the process count, every example once per epoch,
evaluation in order and padded) and serves the pipeline's batches."""

import re
import sys

import numpy as np
import pytest

import jax

from rsjax.data import grain_reader, pipeline, readers
from rsjax.data.memory_source import MemorySource

FIELDS = ("s2", "tile_col", "scene_id")


def _reader(source, *, process_index=0, process_count=1, train=True,
            global_batch=8, seed=1, shuffle=True, **kwargs):
  return grain_reader.GrainReader(
      source, FIELDS, global_batch=global_batch, process_index=process_index,
      process_count=process_count, seed=seed, shuffle=shuffle, train=train,
      **kwargs)


@pytest.fixture(scope="module")
def source():
  return MemorySource(37, tile_size=4, fields=FIELDS, seed=5)


def test_training_batches_do_not_depend_on_the_process_count(source):
  """Global batch k is the same examples, in the same order, read by one
  process or split over two or four (each its contiguous part)."""
  for step in (0, 3, 9):
    one = _reader(source).read(step)["tile_col"]
    for count in (2, 4):
      parts = [_reader(source, process_index=p, process_count=count
                       ).read(step)["tile_col"] for p in range(count)]
      np.testing.assert_array_equal(np.concatenate(parts), one)


def test_each_epoch_is_a_new_permutation_of_every_example(source):
  """The stream of training examples is the split shuffled anew every 37
  examples (Grain reseeds the shuffle per epoch); batches of 8 straddle the
  epochs, so no example is dropped. Another seed gives another order;
  shuffle=False gives the stored order."""
  reader = _reader(source)
  stream = np.concatenate([reader.read(k)["tile_col"] for k in range(10)])
  first, second = stream[:37], stream[37:74]
  assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(37))
  assert not np.array_equal(first, second)
  assert not np.array_equal(first, np.arange(37))
  other = _reader(source, seed=2).read(0)["tile_col"]
  assert not np.array_equal(other, stream[:8])
  plain = _reader(source, shuffle=False)
  np.testing.assert_array_equal(
      np.concatenate([plain.read(k)["tile_col"] for k in range(5)]),
      np.arange(40) % 37)
  assert reader.steps_per_epoch == 37 // 8


def test_batches_from_step_k_are_the_steps_read_directly(source):
  """Resume: Grain's threaded iterator started at step k yields what
  `read` gives for k, k + 1, ...; the pixels are the source's examples."""
  reader = _reader(source, num_threads=3)
  it = reader.batches(5)
  for step in range(5, 9):
    batch = next(it)
    direct = reader.read(step)
    for name in FIELDS:
      np.testing.assert_array_equal(batch[name], direct[name])
  for i, col in enumerate(direct["tile_col"]):
    np.testing.assert_array_equal(direct["s2"][i], source[int(col)]["s2"])
  assert direct["s2"].dtype == np.float32
  assert direct["scene_id"].dtype == object


@pytest.mark.parametrize("count", [1, 3])
def test_evaluation_reads_in_order_once_and_pads_like_the_other_readers(
    source, count):
  """37 examples, global batch 12 over `count` processes: 4 batches on every
  process, each example once in split order, the rest padding rows equal to
  `RandomAccessReader`'s (zeros, b"" text, mask 0)."""
  local = 12 // count
  seen = []
  for p in range(count):
    ours = _reader(source, process_index=p, process_count=count, train=False,
                   global_batch=12)
    theirs = readers.RandomAccessReader(
        source, FIELDS, global_batch=12, process_index=p,
        process_count=count, seed=1, shuffle=False, train=False)
    batches = list(ours.batches())
    assert len(batches) == ours.steps_per_epoch == 4
    for step, batch in enumerate(batches):
      expected = theirs.read(step)
      assert sorted(batch) == sorted(expected)
      for name in expected:
        np.testing.assert_array_equal(batch[name], expected[name], name)
        assert batch[name].dtype == expected[name].dtype, name
      assert len(batch["mask"]) == local
      seen.append((step, batch["tile_col"][batch["mask"] > 0]))
  ids = np.concatenate([ids for _, ids in sorted(seen, key=lambda s: s[0])])
  assert sorted(ids.tolist()) == list(range(37))


def test_a_batch_larger_than_the_split_is_refused(source):
  with pytest.raises(ValueError, match="batch_size 40 is larger than the "
                     r"split \(37 examples\)"):
    _reader(source, global_batch=40)


def test_worker_processes_read_the_same_batches(source):
  """With worker processes (`mp_prefetch`), the batches are those of the
  in-process reader."""
  reader = _reader(source, num_workers=2)
  it = reader.batches(2)
  for step in range(2, 6):
    np.testing.assert_array_equal(next(it)["tile_col"],
                                  reader.read(step)["tile_col"])
  reader.close()


def test_the_pipeline_reads_with_grain_when_asked(devices):
  """read_mode 'grain' serves the pipeline (memory source here; a tfds
  ArrayRecord dataset alike): resumed at step k it yields batch k, and an
  evaluation pass holds every example once."""
  mesh = jax.make_mesh((8, 1), ("data", "fsdp"))
  config = dict(source="memory", batch_size=16, tile_size=8,
                memory_examples=40, seed=3, read_mode="grain",
                fields=("s2", "tile_col"))
  it = pipeline.create_iterator(config, mesh)
  assert isinstance(it.reader, grain_reader.GrainReader)
  full = [np.asarray(next(it)["tile_col"]) for _ in range(4)]
  it.close()
  it = pipeline.create_iterator(config, mesh, start_step=2)
  resumed = [np.asarray(next(it)["tile_col"]) for _ in range(2)]
  it.close()
  np.testing.assert_array_equal(np.stack(full[2:]), np.stack(resumed))
  batches = list(pipeline.create_iterator(config, mesh, train=False))
  ids = np.concatenate([np.asarray(b["tile_col"])[np.asarray(b["mask"]) > 0]
                        for b in batches])
  assert sorted(ids.tolist()) == list(range(40))


class _Records:
  """A random-access source of `n` records as TFDS decodes them: class
  labels as int64, text as bytes."""

  def __init__(self, n):
    self.n = n

  def __len__(self):
    return self.n

  def __getitem__(self, index):
    if not 0 <= index < self.n:
      raise IndexError(index)
    return {"lulc": np.full((2, 2), index, np.int64),
            "scene_id": f"scene_{index}".encode(), "tile_col": index}


def test_fields_get_their_contract_dtypes_and_any_split_size_reads():
  """Labels decoded as int64 become the contract's uint8, text stays bytes
  objects (with either reader); a training split exactly one batch long trains, and a split of a
  single example evaluates (one real row, the rest padding)."""
  fields = ("lulc", "scene_id", "tile_col")
  reader = grain_reader.GrainReader(
      _Records(4), fields, global_batch=4, process_index=0, process_count=1,
      seed=0, shuffle=True, train=True)
  batch = reader.read(0)
  assert batch["lulc"].dtype == np.uint8 and batch["scene_id"].dtype == object
  assert sorted(batch["tile_col"].tolist()) == [0, 1, 2, 3]
  theirs = readers.RandomAccessReader(
      _Records(4), fields, global_batch=4, process_index=0, process_count=1,
      seed=0, shuffle=True, train=True).read(0)
  assert {k: v.dtype for k, v in theirs.items()} == {
      k: v.dtype for k, v in batch.items()}
  single = grain_reader.GrainReader(
      _Records(1), fields, global_batch=4, process_index=0, process_count=1,
      seed=0, shuffle=False, train=False)
  [batch] = list(single.batches())
  np.testing.assert_array_equal(batch["mask"], [1, 0, 0, 0])
  assert batch["scene_id"].tolist() == [b"scene_0", b"", b"", b""]
  assert batch["lulc"].dtype == np.uint8


def test_without_grain_the_read_mode_names_what_to_install(monkeypatch):
  monkeypatch.setitem(sys.modules, "grain", None)  # import grain fails
  with pytest.raises(ImportError, match="^" + re.escape(
      "config.data.read_mode='grain' needs Grain: pip install grain (or use "
      "read_mode 'random_access')") + "$"):
    grain_reader.GrainReader(_Records(4), ("lulc",), global_batch=4,
                             process_index=0, process_count=1, seed=0,
                             shuffle=True, train=True)
