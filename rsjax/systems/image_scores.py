"""Scores of generated images against their references, as evaluation sums.

The image-quality indices of the RS-SPADE paper (Wang & Zhou, Tables 1-2)
and of CSEBGAN's fidelity evaluation (Wang et al., Sec. IV-A): per image,
on images mapped from the normalized [-1, 1] to [0, 1] (data range 1), PSNR
(dB), SSIM and SAM in RADIANS, the unit of RS-SPADE's tables: they print SAM
0.19 (RS-SPADE) and 0.23 (pix2pix) beside PSNR 23.1 and 18.8 dB, which is
10.9 and 13.2 degrees (0.19 degrees would be a near-perfect spectrum at any
such PSNR). The CSEBGAN paper reports no SAM; its extra column is this one.
`UNITS` names each score's unit, which the report tables print in their
headers. Eval batches carry padding rows (`mask` 0), so the jitted
`score_sums` returns mask-weighted sums and the count, and `finalize_scores`
divides once on the host. `masked_sum` is that weighting, shared with the
cloud-removal and fusion scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rsjax import metrics

SCORES = ("psnr", "ssim", "sam")
UNITS = {"psnr": "dB", "ssim": "", "sam": "rad"}
"""The unit of each score ('' for a dimensionless index): RS-SPADE's."""


def example_weights(mask, batch_size: int) -> jax.Array:
  """(B,) float32 weights: `mask` (1 real example, 0 padding), or ones."""
  return (jnp.ones((batch_size,)) if mask is None
          else jnp.asarray(mask, jnp.float32))


def masked_sum(values, weights, counted) -> jax.Array:
  """sum(values * weights) over the `counted` rows only.

  where(), not 0 * x: padding rows may hold garbage (inf or NaN) that a
  zero weight keeps.
  """
  return jnp.sum(jnp.where(counted, values * weights, 0.0))


def score_sums(prediction, target, mask=None) -> dict[str, jax.Array]:
  """Mask-weighted sums of per-image PSNR, SSIM (data range 1) and SAM
  (radians) on prediction and target mapped from [-1, 1] to [0, 1], and the
  count. `mask` (B,) is 1 for real examples and 0 for eval padding."""
  pred = (jnp.asarray(prediction, jnp.float32) + 1.0) / 2.0
  target = (jnp.asarray(target, jnp.float32) + 1.0) / 2.0
  mask = example_weights(mask, target.shape[0])
  counted = mask > 0
  per_image = {
      "psnr": metrics.psnr(pred, target, data_range=1.0),
      "ssim": metrics.ssim(pred, target, data_range=1.0),
      "sam": metrics.sam(pred, target, degrees=False)}
  sums = {f"{k}_sum": masked_sum(v, mask, counted) for k, v in per_image.items()}
  sums["count"] = jnp.sum(mask)
  return sums


def finalize_scores(sums: Mapping[str, Any]) -> dict[str, float]:
  """{'psnr' (dB), 'ssim', 'sam' (radians)}: means over counted images."""
  count = float(np.asarray(sums["count"]))
  return {k: (float(np.asarray(sums[f"{k}_sum"])) / count if count else
              float("nan")) for k in SCORES}
