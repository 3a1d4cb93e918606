"""TFDS builder for SEN1-2: co-registered Sentinel-1 / Sentinel-2 PNG patch pairs.

SEN1-2 (Schmitt, Hughes, Zhu 2018, "The SEN1-2 dataset for deep learning in
SAR-optical data fusion", ISPRS Annals IV-1) holds 282,384 pairs of 256x256
patches at 10 m: an 8-bit grey Sentinel-1 VV image and an 8-bit Sentinel-2
RGB (B4, B3, B2) image, over four seasonal sets of ROIs. It is the dataset of
the cloud-removal paper (SAR -> optical, then cloud removal).

Layout read (the published archive, as described in the paper and used by the
public SEN1-2 loaders):

    <manual_dir>/ROIs1158_spring/s1_<scene>/ROIs1158_spring_s1_<scene>_p<k>.png
    <manual_dir>/ROIs1158_spring/s2_<scene>/ROIs1158_spring_s2_<scene>_p<k>.png
    ... likewise ROIs1868_summer, ROIs1970_fall, ROIs2017_winter.

Features: `s1` (256, 256, 1) VV and `s2` (256, 256, 3) B4, B3, B2, both the
published 8-bit values (units `field_layout.DN8`, which rsjax normalizes
from [0, 255] onto [-1, 1] as the cloud-removal paper does); the dataset's
metadata records these bands and units (`rsjax.data.field_layout`).

Splits are by scene (season + ROI number), so patches of one scene never land
in two splits; `split_ratios` and `split_seed` select the assignment.

The `paper` config plans the splits to the cloud-removal paper's sizes
(Darbaghshahi et al., Sec. 2.3: the SAR-to-optical GAN is trained on 18,712
pairs and tested on 4,678 of SEN1-2, which does not say which), plus 500
validation pairs of other scenes that the paper does not have (rsjax's
trainer watches a validation split; the paper's numbers are the test
split's): `split_sizes` = (train, validation, test) exact example counts.
Scenes are taken in `split_seed`'s hash order (the order `split_ratios`
uses) and filled into train, then validation, then test, each scene's
patches in patch-number order; the scene that completes a split gives it only
the patches it needs and the rest of that scene is left out, so no scene is
in two splits. An archive too small for the sizes stops the build with the
counts it found. The paper's second GAN (cloud removal, 2,000 training and
500 test pairs) has no split of its own here: see configs/cloud_removal.py.

The build runs in this process, or on Apache Beam when the download config
names a Beam runner or options (`tfds build --beam_pipeline_options=...`):
both make each pair with `pair_examples` (`data_builders.example_generation`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from data_builders import public_common, sen12_common
from rsjax.data import field_layout

PATCH = 256
LAYOUTS = {
    "s1": field_layout.layout("s1", bands=("VV",), units=field_layout.DN8),
    "s2": field_layout.layout("s2", bands=("B4", "B3", "B2"),
                              units=field_layout.DN8),
}

MANUAL_DOWNLOAD_INSTRUCTIONS = """
SEN1-2 is published by TU Munich on mediaTUM (https://mediatum.ub.tum.de/1436631,
doi:10.14459/2018mp1436631) under CC BY 4.0; cite Schmitt, Hughes and Zhu (2018),
ISPRS Annals IV-1, 141-146. Download the archive (about 45 GB) and extract it so
that manual_dir holds the season folders directly:

  <manual_dir>/ROIs1158_spring/s1_<n>/ROIs1158_spring_s1_<n>_p<k>.png
  <manual_dir>/ROIs1158_spring/s2_<n>/ROIs1158_spring_s2_<n>_p<k>.png
  <manual_dir>/ROIs1868_summer/...   <manual_dir>/ROIs1970_fall/...
  <manual_dir>/ROIs2017_winter/...

Seasons you did not download are skipped; every s1 patch needs its s2 partner.
Then: tfds build data_builders/sen1_2 --manual_dir=<manual_dir>
On Apache Beam (a cluster, or DirectRunner on this machine), by module so that
Beam's workers import the same code:
  tfds build sen1_2 --imports data_builders.sen1_2.sen1_2_dataset_builder \\
    --manual_dir=<manual_dir> --data_dir=<data_dir> \\
    --beam_pipeline_options=runner=DataflowRunner,project=<p>,region=<r>,\\
