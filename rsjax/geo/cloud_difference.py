"""A cloud / shadow mask from a cloudy image and a clear image of the same place.

Datasets of cloudy and clear pairs (SEN12MS-CR) come without cloud masks,
and the cloud-removal scores split every image into its cloudy and clear
pixels. Thick clouds make a pixel brighter in every visible band, and their
shadows make it darker, by far more than a few weeks' change of the ground
between the two dates. So a pixel is:

  1 cloud   if its mean visible reflectance (B2, B3, B4) is at least
            `cloud_threshold` above the clear image's,
  2 shadow  if it is at least `shadow_threshold` below,
  0 clear   otherwise (`rsjax.geo.bands.CLOUD_MASK_CLASSES`).

This is an approximation, not a cloud detector: thin clouds and haze below
the threshold count as clear, and land-cover change beyond it (a harvested
field, snow) counts as cloud or shadow. The defaults (0.08 and 0.04
reflectance) are the scale of thick clouds over land: clouds of optical
depth above about 2 lift visible reflectance by 0.1 and more, while the
visible reflectance of vegetated or bare land changes by a few hundredths
between dates of one season. Ebel et al. (2021) mask SEN12MS-CR's clouds
with the s2cloudless detector instead, which needs its trained model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rsjax.geo import bands as geo_bands

CLEAR, CLOUD, SHADOW = (geo_bands.CLOUD_MASK_CLASSES.index(name)
                        for name in ("clear", "cloud", "shadow"))
CLOUD_THRESHOLD = 0.08
SHADOW_THRESHOLD = 0.04
VISIBLE_BANDS = ("B2", "B3", "B4")


def difference_mask(clear: np.ndarray, cloudy: np.ndarray,
                    band_names: Sequence[str], *,
                    cloud_threshold: float = CLOUD_THRESHOLD,
                    shadow_threshold: float = SHADOW_THRESHOLD) -> np.ndarray:
  """(H, W) uint8 mask (0 clear, 1 cloud, 2 shadow) of `cloudy` against
  `clear`, both (H, W, C) reflectance whose channels are `band_names`."""
  clear, cloudy = np.asarray(clear), np.asarray(cloudy)
  if clear.shape != cloudy.shape or clear.ndim != 3:
    raise ValueError(f"difference_mask: clear {clear.shape} and cloudy "
                     f"{cloudy.shape} must be the same (H, W, C) shape.")
  names = list(band_names)
  missing = [b for b in VISIBLE_BANDS if b not in names]
  if missing:
    raise ValueError(f"difference_mask: needs the visible bands "
                     f"{list(VISIBLE_BANDS)}; {missing} not among {names}.")
  if not (cloud_threshold > 0 and shadow_threshold > 0):
    raise ValueError("difference_mask: thresholds must be positive, got "
                     f"{cloud_threshold} and {shadow_threshold}.")
  visible = [names.index(b) for b in VISIBLE_BANDS]
  change = (cloudy[..., visible].astype(np.float64)
            - clear[..., visible].astype(np.float64)).mean(axis=-1)
  mask = np.full(change.shape, CLEAR, np.uint8)
  mask[change >= cloud_threshold] = CLOUD
  mask[change <= -shadow_threshold] = SHADOW
  return mask
