"""Evaluation reports from tiny trained runs: the table's numbers are
`Trainer.evaluate`'s, several workdirs make one comparison table (also through
`launch.evaluate`), and bad input fails before any output file exists."""

import csv
import json
import os
import shutil
import subprocess
import sys

import jax
import pytest

from configs import unet_seg
from rsjax.data import pipeline
from rsjax.eval.report import evaluate
from rsjax.store import run_config
from rsjax.train import trainer as trainer_lib
import tensorboard_events
from tiny_configs import memory_config, tiny_rs_spade

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
STEPS = 6   # memory_config(steps=6): the train step test_trainer compiles too


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory, devices):
  """pix2pix runs: 'late' trained to step 2, 'early' a copy without step 2."""
  root = tmp_path_factory.mktemp("runs")
  early, late = str(root / "early"), str(root / "late")
  trainer_lib.train_and_evaluate(memory_config(steps=STEPS), late,
                                 stop_after=2)
  shutil.copytree(late, early)
  shutil.rmtree(os.path.join(early, "checkpoints", "2"))
  return early, late


def _trainer_scores(workdir, split):
  """What Trainer.evaluate reports for the newest checkpoint, whole split."""
  config = run_config.load(workdir)
  config.num_eval_batches = None
  trainer = trainer_lib.Trainer(config, workdir)
  iterator = pipeline.create_iterator(config.data, trainer.mesh, train=False,
                                      split=split)
  state, step = trainer.restore_or_init(next(iterator))
  iterator.close()
  trainer.compile_steps()
  scores = trainer.evaluate(state, split)
  trainer.manager.close()
  return step, scores


def _csv(path):
  with open(path) as f:
    return list(csv.reader(f))


def test_report_numbers_are_the_trainers(workdirs, tmp_path):
  _, late = workdirs
  out = str(tmp_path / "report")
  report = evaluate.evaluate([late], split="test", output_dir=out)
  step, expected = _trainer_scores(late, "test")
  assert step == 2 and report.results[0].run.step == 2
  assert report.results[0].scores == pytest.approx(expected, rel=1e-6)
  assert sorted(n for n in os.listdir(out)
                if not n.startswith("events.out.tfevents")) == [
      "curves.png", "samples_test_late.png", "scores_test.csv",
      "scores_test.json", "scores_test.md"]
  assert tensorboard_events.tags(out)[2] == {
      "test/report", "test/samples: late", "test/training curves"}
  rows = _csv(os.path.join(out, "scores_test.csv"))
  assert rows[0] == ["model", "PSNR (dB) \u2191", "SSIM \u2191", "SAM (rad) \u2193"]
  assert rows[1][0] == "late"
  assert [float(x) for x in rows[1][1:]] == pytest.approx(
      [expected["psnr"], expected["ssim"], expected["sam"]], rel=1e-6)
  document = json.loads(open(os.path.join(out, "scores_test.json")).read())
  assert document["layout"] == "paired_gan" and document["split"] == "test"
  assert document["runs"][0]["step"] == 2
  assert document["runs"][0]["scores"] == pytest.approx(expected, rel=1e-6)
  markdown = open(os.path.join(out, "scores_test.md")).read()
  assert f"| late | {expected['psnr']:.2f} | {expected['ssim']:.4f} |" in markdown
  assert "![training curves](curves.png)" in markdown


