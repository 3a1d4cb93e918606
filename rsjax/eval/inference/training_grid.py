"""What a trained run knows about the pixel grid of the tiles it learned from.

A workdir's config.json (`rsjax.store.run_config`) names the data the run
read, not the grid; the grid is in the data. Tiles of the rs_multisource
dataset and of SEN12MS(-CR) carry the `crs` (WKT) and `transform` (affine a,
b, c, d, e, f) of their pixels (`rsjax.data.fields`), so the first example of
the run's training split (`config.data.name` in `config.data.data_dir`,
`config.data.split`) says the pixel size: the lengths of the transform's
column vector (a, d) and row vector (b, e), in CRS units, in metres where the
CRS is projected in metres. Runs on `train_arrays` read rows of that same
dataset (real tiles and generated copies on their grids), so the dataset
answers for them too.

The terrain bands of the tiles (slope, aspect, hillshade) may have been
computed at the DEM's own pixel size and resampled to the grid (rs_multisource
`dem_resolution`, RS-SPADE's 30 m); the dataset's metadata
(`terrain_resolution`) or its builder config says so, and inference derives
the terrain of a scene the same way.

A run knows no grid (`TrainingGrid.resolution` is None, `source` says why)
when it trained on random in-memory tiles (`data.source='memory'`), on a
dataset whose examples have no `transform`, or on one that is not found in
its data_dir on this machine. Callers then do not check the resolution, with
a warning.
"""

from __future__ import annotations

import dataclasses
import math

from rasterio.crs import CRS

from rsjax.data import pipeline


@dataclasses.dataclass(frozen=True)
class TrainingGrid:
  """The grid of a run's tiles, as far as it is known.

  Attributes:
    resolution: pixel size in metres (the larger of the two axes'), or None
      when the run knows none.
    crs: the CRS of the tile read, or None.
    source: where it was read ('dataset NAME in DIR, split S, example 0'),
      or why nothing is known.
    terrain_resolution: the pixel size (CRS units) the tiles' terrain bands
      were computed at, or None: on the tiles' grid (or unknown).
  """
  resolution: float | None
  crs: CRS | None
  source: str
  terrain_resolution: float | None = None


def from_tile(crs_wkt: str | bytes, transform, source: str) -> TrainingGrid:
  """The grid of one tile's `crs` (WKT) and `transform` (a, b, c, d, e, f)."""
  if isinstance(crs_wkt, bytes):
    crs_wkt = crs_wkt.decode()
  crs = CRS.from_wkt(crs_wkt)
  a, b, _, d, e, _ = (float(value) for value in transform[:6])
  if not crs.is_projected:
    return TrainingGrid(None, crs, f"{source}: its tiles are in the "
                        f"geographic CRS {crs.to_string()}, not in metres")
  metres = crs.linear_units_factor[1]
  resolution = max(math.hypot(a, d), math.hypot(b, e)) * metres
  return TrainingGrid(resolution, crs, source)


def terrain_resolution(builder) -> float | None:
  """The pixel size a dataset's terrain bands were computed at (None: on
  its grid): its metadata's `terrain_resolution`, else its builder config's
  `dem_resolution` (rs_multisource datasets built before the metadata)."""
  metadata = builder.info.metadata or {}
  if "terrain_resolution" in metadata:
    value = metadata["terrain_resolution"]
  else:
    value = getattr(builder.builder_config, "dem_resolution", None)
  return None if value is None else float(value)


def _first_example(tfds, builder, split: str) -> dict:
  """Example 0 of a split: by random access, or the first TFRecord read."""
  try:
    return builder.as_data_source(split)[0]
  except NotImplementedError:  # TFRecord files: read sequentially
    return next(iter(tfds.as_numpy(builder.as_dataset(split=split).take(1))))


def of_run(config) -> TrainingGrid:
  """The grid a run's config says it trained on (see the module docstring)."""
  data = config.data
  if data.get("source", "tfds") == "memory":
    return TrainingGrid(None, None, "it trained on random in-memory tiles "
                        "(data.source='memory'), which have no grid")
  name, data_dir = data.name, data.get("data_dir")
  split = data.get("split", "train")
  where = f"dataset {name!r} in {data_dir}"
  tfds = pipeline.import_tfds()
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except (ValueError, OSError) as error:  # tfds' DatasetNotFoundError is one
    return TrainingGrid(None, None, f"{where} cannot be opened here: "
                        f"{type(error).__name__}: "
                        f"{str(error).strip().splitlines()[0]}")
  if split not in builder.info.splits:
    return TrainingGrid(None, None, f"{where} has no split {split!r} here "
                        "(not built on this machine?)")
  missing = sorted({"crs", "transform"} - set(builder.info.features.keys()))
  if missing:
    return TrainingGrid(None, None, f"{where}: its tiles have no {missing}")
  example = _first_example(tfds, builder, split)
  return dataclasses.replace(
      from_tile(example["crs"], example["transform"],
                f"{where}, split {split!r}, example 0"),
      terrain_resolution=terrain_resolution(builder))
