"""The augmentation experiment end to end at tiny size (memory source, 2 steps).

A 2-step pix2pix generator (s1 + lulc + dem -> s2 on random 32-pixel tiles,
2 downsamplings) stands in for RS-SPADE; the U-Net is an RS-UNet with one
downsampling (tracing the full depth dominates the test time). All sub-runs
share one config up to their data paths, so they share compiled programs.
"""

from __future__ import annotations

import csv
import json
import os

import jax
import ml_collections
import numpy as np
import pytest

import tiny_configs
from rsjax.data import normalize as normalize_lib
from rsjax.data import pipeline
from rsjax.data.array_source import ArraySource
from rsjax.data.memory_source import MemorySource
from rsjax.eval.experiments import augmentation
from rsjax.eval.experiments import generated
from rsjax.train import trainer as trainer_lib

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def experiment(generator_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("augment"))
  config = tiny_configs.tiny_augment(generator_dir)
  return config, workdir, augmentation.run_augmentation(config, workdir)


def test_writes_table_and_plots(experiment):
  config, workdir, document = experiment
  with open(os.path.join(workdir, "augmentation.csv")) as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == [
      "fraction", "real_tiles", "mix_tiles", "true_miou", "mix_miou",
      "true_fwiou", "mix_fwiou", "true_acc", "mix_acc", "d_miou_pct",
      "d_fwiou_pct", "d_acc_pct"]
  assert [(r["real_tiles"], r["mix_tiles"]) for r in rows] == [
      ("16", "32"), ("32", "64")]
  for row in document["rows"]:
    for name in ("miou", "fwiou", "acc"):
      true, mix = row[f"true_{name}"], row[f"mix_{name}"]
      assert 0.0 <= true <= 1.0 and 0.0 <= mix <= 1.0
      assert row[f"d_{name}_pct"] == pytest.approx((mix - true) / true * 100)
    assert len(row["true_class_iou"]) == config.segmentation.num_classes
  with open(os.path.join(workdir, "augmentation.json")) as f:
    assert len(json.load(f)["rows"]) == 2
  with open(os.path.join(workdir, "augmentation.md")) as f:
    assert "| fraction | real_tiles |" in f.read()
  for name in ("class_iou_change.png", "validation_miou.png"):
    with open(os.path.join(workdir, name), "rb") as f:
      assert f.read(8) == PNG
  # Both runs of a subset log validation mIoU at every step (the curves).
  for arm in augmentation.ARMS:
    from rsjax.eval.experiments import plots  # pylint: disable=g-import-not-at-top
    steps, values = plots.read_curve(
        os.path.join(workdir, "runs", f"{arm}_f0.5", "metrics.jsonl"),
        "validation/miou")
    assert list(steps) == [1, 2] and np.all(np.isfinite(values))


def test_rows_pair_subsets_with_their_generated_copies(experiment):
  _, workdir, _ = experiment
  true = np.load(os.path.join(workdir, "rows", "true_f0.5.npy"))
  mix = np.load(os.path.join(workdir, "rows", "mix_f0.5.npy"))
  assert len(true) == 16 and len(set(true)) == 16 and true.max() < 32
  np.testing.assert_array_equal(mix, np.concatenate([true, true + 32]))
  full = np.load(os.path.join(workdir, "rows", "true_f1.npy"))
  np.testing.assert_array_equal(full, np.arange(32))


def test_generated_examples_are_generator_outputs_with_real_masks(
    experiment, generator_dir):
  config, workdir, _ = experiment
  source = ArraySource(os.path.join(workdir, "generated"))
  assert len(source) == 64 and source.meta["num_real"] == 32
  real, fake = source.take(np.arange(8)), source.take(np.arange(32, 40))
  np.testing.assert_array_equal(real["lulc"], fake["lulc"])
  np.testing.assert_array_equal(real["s1"], fake["s1"])
  assert not np.allclose(real["s2"], fake["s2"])

  generator = generated.Generator(generator_dir)
  data = ml_collections.ConfigDict(config.segmentation.data.to_dict())
  data.fields = ("s2", "s1", "lulc", "valid", "dem")
  iterator = pipeline.create_iterator(data, generator.run.mesh,
                                      train=False, split="train")
  batch = next(iterator)
  iterator.close()
  state = generator.run.state
  expected = normalize_lib.denormalize(
      "s2", np.asarray(jax.jit(generator.system.predict)(state, batch)))
  np.testing.assert_allclose(fake["s2"], expected, atol=1e-5)
  np.testing.assert_array_equal(real["lulc"], np.asarray(batch["lulc"]))


