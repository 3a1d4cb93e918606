"""Scores of the cloud-removal paper (Darbaghshahi et al., Tables 3-6, Eq. 3, 6).

Per image, on images mapped from [-1, 1] to [0, 1] (data range 1): PSNR and
SSIM of the cloud-free output against the clear target; PSNR inside the
corrupted pixels (`psnr_cloudy`) and inside the clear ones (`psnr_clear`),
each over its mask's pixels only, as Table 4 reports them; and the stage-1
(SAR-to-optical) PSNR and SSIM (Table 3). Sums and counts come from the
jitted `score_sums`, weighted by the eval padding mask; `finalize_scores`
divides once on the host. A masked PSNR averages over the images that have
pixels in its mask (an image without clouds has no cloudy-area PSNR).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rsjax import metrics
from rsjax.systems.image_scores import example_weights, masked_sum

SCORES = ("psnr", "ssim", "psnr_cloudy", "psnr_clear", "stage1_psnr",
          "stage1_ssim", "cloud_fraction")
_COUNTS = {"psnr": "count", "ssim": "count", "cloud_fraction": "count",
           "psnr_cloudy": "cloudy_count", "psnr_clear": "clear_count",
           "stage1_psnr": "stage1_count", "stage1_ssim": "stage1_count"}


def _unit(x) -> jax.Array:
  return (jnp.asarray(x, jnp.float32) + 1.0) / 2.0


def score_sums(prediction, target, corrupted, stage1=None, mask=None
               ) -> dict[str, jax.Array]:
  """Sums over counted images of every score in SCORES, and their counts.

  prediction, target, stage1: (B, H, W, C) in [-1, 1] (stage1 None: no
  SAR-to-optical stage, its scores count no image); corrupted: (B, H, W),
  1 for cloudy (or shadowed) pixels; mask: (B,) 1 real example, 0 padding.
  """
  pred, real = _unit(prediction), _unit(target)
  corrupted = jnp.asarray(corrupted, jnp.float32)
  if corrupted.shape != real.shape[:3]:
    raise ValueError(f"cloud mask of shape {corrupted.shape} does not match "
                     f"images of shape {real.shape}; expected {real.shape[:3]}")
  weight = example_weights(mask, real.shape[0])
  counted = weight > 0
  cloudy_pixels = jnp.sum(corrupted, axis=(1, 2))
  clear_pixels = jnp.sum(1.0 - corrupted, axis=(1, 2))
  per_image = {
      "psnr": (metrics.psnr(pred, real, data_range=1.0), counted),
      "ssim": (metrics.ssim(pred, real, data_range=1.0), counted),
      "cloud_fraction": (cloudy_pixels / (cloudy_pixels + clear_pixels), counted),
      "psnr_cloudy": (metrics.psnr(pred, real, data_range=1.0, mask=corrupted),
                      counted & (cloudy_pixels > 0)),
      "psnr_clear": (metrics.psnr(pred, real, data_range=1.0,
                                  mask=1.0 - corrupted),
                     counted & (clear_pixels > 0)),
  }
  if stage1 is not None:
    translated = _unit(stage1)
    per_image["stage1_psnr"] = (
        metrics.psnr(translated, real, data_range=1.0), counted)
    per_image["stage1_ssim"] = (
        metrics.ssim(translated, real, data_range=1.0), counted)
  # Empty masks, like padding rows, hold NaN or inf that 0 * x would keep.
  sums = {f"{name}_sum": masked_sum(value, weight, use)
          for name, (value, use) in per_image.items()}
  sums["count"] = jnp.sum(weight)
  sums["cloudy_count"] = jnp.sum(jnp.where(per_image["psnr_cloudy"][1], weight, 0.0))
  sums["clear_count"] = jnp.sum(jnp.where(per_image["psnr_clear"][1], weight, 0.0))
  sums["stage1_count"] = sums["count"] if stage1 is not None else jnp.zeros(())
  if stage1 is None:
    sums["stage1_psnr_sum"] = sums["stage1_ssim_sum"] = jnp.zeros(())
  return sums


def finalize_scores(sums: Mapping[str, Any]) -> dict[str, float]:
  """Mean of every score over the images it counted (NaN if none)."""
  scores = {}
  for name in SCORES:
    count = float(np.asarray(sums[_COUNTS[name]]))
    total = float(np.asarray(sums[f"{name}_sum"]))
    scores[name] = total / count if count else float("nan")
  return scores
