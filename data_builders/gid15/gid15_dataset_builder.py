"""TFDS builder for GID-15: Gaofen-2 scenes with 15-class colour-coded labels.

The Gaofen Image Dataset (Tong, Xia, Lu, Shen, Li, You, Zhang 2020, "Land-cover
classification with high-resolution remote sensing images using transferable
deep models", Remote Sensing of Environment 237, 111322) has a fine land-cover
part, GID-15: ten 7200x6800 (width x height) Gaofen-2 MSS scenes at 4 m, with
pixel labels of 15 classes and unknown. The csebgan paper cuts them into
256x256 tiles without overlap, drops tiles with more than 80% unknown pixels
and splits the rest 4:1:1; this builder does that, splitting by scene.

Layout read (the published archive; names as in the dataset's release and the
public GID loaders):

    <manual_dir>/Fine_Land-cover_Classification_15classes/
        image_RGB/GF2_PMS1__L1A0000647767-MSS1.tif        (3 bands, uint8)
        image_NirRGB/GF2_PMS1__L1A0000647767-MSS1.tif     (4 bands, uint8)
        label_15classes/GF2_PMS1__L1A0000647767-MSS1_label.tif  (RGB colours)

The top folder may also be spelled `Fine Land-cover Classification_15classes`
or be manual_dir itself. Colours map to class indices by `PALETTE` (black is
unknown, 0); a colour not in the palette counts as unknown and is logged.

Features are stored under the roles the systems read (`rsjax.data.fields`):
`s2` the optical tile (8-bit; bands red, green, blue or nir, red, green,
blue) and `lulc` the class indices (`CLASS_NAMES`, 0 unknown); the
metadata records these bands, units and classes (`rsjax.data.field_layout`),
so the pipeline normalizes the 8-bit values from [0, 255].

Images and labels are read one tile window at a time (rasterio windows on the
tiled or striped TIFFs), never as whole scenes. A PNG label would be decoded
from its start for each window by GDAL; convert such labels to TIFF first.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from data_builders import public_common
from rsjax.data import field_layout

CLASS_NAMES = ("unknown", "industrial_land", "urban_residential",
               "rural_residential", "traffic_land", "paddy_field",
               "irrigated_land", "dry_cropland", "garden_plot",
               "arbor_woodland", "shrub_land", "natural_grassland",
               "artificial_grassland", "river", "lake", "pond")
# RGB colour of each class index in the label images.
PALETTE = ((0, 0, 0), (200, 0, 0), (250, 0, 150), (200, 150, 150),
           (250, 150, 150), (0, 200, 0), (150, 250, 0), (150, 200, 150),
           (200, 0, 200), (150, 0, 250), (150, 150, 250), (250, 200, 0),
           (200, 200, 0), (0, 0, 200), (0, 150, 200), (0, 200, 250))
TOP_FOLDERS = ("Fine_Land-cover_Classification_15classes",
               "Fine Land-cover Classification_15classes",
               "Fine_land-cover_Classification_15classes")
LABEL_FOLDER = "label_15classes"
IMAGE_FOLDERS = {"rgb": ("image_RGB", 3), "nirrgb": ("image_NirRGB", 4)}
# Band order of each image folder (Gaofen-2 PMS multispectral, pan-sharpened).
IMAGE_BANDS = {"rgb": ("red", "green", "blue"),
               "nirrgb": ("nir", "red", "green", "blue")}

MANUAL_DOWNLOAD_INSTRUCTIONS = """
GID is distributed by its authors for research use (project page
https://x-ytong.github.io/project/GID.html, with download links); cite Tong et al.
(2020), Remote Sensing of Environment 237, 111322. Download the fine land-cover
classification set and extract it into manual_dir:

  <manual_dir>/Fine_Land-cover_Classification_15classes/image_RGB/<scene>.tif
  <manual_dir>/Fine_Land-cover_Classification_15classes/image_NirRGB/<scene>.tif
  <manual_dir>/Fine_Land-cover_Classification_15classes/label_15classes/<scene>_label.tif

with <scene> like GF2_PMS1__L1A0000647767-MSS1 (10 scenes). image_NirRGB is only
needed for --config=nirrgb. Then:
  tfds build data_builders/gid15 --manual_dir=<manual_dir> [--config=nirrgb]
"""


@dataclasses.dataclass(kw_only=True)
class BuilderConfig(tfds.core.BuilderConfig):
  """GID-15 options.

  Attributes:
    bands: 'rgb' (image_RGB) or 'nirrgb' (image_NirRGB: NIR, R, G, B).
    tile_size: tile side in pixels (non-overlapping tiles).
    max_unknown_fraction: tiles with more unknown pixels are dropped.
    split_ratios: relative train/validation/test sizes, in scenes.
    split_seed: selects which scenes go where.
  """
  bands: str = "rgb"
  tile_size: int = 256
  max_unknown_fraction: float = 0.8
  split_ratios: tuple[float, float, float] = (4.0, 1.0, 1.0)
  split_seed: int = 0


def colours_to_classes(rgb: np.ndarray) -> tuple[np.ndarray, int]:
  """(rows, cols, 3) label colours -> class indices, and the off-palette count."""
  codes = rgb[..., 0].astype(np.int64) << 16 | (
      rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
  palette = np.asarray(PALETTE, np.int64)
  palette_codes = palette[:, 0] << 16 | palette[:, 1] << 8 | palette[:, 2]
  order = np.argsort(palette_codes)
  position = np.clip(np.searchsorted(palette_codes[order], codes), 0,
                     len(order) - 1)
  found = palette_codes[order][position] == codes
  classes = np.where(found, order[position], 0).astype(np.uint8)
  return classes, int((~found).sum())


def layouts(bands: str) -> dict[str, field_layout.FieldLayout]:
  """What the `s2` and `lulc` features of a `bands` config hold."""
  return {"s2": field_layout.layout("s2", bands=IMAGE_BANDS[bands],
                                    units=field_layout.DN8),
          "lulc": field_layout.layout("lulc", classes=CLASS_NAMES)}


def find_root(manual_dir, dataset: str):
  """The folder holding label_15classes (one of TOP_FOLDERS or manual_dir)."""
  manual_dir = public_common.require_dir(manual_dir, dataset=dataset)
  for candidate in [manual_dir / name for name in TOP_FOLDERS] + [manual_dir]:
    if (candidate / LABEL_FOLDER).is_dir():
      return candidate
  return public_common.require_dir(
      manual_dir / TOP_FOLDERS[0] / LABEL_FOLDER, dataset=dataset,
      hint=f"(also looked in {', '.join(TOP_FOLDERS[1:])} and manual_dir).")


class Builder(public_common.ManualBuilder):
  """GID-15 tiles: Gaofen-2 image and 15-class land-cover label."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      BuilderConfig(name="rgb", description="image_RGB, 256 tiles, 4:1:1."),
      BuilderConfig(name="nirrgb", bands="nirrgb",
                    description="image_NirRGB (NIR, R, G, B), 256 tiles."),
  ]

  VERSION = tfds.core.Version("2.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release.",
                   "2.0.0": "Features renamed to the fields systems read: "
                            "image -> s2, label -> lulc; bands, units and "
                            "classes in the metadata."}

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    if config.bands not in IMAGE_FOLDERS:
      raise ValueError(f"gid15: bands {config.bands!r} is not one of "
                       f"{tuple(IMAGE_FOLDERS)}.")
    size, channels = config.tile_size, IMAGE_FOLDERS[config.bands][1]
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "s2": tfds.features.Image(shape=(size, size, channels)),
            "lulc": tfds.features.Tensor(shape=(size, size), dtype=np.uint8,
                                          encoding="zlib"),
            **public_common.tile_features(tfds.features),
        }),
        supervised_keys=("s2", "lulc"),
        homepage="https://x-ytong.github.io/project/GID.html",
        citation="Tong, X.-Y. et al. (2020). Land-cover classification with "
        "high-resolution remote sensing images using transferable deep "
        "models. Remote Sensing of Environment 237, 111322.",
        metadata=tfds.core.MetadataDict(
            class_names=list(CLASS_NAMES),
            palette=[list(c) for c in PALETTE],
            **field_layout.to_metadata(layouts(config.bands))),
    )

  def _scan(self, manual_dir):
    """[(scene name, image path, label path)] of every labelled scene."""
    config = self.builder_config
    root = find_root(manual_dir, self.name)
    folder = public_common.require_dir(
        root / IMAGE_FOLDERS[config.bands][0], dataset=self.name,
        hint=f"Needed by the `{config.name}` config.")
    scenes = []
    for label in sorted((root / LABEL_FOLDER).glob("*_label.tif")):
      name = label.name[:-len("_label.tif")]
      scenes.append((name, public_common.require_file(
          folder / f"{name}.tif", dataset=self.name,
          hint=f"It is the image of {label}."), label))
    if not scenes:
      raise public_common.ManualDataError(
          f"{self.name}: no <scene>_label.tif files in {root / LABEL_FOLDER}.")
    return scenes

  def _group(self, item):
    return item[0]  # the scene name

  def _generate_examples(self, scenes):
    config = self.builder_config
    channels = IMAGE_FOLDERS[config.bands][1]
    for name, image_path, label_path in scenes:
      with public_common.open_image(
          image_path, dataset=self.name, expected_bands=channels,
          dtype="uint8") as image, public_common.open_image(
              label_path, dataset=self.name, expected_bands=3,
              dtype="uint8") as label:
        height, width = public_common.check_same_size(
            {"image": image, "label": label}, dataset=self.name)
        off_palette = 0
        for tile in public_common.scene_windows(height, width,
                                                config.tile_size):
          classes, unmatched = colours_to_classes(
              public_common.read_tile(label, tile.window))
          off_palette += unmatched
          if (classes == 0).mean() > config.max_unknown_fraction:
            continue
          yield f"{name}_{tile.row}_{tile.col}", {
              "s2": public_common.read_tile(image, tile.window),
              "lulc": classes,
              **public_common.tile_values(name, tile),
          }
        if off_palette:
          logging.warning("gid15: %s: %d label pixel(s) of colours outside "
                          "the palette, counted as unknown.", label_path,
                          off_palette)
