"""The cloud / shadow mask of a cloudy image against a clear one."""

import numpy as np
import pytest

from rsjax.geo import cloud_difference


def test_mask_marks_brighter_pixels_cloud_and_darker_ones_shadow():
  rng = np.random.default_rng(0)
  clear = rng.uniform(0.02, 0.3, (4, 5, 4)).astype(np.float32)
  # Mean visible change per pixel, written out: +0.1 cloud, +0.07 clear
  # (below 0.08), -0.05 shadow, -0.03 clear (above -0.04), 0 clear; the NIR
  # band (last) changes a lot and does not count.
  change = np.array([0.1, 0.07, -0.05, -0.03, 0.0])
  expected = np.array([1, 0, 2, 0, 0], np.uint8)
  cloudy = clear.copy()
  cloudy[..., :3] += change.astype(np.float32)[None, :, None]
  cloudy[..., 3] += 0.5
  mask = cloud_difference.difference_mask(clear, cloudy,
                                          ("B2", "B3", "B4", "B8"))
  assert mask.dtype == np.uint8
  np.testing.assert_array_equal(mask, np.broadcast_to(expected, (4, 5)))
  # Bands in another order give the same mask.
  order = [3, 1, 0, 2]
  again = cloud_difference.difference_mask(
      clear[..., order], cloudy[..., order], ("B8", "B3", "B2", "B4"))
  np.testing.assert_array_equal(again, mask)


def test_visible_bands_and_shapes_are_required():
  image = np.zeros((2, 2, 2), np.float32)
  with pytest.raises(ValueError, match="B4"):
    cloud_difference.difference_mask(image, image, ("B2", "B3"))
  with pytest.raises(ValueError, match="same"):
    cloud_difference.difference_mask(image, image[:1], ("B2", "B3"))
