"""Image-quality metrics of the papers: PSNR, SSIM, SAM, ERGAS and the Q index.

Every function takes NHWC float images (any number of bands), is jit- and
vmap-compatible, and returns one value per image (shape (N,)). The optional
`mask` (1 where a pixel counts, 0 where it does not; shape (N, H, W),
(N, H, W, 1) or (N, H, W, C)) gives the exact metric over the masked pixels, which
is how scores inside cloudy and inside clear areas are reported. An image whose
mask selects no pixel gets NaN (the metric is undefined there), so aggregate
masked scores with `nanmean`.

References:
  PSNR, SSIM: Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from
    error visibility to structural similarity", IEEE TIP 2004 (11x11 Gaussian
    window, sigma 1.5, K1 = 0.01, K2 = 0.03), computed with dm-pix.
  SAM: Kruse et al. 1993, spectral angle between per-pixel band vectors.
  ERGAS: Wald 2000, "Quality of high resolution synthesised images".
  Q: Wang & Bovik, "A universal image quality index", IEEE SPL 2002.
"""

from __future__ import annotations

import functools

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

from rsjax.metrics.validation import (check_image_pair, check_masked_pair,
                                      check_positive)

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def psnr(pred, target, *, data_range, mask=None) -> jax.Array:
  """Peak signal-to-noise ratio in dB: 10 log10(data_range^2 / MSE).

  The MSE is taken over all pixels and bands of each image (over the masked
  pixels if `mask` is given). Identical images give +inf.
  """
  pred, target, mask = check_masked_pair("psnr", pred, target, mask)
  data_range = check_positive("psnr", "data_range", data_range)
  return _psnr(pred, target, data_range, mask)


def _psnr(pred, target, data_range, mask):
  mse = _weighted_mean((pred - target) ** 2, mask, axes=(1, 2, 3))
  return 10.0 * jnp.log10(data_range**2 / mse)


# Jitted by assignment rather than with a decorator: the mutation tests
# (`make mutants`, see TESTING.md) skip decorated functions.
_psnr = jax.jit(_psnr)


def ssim(pred, target, *, data_range, mask=None) -> jax.Array:
  """Structural similarity (Wang et al. 2004), averaged over bands.

  The SSIM map covers the valid region only (no padding): an image of H x W
  pixels gives a map of (H - 10) x (W - 10), each value belonging to the pixel
  at the centre of its window. With a mask, the map is averaged over the masked
  centre pixels.
  """
  pred, target, mask = check_masked_pair("ssim", pred, target, mask)
  data_range = check_positive("ssim", "data_range", data_range)
  _, height, width, _ = pred.shape
  if height < SSIM_WINDOW or width < SSIM_WINDOW:
    raise ValueError(
        f"ssim: images must be at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, "
        f"got {height}x{width}.")
  return _ssim(pred, target, data_range, mask)


def _ssim(pred, target, data_range, mask):
  ssim_map = dm_pix.ssim(
      pred, target, max_val=data_range, filter_size=SSIM_WINDOW,
      filter_sigma=SSIM_SIGMA, k1=SSIM_K1, k2=SSIM_K2, return_map=True,
      filter_fn=_gaussian_blur_valid)
  if mask is not None:
    half = SSIM_WINDOW // 2
    mask = mask[:, half:-half, half:-half, :]
  return _weighted_mean(ssim_map, mask, axes=(1, 2, 3))


_ssim = jax.jit(_ssim)


def _gaussian_blur_valid(images: jax.Array) -> jax.Array:
  """Separable 11x11 Gaussian (sigma 1.5) over the valid region, per band.

  A weighted sum of 11 shifted slices per axis instead of dm-pix's default
  per-row `jnp.convolve`: the same numbers, and XLA fuses it into one pass
  (measured several times faster on CPU, see benchmarks/metrics_throughput.py).
  """
  half = SSIM_WINDOW // 2
  taps = np.exp(-0.5 * (np.arange(-half, half + 1) / SSIM_SIGMA) ** 2)
  taps = taps / taps.sum()
  height, width = images.shape[1] - 2 * half, images.shape[2] - 2 * half
  rows = sum(float(t) * images[:, k:k + height] for k, t in enumerate(taps))
  return sum(float(t) * rows[:, :, k:k + width] for k, t in enumerate(taps))


def sam(pred, target, *, mask=None, degrees=False) -> jax.Array:
  """Mean spectral angle between the band vectors of pred and target pixels.

  In radians (degrees if `degrees`). Pixels where either vector is zero have no
  angle and are left out of the mean; they never produce NaN. The angle is
  computed as 2 atan2(|u - v|, |u + v|) of the unit vectors, which is exact near
  0 where arccos of the cosine is not. The mask must be per pixel: (N, H, W) or
  (N, H, W, 1).
  """
  pred, target, mask = check_masked_pair("sam", pred, target, mask,
                                         per_pixel=True)
  return _sam(pred, target, mask, degrees)


