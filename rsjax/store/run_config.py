"""The config a workdir was trained with, saved beside its checkpoints.

`launch/evaluate.py` and `launch/infer.py` rebuild the system from
`<workdir>/config.json`, so a checkpoint is usable without its config file.
A run that resumes in a workdir written by another system is refused before
anything is restored (its checkpoint would not fit, or worse, would fit).

The keys that name files or folders (`PATH_KEYS`: the data_dir, ...) are
saved as absolute paths, a URI (`gs://...`) as it is, so the workdir's config
means the same from any directory. A config.json saved before kept them as
given: they are read as then, from the current directory, with a warning.
"""

from __future__ import annotations

import json
import logging
import os

import jax
import ml_collections
from etils import epath

from rsjax.store import atomic
from rsjax.store import paths

FILENAME = "config.json"
PATH_KEYS = ("data.data_dir", "data.train_arrays", "data.train_rows",
             "conductor.workdir", "evaluation.segmenter_workdir",
             "vgg_weights")
"""Dotted config keys whose (str) value is a local path or a URI."""


def path(workdir: str | os.PathLike) -> epath.Path:
  return epath.Path(workdir) / FILENAME


def load(workdir: str | os.PathLike) -> ml_collections.ConfigDict:
  """The saved config of `workdir`; FileNotFoundError naming the file."""
  file = path(workdir)
  if not file.exists():
    raise FileNotFoundError(
        f"{file}: no saved config; is {os.fspath(workdir)!r} a workdir written "
        f"by launch.train (rsjax.train.trainer)?")
  saved = json.loads(file.read_text())
  for key, value in _path_values(saved):
    if not paths.is_remote(value) and not os.path.isabs(value):
      logging.warning(
          "%s: config.%s = %r is a relative path (saved before config.json "
          "kept absolute paths); it is read from the current directory, %s",
          file, key, value, os.getcwd())
  return ml_collections.ConfigDict(saved)


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
  saved = json.loads(config.to_json_best_effort())
  for key, value in _path_values(saved):
    *groups, name = key.split(".")
    group = saved
    for part in groups:
      group = group[part]
    group[name] = paths.absolute(os.path.expanduser(value))
  atomic.write_text(path(workdir), json.dumps(saved, indent=2, sort_keys=True))


def _path_values(saved: dict) -> list[tuple[str, str]]:
  """(key, value) of each `PATH_KEYS` key of the config dict `saved` that
  holds a path (a non-empty str)."""
  found = []
  for key in PATH_KEYS:
    value = saved
    for part in key.split("."):
      value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str) and value:
      found.append((key, value))
  return found
