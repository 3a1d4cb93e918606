"""Sample-grid panels of the two-GAN cloud-removal system (host, numpy).

SAR (VV) in grey on its dB range, the cloudy input and its cloud mask, stage
1's SAR-to-optical translation (when given), stage 2's cloud-free output and
the target, the optical images as RGB composites on the target's stretch,
each titled with the S2 bands it shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rsjax.data import fields as fields_lib
from rsjax.systems import base
from rsjax.systems import inputs as inputs_lib


def display_bands(bands: Sequence[int]) -> tuple[int, ...]:
  """Positions of B4, B3, B2 (RGB) in `bands`, else the first ones."""
  bands = list(bands)
  rgb = [bands.index(b) for b in inputs_lib.RGB_BANDS if b in bands]
  if len(rgb) == 3:
    return tuple(rgb)
  return tuple((list(range(len(bands))) * 3)[:3])


def panels(batch: Mapping[str, Any], prediction: Mapping[str, Any],
           target: np.ndarray, bands: Sequence[int],
           normalization=inputs_lib.DEFAULT_NORMALIZATION
           ) -> dict[str, base.Panel]:
  """Panels keyed by label; `prediction` holds 'cloudy', 'cloud_mask',
  'stage2' and optionally 'stage1'; `bands` are the S2 band indices of the
  optical images' channels."""
  shown = display_bands(bands)
  names = [fields_lib.band_names("s2")[bands[i]] for i in shown]
  out = {"SAR VV": inputs_lib.grey_panel(
      "s1", batch["s1"], fields_lib.grey_band("s1"), title="SAR",
      normalization=normalization)}
  for label, key in (("cloudy", "cloudy"), ("stage 1", "stage1"),
                     ("output", "stage2")):
    if key in prediction:
      out[label] = inputs_lib.composite_panel(
          f"{label} s2", prediction[key], shown, names, target)
    if key == "cloudy":
      out["cloud mask"] = inputs_lib.mask_panel(
          "cloud_mask", prediction["cloud_mask"], title="cloud mask")
  out["target"] = inputs_lib.composite_panel("target s2", target, shown, names)
  return out
