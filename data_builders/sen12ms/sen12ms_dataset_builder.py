"""TFDS builder for SEN12MS: Sentinel-1 / Sentinel-2 / MODIS land-cover triplets.

SEN12MS (Schmitt, Hughes, Qiu, Zhu 2019, ISPRS Annals IV-2/W7, 153-160) holds
180,662 triplets of georeferenced 256x256 GeoTIFF patches at 10 m:

  s1  2 bands float32, sigma0 in dB: VV, VH.
  s2  13 bands uint16, Sentinel-2 L1C digital numbers (reflectance x 10^4):
      B1, B2, B3, B4, B5, B6, B7, B8, B8A, B9, B10, B11, B12.
  lc  4 bands uint16, MODIS land cover: IGBP (1-17), LCCS land cover,
      LCCS land use, LCCS surface hydrology.

Layout read: the mediaTUM archives `<season>_{s1,s2,lc}.tar.gz` unpack into
one folder per season, as the authors' loaders (github.com/schmitt-muc/SEN12MS)
expect; one folder per season and modality (`ROIs1158_spring_s1/s1_<n>/`, the
SEN12MS-CR style) is accepted too:

    <manual_dir>/ROIs1158_spring/s1_<n>/ROIs1158_spring_s1_<n>_p<k>.tif
    <manual_dir>/ROIs1158_spring/s2_<n>/ROIs1158_spring_s2_<n>_p<k>.tif
    <manual_dir>/ROIs1158_spring/lc_<n>/ROIs1158_spring_lc_<n>_p<k>.tif
    ... likewise ROIs1868_summer, ROIs1970_fall, ROIs2017_winter.

Features: `s1` (256, 256, 2) float32 dB; `s2` (256, 256, bands) float32 TOA
reflectance (DN x 1e-4) for the config's bands; `lulc` (256, 256) uint8 class
codes of the config's land-cover band (IGBP by default, codes as in the file:
1-17, so the class table `IGBP_CLASSES` starts with an unused 0);
plus id, season, scene, patch, CRS (WKT) and affine transform. The metadata
records each field's bands, units and classes (`rsjax.data.field_layout`);
LCCS bands are stored without a class table.

Splits are by scene. With `official_holdout` (the default), the 26 hold-out
scenes of the authors' `splits/SEN12MS_holdOutScenes.txt` (about 10% of the
patches, chosen by them for balanced seasons and regions) are the test split
and the other scenes are split train/validation by `split_ratios`. Patches
with non-finite values (the authors' loaders drop one, summer 146 p202) are
skipped and named in the log.

The build runs in this process, or on Apache Beam when the download config
names a Beam runner or options (`tfds build --beam_pipeline_options=...`):
both make each triplet with `triplet_examples`
(`data_builders.example_generation`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds

from data_builders import sen12_common
from rsjax.data import field_layout
from rsjax.geo import units as units_lib

PATCH = 256
LC_BANDS = ("igbp", "lccs_lc", "lccs_lu", "lccs_sh")
# MODIS MCD12Q1 IGBP (Type 1) classes by code; 0 does not occur.
IGBP_CLASSES = (
    "none", "evergreen_needleleaf_forest", "evergreen_broadleaf_forest",
    "deciduous_needleleaf_forest", "deciduous_broadleaf_forest",
    "mixed_forest", "closed_shrublands", "open_shrublands", "woody_savannas",
    "savannas", "grasslands", "permanent_wetlands", "croplands",
    "urban_and_built_up", "cropland_natural_vegetation_mosaic",
    "permanent_snow_and_ice", "barren", "water_bodies")
# schmitt-muc/SEN12MS splits/SEN12MS_holdOutScenes.txt, as season/scene.
HOLDOUT_SCENES = tuple(
    f"{season}/{scene}" for season, scenes in (
        ("ROIs1158_spring", (63, 146, 97, 124, 15, 17)),
        ("ROIs1868_summer", (43, 131, 19, 104, 72, 15, 79)),
        ("ROIs1970_fall", (120, 39, 144, 35, 61, 47, 30, 141)),
        ("ROIs2017_winter", (64, 146, 32, 107, 135)),
    ) for scene in scenes)

MANUAL_DOWNLOAD_INSTRUCTIONS = """
SEN12MS is published by TU Munich on mediaTUM (https://mediatum.ub.tum.de/1474000,
doi:10.14459/2019mp1474000) under CC BY 4.0; cite Schmitt et al. (2019), ISPRS
Annals IV-2/W7, 153-160. Download the archives ROIs<...>_<season>_{s1,s2,lc}.tar.gz
of the seasons you want (about 420 GB for all) and extract them into manual_dir:

  <manual_dir>/ROIs1158_spring/s1_<n>/ROIs1158_spring_s1_<n>_p<k>.tif
  <manual_dir>/ROIs1158_spring/s2_<n>/ROIs1158_spring_s2_<n>_p<k>.tif
  <manual_dir>/ROIs1158_spring/lc_<n>/ROIs1158_spring_lc_<n>_p<k>.tif
  (and ROIs1868_summer, ROIs1970_fall, ROIs2017_winter likewise)

Folders per season and modality (ROIs1158_spring_s1/s1_<n>/...) also work.
Every s1 patch needs its s2 and lc partner. Then:
  tfds build data_builders/sen12ms --manual_dir=<manual_dir> [--config=rgbn]
