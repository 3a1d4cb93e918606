"""The input pipeline: a config and a mesh -> global, sharded, prefetched batches.

    it = pipeline.create_iterator(config, mesh, train=True, start_step=step)
    batch = next(it)   # {'s2': jax.Array (B, T, T, 4) in [-1, 1], ...}

Per batch: each process reads its own examples (`rsjax.data.readers`), the
local numpy batches become one global `jax.Array` per field with
`jax.make_array_from_process_local_data` and sharding
`rsjax.mesh.batch_sharding(mesh)` (the batch split over every mesh
axis; Auto and Explicit meshes alike), then one jitted step on the sharded batch applies the augmentation (train only; in
physical units, so aspect is corrected) and the normalization. Two background
threads keep `config.prefetch` host batches and device batches ready.

Sources (`config.source`): 'tfds' reads `config.name` from `config.data_dir`,
by random access when the dataset has ArrayRecord files (`tfds.data_source`,
O(1) resume, batches independent of the process count) and otherwise with
tf.data from TFRecords (resume skips at most one epoch); 'memory' serves
`MemorySource` random examples through the random-access path, with no
TensorFlow at all. Random access goes through Grain's dataset graph
(`rsjax.data.grain_reader`: Grain's threads and, with `config.read_workers`,
its worker processes) or rsjax's own reader (`readers.RandomAccessReader`),
with the same guarantees: `config.read_mode` 'auto' picks Grain for a TFDS
dataset (twice the tiles/s of rsjax's reader, BENCHMARKS.md) and rsjax's
reader for the memory source and arrays directories (as fast there, a
vectorized read, and no Grain needed: the GPU image lists none); 'grain' and
'random_access' choose. `config.train_arrays` (a directory of `<field>.npy`
arrays, `rsjax.eval.experiments.generated`; rows selected by the `.npy` index file
`config.train_rows`) replaces the training split of either source, e.g. with
real + generated examples; evaluation still reads the source's splits.
TensorFlow is imported only when a tfds source is built, with GPUs and TPUs
hidden from it. A dataset that is not built, a missing split and a training
split smaller than one batch are refused with errors that name them
(`rsjax.data.tfds_builder`); `check_dataset` raises them before anything else
is done.

Resume: the batch of step k depends only on (seed, k), so
`create_iterator(..., start_step=k)` yields what an uninterrupted iterator
yields at step k. Evaluation (`train=False`) is one pass over the split in
order, every example exactly once, with a float `mask` field (1 real, 0
padding) on every batch.

Bands and units: a dataset may hold other bands or units in a field than
the declaration (`rsjax.data.field_layout`; a builder stores them in its
metadata). `config.bands` ({field: band names}; None: the declared bands)
picks the bands a run reads by name, on the host before the transfer, and
the normalization follows the units the dataset holds them in.
`dataset_layouts(config)` gives {field: FieldLayout} of what a run's batches
hold; `check_dataset` raises for bands a dataset lacks and for a land-cover
class table larger than the run's `num_classes`.

Fields that cannot be device arrays (text: scene_id, crs; float64: transform)
come back as process-local numpy arrays in the same dict.
"""

from __future__ import annotations

import ast
import atexit
import functools
import queue
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import ml_collections
import numpy as np

from rsjax import mesh as mesh_lib
from rsjax.data import augment as augment_lib
from rsjax.data import field_layout
from rsjax.data import fields as fields_lib
from rsjax.data import grain_reader
from rsjax.data import normalize as normalize_lib
from rsjax.data import readers
from rsjax.data import tfds_builder
from rsjax.data.tfds_builder import import_tfds
from rsjax.data.array_source import ArraySource
from rsjax.data.memory_source import MemorySource

READ_MODES = ("auto", "random_access", "tf_data", "grain")
SOURCES = ("tfds", "memory")


