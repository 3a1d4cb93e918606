"""rsjax.data.fields, the one declaration of every field, and the places that
read it: normalization, the scene reader's rasters and full-scene inference
agree with it (the TFDS builders' features: field_features_test.py in
data_builders/)."""

import dataclasses
import pathlib
import types

import numpy as np
import pytest
from rasterio.windows import Window

from rsjax.data import fields, normalize
from rsjax.data.memory_source import random_example
from rsjax.eval.inference import predictor
from rsjax.geo import bands as geo_bands
from rsjax.geo import scene as geo_scene

DUMMY_SCENE = (pathlib.Path(__file__).resolve().parents[2] / "data_builders"
               / "rs_multisource" / "dummy_data" / "scene_a")
RASTERS = tuple(n for n, f in fields.FIELDS.items() if f.spatial)


def test_every_field_is_declared_whole():
  assert tuple(fields.FIELDS) == tuple(fields.SPATIAL) + tuple(fields.METADATA)
  for name, f in fields.FIELDS.items():
    assert f.name == name and f.kind in fields.KINDS and f.description
    assert f.encoding in fields.ENCODINGS
    np.dtype(f.dtype)  # a numpy dtype (object for text)
    if f.spatial:
      assert len(f.bands) == len(f.units) == fields.channels(name) >= 1
      assert len(set(f.bands)) == len(f.bands), name
      assert fields.band_units(name) == dict(zip(f.bands, f.units))
      shape, dtype = fields.spec(name, 8)
      assert shape == ((8, 8, len(f.bands)) if f.channel_axis else (8, 8))
      assert dtype is f.dtype and fields.SPATIAL[name] == (
          len(f.bands) if f.channel_axis else None, f.dtype)
    else:
      assert f.bands == () and len(f.units) == 1 and f.normalization is None
      assert fields.spec(name, 8) == fields.METADATA[name] == (f.shape,
                                                               f.dtype)


def test_kinds_units_and_dtypes():
  assert fields.fields_of_kind("optical") == ("s2", "s2_cloudy", "s2_t2",
                                              "s2_coarse")
  assert fields.fields_of_kind("sar") == ("s1", "s1_t2")
  assert fields.fields_of_kind("categorical") == ("lulc", "lulc_t2")
  assert fields.fields_of_kind("mask") == ("valid", "cloud_mask")
  assert fields.fields_of_kind("elevation") == ("dem",)
  assert fields.fields_of_kind("metadata") == ("scene_id", "crs", "transform",
                                               "tile_row", "tile_col")
  for name in fields.fields_of_kind("optical"):
    assert fields.band_names(name) == ("B2", "B3", "B4", "B8")
    assert set(fields.band_units(name).values()) == {"reflectance"}
  for name in fields.fields_of_kind("sar"):
    assert fields.band_units(name) == {"VV": "dB", "VH": "dB"}
  assert fields.band_units("dem") == {"elevation": "metres", "slope": "degrees",
                                      "aspect": "degrees",
                                      "hillshade": "unitless"}
  for name in fields.fields_of_kind("optical", "sar", "elevation"):
    assert fields.field(name).dtype is np.float32
  for name in fields.fields_of_kind("categorical", "mask"):
    f = fields.field(name)
    assert f.dtype is np.uint8 and not f.channel_axis
    assert len(f.classes) - 1 <= np.iinfo(f.dtype).max
  assert fields.NUM_LULC_CLASSES == len(fields.class_names("lulc")) == 9
  assert fields.class_names("cloud_mask") == ("clear", "cloud", "shadow")


def test_band_sets_other_than_the_declared_one():
  l1c = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10",
         "B11", "B12")
  assert fields.spec("s2", 16, bands=l1c) == ((16, 16, 13), np.float32)
  assert fields.band_indices("s2", ("B4", "B3", "B2"), l1c) == (3, 2, 1)
  assert fields.composite_bands("s2", "NRG", l1c) == (7, 3, 2)
  assert fields.composite_bands("s2", "NRG", ("B2", "B3", "B4")) is None
  with pytest.raises(KeyError, match="B8A"):
    fields.band_indices("s2", ("B8A",))
  with pytest.raises(ValueError, match="channel axis"):
    fields.spec("lulc", 16, bands=("a", "b"))


def test_display_facts_for_panels():
  assert fields.composite_bands("s2", "RGB") == (2, 1, 0)  # B4, B3, B2
  assert fields.composite_bands("s2_coarse", "NRG") == (3, 2, 1)  # B8, B4, B3
  assert fields.composite_bands("s1", "RGB") is None
  assert fields.grey_band("s1") == 0                                # VV
  assert fields.grey_band("dem") == len(fields.band_names("dem")) - 1
  assert fields.grey_band("lulc") is None
  hexes = ["419BDF", "397D49", "88B053", "7A87C6", "E49635", "DFC35A",
           "C4281B", "A59B8F", "B39FE1"]
  expected = np.array([[int(h[i:i + 2], 16) for i in (0, 2, 4)]
                       for h in hexes], np.float32) / 255.0
  np.testing.assert_array_equal(fields.palette("lulc"), expected)
  np.testing.assert_array_equal(fields.DYNAMIC_WORLD_PALETTE, expected)
  for name in fields.fields_of_kind("categorical"):
    assert len(fields.palette(name)) == len(fields.class_names(name))


