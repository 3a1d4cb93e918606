"""Evaluation reports: trained workdirs -> one metric table (+ samples, curves).

  report = evaluate(["workdir/rs_spade", "workdir/pix2pix"], split="test",
                    output_dir="workdir/comparison")

For each workdir: the config it was trained with (`<workdir>/config.json`, or
a `config` of the same system), its newest checkpoint (or `step`), restored
by `rsjax.systems.trained.load_run` into sharded targets, then
`rsjax.train.trainer.evaluate` on the split (every example once, padding masked). The
scores of all workdirs form one table in the layout of their system
(`rsjax.eval.report.tables`), written as Markdown, CSV (one file per table section)
and JSON, with a sample grid per run and the runs' training curves
(`rsjax.eval.report.plots`); the table and figures also go to TensorBoard
event files in the output folder.

Everything that can be wrong with the input is checked before anything is
evaluated or written: a workdir without config.json or checkpoints, a missing
`step`, workdirs of systems with different table layouts, a `config` of
another system than the checkpoint's, an unknown split, repeated labels.
All outputs are computed first and then written atomically (temporary file,
then rename); only process 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from PIL import Image

from rsjax import mesh as mesh_lib
from rsjax.data import pipeline
from rsjax.data import tfds_builder
from rsjax.eval.report import plots
from rsjax.eval.report import tables
from rsjax.store import atomic
from rsjax.store import checkpoint as checkpoint_lib
from rsjax.store import paths
from rsjax.store import run_config
from rsjax.systems import trained
from rsjax.train import trainer as trainer_lib

SPLITS = ("train", "validation", "test")   # of the memory source


@dataclasses.dataclass
class Run:
  """A workdir to evaluate: its label, config and checkpoint step."""
  workdir: str
  label: str
  config: ml_collections.ConfigDict
  step: int
  latest_step: int


@dataclasses.dataclass
class Result:
  run: Run
  scores: dict[str, float]
  panels: dict[str, Any] | None = None


@dataclasses.dataclass
class Report:
  """What `evaluate` computed and the files it wrote."""
  layout: str
  split: str
  results: list[Result]
  table: tables.Table
  files: dict[str, str]


# ------------------------------------------------------------- checking --

def check_split(config: ml_collections.ConfigDict, split: str) -> None:
  data = config.data
  if data.get("source", "tfds") == "memory":
    if split not in SPLITS:
      raise ValueError(f"unknown split {split!r}; the memory source "
                       f"(config.data.source) has splits {', '.join(SPLITS)}")
    return
  try:
    splits = sorted(tfds_builder.open_builder(data.name,
                                              data.data_dir).info.splits)
  except tfds_builder.DatasetNotBuilt as missing:
    raise ValueError(f"config.data.name: {missing}") from missing
  except Exception as error:  # pylint: disable=broad-except
    raise ValueError(f"config.data.name: cannot open dataset {data.name!r} in "
                     f"config.data.data_dir {data.data_dir!r}: {error}") from error
  if split not in splits:
    raise ValueError(f"unknown split {split!r}: dataset {data.name!r} in "
                     f"{data.data_dir!r} has splits {splits or 'none (is it built?)'}")


def resolve_runs(workdirs: Sequence[str], *, labels: Sequence[str] | None = None,
                 step: int | None = None,
                 config: ml_collections.ConfigDict | None = None,
                 data_dir: str | None = None,
                 num_batches: int | None = None) -> list[Run]:
  """Checks the workdirs and returns what to evaluate (nothing is written).

  `config` replaces every workdir's saved config (it must be of the same
  system); `data_dir` overrides config.data.data_dir; `num_batches` limits
  the evaluated batches (None: the whole split).
  """
  if not workdirs:
    raise ValueError("no --workdir given")
  if labels and len(labels) != len(workdirs):
    raise ValueError(f"{len(labels)} labels for {len(workdirs)} workdirs; give "
                     f"one --label per --workdir, in the same order")
  labels = list(labels) if labels else [
      os.path.basename(os.path.normpath(w)) for w in workdirs]
  repeated = sorted({l for l in labels if labels.count(l) > 1})
  if repeated:
    raise ValueError(f"labels {repeated} name several workdirs; give distinct "
                     f"--label values")
  runs = []
  for workdir, label in zip(workdirs, labels):
    workdir = paths.absolute(workdir)
    saved = run_config.load(workdir)
    if config is not None and config.get("system") != saved.get("system"):
      raise ValueError(
          f"--config is a {config.get('system')!r} config, but {workdir} holds "
          f"a checkpoint from another system ({saved.get('system')!r}); give the "
          f"config of that run or leave --config out to use its config.json")
    run = ml_collections.ConfigDict((config or saved).to_dict())
    if data_dir is not None:
      run.data.data_dir = data_dir
    run.num_eval_batches = num_batches
    steps = checkpoint_lib.steps(workdir)
    if not steps:
      raise FileNotFoundError(f"{paths.join(workdir, 'checkpoints')}: no "
                              f"checkpoint; has {workdir!r} been trained?")
    if step is not None and step not in steps:
      raise ValueError(f"--step {step}: {workdir} has checkpoints at steps "
                       f"{steps}")
    runs.append(Run(workdir, label, run, steps[-1] if step is None else step,
                    steps[-1]))
  layouts = {tables.layout_of(r.config.system) for r in runs}
  if len(layouts) > 1:
    systems = ", ".join(f"{r.label}: {r.config.system}" for r in runs)
    raise ValueError(f"cannot compare workdirs of systems with different "
                     f"tables in one table ({systems}); evaluate them separately")
  return runs


def default_output_dir(workdirs: Sequence[str]) -> str:
  """`<workdir>/eval` for one workdir, `<common parent>/comparison` for more."""
  if len(workdirs) == 1:
    return paths.join(workdirs[0], "eval")
  absolute = [paths.absolute(w) for w in workdirs]
  if any(paths.is_remote(p) for p in absolute):
    parents = {p.rsplit("/", 1)[0] for p in absolute}
    if len(parents) != 1:
      raise ValueError(f"workdirs {list(workdirs)} on object storage lie in "
                       f"different folders; give --output")
    return parents.pop() + "/comparison"
  parents = [os.path.dirname(p) for p in absolute]
  return os.path.join(os.path.commonpath(parents), "comparison")


# ------------------------------------------------------------ evaluating --

def evaluate_run(run: Run, split: str, *, samples: bool = True) -> Result:
  """Scores of `run`'s checkpoint on `split` (+ display panels of a batch)."""
  mesh = mesh_lib.make_mesh(run.config.mesh)
  iterator = pipeline.create_iterator(run.config.data, mesh, train=False,
                                      split=split)
  try:
    batch = next(iterator)
  finally:
    iterator.close()
  loaded = trained.load_run(run.workdir, step=run.step, config=run.config,
                            mesh=mesh, example=batch)
  panels = None
  if samples:  # every process runs the (sharded) prediction; 0 draws it
    prediction = jax.jit(loaded.system.predict)(loaded.state, batch)
    if jax.process_index() == 0:
      rows = trainer_lib.local_rows
      panels = loaded.system.panels(jax.tree.map(rows, dict(batch)),
                                    rows(prediction))
  scores = trainer_lib.evaluate(loaded, split)
  return Result(run, {k: float(v) for k, v in scores.items()}, panels)


