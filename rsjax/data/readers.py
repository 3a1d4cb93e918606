"""Host-side reading: which examples each process reads at each step.

Two readers produce *process-local* numpy batches for step k, both
deterministic functions of (seed, k), so a run restarted at step k reads
exactly what the uninterrupted run would have read:

`RandomAccessReader` (ArrayRecord datasets via `tfds.data_source`, and
`MemorySource`): epoch e = k // steps_per_epoch uses the permutation
`default_rng([seed, e]).permutation(N)` of the whole split; global batch k is
a slice of it, and process p reads its contiguous part of that global batch.
Resume is O(1) (no records are read to skip), and the global batch at step k
is the same whatever the number of processes. This is the preferred path.

`TFDataReader` (TFRecord datasets, which only read sequentially): process p
reads its own contiguous slice of the split (`split[lo:hi]`); epoch e is that
slice shuffled with a buffer and seed (seed, e), batched with
drop_remainder. Resume starts at epoch k // steps_per_epoch directly and skips
the k % steps_per_epoch batches inside it (reads at most one epoch).

Training drops the last partial batch of every epoch (steps never straddle
epochs). Evaluation reads every example exactly once in split order; the last
batch is padded with zeros and a `mask` field (1 real, 0 padding) says which
rows count; every process yields the same number of batches.
"""

from __future__ import annotations

import concurrent.futures
import math
from collections.abc import Iterator, Sequence

import numpy as np

from rsjax.data import fields as fields_lib


def cast(name: str, value: np.ndarray) -> np.ndarray:
  """The contract dtype of a known field (e.g. int64 class labels -> uint8)."""
  declared = fields_lib.FIELDS.get(name)
  dtype = None if declared is None else declared.dtype
  if dtype is object:  # text: bytes objects, as tf.data returns them
    return np.asarray(value, dtype=object)
  if dtype is None:
    return np.asarray(value)
  return np.asarray(value).astype(dtype, copy=False)


def padding_rows(value: np.ndarray, rows: int) -> np.ndarray:
  """`rows` padding rows for the batch field `value`: zeros of its row shape
  and dtype, or b"" for text (object arrays)."""
  pad = np.zeros((rows,) + value.shape[1:], value.dtype)
  if value.dtype == object:
    pad[...] = b""
  return pad


