"""The scene folders of the rs_multisource builder: which, and which sources.

Reading a scene (its files, alignment onto the S2 grid, physical units) is
`rsjax.geo.scene`; this module holds what only the builder has: the sources a
config reads (the required ones plus its optional feature groups) and a
manual_dir of many scene folders. `find_scenes` lists the scene folders under
a root and checks every file of every scene up front
(`rsjax.geo.scene.find_sources`), so a bad manual_dir fails before anything is
written, with one message that names every missing or broken file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

from rsjax.geo import scene as geo_scene

REQUIRED_SOURCES = ("s2", "s1", "lulc", "dem")
OPTIONAL_GROUPS: Mapping[str, tuple[str, ...]] = {
    "clouds": ("s2_cloudy", "cloud_mask"),
    "second_date": ("s2_t2", "s1_t2", "lulc_t2"),
    "coarse": ("s2_coarse",),
}


@dataclasses.dataclass(frozen=True)
class Scene:
  """One scene folder: its id and {source name: GeoTIFF path}."""
  scene_id: str
  paths: Mapping[str, str]


def source_names(optional: Sequence[str]) -> tuple[str, ...]:
  """The sources a config reads: the required ones plus its optional groups."""
  unknown = sorted(set(optional) - set(OPTIONAL_GROUPS))
  if unknown:
    raise ValueError(f"unknown optional feature group(s) {unknown}; valid: "
                     f"{sorted(OPTIONAL_GROUPS)}.")
  names = list(REQUIRED_SOURCES)
  for group in OPTIONAL_GROUPS:  # Fixed order, whatever the config's order.
    if group in optional:
      names.extend(OPTIONAL_GROUPS[group])
  return tuple(names)


def find_scenes(root: str | os.PathLike, names: Sequence[str],
                patterns: Mapping[str, str]) -> list[Scene]:
  """Lists and checks the scene folders under `root`, sorted by name.

  Raises:
    rsjax.geo.scene.SceneError: `root` missing or without scene folders, or
      any scene with a missing, ambiguous, unreadable or wrongly shaped file;
      the message lists every problem of every scene.
  """
  root = os.fspath(root)
  if not os.path.isdir(root):
    raise geo_scene.SceneError(
        f"scene root {root} does not exist or is not a folder.")
  folders = sorted(entry.name for entry in os.scandir(root)
                   if entry.is_dir() and not entry.name.startswith("."))
  if not folders:
    raise geo_scene.SceneError(
        f"{root} holds no scene folder; put one folder per scene in it, each "
        f"with the files {[patterns[n] for n in names]}.")
  scenes, problems = [], []
  for folder_name in folders:
    try:
      paths = geo_scene.find_sources(os.path.join(root, folder_name), names,
                                     patterns=patterns)
    except geo_scene.SceneError as error:
      problems.extend(error.problems)
      continue
    scenes.append(Scene(scene_id=folder_name, paths=paths))
  if problems:
    raise geo_scene.SceneError(
        f"{len(problems)} problem(s) in the scene folders under {root}:\n  "
        + "\n  ".join(problems), problems)
  return scenes
