"""Generated training examples: G(sources) paired with the real land-cover labels.

The data of the augmentation experiment (RS-SPADE paper Sec. 4, the "Mix"
dataset; CSEBGAN Sec. IV-D): a trained paired generator (a `launch.train`
workdir) runs over the real training split on device, in order, and each
training example gets `per_mask` generated copies: its real fields with the
generator's output field (e.g. s2) replaced by G(its sources). Copy j uses
the generator's inference noise key folded with j (copy 0 is exactly
`system.predict`), so diverse generators give k different images per mask.

An arrays directory holds, in the dataset's physical units (the pipeline
normalizes and augments them like any other source):

  <dir>/<field>.npy   (rows, T, T[, C]); rows [0, N) the real training
                      examples in split order, rows [j N, (j + 1) N) copy j
  <dir>/meta.json     num_real, per_mask, generated_field, fields, generator

It is written to a temporary directory and renamed when complete, so a killed
run never leaves one that looks whole. `ArraySource` reads it back
(memory-mapped) as a random-access source: `config.data.train_arrays`
(`rsjax.data.pipeline`) trains on it, `config.data.train_rows` (a `.npy` of
row indices) picks e.g. a subset and its generated copies. No TensorFlow is
needed on the generation side with a memory source; a tfds source reads
ArrayRecord files through `tfds.data_source`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from rsjax.data import fields as fields_lib
from rsjax.data import normalize as normalize_lib
from rsjax.data import pipeline
from rsjax.data.array_source import META
from rsjax.store import atomic
from rsjax.store import paths
from rsjax.systems import inputs as inputs_lib
from rsjax.systems import trained


class Generator:
  """A trained paired generator restored from its `launch.train` workdir."""

  def __init__(self, workdir: str):
    self.workdir = paths.absolute(workdir)
    if not paths.of(self.workdir).is_dir():
      raise FileNotFoundError(f"config.generator_workdir: {self.workdir!r} "
                              f"does not exist")
    try:
      self.run = trained.load_run(self.workdir)
    except FileNotFoundError as error:
      raise FileNotFoundError(f"config.generator_workdir: {error}") from error
    self.config, self.system = self.run.config, self.run.system
    self.field = self.system.output_field
    self.sources = tuple(self.system.predict_fields)
    self.normalization = self.config.data.get("normalization")

  def check_for(self, segmenter_inputs: Sequence[str], tile_size: int | None,
                num_classes: int) -> None:
    """ValueError unless the outputs can stand in for a segmenter input."""
    if self.field not in segmenter_inputs:
      raise ValueError(
          f"config.generator_workdir {self.workdir!r}: the generator predicts "
          f"{self.field!r}, which is not a segmenter input "
          f"(config.segmentation.inputs = {list(segmenter_inputs)})")
    if self.system.output_bands is not None:
      raise ValueError(
          f"config.generator_workdir {self.workdir!r}: the generator predicts "
          f"only bands {self.system.output_bands} of {self.field!r}; the "
          f"segmenter needs all of them")
    if self.field in inputs_lib.CATEGORICAL_FIELDS:
      raise ValueError(f"config.generator_workdir {self.workdir!r}: generated "
                       f"{self.field!r} is categorical; a segmenter input "
                       f"must be an image")
    if tile_size is None:
      return
    channels = inputs_lib.field_channels(self.field, num_classes)
    physical = {}
    for name in (*self.sources, self.field):
      shape, dtype = fields_lib.spec(name, tile_size)
      physical[name] = jax.ShapeDtypeStruct((1,) + shape, dtype)
    rng = jax.ShapeDtypeStruct((2,), np.uint32)
    try:
      batch = jax.eval_shape(lambda b: normalize_lib.normalize_batch(
          b, self.normalization), physical)
      state = jax.eval_shape(self.system.init, rng, batch)
      shape = jax.eval_shape(self.system.predict, state, batch).shape
    except (ValueError, TypeError, KeyError) as error:
      raise ValueError(f"config.generator_workdir {self.workdir!r}: the "
                       f"generator cannot take {tile_size}-pixel tiles: "
                       f"{error}") from error
    if shape != (1, tile_size, tile_size, channels):
      raise ValueError(
          f"config.generator_workdir {self.workdir!r}: the generator outputs "
          f"{shape[1:]} per example, the segmenter's {self.field!r} is "
          f"{(tile_size, tile_size, channels)}")

def _host(x) -> np.ndarray:
  """Every row of a batch-sharded global array, on every process."""
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def generated_batches(generator: Generator, data_config, fields: Sequence[str],
                      per_mask: int, batch_size: int):
  """(number of training examples, iterator of (real, [copy 0, ...]) host
  dicts of physical arrays per batch of the training split, in order,
  padding rows dropped)."""
  data = ml_collections.ConfigDict(data_config.to_dict())
  data.fields = tuple(dict.fromkeys((*fields, *generator.sources)))
  data.eval_batch_size = batch_size
  data.normalization = generator.normalization
  data.train_arrays, data.train_rows = None, None
  norm = normalize_lib.resolve_config(generator.normalization)
  iterator = pipeline.create_iterator(data, generator.run.mesh, train=False,
                                      split=data.split)
  predict = jax.jit(generator.system.predict)
  dtype = fields_lib.SPATIAL[generator.field][1]

  def batches():
    state = generator.run.state
    try:
      for batch in iterator:
        keep = _host(batch["mask"]) > 0
        real = {name: np.asarray(normalize_lib.denormalize(
            name, _host(batch[name]), norm))[keep] for name in fields}
        copies = []
        for j in range(per_mask):
          noisy = state if j == 0 else state.replace(
              rng=jax.random.fold_in(state.rng, j))
          output = normalize_lib.denormalize(
              generator.field, _host(predict(noisy, batch)), norm)
          copies.append({**real, generator.field:
                         np.asarray(output)[keep].astype(dtype)})
        yield real, copies
    finally:
      iterator.close()

  return iterator.num_examples, batches()


def write_generated(directory: str, generator: Generator, data_config,
                    fields: Sequence[str], *, per_mask: int = 1,
                    batch_size: int = 8) -> dict:
  """Writes the arrays directory (see the module docstring) unless it is
  already complete; returns its meta. Rows stream into memory-mapped files,
  so the host holds one batch at a time."""
  directory = os.fspath(directory)
  meta_path = os.path.join(directory, META)
  if os.path.exists(meta_path):
    with open(meta_path) as f:
      return json.load(f)
  if per_mask < 1:
    raise ValueError(f"config.generated_per_mask must be >= 1, got {per_mask}")
  fields = tuple(fields)
  writer = jax.process_index() == 0
  with (atomic.atomic_path(directory) if writer
        else contextlib.nullcontext()) as temporary:
    if writer:
      os.makedirs(temporary)
    meta = _write_rows(temporary, generator, data_config, fields, per_mask,
                       batch_size)
  multihost_utils.sync_global_devices("generated arrays written")
  return meta


def _write_rows(temporary: str | None, generator: Generator, data_config,
                fields: tuple[str, ...], per_mask: int, batch_size: int
                ) -> dict:
  """Generates every row; process 0 (`temporary` set) writes them and
  meta.json into `temporary`, the others only take part in the steps."""
  num_real, batches = generated_batches(generator, data_config, fields,
                                        per_mask, batch_size)
  files, position = {}, 0
  for real, copies in batches:
    n = len(real[fields[0]])
    if temporary:
      for name in fields:
        if name not in files:
          files[name] = np.lib.format.open_memmap(
              os.path.join(temporary, f"{name}.npy"), mode="w+",
              dtype=real[name].dtype,
              shape=(num_real * (1 + per_mask),) + real[name].shape[1:])
        for j, rows in enumerate([real, *copies]):
          start = j * num_real + position
          files[name][start:start + n] = rows[name]
    position += n
  if position != num_real:
    raise RuntimeError(f"generation read {position} training examples, the "
                       f"split has {num_real}")
  meta = {"num_real": num_real, "per_mask": per_mask,
          "generated_field": generator.field, "fields": list(fields),
          "generator_workdir": generator.workdir,
          "generator_step": generator.run.step}
  if temporary:
    for array in files.values():
      array.flush()
    del files
    with open(os.path.join(temporary, META), "w") as f:
      json.dump(meta, f, indent=2)
  return meta
