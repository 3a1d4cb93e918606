"""Synthetic clouds and cloud shadows for optical images, in JAX.

The cloud-removal paper (two GANs + DRIBs) builds its cloudy training images by
alpha blending thick clouds onto clear Sentinel-2 images with the Porter-Duff
"over" operator (Porter & Duff, "Compositing digital images", SIGGRAPH 1984).
This module makes such clouds procedurally so that any clear image can get a
cloudy copy with an exact cloud mask:

1. `fractal_noise`: a 1/f^beta random field by spectral synthesis (white noise,
   FFT, amplitude f^(-beta/2) with a low-frequency roll-off at `feature_size`
   pixels, inverse FFT), normalised to zero mean and unit variance. Clouds have
   power-law spectra, which is why this looks like them.
2. `cloud_layer`: the noise thresholded at its (1 - coverage) quantile, so the
   binary mask covers the target fraction of pixels (up to ties, one pixel);
   the opacity rises from 0 at the cloud edge to `opacity` over `edge_width`
   noise standard deviations (thick clouds: opacity 1, sharp edge; thin clouds:
   opacity ~0.5, wide edge).
3. `add_clouds`: optional shadows (the opacity map shifted by a pixel offset
   along the sun direction, darkening the ground by `shadow_strength` times the
   shifted opacity) and then the cloud layer, bright and nearly spectrally flat
   (`cloud_reflectance`, a scalar or one value per band, in the image's units),
   composited over the image.

Everything works on one (H, W) or (H, W, C) image with static shapes and no
Python loops over pixels, is deterministic per RNG key, runs under `jax.jit`,
and batches with `jax.vmap` (over keys, images and even per-image coverages).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

# Thick clouds in the cloud-removal paper hide the ground completely; thin ones
# (cirrus, haze) let part of it through.
THICK_CLOUDS = {"opacity": 1.0, "edge_width": 0.3}
THIN_CLOUDS = {"opacity": 0.5, "edge_width": 1.5}


class CloudLayer(NamedTuple):
  """A cloud field: opacity in [0, 1] and the binary mask of cloudy pixels."""
  alpha: jax.Array        # (H, W) float32
  mask: jax.Array         # (H, W) bool, alpha > 0
  thickness: jax.Array    # (H, W) float32 in [0, 1]: 0 at the edge, 1 in the core


class CloudyImage(NamedTuple):
  """The result of `add_clouds`; a pytree, so it passes through jit and vmap."""
  image: jax.Array        # same shape and dtype class as the input (float)
  cloud_mask: jax.Array   # (H, W) bool
  shadow_mask: jax.Array  # (H, W) bool, shadowed and not under a cloud
  alpha: jax.Array        # (H, W) float32 cloud opacity


def fractal_noise(key, shape, *, spectral_exponent=3.8, feature_size=64.0):
  """Zero-mean, unit-variance 1/f noise of shape (H, W) by spectral synthesis.

  The power spectrum falls as f^-spectral_exponent above 1/feature_size
  cycles per pixel and is flat below it, so the largest structures are about
  `feature_size` pixels across. The field is synthesised on a grid twice the
  size and cropped, so opposite edges are not correlated (the FFT's field is
  periodic).
  """
  height, width = tuple(shape)
  big_h, big_w = 2 * height, 2 * width
  white = jax.random.normal(key, (big_h, big_w), jnp.float32)
  freq_y = jnp.fft.fftfreq(big_h)[:, None]
  freq_x = jnp.fft.rfftfreq(big_w)[None, :]
  roll_off = 1.0 / jnp.asarray(feature_size, jnp.float32)
  freq_sq = freq_y**2 + freq_x**2 + roll_off**2
  amplitude = freq_sq ** (-jnp.asarray(spectral_exponent, jnp.float32) / 4.0)
  amplitude = amplitude.at[0, 0].set(0.0)  # no mean component
  spectrum = jnp.fft.rfft2(white) * amplitude
  field = jnp.fft.irfft2(spectrum, s=(big_h, big_w))[:height, :width]
  field = field - field.mean()
  return (field / (field.std() + 1e-12)).astype(jnp.float32)


# Jitted by assignment rather than with a decorator: the mutation tests
# (`make mutants`, see TESTING.md) skip decorated functions.
fractal_noise = jax.jit(fractal_noise, static_argnames=("shape",))


def cloud_layer(key, shape, *, coverage, opacity=1.0, edge_width=0.3,
                spectral_exponent=3.8, feature_size=64.0) -> CloudLayer:
  """Cloud opacity and mask of shape (H, W) covering `coverage` of the pixels.

  `coverage` in [0, 1] may be traced (one value per image under vmap). The
  threshold is the (1 - coverage) quantile of the noise, so the mask's
  fraction equals the target up to one pixel. Inside the mask the opacity is
  `opacity` times a smoothstep of (noise - threshold) / edge_width.
  """
  noise = fractal_noise(key, shape, spectral_exponent=spectral_exponent,
                        feature_size=feature_size)
  coverage = jnp.clip(jnp.asarray(coverage, jnp.float32), 0.0, 1.0)
  threshold = jnp.quantile(noise.ravel(), 1.0 - coverage)
  mask = ((noise > threshold) | (coverage >= 1.0)) & (coverage > 0.0)
  ramp = jnp.clip((noise - threshold) / edge_width, 0.0, 1.0)
  thickness = jnp.where(mask, ramp * ramp * (3.0 - 2.0 * ramp), 0.0)
  # A pixel in the mask never gets exactly zero opacity: the mask is where the
  # cloud is, however faint.
  alpha = jnp.where(mask, opacity * jnp.maximum(thickness, 1e-3), 0.0)
  return CloudLayer(alpha.astype(jnp.float32), mask,
                    thickness.astype(jnp.float32))


def over(fg_color, fg_alpha, bg_color, bg_alpha=1.0):
  """Porter-Duff "over": the foreground composited over the background.

  Colours are straight (not premultiplied); alphas broadcast against them.
  Returns (color, alpha) with alpha_o = a_f + a_b (1 - a_f) and
  color_o = (C_f a_f + C_b a_b (1 - a_f)) / alpha_o (0 where alpha_o is 0).
  """
  out_alpha = fg_alpha + bg_alpha * (1.0 - fg_alpha)
  premultiplied = fg_color * fg_alpha + bg_color * bg_alpha * (1.0 - fg_alpha)
  safe_alpha = jnp.where(out_alpha > 0, out_alpha, 1.0)
  color = jnp.where(out_alpha > 0, premultiplied / safe_alpha, 0.0)
  return color, out_alpha


def shift_with_zeros(field, offset):
  """`field` (H, W) moved by `offset` = (rows, cols) pixels, zeros shifted in.

  The offset may be traced. Positive rows move the field down, positive cols
  move it right.
  """
  height, width = field.shape
  offset = jnp.round(jnp.asarray(offset, jnp.float32)).astype(jnp.int32)
  moved = jnp.roll(field, (offset[0], offset[1]), axis=(0, 1))
  rows = jnp.arange(height)[:, None] - offset[0]
  cols = jnp.arange(width)[None, :] - offset[1]
  inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
  return jnp.where(inside, moved, jnp.zeros_like(moved))


def add_clouds(key, image, *, coverage, opacity=1.0, edge_width=0.3,
               cloud_reflectance=0.9, brightness_variation=0.1,
               shadow_offset=None, shadow_strength=0.6,
               spectral_exponent=3.8, feature_size=64.0) -> CloudyImage:
  """Composites synthetic clouds (and optionally their shadows) over `image`.

  Args:
    key: JAX PRNG key; the same key gives the same clouds.
    image: (H, W) or (H, W, C) float image, any number of bands, in
      reflectance-like units (e.g. surface reflectance in [0, 1]).
    coverage: target fraction of cloudy pixels in [0, 1].
    opacity: peak cloud opacity; 1 for thick clouds, ~0.5 for thin ones (see
      THICK_CLOUDS and THIN_CLOUDS).
    edge_width: width of the opacity ramp at cloud edges, in noise standard
      deviations; small for thick, sharp clouds, large for thin, wispy ones.
    cloud_reflectance: cloud-top reflectance in the image's units, a scalar
      (spectrally flat) or one value per band.
    brightness_variation: relative darkening of the cloud at its thin edges
      (a cloud's reflectance grows with its optical thickness).
    shadow_offset: None for no shadows, else (rows, cols) pixels from a cloud
      to its shadow (the projection of the cloud height along the sun vector).
    shadow_strength: fraction of the light a fully opaque cloud's shadow
      removes.
    spectral_exponent, feature_size: shape of the noise, see `fractal_noise`.

  Returns:
    CloudyImage(image, cloud_mask, shadow_mask, alpha).
  """
  if image.ndim not in (2, 3):
    raise ValueError(
        f"add_clouds: image must be (H, W) or (H, W, C), got shape "
        f"{image.shape}; vmap over a leading batch axis.")
  squeeze = image.ndim == 2
  bands = image[..., None] if squeeze else image
  bands = bands.astype(jnp.promote_types(bands.dtype, jnp.float32))
  layer = cloud_layer(key, bands.shape[:2], coverage=coverage, opacity=opacity,
                      edge_width=edge_width,
                      spectral_exponent=spectral_exponent,
                      feature_size=feature_size)

  if shadow_offset is None:
    shadow_mask = jnp.zeros(bands.shape[:2], bool)
    ground = bands
  else:
    shadow_alpha = shift_with_zeros(layer.alpha, shadow_offset)
    shadow_mask = (shadow_alpha > 0) & ~layer.mask
    ground = bands * (1.0 - shadow_strength * shadow_alpha)[..., None]

  reflectance = jnp.broadcast_to(
      jnp.asarray(cloud_reflectance, bands.dtype), bands.shape[-1:])
  brightness = 1.0 - brightness_variation * (1.0 - layer.thickness)
  cloud_color = reflectance * brightness[..., None]
  cloudy, _ = over(cloud_color, layer.alpha[..., None], ground)
  cloudy = cloudy[..., 0] if squeeze else cloudy
  return CloudyImage(cloudy, layer.mask, shadow_mask, layer.alpha)


add_clouds = jax.jit(add_clouds)
