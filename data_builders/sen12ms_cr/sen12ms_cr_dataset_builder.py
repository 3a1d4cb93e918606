"""TFDS builder for SEN12MS-CR: Sentinel-1, cloud-free and cloudy Sentinel-2.

SEN12MS-CR (Ebel, Meraner, Schmitt, Zhu 2021, "Multisensor data fusion for
cloud removal in global and all-season Sentinel-2 imagery", IEEE TGRS 59(7),
5866-5878) adds to the SEN12MS patches a cloudy Sentinel-2 observation taken
close in time: 122,218 triplets of georeferenced 256x256 GeoTIFFs at 10 m,

  s1         2 bands float32, sigma0 in dB: VV, VH.
  s2         13 bands uint16, cloud-free Sentinel-2 L1C (reflectance x 10^4).
  s2_cloudy  13 bands uint16, the cloudy observation of the same patch.

Layout read: each mediaTUM archive `<season>_<modality>.tar.gz` unpacks into
its own folder, as the authors' loader (github.com/PatrickTUM/SEN12MS-CR-TS,
`dataLoader`) expects:

    <manual_dir>/ROIs1158_spring_s1/s1_<n>/ROIs1158_spring_s1_<n>_p<k>.tif
    <manual_dir>/ROIs1158_spring_s2/s2_<n>/ROIs1158_spring_s2_<n>_p<k>.tif
    <manual_dir>/ROIs1158_spring_s2_cloudy/s2_cloudy_<n>/
        ROIs1158_spring_s2_cloudy_<n>_p<k>.tif
    ... likewise ROIs1868_summer, ROIs1970_fall, ROIs2017_winter.

Features: `s1` (256, 256, 2) float32 dB; `s2` and `s2_cloudy` (256, 256,
bands) float32 TOA reflectance (DN x 1e-4) for the config's bands;
`cloud_mask` (256, 256) uint8, 0 clear, 1 cloud, 2 shadow, from the
difference of the cloudy and the clear image's visible bands
(`rsjax.geo.cloud_difference`: an approximation; the dataset has no masks,
its authors use the s2cloudless detector); plus id,
season, scene, patch, CRS (WKT) and affine transform. Splits are by scene
(`split_ratios`, `split_seed`). Patches with non-finite or nodata pixels are
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

from data_builders import field_features
from data_builders import sen12_common
from rsjax.data import field_layout
from rsjax.geo import cloud_difference

PATCH = 256

MANUAL_DOWNLOAD_INSTRUCTIONS = """
SEN12MS-CR is published by TU Munich on mediaTUM (https://mediatum.ub.tum.de/1554803,
doi:10.14459/2020mp1554803) under CC BY 4.0; cite Ebel et al. (2021), IEEE TGRS
59(7), 5866-5878. Download the archives <season>_{s1,s2,s2_cloudy}.tar.gz of the
seasons you want and extract each into manual_dir, so that it holds:

  <manual_dir>/ROIs1158_spring_s1/s1_<n>/ROIs1158_spring_s1_<n>_p<k>.tif
  <manual_dir>/ROIs1158_spring_s2/s2_<n>/ROIs1158_spring_s2_<n>_p<k>.tif
  <manual_dir>/ROIs1158_spring_s2_cloudy/s2_cloudy_<n>/ROIs1158_spring_s2_cloudy_<n>_p<k>.tif
  (and ROIs1868_summer_*, ROIs1970_fall_*, ROIs2017_winter_* likewise)

Every s1 patch needs its s2 and s2_cloudy partner. Then:
  tfds build data_builders/sen12ms_cr --manual_dir=<manual_dir> [--config=rgbn]
On Apache Beam (a cluster, or DirectRunner on this machine), by module so that
Beam's workers import the same code:
  tfds build sen12ms_cr/rgbn \\
    --imports data_builders.sen12ms_cr.sen12ms_cr_dataset_builder \\
    --manual_dir=<manual_dir> --data_dir=<data_dir> \\
    --beam_pipeline_options=runner=DataflowRunner,project=<p>,region=<r>,\\
