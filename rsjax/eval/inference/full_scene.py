"""Full-scene, georeferenced inference of a trained generator into a COG.

    python -m launch.infer --workdir W --scene scene_dir --output out.tif

  scene GeoTIFFs (any size, CRS, resolution; `rsjax.geo.scene.find_sources`;
  a scene folder or file on object storage, `gs://...`, is downloaded to a
  temporary folder first, `rsjax.store.staging`, and removed at the end)
  -> aligned on one reference grid and derived as the dataset builder's
     tiles are, by the same reader (SAR dB, DEM terrain with a halo, at the
     DEM resolution the run's dataset used, `terrain_resolution`;
     `rsjax.geo.scene.SceneReader`)
  -> overlapping T x T windows (`windows.WindowGrid`), a fixed batch of them
     per device call (the last batch padded), normalized, `predict`ed and
     turned back into physical units on device (`predictor.Predictor`)
  -> blended with a smooth weight that leaves no seam
     (`windows.StripAccumulator`), strip by strip
  -> encoded (uint16 reflectance x 10000, uint8 classes, float32) with nodata
     where any input is missing, streamed into a Cloud-Optimized GeoTIFF on
     the grid's CRS and transform, published only when complete
     (`cog_writer.CogWriter`). Its bands carry what GIS tools read: the
     declared band names and units of the output field, and the GDAL scale
     and offset back to those units (reflectance = DN x 0.0001; the
     `scale_factor` tag of earlier outputs is kept beside it).

Memory is bounded by a batch of windows and a few strips of accumulators
(T rows of the scene's width), never by the scene's height. Host reading of
batch k + 1 overlaps the device computing batch k.

Cloud removal with `composite=True` keeps the clear pixels of the cloudy input
(cloud_mask == 0, `COMPOSITE_INPUT`) and takes the generator's output under
clouds and shadows.

Guards: every input file is checked against the units it is declared in
(`--s2_scale`, `--s1_units`; `rsjax.geo.units`) as a dataset build checks
its scenes, so reflectance read as digital numbers or dB read as linear power
stops with the file, band and flag named. The scene is read on the pixel size the run was trained on (read from
its dataset's tiles, `training_grid`) unless told otherwise, and the grid is
refused (`grid_checks.GridError`) if its CRS is not in metres, if the
projection distorts the scene's scale by more than 5 %, or if its pixel size
is more than a factor 2 off the training one (`allow_resolution_mismatch`
overrides the last). An input band without a valid pixel over the grid is
refused before anything is predicted, and an output that would be nodata
everywhere is not published (`nodata_checks.NoDataError`, naming the file
and band or the output and why).

Every check (sources present, system and window size, overlap, output folder,
grid, input data) runs before any output file is created; the output check
runs before the finished raster would be published, and removes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Mapping, Sequence

import numpy as np
import rasterio
from rasterio.windows import Window

from rsjax import console
from rsjax.eval.inference import cog_writer
from rsjax.eval.inference import grid_checks
from rsjax.eval.inference import nodata_checks
from rsjax.eval.inference import predictor as predictor_lib
from rsjax.eval.inference import training_grid
from rsjax.eval.inference import windows as windows_lib
from rsjax.geo import bands as geo_bands
from rsjax.geo import scene as scene_lib
from rsjax.geo import units as geo_units
from rsjax.store import paths as paths_lib
from rsjax.store import staging

COMPOSITE_INPUT = "s2_cloudy"
CLOUD_MASK = "cloud_mask"
GDAL_CACHE_MB = 64   # block cache while reading and writing (see predict_scene)
DEFAULT_RESOLUTION = 10.0   # metres, where the run's training grid is unknown
LEGACY_SCALE_TAG = "scale_factor"   # reflectance per DN, a dataset tag
# How inference is told the units of its inputs (launch.infer's flags).
UNITS_OPTIONS = geo_units.UnitsOptions(
    names={"optical": "--s2_scale", "sar": "--s1_units"},
    values={"optical": {"dn": f"--s2_scale={geo_bands.S2_REFLECTANCE_PER_DN:g}",
                        "reflectance": "--s2_scale=1"},
            "sar": {"db": "--s1_units=db", "linear": "--s1_units=linear"}},
    verb="pass", where="to launch.infer")


def s2_units_of_scale(s2_scale: float) -> str:
  """The units an S2 file read with `s2_scale` reflectance per value holds:
  'reflectance' at 1, else digital numbers."""
  return "reflectance" if s2_scale == 1 else "dn"


@dataclasses.dataclass(frozen=True)
class InferenceStats:
  """What a run did: sizes, time, and the memory bound it kept."""
  path: str
  height: int
  width: int
  windows: int
  batches: int
  seconds: float
  peak_accumulator_rows: int     # rows of the scene's width held at once

  @property
  def megapixels_per_second(self) -> float:
    return self.height * self.width / 1e6 / max(self.seconds, 1e-9)


class _Silent:
  """A `console.Progress` that logs nothing (--noprogress)."""

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    pass

  def update(self, done: int) -> None:
    del done


def check_composite(fields: Sequence[str], spec) -> None:
  """ValueError unless a composite can keep clear input pixels as they are."""
  if COMPOSITE_INPUT not in fields or spec.kind != "reflectance":
    raise ValueError(
        f"--composite keeps the clear pixels of {COMPOSITE_INPUT!r}: it needs "
        f"a cloud-removal generator that reads {COMPOSITE_INPUT!r} and "
        f"predicts optical reflectance; this one reads {list(fields)} and "
        f"predicts {spec.field!r}.")


def _read_batch(inputs: scene_lib.SceneReader, origins, window: int,
                batch_size: int, fields: Sequence[str]):
  """({field: (batch_size, T, T, ...)}, [(T, T) valid], [{field: window}]).

  Windows of one strip are read as one block of rows; the batch is padded
  with zeros to `batch_size`, so every call has the same shape.
  """
  by_row: dict[int, list[int]] = {}
  for row, col in origins:
    by_row.setdefault(row, []).append(col)
  arrays, valids = [], []
  for row, cols in by_row.items():
    block = Window(cols[0], row, cols[-1] + window - cols[0], window)
    data, valid = inputs.read(block)
    for col in cols:
      cut = (slice(None), slice(col - cols[0], col - cols[0] + window))
      arrays.append({name: data[name][cut] for name in fields})
      valids.append(valid[cut])
  batch = {name: np.stack([a[name] for a in arrays]) for name in fields}
  pad = batch_size - len(arrays)
  if pad:
    batch = {name: np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
             for name, x in batch.items()}
  if "valid" in fields:
    batch["valid"] = np.zeros((batch_size, window, window), np.uint8)
    batch["valid"][:len(valids)] = np.stack(valids)
  return batch, valids, arrays


def predict_scene(predictor, inputs: scene_lib.SceneReader,
                  output: str | os.PathLike, *, window: int = 256,
                  overlap: int = 64, batch_size: int = 8,
                  composite: bool = False, progress: bool = True,
                  tags: Mapping[str, str] | None = None,
                  gdal_cache_mb: int | None = GDAL_CACHE_MB) -> InferenceStats:
  """Runs `predictor` over the whole grid of `inputs` into a COG at `output`.

  `predictor` is a `predictor.Predictor` (or anything with its `fields`,
  `spec` and call signature: a batch of physical fields -> (B, T, T, C)
  physical predictions). `tags` are written as the COG's dataset metadata,
  beside the band metadata of `predictor.spec`. `gdal_cache_mb` caps GDAL's
  raster block cache during the run (None: GDAL's default, 5 % of RAM, which
  the reads of a big scene and the COG copy fill).
  """
  windows_lib.check_window(window, overlap)
  spec = predictor.spec
  fields = tuple(predictor.fields)
  read_fields = tuple(f for f in fields if f not in
                      scene_lib.DERIVED_FIELDS)
  if composite:
    check_composite(fields, spec)
    read_fields += (CLOUD_MASK,)
  missing = sorted(set(read_fields) - set(inputs.sources))
  if missing:
    raise scene_lib.SceneError(f"the scene inputs lack {missing}.")
  cog_writer.check_output_path(output)
  nodata_checks.check_inputs_have_data(inputs, read_fields)
  grid = inputs.grid
  window_grid = windows_lib.WindowGrid(grid.height, grid.width, window,
                                       overlap)
  accumulator = windows_lib.StripAccumulator(window_grid, spec.channels)
  origins = window_grid.windows()
  last_col = window_grid.col_origins[-1]
  batches = [origins[i:i + batch_size]
             for i in range(0, len(origins), batch_size)]
  profile = grid.profile(count=spec.count, dtype=spec.dtype,
                         nodata=spec.nodata)
  bands = list(spec.bands) if spec.bands is not None else slice(None)
  tags = dict(tags or {})
  if spec.kind == "reflectance":   # what outputs carried before GDAL's scale
    tags[LEGACY_SCALE_TAG] = str(spec.scales[0])

  pixels = {"valid_inputs": 0, "written": 0}

  def consume(batch_origins, result, valids, arrays, writer):
    values = np.asarray(result, np.float32)
    for index, (row, col) in enumerate(batch_origins):
      prediction = values[index]
      if composite:
        clear = arrays[index][CLOUD_MASK] == 0
        cloudy = arrays[index][COMPOSITE_INPUT][..., bands]
        prediction = np.where(clear[..., None], cloudy, prediction)
      accumulator.add(row, col, prediction, valids[index])
      if col == last_col:
        top = accumulator.top
        blended, valid = accumulator.finish_rows(
            window_grid.rows_done_after(row))
        pixels["valid_inputs"] += int(valid.sum())
        valid &= np.isfinite(blended).all(axis=-1)   # NaN / inf: nodata
        pixels["written"] += int(valid.sum())
        blended = np.where(valid[..., None], blended, 0.0)
        writer.write_rows(top, spec.encode(blended, valid))

  start = time.perf_counter()
  bar = (console.Progress("inference", len(origins), "windows") if progress
         else _Silent())
  done = 0
  gdal_env = (rasterio.Env(GDAL_CACHEMAX=int(gdal_cache_mb) * 2**20)
              if gdal_cache_mb else contextlib.nullcontext())
  with bar:
    with gdal_env, cog_writer.CogWriter(
        output, profile, resampling=spec.overview_resampling,
        descriptions=spec.descriptions, units=spec.units, scales=spec.scales,
        offsets=spec.offsets, colormap=spec.colormap, tags=tags) as writer:
      pending = None
      for batch_origins in batches:
        batch, valids, arrays = _read_batch(inputs, batch_origins, window,
                                            batch_size, read_fields)
        result = predictor({name: batch[name] for name in fields})
        if pending is not None:
          consume(*pending, writer)
          done += len(pending[0])
          bar.update(done)
        pending = (batch_origins, result, valids, arrays)
      consume(*pending, writer)
      bar.update(done + len(pending[0]))
      if pixels["written"] == 0:     # raised inside: nothing is published
        raise nodata_checks.empty_output_error(output, read_fields,
                                               pixels["valid_inputs"])
  return InferenceStats(
      path=paths_lib.absolute(output), height=grid.height,
      width=grid.width, windows=len(origins), batches=len(batches),
      seconds=time.perf_counter() - start,
      peak_accumulator_rows=accumulator.peak_rows)


def terrain_resolution(trained: training_grid.TrainingGrid,
                       grid) -> float | None:
  """The pixel size to derive a scene's terrain bands at: the run's tiles'
  (`TrainingGrid.terrain_resolution`, e.g. RS-SPADE's 30 m DEM) where it is
  coarser than the inference grid, else None (on the grid, as at 10 m the
  tiles of a 30 m grid would be)."""
  coarse = trained.terrain_resolution
  if coarse is None or coarse <= max(abs(grid.res[0]), abs(grid.res[1])):
    return None
  return coarse


def infer(workdir: str | os.PathLike, scene, output: str | os.PathLike, *,
          window: int = 256, overlap: int = 64, batch_size: int = 8,
          composite: bool = False, sources: Mapping[str, str] | None = None,
          expect_system: str | None = None, crs=None,
          resolution: float | None = None,
          allow_resolution_mismatch: bool = False,
          s2_scale: float = geo_bands.S2_REFLECTANCE_PER_DN,
          s1_units: str = "linear", progress: bool = True) -> InferenceStats:
  """Restores the run in `workdir` and writes its prediction for `scene`.

  Args:
    workdir: a training workdir (config.json + checkpoints).
    scene: a scene folder or GeoTIFF paths (see
      `rsjax.geo.scene.find_sources`); None if `sources` names every file.
    output: the COG to write (replaced atomically when complete).
    window, overlap, batch_size: the sliding windows and how many per call.
    composite: cloud removal: keep the clear pixels of the cloudy input.
    sources: {source name: path} overriding files of the scene.
    expect_system: refuse a workdir of another `config.system`.
    crs, resolution: the reference grid: its CRS (default: the finest
      source's) and pixel size in metres (default: the pixel size of the
      run's training tiles, `training_grid.of_run`; 10 m where unknown).
    allow_resolution_mismatch: run on a pixel size more than a factor 2 off
      the training one, with a warning instead of a `GridError`.
    s2_scale, s1_units: input units, as the dataset builder's config:
      every band of every input file is checked against them (and land
      cover against the class table) before the checkpoint is restored
      (`rsjax.geo.units.check_sources`; each file is read once more for it).

  Raises:
    rsjax.geo.units.UnitsError: an input file whose values its declared
      units cannot hold (e.g. reflectance read with the DN scale, dB read
      as linear power), naming the file, band and the flag that reads it.
    grid_checks.GridError: a grid CRS not in metres, one that distorts the
      scene's scale, or a pixel size far from the training one.
    nodata_checks.NoDataError: an input band without data over the grid, or
      an output that would be nodata everywhere.
    Besides those of `find_sources`, `load_predictor` and `predict_scene`.
    Every check but the output's runs before anything is predicted, the
    grid's before the checkpoint is restored; none leaves an output file.
  """
  windows_lib.check_window(window, overlap)
  cog_writer.check_output_path(output)
  with staging.Stage() as stage:
    crs_flag = (f"--crs {crs}" if crs is not None
                else "the scene's CRS (the default; pass --crs to choose)")
    paths, grids, terrain = {}, [], []

    def find_scene_sources(system, spec):
      names = [f for f in system.predict_fields
               if f not in scene_lib.DERIVED_FIELDS]
      if composite:
        check_composite(system.predict_fields, spec)
        names.append(CLOUD_MASK)
      paths.update(scene_lib.find_sources(
          scene, names, overrides=sources,
          hint="pass --source NAME=PATH for a file kept elsewhere",
          stage=stage))
      geo_units.check_sources(paths, s2_units=s2_units_of_scale(s2_scale),
                              s1_units=s1_units, options=UNITS_OPTIONS)
      if crs is not None:   # before the grid: 10-degree pixels cover nothing
        grid_checks.check_metric_crs(
            crs, flag=crs_flag,
            lonlat=grid_checks.raster_centre(next(iter(paths.values()))))
      trained = training_grid.of_run(system.config)
      with scene_lib.SceneReader(
          paths, crs=crs, resolution=(
              resolution if resolution is not None
              else trained.resolution or DEFAULT_RESOLUTION)) as inputs:
        grid_checks.check_grid(
            inputs.grid, trained, crs_flag=crs_flag,
            allow_resolution_mismatch=allow_resolution_mismatch)
        grids.append(inputs.grid)
        terrain.append(terrain_resolution(trained, inputs.grid))

    predictor = predictor_lib.load_predictor(
        workdir, window=window, batch_size=batch_size,
        expect_system=expect_system, before_restore=find_scene_sources)
    tags = {"rsjax_workdir": paths_lib.absolute(workdir),
            "rsjax_step": str(predictor.step),
            "rsjax_system": str(predictor.config.get("system")),
            "rsjax_output_field": predictor.spec.field}
    with scene_lib.SceneReader(paths, grid=grids[0], s2_scale=s2_scale,
                               s1_units=s1_units,
                               dem_resolution=terrain[0]) as inputs:
      logging.info("grid %s, %dx%d pixels of %s; %s", inputs.grid.crs,
                   inputs.grid.width, inputs.grid.height, inputs.grid.res,
                   {name: os.path.basename(p) for name, p in paths.items()})
      return predict_scene(predictor, inputs, output, window=window,
                           overlap=overlap, batch_size=batch_size,
                           composite=composite, progress=progress, tags=tags)
