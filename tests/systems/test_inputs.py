"""rsjax.systems.inputs: one-hot / concatenation / source dict, and panels."""

from __future__ import annotations

import numpy as np
import pytest

from rsjax.systems import inputs
from system_checks import make_batch


def test_field_inputs_and_concatenation():
  batch = make_batch(0, batch=2)
  lulc = np.asarray(inputs.field_input(batch, "lulc", 9))
  assert lulc.shape == (2, 32, 32, 9) and lulc.dtype == np.float32
  np.testing.assert_array_equal(lulc.argmax(-1), batch["lulc"])
  np.testing.assert_array_equal(lulc.sum(-1), 1.0)
  valid = np.asarray(inputs.field_input(batch, "valid", 9))
  assert valid.shape == (2, 32, 32, 1)
  stacked = np.asarray(inputs.concat_inputs(batch, ("s1", "lulc", "dem"), 9))
  assert stacked.shape == (2, 32, 32, 2 + 9 + 4)
  np.testing.assert_array_equal(stacked[..., :2], batch["s1"])
  np.testing.assert_array_equal(stacked[..., -4:], batch["dem"])
  sources = inputs.source_dict(batch, ("lulc", "s1"), 9)
  assert list(sources) == ["lulc", "s1"] and sources["s1"].shape == (2, 32, 32, 2)
  assert [inputs.field_channels(n, 9) for n in ("s2", "lulc", "valid")] == [4, 9, 1]
  with pytest.raises(KeyError, match="config.data.fields"):
    inputs.field_input(batch, "s2_cloudy", 9)
  with pytest.raises(ValueError, match="config.inputs.*'sar'"):
    inputs.check_field_names(("s1", "sar"), "config.inputs")


def test_panels_palette_grey_and_composites():
  labels = np.array([[[0, 8], [9, -1]]])
  colours = inputs.palette_image(labels, 9)
  np.testing.assert_allclose(colours[0, 0, 0], np.array([65, 155, 223]) / 255)
  np.testing.assert_allclose(colours[0, 0, 1], np.array([179, 159, 225]) / 255)
  np.testing.assert_array_equal(colours[0, 1], 0.0)   # out of range: black
  np.testing.assert_allclose(inputs.grey(np.array([[[-1.0, 0.0, 1.0]]]))[0, 0],
                             [[0, 0, 0], [0.5, 0.5, 0.5], [1, 1, 1]])
  rng = np.random.default_rng(0)
  image = rng.uniform(-1, 1, (2, 16, 16, 4)).astype(np.float32)
  panels = inputs.field_panels("s2", image, 9)
  assert sorted(panels) == ["s2 NRG", "s2 RGB"]
  assert panels["s2 RGB"].title == "s2 B4-B3-B2, stretch 2-98 %"
  assert panels["s2 NRG"].title == "s2 B8-B4-B3, stretch 2-98 %"
  rgb = panels["s2 RGB"].image
  assert rgb.shape == (2, 16, 16, 3) and rgb.min() == 0.0 and rgb.max() == 1.0
  # RGB = bands 2, 1, 0: the red channel follows band B4 (index 2) monotonically.
  order = np.argsort(image[0, ..., 2].ravel())
  assert np.all(np.diff(rgb[0, ..., 0].ravel()[order]) >= 0)
  # A darker copy shown with the original's stretch stays darker.
  darker = inputs.composite(image - 0.2, inputs.RGB_BANDS, reference=image)
  assert darker.mean() < rgb.mean()
  dem = inputs.field_panels("dem", image, 9)["dem"]
  np.testing.assert_allclose(dem.image[..., 0], (image[..., 3] + 1) / 2,
                             atol=1e-6)
  assert dem.title == "dem hillshade, 0 to 1"
  sar = inputs.field_panels("s1", image[..., :2], 9)["s1"]
  np.testing.assert_allclose(sar.image[..., 1], (image[..., 0] + 1) / 2,
                             atol=1e-6)


