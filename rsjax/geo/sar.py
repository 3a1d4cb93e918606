"""Sentinel-1 backscatter: linear sigma0 <-> dB, clipping and normalization.

    dB = 10 * log10(max(sigma0, floor))        sigma0 = 10 ** (dB / 10)

The floor (1e-5 linear, i.e. -50 dB, by default) keeps zeros and the small
negative values that thermal-noise removal leaves from becoming -inf or NaN.

For a network, dB values are clipped to a per-polarization range and mapped
linearly onto [-1, 1] (or [0, 1]); `denormalize_db` maps them back (onto the
clipped range). The ranges are configuration: `DEFAULT_DB_RANGES` covers the
usual VV/VH values over land (the limits used by the SAR-to-optical papers);
pass your own dict for other sensors, polarizations or scenes.

Note that Earth Engine's `COPERNICUS/S1_GRD` is already in dB, while
`COPERNICUS/S1_GRD_FLOAT` is linear sigma0.

Every function takes numpy or jax arrays and returns the same kind of array.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_FLOOR = 1e-5
DEFAULT_DB_RANGES: Mapping[str, tuple[float, float]] = {
    "VV": (-25.0, 0.0),
    "VH": (-32.5, 0.0),
    "HH": (-25.0, 0.0),
    "HV": (-32.5, 0.0),
}


def _namespace(x):
  return jnp if isinstance(x, jax.Array) else np


def _float(xp, x):
  x = xp.asarray(x)
  return x if xp.issubdtype(x.dtype, xp.floating) else x.astype(xp.float32)


def to_db(sigma0, *, floor: float = DEFAULT_FLOOR):
  """Linear sigma0 to dB; values below `floor` (zeros, negatives) get floor.

  NaN stays NaN (it marks missing data, not a weak return).
  """
  if not (math.isfinite(floor) and floor > 0):
    raise ValueError(f"to_db: floor must be a positive number, got {floor!r}.")
  xp = _namespace(sigma0)
  sigma0 = _float(xp, sigma0)
  return 10.0 * xp.log10(xp.maximum(sigma0, floor))


def from_db(db):
  """dB to linear sigma0: 10 ** (dB / 10)."""
  xp = _namespace(db)
  return xp.power(10.0, _float(xp, db) / 10.0)


def db_ranges(polarizations: str | Sequence[str],
              ranges: Mapping[str, tuple[float, float]] | None = None,
              ) -> list[tuple[float, float]]:
  """The (low, high) dB range of each polarization, checked.

  Polarization names are case-insensitive ('vv' finds 'VV').
  """
  if isinstance(polarizations, str):
    polarizations = [polarizations]
  ranges = DEFAULT_DB_RANGES if ranges is None else ranges
  by_name = {name.upper(): value for name, value in ranges.items()}
  result = []
  for polarization in polarizations:
    if polarization.upper() not in by_name:
      raise KeyError(
          f"no dB range for polarization {polarization!r}; ranges are given "
          f"for {sorted(by_name)}.")
    low, high = (float(v) for v in by_name[polarization.upper()])
    if not low < high:
      raise ValueError(
          f"dB range of {polarization!r} must have low < high, got "
          f"{(low, high)}.")
    result.append((low, high))
  return result


def _per_channel(xp, values, channels: int, axis: int, ndim: int, dtype):
  shape = [1] * ndim
  shape[axis] = channels
  return xp.asarray(values, dtype=dtype).reshape(shape)


def _range_arrays(xp, db, polarizations, ranges, axis):
  if isinstance(polarizations, str):
    polarizations = [polarizations]
  pairs = db_ranges(polarizations, ranges)
  if db.ndim == 0 or db.shape[axis] != len(pairs):
    raise ValueError(
        f"expected {len(pairs)} channel(s) ({list(polarizations)}) on axis "
        f"{axis}, got an array of shape {db.shape}.")
  low = _per_channel(xp, [p[0] for p in pairs], len(pairs), axis % db.ndim,
                     db.ndim, db.dtype)
  high = _per_channel(xp, [p[1] for p in pairs], len(pairs), axis % db.ndim,
                      db.ndim, db.dtype)
  return low, high


def _check_output_range(output_range) -> tuple[float, float]:
  low, high = (float(v) for v in output_range)
  if not low < high:
    raise ValueError(f"output_range must have low < high, got {output_range}.")
  return low, high


def clip_db(db, polarizations: str | Sequence[str], *,
            ranges: Mapping[str, tuple[float, float]] | None = None,
            axis: int = -1):
  """Clips each channel of `db` (one per polarization, on `axis`) to its range."""
  xp = _namespace(db)
  db = _float(xp, db)
  low, high = _range_arrays(xp, db, polarizations, ranges, axis)
  return xp.clip(db, low, high)


def normalize_db(db, polarizations: str | Sequence[str], *,
                 ranges: Mapping[str, tuple[float, float]] | None = None,
                 output_range: tuple[float, float] = (-1.0, 1.0),
                 axis: int = -1):
  """Clips dB values per polarization and maps each range onto output_range.

  Args:
    db: backscatter in dB with one channel per polarization on `axis`.
    polarizations: the channel names in order, e.g. ('VV', 'VH').
    ranges: {polarization: (low_db, high_db)}; `DEFAULT_DB_RANGES` if None.
    output_range: (-1, 1) for tanh generators, (0, 1) for sigmoid ones.
    axis: the channel axis.
  """
  xp = _namespace(db)
  db = _float(xp, db)
  low, high = _range_arrays(xp, db, polarizations, ranges, axis)
  out_low, out_high = _check_output_range(output_range)
  unit = (xp.clip(db, low, high) - low) / (high - low)
  return out_low + unit * (out_high - out_low)


def denormalize_db(normalized, polarizations: str | Sequence[str], *,
                   ranges: Mapping[str, tuple[float, float]] | None = None,
                   output_range: tuple[float, float] = (-1.0, 1.0),
                   axis: int = -1):
  """The inverse of `normalize_db` (values outside output_range are clipped)."""
  xp = _namespace(normalized)
  normalized = _float(xp, normalized)
  low, high = _range_arrays(xp, normalized, polarizations, ranges, axis)
  out_low, out_high = _check_output_range(output_range)
  unit = xp.clip((normalized - out_low) / (out_high - out_low), 0.0, 1.0)
  return low + unit * (high - low)
