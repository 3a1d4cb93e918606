"""Bands and units of a dataset's fields: selection by name, normalization by
units, and the errors for bands, units and classes a run cannot use."""

import jax
import numpy as np
import pytest

from rsjax.data import field_layout, pipeline
from rsjax.data import normalize as normalize_lib
from rsjax.geo import sar

MEMORY = dict(source="memory", batch_size=8, tile_size=8, memory_examples=16,
              seed=5, augment="none", shuffle=False)


def _mesh():
  return jax.make_mesh((8, 1), ("data", "fsdp"))


def _first(config):
  it = pipeline.create_iterator(config, _mesh(), train=False)
  batch = jax.tree.map(np.asarray, next(it))
  it.close()
  return batch


def test_metadata_round_trip_and_declared_default():
  gid = field_layout.layout("s2", bands=("blue", "green", "red", "nir"),
                            units=field_layout.DN8)
  meta = field_layout.to_metadata({"s2": gid})
  back = field_layout.from_metadata(meta, ("s2", "s1", "scene_id"))
  assert back["s2"] == gid
  assert back["s1"] == field_layout.declared("s1")
  assert "scene_id" not in back
  assert field_layout.declared("s2").bands == ("B2", "B3", "B4", "B8")


def test_layout_takes_units_of_declared_bands_and_asks_for_others():
  picked = field_layout.layout("s1", bands=("VV",))
  assert picked.units == ("dB",)
  with pytest.raises(ValueError, match=r"units of band\(s\) \['B1'\]"):
    field_layout.layout("s2", bands=("B1", "B2"))


def test_select_by_name_and_missing_bands_name_the_config_key():
  thirteen = field_layout.layout(
      "s2", bands=("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A",
                   "B9", "B10", "B11", "B12"), units="reflectance")
  indices, picked = field_layout.select("s2", thirteen,
                                        ("B2", "B3", "B4", "B8"))
  assert indices == (1, 2, 3, 7)
  assert picked.bands == ("B2", "B3", "B4", "B8")
  rgb = field_layout.layout("s2", bands=("B4", "B3", "B2"))
  with pytest.raises(field_layout.MissingBands) as error:
    field_layout.select("s2", rgb, ("B2", "B3", "B4", "B8"), "dataset 'x'")
  message = str(error.value)
  assert "['B8']" in message and "config.data.bands" in message
  assert "dataset 'x'" in message


def test_bands_config_errors():
  with pytest.raises(KeyError, match="not in config.data.fields"):
    field_layout.check_bands_config({"s2_t2": ("B2",)}, ("s2", "s1"))
  with pytest.raises(ValueError, match="no channel axis"):
    field_layout.check_bands_config({"lulc": ("label",)}, ("lulc",))
  with pytest.raises(ValueError, match="distinct bands"):
    field_layout.check_bands_config({"s2": ("B2", "B2")}, ("s2",))


def test_dn8_maps_0_255_onto_minus_one_one():
  dn = np.array([0, 51, 255, 300], np.float32)[:, None]
  rgb = field_layout.layout("s2", bands=("B4",), units=field_layout.DN8)
  got = normalize_lib.normalize("s2", dn, layout=rgb)
  # float32 arithmetic: within an ulp or two of 1 (about 1.2e-7 each).
  np.testing.assert_allclose(got[:, 0], [-1.0, 51 / 255 * 2 - 1, 1.0, 1.0],
                             rtol=0, atol=3e-7)
  back = normalize_lib.denormalize("s2", got, layout=rgb)
  # 51 through (x / 255) * 2 - 1 and back: a few float32 ulps of 51.
  np.testing.assert_allclose(back[:3, 0], [0, 51, 255], rtol=0, atol=1e-4)


def test_units_a_mapping_cannot_take_are_refused_naming_the_field():
  with pytest.raises(ValueError, match="field 's2' holds units \\['dB'\\]"):
    normalize_lib.source_of("s2", ("dB",))
  assert normalize_lib.source_of("s1", (field_layout.DN8,)) == "dn8"
  assert normalize_lib.source_of("s1", ("dB",)) == "s1"


def test_pipeline_selects_bands_by_name_before_normalizing(devices):
  full = _first(MEMORY)
  picked = _first({**MEMORY, "bands": {"s2": ("B8", "B2"), "s1": ("VH",)}})
  np.testing.assert_array_equal(picked["s2"], full["s2"][..., [3, 0]])
  # VH alone is normalized with VH's range, as in the two-band field.
  np.testing.assert_array_equal(picked["s1"], full["s1"][..., [1]])
  raw = _first({**MEMORY, "normalize": False, "bands": {"s1": ("VH",)}})
  low, high = sar.DEFAULT_DB_RANGES["VH"]
  expected = (np.clip(raw["s1"], low, high) - low) / (high - low) * 2 - 1
  np.testing.assert_allclose(picked["s1"], expected, rtol=0, atol=1e-6)


def test_abstract_batch_has_the_selected_band_counts(devices):
  shapes = pipeline.abstract_batch(
      {**MEMORY, "bands": {"s2": ("B4", "B3", "B2"), "s1": ("VV",)}},
      _mesh())
  assert shapes["s2"].shape == (8, 8, 8, 3)
  assert shapes["s1"].shape == (8, 8, 8, 1)


def test_check_dataset_refuses_missing_bands_and_too_few_classes():
  with pytest.raises(field_layout.MissingBands, match="'s2'.*B11"):
    pipeline.check_dataset({**MEMORY, "bands": {"s2": ("B4", "B11")}})
  with pytest.raises(field_layout.DatasetMismatch,
                     match=r"9 classes.*num_classes=4.*num_classes=9"):
    pipeline.check_dataset(MEMORY, num_classes=4)
  pipeline.check_dataset(MEMORY, num_classes=9)
