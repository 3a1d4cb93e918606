"""TFDS builder for WHU-OPT-SAR: Gaofen-1 optical + Gaofen-3 SAR + land-use labels.

WHU-OPT-SAR (Li, Zhang, Wang, et al. 2022, "MCANet: A joint semantic
segmentation framework of optical and SAR images for land use
classification", Int. J. Applied Earth Observation and Geoinformation 106,
102638; github.com/AmberHen/WHU-OPT-SAR-dataset) holds 100 co-registered
scenes of 5556x3704 pixels (width x height) at 5 m over Hubei, China:
4-band optical (RGB + NIR, uint8), 1-band SAR (uint8) and a label image with
values 0 background, 10 farmland, 20 city, 30 village, 40 water, 50 forest,
60 road, 70 others (stored here as class index value / 10).

Layout read (the published folders, as the dataset's README and public
loaders use them; the same file name in each):

    <manual_dir>/optical/NH49E001013.tif
    <manual_dir>/sar/NH49E001013.tif
    <manual_dir>/lbl/NH49E001013.tif

Features are stored under the roles the systems read (`rsjax.data.fields`):
`s2` the optical tile (8-bit red, green, blue, nir), `s1` the SAR tile
(8-bit, one band `intensity`) and `lulc` the class indices (`CLASS_NAMES`);
the metadata records these bands, units and classes
(`rsjax.data.field_layout`), so the pipeline normalizes the 8-bit values
from [0, 255].

Scenes are cut into non-overlapping tiles (256 by default) read one window at
a time. Splits are by scene: with `official_test` (the default) the 20 test
scenes of the authors' "The division of the dataset.txt" are the test split
and the other scenes are split train/validation by `split_ratios`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from data_builders import public_common
from rsjax.data import field_layout
from rsjax.geo import io as geo_io

CLASS_NAMES = ("background", "farmland", "city", "village", "water", "forest",
               "road", "others")
FOLDERS = {"optical": 4, "sar": 1, "lbl": 1}
LAYOUTS = {
    "s2": field_layout.layout("s2", bands=("red", "green", "blue", "nir"),
                              units=field_layout.DN8),
    "s1": field_layout.layout("s1", bands=("intensity",),
                              units=field_layout.DN8),
    "lulc": field_layout.layout("lulc", classes=CLASS_NAMES),
}
# The authors' test scenes ("The division of the dataset.txt").
OFFICIAL_TEST = (
    "NH49E001014", "NH49E001017", "NH49E002012", "NH49E002016", "NH49E003014",
    "NH49E003024", "NH49E004011", "NH49E005011", "NH49E005019", "NH49E006019",
    "NH49E007014", "NH49E008013", "NH49E009017", "NH49E010020", "NH49E011024",
    "NH49E012020", "NH49E013010", "NH50E007002", "NH50E011005", "NH50E014003")

MANUAL_DOWNLOAD_INSTRUCTIONS = """
WHU-OPT-SAR is shared by its authors for research (links on
https://github.com/AmberHen/WHU-OPT-SAR-dataset: Baidu Pan or Google Drive; no
licence is stated, cite Li et al. (2022), JAG 106, 102638). Download and unpack
the optical, SAR and label archives so that manual_dir holds:

  <manual_dir>/optical/<scene>.tif   (4 bands, uint8)
  <manual_dir>/sar/<scene>.tif       (1 band, uint8)
  <manual_dir>/lbl/<scene>.tif       (1 band, values 0, 10, ..., 70)

with <scene> like NH49E001013 (100 scenes). Then:
  tfds build data_builders/whu_opt_sar --manual_dir=<manual_dir>
