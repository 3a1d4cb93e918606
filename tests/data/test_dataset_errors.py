"""A dataset a config cannot be read from is refused in a few words naming
it: not built (the dataset, its config, the data_dir and the folder looked
in, never TFDS's list of every dataset), a split it lacks, a training split
smaller than one batch (the split, its example count and the batch size);
`pipeline.check_dataset` raises the same before anything is read, and
`create_iterator` when it opens the dataset."""

import os

import jax
import pytest
from jax.sharding import AxisType

from rsjax.data import pipeline
from rsjax.data import tfds_builder

TINY = "rs_multisource/synthetic_tiny"
TINY_SPLITS = {"train": 20, "validation": 8, "test": 4}
"""Examples per split of rs_multisource/synthetic_tiny (its builder)."""


def _data(data_dir, **overrides):
  return {**dict(name=TINY, data_dir=data_dir, batch_size=8, fields=("s2",)),
          **overrides}


@pytest.fixture(scope="module")
def tiny_splits(synthetic_tiny):
  """The example counts of the built synthetic_tiny, checked against the
  numbers the cases below rely on."""
  builder = tfds_builder.open_builder(TINY, synthetic_tiny)
  counts = {split: info.num_examples
            for split, info in builder.info.splits.items()}
  assert counts == TINY_SPLITS
  return synthetic_tiny


@pytest.mark.parametrize("name,folder", [
    # no code, no files: TFDS's long list
    ("not_a_builder/any", ("not_a_builder", "any")),
    # registered builder code, no files
    ("rs_multisource/synthetic", ("rs_multisource", "synthetic")),
    # a version is a folder below the config's: the config's is named
    ("rs_multisource/synthetic:1.2.0", ("rs_multisource", "synthetic")),
    # a version the code does not have (TFDS asserts)
    ("rs_multisource/synthetic:9.9.9", ("rs_multisource", "synthetic"))])
def test_a_dataset_that_is_not_built_names_dataset_and_data_dir(
    tmp_path, synthetic_tiny, name, folder):
  del synthetic_tiny  # built: rs_multisource's code is registered with TFDS
  data_dir = str(tmp_path / "tensorflow_datasets")
  looked_in = os.path.join(data_dir, *folder)
  with pytest.raises(tfds_builder.DatasetNotBuilt) as raised:
    pipeline.check_dataset(_data(data_dir, name=name))
  error = raised.value
  assert (error.name, error.data_dir, error.looked_in) == (name, data_dir,
                                                           looked_in)
  assert str(error) == (f"dataset {name!r} is not built in data_dir "
                        f"{data_dir!r}: no prepared version under "
                        f"{looked_in}.")
  assert isinstance(error, FileNotFoundError)


@pytest.mark.parametrize("name,folder", [
    ("not_a_builder/any", ("not_a_builder", "any")),
    ("rs_multisource/synthetic", ("rs_multisource", "synthetic")),
    ("rs_multisource/synthetic:9.9.9", ("rs_multisource", "synthetic"))])
def test_without_a_data_dir_tfds_default_is_named(tmp_path, monkeypatch,
                                                   synthetic_tiny, name, folder):
  del synthetic_tiny  # built: rs_multisource's code is registered with TFDS
  tfds = tfds_builder.import_tfds()
  monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path))
  with pytest.raises(tfds_builder.DatasetNotBuilt) as raised:
    tfds_builder.open_builder(name, None)
  assert str(raised.value) == (
      f"dataset {name!r} is not built in TFDS's default data_dir: "
      f"no prepared version under {tmp_path.joinpath(*folder)}.")


# (overrides of the data config, eval_split, the error, its message).
SPLIT_CASES = [
    (dict(batch_size=24), None, tfds_builder.TooFewExamples,
     "split 'train' of dataset 'rs_multisource/synthetic_tiny' has 20 "
     "example(s), fewer than one batch of config.data.batch_size=24; lower "
     "the batch size or build the dataset from more tiles."),
    (dict(split="validation", batch_size=16), None,
     tfds_builder.TooFewExamples,
     "split 'validation' of dataset 'rs_multisource/synthetic_tiny' has 8 "
     "example(s), fewer than one batch of config.data.batch_size=16; lower "
     "the batch size or build the dataset from more tiles."),
    (dict(split="trian"), None, tfds_builder.MissingSplit,
     "dataset 'rs_multisource/synthetic_tiny' has no split 'trian'; splits "
     "are ['test', 'train', 'validation']."),
    (dict(), "tset", tfds_builder.MissingSplit,
     "dataset 'rs_multisource/synthetic_tiny' has no split 'tset'; splits "
     "are ['test', 'train', 'validation']."),
]


@pytest.mark.parametrize("overrides, eval_split, error, message", SPLIT_CASES)
def test_split_problems_are_named(tiny_splits, overrides, eval_split, error,
                                  message):
  with pytest.raises(error) as raised:
    pipeline.check_dataset(_data(tiny_splits, **overrides),
                           eval_split=eval_split)
  assert str(raised.value) == message


def test_a_split_of_exactly_one_batch_and_small_eval_splits_pass(
    tiny_splits):
  # Evaluation pads its last batch: a split smaller than a batch is fine.
  pipeline.check_dataset(_data(tiny_splits, batch_size=20, eval_batch_size=64),
                         eval_split="test")
  pipeline.check_dataset(_data(tiny_splits, split="test", batch_size=4))
  # Training on generated arrays does not read the dataset's training split.
  pipeline.check_dataset(_data(tiny_splits, batch_size=64,
                               train_arrays="elsewhere"))


def test_errors_carry_their_numbers_and_familiar_types():
  error = tfds_builder.TooFewExamples("d/c", "train", 3, 8)
  assert (error.name, error.split, error.count, error.batch_size) == (
      "d/c", "train", 3, 8)
  assert str(error) == (
      "split 'train' of dataset 'd/c' has 3 example(s), fewer than one batch "
      "of config.data.batch_size=8; lower the batch size or build the "
      "dataset from more tiles.")
  assert isinstance(error, ValueError)
  assert isinstance(tfds_builder.MissingSplit("no split"), KeyError)


def test_a_memory_source_needs_no_dataset(tmp_path):
  pipeline.check_dataset(dict(source="memory", name="not_a_builder/any",
                              data_dir=str(tmp_path)))
  assert not os.listdir(tmp_path)


def test_iterators_raise_the_same_errors(tmp_path, tiny_splits, devices):
  del devices
  mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
  with pytest.raises(tfds_builder.DatasetNotBuilt, match="not_a_builder"):
    pipeline.create_iterator(
        _data(str(tmp_path), name="not_a_builder/any"), mesh)
  with pytest.raises(tfds_builder.TooFewExamples,
                     match=r"split 'train' .* has 20 example\(s\).*=24"):
    pipeline.create_iterator(_data(tiny_splits, batch_size=24), mesh)
  with pytest.raises(tfds_builder.MissingSplit, match="no split 'tset'"):
    pipeline.create_iterator(_data(tiny_splits), mesh, train=False,
                             split="tset")
