"""Sample-grid panels of the two-GAN cloud-removal system (host, numpy).

SAR (VV) in grey, the cloudy input and its cloud mask, stage 1's SAR-to-optical
translation (when given), stage 2's cloud-free output and the target, the
optical images as RGB composites on the target's stretch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rsjax.systems import inputs as inputs_lib


def display_bands(bands: Sequence[int]) -> tuple[int, ...]:
  """Positions of B4, B3, B2 (RGB) in `bands`, else the first ones."""
  bands = list(bands)
  rgb = [bands.index(b) for b in inputs_lib.RGB_BANDS if b in bands]
  if len(rgb) == 3:
    return tuple(rgb)
  return tuple((list(range(len(bands))) * 3)[:3])


def panels(batch: Mapping[str, Any], prediction: Mapping[str, Any],
           target: np.ndarray, bands: Sequence[int]) -> dict[str, np.ndarray]:
  """(B, H, W, 3) images in [0, 1] keyed by label; `prediction` holds
  'cloudy', 'cloud_mask', 'stage2' and optionally 'stage1'."""
  shown = display_bands(bands)
  out = {"SAR VV": inputs_lib.grey(np.asarray(batch["s1"])[..., 0])}
  for label, key in (("cloudy", "cloudy"), ("stage 1", "stage1"),
                     ("output", "stage2")):
    if key in prediction:
      out[label] = inputs_lib.composite(np.asarray(prediction[key]), shown,
                                        target)
    if key == "cloudy":
      out["cloud mask"] = inputs_lib.grey(
          np.asarray(prediction["cloud_mask"], np.float32) * 2.0 - 1.0)
  out["target"] = inputs_lib.composite(target, shown)
  return out
