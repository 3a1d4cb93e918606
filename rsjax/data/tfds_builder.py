"""The TFDS dataset a data config names, opened with errors that say what is
missing instead of TFDS's list of every dataset it knows.

  builder = tfds_builder.open_builder("rs_multisource/synthetic", data_dir)
  tfds_builder.check_split(builder, "rs_multisource/synthetic", "train",
                           batch_size=8)

`open_builder` raises `DatasetNotBuilt` (a FileNotFoundError) naming the
dataset, its config, the data_dir and the folder it looked in when nothing is
built there; `check_split` raises `MissingSplit` (a KeyError) for a split the
dataset lacks and `TooFewExamples` (a ValueError) naming the split, its
example count and the batch size when a training split holds less than one
batch. The exact command
that builds one of this repository's datasets is the launchers' to add
(`data_builders.prepare.build_command`): nothing under rsjax knows the
builders.

TensorFlow is imported only when a dataset is opened (`import_tfds`), with
GPUs and TPUs hidden from it.
"""

from __future__ import annotations

from rsjax.store import paths


class DatasetNotBuilt(FileNotFoundError):
  """No prepared dataset `name` in `data_dir` (None: TFDS's default)."""

  def __init__(self, name: str, data_dir: str | None, looked_in: str):
    self.name, self.data_dir, self.looked_in = name, data_dir, looked_in
    where = f"data_dir {data_dir!r}" if data_dir else "TFDS's default data_dir"
    super().__init__(
        f"dataset {name!r} is not built in {where}: no prepared version "
        f"under {looked_in}.")


class MissingSplit(KeyError):
  """The dataset has no split of that name."""

  def __str__(self) -> str:
    return str(self.args[0])  # a sentence, not a key to quote


class TooFewExamples(ValueError):
  """A training split holds fewer examples than one batch."""

  def __init__(self, name: str, split: str, count: int, batch_size: int):
    self.name, self.split, self.count, self.batch_size = (name, split, count,
                                                          batch_size)
    super().__init__(
        f"split {split!r} of dataset {name!r} has {count} example(s), fewer "
        f"than one batch of config.data.batch_size={batch_size}; lower the "
        "batch size or build the dataset from more tiles.")


def import_tfds():
  """tensorflow_datasets, with TensorFlow kept off every accelerator."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for kind in ("GPU", "TPU"):
    try:
      tf.config.set_visible_devices([], kind)
    except (RuntimeError, ValueError):
      pass  # TF already initialized, or no such device type
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds


def _looked_in(tfds, name: str, data_dir: str | None) -> str:
  """The folder of `name`'s prepared versions ('builder/config[:version]')."""
  root = data_dir or tfds.core.constants.DATA_DIR
  return paths.join(root, name.split(":")[0])


def open_builder(name: str, data_dir: str | None):
  """The prepared TFDS builder of `name` in `data_dir`, or `DatasetNotBuilt`."""
  tfds = import_tfds()
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise DatasetNotBuilt(name, data_dir,
                          _looked_in(tfds, name, data_dir)) from None
  except AssertionError as error:
    # TFDS asserts when registered code lacks the version asked for
    # ('name/config:9.9.9'); its message, kept as the cause, lists the others.
    if "cannot be loaded at version" not in str(error):
      raise
    raise DatasetNotBuilt(name, data_dir,
                          _looked_in(tfds, name, data_dir)) from error
  # A builder whose code is imported (registered) opens without files.
  if not builder.info.splits:
    raise DatasetNotBuilt(name, data_dir, _looked_in(tfds, name, data_dir))
  return builder


def check_split(builder, name: str, split: str, *,
                batch_size: int | None = None) -> int:
  """The example count of `split`; raises if the dataset has no such split,
  or (given `batch_size`, for training) fewer examples than one batch."""
  splits = builder.info.splits
  if split not in splits:
    raise MissingSplit(f"dataset {name!r} has no split {split!r}; splits "
                       f"are {sorted(splits)}.")
  count = splits[split].num_examples
  if batch_size is not None and count < batch_size:
    raise TooFewExamples(name, split, count, batch_size)
  return count
