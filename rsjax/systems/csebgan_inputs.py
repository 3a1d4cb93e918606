"""The land-cover mask that conditions CSEBGAN, and its checks.

A mixin of `csebgan.CSEBGAN` (which sets `label_field`, `target`,
`out_channels`, `num_classes` and `size_multiple`): clear errors for a batch
the system cannot take, the one-hot generator / discriminator input, and the
conductor's labels. A counted pixel is a `valid` pixel of a real row (eval
batches mark padding rows with `mask` = 0); the others get label -1 (ignored
by the cross-entropy and the scores), and only counted pixels must have a
class in [0, config.num_classes) -- `check_labels` raises otherwise, also
inside jit through a host callback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from rsjax.systems import inputs as inputs_lib


class MaskConditioned:
  """Batch checks and mask inputs of a system conditioned on land cover."""

  label_field: str
  target: str
  out_channels: int
  num_classes: int
  size_multiple: int

  def check_batch(self, batch: Mapping[str, Any]) -> None:
    """Clear errors for missing fields, wrong shapes or tile sizes."""
    for name in (self.label_field, self.target):
      if name not in batch:
        raise KeyError(f"batch has no field {name!r} (config.inputs / "
                       f"config.target); it has {sorted(batch)}: add it to "
                       f"config.data.fields")
    target, labels = batch[self.target], batch[self.label_field]
    if target.ndim != 4 or target.shape[-1] != self.out_channels:
      raise ValueError(f"config.target {self.target!r}: expected (B, H, W, "
                       f"{self.out_channels}), got shape {target.shape}")
    if labels.shape != target.shape[:3]:
      raise ValueError(f"{self.label_field!r} must be (B, H, W) class indices "
                       f"matching {self.target!r}, got {labels.shape}")
    height, width = target.shape[1:3]
    if height % self.size_multiple or width % self.size_multiple:
      raise ValueError(f"config.model.generator_kwargs: SENet needs a tile size "
                       f"divisible by {self.size_multiple}, got {height}x{width}")

  def check_labels(self, batch) -> None:
    """Raises (also inside jit, via a host callback) when a counted pixel of
    the mask has a class outside [0, config.num_classes)."""
    labels = jnp.asarray(batch[self.label_field]).astype(jnp.int32)
    counted = self.counted_pixels(batch)
    bad = jnp.any(counted & ((labels < 0) | (labels >= self.num_classes)))
    field, k = self.label_field, self.num_classes

    def raise_if_bad(flag):
      if bool(flag):
        raise ValueError(f"field {field!r} has classes outside [0, {k}) on valid "
                         f"pixels: raise config.num_classes ({k}) or fix the mask")

    jax.debug.callback(raise_if_bad, bad)

  def counted_pixels(self, batch) -> jax.Array:
    """(B, H, W) bool: valid pixels (if `valid` is given) of real rows."""
    shape = jnp.shape(batch[self.label_field])
    counted = jnp.ones(shape, bool)
    if "valid" in batch:
      counted &= jnp.asarray(batch["valid"]) > 0
    if "mask" in batch:
      counted &= jnp.asarray(batch["mask"])[:, None, None] > 0
    return counted

  def mask_input(self, batch) -> jax.Array:
    """The one-hot land-cover map (B, H, W, K) float32."""
    return inputs_lib.field_input(batch, self.label_field, self.num_classes)

  def labels(self, batch) -> jax.Array:
    """int32 classes with uncounted pixels set to -1 (ignored by the CE)."""
    labels = jnp.asarray(batch[self.label_field]).astype(jnp.int32)
    return jnp.where(self.counted_pixels(batch), labels, -1)