temp_location=gs://<bucket>/tmp,setup_file=<rsjax>/pyproject.toml
(manual_dir and data_dir where every worker can read and write them).
"""


@dataclasses.dataclass(kw_only=True)
class BuilderConfig(tfds.core.BuilderConfig):
  """SEN12MS-CR options.

  Attributes:
    s2_bands: Sentinel-2 bands kept in `s2` and `s2_cloudy`, by name.
    seasons: the seasonal ROI sets to read.
    split_ratios: relative train/validation/test sizes, in scenes.
    split_seed: selects which scenes go where.
    s2_units: what the s2 / s2_cloudy files hold: 'dn' (as published) or
      'reflectance' (a copy exported as 0..1).
    s1_units: what the s1 files hold: 'db' (as published) or 'linear'.
    cloud_threshold, shadow_threshold: visible reflectance gain / loss of
      the cloudy image over the clear one that makes a pixel cloud / shadow
      in `cloud_mask` (`rsjax.geo.cloud_difference`).
  """
  s2_bands: tuple[str, ...] = sen12_common.S2_BANDS
  seasons: tuple[str, ...] = sen12_common.SEASONS
  split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
  split_seed: int = 0
  s2_units: str = "dn"
  s1_units: str = "db"
  cloud_threshold: float = cloud_difference.CLOUD_THRESHOLD
  shadow_threshold: float = cloud_difference.SHADOW_THRESHOLD


def triplet_examples(patch: sen12_common.Patch, *, s2_bands: Sequence[str],
                     s1_units: str, s2_units: str,
                     cloud_threshold: float = cloud_difference.CLOUD_THRESHOLD,
                     shadow_threshold: float = cloud_difference.SHADOW_THRESHOLD
                     ):
  """The example of one triplet keyed by the patch id, or none if a read has
  non-finite or nodata pixels (plain and Beam builds alike); the config's
  bands and units are passed as plain values (picklable for Beam)."""
  indexes = sen12_common.band_indexes(s2_bands)
  s1_file = dataclasses.replace(sen12_common.S1_DB, units=s1_units)

  def read_patch(patch):
    return {
        "s1": sen12_common.read_geotiff(patch.paths["s1"], expected_bands=2,
                                        units=s1_file),
        **{name: sen12_common.read_geotiff(
            patch.paths[name], expected_bands=13, bands=indexes,
            units=dataclasses.replace(sen12_common.S2_DN, source=name,
                                      units=s2_units))
           for name in ("s2", "s2_cloudy")},
    }

  for patch, reads in sen12_common.valid_patches([patch], read_patch,
                                                 dataset="sen12ms_cr"):
    optical = {name: sen12_common.s2_reflectance(reads[name].data, s2_units)
               for name in ("s2", "s2_cloudy")}
    yield patch.id, {
        "s1": sen12_common.s1_db(reads["s1"].data, s1_units),
        **optical,
        "cloud_mask": cloud_difference.difference_mask(
            optical["s2"], optical["s2_cloudy"], s2_bands,
            cloud_threshold=cloud_threshold,
            shadow_threshold=shadow_threshold),
        **sen12_common.metadata_values(patch, reads["s1"]),
    }


class Builder(sen12_common.PatchBuilder):
  """SEN12MS-CR Sentinel-1 / cloud-free / cloudy Sentinel-2 triplets."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = sen12_common.s2_configs(BuilderConfig)
  MODALITIES = ("s1", "s2", "s2_cloudy")
  EXT = "tif"
  LAYOUTS = (sen12_common.MODALITY_FOLDER,)
  VERSION = tfds.core.Version("1.2.0")
  RELEASE_NOTES = {"1.0.0": "Initial release.",
                   "1.1.0": "Bands and units of the fields in the metadata.",
                   "1.2.0": "cloud_mask from the cloudy / clear difference."}

  def _info(self) -> tfds.core.DatasetInfo:
    bands = self.builder_config.s2_bands
    sen12_common.band_indexes(bands)
    sen12_common.check_units(self.builder_config)
    missing = [b for b in cloud_difference.VISIBLE_BANDS if b not in bands]
    if missing:
      raise ValueError(f"sen12ms_cr: s2_bands {list(bands)} lack {missing}, "
                       "which the cloud mask is computed from.")
    features = sen12_common.geotiff_features(
        self.MODALITIES, PATCH, bands={"s2": bands, "s2_cloudy": bands})
    features["cloud_mask"] = field_features.feature(
        "cloud_mask", PATCH, encoding="zlib")
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict(features),
        homepage="https://mediatum.ub.tum.de/1554803",
        citation="Ebel, P., Meraner, A., Schmitt, M., Zhu, X. X. (2021). "
        "Multisensor data fusion for cloud removal in global and all-season "
        "Sentinel-2 imagery. IEEE TGRS 59(7), 5866-5878.",
        metadata=tfds.core.MetadataDict(
            s1_bands=list(sen12_common.S1_BANDS), s2_bands=list(bands),
            **field_layout.to_metadata({
                name: sen12_common.s2_layout(name, bands)
                for name in ("s2", "s2_cloudy")})),
    )

  def _patch_examples(self):
    config = self.builder_config
    return functools.partial(triplet_examples, s2_bands=config.s2_bands,
                             s1_units=config.s1_units,
                             s2_units=config.s2_units,
                             cloud_threshold=config.cloud_threshold,
                             shadow_threshold=config.shadow_threshold)