def _pad(batch: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
  """Pads every field to `size` rows with zeros and adds `mask`."""
  n = len(batch["mask"])
  if n == size:
    return batch
  return {name: np.concatenate([value, padding_rows(value, size - n)])
          for name, value in batch.items()}


class RandomAccessReader:
  """Local batches from a random-access source (len + getitem)."""

  def __init__(self, source, fields: Sequence[str], *, global_batch: int,
               process_index: int, process_count: int, seed: int,
               shuffle: bool, train: bool, num_threads: int = 8):
    self.source, self.fields = source, tuple(fields)
    self.global_batch, self.seed = global_batch, seed
    self.local_batch = global_batch // process_count
    self.offset = process_index * self.local_batch
    self.shuffle, self.train = shuffle, train
    self.num_examples = len(source)
    self._perm_epoch, self._perm = None, None
    self._pool = concurrent.futures.ThreadPoolExecutor(max(1, num_threads))
    self._threads = max(1, num_threads)
    if train and self.num_examples < global_batch:
      raise ValueError(f"batch_size {global_batch} is larger than the split "
                       f"({self.num_examples} examples).")

  @property
  def steps_per_epoch(self) -> int:
    if self.train:
      return self.num_examples // self.global_batch
    return math.ceil(self.num_examples / self.global_batch)

  def _order(self, epoch: int) -> np.ndarray:
    if not self.shuffle:
      return np.arange(self.num_examples)
    if self._perm_epoch != epoch:
      rng = np.random.default_rng([self.seed, epoch])
      self._perm, self._perm_epoch = rng.permutation(self.num_examples), epoch
    return self._perm

  def indices(self, step: int) -> np.ndarray:
    """Local example indices of `step`; -1 marks eval padding."""
    epoch, within = divmod(step, self.steps_per_epoch)
    start = within * self.global_batch + self.offset
    positions = start + np.arange(self.local_batch)
    if self.train:
      return self._order(epoch)[positions]
    return np.where(positions < self.num_examples, positions, -1)

  def _read(self, indices: np.ndarray) -> list[dict]:
    if hasattr(self.source, "take"):
      return [self.source.take(indices)]
    chunks = [c for c in np.array_split(indices, self._threads) if len(c)]
    getter = getattr(self.source, "__getitems__", None)
    read = (lambda c: getter([int(i) for i in c])) if getter else \
        (lambda c: [self.source[int(i)] for i in c])
    examples = [e for part in self._pool.map(read, chunks) for e in part]
    return [{k: np.stack([e[k] for e in examples]) for k in self.fields}]

  def read(self, step: int) -> dict[str, np.ndarray]:
    """The process-local batch of `step` (with `mask` when evaluating)."""
    indices = self.indices(step)
    real = indices[indices >= 0]
    read = self._read(real if len(real) else indices[:1] * 0)[0]
    batch = {k: cast(k, v[:len(real)]) for k, v in read.items()
             if k in self.fields}
    if not self.train:
      batch["mask"] = np.ones(len(real), np.float32)
      batch = _pad(batch, self.local_batch)
    return batch

  def close(self):
    self._pool.shutdown(wait=False, cancel_futures=True)


def split_bounds(num_examples: int, process_index: int, process_count: int,
                 train: bool) -> tuple[int, int]:
  """[lo, hi) of a process's contiguous slice (equal sizes when training)."""
  if train:
    size = num_examples // process_count
    return process_index * size, (process_index + 1) * size
  edges = np.linspace(0, num_examples, process_count + 1).round().astype(int)
  return int(edges[process_index]), int(edges[process_index + 1])


class TFDataReader:
  """Local batches from a TFRecord split, read sequentially with tf.data."""

  def __init__(self, builder, split: str, fields: Sequence[str], *,
               global_batch: int, process_index: int, process_count: int,
               seed: int, shuffle: bool, train: bool, shuffle_buffer: int):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    self.fields, self.train = tuple(fields), train
    self.local_batch = global_batch // process_count
    self.num_examples = builder.info.splits[split].num_examples
    self.lo, self.hi = split_bounds(self.num_examples, process_index,
                                    process_count, train)
    if train:
      self.steps_per_epoch = (self.hi - self.lo) // self.local_batch
      if self.steps_per_epoch == 0:
        raise ValueError(f"batch_size {global_batch} is larger than the split "
                         f"({self.num_examples} examples over "
                         f"{process_count} processes).")
    else:
      largest = math.ceil(self.num_examples / process_count)
      self.steps_per_epoch = math.ceil(largest / self.local_batch)
    self._seed, self._shuffle, self._buffer = seed, shuffle, shuffle_buffer
    self._dataset = builder.as_dataset(
        split=f"{split}[{self.lo}:{self.hi}]", shuffle_files=False,
        read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False))

  def _examples(self):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    names = self.fields
    return self._dataset.map(lambda ex: {k: ex[k] for k in names},
                             num_parallel_calls=tf.data.AUTOTUNE)

  def _train_dataset(self, start_step: int):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    base = self._examples()
    seed, shuffle, buffer = self._seed, self._shuffle, self._buffer
    local_batch = self.local_batch

    def epoch(e):
      data = base
      if shuffle:
        data = data.shuffle(buffer, seed=tf.constant(seed, tf.int64) * 1000003
                            + e, reshuffle_each_iteration=False)
      return data.batch(local_batch, drop_remainder=True)

    first, skip = divmod(start_step, self.steps_per_epoch)
    epochs = tf.data.Dataset.range(first, np.iinfo(np.int64).max)
    return epochs.flat_map(epoch).skip(skip).prefetch(tf.data.AUTOTUNE)

  def batches(self, start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Local batches from `start_step` on (eval: the whole padded pass)."""
    if self.train:
      for batch in self._train_dataset(start_step).as_numpy_iterator():
        yield {k: cast(k, v) for k, v in batch.items()}
      return
    count = 0
    eval_batches = self._examples().batch(self.local_batch).prefetch(2)
    for batch in eval_batches.as_numpy_iterator():
      batch = {k: cast(k, v) for k, v in batch.items()}
      batch["mask"] = np.ones(len(next(iter(batch.values()))), np.float32)
      yield _pad(batch, self.local_batch)
      count += 1
    template = None
    while count < self.steps_per_epoch:  # processes with fewer examples
      if template is None:
        template = self._empty()
      yield template
      count += 1

  def _empty(self) -> dict[str, np.ndarray]:
    spec = self._dataset.element_spec
    out = {}
    for k in self.fields:
      shape = (self.local_batch,) + tuple(spec[k].shape)
      dtype = np.dtype(spec[k].dtype.as_numpy_dtype)  # tf.string: object
      value = np.zeros(shape, dtype)
      if dtype == object:
        value[...] = b""  # text padding is bytes, as in `_pad`
      out[k] = cast(k, value)
    out["mask"] = np.zeros(self.local_batch, np.float32)
    return out

  def close(self):
    pass
