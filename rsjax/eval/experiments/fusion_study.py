"""Fusion study: one optical+SAR segmenter per fusion strategy, one table.

Li et al., "Deep fusion of optical and SAR images for semantic segmentation:
a review": the fusion strategies of Tables I-II (`rsjax.nn.fusion`), scored
with PA, MPA, mIoU and FWIoU (Eq. 1-5) and compared on complexity and speed
(Sec. V-A/B: running time, parameters, FLOPs). Every mode trains the same
`config.segmentation` (only `segmenter_kwargs.fusion` differs) on the same
data for the same steps, then is scored on the real test split.

Costs per mode: parameters (of the segmenter), FLOPs per image (XLA's cost
analysis of the compiled inference forward at the config's tile size, divided
by its batch size) and inference images/s (one device, batches of
`timing_batch_size` random inputs, timed after a warm-up call; a report of
this machine, named in the table, not a benchmark to compare across
machines).

Workdir: runs/<mode>/ (a `train_and_evaluate` workdir with test_scores.json
and cost.json), fusion_study.{md,csv,json}.
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rsjax.data import fields as fields_lib
from rsjax.data import normalize as normalize_lib
from rsjax.eval.experiments import tables
from rsjax.eval.experiments import augmentation
from rsjax.nn.fusion import check_fusion_name
from rsjax.store import atomic
from rsjax.store import paths
from rsjax.systems import base
from rsjax.systems.segmentation.system import NET

COLUMNS = ("mode", "level", "pa", "mpa", "miou", "fwiou", "params",
           "gflops_per_image", "images_per_s")
SCORES = (("pa", "pixel_accuracy"), ("mpa", "mean_pixel_accuracy"),
          ("miou", "miou"), ("fwiou", "fwiou"))


def fusion_level(mode: str) -> str:
  """Review Table I: pixel-, feature- or decision-level fusion."""
  return {"early": "pixel", "decision": "decision"}.get(mode, "feature")


def machine() -> str:
  """The device and host the timings were taken on."""
  device = jax.devices()[0]
  host = platform.processor() or platform.machine()
  return (f"{device.platform}:{device.device_kind} (1 device), host "
          f"{platform.node()} {host}, {os.cpu_count()} CPU cores")


def random_batch(config: ml_collections.ConfigDict, batch_size: int,
                 tile: int, seed: int = 0) -> dict[str, jax.Array]:
  """Normalized random inputs and labels of the config's fields."""
  rng = np.random.default_rng(seed)
  batch = {}
  for name in (*config.inputs, augmentation.LABEL_FIELD):
    shape, dtype = fields_lib.spec(name, tile)
    if np.issubdtype(dtype, np.integer):
      batch[name] = rng.integers(0, config.num_classes, (batch_size,) + shape
                                 ).astype(dtype)
    else:
      batch[name] = rng.random((batch_size,) + shape, np.float32)
  return {k: jnp.asarray(v) for k, v in normalize_lib.normalize_batch(
      batch, config.data.get("normalization")).items()}


def _flops(compiled) -> float:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # older JAX: one dict per program
    analysis = analysis[0] if analysis else {}
  return float((analysis or {}).get("flops", float("nan")))


def measure_costs(config: ml_collections.ConfigDict, tile: int,
                  batch_size: int, repeats: int) -> dict[str, Any]:
  """Parameters, FLOPs per image and inference images/s of the config."""
  system = base.get_system(config)
  device = jax.devices()[0]
  batch = jax.device_put(random_batch(config, batch_size, tile), device)
  state = jax.jit(system.init)(jax.random.PRNGKey(0), batch)
  params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(
      state.params[NET]))
  # Inference cost is linear in the batch (no cross-example ops): FLOPs of
  # the compiled batch / batch size = FLOPs per image.
  predict = jax.jit(system.predict).lower(state, batch).compile()
  flops = _flops(predict) / batch_size
  predict(state, batch).block_until_ready()  # warm-up
  start = time.perf_counter()
  for _ in range(repeats):
    output = predict(state, batch)
  output.block_until_ready()
  seconds = time.perf_counter() - start
  return {"params": params, "gflops_per_image": flops / 1e9,
          "images_per_s": batch_size * repeats / seconds, "machine": machine(),
          "timing_batch_size": batch_size}


def check_config(config: ml_collections.ConfigDict) -> None:
  modes = tuple(config.modes)
  if not modes or len(set(modes)) != len(modes):
    raise ValueError(f"config.modes must be distinct fusion modes, got {modes}")
  for mode in modes:
    try:
      check_fusion_name(mode)
    except ValueError as error:
      raise ValueError(f"config.modes: {error}") from error
  if config.segmentation.model.segmenter != "two_branch":
    raise ValueError(f"config.segmentation.model.segmenter must be "
                     f"'two_branch', got {config.segmentation.model.segmenter!r}")
  for key in ("timing_batch_size", "timing_repeats"):
    if int(config[key]) < 1:
      raise ValueError(f"config.{key} must be >= 1, got {config[key]}")


def run_fusion_study(config: ml_collections.ConfigDict, workdir: str
                     ) -> dict[str, Any]:
  """Trains (or resumes) every mode and writes the table; returns its JSON."""
  check_config(config)
  tile = augmentation.tile_size(config.segmentation.data)
  runs = {}
  for mode in config.modes:
    run = ml_collections.ConfigDict(config.segmentation.to_dict())
    run.model.segmenter_kwargs.fusion = mode
    base.get_system(run)  # clear config errors before anything is written
    runs[mode] = run
  rows, machines = [], set()
  for mode, run in runs.items():
    run_dir = paths.join(workdir, "runs", mode)
    scores = augmentation.train_and_test(run, run_dir, config.test_split)
    cost_file = paths.join(run_dir, "cost.json")
    if paths.of(cost_file).exists():
      costs = json.loads(paths.of(cost_file).read_text())
    else:
      costs = measure_costs(run, tile, int(config.timing_batch_size),
                            int(config.timing_repeats))
      if jax.process_index() == 0:
        atomic.write_json(cost_file, costs)
    machines.add(costs["machine"])
    row = {"mode": mode, "level": fusion_level(mode)}
    row.update({column: float(scores[key]) for column, key in SCORES})
    row.update({k: costs[k] for k in ("params", "gflops_per_image",
                                      "images_per_s")})
    rows.append(row)
  machines = sorted(machines)
  seg = config.segmentation
  notes = [
      f"Two-branch S2 + S1 segmenter (base_features "
      f"{seg.model.segmenter_kwargs.get('base_features')}), "
      f"{seg.total_steps} steps each, scores on the {config.test_split!r} "
      f"split; FLOPs: XLA cost analysis of the inference forward on one "
      f"{tile}x{tile} image.",
      f"images/s: inference, batch {config.timing_batch_size}, "
      f"{config.timing_repeats} timed calls after warm-up, on "
      f"{'; '.join(machines)}."]
  extra = {"machines": machines, "tile_size": tile,
           "total_steps": int(seg.total_steps), "test_split": config.test_split}
  if jax.process_index() == 0:
    tables.write_table(paths.join(workdir, "fusion_study"), COLUMNS, rows,
                       title="Optical + SAR fusion strategies", notes=notes,
                       extra=extra)
  return {"columns": list(COLUMNS), "rows": rows, **extra}
