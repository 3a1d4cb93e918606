"""Orbax checkpoints of the training State: async, keep-N, resumed from the workdir.

Checkpoints live in `<workdir>/checkpoints/<step>`; Orbax writes each to a
temporary directory and renames it when complete, so a killed run never leaves
a checkpoint that looks whole. Restoring fills an abstract, sharded target, so
arrays land directly on their devices with the run's shardings. The data
position is the step itself: the input pipeline resumes at it.

A checkpoint can still be damaged after it was written (a truncated or lost
array file, a missing `_METADATA`, a step folder left empty by a crash on
another filesystem). Training resumes from the newest step that restores
(`restore_latest`): each newer one is logged with its error and moved aside,
never deleted, to `<workdir>/checkpoints_damaged/<step>-<UTC time>`, out of
Orbax's sight. Reading a trained run (`restore`) changes nothing: a step that
does not restore is a `RestoreError` naming it.
"""

from __future__ import annotations

import logging
import os
import time

import jax
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from rsjax.store import paths

DAMAGED_DIRECTORY = "checkpoints_damaged"
"""The workdir's folder of checkpoints moved aside because they did not
restore."""


class RestoreError(RuntimeError):
  """A checkpoint, or every checkpoint of a workdir, does not restore."""


def make_manager(workdir: str | os.PathLike, *, keep: int,
                 interval: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, save_interval_steps=max(int(interval), 1),
      enable_async_checkpointing=True, create=True)
  return ocp.CheckpointManager(paths.join(workdir, "checkpoints"),
                               options=options)


def abstract_with_shardings(abstract_state, shardings):
  """ShapeDtypeStructs carrying the shardings to restore onto."""
  return jax.tree.map(
      lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                  sharding=sharding),
      abstract_state, shardings)


def _why(error: Exception) -> str:
  """The error's type and first line, shortened (TensorStore's run long)."""
  lines = str(error).strip().splitlines()
  first = lines[0] if lines else ""
  if len(first) > 300:
    first = first[:300] + " ..."
  return f"{type(error).__name__}: {first}"


def _restore_step(directory: str, step: int, target):
  """Checkpoint `step` of the checkpoints `directory`, read by a manager of
  its own: a manager that failed on a damaged step (an empty folder) fails
  on every later step too."""
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(create=False))
  try:
    return manager.restore(step, args=ocp.args.StandardRestore(target))
  finally:
    manager.close()


def restore_latest(manager: ocp.CheckpointManager, abstract_state, shardings):
  """(state, step) of the newest checkpoint of `manager` that restores, or
  (None, 0) if there is none.

  Each newer checkpoint that fails to restore is moved to
  `<workdir>/checkpoints_damaged/<step>-<UTC time>` with a warning naming
  the step and its error, once an older step has restored: if none
  restores, nothing is moved and `RestoreError` names each step and why.
  Only process 0 moves folders (coordinating hosts further is issue 22).
  """
  directory = os.fspath(manager.directory)
  target = abstract_with_shardings(abstract_state, shardings)
  failed: dict[int, Exception] = {}
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      state = _restore_step(directory, step, target)
    except Exception as error:  # pylint: disable=broad-except
      # Orbax and TensorStore raise many types (ValueError, OSError, plain
      # Exception) for damaged files; each is reported with its step.
      failed[step] = error
      continue
    if failed:
      _move_aside(manager, failed, restored=int(step))
    return state, int(step)
  if failed:
    raise RestoreError(
        f"{directory}: no checkpoint restores; " + "; ".join(
            f"step {step}: {_why(error)}" for step, error in failed.items())
    ) from failed[max(failed)]
  return None, 0


def _move_aside(manager: ocp.CheckpointManager, failed, *, restored: int
                ) -> None:
  """Moves the step folders of `failed` ({step: error}) to the workdir's
  DAMAGED_DIRECTORY and makes `manager` forget them."""
  directory = epath.Path(manager.directory)
  damaged = directory.parent / DAMAGED_DIRECTORY
  stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
  if jax.process_index() == 0:
    damaged.mkdir(parents=True, exist_ok=True)
    for step, error in sorted(failed.items()):
      aside = damaged / f"{step}-{stamp}"
      (directory / str(step)).rename(aside)
      logging.warning(
          "checkpoint of step %d in %s does not restore (%s); moved to %s, "
          "resuming from step %d", step, directory, _why(error), aside,
          restored)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("rsjax: damaged checkpoints moved")
  manager.reload()


def steps(workdir: str | os.PathLike) -> list[int]:
  """The complete checkpoint steps of `workdir`, ascending."""
  directory = paths.of(workdir) / "checkpoints"
  if not directory.is_dir():
    return []
  return sorted(ocp.path.step.checkpoint_steps(directory))


def restore(workdir: str | os.PathLike, abstract_state, shardings, *,
            step: int | None = None):
  """(state, step) of checkpoint `step` (default: the newest) of `workdir`,
  read without creating or changing anything there.

  FileNotFoundError names the workdir when it has no checkpoint; ValueError
  lists the steps it has when `step` is not one of them; RestoreError names
  the step when its checkpoint does not restore (damaged, or of another
  state's structure).
  """
  workdir = os.fspath(workdir)
  directory = paths.join(workdir, "checkpoints")
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
  target = abstract_with_shardings(abstract_state, shardings)
  try:
    state = _restore_step(directory, step, target)
  except Exception as error:  # pylint: disable=broad-except
    raise RestoreError(
        f"{workdir}: the checkpoint of step {step} ({directory}/{step}) does "
        f"not restore: {_why(error)}; the workdir has steps {available}"
    ) from error
  return state, int(step)


def save(manager: ocp.CheckpointManager, step: int, state, *,
         force: bool = False) -> bool:
  """Saves `state` as `step` if the interval policy (or `force`) says so."""
  return manager.save(step, args=ocp.args.StandardSave(state), force=force)