def test_panel_titles_name_bands_stretch_and_the_sar_range():
  rng = np.random.default_rng(0)
  image = rng.uniform(-1, 1, (2, 8, 8, 4)).astype(np.float32)
  panels = inputs.prediction_panels("s2", image * 0.5, image, 9)
  assert panels["pred RGB"].title == (
      "pred s2 B4-B3-B2, target's stretch 2-98 %")
  assert panels["target NRG"].title == "target s2 B8-B4-B3, stretch 2-98 %"
  assert "98th percentile" in panels["pred RGB"].note
  sar = inputs.field_panels("s1", image[..., :2], 9)["s1"]
  assert sar.title == "s1 VV, -25 to 0 dB"
  assert sar.note.startswith("s1 VV: black -25 dB, white 0 dB")
  # The range follows the run's normalization, or raw values when none.
  normalization = inputs.normalize_lib.resolve_config(
      {"s1": {"ranges": {"VV": (-20.0, 5.0), "VH": (-30.0, 0.0)}}})
  sar = inputs.field_panels("s1", image[..., :2], 9,
                            normalization=normalization)["s1"]
  assert sar.title == "s1 VV, -20 to 5 dB"
  sar = inputs.field_panels("s1", image[..., :2], 9, normalization=None)["s1"]
  assert sar.title == "s1 VV, -1 to 1 dB"
  valid = inputs.field_panels("valid", np.ones((2, 8, 8)), 9)["valid"]
  assert valid.title == "valid: nodata black, valid white"


def test_land_cover_legend_names_every_class_in_its_colour():
  labels = np.array([[[0, 8], [9, -1]]])
  panel = inputs.palette_panel("lulc", labels, 9)
  names = [name for name, _ in panel.legend]
  assert names[:9] == ["water", "trees", "grass", "flooded vegetation",
                       "crops", "shrub and scrub", "built", "bare",
                       "snow and ice"]
  assert names[9:] == ["no label"]            # 9 and -1 are out of range
  np.testing.assert_allclose([c for _, c in panel.legend[:9]],
                             inputs.DYNAMIC_WORLD_PALETTE)
  assert panel.title == "lulc, land cover classes"
  more = inputs.palette_panel("lulc", np.arange(11)[None, None], 11)
  assert [name for name, _ in more.legend][9:] == ["class 9", "class 10"]
  np.testing.assert_allclose(more.legend[10][1], more.image[0, 0, 10])


def test_real_rows_drop_padding_examples():
  batch = {"s2": np.arange(4.0)[:, None], "mask": np.array([1, 1, 0, 0.0]),
           "scene_id": np.array(["a", "b", "", ""])}
  real, prediction = inputs.real_rows(batch, {"out": np.arange(4)})
  np.testing.assert_array_equal(real["s2"][:, 0], [0.0, 1.0])
  assert list(real["scene_id"]) == ["a", "b"]
  np.testing.assert_array_equal(prediction["out"], [0, 1])
  unpadded = {"s2": batch["s2"]}
  assert inputs.real_rows(unpadded, None) == (unpadded, None)


def test_composites_follow_the_bands_a_run_reads():
  """Composites are found by band name among the run's bands: Gaofen's
  colour-named bands, and an S2 subset in another order."""
  rng = np.random.default_rng(0)
  image = rng.uniform(-1, 1, (2, 8, 8, 4)).astype(np.float32)
  whu = inputs.field_panels("s2", image, 9,
                            bands=("red", "green", "blue", "nir"))
  assert whu["s2 RGB"].title.startswith("s2 red-green-blue")
  assert whu["s2 NRG"].title.startswith("s2 nir-red-green")
  np.testing.assert_array_equal(
      whu["s2 RGB"].image, inputs.composite(image, (0, 1, 2)))
  np.testing.assert_array_equal(
      whu["s2 NRG"].image, inputs.composite(image, (3, 0, 1)))
  # SEN1-2's B4, B3, B2 as read: RGB is channels 0, 1, 2 and there is no NRG.
  rgb = inputs.field_panels("s2", image[..., :3], 9, bands=("B4", "B3", "B2"))
  assert set(rgb) == {"s2 RGB"}
  np.testing.assert_array_equal(rgb["s2 RGB"].image,
                                inputs.composite(image[..., :3], (0, 1, 2)))
  # The declared B2, B3, B4, B8 without `bands`: B4, B3, B2 = 2, 1, 0.
  declared = inputs.field_panels("s2", image, 9)
  np.testing.assert_array_equal(declared["s2 RGB"].image,
                                inputs.composite(image, (2, 1, 0)))
