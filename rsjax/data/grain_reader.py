"""Host-side reading with Grain (`grain.MapDataset`): read_mode 'grain'.

The same random-access sources as `readers.RandomAccessReader` (ArrayRecord
datasets through `tfds.data_source`, `MemorySource`, `ArraySource`), read
through Grain's dataset graph:

    training:   source -> shuffle(seed) -> repeat -> batch(L) -> [p::P]
    evaluation: range(S * G) -> example or padding -> batch(L) -> [p::P]

with global batch G = P * L over P processes of local batch L. Local batch
m of the repeated stream holds stream positions [m L, (m + 1) L), so process
p's m = k P + p is its part of global batch k: the global batch at step k
is positions [k G, (k + 1) G) whatever the number of processes, and reading
step k needs nothing of the steps before it (exact, O(1) resume: the step
is the iterator's whole state, and the checkpoint already holds it).
Grain shuffles each epoch of N examples with its own permutation
(`MapDataset.shuffle` reseeds per epoch); unlike `RandomAccessReader`, a
global batch may straddle two epochs, so no example is ever dropped.

Evaluation reads the split once in order; positions past the end are
padding rows (zeros, b"" text) with `mask` 0, as the other readers pad, and
every process yields the same S = ceil(N / G) batches.

`batches(start)` runs the graph with Grain's thread pool (`num_threads`)
and, with `num_workers > 0`, in that many worker processes
(`IterDataset.mp_prefetch`); `read(step)` reads one step directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from rsjax.data import readers


def _import_grain():
  try:
    import grain  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise ImportError(
        "config.data.read_mode='grain' needs Grain: pip install grain "
        "(or use read_mode 'random_access')") from error
  return grain


def _flags_parsed() -> None:
  """Grain's worker processes read its absl flags, which raises unless they
  were parsed: launch.train parses them (absl.app); a notebook or a test
  has not, and then takes every flag's default."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


class _Select:
  """A record's configured fields as arrays (picklable, for Grain's worker
  processes); batches get the contract dtypes (`GrainReader._finish`)."""

  def __init__(self, fields: Sequence[str]):
    self.fields = tuple(fields)

  def __call__(self, record):
    return {k: np.asarray(record[k]) for k in self.fields}


class _ExampleOrPadding:
  """Stream position -> the example there with mask 1, or (past the end of
  the split) a padding row shaped like `template` with mask 0."""

  def __init__(self, source, select: _Select, template: dict):
    self.source, self.select = source, select
    self.num_examples = len(source)
    self.padding = {k: readers.padding_rows(v[None], 1)[0]
                    for k, v in template.items()}
    self.padding["mask"] = np.float32(0)

  def __call__(self, position):
    position = int(position)
    if position >= self.num_examples:
      return self.padding
    return {**self.select(self.source[position]), "mask": np.float32(1)}


class GrainReader:
  """Local batches of a random-access source, read through Grain."""

  def __init__(self, source, fields: Sequence[str], *, global_batch: int,
               process_index: int, process_count: int, seed: int,
               shuffle: bool, train: bool, num_threads: int = 8,
               num_workers: int = 0):
    grain = _import_grain()
    self._grain = grain
    self.fields, self.train = tuple(fields), train
    self.global_batch = global_batch
    self.local_batch = global_batch // process_count
    self.num_examples = len(source)
    self.num_threads, self.num_workers = max(1, num_threads), num_workers
    self._open: set = set()
    if train and self.num_examples < global_batch:
      raise ValueError(f"batch_size {global_batch} is larger than the split "
                       f"({self.num_examples} examples).")
    select = _Select(self.fields)
    if train:
      stream = grain.MapDataset.source(source)
      if shuffle:
        stream = stream.shuffle(seed=seed)
      stream = stream.repeat(None).map(select)
    else:
      template = select(source[0])
      stream = grain.MapDataset.range(self.steps_per_epoch * global_batch)
      stream = stream.map(_ExampleOrPadding(source, select, template))
    local = stream.batch(self.local_batch, drop_remainder=True)
    self._local = local.slice(slice(process_index, None, process_count))

  @property
  def steps_per_epoch(self) -> int:
    if self.train:
      return self.num_examples // self.global_batch
    return math.ceil(self.num_examples / self.global_batch)

  def read(self, step: int) -> dict[str, np.ndarray]:
    """The process-local batch of `step` (with `mask` when evaluating)."""
    return self._finish(self._local[step])

  def batches(self, start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Local batches from `start_step` on (evaluation: the padded pass)."""
    grain = self._grain
    stop = None if self.train else self.steps_per_epoch
    steps = self._local.slice(slice(start_step, stop))
    stream = steps.to_iter_dataset(grain.ReadOptions(
        num_threads=self.num_threads,
        prefetch_buffer_size=self.num_threads))
    if self.num_workers > 0:
      _flags_parsed()
      stream = stream.mp_prefetch(grain.MultiprocessingOptions(
          num_workers=self.num_workers))
    iterator = iter(stream)
    self._open.add(iterator)
    try:
      for batch in iterator:
        yield self._finish(batch)
    finally:
      self._open.discard(iterator)
      iterator.close()

  def _finish(self, batch: dict) -> dict[str, np.ndarray]:
    return {k: readers.cast(k, v) for k, v in batch.items()}

  def close(self):
    """Stops the threads and worker processes of open `batches` iterators."""
    for iterator in list(self._open):
      iterator.close()
    self._open.clear()