def test_real_rows_are_the_training_split(experiment):
  config, workdir, _ = experiment
  data = config.segmentation.data
  source = ArraySource(os.path.join(workdir, "generated"),
                                       rows=np.arange(32))
  # The generation pass read the segmenter's fields + the generator's.
  training = MemorySource(32, tile_size=32,
                          fields=("s2", "s1", "lulc", "valid", "dem"),
                          seed=data.seed * 1000).take(np.arange(32))
  stored = source.take(np.arange(32))
  np.testing.assert_array_equal(stored["lulc"], training["lulc"])
  np.testing.assert_allclose(stored["s1"], training["s1"], atol=1e-4)


def test_array_source_errors(experiment, tmp_path):
  _, workdir, _ = experiment
  arrays_dir = os.path.join(workdir, "generated")
  with pytest.raises(FileNotFoundError, match="train_arrays"):
    ArraySource(str(tmp_path))
  with pytest.raises(ValueError, match="train_rows"):
    ArraySource(arrays_dir, rows=np.array([0, 64]))
  with pytest.raises(KeyError, match="dem"):
    ArraySource(arrays_dir, fields=("s2", "dem"))


def test_resume_does_not_retrain(experiment, monkeypatch):
  config, workdir, document = experiment

  def no_training(*args, **kwargs):
    raise AssertionError("a finished run was trained again")

  monkeypatch.setattr(trainer_lib, "train_and_evaluate", no_training)
  again = augmentation.run_augmentation(config, workdir)
  assert again["rows"] == document["rows"]


def test_stopped_run_records_no_scores(experiment, tmp_path, monkeypatch):
  config, workdir, _ = experiment
  run = ml_collections.ConfigDict(config.segmentation.to_dict())
  run.data.train_arrays = os.path.join(workdir, "generated")
  run.data.train_rows = os.path.join(workdir, "rows", "true_f0.5.npy")
  real_training = trainer_lib.train_and_evaluate
  monkeypatch.setattr(trainer_lib, "train_and_evaluate",
                      lambda c, w: real_training(c, w, stop_after=1))
  with pytest.raises(augmentation.RunStopped, match="step 1 of 2"):
    augmentation.train_and_test(run, str(tmp_path), "test")
  assert not (tmp_path / "test_scores.json").exists()
  monkeypatch.setattr(trainer_lib, "train_and_evaluate", real_training)
  scores = augmentation.train_and_test(run, str(tmp_path), "test")
  assert (tmp_path / "test_scores.json").exists() and 0 <= scores["miou"] <= 1


def test_bad_generator_fails_before_any_output(generator_dir, tmp_path):
  workdir = tmp_path / "out"
  config = tiny_configs.tiny_augment(str(tmp_path / "missing"))
  with pytest.raises(FileNotFoundError, match="generator_workdir"):
    augmentation.run_augmentation(config, str(workdir))
  config.generator_workdir = ""
  with pytest.raises(ValueError, match="generator_workdir is not set"):
    augmentation.run_augmentation(config, str(workdir))
  config = tiny_configs.tiny_augment(generator_dir)
  config.segmentation.inputs = ("s1",)  # the generator makes s2
  with pytest.raises(ValueError, match="not a segmenter input"):
    augmentation.run_augmentation(config, str(workdir))
  config = tiny_configs.tiny_augment(generator_dir)
  config.segmentation.data.tile_size = 34  # the unet's 2 downs need 4 | T
  with pytest.raises(ValueError, match="cannot take 34-pixel tiles"):
    augmentation.run_augmentation(config, str(workdir))
  assert not workdir.exists()
