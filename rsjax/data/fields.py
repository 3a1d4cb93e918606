"""The field layout of a multi-source example (the rs_multisource contract).

Spatial fields are (T, T[, C]) per example, T the tile size; metadata fields
are small. `spec(name, tile_size)` gives (shape, dtype) in physical units, as
the TFDS builder stores them.
"""

from __future__ import annotations

import numpy as np

# name -> (channels or None for (T, T), dtype)
SPATIAL = {
    "s2": (4, np.float32), "s1": (2, np.float32), "lulc": (None, np.uint8),
    "dem": (4, np.float32), "valid": (None, np.uint8),
    "s2_cloudy": (4, np.float32), "cloud_mask": (None, np.uint8),
    "s2_t2": (4, np.float32), "s1_t2": (2, np.float32),
    "lulc_t2": (None, np.uint8), "s2_coarse": (4, np.float32),
}
# name -> (shape, dtype); text fields have dtype object
METADATA = {
    "scene_id": ((), object), "crs": ((), object),
    "transform": ((6,), np.float64), "tile_row": ((), np.int32),
    "tile_col": ((), np.int32),
}
DEFAULT_FIELDS = ("s2", "s1", "lulc", "dem", "valid")
NUM_LULC_CLASSES = 9  # Dynamic World: 0..8


def spec(name: str, tile_size: int) -> tuple[tuple[int, ...], type]:
  """(shape, dtype) of one example's field."""
  if name in SPATIAL:
    channels, dtype = SPATIAL[name]
    shape = (tile_size, tile_size) + (() if channels is None else (channels,))
    return shape, dtype
  if name in METADATA:
    return METADATA[name]
  raise KeyError(f"unknown field {name!r}; fields are "
                 f"{sorted(SPATIAL) + sorted(METADATA)}.")


def is_device_field(dtype) -> bool:
  """Whether a field can live in a sharded jax.Array (not text, not float64).

  float64 (the affine transform) stays on the host: without jax x64 it would
  be rounded to float32, which loses metres at UTM northings.
  """
  dtype = np.dtype(dtype)
  return dtype != np.dtype(object) and dtype.kind not in "SUO" \
      and dtype != np.float64
