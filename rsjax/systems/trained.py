"""A trained run, loaded from its workdir: `load_run(workdir, step=None)`.

Every consumer of a trained system (evaluation tables, full-scene inference,
the augmentation experiment's generator, the demo, CSEBGAN's frozen
conductor) loads it here: the config the run was trained with
(`rsjax.store.run_config`), the system it names, and the State of its newest
(or a given) checkpoint restored straight onto the devices of a mesh with
the trainer's shardings. A workdir without a checkpoint is an error naming
it: a consumer never gets freshly initialised weights by mistake (training
itself, which starts from scratch when there is no checkpoint, is
`rsjax.train.trainer`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
import numpy as np

from rsjax import mesh as mesh_lib
from rsjax.data import fields as fields_lib
from rsjax.data import normalize as normalize_lib
from rsjax.store import checkpoint as checkpoint_lib
from rsjax.store import paths
from rsjax.store import run_config
from rsjax.systems import base


@dataclasses.dataclass(frozen=True)
class Run:
  """A restored run: its config, system, State (on `mesh`) and step."""
  workdir: str
  config: ml_collections.ConfigDict
  system: base.System
  state: base.State
  step: int
  mesh: jax.sharding.Mesh


def normalization(config: ml_collections.ConfigDict):
  """The resolved normalization of a run's data, None if it does not
  normalize (its batches are in physical units)."""
  if not config.data.get("normalize", True):
    return None
  return normalize_lib.resolve_config(config.data.get("normalization"))


def example_batch(names, tile_size: int, batch_size: int, normalization
                  ) -> dict[str, np.ndarray]:
  """Zeros of every field in `names` at `tile_size`, normalized (host)."""
  batch = {}
  for name in names:
    shape, dtype = fields_lib.spec(name, tile_size)
    batch[name] = np.zeros((batch_size,) + shape, dtype)
  if normalization is not None:
    batch = normalize_lib.normalize_batch(batch, normalization)
  return batch


def _default_example(config, system) -> dict[str, np.ndarray]:
  names = sorted(set(config.data.get("fields", ())) |
                 set(getattr(system, "predict_fields", ())))
  names = [n for n in names if fields_lib.is_device_field(
      fields_lib.spec(n, 1)[1])]
  return example_batch(names, int(config.data.get("tile_size", 256)), 1,
                       normalization(config))


def load_run(workdir: str | os.PathLike, *, step: int | None = None,
             config: ml_collections.ConfigDict | None = None,
             mesh: jax.sharding.Mesh | None = None,
             example: Mapping[str, Any] | None = None) -> Run:
  """The run in `workdir` at checkpoint `step` (default: the newest).

  `config` replaces the saved one (it must be of the same system; evaluation
  may change e.g. data keys); `mesh` defaults to the config's
  (`config.mesh`); `example` is a batch (arrays or ShapeDtypeStructs) of the
  shapes the system is initialised with, by default one zero tile of the
  config's data fields.

  Raises:
    FileNotFoundError: `workdir` or its config.json does not exist, or it
      has no checkpoint (the message names the workdir).
    ValueError: `config` names another system than the saved run, or `step`
      is not a checkpoint of the run.
  """
  workdir = os.fspath(workdir)
  if not paths.of(workdir).is_dir():
    raise FileNotFoundError(f"{workdir}: no such workdir")
  saved = run_config.load(workdir)
  if config is None:
    config = saved
  elif config.get("system") != saved.get("system"):
    raise ValueError(
        f"{run_config.path(workdir)}: this workdir holds a "
        f"{saved.get('system')!r} run, the config given is of "
        f"{config.get('system')!r}")
  system = base.get_system(config)
  mesh = mesh if mesh is not None else mesh_lib.make_mesh(config.mesh)
  if example is None:
    example = _default_example(config, system)
  abstract = jax.eval_shape(system.init, jax.random.PRNGKey(config.seed),
                            example)
  shardings = mesh_lib.state_shardings(
      abstract, mesh, fsdp_min_size=config.get("fsdp_min_size"))
  state, step = checkpoint_lib.restore(workdir, abstract, shardings, step=step)
  return Run(workdir, config, system, state, step, mesh)
