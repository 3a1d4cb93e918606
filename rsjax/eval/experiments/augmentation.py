"""The augmentation experiment: a U-Net trained on real vs real + generated tiles.

RS-SPADE paper (Wang & Zhou, Sec. 4, Table 3, Fig. 8): a trained generator
G makes one synthetic optical image per training mask, G(its sources), paired
with the real land-cover labels; the same U-Net is trained for the same
number of steps on the real training tiles only ("True") and on real +
generated 1:1 ("Mix"), and both are scored on the real test split: mIoU,
accuracy (PA) and FWIoU (Li et al.'s review, Eq. 1-5), their relative changes
d = (Mix - True) / True (CSEBGAN Table III: d-mIoU, d-FWIoU, d-acc), per-class
IoU changes (CSEBGAN Fig. 9) and validation mIoU against the step (Fig. 8).
As in CSEBGAN Table III it is repeated on random training subsets (fractions
1/4, 1/2, 3/4, 1 of the split, nested; the paper's 280/560/840/1120 tiles).
Unlike CSEBGAN, the generator is not retrained per subset: it is the one
trained generator of `config.generator_workdir` (trained on the full split).
With `generated_per_mask` k > 1 (diverse generators), Mix has k generated
copies per real tile, each with its own noise key.

Workdir layout (every piece resumes: a killed experiment continues where it
stopped); the workdir may be on object storage (`gs://...`), except the
generated arrays, which stay local (`generated_dir`):
  generated/             real + generated training arrays (rsjax.eval.experiments.generated)
  rows/<arm>_<f>.npy     training rows of each sub-run
  runs/<arm>_<f>/        a `train_and_evaluate` workdir + test_scores.json
  augmentation.{md,csv,json}, class_iou_change.png, validation_miou.png
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from rsjax.data import fields as fields_lib
from rsjax.data import tfds_builder
from rsjax.eval.experiments import plots
from rsjax.eval.experiments import tables
from rsjax.eval.experiments import generated
from rsjax.store import atomic
from rsjax.store import checkpoint as checkpoint_lib
from rsjax.store import paths
from rsjax.systems import trained
from rsjax.train import trainer as trainer_lib

ARMS = ("true", "mix")
SCORES = (("miou", "miou"), ("fwiou", "fwiou"), ("acc", "pixel_accuracy"))
LABEL_FIELD = "lulc"


class RunStopped(RuntimeError):
  """A sub-run ended before its last step without a signal (a signal raises
  preemption.Preempted first); rerun to resume."""


def train_and_test(config: ml_collections.ConfigDict, workdir: str,
                   test_split: str) -> dict[str, float]:
  """Trains (or resumes) one run to `config.total_steps`, then scores its
  final state on `test_split`; the scores are kept in test_scores.json.
  Raises RunStopped (recording nothing) if training stopped early."""
  done = paths.join(workdir, "test_scores.json")
  if paths.of(done).exists():
    return json.loads(paths.of(done).read_text())
  trainer_lib.train_and_evaluate(config, workdir)
  reached = (checkpoint_lib.steps(workdir) or [None])[-1]
  if reached != config.total_steps:
    raise RunStopped(f"{workdir}: training stopped at step {reached} of "
                     f"{config.total_steps}; run the experiment again to "
                     f"resume")
  run = trained.load_run(workdir, config=config)
  scores = trainer_lib.evaluate(run, test_split, samples_path=paths.join(
      workdir, "samples", f"{test_split}.png"))
  if jax.process_index() == 0:
    atomic.write_json(done, scores)
  return scores


def tile_size(data: ml_collections.ConfigDict) -> int:
  """The tile size of the data config's dataset (read from the TFDS info)."""
  if data.source == "memory":
    return int(data.tile_size)
  builder = tfds_builder.open_builder(data.name, data.data_dir)
  return int(builder.info.features[LABEL_FIELD].shape[0])


def check_config(config: ml_collections.ConfigDict) -> None:
  if not config.get("generator_workdir"):
    raise ValueError("config.generator_workdir is not set: give the workdir of "
                     "a trained paired generator (launch.train), e.g. "
                     "--config.generator_workdir=workdir/rs_spade")
  fractions = tuple(config.fractions)
  if not fractions or any(not 0 < f <= 1 for f in fractions):
    raise ValueError(f"config.fractions must be in (0, 1], got {fractions}")
  if config.segmentation.system != "segmentation":
    raise ValueError(f"config.segmentation.system must be 'segmentation', got "
                     f"{config.segmentation.system!r}")


def subset_rows(num_real: int, fraction: float, per_mask: int, seed: int
                ) -> dict[str, np.ndarray]:
  """{'true': a random subset (nested across fractions), 'mix': it and its
  generated copies} as row indices of the generated arrays."""
  order = np.random.default_rng(seed).permutation(num_real)
  subset = np.sort(order[:max(1, int(round(fraction * num_real)))])
  return {"true": subset,
          "mix": np.concatenate([subset + j * num_real
                                 for j in range(1 + per_mask)])}


def generated_dir(config: ml_collections.ConfigDict, workdir: str) -> str:
  """The local folder of the generated arrays: `config.generated_dir` if
  set, else `<workdir>/generated`. They are memory-mapped while the sub-runs
  train (`rsjax.data.array_source`), so a workdir on object storage keeps
  them in a folder under TMPDIR named after the workdir: a rerun on the same
  machine reuses them, a rerun elsewhere generates them again."""
  chosen = config.get("generated_dir")
  if chosen:
    if paths.is_remote(chosen):
      raise ValueError(f"config.generated_dir {chosen!r}: the generated "
                       f"arrays are memory-mapped, so they need a local "
                       f"folder")
    return os.path.abspath(chosen)
  if not paths.is_remote(workdir):
    return os.path.join(workdir, "generated")
  digest = hashlib.sha256(workdir.encode()).hexdigest()[:16]
  return os.path.join(tempfile.gettempdir(), "rsjax-generated", digest)


