"""The quality indices of the fusion paper's tables, as evaluation sums.

Jiang, Shen & Li (TGRS 2022), Tables II, IV and VI report, for a fused image
against the reference: SAM (degrees: the tables print values up to 8.16,
more than pi radians cannot occur), ERGAS (with the resolution ratio), the
Q index, PSNR (dB) and SSIM per band and averaged; `UNITS` names them for
the report tables' headers. Here every index is computed per
image with `rsjax.metrics` on reflectance (normalized [-1, 1] mapped to
[0, 1], the s2 normalization's physical range) and summed with the eval mask
(1 real example, 0 padding), then divided once on the host:

  sam     mean spectral angle (degrees), whole image
  ergas   Wald's ERGAS with ratio = 1 / S (HR / LR pixel size), whole image
  psnr    PSNR (data range 1) of the MSE over all bands; psnr_<band> per band
  ssim    mean of ssim_<band> (SSIM_AVG of the tables)
  q       mean of q_<band>, the Wang-Bovik index over the whole band (or
          averaged over sliding blocks of `q_block_size`)

Other images scored against the same reference get a prefix (e.g. the
trivial baselines 'lowres_' and 't1_') and the averages only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rsjax import metrics
from rsjax.systems.image_scores import example_weights, masked_sum

AVERAGES = ("sam", "ergas", "q", "psnr", "ssim")
UNITS = {"sam": "deg", "ergas": "", "q": "", "psnr": "dB", "ssim": ""}
"""The unit of each index ('' for a dimensionless one), as the paper's."""
PER_BAND = ("psnr", "ssim", "q")


def per_image_scores(prediction, target, *, ratio: int,
                     band_names: Sequence[str], q_block_size: int | None = None
                     ) -> dict[str, jax.Array]:
  """{index: (N,)} of normalized [-1, 1] images (N, H, W, len(band_names))."""
  pred = (jnp.asarray(prediction, jnp.float32) + 1.0) / 2.0
  target = (jnp.asarray(target, jnp.float32) + 1.0) / 2.0
  if pred.shape[-1] != len(band_names) or target.shape != pred.shape:
    raise ValueError(f"fusion scores: prediction {pred.shape} and target "
                     f"{target.shape} must both have the bands {band_names}")

  def one_band(p, t):  # (N, H, W) each; one trace for every band
    p, t = p[..., None], t[..., None]
    return {"psnr": metrics.psnr(p, t, data_range=1.0),
            "ssim": metrics.ssim(p, t, data_range=1.0),
            "q": metrics.q_index(p, t, block_size=q_block_size)}

  bands = jax.vmap(one_band, in_axes=-1)(pred, target)   # {index: (C, N)}
  scores = {"sam": metrics.sam(pred, target, degrees=True),
            "ergas": metrics.ergas(pred, target, ratio=1.0 / ratio),
            "psnr": metrics.psnr(pred, target, data_range=1.0),
            "ssim": jnp.mean(bands["ssim"], axis=0),
            "q": jnp.mean(bands["q"], axis=0)}
  for key in PER_BAND:
    scores.update({f"{key}_{name}": bands[key][i]
                   for i, name in enumerate(band_names)})
  return scores


def score_sums(images: Mapping[str, jax.Array], target, mask=None,
               **kwargs) -> dict[str, jax.Array]:
  """Mask-weighted sums `{prefix}{index}_sum` and `{prefix}count` of each
  {prefix: image} against `target` (per-band indices for prefix '' only).

  The images are scored under one vmap: one compiled copy of the metrics.
  """
  prefixes = list(images)
  stacked = jnp.stack([jnp.asarray(images[p], jnp.float32) for p in prefixes])
  scores = jax.vmap(lambda image: per_image_scores(image, target, **kwargs))(
      stacked)
  mask = example_weights(mask, target.shape[0])
  counted = mask > 0
  sums = {}
  for i, prefix in enumerate(prefixes):
    for key, values in scores.items():
      if prefix and key not in AVERAGES:
        continue
      sums[f"{prefix}{key}_sum"] = masked_sum(values[i], mask, counted)
    sums[f"{prefix}count"] = jnp.sum(mask)
  return sums


def finalize(sums: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
  """Means over the counted images of every `{prefix}*_sum` in `sums`."""
  count = float(np.asarray(sums[f"{prefix}count"]))
  names = [k[len(prefix):-len("_sum")] for k in sums
           if k.startswith(prefix) and k.endswith("_sum")]
  if prefix == "":  # baselines' sums share the dict: keep only unprefixed keys
    names = [n for n in names if n.split("_")[0] in AVERAGES]
  return {f"{prefix}{n}": (float(np.asarray(sums[f"{prefix}{n}_sum"])) / count
                           if count else float("nan")) for n in sorted(names)}