# --------------------------------------------------------------- writing --

def _file_label(label: str) -> str:
  return re.sub(r"[^A-Za-z0-9._+-]+", "_", label).strip("_") or "run"


def _json_value(value):
  return None if isinstance(value, float) and not math.isfinite(value) else value


def _caption(results: Sequence[Result], split: str) -> str:
  lines = [f"Split `{split}`; one row per run:", ""]
  for result in results:
    run = result.run
    dataset = ("the in-memory random source" if run.config.data.get("source")
               == "memory" else f"`{run.config.data.name}`")
    extent = ("whole split" if run.config.num_eval_batches is None
              else f"first {run.config.num_eval_batches} batches")
    lines.append(f"- {run.label}: `{run.workdir}`, checkpoint step "
                 f"{run.step}, {dataset} ({extent})")
  return "\n".join(lines)


def write_report(results: Sequence[Result], split: str, output_dir: str, *,
                 curves: bool = True) -> tuple[tables.Table, dict[str, str]]:
  """Writes the table files, sample grids and curves; returns the paths."""
  layout = tables.layout_of(results[0].run.config.system)
  table = tables.build(layout, [(r.run.label, r.scores) for r in results])
  if jax.process_index() != 0:
    return table, {}
  paths.of(output_dir).mkdir(parents=True, exist_ok=True)
  stem = paths.join(output_dir, f"scores_{split}")
  files = {}
  for index, section in enumerate(table.sections):
    suffix = "" if index == 0 else f"_{section.id}"
    files[f"csv{suffix}"] = atomic.write_text(f"{stem}{suffix}.csv",
                                        tables.to_csv(section))
  images = []
  for result in results:
    if result.panels:
      name = f"samples_{split}_{_file_label(result.run.label)}.png"
      files[f"samples/{result.run.label}"] = plots.save_samples(
          paths.join(output_dir, name), result.panels,
          title=f"{result.run.label} (step {result.run.step}, {split})")
      images.append((f"samples: {result.run.label}", name))
  metrics = {r.run.label: paths.join(r.run.workdir, "metrics.jsonl")
             for r in results}
  metrics = {k: v for k, v in metrics.items() if paths.of(v).exists()}
  if curves and metrics:
    main = table.sections[0]
    files["curves"] = plots.save_curves(
        paths.join(output_dir, "curves.png"), metrics,
        eval_prefix=results[0].run.config.get("eval_split", "validation"),
        eval_keys=[c.key for c in main.columns])
    images.append(("training curves", "curves.png"))
  markdown = tables.to_markdown(table, caption=_caption(results, split))
  markdown += "".join(f"\n![{alt}]({name})\n" for alt, name in images)
  files["markdown"] = atomic.write_text(stem + ".md", markdown)
  document = {
      "split": split, "layout": layout,
      "runs": [{"label": r.run.label, "workdir": r.run.workdir,
                "system": r.run.config.system, "step": r.run.step,
                "dataset": r.run.config.data.name,
                "num_eval_batches": r.run.config.num_eval_batches,
                "scores": {k: _json_value(v) for k, v in r.scores.items()}}
               for r in results],
      "table": tables.to_dict(table)}
  files["json"] = atomic.write_text(stem + ".json",
                              json.dumps(document, indent=2, allow_nan=False))
  _write_tensorboard(output_dir, max(r.run.step for r in results), split,
                     markdown, {alt: paths.join(output_dir, name)
                                for alt, name in images})
  return table, files


