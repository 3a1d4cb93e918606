"""Every builder stores declared fields as `rsjax.data.fields` declares them.

For each builder config, every feature named like a declared field has the
declared shape (with the bands the dataset's metadata records for it,
`rsjax.data.field_layout`), the declared dtype (uint8 images for fields
held as 8-bit numbers) and, for rasters, the storage `field_features` gives.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_builders import field_features
from data_builders.gid15 import gid15_dataset_builder
from data_builders.rs_multisource import rs_multisource_dataset_builder as rsms
from data_builders.sen1_2 import sen1_2_dataset_builder
from data_builders.sen12ms import sen12ms_dataset_builder
from data_builders.sen12ms_cr import sen12ms_cr_dataset_builder
from data_builders.whu_opt_sar import whu_opt_sar_dataset_builder
from rsjax.data import field_layout
from rsjax.data import fields

BUILDERS = (rsms.Builder, sen12ms_dataset_builder.Builder,
            sen12ms_cr_dataset_builder.Builder, sen1_2_dataset_builder.Builder,
            gid15_dataset_builder.Builder, whu_opt_sar_dataset_builder.Builder)
CONFIGS = [(builder, config) for builder in BUILDERS
           for config in builder.BUILDER_CONFIGS]


def _info(builder, config, tmp_path):
  return builder(config=config, data_dir=str(tmp_path)).info


@pytest.mark.parametrize("builder, config", CONFIGS,
                         ids=[f"{b.name}/{c.name}" for b, c in CONFIGS])
def test_builder_features_are_the_declared_fields(builder, config, tmp_path):
  info = _info(builder, config, tmp_path)
  declared = [n for n in info.features if n in fields.FIELDS]
  layouts = field_layout.from_metadata(info.metadata, declared)
  for name in declared:
    feature = info.features[name]
    f = fields.field(name)
    if f.spatial:
      held = layouts[name]
      shape, dtype = fields.spec(name, feature.shape[0],
                                 held.bands if f.channel_axis else None)
      assert feature.shape == shape, name
      if set(held.units) == {field_layout.DN8}:
        assert isinstance(feature, tfds.features.Image), name
        assert feature.np_dtype == np.uint8, name
      else:
        assert isinstance(feature, tfds.features.Tensor), name
        assert feature.np_dtype == np.dtype(dtype), name
    elif f.dtype is object:
      assert isinstance(feature, tfds.features.Text), name
    else:
      assert (feature.shape, feature.np_dtype) == (f.shape, np.dtype(f.dtype))
  if builder is rsms.Builder:  # Stores every field with its declared encoding.
    for name in declared:
      assert info.features[name].to_json() == field_features.feature(
          name, config.tile_size).to_json(), name


def test_band_metadata_names_the_declared_bands():
  """SEN12MS(-CR) 'rgbn' holds exactly the declared S2 and S1 bands."""
  for builder in (sen12ms_dataset_builder.Builder,
                  sen12ms_cr_dataset_builder.Builder):
    config = next(c for c in builder.BUILDER_CONFIGS if c.name == "rgbn")
    assert tuple(config.s2_bands) == fields.band_names("s2")
  from data_builders import sen12_common  # pylint: disable=g-import-not-at-top
  assert sen12_common.S1_BANDS == fields.band_names("s1")


def test_rs_multisource_writes_every_declared_field_with_all_groups():
  names = set(rsms.feature_names(rsms.SYNTHETIC_TINY))
  assert names == set(fields.FIELDS)


def test_feature_of_another_band_set_and_encoding():
  feature = field_features.feature("s2", 32, bands=("B2", "B3", "B4", "B8",
                                                    "B11"), encoding="bytes")
  assert feature.shape == (32, 32, 5) and feature.np_dtype == np.float32
  assert feature.to_json() == tfds.features.Tensor(
      shape=(32, 32, 5), dtype=np.float32, encoding="bytes").to_json()
  assert isinstance(field_features.feature("crs"), tfds.features.Text)
  with pytest.raises(ValueError, match="tile_size"):
    field_features.feature("s1")
