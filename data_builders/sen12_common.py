"""The SEN1-2 / SEN12MS / SEN12MS-CR family: file naming, scanning, reading.

The three TUM datasets share one naming scheme (Schmitt et al. 2018, 2019;
Ebel et al. 2020): four seasonal ROI sets, scenes numbered within each, and
256x256 patches numbered within each scene,

    <folder>/<modality>_<scene>/<season>_<modality>_<scene>_p<patch>.<ext>

with season one of `SEASONS`, modality e.g. `s1`, `s2`, `lc`, `s2_cloudy`, and
<folder> either the season itself (SEN1-2 and SEN12MS: `ROIs1158_spring/s1_1/`)
or `<season>_<modality>` (SEN12MS-CR, one archive per modality:
`ROIs1158_spring_s1/s1_1/`). `scan_patches` finds the patches of a reference
modality and their partner files in the other modalities, and raises an error
naming the folder or file when one is missing; `PatchBuilder`, the base of
the three builders, splits what it finds by scene and makes each split's
examples from its builder's per-patch function, in this process or on Apache
Beam (`data_builders.example_generation`). `read_geotiff` reads one
GeoTIFF patch (SEN12MS, SEN12MS-CR) with its georeferencing,
`geotiff_features` are the features such a patch is stored as, and
`s2_configs` are the two band sets of those 13-band GeoTIFFs.
"""

from __future__ import annotations

import abc
import dataclasses
import re
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from data_builders import example_generation
from data_builders import field_features
from data_builders import public_common
from rsjax.data import field_layout
from rsjax.geo import bands as geo_bands
from rsjax.geo import io as geo_io
from rsjax.geo import sar
from rsjax.geo import units as units_lib

SEASONS = ("ROIs1158_spring", "ROIs1868_summer", "ROIs1970_fall",
           "ROIs2017_winter")
# Sentinel-2 L1C bands in the order of the 13-band SEN12MS(-CR) GeoTIFFs.
S2_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10",
            "B11", "B12")
S2_RGBN = geo_bands.S2_BANDS  # the declared band set of the `s2` field
S2_SCALE = geo_bands.S2_REFLECTANCE_PER_DN  # DN -> TOA reflectance
S1_BANDS = geo_bands.S1_BANDS

# Folder layouts: the season folder holds all modalities, or one folder each.
SEASON_FOLDER = "season"
MODALITY_FOLDER = "season_modality"


@dataclasses.dataclass(frozen=True)
class Patch:
  """One patch: where it is and the file of each modality."""
  season: str
  scene: int
  patch: int
  paths: dict

  @property
  def id(self) -> str:
    return f"{self.season}_{self.scene}_p{self.patch}"

  @property
  def group(self) -> str:
    """The scene (ROI) the patch belongs to: the unit of splitting."""
    return f"{self.season}/{self.scene}"


def modality_folder(root: epath.Path, season: str, modality: str,
                    layout: str) -> epath.Path:
  if layout == SEASON_FOLDER:
    return root / season
  if layout == MODALITY_FOLDER:
    return root / f"{season}_{modality}"
  raise ValueError(f"unknown layout {layout!r}")


def _patch_numbers(scene_dir: epath.Path, season: str, modality: str,
                   scene: int, ext: str) -> set[int]:
  pattern = re.compile(
      rf"^{re.escape(season)}_{re.escape(modality)}_{scene}_p(\d+)\.{ext}$")
  numbers = set()
  for path in scene_dir.iterdir():
    match = pattern.match(path.name)
    if match:
      numbers.add(int(match.group(1)))
  return numbers


def _scan_season(root, season, modalities, ext, layout, dataset):
  reference = modalities[0]
  folder = modality_folder(root, season, reference, layout)
  scene_pattern = re.compile(rf"^{re.escape(reference)}_(\d+)$")
  scenes = sorted(int(m.group(1)) for m in (
      scene_pattern.match(p.name) for p in folder.iterdir()) if m)
  patches = []
  for scene in scenes:
    numbers = _patch_numbers(folder / f"{reference}_{scene}", season,
                             reference, scene, ext)
    paths = {reference: {k: folder / f"{reference}_{scene}" /
                         f"{season}_{reference}_{scene}_p{k}.{ext}"
                         for k in numbers}}
    for modality in modalities[1:]:
      scene_dir = public_common.require_dir(
          modality_folder(root, season, modality, layout) /
          f"{modality}_{scene}", dataset=dataset,
          hint=f"Scene {season} {scene} has {reference} patches but no "
          f"{modality} folder.")
      found = _patch_numbers(scene_dir, season, modality, scene, ext)
      missing = sorted(numbers - found)
      if missing:
        raise public_common.ManualDataError(
            f"{dataset}: {len(missing)} {reference} patch(es) of scene "
            f"{season} {scene} have no {modality} file, e.g. "
            f"{scene_dir / f'{season}_{modality}_{scene}_p{missing[0]}.{ext}'}.")
      paths[modality] = {k: scene_dir / f"{season}_{modality}_{scene}_p{k}.{ext}"
                         for k in numbers}
    patches += [Patch(season=season, scene=scene, patch=k,
                      paths={m: paths[m][k] for m in modalities})
                for k in sorted(numbers)]
  return patches