On Apache Beam (a cluster, or DirectRunner on this machine), by module so that
Beam's workers import the same code:
  tfds build sen12ms/rgbn --imports data_builders.sen12ms.sen12ms_dataset_builder \\
    --manual_dir=<manual_dir> --data_dir=<data_dir> \\
    --beam_pipeline_options=runner=DataflowRunner,project=<p>,region=<r>,\\
temp_location=gs://<bucket>/tmp,setup_file=<rsjax>/pyproject.toml
(manual_dir and data_dir where every worker can read and write them).
"""


@dataclasses.dataclass(kw_only=True)
class BuilderConfig(tfds.core.BuilderConfig):
  """SEN12MS options.

  Attributes:
    s2_bands: Sentinel-2 bands to keep, by name (`sen12_common.S2_BANDS`).
    lc_band: land-cover band stored as `lulc`: one of `LC_BANDS`.
    seasons: the seasonal ROI sets to read.
    official_holdout: the authors' hold-out scenes are the test split.
    split_ratios: train/validation/test sizes in scenes (of the scenes not
      held out when `official_holdout`).
    split_seed: selects which scenes go where.
    s2_units: what the s2 files hold: 'dn' (as published) or
      'reflectance' (a copy exported as 0..1).
    s1_units: what the s1 files hold: 'db' (as published) or 'linear'.
  """
  s2_bands: tuple[str, ...] = sen12_common.S2_BANDS
  lc_band: str = "igbp"
  seasons: tuple[str, ...] = sen12_common.SEASONS
  official_holdout: bool = True
  split_ratios: tuple[float, float, float] = (0.9, 0.1, 0.0)
  split_seed: int = 0
  s2_units: str = "dn"
  s1_units: str = "db"


def triplet_examples(patch: sen12_common.Patch, *, s2_bands: Sequence[str],
                     lc_band: str, s1_units: str, s2_units: str):
  """The example of one triplet keyed by the patch id, or none if a read has
  non-finite or nodata pixels (plain and Beam builds alike); the config's
  bands and units are passed as plain values (picklable for Beam)."""
  s2_indexes = sen12_common.band_indexes(s2_bands)
  s1_file = dataclasses.replace(sen12_common.S1_DB, units=s1_units)
  s2_file = dataclasses.replace(sen12_common.S2_DN, units=s2_units)
  # IGBP codes are checked against the class table; LCCS bands have none.
  lc_file = None if lc_band != "igbp" else sen12_common.FileUnits(
      "lc", "labels", units_lib.class_codes(IGBP_CLASSES), LC_BANDS)

  def read_patch(patch):
    return {
        "s1": sen12_common.read_geotiff(patch.paths["s1"], expected_bands=2,
                                        units=s1_file),
        "s2": sen12_common.read_geotiff(patch.paths["s2"], expected_bands=13,
                                        bands=s2_indexes, units=s2_file),
        "lc": sen12_common.read_geotiff(
            patch.paths["lc"], expected_bands=4,
            bands=[LC_BANDS.index(lc_band) + 1], units=lc_file),
    }

  for patch, reads in sen12_common.valid_patches([patch], read_patch,
                                                 dataset="sen12ms"):
    yield patch.id, {
        "s1": sen12_common.s1_db(reads["s1"].data, s1_units),
        "s2": sen12_common.s2_reflectance(reads["s2"].data, s2_units),
        "lulc": reads["lc"].data[..., 0].astype(np.uint8),
        **sen12_common.metadata_values(patch, reads["s1"]),
    }


class Builder(sen12_common.PatchBuilder):
  """SEN12MS Sentinel-1 / Sentinel-2 / land-cover patch triplets."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = sen12_common.s2_configs(BuilderConfig, ", IGBP")
  MODALITIES = ("s1", "s2", "lc")
  EXT = "tif"
  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "Initial release.",
                   "1.1.0": "Bands, units and classes of the fields in the "
                            "metadata."}
  LAYOUTS = (sen12_common.SEASON_FOLDER, sen12_common.MODALITY_FOLDER)

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    sen12_common.band_indexes(config.s2_bands)
    sen12_common.check_units(config)
    if config.lc_band not in LC_BANDS:
      raise ValueError(f"sen12ms: lc_band {config.lc_band!r} is not one of "
                       f"{LC_BANDS}.")
    features = sen12_common.geotiff_features(
        ("s1", "s2", "lulc"), PATCH, bands={"s2": config.s2_bands})
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict(features),
        homepage="https://mediatum.ub.tum.de/1474000",
        citation="Schmitt, M., Hughes, L. H., Qiu, C., Zhu, X. X. (2019). "
        "SEN12MS - a curated dataset of georeferenced multi-spectral "
        "Sentinel-1/2 imagery for deep learning and data fusion. ISPRS "
        "Annals IV-2/W7, 153-160.",
        metadata=tfds.core.MetadataDict(
            s1_bands=list(sen12_common.S1_BANDS),
            s2_bands=list(config.s2_bands), lc_band=config.lc_band,
            **field_layout.to_metadata({
                "s2": sen12_common.s2_layout("s2", config.s2_bands),
                "lulc": field_layout.layout(
                    "lulc", bands=(config.lc_band,), units="class index",
                    classes=IGBP_CLASSES if config.lc_band == "igbp"
                    else ())})),
    )

  def _split_plan(self):
    config = self.builder_config
    fixed = ({group: "test" for group in HOLDOUT_SCENES}
             if config.official_holdout else {})
    return config.split_ratios, fixed

  def _patch_examples(self):
    config = self.builder_config
    return functools.partial(triplet_examples, s2_bands=config.s2_bands,
                             lc_band=config.lc_band,
                             s1_units=config.s1_units,
                             s2_units=config.s2_units)