def default_config() -> ml_collections.ConfigDict:
  """Every key the pipeline reads, with its default; keys a config leaves out
  get these (`_resolve`).

  The experiment configs spell these keys out (`configs/common.py`
  data_config, kept equal by tests/configs), except `eval_split`: a trainer
  run evaluates on its config's top-level `eval_split` and passes it here as
  `split`; this default only serves evaluation iterators made without one.
  """
  return ml_collections.ConfigDict({
      "source": "tfds",                       # 'tfds' | 'memory'
      "name": "rs_multisource/synthetic_tiny",
      "data_dir": None,
      "split": "train",
      "eval_split": "validation",
      "batch_size": 8,                        # global, over all processes
      "eval_batch_size": None,                # None: batch_size
      "fields": fields_lib.DEFAULT_FIELDS,
      "bands": None,                          # {field: band names}; None: declared
      "normalize": True,
      "normalization": None,                  # None: normalize.default_config()
      "augment": "none",                      # 'none' (the papers) | 'flips' | 'dihedral'
      "shuffle": True,
      "shuffle_buffer": 1024,                 # tf_data read mode only
      "seed": 0,
      "read_mode": "auto",                    # 'auto' | 'random_access' | 'tf_data' | 'grain'
      "read_threads": 8,
      "read_workers": 0,                      # grain read mode: worker processes
      "prefetch": 2,
      "tile_size": 256,                       # memory source only
      "memory_examples": 64,                  # memory source only
      "train_arrays": None,                   # dir of <field>.npy: training data
      "train_rows": None,                     # .npy of row indices into it
  })


def _resolve(config) -> ml_collections.ConfigDict:
  cfg = default_config()
  given = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  unknown = sorted(set(given) - set(cfg))
  if unknown:
    raise KeyError(f"data config: unknown key(s) {unknown}; valid keys are "
                   f"{sorted(cfg)}.")
  cfg.update(given)
  if cfg.source not in SOURCES:
    raise ValueError(f"config.source must be one of {list(SOURCES)}, got "
                     f"{cfg.source!r}.")
  if cfg.read_mode not in READ_MODES:
    raise ValueError(f"config.read_mode must be one of {list(READ_MODES)}, "
                     f"got {cfg.read_mode!r}.")
  if cfg.augment not in augment_lib.MODES:
    raise ValueError(f"config.augment must be one of {list(augment_lib.MODES)}"
                     f", got {cfg.augment!r}.")
  field_layout.check_bands_config(cfg.bands, tuple(cfg.fields))
  return cfg


def check_batch_size(batch_size: int, mesh: jax.sharding.Mesh,
                     key: str = "batch_size") -> int:
  """The process-local batch size; clear errors for indivisible sizes.

  Batches are split over every mesh axis (`rsjax.mesh.batch_sharding`),
  so the global batch must be divisible by the mesh size.
  """
  processes, shards = jax.process_count(), mesh_lib.batch_divisor(mesh)
  if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
    raise ValueError(f"config.{key} must be a positive int, got "
                     f"{batch_size!r}.")
  if batch_size % shards:
    raise ValueError(f"config.{key}={batch_size} is not divisible by the "
                     f"mesh's {shards} devices {dict(mesh.shape)}.")
  if batch_size % processes:
    raise ValueError(f"config.{key}={batch_size} is not divisible by the "
                     f"number of processes {processes}.")
  return batch_size // processes


def _global_batch(cfg, mesh: jax.sharding.Mesh, train: bool) -> int:
  """The global batch of a training or evaluation iterator (evaluation:
  `eval_batch_size`, or `batch_size` when that is None), checked against
  the mesh."""
  key = "batch_size" if train or cfg.eval_batch_size is None \
      else "eval_batch_size"
  check_batch_size(cfg[key], mesh, key)
  return cfg[key]


