"""The land-cover mask that conditions CSEBGAN, and its checks.

Wang et al., Sec. III: the generator, the discriminator and the conductor
all read the land-cover map m. A mixin of `system.CSEBGAN` (which sets
`label_field`, `target`, `out_channels`, `num_classes` and
`size_multiple`): clear errors for a batch
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

from rsjax.systems import checks
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
    checks.require_fields(batch, (self.label_field, self.target),
                          "config.inputs / config.target")
    target = batch[self.target]
    checks.check_image(target, self.out_channels,
                       f"config.target {self.target!r}")
    checks.check_shape(batch[self.label_field], target.shape[:3],
                       f"field {self.label_field!r} (class indices)",
                       f"(as {self.target!r})")
    checks.check_tile_size(target.shape, self.size_multiple,
                           "config.model.generator_kwargs")

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