def scan_patches(root: epath.PathLike, *, dataset: str,
                 modalities: Sequence[str], ext: str,
                 seasons: Sequence[str] = SEASONS,
                 layouts: Sequence[str] = (SEASON_FOLDER,)) -> list[Patch]:
  """All patches under `root`, with a file for every modality.

  A season whose reference-modality folder (`modalities[0]`) is absent is
  skipped (users often download only some seasons); at least one must be
  there. Within a present season, a scene or patch without its partner file in
  another modality is an error that names the missing folder or file.

  Args:
    root: the manual_dir.
    dataset: the dataset's name, for error messages.
    modalities: e.g. ('s1', 's2', 'lc'); the first one drives the scan.
    ext: file extension without the dot ('png', 'tif').
    seasons: the seasons to read.
    layouts: folder layouts to try for each season, in order.

  Returns:
    Patches sorted by season (in `seasons` order), scene and patch number.
  """
  root = public_common.require_dir(root, dataset=dataset)
  patches, expected = [], []
  for season in seasons:
    for layout in layouts:
      folder = modality_folder(root, season, modalities[0], layout)
      expected.append(str(folder))
      if folder.is_dir():
        patches += _scan_season(root, season, modalities, ext, layout, dataset)
        break
  if not patches:
    raise public_common.ManualDataError(
        f"{dataset}: no {modalities[0]} patches found under {root}; expected "
        f"at least one of the folders {expected} with "
        f"{modalities[0]}_<scene>/<season>_{modalities[0]}_<scene>_p<patch>."
        f"{ext} files. See the `{dataset}` builder's "
        "MANUAL_DOWNLOAD_INSTRUCTIONS.")
  return patches


class PatchBuilder(public_common.ManualBuilder, skip_registration=True):
  """A builder of patches found by `scan_patches`, split by scene.

  A subclass sets MODALITIES (the first drives the scan), EXT and LAYOUTS;
  its configs have `seasons`, `split_ratios` and `split_seed`; and it
  defines `_patch_examples()`: the function patch -> (key, example) pairs
  (none for a skipped patch) that both the plain and the Beam build run
  (`example_generation.generate`). It is pickled to Beam's workers: a
  module-level function, or a `functools.partial` of one over plain values
  of the config, never a method of the builder.
  """

  MODALITIES: tuple[str, ...]
  EXT: str
  LAYOUTS: tuple[str, ...] = (SEASON_FOLDER,)

  def _scan(self, manual_dir: epath.Path) -> list[Patch]:
    return scan_patches(manual_dir, dataset=self.name,
                        modalities=self.MODALITIES, ext=self.EXT,
                        seasons=self.builder_config.seasons,
                        layouts=self.LAYOUTS)

  def _group(self, item: Patch) -> str:
    return item.group

  @abc.abstractmethod
  def _patch_examples(self) -> example_generation.ItemExamples:
    """The function patch -> (key, example) pairs of this builder's config."""

  def _generate_examples(self, patches):
    return example_generation.generate(patches, self._patch_examples(),
                                       beam=self._beam)


def s2_configs(config_class, note: str = "") -> list:
  """The `all` (13 bands) and `rgbn` configs of Sentinel-2 GeoTIFF patches.

  `config_class` has an `s2_bands` field defaulting to all of `S2_BANDS`;
  `note` ends each description (e.g. ", IGBP").
  """
  return [
      config_class(name="all", description=f"All 13 Sentinel-2 bands{note}."),
      config_class(name="rgbn", s2_bands=S2_RGBN,
                   description=f"Sentinel-2 B2, B3, B4, B8 (RGBN){note}."),
  ]


def band_indexes(names: Sequence[str], available: Sequence[str] = S2_BANDS,
                 ) -> list[int]:
  """1-based band indexes of `names` in a file holding `available` bands."""
  unknown = [name for name in names if name not in available]
  if unknown or not names:
    raise ValueError(
        f"unknown or no band(s) {unknown or list(names)}; valid bands: "
        f"{list(available)}.")
  return [available.index(name) + 1 for name in names]


@dataclasses.dataclass(frozen=True)
class GeoPatch:
  """Pixels of one GeoTIFF patch: (rows, cols, bands), validity, georeference."""
  data: np.ndarray
  valid: np.ndarray
  crs: str
  transform: np.ndarray


@dataclasses.dataclass(frozen=True)
class FileUnits:
  """What a modality's GeoTIFFs must hold (`rsjax.geo.units`): the source
  name for messages, its kind, its units and the names of its bands."""
  source: str
  kind: str
  units: str | units_lib.Units
  band_names: tuple[str, ...]