def _write_tensorboard(output_dir: str, step: int, split: str,
                       markdown: str, images: dict[str, str]) -> None:
  """The report's table (text) and figures (images) as a TensorBoard run in
  `output_dir`, at the newest evaluated checkpoint's step."""
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  arrays = {}
  for alt, path in images.items():
    with paths.of(path).open("rb") as file:
      arrays[f"{split}/{alt}"] = np.asarray(Image.open(file).convert("RGB"))[None]
  # clu's default writer: TensorBoard where TensorFlow is installed.
  writer = metric_writers.create_default_writer(output_dir,
                                                asynchronous=False)
  writer.write_texts(step, {f"{split}/report": markdown})
  writer.write_images(step, arrays)
  writer.close()


def evaluate(workdirs: Sequence[str], *, split: str = "test",
             output_dir: str | None = None, labels: Sequence[str] | None = None,
             step: int | None = None,
             config: ml_collections.ConfigDict | None = None,
             data_dir: str | None = None, num_batches: int | None = None,
             samples: bool = True, curves: bool = True) -> Report:
  """Evaluates the workdirs on `split` and writes one comparison report."""
  runs = resolve_runs(workdirs, labels=labels, step=step, config=config,
                      data_dir=data_dir, num_batches=num_batches)
  for run in runs:
    check_split(run.config, split)
  results = [evaluate_run(run, split, samples=samples) for run in runs]
  table, files = write_report(results, split,
                              output_dir or default_output_dir(workdirs),
                              curves=curves)
  return Report(tables.layout_of(runs[0].config.system), split, results,
                table, files)
