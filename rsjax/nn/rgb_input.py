"""The three RGB bands of an image for networks trained on RGB photographs.

ImageNet-trained extractors (the FID Inception-v3 of `rsjax.nn.inception`, the
LPIPS trunks of `rsjax.nn.lpips`) read red, green and blue. `rgb_bands` picks
them from a multispectral stack (indices of red, green, blue in the last axis,
e.g. (2, 1, 0) for Sentinel-2 B2-B3-B4-B8); with `rgb_bands=None` a 3-band
image is taken as RGB and a 1-band image (SAR, grayscale) is repeated to three
bands; other band counts raise a ValueError. The result is mapped from
`input_range` to [0, 1] in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp


def rgb01(x: jax.Array, rgb_bands: Sequence[int] | None,
          input_range: tuple[float, float], network: str) -> jax.Array:
  """(N, H, W, C) in `input_range` -> (N, H, W, 3) RGB in [0, 1] (float32)."""
  if x.ndim != 4:
    raise ValueError(f"{network} expects NHWC images, got shape {x.shape}")
  bands = x.shape[-1]
  if rgb_bands is not None:
    if len(rgb_bands) != 3 or not all(0 <= b < bands for b in rgb_bands):
      raise ValueError(f"{network} rgb_bands must be 3 band indices in "
                       f"[0, {bands}), got {tuple(rgb_bands)}")
    x = x[..., jnp.asarray(tuple(rgb_bands))]
  elif bands == 1:
    x = jnp.repeat(x, 3, axis=-1)
  elif bands != 3:
    raise ValueError(f"{network} got {bands} bands; pass rgb_bands=(red, green, "
                     "blue) band indices to pick the three it was trained on")
  low, high = input_range
  return (x.astype(jnp.float32) - low) / (high - low)