def _tfds_reader(cfg, split: str, train: bool, global_batch: int):
  tfds = import_tfds()
  builder = tfds_builder.open_builder(cfg.name, cfg.data_dir)
  tfds_builder.check_split(builder, cfg.name, split,
                           batch_size=global_batch if train else None)
  features = set(builder.info.features.keys())
  missing = sorted(set(cfg.fields) - features)
  if missing:
    raise KeyError(f"config.fields: {missing} not in dataset {cfg.name!r} "
                   f"(features: {sorted(features)}).")
  formats = [builder.info.file_format] + list(
      getattr(builder.info, "alternative_file_formats", []) or [])
  has_array_record = any(getattr(f, "value", f) == "array_record"
                         for f in formats if f is not None)
  mode = cfg.read_mode
  if mode == "auto":  # Grain: 2x rsjax's reader here (BENCHMARKS.md)
    mode = "grain" if has_array_record else "tf_data"
  has_tfrecord = any(getattr(f, "value", f) == "tfrecord"
                     for f in formats if f is not None)
  if mode == "tf_data" and not has_tfrecord:
    raise ValueError(
        f"config.read_mode='tf_data' needs TFRecord files, but {cfg.name!r} "
        f"is stored as {formats}; use read_mode 'random_access' or 'auto'.")
  if mode in ("random_access", "grain") and not has_array_record:
    raise ValueError(
        f"config.read_mode={mode!r} needs ArrayRecord files, but "
        f"{cfg.name!r} is stored as {formats}; rebuild with "
        "`tfds build --file_format=array_record` or use read_mode 'tf_data'.")
  if mode in ("random_access", "grain"):
    source = tfds.data_source(
        cfg.name, split=split, data_dir=cfg.data_dir,
        builder_kwargs={"file_format": "array_record"})
    return _random_access_reader(cfg, source, mode, train, global_batch)
  return readers.TFDataReader(
      builder, split, cfg.fields, global_batch=global_batch,
      process_index=jax.process_index(), process_count=jax.process_count(),
      seed=cfg.seed, shuffle=cfg.shuffle and train, train=train,
      shuffle_buffer=cfg.shuffle_buffer)


def _random_access_reader(cfg, source, mode: str, train: bool,
                          global_batch: int):
  """The reader of a random-access source: Grain's graph for read_mode
  'grain' (`rsjax.data.grain_reader`), rsjax's own otherwise."""
  common = dict(global_batch=global_batch, process_index=jax.process_index(),
                process_count=jax.process_count(), seed=cfg.seed,
                shuffle=cfg.shuffle and train, train=train,
                num_threads=cfg.read_threads)
  if mode == "grain":
    return grain_reader.GrainReader(source, cfg.fields,
                                    num_workers=cfg.read_workers, **common)
  return readers.RandomAccessReader(source, cfg.fields, **common)


def _stored_layouts(cfg, builder=None) -> dict[str, field_layout.FieldLayout]:
  """{field: layout} of the run's raster fields as the source stores them:
  a TFDS dataset's metadata (`field_layout.from_metadata`), the declaration
  for the memory source."""
  metadata = None
  if cfg.source == "tfds":
    builder = builder or tfds_builder.open_builder(cfg.name, cfg.data_dir)
    metadata = builder.info.metadata
  return field_layout.from_metadata(metadata, tuple(cfg.fields))


def dataset_layouts(config, builder=None) -> dict[str, field_layout.FieldLayout]:
  """{field: layout} of the raster fields of `config`'s batches: the bands
  `config.bands` picks from what the dataset holds, in its units."""
  cfg = _resolve(config)
  return field_layout.run_layouts(_stored_layouts(cfg, builder), cfg.bands,
                                  _dataset_name(cfg))[1]


def _dataset_name(cfg) -> str:
  return (f"dataset {cfg.name!r}" if cfg.source == "tfds"
          else f"the {cfg.source} source")


