"""rs_multisource: registered Sentinel-2 / Sentinel-1 / LULC / DEM tiles.

The dataset of the multi-source generation papers: for each tile of a scene,
every source resampled onto the Sentinel-2 10 m grid (`rsjax.geo.scene`), SAR
in dB, terrain derivatives of the DEM, tiles with too much nodata dropped, and
a spatially blocked 7:2:1 train/validation/test split (RS-SPADE Sec. 3.2).

As RS-SPADE builds it (rs_spade_multisource_fusion): S2 and S1 at 10 m, the
Copernicus DEM with its terrain bands at 30 m (Sec. 2.1): the `geotiff`
config computes elevation, slope, aspect and hillshade on a 30 m grid and
resamples them bilinearly to the 10 m one (`dem_resolution=30.0`,
`rsjax.geo.coarse_terrain`; the paper names no resampling method). The
synthetic configs keep the terrain of the 10 m grid (`dem_resolution=None`,
as in 1.1.0) so their tiles and the numbers measured on them stay as they
were. Land cover is Dynamic World V1's 'label' band, its 9 classes 0..8
(Sec. 2.1, 3.2); the paper's list of class names and codes 1..9 (Sec. 3.2:
"no data" 1, water 2, forest 3, ... snow and ice 9) is not Dynamic World's
table (it lacks trees, crops, shrub and built), so rsjax keeps Dynamic
World's own; files holding other codes take a `class_map`. The paper's
augmentation experiment (Sec. 4.2) uses 1558 training tiles and another 1558
as validation and test, a split rsjax does not reproduce by count: its
splits are the 7:2:1 of Sec. 3.2 (`split_ratios`).

Before any tile is read, every band of every file is checked against the
units the config declares (`s2_units`, `s1_units`, the land-cover class table
or `class_map`; `source_units`, `rsjax.geo.units`): a file that cannot hold
them stops the build with an error naming the file, band, observed range and
the setting that would accept it. A scene with a file without any valid pixel
yields no tile and is named in the report.

Small areas: with at least 3 tiles every split gets one, the spatial blocks
shrinking as needed (`splits.plan_splits`); with fewer, the build stops
before writing anything, saying how many tiles it found and the smallest
scene that works. Every build writes `build_report.json` into the dataset's
version folder and prints its summary (`build_report`): scenes read, tiles
kept and dropped per reason, splits per scene and block against 7:2:1, the
land-cover class histogram and the value ranges per band of each source.

Scale-out: given Beam options or a Beam runner in the download config
(`tfds build ... --beam_pipeline_options=runner=...`), the tiles are read and
written on Apache Beam's workers, a few tiles of a scene per work item
(`tile_examples`, the function the plain build loops over;
`data_builders.example_generation`); scenes, units checks, the nodata filter
and the split plan stay in this process, which reads every tile once for the
filter. The report's classes and ranges are combined on the workers
(`data_builders.example_statistics`) and equal the plain build's. Synthetic scenes are
written to a local temporary folder, so they build on Beam only with workers
on this machine (DirectRunner).

Configs:
  geotiff: scene folders you export (e.g. from Earth Engine) into manual_dir;
    see `MANUAL_DOWNLOAD_INSTRUCTIONS`.
  synthetic: scenes written by `rsjax.geo.synthetic.make_scene` into a
    temporary folder, then the same path as `geotiff`; builds offline in about
    a minute on a CPU. Includes clouds, a second date and a coarse image.
  synthetic_tiny: the same with 64-pixel tiles of two small scenes; builds in
    seconds (tests).

Features (T = `tile_size`; "invalid" pixels hold 0, see `valid`), as
declared in `rsjax.data.fields` (`data_builders.field_features`):
  s2          (T, T, 4) float32  S2 B2, B3, B4, B8 reflectance (DN / 10000)
  s1          (T, T, 2) float32  S1 VV, VH backscatter in dB
  lulc        (T, T)    uint8    Dynamic World class 0..8 (water, trees, grass,
                                 flooded_vegetation, crops, shrub_and_scrub,
                                 built, bare, snow_and_ice)
  dem         (T, T, 4) float32  elevation (m), slope (deg), aspect (deg
                                 clockwise from north), hillshade [0, 1]
                                 (sun azimuth 315, altitude 45), Horn 3x3
  valid       (T, T)    uint8    1 where every source of the example has data
  s2_cloudy   (T, T, 4) float32  [clouds] cloudy S2 reflectance
  cloud_mask  (T, T)    uint8    [clouds] 0 clear, 1 cloud, 2 cloud shadow
  s2_t2, s1_t2, lulc_t2          [second_date] as s2, s1, lulc
  s2_coarse   (T, T, 4) float32  [coarse] low-resolution optical reflectance,
                                 bilinear onto the 10 m tile grid
  scene_id    Text               scene folder name
  crs         Text               WKT of the tile's CRS
  transform   (6,) float64       affine (a, b, c, d, e, f) of the tile's pixels
  tile_row, tile_col  int32      the tile's position in its scene's tiling
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import tempfile
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath

from data_builders import example_generation
from data_builders import example_statistics
from data_builders import field_features
from rsjax import console
from rsjax.data import fields as fields_lib
from rsjax.geo import bands as geo_bands
from rsjax.geo import scene as geo_scene
from rsjax.geo import tiles as geo_tiles

from . import build_report as build_report_lib
from . import scenes as scenes_lib
from . import source_units
from . import splits as splits_lib

log = logging.getLogger(__name__)

try:  # TensorFlow only feeds data: keep it off the accelerators.
  tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # Devices were initialised already.
  pass

CLASS_NAMES = fields_lib.class_names("lulc")
SPLITS = geo_tiles.SPLITS
# One tile per split at least: TFDS cannot write an empty split.
MIN_TILES = len(SPLITS)
# Tiles of one scene per work item (`tile_examples`): the unit a Beam worker
# takes, and how often a reader opens and aligns a scene's files.
TILES_PER_ITEM = 16

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Place one folder per scene directly in manual_dir (the folder name becomes the
scene_id). Each scene folder holds these GeoTIFFs (names are the default
`patterns`; any CRS, resolution and extent, they are aligned onto the
Sentinel-2 grid and cropped to the common extent):

  s2.tif    Sentinel-2 L2A surface reflectance, 4 bands B2, B3, B4, B8 in this
            order, DN = reflectance x 10000 (Earth Engine
            COPERNICUS/S2_SR_HARMONIZED, 10 m, in the scene's UTM zone); for
            float reflectance 0..1 build with s2_units='reflectance'.
  s1.tif    Sentinel-1 GRD IW, 2 bands VV, VH. Linear sigma0 by default (Earth
            Engine COPERNICUS/S1_GRD_FLOAT); for dB (COPERNICUS/S1_GRD) build
            with a config whose s1_units='db'.
  lulc.tif  Dynamic World V1 'label' band: 1 band, class 0..8. Other class
            codes (e.g. ESA WorldCover 10, 20, ...) need a class_map
            {code: Dynamic World class} in the config.
  dem.tif   Copernicus DEM GLO-30 (COPERNICUS/DEM/GLO30 'DEM'), 1 band, metres;
            EPSG:4326 is fine (slope etc. are computed after alignment). Export
            it a few pixels larger than the scene so edge tiles keep slopes.

Configs with optional features also need, per scene: s2_cloudy.tif +
cloud_mask.tif (0 clear, 1 cloud, 2 shadow) for 'clouds'; s2_t2.tif, s1_t2.tif,
lulc_t2.tif for 'second_date'; s2_coarse.tif (4 bands, any coarser resolution)
for 'coarse'. Nodata must be set in the files (or NaN); pixels without data are
masked, and tiles with more than max_nodata_fraction of them are dropped.

Large areas build on Apache Beam (a cluster, or DirectRunner here): name the
builder by module, and put manual_dir on a file system mounted at the same
path on every worker (it is listed with os.scandir; data_dir may be gs://):
  tfds build rs_multisource/geotiff \\
    --imports data_builders.rs_multisource.rs_multisource_dataset_builder \\
    --manual_dir=<shared scenes> --data_dir=<data_dir> \\
    --beam_pipeline_options=runner=DataflowRunner,project=<p>,region=<r>,\\
temp_location=gs://<bucket>/tmp,setup_file=<rsjax>/pyproject.toml
"""


