"""The cycle GAN's fixed resize branch against direct numpy / scipy / PIL."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from rsjax.systems.cycle_fusion import resize_branch


def _psf_taps(ratio):
  """Gaussian taps of the PSF (sigma 0.494 S), cut beyond 4 sigma + 1."""
  sigma = 0.494 * ratio
  return sigma, 4 * sigma + 1


def _downsample_loop(image, ratio):
  """Each LR pixel as an explicit PSF-weighted sum around its centre."""
  height, width, channels = image.shape
  sigma, cut = _psf_taps(ratio)
  out = np.zeros((height // ratio, width // ratio, channels))
  rows, cols = np.arange(height), np.arange(width)
  for k in range(height // ratio):
    for l in range(width // ratio):
      dy = rows - (k * ratio + (ratio - 1) / 2)
      dx = cols - (l * ratio + (ratio - 1) / 2)
      wy = np.where(np.abs(dy) <= cut, np.exp(-0.5 * (dy / sigma) ** 2), 0)
      wx = np.where(np.abs(dx) <= cut, np.exp(-0.5 * (dx / sigma) ** 2), 0)
      weights = wy[:, None] * wx[None, :]
      out[k, l] = np.tensordot(weights, image, axes=([0, 1], [0, 1])) / weights.sum()
  return out


def _upsample_pil(image, ratio, method):
  resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[method]
  height, width, channels = image.shape
  return np.stack([np.asarray(Image.fromarray(
      image[..., c].astype(np.float32), mode="F").resize(
          (width * ratio, height * ratio), resample)) for c in range(channels)], -1)


@pytest.mark.parametrize("ratio", [3, 4])
def test_downsample_equals_direct_psf_sums(ratio):
  image = np.random.default_rng(ratio).uniform(0, 1, (2, 8 * ratio, 6 * ratio, 3))
  low = np.asarray(resize_branch.downsample(image.astype(np.float32), ratio))
  assert low.shape == (2, 8, 6, 3)
  for n in range(2):
    np.testing.assert_allclose(low[n], _downsample_loop(image[n], ratio),
                               atol=1e-5)


def test_odd_ratio_is_a_gaussian_filter_sampled_at_pixel_centres():
  """Odd S: LR centres sit on HR pixels; scipy's normalised Gaussian filter
  (same truncation radius) divided by the filtered ones, sampled every S."""
  ratio, sigma = 3, 0.494 * 3
  image = np.random.default_rng(0).uniform(0, 1, (24, 18)).astype(np.float64)

  def blur(x):
    return ndimage.gaussian_filter(x, sigma, mode="constant", truncate=4.0)

  expected = (blur(image) / blur(np.ones_like(image)))[1::3, 1::3]
  low = resize_branch.downsample(image[None, ..., None].astype(np.float32), 3)
  np.testing.assert_allclose(np.asarray(low)[0, ..., 0], expected, atol=1e-5)


@pytest.mark.parametrize("method", ["bicubic", "bilinear"])
def test_upsample_equals_pil(method):
  image = np.random.default_rng(1).uniform(0, 1, (1, 5, 7, 2)).astype(np.float32)
  up = np.asarray(resize_branch.upsample(image, 4, method))
  assert up.shape == (1, 20, 28, 2)
  np.testing.assert_allclose(up[0], _upsample_pil(image[0], 4, method),
                             atol=1e-5)


def test_resize_with_cloud_mask_equals_direct_computation():
  rng = np.random.default_rng(2)
  image = rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  mask = rng.integers(0, 2, (2, 16, 16)).astype(bool)
  out = np.asarray(jax.jit(lambda x, m: resize_branch.resize(
      x, 4, method="bicubic", cloud_mask=m, cloud_value=0.75))(image, mask))
  for n in range(2):
    expected = _upsample_pil(_downsample_loop(image[n], 4), 4, "bicubic")
    expected[mask[n]] = 0.75
    np.testing.assert_allclose(out[n], expected, atol=1e-5)
  # Without clouds nothing is filled; a constant image stays constant.
  clear = np.asarray(resize_branch.resize(image, 4))
  assert not np.any(clear == 0.75)
  flat = resize_branch.resize(np.full((1, 12, 12, 2), 0.3, np.float32), 3)
  np.testing.assert_allclose(flat, 0.3, atol=1e-6)


def test_resize_is_differentiable():
  image = np.random.default_rng(3).uniform(-1, 1, (1, 8, 8, 1)).astype(np.float32)
  grad = jax.grad(lambda x: resize_branch.resize(x, 2).sum())(image)
  # Each HR pixel feeds the LR pixels (weights sum to 1 per LR pixel), and
  # each LR pixel spreads over S x S HR pixels: total gradient = H * W.
  np.testing.assert_allclose(float(grad.sum()), 64.0, rtol=1e-4)
  assert float(grad.min()) > 0


@pytest.mark.parametrize("ratio,message", [
    (3, "does not divide the tile size 16x16"), (0, "int >= 1"),
    (2.0, "int >= 1"), (True, "int >= 1")])
def test_bad_ratio_names_the_key(ratio, message):
  with pytest.raises(ValueError, match=message) as error:
    resize_branch.check_ratio(ratio, 16, 16)
  assert "config.resolution_ratio" in str(error.value)


def test_unknown_upsampling_names_the_key():
  with pytest.raises(ValueError, match="config.resize.upsample.*nearest"):
    resize_branch.check_upsampling("nearest")


def test_ratio_1_is_the_cloud_mask_only():
  """Sec. III-B: the thick-cloud experiment's LR image is the t2 S2 image at
  its own 10 m with the cloud mask added: resize at S = 1 leaves every clear
  pixel bit-identical and sets the cloudy ones to cloud_value."""
  rng = np.random.default_rng(4)
  image = rng.uniform(-1, 1, (2, 12, 20, 3)).astype(np.float32)
  mask = rng.integers(0, 2, (2, 12, 20)).astype(bool)
  out = np.asarray(jax.jit(lambda x, m: resize_branch.resize(
      x, 1, cloud_mask=m, cloud_value=0.9))(image, mask))
  np.testing.assert_array_equal(out[~mask], image[~mask])
  np.testing.assert_array_equal(out[mask], np.float32(0.9))
  np.testing.assert_array_equal(resize_branch.downsample(image, 1), image)
  np.testing.assert_array_equal(resize_branch.upsample(image, 1), image)
  assert resize_branch.check_ratio(1, 7, 9) == 1   # divides every size


def test_ratio_50_on_a_200_px_patch():
  """Sec. III-A, Table I: MODIS 500 m over Sentinel-2 10 m is S = 500 / 10 =
  50, also the test scene's 3000 / 60 px; a 200 x 200 training patch holds
  200 / 50 = 4 x 4 MODIS pixels, each the PSF-weighted sum around its centre
  (the direct loop; float32 sums of 40000 weights in [0, 1] of values in
  [0, 1]: ~1e-7 x sqrt(40000) relative, atol 1e-5)."""
  ratio = 500 // 10
  assert ratio == 3000 // 60 == 50
  image = np.random.default_rng(50).uniform(0, 1, (1, 200, 200, 3))
  low = np.asarray(resize_branch.downsample(image.astype(np.float32), ratio))
  assert low.shape == (1, 200 // 50, 200 // 50, 3) == (1, 4, 4, 3)
  np.testing.assert_allclose(low[0], _downsample_loop(image[0], ratio),
                             atol=1e-5)
  up = np.asarray(resize_branch.resize(image.astype(np.float32), ratio))
  assert up.shape == image.shape
  np.testing.assert_allclose(up[0], _upsample_pil(low[0], ratio, "bicubic"),
                             atol=1e-5)


def test_ratio_3_matches_table_v_landsat():
  """Sec. III-C, Table V: Landsat 8 30 m over Sentinel-2 10 m, S = 3 (the
  training scene's 5700 x 8382 S2 px over 1900 x 2794 Landsat px)."""
  assert 30 // 10 == 5700 // 1900 == 8382 // 2794 == 3
  with pytest.raises(ValueError, match="resolution_ratio=3 does not divide "
                     "the tile size 128x128"):
    resize_branch.check_ratio(3, 128, 128)   # the paper's 128 px patches
  assert resize_branch.check_ratio(3, 132, 132) == 3