temp_location=gs://<bucket>/tmp,setup_file=<rsjax>/pyproject.toml
(manual_dir and data_dir where every worker can read and write them).
"""


@dataclasses.dataclass(kw_only=True)
class BuilderConfig(tfds.core.BuilderConfig):
  """SEN1-2 options.

  Attributes:
    seasons: the seasonal ROI sets to read.
    split_ratios: relative train/validation/test sizes, in scenes.
    split_seed: selects which scenes go where.
    split_sizes: None (split by `split_ratios`), or exact (train,
      validation, test) example counts (`plan_split_sizes`); the patches
      that do not fit are left out of the dataset.
  """
  seasons: tuple[str, ...] = sen12_common.SEASONS
  split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
  split_seed: int = 0
  split_sizes: tuple[int, int, int] | None = None


PAPER_SPLIT_SIZES = (18_712, 500, 4_678)
"""The `paper` config's (train, validation, test) pairs: the cloud-removal
paper's 18,712 / 4,678 (Sec. 2.3) and rsjax's 500 validation pairs."""


class TooFewPatches(ValueError):
  """The archive holds fewer pairs than `split_sizes` needs."""


def plan_split_sizes(patches, sizes, *, seed: int,
                     splits=public_common.SPLITS) -> dict[str, list]:
  """{split: its patches}, exactly `sizes[i]` for `splits[i]`, no scene in
  two splits (the order and truncation are the module docstring's).

  Raises TooFewPatches, with the counts, when the scenes run out first.
  """
  if len(sizes) != len(splits) or any(int(n) < 1 for n in sizes):
    raise ValueError(f"sen1_2: split_sizes must be {len(splits)} positive "
                     f"counts for {tuple(splits)}, got {sizes!r}")
  by_scene: dict[str, list] = {}
  for patch in patches:
    by_scene.setdefault(patch.group, []).append(patch)
  hash_unit = public_common._hash_unit  # noqa: SLF001  split_groups' order
  order = sorted(by_scene, key=lambda group: (hash_unit(seed, group), group))
  out = {split: [] for split in splits}
  scenes = iter(order)
  for split, size in zip(splits, sizes):
    while len(out[split]) < size:
      scene = next(scenes, None)
      if scene is None:
        raise TooFewPatches(
            f"sen1_2: split_sizes {tuple(sizes)} ({sum(sizes)} pairs) do not "
            f"fit the {len(patches)} pairs of {len(order)} scenes found: "
            f"{split!r} has {len(out[split])} of its {size} when the scenes "
            f"run out (a scene is never shared by two splits). Download more "
            f"seasons, or build the 'default' config.")
      ordered = sorted(by_scene[scene], key=lambda p: p.patch)
      out[split].extend(ordered[:size - len(out[split])])
  return out


def _read_png(path, channels: int) -> np.ndarray:
  """A PNG as (256, 256, channels) uint8; grey or RGB whatever its mode."""
  with path.open("rb") as f, Image.open(f) as image:
    image = image.convert("L" if channels == 1 else "RGB")
    array = np.asarray(image, dtype=np.uint8)
  array = array.reshape(array.shape[:2] + (channels,))
  if array.shape != (PATCH, PATCH, channels):
    raise ValueError(
        f"sen1_2: {path} is {array.shape[1]}x{array.shape[0]} pixels, "
        f"expected {PATCH}x{PATCH}.")
  return array


def pair_examples(patch: sen12_common.Patch):
  """The example of one S1/S2 pair, keyed by the patch id (plain and Beam
  builds alike)."""
  yield patch.id, {
      "s1": _read_png(patch.paths["s1"], 1),
      "s2": _read_png(patch.paths["s2"], 3),
      **sen12_common.metadata_values(patch),
  }


class Builder(sen12_common.PatchBuilder):
  """SEN1-2 Sentinel-1 VV / Sentinel-2 RGB patch pairs."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      BuilderConfig(name="default", description="All four seasons, split "
                    "8:1:1 by scene."),
      BuilderConfig(name="paper", split_sizes=PAPER_SPLIT_SIZES,
                    description="The cloud-removal paper's sizes: 18,712 "
                    "train and 4,678 test pairs (and 500 validation), by "
                    "scene."),
  ]
  MODALITIES = ("s1", "s2")
  EXT = "png"
  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "Initial release.",
                   "1.1.0": "Bands and units of s1 and s2 in the metadata."}

  def _info(self) -> tfds.core.DatasetInfo:
    features = {
        "s1": tfds.features.Image(shape=(PATCH, PATCH, 1)),
        "s2": tfds.features.Image(shape=(PATCH, PATCH, 3)),
        **sen12_common.metadata_features(tfds.features, georeferenced=False),
    }
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict(features),
        supervised_keys=("s1", "s2"),
        homepage="https://mediatum.ub.tum.de/1436631",
        metadata=tfds.core.MetadataDict(field_layout.to_metadata(LAYOUTS)),
        citation="Schmitt, M., Hughes, L. H., Zhu, X. X. (2018). The SEN1-2 "
        "dataset for deep learning in SAR-optical data fusion. ISPRS Annals "
        "IV-1, 141-146.",
    )

  def _patch_examples(self):
    return pair_examples

  _planned: dict | None = None  # {patch id: split} of a split_sizes build

  def _scan(self, manual_dir):
    patches = super()._scan(manual_dir)
    sizes = self.builder_config.split_sizes
    if sizes is None:
      self._planned = None
      return patches
    plan = plan_split_sizes(patches, sizes, seed=self.builder_config.split_seed)
    self._planned = {p.group: split for split, kept in plan.items()
                     for p in kept}
    return [p for kept in plan.values() for p in kept]

  def _split_plan(self):
    """The config's ratios, or every kept scene's planned split."""
    return self.builder_config.split_ratios, dict(self._planned or {})
