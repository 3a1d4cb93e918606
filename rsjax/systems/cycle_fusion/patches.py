"""The paper's training patches: windows of `config.patch_size` of each tile.

Jiang, Shen & Li (TGRS 2022) train on square patches cut at random from their
scenes: 1984 patches of 200 x 200 in the resolution improvement experiment
(MODIS 500 m, S = 50; Sec. III-A, Table I), 8112 of 128 x 128 in the thick
cloud removal (Sentinel-2 10 m, S = 1; Sec. III-B, Table III) and 6336 of
128 x 128 in the joint processing (Landsat 8 30 m, S = 3; Sec. III-C,
Table V). rsjax cuts them from the dataset's tiles: with `config.patch_size`
= P (None: whole tiles) `train_step` sees one random P x P window of each
batch, and evaluation, `predict` and the sample panels the central one.

A window starts on a multiple of S, so it holds whole LR pixels of a stored LR
image (`config.low_res` = 'dataset') and its simulated LR image is the one
of the same LR grid. P must be a multiple of S (the LR grid tiles the patch:
resize is blur + decimation by S) and of the generator's downsampling factor
(4 for the ResNet generator's two stride-2 convolutions); `check_patch_size`
says so naming the config keys, with the nearest valid sizes. The paper's
128 px Landsat patches are not a multiple of 3 (the paper cuts them from the
LR image already upsampled to 10 m, where any size fits), so the Landsat
variant uses 132 = 11 x 12, the multiple of lcm(3, 4) = 12 closest to 128.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp


def check_patch_size(patch_size, ratio: int, size_multiple: int,
                     generator: str = "config.model.generator") -> int | None:
  """`patch_size` (None or an int that S and the generator accept), or a
  ValueError naming config.patch_size, config.resolution_ratio and the
  generator key, with the nearest valid sizes."""
  if patch_size is None:
    return None
  if isinstance(patch_size, bool) or not isinstance(patch_size, int) \
      or patch_size < 1:
    raise ValueError(f"config.patch_size must be None (whole tiles) or a "
                     f"positive int, got {patch_size!r}")
  step = math.lcm(int(ratio), int(size_multiple))
  if patch_size % step:
    below, above = patch_size // step * step, (patch_size // step + 1) * step
    nearest = " or ".join(str(n) for n in (below, above) if n > 0)
    raise ValueError(
        f"config.patch_size={patch_size} must be a multiple of "
        f"config.resolution_ratio={ratio} (the LR grid tiles the patch) and of "
        f"{size_multiple} ({generator}'s downsampling), i.e. of {step}: "
        f"nearest valid sizes {nearest}")
  return patch_size


def check_fits(patch_size: int | None, height: int, width: int) -> None:
  """ValueError unless a P x P window fits in H x W tiles."""
  if patch_size is not None and patch_size > min(height, width):
    raise ValueError(f"config.patch_size={patch_size} is larger than the "
                     f"{height}x{width} tiles of the dataset (config.data)")


def _is_image(value, height: int, width: int) -> bool:
  shape = getattr(value, "shape", ())
  return len(shape) >= 3 and tuple(shape[1:3]) == (height, width)


def _tile_size(batch: Mapping[str, Any], field: str) -> tuple[int, int]:
  return tuple(batch[field].shape[1:3])


def window(batch: Mapping[str, Any], top, left, patch_size: int,
           field: str) -> dict[str, Any]:
  """The batch with every (B, H, W, ...) field (H, W: those of `field`)
  cut to rows top.. and columns left.. of P x P; other fields unchanged.
  `top`, `left` may be traced (then the fields are jax arrays)."""
  height, width = _tile_size(batch, field)
  out = {}
  for name, value in batch.items():
    if _is_image(value, height, width):
      if isinstance(top, int) and isinstance(left, int):
        value = value[:, top:top + patch_size, left:left + patch_size]
      else:
        value = jax.lax.dynamic_slice_in_dim(
            jax.lax.dynamic_slice_in_dim(jnp.asarray(value), top, patch_size,
                                         1), left, patch_size, 2)
    out[name] = value
  return out


def central(batch: Mapping[str, Any], patch_size: int | None, ratio: int,
            field: str) -> Mapping[str, Any]:
  """The central P x P window (its corner rounded down to a multiple of S);
  the batch itself when P is None or the tiles are P x P."""
  if patch_size is None:
    return batch
  height, width = _tile_size(batch, field)
  check_fits(patch_size, height, width)
  top = (height - patch_size) // 2 // ratio * ratio
  left = (width - patch_size) // 2 // ratio * ratio
  if (height, width) == (patch_size, patch_size):
    return batch
  return window(batch, top, left, patch_size, field)


def random(batch: Mapping[str, Any], patch_size: int | None, ratio: int,
           field: str, rng: jax.Array) -> Mapping[str, Any]:
  """One random P x P window of the batch, its corner on a multiple of S
  (uniform over the (H - P) / S + 1 such rows and columns)."""
  if patch_size is None:
    return batch
  height, width = _tile_size(batch, field)
  check_fits(patch_size, height, width)
  if (height, width) == (patch_size, patch_size):
    return batch
  rows, cols = jax.random.split(rng)
  top = ratio * jax.random.randint(rows, (), 0,
                                   (height - patch_size) // ratio + 1)
  left = ratio * jax.random.randint(cols, (), 0,
                                    (width - patch_size) // ratio + 1)
  return window(batch, top, left, patch_size, field)
