"""Argument checks shared by the metrics: clear errors before any tracing happens.

Shapes are static under `jax.jit`, so these checks run at trace time and cost
nothing per call.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def check_image_pair(name: str, pred, target) -> tuple[jax.Array, jax.Array]:
  """Returns `pred`, `target` as float32 NHWC arrays, or raises a ValueError."""
  pred, target = jnp.asarray(pred), jnp.asarray(target)
  if pred.ndim != 4 or target.ndim != 4:
    raise ValueError(
        f"{name}: expected NHWC images of rank 4 (batch, height, width, bands), "
        f"got pred of shape {pred.shape} and target of shape {target.shape}.")
  if pred.shape != target.shape:
    raise ValueError(
        f"{name}: pred and target shapes differ: {pred.shape} vs {target.shape}.")
  return _as_float(pred), _as_float(target)


def check_mask(name: str, mask, image_shape: tuple[int, ...]) -> jax.Array:
  """Returns `mask` as float32 weights of shape (N, H, W, 1 or C).

  Accepted shapes: (N, H, W), (N, H, W, 1) or (N, H, W, C); 1 marks a pixel that
  counts, 0 one that does not.
  """
  mask = jnp.asarray(mask)
  n, h, w, c = image_shape
  if mask.shape == (n, h, w):
    mask = mask[..., None]
  if mask.shape not in ((n, h, w, 1), (n, h, w, c)):
    raise ValueError(
        f"{name}: mask of shape {mask.shape} does not match images of shape "
        f"{image_shape}; expected (N, H, W), (N, H, W, 1) or (N, H, W, C).")
  return mask.astype(jnp.float32)


def check_masked_pair(name: str, pred, target, mask, *,
                      per_pixel: bool = False):
  """`check_image_pair`, then `check_mask` of `mask` (None passes) against the
  images' shape, or their (N, H, W, 1) pixel grid if `per_pixel`.

  Returns (pred, target, mask).
  """
  pred, target = check_image_pair(name, pred, target)
  if mask is not None:
    shape = pred.shape[:3] + (1,) if per_pixel else pred.shape
    mask = check_mask(name, mask, shape)
  return pred, target, mask


def check_positive(name: str, arg: str, value):
  """Returns `value` as a float if it is a positive finite scalar, else raises.

  A traced value (inside an outer `jit`) cannot be inspected and is passed on.
  """
  if isinstance(value, jax.core.Tracer):
    return value
  array = np.asarray(value)
  if (array.ndim != 0 or array.dtype == np.bool_
      or not np.issubdtype(array.dtype, np.number)
      or not np.isfinite(array) or array <= 0):
    raise ValueError(f"{name}: {arg} must be a positive number, got {value!r}.")
  return float(array)


def _as_float(x: jax.Array) -> jax.Array:
  # Metrics accumulate in float32 even for bfloat16 / integer inputs.
  if x.dtype == jnp.float64:
    return x
  return x.astype(jnp.float32)
