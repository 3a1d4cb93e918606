"""Two-branch optical+SAR segmenter with fusion chosen by name.

Implements the fusion taxonomy of Li et al., "Deep fusion of optical and SAR
images for semantic segmentation: a review" (Table I: pixel-, feature- and
decision-level fusion; Table II: linear, attention, gated and alignment
feature fusion) on top of the RS-UNet blocks of `rsjax.nn.unet`:

- pixel level, `'early'` (Fig. 9): the inputs are concatenated and segmented by
  one RS-UNet;
- feature level (Fig. 11), every other name but `'decision'`: an optical and a
  SAR `UNetEncoder` (same architecture, separate weights) run side by side; at
  every encoder stage (stem + each downsampling) a fusion block of
  `rsjax.nn.fusion_blocks` fuses the two stage outputs; the fused stages are
  the skips of one shared `UNetDecoder`, followed by a 1x1 classifier;
- decision level, `'decision'` (Fig. 10): two full RS-UNets, one per modality,
  whose logits are fused per class with learned softmax weights (equal at init,
  i.e. averaging).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rsjax.nn import fusion_blocks
from rsjax.nn.layers import conv
from rsjax.nn.unet import RSUNET_MULTIPLIERS, RSUNet, UNetDecoder, UNetEncoder

Dtype = Any

FEATURE_FUSION_BLOCKS = {
    "concat": fusion_blocks.ConcatFusion,
    "sum": fusion_blocks.SumFusion,
    "product": fusion_blocks.ProductFusion,
    "channel_attention": fusion_blocks.ChannelAttentionFusion,
    "spatial_attention": fusion_blocks.SpatialAttentionFusion,
    "channel_spatial": fusion_blocks.ChannelSpatialFusion,
    "cross_attention": fusion_blocks.CrossAttentionFusion,
    "gated": fusion_blocks.GatedFusion,
    "alignment": fusion_blocks.AlignmentFusion,
}
"""Feature-level fusion names -> block classes (review Table II)."""

FUSION_MODES = ("early", *FEATURE_FUSION_BLOCKS, "decision")
"""All valid `TwoBranchSegmenter.fusion` names: pixel, feature, decision level."""

GATE_KINDS = fusion_blocks.GATE_KINDS


def check_fusion_name(fusion: str, gate: str = "interactive") -> None:
  """Raises a ValueError listing the valid names if `fusion` or `gate` is unknown."""
  if fusion not in FUSION_MODES:
    raise ValueError(f"unknown fusion {fusion!r}; valid fusion modes: "
                     f"{', '.join(FUSION_MODES)}")
  if fusion == "gated" and gate not in GATE_KINDS:
    raise ValueError(f"unknown gate {gate!r} for fusion 'gated'; valid gates: "
                     f"{', '.join(GATE_KINDS)}")


class TwoBranchSegmenter(nn.Module):
  """Optical+SAR segmenter; `fusion` is one of `FUSION_MODES`.

  `optical` and `sar` are NHWC with any channel counts and equal height and
  width (divisible by 2**(len(channel_multipliers) - 1)). `gate` picks the
  gate kind of `'gated'` fusion; `num_heads` and `attention_grid` configure
  `'cross_attention'` (attention runs on at most grid x grid tokens per stage).
  `pool_window` is the encoders' max-pool window (`unet.halving_max_pool`:
  2 Ronneberger's, 3 the RS-SPADE paper's RS-Unet, Sec. 4.2).
  Returns float32 logits (N, H, W, num_classes).
  """
  num_classes: int
  fusion: str = "concat"
  base_features: int = 32
  channel_multipliers: Sequence[int] = RSUNET_MULTIPLIERS
  gate: str = "interactive"
  num_heads: int = 4
  attention_grid: int = 16
  dtype: Dtype = jnp.float32
  pool_window: int = 2

  def __post_init__(self):
    check_fusion_name(self.fusion, self.gate)
    super().__post_init__()

  def _fusion_block(self, features: int, name: str) -> nn.Module:
    block = FEATURE_FUSION_BLOCKS[self.fusion]
    options = {}
    if self.fusion == "gated":
      options["gate"] = self.gate
    elif self.fusion == "cross_attention":
      options.update(num_heads=self.num_heads, grid=self.attention_grid)
    return block(features, dtype=self.dtype, name=name, **options)

  @nn.compact
  def __call__(self, optical: jax.Array, sar: jax.Array, *, train: bool) -> jax.Array:
    if optical.ndim != 4 or sar.ndim != 4 or optical.shape[:3] != sar.shape[:3]:
      raise ValueError(
          "TwoBranchSegmenter expects NHWC optical and sar with the same batch, "
          f"height and width; got optical {optical.shape}, sar {sar.shape}")
    widths = dict(base_features=self.base_features,
                  channel_multipliers=self.channel_multipliers, dtype=self.dtype)
    pooling = dict(widths, pool_window=self.pool_window)
    if self.fusion == "early":
      stacked = jnp.concatenate([optical.astype(self.dtype), sar.astype(self.dtype)], -1)
      return RSUNet(self.num_classes, name="segmenter", **pooling)(stacked, train=train)
    if self.fusion == "decision":
      optical_logits = RSUNet(self.num_classes, name="optical_segmenter",
                              **pooling)(optical, train=train)
      sar_logits = RSUNet(self.num_classes, name="sar_segmenter",
                          **pooling)(sar, train=train)
      weights = jax.nn.softmax(self.param(
          "decision_weights", nn.initializers.zeros, (2, self.num_classes),
          jnp.float32), axis=0)
      return weights[0] * optical_logits + weights[1] * sar_logits

    optical_stages = UNetEncoder(name="optical_encoder", **pooling)(optical, train=train)
    sar_stages = UNetEncoder(name="sar_encoder", **pooling)(sar, train=train)
    fused = [
        self._fusion_block(o.shape[-1], f"fuse{level}")(o, s, train=train)
        for level, (o, s) in enumerate(zip(optical_stages, sar_stages))]
    features = UNetDecoder(name="decoder", **widths)(fused, train=train)
    logits = conv(self.num_classes, 1, dtype=self.dtype, name="classifier")(features)
    return logits.astype(jnp.float32)
