"""The config a workdir was trained with, saved beside its checkpoints.

`launch/evaluate.py` and `launch/infer.py` rebuild the system from
`<workdir>/config.json`, so a checkpoint is usable without its config file.
A run that resumes in a workdir written by another system is refused before
anything is restored (its checkpoint would not fit, or worse, would fit).
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
from etils import epath

from rsjax.store import atomic

FILENAME = "config.json"


def path(workdir: str | os.PathLike) -> epath.Path:
  return epath.Path(workdir) / FILENAME


def load(workdir: str | os.PathLike) -> ml_collections.ConfigDict:
  """The saved config of `workdir`; FileNotFoundError naming the file."""
  file = path(workdir)
  if not file.exists():
    raise FileNotFoundError(
        f"{file}: no saved config; is {os.fspath(workdir)!r} a workdir written "
        f"by launch.train (rsjax.train.trainer)?")
  return ml_collections.ConfigDict(json.loads(file.read_text()))


def check_system(workdir: str | os.PathLike, system: str) -> None:
  """ValueError if `workdir` holds a run of a system other than `system`."""
  file = path(workdir)
  if not file.exists():
    return
  saved = json.loads(file.read_text()).get("system")
  if saved != system:
    raise ValueError(
        f"{file}: this workdir holds a {saved!r} run, but config.system is "
        f"{system!r}; use another --workdir or the matching config")


def save(workdir: str | os.PathLike, config: ml_collections.ConfigDict) -> None:
  """Writes config.json (process 0; atomically, via a temporary file)."""
  if jax.process_index() != 0:
    return
  atomic.write_text(path(workdir),
                    config.to_json_best_effort(indent=2, sort_keys=True))
