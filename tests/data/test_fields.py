"""rsjax.data.fields, the one declaration of every field, and the places that
read it: normalization, the scene reader's rasters and full-scene inference
agree with it (the TFDS builders' features: field_features_test.py in
data_builders/)."""

import dataclasses
import re
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


def _declaration_built_afresh():
  """rsjax.data.fields executed again, as a module object of its own.

  `FIELDS` is built once, at import; building it again here (under the same
  module name, without touching sys.modules) is what lets a test see the
  declaration that the current source makes, e.g. under mutation testing.
  """
  import importlib.util
  spec = importlib.util.spec_from_file_location(fields.__name__,
                                                fields.__file__)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


# The declaration as the sources document it. S2: B2 blue, B3 green, B4 red,
# B8 NIR, reflectance = DN / 10000 (ESA's L1C/L2A quantification value), true
# colour (R, G, B) = (B4, B3, B2) and the NIR false colour (B8, B4, B3). S1:
# VV and VH backscatter in dB. Dynamic World v1: 9 labels 0-8 in this order,
# and the catalogue's palette. Cloud mask 0 clear, 1 cloud, 2 shadow.
S2_FACTS = dict(kind="optical", bands=("B2", "B3", "B4", "B8"),
                units=("reflectance",) * 4, dtype=np.float32,
                normalization="s2", classes=(), channel_axis=True,
                encoding="zlib",
                display=fields.Display(composites=(
                    ("RGB", ("B4", "B3", "B2")), ("NRG", ("B8", "B4", "B3")))))
S1_FACTS = dict(kind="sar", bands=("VV", "VH"), units=("dB", "dB"),
                dtype=np.float32, normalization="s1", classes=(),
                channel_axis=True, encoding="bytes",
                display=fields.Display(grey="VV"))
DYNAMIC_WORLD = ("water", "trees", "grass", "flooded_vegetation", "crops",
                 "shrub_and_scrub", "built", "bare", "snow_and_ice")
LULC_FACTS = dict(kind="categorical", bands=("label",),
                  units=("class index",), dtype=np.uint8, normalization=None,
                  classes=DYNAMIC_WORLD, channel_axis=False, encoding="zlib",
                  display=fields.Display(palette=(
                      0x419BDF, 0x397D49, 0x88B053, 0x7A87C6, 0xE49635,
                      0xDFC35A, 0xC4281B, 0xA59B8F, 0xB39FE1)))
DECLARED_FACTS = {
    "s2": S2_FACTS, "s2_cloudy": S2_FACTS, "s2_t2": S2_FACTS,
    "s2_coarse": S2_FACTS,
    "s1": S1_FACTS, "s1_t2": S1_FACTS,
    "lulc": LULC_FACTS, "lulc_t2": LULC_FACTS,
    "dem": dict(kind="elevation",
                bands=("elevation", "slope", "aspect", "hillshade"),
                units=("metres", "degrees", "degrees", "unitless"),
                dtype=np.float32, normalization="dem", classes=(),
                channel_axis=True, encoding="bytes",
                display=fields.Display(grey="hillshade")),
    "valid": dict(kind="mask", bands=("valid",), units=("flag",),
                  dtype=np.uint8, normalization=None,
                  classes=("nodata", "valid"), channel_axis=False,
                  encoding="zlib", display=fields.Display()),
    "cloud_mask": dict(kind="mask", bands=("cloud_mask",),
                       units=("class index",), dtype=np.uint8,
                       normalization=None, classes=("clear", "cloud", "shadow"),
                       channel_axis=False, encoding="zlib",
                       display=fields.Display()),
}
METADATA_FACTS = {  # name: (units, shape, dtype)
    "scene_id": ("text", (), object), "crs": ("text", (), object),
    "transform": ("CRS units", (6,), np.float64),
    "tile_row": ("tiles", (), np.int32), "tile_col": ("tiles", (), np.int32),
}


@pytest.mark.parametrize("source", ["imported", "afresh"])
def test_the_declaration_states_the_documented_facts(source):
  module = fields if source == "imported" else _declaration_built_afresh()
  declared = module.FIELDS
  assert set(declared) == set(DECLARED_FACTS) | set(METADATA_FACTS)
  for name, facts in DECLARED_FACTS.items():
    f = declared[name]
    assert f.name == name
    assert isinstance(f.description, str) and f.description, name
    for attribute, value in facts.items():
      got = getattr(f, attribute)
      if attribute == "display":  # compare as plain values across modules
        got = dataclasses.astuple(got)
        value = dataclasses.astuple(value)
      assert got == value, (name, attribute)
  for name, (units, shape, dtype) in METADATA_FACTS.items():
    f = declared[name]
    assert (f.name, f.kind, f.bands, f.units, f.shape, f.dtype,
            f.normalization, f.encoding) == (
                name, "metadata", (), (units,), shape, dtype, None, "none")
    assert isinstance(f.description, str) and f.description, name


def _raster(**changes):
  base = dict(name="x", kind="optical", description="d", bands=("a", "b"),
              units=("u", "u"), dtype=np.float32)
  return fields.Field(**{**base, **changes})


@pytest.mark.parametrize("changes, problem", [
    (dict(bands=(), units=()), "a raster field needs at least one band name"),
    (dict(channel_axis=False),
     "a raster without channel axis has exactly one band"),
    (dict(kind="metadata", units=("u",)),
     "metadata has no bands and no normalization"),
    (dict(kind="metadata", bands=(), units=("u",), normalization="s2"),
     "metadata has no bands and no normalization"),
    (dict(kind="mask", bands=("m",), units=("flag",), channel_axis=False),
     "a mask field names its classes"),
    (dict(units=("u",)), "1 units for 2 band(s)"),
    (dict(kind="metadata", bands=(), units=("u", "v")),
     "2 units for 1 band(s)"),
])
def test_each_wrong_declaration_names_its_problem(changes, problem):
  import re
  with pytest.raises(ValueError,
                     match=f"^field 'x': {re.escape(problem)}\\.$"):
    _raster(**changes)


def test_several_problems_are_listed_together():
  with pytest.raises(ValueError, match=(
      r"^field 'x': kind 'image' is not one of .*; encoding 'gzip' is not "
      r"one of .*\.$")):
    _raster(kind="image", encoding="gzip")


def test_fields_without_classes_or_palette_say_so():
  with pytest.raises(ValueError, match=r"field 's2' \(optical\) has no classes"):
    fields.class_names("s2")
  with pytest.raises(ValueError, match="field 'valid' has no palette"):
    fields.palette("valid")


def test_device_fields_and_kinds_by_name():
  """Text (bytes, str, object) and float64 (the affine transform, which
  float32 would round by metres) stay on the host; unknown kinds are named."""
  for dtype in (np.float32, np.uint8, np.int32, np.bool_):
    assert fields.is_device_field(dtype), dtype
  for dtype in (object, "S5", "U3", np.float64):
    assert not fields.is_device_field(dtype), dtype
  assert set(fields.fields_of_kind("sar")) == {
      name for name in fields.FIELDS if fields.FIELDS[name].kind == "sar"}
  with pytest.raises(ValueError, match=re.escape(
      f"unknown field kind(s) ['optcal']; kinds are {fields.KINDS}.")):
    fields.fields_of_kind("optical", "optcal")
