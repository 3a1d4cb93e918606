"""Consistent geometric augmentation of a whole batch: the 8 dihedral ops.

Off unless asked for (`config.data.augment`, default 'none'): none of the five
papers rsjax follows states a geometric augmentation of its training data.
RS-SPADE (Sec. 3.2, 4.2), the cloud-removal GANs (Sec. 2.3, 3.1) and the
residual cycle GAN (Sec. II-B, III-A to III-C) describe their data and
training without one; CSEBGAN (Sec. IV-A) names flips and rotations only as
the model-free augmentation its generated images compete with (Sec. II-B);
the review (fusion zoo) reports other papers' methods.
'dihedral' and 'flips' are rsjax's own options for runs that want them.

Each example gets one of the 8 symmetries of the square (identity, 3
rotations by 90 degrees, 4 reflections), and the *same* op is applied to every
spatial field of that example (s2, s1, lulc, dem, masks, second dates...), so
the sources stay pixel-aligned. An op is three bits, applied in this order:

    transpose (swap rows and columns) -> flip rows (up-down) -> flip columns

which enumerates the dihedral group exactly once. Each bit is a `jnp.where`
between the array and its transposed/reversed copy, so the batch axis is never
reshuffled: the function runs under `jit` on a batch sharded over the mesh's
data axis without communication.

Randomness: the op of example i at training step s is drawn from
`fold_in(fold_in(PRNGKey(seed), s), i)`, with i the index in the *global*
batch. It depends only on (seed, step, i): the same whatever the number of
hosts or devices, and a resumed run redraws exactly the same ops.

Aspect is a direction, so mirroring the terrain changes it: with azimuth a
clockwise from north (row 0 north, column 0 west), a column flip gives
360 - a, a row flip 180 - a, a transpose 270 - a (mod 360). `augment_batch`
applies this to the aspect channel (`aspect=('dem', 2)`, in degrees, so augment
before normalizing) where the slope is non-zero. Hillshade is a rendering with a
fixed sun and cannot be corrected: after a mirror it is the shading of the
mirrored terrain under the mirrored sun. SAR look direction changes the same
way and is not corrected either: a mirrored SAR tile is an image of a
mirrored acquisition geometry.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

NUM_OPS = 8
MODES = ("none", "flips", "dihedral")


def op_bits(op):
  """(transpose, flip_rows, flip_cols) booleans of op index 0..7."""
  op = jnp.asarray(op, jnp.int32)
  return (op & 4) > 0, (op & 2) > 0, (op & 1) > 0


def sample_ops(seed: int, step, batch_size: int, mode: str = "dihedral"):
  """The op index (0..7) of each example of the global batch at `step`."""
  if mode not in MODES:
    raise ValueError(f"augmentation mode must be one of {list(MODES)}, got "
                     f"{mode!r}.")
  return _sample_ops(seed, step, batch_size, mode)


def _sample_ops(seed, step, batch_size: int, mode: str):
  if mode == "none":
    return jnp.zeros((batch_size,), jnp.int32)
  step_key = jax.random.fold_in(jax.random.PRNGKey(seed), step)
  keys = jax.vmap(lambda i: jax.random.fold_in(step_key, i))(
      jnp.arange(batch_size, dtype=jnp.uint32))
  high = NUM_OPS if mode == "dihedral" else 4  # flips: no transpose bit
  return jax.vmap(lambda k: jax.random.randint(k, (), 0, high))(keys)


# Jitted by assignment rather than with a decorator: the mutation tests
# (`make mutants`, see TESTING.md) skip decorated functions.
_sample_ops = jax.jit(_sample_ops, static_argnums=(2, 3))


def _select(flag, a, b):
  flag = flag.reshape(flag.shape + (1,) * (a.ndim - 1))
  return jnp.where(flag, a, b)


def apply_ops(x, ops, *, transpose: bool = True):
  """Applies op ops[i] to x[i]; x is (batch, rows, cols, ...).

  transpose=False ignores the transpose bit (ops from mode 'flips'), which is
  what non-square tiles need.
  """
  do_transpose, flip_rows, flip_cols = op_bits(ops)
  if x.ndim < 3:
    raise ValueError(f"apply_ops needs (batch, rows, cols, ...), got shape "
                     f"{x.shape}.")
  if transpose:
    if x.shape[1] != x.shape[2]:
      raise ValueError(f"90-degree rotations need square tiles, got shape "
                       f"{x.shape}; use augmentation mode 'flips'.")
    x = _select(do_transpose, jnp.swapaxes(x, 1, 2), x)
  x = _select(flip_rows, jnp.flip(x, 1), x)
  return _select(flip_cols, jnp.flip(x, 2), x)


def transform_aspect(aspect, ops, flat=None, *, transpose: bool = True):
  """Aspect (degrees) of the mirrored terrain; `flat` cells keep their value."""
  transpose_bit, flip_rows, flip_cols = op_bits(ops)
  transpose = transpose_bit & transpose
  shape = (-1,) + (1,) * (aspect.ndim - 1)
  a = aspect
  a = jnp.where(transpose.reshape(shape), 270.0 - a, a)
  a = jnp.where(flip_rows.reshape(shape), 180.0 - a, a)
  a = jnp.where(flip_cols.reshape(shape), 360.0 - a, a)
  a = jnp.mod(a, 360.0)
  return a if flat is None else jnp.where(flat, aspect, a)


def spatial_fields(batch: Mapping[str, jax.Array]) -> list[str]:
  """Fields shaped (batch, rows, cols, ...) with the batch's tile size."""
  names = [k for k, v in batch.items() if getattr(v, "ndim", 0) >= 3
           and k != "transform"]
  sizes = {k: tuple(batch[k].shape[1:3]) for k in names}
  if len(set(sizes.values())) > 1:
    raise ValueError(f"augment: spatial fields have different tile sizes "
                     f"{sizes}; resample them to one grid first.")
  return names


def augment_batch(batch: Mapping[str, jax.Array], ops, *,
                  aspect: tuple[str, int] | None = ("dem", 2),
                  slope_channel: int | None = 1,
                  transpose: bool = True) -> dict[str, jax.Array]:
  """Applies per-example ops to every spatial field of a batch (jit-able).

  Args:
    batch: field name -> array with the batch on axis 0. Fields without
      (rows, cols) axes (mask, transform, tile_row...) pass through.
    ops: (batch,) op indices from `sample_ops`.
    aspect: (field, channel) of aspect in degrees, corrected for mirrors; None
      when the batch holds no raw aspect (e.g. already normalized).
    slope_channel: channel of slope in the same field; aspect is left alone
      where slope == 0 (flat cells). None: correct every cell.
    transpose: honour the transpose bit (False for non-square tiles).
  """
  out = dict(batch)
  for name in spatial_fields(batch):
    out[name] = apply_ops(batch[name], ops, transpose=transpose)
  if aspect is not None and aspect[0] in out:
    field, channel = aspect
    x = out[field]
    flat = None if slope_channel is None else x[..., slope_channel] == 0
    new = transform_aspect(x[..., channel], ops, flat, transpose=transpose)
    out[field] = x.at[..., channel].set(new.astype(x.dtype))
  return out


def random_augment(batch: Mapping[str, jax.Array], *, seed: int, step,
                   mode: str = "dihedral", **kwargs) -> dict[str, jax.Array]:
  """`augment_batch` with ops drawn from (seed, step, example index)."""
  names = spatial_fields(batch)
  if not names or mode == "none":
    return dict(batch)
  size = batch[names[0]].shape[0]
  return augment_batch(batch, sample_ops(seed, step, size, mode),
                       transpose=mode == "dihedral", **kwargs)