def check_dataset(config, *, eval_split: str | None = None,
                  num_classes: int | None = None) -> None:
  """Raises at once what reading `config`'s batches would raise later: a TFDS
  dataset that is not built (`tfds_builder.DatasetNotBuilt`), a split it
  lacks (`MissingSplit`), a training split smaller than one batch
  (`TooFewExamples`), bands `config.bands` asks for that the dataset does
  not hold (`field_layout.MissingBands`), units no normalization maps and
  (given the run's `num_classes`) a class table with more classes than that
  (`field_layout.DatasetMismatch`).
  The trainer calls it before it creates anything in the workdir."""
  cfg = _resolve(config)
  builder = None
  if cfg.source == "tfds":
    builder = tfds_builder.open_builder(cfg.name, cfg.data_dir)
    if not cfg.train_arrays:
      tfds_builder.check_split(builder, cfg.name, cfg.split,
                               batch_size=cfg.batch_size)
    tfds_builder.check_split(builder, cfg.name, eval_split or cfg.eval_split)
  layouts = dataset_layouts(cfg, builder)
  for name, held in layouts.items():
    if cfg.normalize:
      try:
        normalize_lib.source_of(name, held.units)
      except ValueError as error:
        raise field_layout.DatasetMismatch(
            f"{_dataset_name(cfg)}: {error}") from None
    if (num_classes is not None and fields_lib.field(name).kind ==
        "categorical" and len(held.classes) > num_classes):
      raise field_layout.DatasetMismatch(
          f"field {name!r} of {_dataset_name(cfg)} has {len(held.classes)} "
          f"classes ({', '.join(held.classes)}), more than config.num_classes"
          f"={num_classes}: codes >= {num_classes} would be one-hot encoded "
          f"as all zeros. Set --config.num_classes={len(held.classes)}.")


def num_training_examples(config) -> int:
  """Examples in the training split `config` reads: the rows of
  `train_arrays` (given `train_rows`, those rows), the memory source's
  `memory_examples`, or the TFDS split `config.split` (from the dataset's
  metadata; nothing is read). `rsjax.train.training_length` turns epochs
  into steps with it."""
  cfg = _resolve(config)
  if cfg.train_arrays:
    return len(ArraySource(cfg.train_arrays, rows=cfg.train_rows,
                           fields=cfg.fields))
  if cfg.source == "memory":
    return int(cfg.memory_examples)
  builder = tfds_builder.open_builder(cfg.name, cfg.data_dir)
  return tfds_builder.check_split(builder, cfg.name, cfg.split)


def make_reader(config, *, train: bool, split: str | None = None,
                global_batch: int):
  """The host reader of a resolved config (see `rsjax.data.readers`)."""
  cfg = config
  split = split or (cfg.split if train else cfg.eval_split)
  if train and cfg.train_arrays:
    source = ArraySource(cfg.train_arrays, rows=cfg.train_rows,
                         fields=cfg.fields)
  elif cfg.source == "memory":
    # The training split (read to train or, in order, to evaluate) is one
    # random dataset, every other split another.
    seed = cfg.seed * 1000 + (0 if split == cfg.split else 1)
    source = MemorySource(cfg.memory_examples, tile_size=cfg.tile_size,
                          fields=cfg.fields, seed=seed)
  else:
    return _tfds_reader(cfg, split, train, global_batch)
  return _random_access_reader(cfg, source, cfg.read_mode, train,
                               global_batch)


def _host_batches(reader, start: int, stop: int | None) -> Iterator[dict]:
  if isinstance(reader, readers.RandomAccessReader):
    step = start
    while stop is None or step < stop:
      yield reader.read(step)
      step += 1
  else:
    for step, batch in enumerate(reader.batches(start), start):
      if stop is not None and step >= stop:
        return
      yield batch