def test_launch_compares_workdirs_in_one_table(workdirs, tmp_path):
  early, late = workdirs
  out = tmp_path / "comparison"
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu",
             JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  result = subprocess.run(
      [sys.executable, "-m", "launch.evaluate", f"--workdir={early}",
       f"--workdir={late}", "--label=step one", "--label=step two",
       "--split=validation", f"--output={out}", "--nosamples",
       "--num_batches=2"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  document = json.loads((out / "scores_validation.json").read_text())
  assert [r["label"] for r in document["runs"]] == ["step one", "step two"]
  assert [r["step"] for r in document["runs"]] == [1, 2]
  assert [r["num_eval_batches"] for r in document["runs"]] == [2, 2]
  rows = _csv(out / "scores_validation.csv")
  assert [r[0] for r in rows[1:]] == ["step one", "step two"]
  assert rows[1][1:] != rows[2][1:]                 # different checkpoints
  assert sorted(p.name for p in out.iterdir()
                if not p.name.startswith("events.out.tfevents")) == [
      "curves.png", "scores_validation.csv", "scores_validation.json",
      "scores_validation.md"]
  # The table and curves also as TensorBoard text and image, at the newest
  # checkpoint's step.
  assert tensorboard_events.tags(out)[2] == {
      "validation/report", "validation/training curves"}


def test_an_older_step_restores_that_checkpoint(workdirs, tmp_path):
  early, late = workdirs
  report = evaluate.evaluate([late, early], step=1, split="validation",
                             output_dir=str(tmp_path), samples=False,
                             curves=False, num_batches=1)
  assert [r.run.step for r in report.results] == [1, 1]
  assert report.results[0].scores == pytest.approx(report.results[1].scores,
                                                   rel=1e-6)


def _segmentation_config():
  config = unet_seg.get_config("s2")
  config.model.segmenter_kwargs = {"base_features": 4,
                                   "channel_multipliers": (1, 2, 4)}
  config.data.update(source="memory", tile_size=32, memory_examples=16,
                     batch_size=8, eval_batch_size=8)
  config.update(epochs=None, total_steps=1, log_every=1, eval_every=1000,
                checkpoint_every=1, keep_checkpoints=1, num_eval_batches=1)
  return config


def test_segmentation_report_has_per_class_iou(tmp_path, devices):
  workdir = str(tmp_path / "unet")
  trainer_lib.train_and_evaluate(_segmentation_config(), workdir)
  report = evaluate.evaluate([workdir], split="validation", curves=False)
  out = os.path.join(workdir, "eval")
  scores = report.results[0].scores
  main = _csv(os.path.join(out, "scores_validation.csv"))
  assert main[0] == ["model", "PA (%) \u2191", "MPA (%) \u2191",
                     "mIoU (%) \u2191", "FWIoU (%) \u2191"]
  assert float(main[1][3]) == pytest.approx(100 * scores["miou"])
  per_class = _csv(os.path.join(out, "scores_validation_per_class_iou.csv"))
  assert per_class[0][1:4] == ["water (%) \u2191", "trees (%) \u2191",
                               "grass (%) \u2191"]
  assert len(per_class[0]) == 1 + 9
  assert os.path.exists(os.path.join(out, "samples_validation_unet.png"))


def _no_output(tmp_path, call, error, match):
  out = tmp_path / "out"
  with pytest.raises(error, match=match):
    call(str(out))
  assert not out.exists()


def test_bad_input_fails_before_any_output(workdirs, tmp_path):
  _, late = workdirs
  empty = tmp_path / "empty"
  empty.mkdir()
  _no_output(tmp_path, lambda out: evaluate.evaluate([str(empty)],
                                                     output_dir=out),
             FileNotFoundError, "config.json")
  untrained = tmp_path / "untrained"
  run_config.save(untrained, memory_config(steps=STEPS))
  _no_output(tmp_path, lambda out: evaluate.evaluate([str(untrained)],
                                                     output_dir=out),
             FileNotFoundError, "no checkpoint")
  assert not (untrained / "checkpoints").exists()
  other = tmp_path / "other"
  shutil.copytree(late, other)
  config = run_config.load(other)
  config.system = "segmentation"
  run_config.save(other, config)
  _no_output(tmp_path, lambda out: evaluate.evaluate([late, str(other)],
                                                     output_dir=out),
             ValueError, "systems with different tables")
  _no_output(tmp_path, lambda out: evaluate.evaluate(
      [late], config=_segmentation_config(), output_dir=out),
             ValueError, "a checkpoint from another system")
  _no_output(tmp_path, lambda out: evaluate.evaluate([late], split="tset",
                                                     output_dir=out),
             ValueError, "unknown split 'tset'")
  _no_output(tmp_path, lambda out: evaluate.evaluate([late], step=5,
                                                     output_dir=out),
             ValueError, r"--step 5: .* steps \[1, 2\]")
  _no_output(tmp_path, lambda out: evaluate.evaluate(
      [late, late], labels=["a", "a"], output_dir=out), ValueError,
             "labels \\['a'\\]")
  assert not [n for n in os.listdir(late) if n not in (
      "checkpoints", "config.json", "metrics.jsonl", "params.txt", "samples")
      and not n.startswith("events.out.tfevents")]


def test_unknown_split_of_a_tfds_dataset(synthetic_tiny):
  config = tiny_rs_spade(synthetic_tiny)
  evaluate.check_split(config, "test")
  with pytest.raises(ValueError, match=r"unknown split 'tset'.*'validation'"):
    evaluate.check_split(config, "tset")
  config.data.name = "rs_multisource/not_built"
  with pytest.raises(ValueError, match="config.data.name"):
    evaluate.check_split(config, "test")
