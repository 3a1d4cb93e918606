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
  rgb = panels["s2 RGB"]
  assert rgb.shape == (2, 16, 16, 3) and rgb.min() == 0.0 and rgb.max() == 1.0
  # RGB = bands 2, 1, 0: the red channel follows band B4 (index 2) monotonically.
  order = np.argsort(image[0, ..., 2].ravel())
  assert np.all(np.diff(rgb[0, ..., 0].ravel()[order]) >= 0)
  # A darker copy shown with the original's stretch stays darker.
  darker = inputs.composite(image - 0.2, inputs.RGB_BANDS, reference=image)
  assert darker.mean() < rgb.mean()
  dem = inputs.field_panels("dem", image, 9)["dem"]
  np.testing.assert_allclose(dem[..., 0], (image[..., 3] + 1) / 2, atol=1e-6)
  sar = inputs.field_panels("s1", image[..., :2], 9)["s1"]
  np.testing.assert_allclose(sar[..., 1], (image[..., 0] + 1) / 2, atol=1e-6)