class _Background:
  """Runs an iterator on a daemon thread, `size` items ahead."""

  _DONE = object()

  def __init__(self, iterator: Iterator, size: int):
    self._queue: queue.Queue = queue.Queue(maxsize=max(1, size))
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, args=(iterator,),
                                    daemon=True)
    _RUNNING.add(self)
    self._thread.start()

  def _put(self, item) -> bool:
    while not self._stop.is_set():
      try:
        self._queue.put(item, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  def _run(self, iterator):
    try:
      for item in iterator:
        if not self._put((item, None)):
          return
      self._put((self._DONE, None))
    except BaseException as e:  # forwarded to the consumer
      self._put((None, e))

  def __iter__(self):
    return self

  def __next__(self):
    while True:
      if self._stop.is_set():
        raise StopIteration
      try:
        item, error = self._queue.get(timeout=0.1)
        break
      except queue.Empty:
        continue
    if error is not None:
      raise error
    if item is self._DONE:
      self._queue.put((self._DONE, None))
      raise StopIteration
    return item

  def close(self, timeout: float = 30.0):
    """Stops the thread and waits for it (it may be inside a read)."""
    self._stop.set()
    if self._thread is not threading.current_thread():
      self._thread.join(timeout)


# A prefetch thread still reading when the interpreter exits would call into
# XLA while it is torn down, which aborts the process ("terminate called after
# throwing"). atexit runs after the non-daemon threads have ended and before
# that teardown, so the threads of iterators nobody closed are stopped there.
_RUNNING: weakref.WeakSet = weakref.WeakSet()


def _stop_prefetch_threads():
  for background in list(_RUNNING):
    background.close(timeout=5.0)


atexit.register(_stop_prefetch_threads)


class BatchIterator:
  """Global batches (dicts of sharded jax.Arrays) from `start_step` on.

  Attributes: `step` (the step of the next batch), `steps_per_epoch`,
  `num_examples` (of the split), `num_batches` (None when training: infinite).
  """

  def __init__(self, config, mesh: jax.sharding.Mesh, *, train: bool,
               start_step: int = 0, split: str | None = None):
    cfg = _resolve(config)
    global_batch = _global_batch(cfg, mesh, train)
    if start_step < 0 or (not train and start_step):
      raise ValueError(f"start_step must be 0 for evaluation and >= 0 for "
                       f"training, got {start_step}.")
    self.global_batch = global_batch
    self.sharding = mesh_lib.batch_sharding(mesh)
    self.reader = make_reader(cfg, train=train, split=split,
                              global_batch=global_batch)
    if train and cfg.train_arrays:  # written in the run's own layout
      stored = field_layout.run_layouts(
          field_layout.from_metadata(None, tuple(cfg.fields)), cfg.bands)[1]
    else:
      stored = _stored_layouts(cfg)
    self.band_indices, self.layouts = field_layout.run_layouts(
        stored, cfg.bands, _dataset_name(cfg))
    self.steps_per_epoch = self.reader.steps_per_epoch
    self.num_examples = self.reader.num_examples
    self.num_batches = None if train else self.steps_per_epoch
    self.step = start_step
    self._postprocess = _make_postprocess(cfg, train, self.layouts)
    host = _Background(_host_batches(self.reader, start_step,
                                     self.num_batches), cfg.prefetch)
    device = map(self._to_device, enumerate(host, start_step))
    self._host, self._device = host, _Background(device, cfg.prefetch)

  def _to_device(self, step_and_batch):
    step, local = step_and_batch
    arrays, host = {}, {}
    for name, value in local.items():
      if self.band_indices.get(name) is not None:
        value = value[..., list(self.band_indices[name])]
      if fields_lib.is_device_field(value.dtype):
        shape = (self.global_batch,) + value.shape[1:]
        arrays[name] = jax.make_array_from_process_local_data(
            self.sharding, value, shape)
      else:
        host[name] = value
    arrays = self._postprocess(arrays, np.int32(step))
    return {**arrays, **host}

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, Any]:
    batch = next(self._device)
    self.step += 1
    return batch

  def close(self):
    self._device.close()
    self._host.close()
    self.reader.close()

  def __del__(self):
    try:
      self.close()
    except Exception:  # pylint: disable=broad-except
      pass


