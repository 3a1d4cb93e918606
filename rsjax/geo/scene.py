"""The one reader of a scene folder: its source rasters on one grid, by window.

The rs_multisource dataset builder reads its tiles with it and full-scene
inference (`rsjax.eval.inference.full_scene`) reads its windows with it, so a tile of
the dataset and a window of inference are the same pixels. What only one of
them does (the builder's tiling, nodata filter and splits; inference's
sliding windows and batching) stays with that consumer.

A scene is a folder holding one GeoTIFF per source, of any size, CRS and
resolution, each found by a file-name glob (`DEFAULT_PATTERNS`:
'<source>.tif'); `SOURCE_SPECS` says what each holds (band names and
value tables from `rsjax.geo.bands`):

  s2, s2_cloudy, s2_t2, s2_coarse  optical, 4 bands (B2, B3, B4, B8) in DN
  s1, s1_t2                        SAR, 2 bands (VV, VH), linear sigma0 or dB
  lulc, lulc_t2                    land cover labels, 1 band, class 0..8
  cloud_mask                       1 band, 0 clear, 1 cloud, 2 shadow
  dem                              elevation in metres, 1 band (EPSG:4326 ok)

`find_sources` finds the sources a consumer needs in a folder (or a list of
files) and checks each file before anything is read (one match, readable,
georeferenced, expected band count); a `SceneError` names every missing or
broken file at once.

A scene folder or file may be a URI of object storage (`gs://bucket/area_1`,
`rsjax.store.paths`): `find_sources` lists it there and downloads the files
it picks into a `rsjax.store.staging.Stage`, whose local copies the reader
reads.

`SceneReader` aligns the sources onto one `rsjax.geo.align.ReferenceGrid`
(by default the CRS and pixel lattice of the finest source, S2 first, see
`GRID_PREFERENCE`; or a given CRS / resolution / grid) and reads any window of
it in physical units:

- optical: reflectance = DN * `s2_scale`, bilinear resampling;
- SAR: dB (`rsjax.geo.sar.to_db` of linear sigma0, or kept if already dB);
- labels and cloud_mask: uint8, nearest resampling; land-cover codes are
  remapped by a `class_map` ({file code: class}, e.g. ESA WorldCover's 10,
  20, ... onto Dynamic World classes) when one is given; values outside
  [0, class limit) (or codes the map lacks) count as nodata. Builders check
  the codes before reading (`rsjax.geo.units`), so there none are dropped;
- dem: `bands.TERRAIN_BANDS`: elevation (m), slope (deg), aspect (deg),
  hillshade ([0, 1]; `rsjax.geo.terrain`) computed on the metric grid over
  the window grown by a one-pixel halo, so a window's border pixels see
  their real neighbours (adjacent windows agree; no edge replication), and a
  DEM pixel is valid only if its whole 3x3 neighbourhood is; with
  `dem_resolution` (RS-SPADE's 30 m, Sec. 2.1) they are computed on a grid
  of that pixel size and resampled bilinearly to this one
  (`rsjax.geo.coarse_terrain`);
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

from rsjax.geo import align, bands, coarse_terrain, io, sar, terrain
from rsjax.store import paths as paths_lib
from rsjax.store import staging

NUM_LULC_CLASSES = len(bands.DYNAMIC_WORLD_CLASSES)
NUM_CLOUD_MASK_VALUES = len(bands.CLOUD_MASK_CLASSES)


@dataclasses.dataclass(frozen=True)
class SourceSpec:
  """What a source file holds (its bands, in file order) and how it is read."""
  band_names: tuple[str, ...]
  kind: str  # 'optical', 'sar', 'labels', 'cloud_mask' or 'dem'

  @property
  def bands(self) -> int:
    """How many bands the file has."""
    return len(self.band_names)

  @property
  def categorical(self) -> bool:
    """Class values: nearest resampling, uint8, out-of-range is nodata."""
    return self.kind in ("labels", "cloud_mask")

  @property
  def class_limit(self) -> int | None:
    """Valid values of a categorical source are [0, class_limit)."""
    return {"labels": NUM_LULC_CLASSES,
            "cloud_mask": NUM_CLOUD_MASK_VALUES}.get(self.kind)


_OPTICAL = SourceSpec(bands.S2_BANDS, "optical")
_SAR = SourceSpec(bands.S1_BANDS, "sar")
_LABELS = SourceSpec(("label",), "labels")
SOURCE_SPECS: Mapping[str, SourceSpec] = {
    "s2": _OPTICAL,
    "s1": _SAR,
    "lulc": _LABELS,
    "dem": SourceSpec(("elevation",), "dem"),
    "s2_cloudy": _OPTICAL,
    "cloud_mask": SourceSpec(("cloud_mask",), "cloud_mask"),
    "s2_t2": _OPTICAL,
    "s1_t2": _SAR,
    "lulc_t2": _LABELS,
    "s2_coarse": _OPTICAL,
}
DEFAULT_PATTERNS: Mapping[str, str] = {
    name: f"{name}.tif" for name in SOURCE_SPECS}
# Which source defines the grid when none is given: fine optical-grid rasters
# first, the (often geographic) DEM and coarse images last.
GRID_PREFERENCE = ("s2", "s2_cloudy", "s2_t2", "lulc", "lulc_t2", "cloud_mask",
                   "s1", "s1_t2", "s2_coarse", "dem")
# What `SceneReader.read` returns besides the sources (not a file).
DERIVED_FIELDS = ("valid",)


class SceneError(ValueError):
  """A scene does not hold the sources asked for.

  Attributes:
    problems: one line per missing, ambiguous or broken source file.
  """

  def __init__(self, message: str, problems: Sequence[str] = ()):
    super().__init__(message)
    self.problems = tuple(problems)


def _scene_files(scene: str | os.PathLike | Sequence[str | os.PathLike]
                 ) -> tuple[str, list[str]]:
  """(description, file paths) of a scene folder or an explicit file list."""
  if isinstance(scene, (str, os.PathLike)):
    scene = os.fspath(scene)
    if "," in scene and not os.path.exists(scene):
      scene = [part for part in scene.split(",") if part]
    elif paths_lib.is_remote(scene):
      paths_lib.check_reachable(scene)
      if paths_lib.of(scene).is_dir():
        return scene, staging.list_files(scene)
      scene = [scene]
    elif os.path.isdir(scene):
      files = sorted(entry.path for entry in os.scandir(scene)
                     if entry.is_file() and not entry.name.startswith("."))
      return scene, files
    else:
      scene = [scene]
  files = [os.fspath(path) for path in scene]
  missing = [path for path in files if not (
      paths_lib.of(path).is_file() if paths_lib.is_remote(path)
      else os.path.isfile(path))]
  if missing:
    raise SceneError(f"scene: no such file(s) {missing}; give a scene "
                     "folder or a comma-separated list of GeoTIFFs.")
  return "the files " + ", ".join(files), files


def _match(where: str, files: Sequence[str], name: str,
           pattern: str) -> tuple[str | None, str | None]:
  """(path, None) for exactly one file matching `pattern`, else (None, why)."""
  matches = [f for f in files if fnmatch.fnmatch(os.path.basename(f), pattern)]
  if len(matches) == 1:
    return matches[0], None
  if not matches:
    return None, f"{where}: no file for source {name!r} (pattern {pattern!r})"
  return None, (f"{where}: {len(matches)} files match source {name!r} "
                f"(pattern {pattern!r}): "
                f"{[os.path.basename(f) for f in matches]}; make the pattern "
                "specific")


def find_sources(scene, names: Sequence[str], *,
                 patterns: Mapping[str, str] | None = None,
                 overrides: Mapping[str, str] | None = None,
                 hint: str = "",
                 stage: staging.Stage | None = None) -> dict[str, str]:
  """{source name: local path} of every source in `names`, each file checked.

  Args:
    scene: a scene folder, a list of GeoTIFF paths or a comma-separated
      string of them (matched by file name), or None when `overrides` gives
      every source.
    names: the sources needed, keys of `SOURCE_SPECS`.
    patterns: {source name: file-name glob}; `DEFAULT_PATTERNS` for the rest.
    overrides: {source name: path}, taking precedence over the scene.
    hint: appended to the error message (e.g. how to give a file directly).
    stage: where files on object storage (a `gs://...` scene folder or
      file) are downloaded to; the paths returned are the local copies,
      valid while the stage is open. Without one, a remote file is a
      problem.

  Raises:
    SceneError: an unknown source name, or any source with a missing,
      ambiguous, unreadable, ungeoreferenced or wrongly banded file; the
      message names every problem (folder, source, pattern or file) and
      `SceneError.problems` lists them.
  """
  patterns = {**DEFAULT_PATTERNS, **(patterns or {})}
  overrides = dict(overrides or {})
  unknown = sorted((set(names) | set(overrides)) - set(SOURCE_SPECS))
  if unknown:
    message = (f"unknown source(s) {unknown}; scene sources are "
               f"{sorted(SOURCE_SPECS)}.")
    raise SceneError(message, [message])
  where, files = ("no scene", []) if scene is None else _scene_files(scene)
  found, problems = {}, []
  for name in names:
    if name in overrides:
      path = os.fspath(overrides[name])
    else:
      path, problem = _match(where, files, name, patterns[name])
      if problem:
        problems.append(problem)
        continue
    if paths_lib.is_remote(path) and stage is None:
      problems.append(f"source {name!r}: {path} is on object storage; this "
                      f"reader takes local files only")
      continue
    try:
      if stage is not None:
        path = stage.local(path)
      io.open_raster(path, expected_bands=SOURCE_SPECS[name].bands).close()
    except (OSError, io.RasterError) as error:
      problems.append(f"source {name!r}: {error}")
      continue
    found[name] = path
  if problems:
    raise SceneError(
        f"{len(problems)} problem(s) with the sources of {where}"
        + (f" ({hint})" if hint else "") + ":\n  " + "\n  ".join(problems),
        problems)
  return found


def check_class_map(class_map: Mapping[int, int] | None
                    ) -> dict[int, int] | None:
  """The class_map as {int: int}, every class in [0, NUM_LULC_CLASSES).

  Raises:
    ValueError: a code or class that is not a whole number, or a class
      outside the land-cover class table.
  """
  if class_map is None:
    return None
  result = {}
  for code, target in dict(class_map).items():
    if not all(float(v) == int(float(v)) for v in (code, target)):
      raise ValueError(f"class_map: codes and classes are whole numbers, got "
                       f"{code!r}: {target!r}.")
    if not 0 <= int(target) < NUM_LULC_CLASSES:
      raise ValueError(
          f"class_map maps code {code!r} to class {target!r}, outside the "
          f"{NUM_LULC_CLASSES} land-cover classes 0..{NUM_LULC_CLASSES - 1} "
          f"({', '.join(bands.DYNAMIC_WORLD_CLASSES)}).")
    result[int(code)] = int(target)
  if not result:
    raise ValueError("class_map is empty; leave it out to read the codes as "
                     "classes.")
  return result


def remap_classes(values: np.ndarray, valid: np.ndarray,
                  class_map: Mapping[int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
  """(classes, valid) of file codes: each code mapped by `class_map`; codes
  it lacks become invalid (0)."""
  codes = np.asarray(values).astype(np.int64)
  known = np.isin(codes, np.fromiter(class_map, np.int64)) & valid
  mapped = np.zeros(codes.shape, np.int64)
  for code, target in class_map.items():
    mapped[codes == code] = target
  return np.where(known, mapped, 0), known


class SceneReader:
  """Windows of a scene's sources on one reference grid.

  Use as a context manager: the files stay open between windows.

  Attributes:
    sources: {source name: `align.Source`}, in the order of `paths`.
    grid: the `align.ReferenceGrid` every window is read on.
  """

  def __init__(self, paths: Mapping[str, str], *,
               grid: align.ReferenceGrid | None = None, crs=None,
               resolution: float = 10.0,
               s2_scale: float = bands.S2_REFLECTANCE_PER_DN,
               s1_units: str = "linear",
               class_map: Mapping[int, int] | None = None,
               dem_resolution: float | None = None):
    """Opens the sources (e.g. `find_sources`'s result).

    Args:
      paths: {source name: GeoTIFF path}, names from `SOURCE_SPECS`.
      grid: the grid to read on; by default the grid of the first source in
        `GRID_PREFERENCE` order (its CRS unless `crs` is given, its pixel
        lattice, `resolution`), over the common extent of all sources.
      crs, resolution: the default grid's CRS and pixel size.
      s2_scale: reflectance per DN of the optical sources.
      s1_units: 'linear' (sigma0, converted to dB) or 'db' (kept).
      class_map: {file code: class} of the land-cover ('labels') sources;
        None reads the codes as classes.
      dem_resolution: None computes the terrain bands on the grid (the DEM
        resampled to it first); a pixel size in CRS units (30.0 for the
        Copernicus GLO-30, RS-SPADE Sec. 2.1) computes them on a grid of
        that size and resamples them to this one (`rsjax.geo.coarse_terrain`).
    """
    if s1_units not in ("linear", "db"):
      raise ValueError(f"s1_units must be 'linear' or 'db', got "
                       f"{s1_units!r}.")
    if not paths:
      raise SceneError("no source to read.")
    unknown = sorted(set(paths) - set(SOURCE_SPECS))
    if unknown:
      raise SceneError(f"unknown source(s) {unknown}; scene sources are "
                       f"{sorted(SOURCE_SPECS)}.")
    self.s2_scale = float(s2_scale)
    self.s1_units = s1_units
    self.class_map = check_class_map(class_map)
    self.dem_resolution = (None if dem_resolution is None
                           else float(dem_resolution))
    self.sources = {
        name: align.Source(path, name=name,
                           categorical=SOURCE_SPECS[name].categorical,
                           expected_bands=SOURCE_SPECS[name].bands)
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

  def __enter__(self) -> SceneReader:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def _align(self, name: str, window: Window) -> align.AlignedArray:
    return align.align_window(self._datasets[name], self.sources[name],
                              self.grid, window, allow_empty=True)

  def _dem(self, name: str, window: Window) -> tuple[np.ndarray, np.ndarray]:
    if self.dem_resolution is not None:
      return coarse_terrain.read_terrain(
          lambda grid, coarse_window: align.align_window(
              self._datasets[name], self.sources[name], grid, coarse_window,
              allow_empty=True),
          self.grid, window, self.dem_resolution)
    halo = Window(window.col_off - 1, window.row_off - 1, window.width + 2,
                  window.height + 2)
    aligned = self._align(name, halo)
    elevation = aligned.data[0].astype(np.float32)
    res = self.grid.res
    derived = {"elevation": elevation,
               "slope": terrain.slope(elevation, res=res),
               "aspect": terrain.aspect(elevation, res=res),
               "hillshade": terrain.hillshade(elevation, res=res)}
    data = np.stack([derived[band][1:-1, 1:-1]
                     for band in bands.TERRAIN_BANDS], axis=-1)
    return data.astype(np.float32), coarse_terrain.erode3(aligned.valid)

  def read(self, window: Window) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({source name: array}, valid) on one window of the grid.

    Arrays are (rows, cols, channels) float32 for images and (rows, cols)
    uint8 for labels and masks; `valid` is (rows, cols) bool, True where every
    source has data. The window may reach past the grid (nodata there).
    """
    window = Window(int(window.col_off), int(window.row_off),
                    int(window.width), int(window.height))
    arrays, valid = {}, np.ones((window.height, window.width), bool)
    for name in self.sources:
      spec = SOURCE_SPECS[name]
      if spec.kind == "dem":
        data, source_valid = self._dem(name, window)
      else:
        aligned = self._align(name, window)
        source_valid = aligned.valid
        if spec.categorical:
          values = aligned.data[0]
          if spec.kind == "labels" and self.class_map is not None:
            values, source_valid = remap_classes(values, source_valid,
                                                 self.class_map)
          source_valid = source_valid & (values >= 0) & (
              values < spec.class_limit)
          data = np.where(source_valid, values, 0).astype(np.uint8)
        elif spec.kind == "optical":
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
