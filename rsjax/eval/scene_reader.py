"""The inputs of full-scene inference: a scene's GeoTIFFs on one reference grid.

A scene is a folder (or a list of files) holding one GeoTIFF per source, named
as in the rs_multisource dataset's scene layout (`<source>.tif`, e.g. s1.tif,
lulc.tif, dem.tif, s2_cloudy.tif, cloud_mask.tif; see
data_builders/rs_multisource/scenes.py), of any size, CRS and resolution;
`--source name=path` overrides a file. `find_sources` checks, before anything
is written, that every source the generator needs is there.

`SceneInputs` aligns them onto one `rsjax.geo.align.ReferenceGrid` (the CRS
and 10 m lattice of the finest non-DEM source by default, or a given CRS /
resolution / grid) and reads any window of it as the dataset builder reads a
tile, in physical units:

- optical (s2, s2_cloudy, s2_t2, s2_coarse): reflectance = DN * s2_scale;
- SAR (s1, s1_t2): dB (`rsjax.geo.sar.to_db` of linear sigma0, or kept);
- land cover (lulc, lulc_t2) and cloud_mask: uint8, nearest resampling,
  values out of range are nodata;
- dem: elevation, slope, aspect, hillshade (`rsjax.geo.terrain`) computed on
  the window grown by a one-pixel halo, so a window's border pixels see their
  real neighbours and adjacent windows agree exactly; a pixel is valid only
  if its whole 3x3 neighbourhood is.

Pixels where a source has no data hold 0 and are False in `valid`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence

import numpy as np
from rasterio.windows import Window

from rsjax.geo import align, io, sar, terrain

# source -> kind; file band counts by kind. The same layout as the dataset's
# scene folders (tests check it against data_builders.rs_multisource.scenes).
SOURCE_KINDS: Mapping[str, str] = {
    "s2": "optical", "s1": "sar", "lulc": "labels", "dem": "dem",
    "s2_cloudy": "optical", "cloud_mask": "cloud_mask", "s2_t2": "optical",
    "s1_t2": "sar", "lulc_t2": "labels", "s2_coarse": "optical",
}
FILE_BANDS = {"optical": 4, "sar": 2, "labels": 1, "cloud_mask": 1, "dem": 1}
CLASS_LIMITS = {"labels": 9, "cloud_mask": 3}   # valid values are [0, limit)
DEFAULT_PATTERNS: Mapping[str, str] = {
    name: f"{name}.tif" for name in SOURCE_KINDS}
# Which source defines the grid when none is given: fine optical-grid rasters
# first, the (often geographic) DEM and coarse images last.
GRID_PREFERENCE = ("s2", "s2_cloudy", "s2_t2", "lulc", "lulc_t2", "cloud_mask",
                   "s1", "s1_t2", "s2_coarse", "dem")
DERIVED_FIELDS = ("valid",)


class SceneError(ValueError):
  """The scene does not hold the sources the generator needs."""


def _scene_files(scene: str | os.PathLike | Sequence[str | os.PathLike]
                 ) -> tuple[str, list[str]]:
  """(description, file paths) of a scene folder or an explicit file list."""
  if isinstance(scene, (str, os.PathLike)):
    scene = os.fspath(scene)
    if "," in scene and not os.path.exists(scene):
      scene = [part for part in scene.split(",") if part]
    elif os.path.isdir(scene):
      files = sorted(entry.path for entry in os.scandir(scene)
                     if entry.is_file() and not entry.name.startswith("."))
      return scene, files
    else:
      scene = [scene]
  files = [os.fspath(path) for path in scene]
  missing = [path for path in files if not os.path.isfile(path)]
  if missing:
    raise SceneError(f"--scene: no such file(s) {missing}; give a scene "
                     "folder or a comma-separated list of GeoTIFFs.")
  return "the files " + ", ".join(files), files


def find_sources(scene, names: Sequence[str], *,
                 overrides: Mapping[str, str] | None = None,
                 patterns: Mapping[str, str] | None = None) -> dict[str, str]:
  """{source name: path} of every source in `names`, checked.

  Args:
    scene: a scene folder, a comma-separated string or list of GeoTIFF paths
      (matched by file name), or None when `overrides` gives every source.
    names: the sources needed (e.g. the system's predict_fields).
    overrides: {source name: path}, taking precedence over the scene.
    patterns: {source name: file-name glob}; DEFAULT_PATTERNS by default.

  Raises:
    SceneError: an unknown source name, a missing or ambiguous file, or one
      with the wrong band count or no georeferencing; the message names each
      source and the patterns looked for.
  """
  patterns = {**DEFAULT_PATTERNS, **(patterns or {})}
  overrides = dict(overrides or {})
  unknown = sorted((set(names) | set(overrides)) - set(SOURCE_KINDS))
  if unknown:
    raise SceneError(f"unknown source(s) {unknown}; scene sources are "
                     f"{sorted(SOURCE_KINDS)}.")
  where, files = ("no --scene", []) if scene is None else _scene_files(scene)
  paths, problems = {}, []
  for name in names:
    if name in overrides:
      path = os.fspath(overrides[name])
    else:
      matches = [f for f in files
                 if fnmatch.fnmatch(os.path.basename(f), patterns[name])]
      if len(matches) != 1:
        found = "no file" if not matches else f"{len(matches)} files {matches}"
        problems.append(f"source {name!r}: {found} in {where} matches "
                        f"{patterns[name]!r} (pass --source {name}=PATH)")
        continue
      path = matches[0]
    try:
      io.open_raster(path,
                     expected_bands=FILE_BANDS[SOURCE_KINDS[name]]).close()
    except (OSError, io.RasterError) as error:
      problems.append(f"source {name!r}: {error}")
      continue
    paths[name] = path
  if problems:
    raise SceneError("the scene lacks what the generator needs:\n  "
                     + "\n  ".join(problems))
  return paths


def _erode3(mask: np.ndarray) -> np.ndarray:
  """True where the whole 3x3 neighbourhood is True; shape shrinks by 2."""
  rows, cols = mask.shape[0] - 2, mask.shape[1] - 2
  out = np.ones((rows, cols), bool)
  for dr in range(3):
    for dc in range(3):
      out &= mask[dr:dr + rows, dc:dc + cols]
  return out


class SceneInputs:
  """Windows of a scene's sources on one reference grid (context manager)."""

  def __init__(self, paths: Mapping[str, str], *,
               grid: align.ReferenceGrid | None = None, crs=None,
               resolution: float = 10.0, s2_scale: float = 1e-4,
               s1_units: str = "linear"):
    if s1_units not in ("linear", "db"):
      raise ValueError(f"--s1_units must be 'linear' or 'db', got "
                       f"{s1_units!r}.")
    if not paths:
      raise SceneError("no source to read.")
    self.s2_scale = float(s2_scale)
    self.s1_units = s1_units
    self.sources = {
        name: align.Source(path, name=name,
                           categorical=SOURCE_KINDS[name] in CLASS_LIMITS,
                           expected_bands=FILE_BANDS[SOURCE_KINDS[name]])
        for name, path in paths.items()}
    if grid is None:
      ordered = sorted(self.sources, key=GRID_PREFERENCE.index)
      grid = align.reference_grid([self.sources[n] for n in ordered],
                                  crs=crs, resolution=resolution)
    self.grid = grid
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

  def __enter__(self) -> SceneInputs:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def _align(self, name: str, window: Window) -> align.AlignedArray:
    return align.align_window(self._datasets[name], self.sources[name],
                              self.grid, window, allow_empty=True)

  def _dem(self, name: str, window: Window) -> tuple[np.ndarray, np.ndarray]:
    halo = Window(window.col_off - 1, window.row_off - 1, window.width + 2,
                  window.height + 2)
    aligned = self._align(name, halo)
    elevation = aligned.data[0].astype(np.float32)
    res = self.grid.res
    channels = [elevation, terrain.slope(elevation, res=res),
                terrain.aspect(elevation, res=res),
                terrain.hillshade(elevation, res=res)]
    data = np.stack([c[1:-1, 1:-1] for c in channels], axis=-1)
    return data.astype(np.float32), _erode3(aligned.valid)

  def read(self, window: Window) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({source: array}, valid) on one window of the grid.

    Arrays are (rows, cols, channels) float32 for images and (rows, cols)
    uint8 for labels and masks; valid is (rows, cols) bool, True where every
    source has data. The window may reach past the grid (nodata there).
    """
    window = Window(int(window.col_off), int(window.row_off),
                    int(window.width), int(window.height))
    arrays, valid = {}, np.ones((window.height, window.width), bool)
    for name in self.sources:
      kind = SOURCE_KINDS[name]
      if kind == "dem":
        data, source_valid = self._dem(name, window)
      else:
        aligned = self._align(name, window)
        source_valid = aligned.valid
        if kind in CLASS_LIMITS:
          values = aligned.data[0]
          source_valid = source_valid & (values >= 0) & (
              values < CLASS_LIMITS[kind])
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
