"""What the public-dataset builders share: manual_dir checks, splits, tiling.

The builders in `sen1_2/`, `sen12ms/`, `sen12ms_cr/`, `gid15/` and
`whu_opt_sar/` read a dataset the user downloaded into TFDS's `manual_dir`, in
the dataset's published layout. This module holds the parts they have in
common, so that each builder file only describes its dataset:

  ManualBuilder                their base class: version 1.0.0, and splits
                               of what `_scan` finds in manual_dir, by
                               `_group` (split_items); `_beam` says whether
                               the build runs on Apache Beam
                               (`example_generation`).
  require_dir / require_file   errors that name the missing folder or file,
                               the dataset and where it comes from.
  split_groups                 a deterministic train/validation/test split by
                               group (scene, ROI or image), so tiles of one
                               place never leak across splits.
  open_image / scene_windows / read_tile
                               windowed reads of large images (GID, WHU-OPT-SAR
                               are thousands of pixels a side): only one tile is
                               in memory at a time.

Paths are `etils.epath.Path` (what TFDS passes as `manual_dir`); pixel reads
go through rasterio, so images must be on a file system GDAL can open.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import logging
import types
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import rasterio
import rasterio.errors
import tensorflow_datasets as tfds
from affine import Affine
from etils import epath
from rasterio.windows import Window

from data_builders import example_generation
from data_builders import example_statistics
from data_builders import field_features
from data_builders import public_report
from rsjax import console
from rsjax.geo import io as geo_io
from rsjax.geo import tiles as geo_tiles
from rsjax.store import paths

SPLITS = ("train", "validation", "test")


class ManualDataError(FileNotFoundError):
  """The manual_dir does not hold what a builder needs; the message says what."""


def require_dir(path: epath.PathLike, *, dataset: str, hint: str = "",
                ) -> epath.Path:
  """Returns `path` if it is a folder, else raises naming it and the dataset."""
  path = epath.Path(path)
  return _found(path, path.is_dir(), "folder", dataset=dataset, hint=hint)


def require_file(path: epath.PathLike, *, dataset: str, hint: str = "",
                 ) -> epath.Path:
  """Returns `path` if it is a file, else raises naming it and the dataset."""
  path = epath.Path(path)
  return _found(path, path.is_file(), "file", dataset=dataset, hint=hint)


def _found(path: epath.Path, found: bool, kind: str, *, dataset: str,
           hint: str) -> epath.Path:
  if not found:
    raise ManualDataError(
        f"{dataset}: {kind} not found: {path}. {hint}".rstrip() +
        f" See the `{dataset}` builder's MANUAL_DOWNLOAD_INSTRUCTIONS.")
  return path


def _hash_unit(seed: int, group: str) -> float:
  digest = hashlib.blake2b(f"{seed}/{group}".encode(), digest_size=8).digest()
  return int.from_bytes(digest, "big") / 2**64


def split_counts(n: int, ratios: Sequence[float]) -> list[int]:
  """How many of `n` groups each split gets, proportional to `ratios`.

  Largest-remainder rounding; then, if there are at least as many groups as
  splits with a positive ratio, every such split gets at least one group
  (taken from the largest), so small datasets still have all their splits.
  """
  ratios = np.asarray(ratios, dtype=np.float64)
  if (ratios.ndim != 1 or not np.isfinite(ratios).all() or (ratios < 0).any()
      or ratios.sum() <= 0):
    raise ValueError(
        f"split ratios must be non-negative numbers with a positive sum, got "
        f"{ratios.tolist()}.")
  exact = n * ratios / ratios.sum()
  counts = np.floor(exact).astype(int)
  for index in np.argsort(-(exact - counts), kind="stable")[:n - counts.sum()]:
    counts[index] += 1
  wanted = ratios > 0
  if n >= wanted.sum():
    for index in np.flatnonzero(wanted & (counts == 0)):
      counts[int(np.argmax(counts))] -= 1
      counts[index] += 1
  return counts.tolist()


def split_groups(groups: Sequence[str], ratios: Sequence[float], *,
                 seed: int = 0, splits: Sequence[str] = SPLITS,
                 ) -> dict[str, str]:
  """Assigns whole groups (scenes, images) to splits, deterministically.

  Groups are ordered by a hash of (seed, group name), which does not depend on
  the order or the machine, and the first `counts[0]` go to `splits[0]`, the
  next to `splits[1]`, and so on (`split_counts`). The same group names and
  seed always give the same split.

  Returns:
    {group: split name}.
  """
  if len(ratios) != len(splits):
    raise ValueError(
        f"{len(ratios)} split ratios given for the {len(splits)} splits "
        f"{tuple(splits)}.")
  unique = sorted(set(groups))
  ordered = sorted(unique, key=lambda group: (_hash_unit(seed, group), group))
  assignment = {}
  start = 0
  for split, count in zip(splits, split_counts(len(unique), ratios)):
    for group in ordered[start:start + count]:
      assignment[group] = split
    start += count
  return assignment


@contextlib.contextmanager
def open_image(path: epath.PathLike, *, dataset: str,
               expected_bands: int | None = None,
               dtype: str | None = None):
  """Opens an image with rasterio (a CRS is not required), checked.

  Raises a `ManualDataError` for a missing file and a `geo_io.RasterError`
  naming the file for an unreadable one, a wrong band count or dtype.
  """
  path = require_file(path, dataset=dataset)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
    try:
      image = rasterio.open(str(path))
    except rasterio.errors.RasterioIOError as error:
      raise geo_io.RasterError(
          f"{dataset}: {path} cannot be read as an image: {error}") from error
  with image:
    if expected_bands is not None and image.count != expected_bands:
      raise geo_io.RasterError(
          f"{dataset}: {path} has {image.count} band(s), expected "
          f"{expected_bands}.")
    if dtype is not None and image.dtypes[0] != dtype:
      raise geo_io.RasterError(
          f"{dataset}: {path} holds {image.dtypes[0]} pixels, expected "
          f"{dtype}.")
    yield image


def check_same_size(images: Mapping[str, rasterio.DatasetReader], *,
                    dataset: str) -> tuple[int, int]:
  """(height, width) shared by all `images`, or an error listing the sizes."""
  sizes = {name: (image.height, image.width) for name, image in images.items()}
  if len(set(sizes.values())) != 1:
    listing = ", ".join(f"{image.name}: {h}x{w}" for (h, w), image in zip(
        sizes.values(), images.values()))
    raise geo_io.RasterError(
        f"{dataset}: the images of one scene differ in size ({listing}); "
        "they must be co-registered pixel for pixel.")
  return next(iter(sizes.values()))


def scene_windows(height: int, width: int, tile_size: int,
                  ) -> list[geo_tiles.Tile]:
  """Non-overlapping tiles of `tile_size` over an image, row-major.

  The strip narrower than a tile at the right and bottom edges is left out
  (as when the papers cut scenes into 256x256 patches).
  """
  grid = types.SimpleNamespace(height=height, width=width,
                               transform=Affine.identity())
  return geo_tiles.grid_tiles(grid, tile_size=tile_size)


def read_tile(image: rasterio.DatasetReader, window: Window) -> np.ndarray:
  """One window of an open image as (rows, cols, bands), nothing else read.

  The pixels as stored, unmasked: these datasets declare no nodata, and GDAL
  takes the 4th band of a 4-band uint8 TIFF written as RGBA (GID's blue,
  WHU-OPT-SAR's NIR) for alpha, whose zeros would blank all bands.
  """
  return np.moveaxis(image.read(window=window), 0, -1)


def split_items(items: Sequence, *, group_of, ratios: Sequence[float],
                seed: int = 0, fixed: Mapping[str, str] | None = None,
                splits: Sequence[str] = SPLITS) -> dict[str, list]:
  """Puts items (patches, tiles) into splits by their group, deterministically.

  Args:
    items: what to split.
    group_of: item -> group name (scene, image); a group is never divided.
    ratios: relative sizes of `splits` for the groups not in `fixed`.
    seed: selects the assignment (`split_groups`).
    fixed: {group: split} decided beforehand (an official hold-out list);
      these groups ignore `ratios`.

  Returns:
    {split: items of that split, in their original order} for every split.
  """
  fixed = dict(fixed or {})
  unknown = set(fixed.values()) - set(splits)
  if unknown:
    raise ValueError(f"unknown split(s) {sorted(unknown)}; valid: {splits}.")
  free = [group_of(item) for item in items if group_of(item) not in fixed]
  assignment = {**split_groups(free, ratios, seed=seed, splits=splits),
                **fixed}
  out: dict[str, list] = {split: [] for split in splits}
  for item in items:
    out[assignment[group_of(item)]].append(item)
  return out


class ManualBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A builder of a dataset in manual_dir, split by group (scene, image).

  A subclass sets MANUAL_DOWNLOAD_INSTRUCTIONS and BUILDER_CONFIGS, whose
  configs have `split_ratios` and `split_seed`, and defines `_info`,
  `_generate_examples(items)` and:

    _scan(manual_dir)  the items (patches, scenes) of the dataset, with an
                       error naming what is missing.
    _group(item)       the item's group: split_items never divides one.
    _split_plan()      (ratios, {group: split} decided beforehand); by
                       default the config's split_ratios and nothing fixed.

  `_generate_examples(items)` may return a Beam PTransform when `self._beam`
  (the download config names a Beam runner or options;
  `example_generation.generate` makes either from one per-item function);
  a builder that always returns a generator builds in this process.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  @abc.abstractmethod
  def _scan(self, manual_dir: epath.Path) -> list:
    """The items of the dataset found in manual_dir."""

  @abc.abstractmethod
  def _group(self, item) -> str:
    """The group (scene, image) of one item of `_scan`."""

  def _split_plan(self) -> tuple[Sequence[float], Mapping[str, str]]:
    return self.builder_config.split_ratios, {}

  _beam = False  # set per build by _download_and_prepare
  _report = None  # the build's public_report.PublicReport
  _beam_splits: list = []  # splits whose statistics Beam's workers wrote

  def download_and_prepare(self, *args, **kwargs):
    """TFDS's build; then prints the build report of what it wrote."""
    self._report = None
    super().download_and_prepare(*args, **kwargs)
    if self._report is not None:
      logging.getLogger(__name__).info(
          "%s", self._report.text(
              paths.join(self.data_dir, public_report.FILENAME)))

  def _download_and_prepare(self, dl_manager, download_config):
    self._beam = example_generation.beam_requested(download_config)
    super()._download_and_prepare(dl_manager=dl_manager,
                                  download_config=download_config)
    if self._report is not None:
      for split in self._beam_splits:
        self._report.add_statistics(
            split, example_statistics.take_split_statistics(self.data_dir,
                                                            split))
      # self.data_dir is TFDS's temporary folder here: the report appears
      # with the dataset, or not at all.
      self._report.write(self.data_dir)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    items = self._scan(dl_manager.manual_dir)
    ratios, fixed = self._split_plan()
    splits = split_items(items, group_of=self._group, ratios=ratios,
                         seed=self.builder_config.split_seed, fixed=fixed)
    generators = {split: self._generate_examples(items)
                  for split, items in splits.items()}
    if self._beam and not any(map(example_generation.is_beam,
                                  generators.values())):
      logging.getLogger(__name__).warning(
          "%s has no Beam path: it builds in this process and leaves the "
          "Beam options unused.", self.name)
    report = public_report.new_report(
        f"{self.name}/{self.builder_config.name}", self.info.metadata,
        list(self.info.features))
    for split, split_items_ in splits.items():
      report.items[split] = len(split_items_)
      report.groups[split] = len({self._group(i) for i in split_items_})
    self._report, self._beam_splits, out = report, [], {}
    for split, examples in generators.items():
      if example_generation.is_beam(examples):
        self._beam_splits.append(split)
        out[split] = example_statistics.with_statistics(
            examples, report.statistics_function(), self.data_dir, split)
      else:
        out[split] = report.reported(split, console.counted(
            examples, f"writing {split}", "examples"))
    return out


def tile_features(tfds_features) -> dict:
  """Feature specs locating a tile in its scene (pass `tfds.features`)."""
  return {
      "image_id": tfds_features.Text(),
      **field_features.features(("tile_row", "tile_col")),
      "row_off": tfds_features.Scalar(dtype=np.int32),
      "col_off": tfds_features.Scalar(dtype=np.int32),
  }


def tile_values(image_id: str, tile: geo_tiles.Tile) -> dict:
  """The values of `tile_features` for one tile of scene `image_id`."""
  return {"image_id": image_id, "tile_row": tile.row, "tile_col": tile.col,
          "row_off": int(tile.window.row_off),
          "col_off": int(tile.window.col_off)}