def _make_postprocess(cfg, train: bool, layouts=None):
  """One jitted function: augment (train) then normalize, on global arrays;
  `layouts` ({field: FieldLayout}) say which bands and units the fields hold.

  Cached by its settings, so evaluation iterators created again and again
  during training reuse one compiled function.
  """
  norm = normalize_lib.resolve_config(cfg.normalization) if cfg.normalize \
      else None
  mode = cfg.augment if train else "none"
  plain = tuple(sorted((name, l.bands, l.units)
                       for name, l in (layouts or {}).items()))
  return _postprocess_fn(repr(norm), mode, int(cfg.seed), repr(plain))


def _postprocess_fn(norm_repr: str, mode: str, seed: int,
                    layouts_repr: str = "()"):
  norm = ast.literal_eval(norm_repr)  # a dict of plain values, or None
  layouts = {name: field_layout.FieldLayout(bands, units)
             for name, bands, units in ast.literal_eval(layouts_repr)}

  def postprocess(arrays: Mapping[str, jax.Array], step):
    arrays = dict(arrays)
    if mode != "none":
      arrays = augment_lib.random_augment(arrays, seed=seed, step=step,
                                          mode=mode)
    if norm is not None:
      arrays = normalize_lib.normalize_batch(arrays, norm, layouts)
    return arrays

  return jax.jit(postprocess)


# Cached by assignment rather than with a decorator: the mutation tests
# (`make mutants`, see TESTING.md) skip decorated functions.
_postprocess_fn = functools.lru_cache(maxsize=32)(_postprocess_fn)


def abstract_batch(config, mesh: jax.sharding.Mesh, *, train: bool = True
                   ) -> dict[str, jax.ShapeDtypeStruct]:
  """The device fields of a batch `create_iterator` would give, as
  `jax.ShapeDtypeStruct`s sharded over `mesh`, without reading any data.

  Shapes are the declared ones (`rsjax.data.fields.spec`) at
  `config.tile_size`, with the band counts of `config.bands`; dtypes are those after augmentation and normalization
  (traced, not run). Evaluation batches carry `mask`. Text and float64
  fields, which stay on the host, are left out. For compiling steps ahead of
  time for devices this process does not have (`rsjax.train.aot`).
  """
  cfg = _resolve(config)
  global_batch = _global_batch(cfg, mesh, train)
  sharding = mesh_lib.batch_sharding(mesh)
  stored, layouts = {}, {}
  for name in cfg.fields:
    f = fields_lib.field(name)
    bands = None
    if f.spatial and f.channel_axis:
      bands = field_layout.run_bands(cfg.bands, name)
      layouts[name] = field_layout.layout(name, bands=bands)
    shape, dtype = fields_lib.spec(name, cfg.tile_size, bands)
    if fields_lib.is_device_field(dtype):
      stored[name] = jax.ShapeDtypeStruct((global_batch,) + tuple(shape),
                                          dtype, sharding=sharding)
  if not train:
    stored[normalize_lib.PADDING_MASK] = jax.ShapeDtypeStruct(
        (global_batch,), np.float32, sharding=sharding)
  processed = jax.eval_shape(_make_postprocess(cfg, train, layouts), stored,
                             jax.ShapeDtypeStruct((), np.int32))
  return {name: jax.ShapeDtypeStruct(value.shape, value.dtype,
                                     sharding=sharding)
          for name, value in processed.items()}


def create_iterator(config, mesh: jax.sharding.Mesh, *, train: bool = True,
                    start_step: int = 0, split: str | None = None
                    ) -> BatchIterator:
  """Training (infinite, shuffled, augmented) or evaluation (one padded pass)
  batches for `config` (keys: `default_config()`) sharded over `mesh`."""
  return BatchIterator(config, mesh, train=train, start_step=start_step,
                       split=split)