S1_DB = FileUnits("s1", "sar", "db", S1_BANDS)
S2_DN = FileUnits("s2", "optical", "dn", S2_BANDS)
# The published files hold S2 digital numbers and S1 sigma0 in dB; a copy
# exported otherwise is read with the builder config's s2_units / s1_units.
S2_UNITS = ("dn", "reflectance")
S1_UNITS = ("db", "linear")


def check_units(config) -> None:
  """A ValueError for s2_units / s1_units values the builders cannot read."""
  for key, allowed in (("s2_units", S2_UNITS), ("s1_units", S1_UNITS)):
    value = getattr(config, key)
    if value not in allowed:
      raise ValueError(f"{config.name}: {key} must be one of {allowed}, got "
                       f"{value!r}.")


def s2_reflectance(data: np.ndarray, units: str) -> np.ndarray:
  """S2 values of a file in `units` ('dn' or 'reflectance') as float32 TOA
  reflectance."""
  data = data.astype(np.float32)
  return data * np.float32(S2_SCALE) if units == "dn" else data


def s1_db(data: np.ndarray, units: str) -> np.ndarray:
  """S1 values of a file in `units` ('db' or 'linear') as float32 dB."""
  data = data.astype(np.float32)
  return data if units == "db" else sar.to_db(data).astype(np.float32)


def read_geotiff(path: epath.Path, *, expected_bands: int,
                 bands: Sequence[int] | None = None,
                 size: int = 256, units: FileUnits | None = None) -> GeoPatch:
  """Reads the `bands` (1-based; all if None) of a georeferenced patch; with
  `units`, values its units cannot have stop the build with a
  `rsjax.geo.units.UnitsError` naming the file and band."""
  with geo_io.open_raster(str(path), expected_bands=expected_bands) as image:
    if (image.height, image.width) != (size, size):
      raise geo_io.RasterError(
          f"{path}: {image.height}x{image.width} pixels, expected "
          f"{size}x{size}.")
    read = geo_io.read_window(image, bands=bands)
    crs = image.crs.to_wkt()
    transform = np.asarray(tuple(image.transform)[:6], np.float64)
  if units is not None:
    names = [units.band_names[i - 1] for i in
             (bands or range(1, len(units.band_names) + 1))]
    units_lib.check_range(read.data, source=units.source, units=units.units,
                          path=str(path), band_names=names, valid=read.valid,
                          kind=units.kind)
  return GeoPatch(data=np.moveaxis(read.data, 0, -1), valid=read.valid,
                  crs=crs, transform=transform)


def valid_patches(patches, read_patch, *, dataset: str):
  """Yields (patch, reads) for patches whose every read is fully valid.

  `read_patch(patch)` returns a dict of `GeoPatch`es; patches with a
  non-finite or nodata pixel in any of them are skipped with a warning.
  """
  skipped = 0
  for patch in patches:
    reads = read_patch(patch)
    if not all(read.valid.all() for read in reads.values()):
      skipped += 1
      logging.warning("%s: skipping %s: non-finite or nodata pixels.",
                      dataset, patch.id)
      continue
    yield patch, reads
  if skipped:
    logging.warning("%s: %d patch(es) skipped for invalid pixels.", dataset,
                    skipped)


def s2_layout(name: str, bands: Sequence[str]) -> field_layout.FieldLayout:
  """The layout of an optical field holding `bands` of the 13-band GeoTIFFs
  as top-of-atmosphere reflectance (DN x `S2_SCALE`)."""
  return field_layout.layout(name, bands=tuple(bands), units="reflectance")


def metadata_features(tfds_features, *, georeferenced: bool) -> dict:
  """Feature specs of a patch's identity (and CRS/transform if georeferenced)."""
  features = {
      "id": tfds_features.Text(),
      "season": tfds_features.Text(),
      "scene": tfds_features.Scalar(dtype=np.int32),
      "patch": tfds_features.Scalar(dtype=np.int32),
  }
  if georeferenced:
    features.update(field_features.features(("crs", "transform")))
  return features


def geotiff_features(names: Sequence[str], size: int, *,
                     bands: dict[str, Sequence[str]]) -> dict:
  """Feature specs of a GeoTIFF patch (SEN12MS, SEN12MS-CR) and its metadata.

  The fields `names` (`bands` as in `field_features.features`) are stored
  zlib-compressed, as these datasets were published.
  """
  return {
      **field_features.features(names, size, bands=bands, encoding="zlib"),
      **metadata_features(tfds.features, georeferenced=True),
  }


def metadata_values(patch: Patch, geo: GeoPatch | None = None) -> dict:
  values = {"id": patch.id, "season": patch.season, "scene": patch.scene,
            "patch": patch.patch}
  if geo is not None:
    values["crs"] = geo.crs
    values["transform"] = geo.transform
  return values
