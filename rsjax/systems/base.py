"""The System contract (docs/ARCHITECTURE.md) and what every system shares.

A system is built from the experiment config and exposes pure functions over
pytrees; the trainer (rsjax.train.trainer) jits them with shardings and knows
nothing about GANs:

  init(rng, batch) -> State                    # batch: one (global) batch
  train_step(state, batch) -> (State, dict)    # dict: scalar float32 metrics
  eval_step(state, batch) -> dict              # sums and counts (arrays)
  finalize_eval(sums) -> dict                  # host: sums -> reported scores
  predict(state, batch) -> jax.Array           # output in normalized units
  panels(batch, prediction) -> dict            # host: name -> Panel, for
                                               # sample grids

and, for evaluation tables and full-scene inference, three attributes:

  predict_fields: tuple[str, ...]   batch fields `predict` reads
  output_field: str                 the field whose units (normalization) the
                                    prediction is in ('s2'; 'lulc' for logits)
  output_bands: tuple[int, ...] | None   bands of output_field predicted, in
                                    order (None: all of them)

Eval batches carry `mask` (1 for real examples, 0 for padding); eval_step must
weight by it so every example counts exactly once. `State` is the shared
pytree: per-network params, batch_stats (mutable collections such as
BatchNorm statistics and spectral-norm vectors) and optimizer states keyed by
network name, optional EMA params, the step and the RNG key; train_step folds
the step into the key.

A `Panel` is one column of a sample grid: (B, H, W, 3) images in [0, 1], a
title naming the field, bands and colour scale, and optionally legend swatches
(land-cover classes, mask values) and a scale note (SAR's dB range). `panels`
leaves out the rows of padding examples. Grids also take plain (B, H, W, 3)
arrays, titled by their key (`as_panel`).
"""

from __future__ import annotations

import dataclasses
import importlib
import zlib
from collections.abc import Mapping
from typing import Any, Protocol

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

Batch = Mapping[str, jax.Array]


@flax.struct.dataclass
class State:
  """Everything a run needs to continue exactly (and what checkpoints hold)."""
  step: jax.Array
  rng: jax.Array
  params: dict[str, Any]
  batch_stats: dict[str, Any]
  opt_state: dict[str, Any]
  ema_params: dict[str, Any] | None = None

  def step_rng(self, name: str = "") -> jax.Array:
    """A key unique to this step (and to `name`, e.g. 'dropout')."""
    key = jax.random.fold_in(self.rng, self.step)
    return jax.random.fold_in(key, _stable_hash(name)) if name else key


def _stable_hash(name: str) -> int:
  """CRC-32 of the whole UTF-8 name, 31 bits: the same in every process and
  run (unlike `hash`), different for names that share a prefix."""
  return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


Swatch = tuple[str, tuple[float, float, float]]


@dataclasses.dataclass(frozen=True)
class Panel:
  """One column of a sample grid.

  image: (B, H, W, 3) floats in [0, 1], a row per real example.
  title: what the column shows, e.g. 's2 B4-B3-B2, stretch 2-98 %'.
  legend: (label, (r, g, b) in [0, 1]) swatches of the colours that stand for
    classes (a palette, a mask's black and white).
  note: how values map to grey or colour, for under the grid (e.g. 's1 VV:
    black -25 dB, white 0 dB').
  """
  image: np.ndarray
  title: str
  legend: tuple[Swatch, ...] = ()
  note: str = ""


def as_panel(name: str, value) -> Panel:
  """A `panels` value as a Panel: a plain array gets its key as title."""
  if isinstance(value, Panel):
    return value
  return Panel(np.asarray(value, np.float32), name)


def grid_columns(panels: Mapping[str, Any], max_rows: int) -> list[Panel]:
  """The panels as Panels of at most `max_rows` rows, checked to be images
  of one (B, H, W, 3) shape; a ValueError naming a panel otherwise."""
  if not panels:
    raise ValueError("no panels to draw")
  columns = {name: as_panel(name, value) for name, value in panels.items()}
  shape = next(iter(columns.values())).image.shape
  for name, panel in columns.items():
    image = np.asarray(panel.image)
    if image.ndim != 4 or image.shape[-1] != 3 or image.shape != shape:
      raise ValueError(f"panel {name!r} has shape {image.shape}; every panel "
                       f"must be (B, H, W, 3) like {shape}")
  return [dataclasses.replace(p, image=np.clip(
      np.asarray(p.image, np.float32)[:max_rows], 0.0, 1.0))
          for p in columns.values()]