@dataclasses.dataclass(kw_only=True)
class RsMultisourceConfig(tfds.core.BuilderConfig):
  """How scenes are found, tiled, filtered and split.

  Attributes:
    source: 'geotiff' (scene folders in manual_dir) or 'synthetic'.
    tile_size: tile side in pixels of the 10 m grid.
    stride: step between tiles; tile_size (no overlap) if None.
    max_nodata_fraction: tiles with a larger fraction of pixels where any
      source lacks data are dropped.
    split_ratios: relative sizes of train, validation, test.
    block_size: side of the spatial split blocks in pixels; 2 * tile_size if
      None. All tiles of a block go to the same split.
    seed: split assignment (and synthetic scenes).
    resolution: grid pixel size in metres.
    s2_units: what the optical files hold: 'dn' (digital numbers, scaled
      by s2_scale) or 'reflectance' (0..1, kept).
    s2_scale: reflectance per DN of the optical images.
    s1_units: 'linear' (sigma0, converted to dB) or 'db' (kept).
    class_map: {file code: Dynamic World class 0..8} of the land-cover
      files, e.g. {10: 1, 20: 5, ...} for ESA WorldCover; every code in the
      files must be a key. None: the files hold the classes.
    optional: feature groups to include: 'clouds', 'second_date', 'coarse'.
    dem_resolution: pixel size (grid CRS units) the terrain bands are
      computed at before being resampled to the grid; None computes them on
      the grid. 30.0 for the Copernicus GLO-30 as RS-SPADE uses it (Sec.
      2.1; `rsjax.geo.coarse_terrain`).
    patterns: {source name: file-name glob in a scene folder}; sources left
      out keep `rsjax.geo.scene.DEFAULT_PATTERNS` ('<name>.tif').
    num_scenes, scene_size, scene_options: synthetic only: how many scenes,
      their size in pixels, and keyword arguments for `make_scene`.
  """
  source: str = "geotiff"
  tile_size: int = 256
  stride: int | None = None
  max_nodata_fraction: float = 0.01
  split_ratios: tuple[float, float, float] = (7.0, 2.0, 1.0)
  block_size: int | None = None
  seed: int = 0
  resolution: float = 10.0
  s2_units: str = "dn"
  s2_scale: float = geo_bands.S2_REFLECTANCE_PER_DN
  s1_units: str = "linear"
  class_map: Mapping[int, int] | None = None
  optional: tuple[str, ...] = ()
  dem_resolution: float | None = None
  patterns: Mapping[str, str] = dataclasses.field(default_factory=dict)
  num_scenes: int = 0
  scene_size: int = 0
  scene_options: Mapping[str, object] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.source not in ("geotiff", "synthetic"):
      raise ValueError(f"config {self.name!r}: source must be 'geotiff' or "
                       f"'synthetic', got {self.source!r}.")
    if self.s1_units not in ("linear", "db"):
      raise ValueError(f"config {self.name!r}: s1_units must be 'linear' or "
                       f"'db', got {self.s1_units!r}.")
    if self.s2_units not in ("dn", "reflectance"):
      raise ValueError(f"config {self.name!r}: s2_units must be 'dn' or "
                       f"'reflectance', got {self.s2_units!r}.")
    try:
      geo_scene.check_class_map(self.class_map)
    except ValueError as error:
      raise ValueError(f"config {self.name!r}: {error}") from error
    scenes_lib.source_names(self.optional)  # Raises for unknown groups.
    unknown = sorted(set(self.patterns) - set(geo_scene.SOURCE_SPECS))
    if unknown:
      raise ValueError(f"config {self.name!r}: patterns for unknown sources "
                       f"{unknown}; valid: {sorted(geo_scene.SOURCE_SPECS)}.")
    if self.dem_resolution is not None and not (
        self.dem_resolution >= self.resolution):
      raise ValueError(f"config {self.name!r}: dem_resolution "
                       f"{self.dem_resolution!r} must be None or at least "
                       f"the grid's resolution {self.resolution}.")
    if self.source == "synthetic" and (self.num_scenes < 1
                                       or self.scene_size < self.tile_size):
      raise ValueError(f"config {self.name!r}: a synthetic config needs "
                       "num_scenes >= 1 and scene_size >= tile_size.")

  @property
  def sources(self) -> tuple[str, ...]:
    return scenes_lib.source_names(self.optional)

  @property
  def all_patterns(self) -> dict[str, str]:
    return {**geo_scene.DEFAULT_PATTERNS, **self.patterns}

  @property
  def units(self) -> dict[str, str]:
    """{source: the units its files are declared in}."""
    return {name: source_units.declared_units(
        name, s2_units=self.s2_units, s1_units=self.s1_units)
            for name in self.sources}

  @property
  def reflectance_per_value(self) -> float:
    """What an optical file's value is multiplied by to give reflectance."""
    return self.s2_scale if self.s2_units == "dn" else 1.0


