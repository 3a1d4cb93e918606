"""Scene folders of the rs_multisource builder: finding, checking and tiling them.

A scene is one folder holding one GeoTIFF per source (Sentinel-2, Sentinel-1,
Dynamic World LULC, Copernicus DEM, and optionally a cloudy Sentinel-2 with its
cloud mask, a second date and a low-resolution optical image), each found by a
file-name glob. `find_scenes` lists the scene folders under a root and checks
every file up front (present, readable, georeferenced, expected band count), so
a bad manual_dir fails before anything is written, with one message that names
every missing or broken file.

`SceneReader` aligns a scene's sources onto the reference grid (`rsjax.geo`:
the Sentinel-2 raster first, so its CRS and 10 m pixel lattice define the grid)
and returns one tile as arrays in physical units:

- s2 and the other optical images: reflectance = DN * `s2_scale`.
- s1: dB (`rsjax.geo.sar.to_db` of linear sigma0, or kept if already dB).
- lulc: uint8 class index; values outside [0, num_classes) count as nodata.
- dem: elevation (m), slope (deg), aspect (deg), hillshade ([0, 1]); the
  derivatives are computed on the metric grid over the tile window padded by
  one pixel, so tile edges see their real neighbours (no edge replication),
  and a DEM pixel counts as valid only if its whole 3x3 neighbourhood is.
- valid: True where every source has data.

Pixels where a source has no data hold 0 in that source's array.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Mapping, Sequence

import numpy as np
from rasterio.windows import Window

from rsjax.geo import align, io, sar, terrain

NUM_LULC_CLASSES = 9          # Dynamic World: water ... snow_and_ice
NUM_CLOUD_MASK_VALUES = 3     # 0 clear, 1 cloud, 2 shadow


@dataclasses.dataclass(frozen=True)
class SourceSpec:
  """What a source file must hold and how it is turned into a feature."""
  bands: int
  kind: str  # 'optical', 'sar', 'labels', 'cloud_mask' or 'dem'

  @property
  def categorical(self) -> bool:
    return self.kind in ("labels", "cloud_mask")


SOURCE_SPECS: Mapping[str, SourceSpec] = {
    "s2": SourceSpec(4, "optical"),
    "s1": SourceSpec(2, "sar"),
    "lulc": SourceSpec(1, "labels"),
    "dem": SourceSpec(1, "dem"),
    "s2_cloudy": SourceSpec(4, "optical"),
    "cloud_mask": SourceSpec(1, "cloud_mask"),
    "s2_t2": SourceSpec(4, "optical"),
    "s1_t2": SourceSpec(2, "sar"),
    "lulc_t2": SourceSpec(1, "labels"),
    "s2_coarse": SourceSpec(4, "optical"),
}
REQUIRED_SOURCES = ("s2", "s1", "lulc", "dem")
OPTIONAL_GROUPS: Mapping[str, tuple[str, ...]] = {
    "clouds": ("s2_cloudy", "cloud_mask"),
    "second_date": ("s2_t2", "s1_t2", "lulc_t2"),
    "coarse": ("s2_coarse",),
}
DEFAULT_PATTERNS: Mapping[str, str] = {
    name: f"{name}.tif" for name in SOURCE_SPECS}


class SceneError(ValueError):
  """The scene folders do not hold what the config asks for."""


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


def _match(folder: str, files: Sequence[str], name: str,
           pattern: str) -> tuple[str | None, str | None]:
  """(path, None) for exactly one match of `pattern`, else (None, problem)."""
  matches = sorted(f for f in files if fnmatch.fnmatch(f, pattern))
  if len(matches) == 1:
    return os.path.join(folder, matches[0]), None
  if not matches:
    return None, (f"{folder}: no file for source {name!r} (pattern "
                  f"{pattern!r})")
  return None, (f"{folder}: {len(matches)} files match source {name!r} "
                f"(pattern {pattern!r}): {matches}; make the pattern specific")


def find_scenes(root: str | os.PathLike, names: Sequence[str],
                patterns: Mapping[str, str]) -> list[Scene]:
  """Lists and checks the scene folders under `root`, sorted by name.

  Raises:
    SceneError: `root` missing or without scene folders, or any scene with a
      missing, ambiguous, unreadable or wrongly shaped file; the message lists
      every problem found.
  """
  root = os.fspath(root)
  if not os.path.isdir(root):
    raise SceneError(f"scene root {root} does not exist or is not a folder.")
  folders = sorted(entry.name for entry in os.scandir(root)
                   if entry.is_dir() and not entry.name.startswith("."))
  if not folders:
    raise SceneError(
        f"{root} holds no scene folder; put one folder per scene in it, each "
        f"with the files {[patterns[n] for n in names]}.")
  scenes, problems = [], []
  for folder_name in folders:
    folder = os.path.join(root, folder_name)
    files = sorted(entry.name for entry in os.scandir(folder)
                   if entry.is_file())
    paths = {}
    for name in names:
      path, problem = _match(folder, files, name, patterns[name])
      if problem:
        problems.append(problem)
        continue
      try:
        io.open_raster(path, expected_bands=SOURCE_SPECS[name].bands).close()
      except (OSError, io.RasterError) as error:
        problems.append(f"source {name!r}: {error}")
        continue
      paths[name] = path
    scenes.append(Scene(scene_id=folder_name, paths=paths))
  if problems:
    raise SceneError(f"{len(problems)} problem(s) in the scene folders under "
                     f"{root}:\n  " + "\n  ".join(problems))
  return scenes


def _erode3(mask: np.ndarray) -> np.ndarray:
  """True where the whole 3x3 neighbourhood is True; shape shrinks by 2."""
  rows, cols = mask.shape[0] - 2, mask.shape[1] - 2
  out = np.ones((rows, cols), bool)
  for dr in range(3):
    for dc in range(3):
      out &= mask[dr:dr + rows, dc:dc + cols]
  return out


class SceneReader:
  """Reads tiles of one scene, every source aligned on the S2 grid.

  Use as a context manager (the files stay open between tiles).
  """

  def __init__(self, scene: Scene, *, resolution: float = 10.0,
               s2_scale: float = 1e-4, s1_units: str = "linear"):
    if s1_units not in ("linear", "db"):
      raise ValueError(f"s1_units must be 'linear' or 'db', got {s1_units!r}.")
    self.scene = scene
    self.s2_scale = float(s2_scale)
    self.s1_units = s1_units
    self.sources = {
        name: align.Source(path, name=name,
                           categorical=SOURCE_SPECS[name].categorical,
                           expected_bands=SOURCE_SPECS[name].bands)
        for name, path in scene.paths.items()}
    ordered = [self.sources["s2"]] + [
        s for n, s in self.sources.items() if n != "s2"]
    self.grid = align.reference_grid(ordered, resolution=resolution)
    self._datasets = {}
    try:
      for name, source in self.sources.items():
        self._datasets[name] = io.open_raster(
            source.path, expected_bands=source.expected_bands)
    except Exception:
      self.close()
      raise

  def close(self) -> None:
    for dataset in self._datasets.values():
      dataset.close()
    self._datasets = {}

  def __enter__(self) -> SceneReader:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def _align(self, name: str, window: Window) -> align.AlignedArray:
    return align.align_window(self._datasets[name], self.sources[name],
                              self.grid, window, allow_empty=True)

  def _dem(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
    padded = Window(window.col_off - 1, window.row_off - 1, window.width + 2,
                    window.height + 2)
    aligned = self._align("dem", padded)
    valid = _erode3(aligned.valid)
    elevation = aligned.data[0].astype(np.float32)
    res = self.grid.res
    channels = [elevation[1:-1, 1:-1], terrain.slope(elevation, res=res),
                terrain.aspect(elevation, res=res),
                terrain.hillshade(elevation, res=res)]
    channels[1:] = [c[1:-1, 1:-1] for c in channels[1:]]
    return np.stack(channels, axis=-1).astype(np.float32), valid

  def read_tile(self, window: Window) -> tuple[dict[str, np.ndarray],
                                               np.ndarray]:
    """({source name: array}, valid) for one window of the grid.

    Arrays are (rows, cols, channels) float32 for images, (rows, cols) uint8
    for labels and masks; `valid` is (rows, cols) bool.
    """
    window = Window(int(window.col_off), int(window.row_off),
                    int(window.width), int(window.height))
    arrays, valid = {}, np.ones((window.height, window.width), bool)
    for name in self.sources:
      kind = SOURCE_SPECS[name].kind
      if kind == "dem":
        data, source_valid = self._dem(window)
      else:
        aligned = self._align(name, window)
        source_valid = aligned.valid
        if kind in ("labels", "cloud_mask"):
          limit = NUM_LULC_CLASSES if kind == "labels" else (
              NUM_CLOUD_MASK_VALUES)
          values = aligned.data[0]
          source_valid = source_valid & (values >= 0) & (values < limit)
          data = np.where(source_valid, values, 0).astype(np.uint8)
        elif kind == "optical":
          data = np.moveaxis(aligned.data, 0, -1) * np.float32(self.s2_scale)
        else:
          data = np.moveaxis(aligned.data, 0, -1)
          if self.s1_units == "linear":
            data = sar.to_db(data)
      if data.ndim == 3:
        data = np.where(source_valid[..., None], data, 0).astype(np.float32)
      arrays[name] = data
      valid &= source_valid
    return arrays, valid