def test_a_wrong_declaration_is_refused():
  s2 = fields.field("s2")
  for change, message in (({"kind": "image"}, "kind"),
                          ({"units": ("dB",)}, "units"),
                          ({"encoding": "gzip"}, "encoding"),
                          ({"bands": ("B2", "B3", "B4")}, "display band")):
    with pytest.raises(ValueError, match=message):
      dataclasses.replace(s2, **change)
  with pytest.raises(ValueError, match="classes"):
    dataclasses.replace(fields.field("lulc"), classes=())
  with pytest.raises(KeyError, match="unknown field 'ndvi'"):
    fields.spec("ndvi", 8)
  with pytest.raises(ValueError, match="metadata"):
    fields.band_names("crs")


def test_normalization_sources_come_from_the_declaration():
  declared = {n: f.normalization for n, f in fields.FIELDS.items()}
  assert dict(normalize.FIELD_SOURCES) == {
      n: s for n, s in declared.items() if s is not None}
  assert set(normalize.FIELD_SOURCES.values()) <= set(normalize.SOURCES)
  assert set(normalize.PASSTHROUGH_FIELDS) == {
      n for n, s in declared.items() if s is None} | {"mask"}
  for name in fields.FIELDS:
    assert normalize.source_of(name) == declared[name]
  assert normalize.S2_BANDS == fields.band_names("s2")
  assert normalize.DEM_CHANNELS == fields.band_names("dem")
  assert tuple(normalize.default_config()["s1"]["polarizations"]) == (
      fields.band_names("s1"))


@pytest.mark.parametrize("aspect", normalize.ASPECT_MODES)
def test_normalized_band_names_match_the_normalized_arrays(aspect):
  config = {"dem": {"aspect": aspect}}
  example = random_example(0, 0, 8, RASTERS)
  for name in RASTERS:
    out = normalize.normalize(name, example[name], config)
    names = normalize.band_names(name, config)
    channels = out.shape[-1] if out.ndim == 3 else 1
    assert channels == len(names), name
  assert normalize.band_names("dem", config)[-1] == "hillshade"
  if aspect == "sincos":
    assert normalize.band_names("dem", config) == (
        "elevation", "slope", "aspect_sin", "aspect_cos", "hillshade")


def test_scene_sources_agree_with_the_declaration():
  for name, source in geo_scene.SOURCE_SPECS.items():
    f = fields.field(name)
    if source.kind == "dem":
      assert f.bands == geo_bands.TERRAIN_BANDS and source.bands == 1
    else:
      assert source.bands == f.channels
    if f.channel_axis and source.kind != "dem":
      assert source.band_names == f.bands, name
    if source.categorical:
      assert source.class_limit == len(f.classes), name


def test_scene_reader_windows_have_the_declared_shapes_and_dtypes():
  names = ("s2", "s1", "lulc", "dem")
  paths = geo_scene.find_sources(DUMMY_SCENE, names)
  with geo_scene.SceneReader(paths) as reader:
    arrays, valid = reader.read(Window(0, 0, 16, 16))
  for name in names:
    shape, dtype = fields.spec(name, 16)
    assert arrays[name].shape == shape and arrays[name].dtype == dtype, name
  assert valid.shape == fields.spec("valid", 16)[0]


@pytest.mark.parametrize("name", ("s2", "s2_cloudy", "s1", "dem", "lulc"))
def test_inference_output_bands_come_from_the_declaration(name):
  system = types.SimpleNamespace(output_field=name, output_bands=None)
  spec = predictor.output_spec(system, num_classes=9)
  kind = fields.field(name).kind
  if kind == "categorical":
    assert spec.kind == "classes" and name in predictor.CLASS_FIELDS
  elif kind == "optical":
    assert spec.kind == "reflectance"
    assert spec.descriptions == fields.band_names(name)
    assert predictor.REFLECTANCE_SCALE == geo_bands.S2_DN_PER_REFLECTANCE
  else:
    assert spec.kind == "physical" and spec.channels == fields.channels(name)


@pytest.mark.parametrize("name", fields.fields_of_kind("mask", "metadata"))
def test_inference_refuses_masks_and_metadata(name):
  system = types.SimpleNamespace(output_field=name, output_bands=None)
  with pytest.raises(ValueError, match="not an image field"):
    predictor.output_spec(system, num_classes=9)