_SYNTHETIC_ALL = ("clouds", "second_date", "coarse")
_SYNTHETIC_SCENE = {"change_fraction": 0.2, "coarse_ratio": 3,
                    "cloud_coverage": 0.3}

PAPER_DEM_RESOLUTION = 30.0
"""RS-SPADE Sec. 2.1: the DEM and its terrain data at 30 m (COP-DEM GLO-30)."""

GEOTIFF = RsMultisourceConfig(
    name="geotiff", source="geotiff", dem_resolution=PAPER_DEM_RESOLUTION,
    description="Scene folders exported by the user into manual_dir; "
                "terrain at the DEM's 30 m, resampled to 10 m.")
SYNTHETIC = RsMultisourceConfig(
    name="synthetic", source="synthetic", optional=_SYNTHETIC_ALL,
    num_scenes=7, scene_size=1040, block_size=512,
    scene_options=_SYNTHETIC_SCENE,
    description="7 synthetic 1040x1040 scenes at 10 m (offline), 112 tiles.")
SYNTHETIC_TINY = RsMultisourceConfig(
    name="synthetic_tiny", source="synthetic", optional=_SYNTHETIC_ALL,
    tile_size=64, num_scenes=2, scene_size=272, block_size=128,
    scene_options=_SYNTHETIC_SCENE,
    description="2 synthetic 272x272 scenes, 64-pixel tiles (tests).")


