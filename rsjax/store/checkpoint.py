"""Orbax checkpoints of the training State: async, keep-N, resumed from the workdir.

Checkpoints live in `<workdir>/checkpoints/<step>`; Orbax writes each to a
temporary directory and renames it when complete, so a killed run never leaves
a checkpoint that looks whole. Restoring fills an abstract, sharded target, so
arrays land directly on their devices with the run's shardings. The data
position is the step itself: the input pipeline resumes at it.
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp


def make_manager(workdir: str | os.PathLike, *, keep: int,
                 interval: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, save_interval_steps=max(int(interval), 1),
      enable_async_checkpointing=True, create=True)
  directory = os.path.join(os.path.abspath(os.fspath(workdir)), "checkpoints")
  return ocp.CheckpointManager(directory, options=options)


def abstract_with_shardings(abstract_state, shardings):
  """ShapeDtypeStructs carrying the shardings to restore onto."""
  return jax.tree.map(
      lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                  sharding=sharding),
      abstract_state, shardings)


def restore_latest(manager: ocp.CheckpointManager, abstract_state, shardings):
  """(state, step) of the newest checkpoint, or (None, 0) if there is none."""
  step = manager.latest_step()
  if step is None:
    return None, 0
  target = abstract_with_shardings(abstract_state, shardings)
  state = manager.restore(step, args=ocp.args.StandardRestore(target))
  return state, int(step)


def steps(workdir: str | os.PathLike) -> list[int]:
  """The complete checkpoint steps of `workdir`, ascending."""
  directory = os.path.join(os.path.abspath(os.fspath(workdir)), "checkpoints")
  if not os.path.isdir(directory):
    return []
  return sorted(ocp.path.step.checkpoint_steps(directory))


def restore(workdir: str | os.PathLike, abstract_state, shardings, *,
            step: int | None = None):
  """(state, step) of checkpoint `step` (default: the newest) of `workdir`,
  read without creating or changing anything there.

  FileNotFoundError names the workdir when it has no checkpoint; ValueError
  lists the steps it has when `step` is not one of them.
  """
  workdir = os.fspath(workdir)
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  available = steps(workdir)
  if not available:
    raise FileNotFoundError(
        f"{workdir}: no checkpoint in {directory}; train it first "
        f"(python -m launch.train --workdir {workdir} ...)")
  if step is None:
    step = available[-1]
  elif step not in available:
    raise ValueError(f"{workdir}: no checkpoint of step {step}; it has "
                     f"steps {available}")
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(create=False))
  try:
    target = abstract_with_shardings(abstract_state, shardings)
    state = manager.restore(step, args=ocp.args.StandardRestore(target))
  finally:
    manager.close()
  return state, int(step)


def save(manager: ocp.CheckpointManager, step: int, state, *,
         force: bool = False) -> bool:
  """Saves `state` as `step` if the interval policy (or `force`) says so."""
  return manager.save(step, args=ocp.args.StandardSave(state), force=force)