def grid_legend(columns) -> tuple[Swatch, ...]:
  """Every swatch of the columns' legends once, in order of appearance."""
  return tuple(dict.fromkeys(s for p in columns for s in p.legend))


def grid_notes(columns) -> tuple[str, ...]:
  """Every note of the columns once, in order of appearance."""
  return tuple(dict.fromkeys(p.note for p in columns if p.note))


class System(Protocol):
  config: ml_collections.ConfigDict
  predict_fields: tuple[str, ...]
  output_field: str
  output_bands: tuple[int, ...] | None

  def init(self, rng: jax.Array, batch: Batch) -> State: ...
  def train_step(self, state: State, batch: Batch) -> tuple[State, dict]: ...
  def eval_step(self, state: State, batch: Batch) -> dict: ...
  def finalize_eval(self, sums: Mapping[str, Any]) -> dict: ...
  def predict(self, state: State, batch: Batch) -> jax.Array: ...
  def panels(self, batch: Mapping[str, Any], prediction
             ) -> dict[str, Panel]: ...


SYSTEMS = {
    "paired_gan": "rsjax.systems.rs_spade.system:PairedGAN",
    "segmentation": "rsjax.systems.segmentation.system:Segmentation",
    "cloud_removal": "rsjax.systems.cloud_removal.system:CloudRemoval",
    "csebgan": "rsjax.systems.csebgan.system:CSEBGAN",
    "cycle_fusion": "rsjax.systems.cycle_fusion.system:CycleFusion",
}
"""`config.system` -> 'module:class' of its paper's package."""


def check_system_name(config: ml_collections.ConfigDict) -> None:
  """ValueError naming the valid systems if `config.system` names none."""
  name = config.get("system")
  if name not in SYSTEMS:
    raise ValueError(f"config.system: unknown system {name!r}; valid systems: "
                     f"{', '.join(sorted(SYSTEMS))}")


def get_system(config: ml_collections.ConfigDict) -> System:
  """The system named by `config.system`, built from the whole config.

  A config whose length is in `config.epochs` needs its `total_steps`
  derived from the dataset first (the trainer does it;
  `rsjax.train.training_length.stand_in` gives a placeholder where no
  dataset is read): without it this raises a ValueError saying so.
  """
  check_system_name(config)
  if config.get("total_steps") is None and config.get("epochs"):
    raise ValueError(
        f"config.epochs={config.epochs} leaves config.total_steps to be "
        "derived from the training split, which launch.train and "
        "trainer.train_and_evaluate do; to build the networks without a "
        "dataset, pass rsjax.train.training_length.stand_in(config), or set "
        "--config.total_steps=N --config.epochs=0.")
  module_name, _, attribute = SYSTEMS[config.get("system")].partition(":")
  return getattr(importlib.import_module(module_name), attribute)(config)


def adam(config: ml_collections.ConfigDict, total_steps: int
         ) -> optax.GradientTransformation:
  """Adam with a constant-then-linear-decay learning rate (pix2pix, CSEBGAN).

  Keys of `config`: lr, b1, b2, and decay_start (fraction of total_steps after
  which the rate decays linearly to 0; 1.0 keeps it constant).
  """
  decay_start = int(total_steps * config.get("decay_start", 1.0))
  schedule = optax.join_schedules(
      [optax.constant_schedule(config.lr),
       optax.linear_schedule(config.lr, 0.0, max(total_steps - decay_start, 1))],
      [decay_start])
  return optax.adam(schedule, b1=config.get("b1", 0.5), b2=config.get("b2", 0.999))


def train_apply(module, params, stats, *args, **kwargs):
  """`module` in train mode with mutable BatchNorm / spectral-norm state:
  (output, its updated batch_stats)."""
  output, mutated = module.apply({"params": params, "batch_stats": stats},
                                 *args, train=True, mutable=["batch_stats"],
                                 **kwargs)
  return output, mutated.get("batch_stats", stats)


def optimizer_step(tx: optax.GradientTransformation, grads, opt_state, params):
  """One optimizer step: (new params, new optimizer state)."""
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def ema_update(ema_params, params, decay: float):
  """Exponential moving average of parameters (generator EMA)."""
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params,
                      params)


def compute_dtype(config: ml_collections.ConfigDict):
  """`config.dtype` ('float32' | 'bfloat16') as a jnp dtype; params stay f32."""
  name = config.get("dtype", "float32")
  if name not in ("float32", "bfloat16"):
    raise ValueError(f"config.dtype must be 'float32' or 'bfloat16', got {name!r}")
  return jnp.dtype(name)
