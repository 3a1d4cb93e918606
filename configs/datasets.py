"""The papers' public datasets, as what a config reads from each.

A config file takes a dataset's name as a variant (`configs/rs_spade.py:sen12ms`,
`configs/unet_seg.py:gid15`, ...): `apply(config, name)` points `config.data`
at the TFDS dataset the builder in `data_builders/<builder>/` writes and sets
the fields, bands and class count the dataset has. Build the dataset first,
then train on it:

  tfds build data_builders/sen12ms --manual_dir=<download> --data_dir=<DIR>
  python -m launch.train --config configs/rs_spade.py:sen12ms \\
      --config.data.data_dir=<DIR> --workdir workdir/rs_spade_sen12ms

  sen1_2       SEN1-2 (the cloud-removal paper): VV and B2, B3, B4, 8-bit.
  sen12ms      SEN12MS, all 13 S2 bands built: S2 B2, B3, B4, B8 picked by
               name, S1 VV + VH in dB, IGBP land cover (codes 1-17, so 18
               classes with an unused 0). No DEM.
  sen12ms_cr   SEN12MS-CR: S1, clear and cloudy S2 (13 bands built, the
               cloud-removal bands B2, B3, B4 picked), real clouds, and the
               builder's difference cloud mask (an approximation).
  gid15        GID-15 (the CSEBGAN paper): Gaofen-2 RGB, 8-bit; 15 classes
               and unknown (0, ignored by segmentation losses and scores).
  whu_opt_sar  WHU-OPT-SAR (the fusion review): Gaofen-1 RGB + NIR and
               Gaofen-3 SAR, 8-bit; 7 classes and background (0, ignored).

Configs are data: this module imports nothing from rsjax; band and class
names are those the builders record (`rsjax.data.field_layout`).
"""

from __future__ import annotations

import dataclasses

import ml_collections


@dataclasses.dataclass(frozen=True)
class Dataset:
  """What a run reads from one public dataset.

  tfds_name: `builder/config` as `tfds build` writes it.
  fields: the fields it has (`config.data.fields` keeps those of them a
    system reads).
  bands: `config.data.bands` ({field: band names}; None: the declared ones).
  num_classes: classes of its `lulc` field (None: it has none).
  ignore_index: the class a segmentation run does not count (unknown or
    background), or None.
  """
  tfds_name: str
  fields: tuple[str, ...]
  bands: dict | None = None
  num_classes: int | None = None
  ignore_index: int | None = None


DATASETS = {
    "sen1_2": Dataset("sen1_2", ("s2", "s1"),
                      bands={"s1": ("VV",), "s2": ("B2", "B3", "B4")}),
    "sen12ms": Dataset("sen12ms/all", ("s2", "s1", "lulc"), num_classes=18),
    "sen12ms_cr": Dataset("sen12ms_cr/all",
                          ("s2", "s1", "s2_cloudy", "cloud_mask"),
                          bands={"s2": ("B2", "B3", "B4"),
                                 "s2_cloudy": ("B2", "B3", "B4")}),
    "gid15": Dataset("gid15/rgb", ("s2", "lulc"),
                     bands={"s2": ("red", "green", "blue")}, num_classes=16,
                     ignore_index=0),
    "whu_opt_sar": Dataset("whu_opt_sar", ("s2", "s1", "lulc"),
                           bands={"s2": ("red", "green", "blue", "nir"),
                                  "s1": ("intensity",)},
                           num_classes=8, ignore_index=0),
}
NAMES = tuple(DATASETS)


def apply(config: ml_collections.ConfigDict, name: str) -> Dataset:
  """Points `config` at dataset `name`: its TFDS name, the fields of
  `config.data.fields` it has (an error naming those it lacks), its bands,
  its class count and ignored class (segmentation). Returns the dataset."""
  dataset = DATASETS[name]
  wanted = tuple(config.data.fields)
  missing = [f for f in wanted if f not in dataset.fields and f != "valid"]
  if missing:
    raise ValueError(
        f"dataset {name!r} has no field(s) {missing} (it has "
        f"{list(dataset.fields)}); this config reads {list(wanted)}.")
  config.data.name = dataset.tfds_name
  # `valid` (where every source has data) is rs_multisource's: the public
  # datasets hold complete patches.
  config.data.fields = tuple(f for f in wanted if f in dataset.fields)
  config.data.bands = None if dataset.bands is None else {
      field: bands for field, bands in dataset.bands.items()
      if field in config.data.fields}
  if dataset.num_classes is not None:
    config.num_classes = dataset.num_classes
  if dataset.ignore_index is not None and "ignore_index" in config.loss:
    config.loss.ignore_index = dataset.ignore_index
  return dataset