def _sam(pred, target, mask, degrees):
  pred_norm = jnp.linalg.norm(pred, axis=-1, keepdims=True)
  target_norm = jnp.linalg.norm(target, axis=-1, keepdims=True)
  valid = (pred_norm > 0) & (target_norm > 0)
  pred_unit = pred / jnp.where(valid, pred_norm, 1.0)
  target_unit = target / jnp.where(valid, target_norm, 1.0)
  angle = 2.0 * jnp.arctan2(
      jnp.linalg.norm(pred_unit - target_unit, axis=-1, keepdims=True),
      jnp.linalg.norm(pred_unit + target_unit, axis=-1, keepdims=True))
  weights = valid.astype(jnp.float32)
  if mask is not None:
    weights = weights * mask
  mean_angle = _weighted_mean(jnp.where(valid, angle, 0.0), weights,
                              axes=(1, 2, 3))
  return jnp.rad2deg(mean_angle) if degrees else mean_angle


_sam = jax.jit(_sam, static_argnames=("degrees",))


def ergas(pred, target, *, ratio, mask=None) -> jax.Array:
  """Relative dimensionless global error in synthesis (Wald 2000).

  ERGAS = 100 * ratio * sqrt(mean over bands of (RMSE_b / mean(target_b))^2),
  with `ratio` = high-resolution pixel size / low-resolution pixel size (e.g.
  10 / 30 when a 30 m sensor is fused to 10 m). Lower is better, 0 is perfect.
  The band means of the target must be non-zero (reflectances are positive).
  """
  pred, target, mask = check_masked_pair("ergas", pred, target, mask)
  ratio = check_positive("ergas", "ratio", ratio)
  return _ergas(pred, target, ratio, mask)


def _ergas(pred, target, ratio, mask):
  rmse = jnp.sqrt(_weighted_mean((pred - target) ** 2, mask, axes=(1, 2)))
  band_mean = _weighted_mean(target, mask, axes=(1, 2))
  return 100.0 * ratio * jnp.sqrt(jnp.mean((rmse / band_mean) ** 2, axis=-1))


_ergas = jax.jit(_ergas)


def q_index(pred, target, *, block_size=None) -> jax.Array:
  """Wang-Bovik universal image quality index, per band, averaged over bands.

  Q = 4 cov(x, y) mean(x) mean(y) / ((var(x) + var(y)) (mean(x)^2 + mean(y)^2)),
  with population statistics. `block_size=None` computes the statistics once
  over the whole band; an int slides a block_size x block_size window with
  stride 1 over the valid region and averages the local Q values. Degenerate
  blocks follow the reference code of the paper: both blocks constant gives
  2 mean(x) mean(y) / (mean(x)^2 + mean(y)^2), both means zero gives 1.
  """
  pred, target = check_image_pair("q_index", pred, target)
  if block_size is not None:
    _, height, width, _ = pred.shape
    if (isinstance(block_size, bool) or not isinstance(block_size, int)
        or not 1 <= block_size <= min(height, width)):
      raise ValueError(
          f"q_index: block_size must be None or an int in [1, {min(height, width)}]"
          f" for images of {height}x{width}, got {block_size!r}.")
  return _q_index(pred, target, block_size)


def _q_index(pred, target, block_size):
  eps = jnp.finfo(pred.dtype).eps
  # Statistics are shift invariant except the means: shifting by the global band
  # mean first keeps the variance cancellation small.
  shift_x = jnp.mean(pred, axis=(1, 2), keepdims=True)
  shift_y = jnp.mean(target, axis=(1, 2), keepdims=True)
  x, y = pred - shift_x, target - shift_y
  mean = functools.partial(_block_mean, block_size=block_size)
  mx, my = mean(x), mean(y)
  sxx, syy = mean(x * x), mean(y * y)
  var_x, var_y = sxx - mx * mx, syy - my * my
  cov = mean(x * y) - mx * my
  # A variance within rounding error of zero is a constant block.
  const_x = var_x <= 8 * eps * sxx
  const_y = var_y <= 8 * eps * syy
  var_x = jnp.where(const_x, 0.0, var_x)
  var_y = jnp.where(const_y, 0.0, var_y)
  cov = jnp.where(const_x | const_y, 0.0, cov)
  mx, my = mx + shift_x, my + shift_y
  var_sum = var_x + var_y
  mean_sq_sum = mx * mx + my * my
  regular = (var_sum > 0) & (mean_sq_sum > 0)
  both_constant = (var_sum == 0) & (mean_sq_sum > 0)
  q = jnp.where(
      regular,
      4.0 * cov * mx * my / jnp.where(regular, var_sum * mean_sq_sum, 1.0),
      jnp.where(both_constant,
                2.0 * mx * my / jnp.where(both_constant, mean_sq_sum, 1.0),
                1.0))
  return jnp.mean(q, axis=(1, 2, 3))


_q_index = jax.jit(_q_index, static_argnames=("block_size",))


def _block_mean(x: jax.Array, block_size: int | None) -> jax.Array:
  """Mean over the whole band (None) or over every valid sliding block."""
  if block_size is None:
    return jnp.mean(x, axis=(1, 2), keepdims=True)
  window = (1, block_size, block_size, 1)
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, (1, 1, 1, 1),
                                "VALID")
  return total / (block_size * block_size)


def _weighted_mean(values: jax.Array, weights: jax.Array | None,
                   axes: tuple[int, ...]) -> jax.Array:
  """Mean of `values` over `axes`, weighted by a broadcastable `weights`."""
  if weights is None:
    return jnp.mean(values, axis=axes)
  weights = jnp.broadcast_to(weights, values.shape)
  return jnp.sum(values * weights, axis=axes) / jnp.sum(weights, axis=axes)