def feature_names(config: RsMultisourceConfig) -> tuple[str, ...]:
  """The fields a config writes: valid, its sources, the tile metadata."""
  return ("valid", *config.sources, *fields_lib.fields_of_kind("metadata"))


def features_dict(config: RsMultisourceConfig) -> tfds.features.FeaturesDict:
  """The features of a config, as `rsjax.data.fields` declares them."""
  return tfds.features.FeaturesDict(field_features.features(
      feature_names(config), config.tile_size))


def write_synthetic_scenes(config: RsMultisourceConfig, root: str) -> None:
  """Writes `config.num_scenes` scene folders into `root` (make_scene)."""
  from rsjax.geo import synthetic  # JAX is only needed for synthetic configs.

  with console.Progress("generating synthetic scenes", config.num_scenes,
                        "scenes") as progress:
    for index in range(config.num_scenes):
      # Scenes side by side 50 km apart, each its own world (seed).
      center = (500_000.0 + 50_000.0 * index, 5_190_000.0)
      options = {"center": center, **config.scene_options}
      synthetic.make_scene(config.seed * 1000 + index,
                           os.path.join(root, f"synthetic_{index:03d}"),
                           size=config.scene_size, **options)
      progress.update(index + 1)


def scene_reader(scene: scenes_lib.Scene, config: RsMultisourceConfig,
                 ) -> geo_scene.SceneReader:
  """The reader of a scene's sources on its S2 grid, in the config's units."""
  return geo_scene.SceneReader(scene.paths, resolution=config.resolution,
                               s2_scale=config.reflectance_per_value,
                               s1_units=config.s1_units,
                               class_map=config.class_map,
                               dem_resolution=config.dem_resolution)


def tile_examples(item: tuple[scenes_lib.Scene, tuple[geo_tiles.Tile, ...]],
                  *, config: RsMultisourceConfig):
  """The examples of a few tiles of one scene, keyed
  '<scene_id>/<row>_<col>' (plain and Beam builds alike: one reader, so the
  scene's files are opened and aligned once per item)."""
  scene, tiles = item
  with scene_reader(scene, config) as reader:
    crs = reader.grid.crs.to_wkt()
    for tile in tiles:
      arrays, valid = reader.read(tile.window)
      yield f"{scene.scene_id}/{tile.row:04d}_{tile.col:04d}", dict(
          arrays, valid=valid.astype(np.uint8), scene_id=scene.scene_id,
          crs=crs,
          transform=np.asarray(tuple(tile.transform)[:6], np.float64),
          tile_row=np.int32(tile.row), tile_col=np.int32(tile.col))