def _tag(fraction: float) -> str:
  return f"f{fraction:.3f}".rstrip("0").rstrip(".")


def _relative(new: float, old: float) -> float:
  return (new - old) / old * 100.0 if old else float("nan")


def run_augmentation(config: ml_collections.ConfigDict, workdir: str
                     ) -> dict[str, Any]:
  """Runs (or resumes) the whole experiment; returns the JSON document."""
  check_config(config)
  segmentation = ml_collections.ConfigDict(config.segmentation.to_dict())
  generator = generated.Generator(config.generator_workdir)
  generator.check_for(tuple(segmentation.inputs),
                      tile_size(segmentation.data),
                      int(segmentation.num_classes))
  fields = tuple(f for f in dict.fromkeys(
      (*segmentation.data.fields, *segmentation.inputs, LABEL_FIELD))
                 if f in fields_lib.SPATIAL)
  segmentation.data.fields = fields
  per_mask = int(config.generated_per_mask)
  workdir = paths.absolute(workdir)
  arrays_dir = generated_dir(config, workdir)
  meta = generated.write_generated(
      arrays_dir, generator, segmentation.data, fields, per_mask=per_mask,
      batch_size=int(config.generation_batch_size))
  num_real = int(meta["num_real"])

  runs = {}
  for fraction in config.fractions:
    rows = subset_rows(num_real, fraction, per_mask, int(config.subset_seed))
    if len(rows["true"]) < segmentation.data.batch_size:
      raise ValueError(
          f"config.fractions: {fraction} of the {num_real} training tiles is "
          f"{len(rows['true'])}, fewer than config.segmentation.data."
          f"batch_size = {segmentation.data.batch_size}")
    for arm in ARMS:
      name = f"{arm}_{_tag(fraction)}"
      rows_file = paths.join(workdir, "rows", f"{name}.npy")
      if not paths.of(rows_file).exists() and jax.process_index() == 0:
        with atomic.atomic_path(rows_file, suffix=".npy") as temporary:
          np.save(temporary, rows[arm])
      multihost_utils.sync_global_devices(f"rows {name}")
      run = ml_collections.ConfigDict(segmentation.to_dict())
      run.data.train_arrays = arrays_dir
      run.data.train_rows = rows_file
      run_dir = paths.join(workdir, "runs", name)
      runs[(fraction, arm)] = {
          "workdir": run_dir, "tiles": len(rows[arm]),
          "scores": train_and_test(run, run_dir, config.test_split)}
  document = _report(config, segmentation, meta, runs, workdir)
  return document


def _report(config, segmentation, meta, runs, workdir) -> dict[str, Any]:
  rows, class_changes, curves = [], {}, {}
  num_classes = int(segmentation.num_classes)
  declared = fields_lib.class_names("lulc")
  names = (list(declared) if num_classes == len(declared)
           else [str(k) for k in range(num_classes)])
  curve_key = f"{segmentation.eval_split}/miou"
  for fraction in config.fractions:
    true, mix = runs[(fraction, "true")], runs[(fraction, "mix")]
    row = {"fraction": float(fraction), "real_tiles": true["tiles"],
           "mix_tiles": mix["tiles"]}
    for column, key in SCORES:
      row[f"true_{column}"] = float(true["scores"][key])
      row[f"mix_{column}"] = float(mix["scores"][key])
      row[f"d_{column}_pct"] = _relative(row[f"mix_{column}"],
                                         row[f"true_{column}"])
    row["true_class_iou"] = [true["scores"][f"iou_{k}"] for k in range(num_classes)]
    row["mix_class_iou"] = [mix["scores"][f"iou_{k}"] for k in range(num_classes)]
    rows.append(row)
    class_changes[f"{row['real_tiles']} tiles ({fraction:g})"] = [
        m - t for m, t in zip(row["mix_class_iou"], row["true_class_iou"])]
    for arm, run in (("True", true), ("Mix", mix)):
      metrics_file = paths.join(run["workdir"], "metrics.jsonl")
      steps, values = plots.read_curve(metrics_file, curve_key)
      curves[f"{arm} {row['real_tiles']} tiles"] = (steps, values)

  columns = ["fraction", "real_tiles", "mix_tiles"] + [
      f"{p}_{c}" for c, _ in SCORES for p in ("true", "mix")] + [
          f"d_{c}_pct" for c, _ in SCORES]
  notes = [
      f"True: the real training tiles; Mix: the same tiles + {meta['per_mask']} "
      f"generated image(s) per tile (G(its sources) with its real labels) from "
      f"{meta['generator_workdir']} (step {meta['generator_step']}).",
      f"Both trained {segmentation.total_steps} steps, scored on the real "
      f"{config.test_split!r} split; d_* = (Mix - True) / True in %; acc is "
      f"pixel accuracy."]
  extra = {"generator": meta, "test_split": config.test_split,
           "total_steps": int(segmentation.total_steps), "class_names": names}
  if jax.process_index() == 0:
    tables.write_table(paths.join(workdir, "augmentation"), columns, rows,
                       title="Segmentation with generated training data",
                       notes=notes, extra=extra)
    plots.class_change_bars(
        paths.join(workdir, "class_iou_change.png"), names, class_changes,
        title=f"Per-class IoU change, Mix - True ({config.test_split})")
    plots.metric_curves(paths.join(workdir, "validation_miou.png"), curves,
                        title=f"{curve_key} during training", ylabel="mIoU")
  return {"columns": columns, "rows": rows, **extra}