"""


@dataclasses.dataclass(kw_only=True)
class BuilderConfig(tfds.core.BuilderConfig):
  """WHU-OPT-SAR options.

  Attributes:
    tile_size: tile side in pixels (non-overlapping tiles).
    max_background_fraction: tiles with more background (label 0) pixels are
      dropped; 1.0 keeps every tile.
    official_test: the authors' 20 test scenes are the test split.
    split_ratios: train/validation/test sizes in scenes (the test share is
      ignored when `official_test`).
    split_seed: selects which scenes go where.
  """
  tile_size: int = 256
  max_background_fraction: float = 1.0
  official_test: bool = True
  split_ratios: tuple[float, float, float] = (7.0, 1.0, 2.0)
  split_seed: int = 0


def label_classes(values: np.ndarray, where: str) -> np.ndarray:
  """Label values 0, 10, ..., 70 -> class indices 0..7, else an error."""
  bad = (values % 10 != 0) | (values > 70)
  if bad.any():
    raise geo_io.RasterError(
        f"whu_opt_sar: {where}: label value(s) "
        f"{sorted(set(values[bad].tolist()))[:5]} are not one of 0, 10, ..., "
        "70.")
  return (values // 10).astype(np.uint8)


class Builder(public_common.ManualBuilder):
  """WHU-OPT-SAR tiles: optical, SAR and land-use label."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      BuilderConfig(name="default", description="256 tiles; official test "
                    "scenes, the rest split 7:1 into train/validation."),
  ]

  VERSION = tfds.core.Version("2.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release.",
                   "2.0.0": "Features renamed to the fields systems read: "
                            "optical -> s2, sar -> s1, label -> lulc; bands, "
                            "units and classes in the metadata."}

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.tile_size
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "s2": tfds.features.Image(shape=(size, size, 4)),
            "s1": tfds.features.Image(shape=(size, size, 1)),
            "lulc": tfds.features.Tensor(shape=(size, size), dtype=np.uint8,
                                          encoding="zlib"),
            **public_common.tile_features(tfds.features),
        }),
        homepage="https://github.com/AmberHen/WHU-OPT-SAR-dataset",
        citation="Li, X., Zhang, G., Cui, H., et al. (2022). MCANet: A joint "
        "semantic segmentation framework of optical and SAR images for land "
        "use classification. JAG 106, 102638.",
        metadata=tfds.core.MetadataDict(
            class_names=list(CLASS_NAMES),
            **field_layout.to_metadata(LAYOUTS)),
    )

  def _scan(self, manual_dir):
    """[(scene name, {folder: path})] of every scene with an optical image."""
    root = public_common.require_dir(manual_dir, dataset=self.name)
    folders = {name: public_common.require_dir(root / name, dataset=self.name)
               for name in FOLDERS}
    names = sorted(path.name[:-len(".tif")]
                   for path in folders["optical"].glob("*.tif"))
    if not names:
      raise public_common.ManualDataError(
          f"{self.name}: no .tif scenes in {folders['optical']}.")
    return [(name, {folder: public_common.require_file(
        path / f"{name}.tif", dataset=self.name,
        hint=f"Scene {name} has an optical image but no {folder} file.")
                    for folder, path in folders.items()}) for name in names]

  def _group(self, item):
    return item[0]  # the scene name

  def _split_plan(self):
    ratios = self.builder_config.split_ratios
    if not self.builder_config.official_test:
      return ratios, {}
    return ((ratios[0], ratios[1], 0.0),
            {name: "test" for name in OFFICIAL_TEST})

  def _generate_examples(self, scenes):
    config = self.builder_config
    for name, paths in scenes:
      with public_common.open_image(
          paths["optical"], dataset=self.name, expected_bands=4,
          dtype="uint8") as optical, public_common.open_image(
              paths["sar"], dataset=self.name, expected_bands=1,
              dtype="uint8") as sar, public_common.open_image(
                  paths["lbl"], dataset=self.name, expected_bands=1,
                  dtype="uint8") as lbl:
        height, width = public_common.check_same_size(
            {"optical": optical, "sar": sar, "lbl": lbl}, dataset=self.name)
        for tile in public_common.scene_windows(height, width,
                                                config.tile_size):
          label = label_classes(public_common.read_tile(lbl, tile.window)[..., 0],
                                f"{paths['lbl']} window {tile.window}")
          if (label == 0).mean() > config.max_background_fraction:
            continue
          yield f"{name}_{tile.row}_{tile.col}", {
              "s2": public_common.read_tile(optical, tile.window),
              "s1": public_common.read_tile(sar, tile.window),
              "lulc": label,
              **public_common.tile_values(name, tile),
          }