class Builder(tfds.core.GeneratorBasedBuilder):
  """Registered multi-source tiles (S2, S1, LULC, DEM + optional sources)."""

  VERSION = tfds.core.Version("1.2.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release.",
      "1.1.0": "Units checked before reading, build_report.json, small "
               "areas split; synthetic s2_coarse views the second date.",
      "1.2.0": "geotiff: terrain bands computed at the DEM's 30 m and "
               "resampled bilinearly to 10 m (RS-SPADE Sec. 2.1; "
               "dem_resolution); synthetic configs unchanged."}
  BUILDER_CONFIGS = [GEOTIFF, SYNTHETIC, SYNTHETIC_TINY]
  DEFAULT_BUILDER_CONFIG_NAME = "synthetic"
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

  # TFDS 4.9's default resolves this through the `importlib_resources`
  # backport, which it only requires on Python < 3.9; the file is right here.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features_dict(self.builder_config),
        homepage="https://github.com/rsjax/rsjax",
        # Read back by full-scene inference, which derives the terrain as
        # the tiles were (rsjax.eval.inference.training_grid).
        metadata=tfds.core.MetadataDict(
            terrain_resolution=self.builder_config.dem_resolution))

  def _scene_root(self, dl_manager) -> str:
    config = self.builder_config
    if config.source == "geotiff":
      return os.fspath(dl_manager.manual_dir)
    # Kept on the builder until it is collected: generation reads it lazily.
    self._synthetic_dir = tempfile.TemporaryDirectory(prefix="rs_multisource_")
    write_synthetic_scenes(config, self._synthetic_dir.name)
    return self._synthetic_dir.name

  def download_and_prepare(self, *args, **kwargs):
    """TFDS's build; then prints the build report of what it wrote."""
    self._report = None
    super().download_and_prepare(*args, **kwargs)
    if self._report is not None:
      log.info("%s", self._report.text(
          os.path.join(self.data_dir, build_report_lib.FILENAME)))

  _beam = False  # set per build by _download_and_prepare

  def _download_and_prepare(self, dl_manager, download_config):
    self._beam = example_generation.beam_requested(download_config)
    super()._download_and_prepare(dl_manager=dl_manager,
                                  download_config=download_config)
    if self._beam and getattr(self, "_report", None) is not None:
      for split in SPLITS:
        self._report.add_statistics(example_statistics.take_split_statistics(
            self.data_dir, split))
    if getattr(self, "_report", None) is not None:
      # self.data_dir is TFDS's temporary folder here: the report appears
      # with the dataset, or not at all.
      self._report.write(self.data_dir)

  def _new_report(self) -> build_report_lib.BuildReport:
    config = self.builder_config
    band_names = {}
    for name in config.sources:
      spec = geo_scene.SOURCE_SPECS[name]
      band_names[name] = (geo_bands.TERRAIN_BANDS if spec.kind == "dem"
                          else spec.band_names)
    return build_report_lib.BuildReport(
        config=config.name, tile_size=config.tile_size,
        ratios=tuple(config.split_ratios), units=config.units,
        band_names=band_names,
        labels=[n for n in config.sources
                if geo_scene.SOURCE_SPECS[n].kind == "labels"],
        class_names=CLASS_NAMES)

  def _split_generators(self, dl_manager):
    config = self.builder_config
    root = self._scene_root(dl_manager)
    scenes = scenes_lib.find_scenes(root, config.sources, config.all_patterns)
    report = self._new_report()
    empty = {}
    with console.Progress("checking source units", len(scenes),
                          "scenes") as progress:
      for index, scene in enumerate(scenes):
        ranges = source_units.check_scene(
            scene, s2_units=config.s2_units, s1_units=config.s1_units,
            class_map=config.class_map)
        report.add_file_ranges(ranges)
        empty[scene.scene_id] = source_units.empty_sources(scene, ranges)
        report.scene(scene.scene_id).empty_reason = empty[scene.scene_id]
        progress.update(index + 1)
    kept = {}
    with console.Progress("finding tiles", len(scenes), "scenes") as progress:
      for index, scene in enumerate(scenes):
        if empty[scene.scene_id]:
          log.warning("scene %s yields no tile: %s", scene.scene_id,
                      empty[scene.scene_id])
        else:
          kept[scene.scene_id] = self._kept_tiles(
              scene, report.scene(scene.scene_id))
        progress.update(index + 1)
    total = sum(len(tiles) for tiles in kept.values())
    if total < MIN_TILES:
      raise geo_scene.SceneError(self._too_few_tiles(root, total, report))
    block_size = config.block_size or 2 * config.tile_size
    plan = splits_lib.plan_splits(
        kept, block_size=block_size, step=config.stride or config.tile_size,
        ratios=config.split_ratios, seed=config.seed)
    counts = plan.counts
    missing = [split for split in SPLITS if not counts[split]]
    if missing:  # TFDS would stop with an AssertionError naming only the split
      raise geo_scene.SceneError(
          f"split(s) {missing} get no tile: the {total} tile(s) of "
          f"{config.tile_size} px in the scenes under {root} fall into "
          f"{len(plan.blocks)} spatial block(s) of {plan.block_size} px (the "
          f"smallest tried, from {block_size} px), which are never divided "
          f"(tiles per split: {counts}); check split_ratios, add scenes, or "
          "use a stride of tile_size.")
    report.add_plan(plan, block_size)
    self._report = report
    by_id = {scene.scene_id: scene for scene in scenes}
    return {split: self._generate_examples(
        split, counts[split],
        [(by_id[scene_id], tiles) for scene_id, tiles in plan.tiles[split]])
            for split in SPLITS}

  def _too_few_tiles(self, root, total: int,
                     report: build_report_lib.BuildReport) -> str:
    """Why a build with fewer than `MIN_TILES` tiles stops, and what works."""
    config = self.builder_config
    size, step = config.tile_size, config.stride or config.tile_size
    width = size + (MIN_TILES - 1) * step
    why = "; ".join(
        f"{r.scene_id}: {report.why_no_tiles(r) or f'{r.kept} kept'}"
        for r in report.scenes.values())
    return (
        f"found {total} tile(s) of {size} px with at most "
        f"{config.max_nodata_fraction:.0%} nodata in the scenes under {root} "
        f"({why}); a build needs at least {MIN_TILES}, one per split. The "
        f"smallest area that works is {size} x {width} px "
        f"({size * config.resolution / 1000:g} x "
        f"{width * config.resolution / 1000:g} km at {config.resolution:g} "
        "m) with data in every source; add scenes, or lower tile_size. "
        "Nothing was written.")

  def _reader(self, scene) -> geo_scene.SceneReader:
    return scene_reader(scene, self.builder_config)

  def _kept_tiles(self, scene, scene_report) -> list[geo_tiles.Tile]:
    """The tiles of a scene with little enough nodata (a first, reading
    pass); counts them, and those dropped, in `scene_report`."""
    config = self.builder_config
    with self._reader(scene) as reader:
      scene_report.grid = (reader.grid.height, reader.grid.width)
      tiles = (geo_tiles.grid_tiles(reader.grid, tile_size=config.tile_size,
                                    stride=config.stride)
               if min(reader.grid.height, reader.grid.width)
               >= config.tile_size else [])
      kept = []
      for tile in tiles:
        _, valid = reader.read(tile.window)
        if 1.0 - valid.mean() <= config.max_nodata_fraction:
          kept.append(tile)
    scene_report.tiles = len(tiles)
    scene_report.uncovered_edge = (
        reader.grid.height - max((int(t.window.row_off + t.window.height)
                                  for t in tiles), default=0),
        reader.grid.width - max((int(t.window.col_off + t.window.width)
                                 for t in tiles), default=0))
    scene_report.kept = len(kept)
    scene_report.dropped["nodata"] = len(tiles) - len(kept)
    return kept

  def _generate_examples(self, split: str, count: int, plan):
    items = [(scene, tuple(tiles[start:start + TILES_PER_ITEM]))
             for scene, tiles in plan
             for start in range(0, len(tiles), TILES_PER_ITEM)]
    examples = example_generation.generate(
        items, functools.partial(tile_examples, config=self.builder_config),
        beam=self._beam)
    if example_generation.is_beam(examples):
      return example_statistics.with_statistics(
          examples, self._report.statistics_function(), self.data_dir, split)
    return self._reported(console.counted(examples, f"writing {split}",
                                          "tiles", total=count))

  def _reported(self, examples):
    """Yields `examples`, adding each to the build report."""
    for key, example in examples:
      self._report.add_example(example)
      yield key, example
