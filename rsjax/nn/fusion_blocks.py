"""Feature-level optical+SAR fusion blocks, one per strategy of the review's
Table II (Li et al., "Deep fusion of optical and SAR images for semantic
segmentation: a review", Sec. IV-B):

- linear fusion (Figs. 12-14): `ConcatFusion`, `SumFusion`, `ProductFusion`;
- attention (Figs. 15-17, 21): `ChannelAttentionFusion` (SE/CBAM channel
  weights, as DDHRNet's MSE module), `SpatialAttentionFusion` (per-modality
  spatial weights), `ChannelSpatialFusion` (CBAM: channel then spatial),
  `CrossAttentionFusion` (MCANet-style attention between modalities);
- gates (Figs. 22-24): `GatedFusion` with independent, complementary or
  interactive gates;
- feature alignment (Fig. 27): `AlignmentFusion` (learned per-pixel offsets
  warp SAR features onto the optical ones, then both are projected to a shared
  space).

Every block is a `FusionBlock`: it maps `(optical, sar)` features of equal
shape (N, H, W, C) to fused features (N, H, W, `features`), computes in `dtype`
with float32 parameters, and takes a `train` keyword (unused by these blocks,
kept for a uniform signature).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rsjax.nn import mixed_precision
from rsjax.nn.layers import conv

Dtype = Any

GATE_KINDS = ("independent", "complementary", "interactive")


class FusionBlock(nn.Module):
  """What every fusion block shares: `features`, `dtype` and the call
  `(optical, sar, *, train)`, which hands both modalities to `fuse`.

  Subclasses write `fuse(optical, sar)` (with `nn.compact` when it creates
  layers) and may use `project`, the 1x1 conv to `features` channels.
  """
  features: int
  dtype: Dtype = jnp.float32

  def __call__(self, optical, sar, *, train: bool = False):
    del train  # no fusion block has train-dependent layers
    return self.fuse(optical, sar)

  def fuse(self, optical, sar):
    raise NotImplementedError

  def project(self, x, name: str = "project"):
    """A 1x1 conv of `x` to `features` channels."""
    return conv(self.features, 1, dtype=self.dtype, name=name)(x)


def concat(optical, sar):
  """The channel concatenation of both modalities."""
  return jnp.concatenate([optical, sar], axis=-1)


class ConcatFusion(FusionBlock):
  """Concatenation, then a 1x1 conv back to `features` (Fig. 12)."""

  @nn.compact
  def fuse(self, optical, sar):
    return self.project(concat(optical, sar))


class SumFusion(FusionBlock):
  """Element-wise sum (Fig. 13); parameter-free, needs C == `features`."""

  def fuse(self, optical, sar):
    return optical + sar


class ProductFusion(FusionBlock):
  """Element-wise (dot) product (Fig. 14); parameter-free, C == `features`."""

  def fuse(self, optical, sar):
    return optical * sar


class ChannelGate(nn.Module):
  """CBAM channel attention: x * sigmoid(MLP(avg-pool) + MLP(max-pool)), with
  a shared 2-layer MLP reducing channels by `reduction` (SENet/CBAM)."""
  reduction: int = 4
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    hidden = mixed_precision.Dense(max(1, channels // self.reduction), dtype=self.dtype,
                      param_dtype=jnp.float32, name="squeeze")
    expand = mixed_precision.Dense(channels, dtype=self.dtype, param_dtype=jnp.float32,
                      name="excite")
    def mlp(pooled):
      return expand(nn.relu(hidden(pooled)))
    weights = nn.sigmoid(mlp(jnp.mean(x, axis=(1, 2)))
                         + mlp(jnp.max(x, axis=(1, 2))))
    return x * weights[:, None, None, :].astype(x.dtype)


class SpatialGate(nn.Module):
  """CBAM spatial attention maps: sigmoid(conv7x7([mean_c, max_c] of each
  input)), `num_maps` maps of shape (N, H, W, num_maps)."""
  num_maps: int = 1
  kernel_size: int = 7
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, *inputs):
    stats = []
    for x in inputs:
      stats += [jnp.mean(x, axis=-1, keepdims=True),
                jnp.max(x, axis=-1, keepdims=True)]
    logits = conv(self.num_maps, self.kernel_size, dtype=self.dtype,
                  name="conv")(jnp.concatenate(stats, axis=-1))
    return nn.sigmoid(logits)


class ChannelAttentionFusion(FusionBlock):
  """Channel attention on the concatenated modalities (SENet/CBAM channel
  weights, as DDHRNet's MSE module, Fig. 18), then a 1x1 conv to `features`."""
  reduction: int = 4

  @nn.compact
  def fuse(self, optical, sar):
    joint = ChannelGate(self.reduction, dtype=self.dtype, name="channel_gate")(
        concat(optical, sar))
    return self.project(joint)


class SpatialAttentionFusion(FusionBlock):
  """Spatial attention (Fig. 16): one map per modality predicted from both
  modalities' channel statistics; fused = m_opt * optical + m_sar * sar,
  projected by a 1x1 conv to `features`."""
  kernel_size: int = 7

  @nn.compact
  def fuse(self, optical, sar):
    maps = SpatialGate(2, self.kernel_size, dtype=self.dtype,
                       name="spatial_gate")(optical, sar).astype(optical.dtype)
    return self.project(maps[..., :1] * optical + maps[..., 1:] * sar)


class ChannelSpatialFusion(FusionBlock):
  """CBAM (Fig. 17): channel gate then spatial gate on the concatenated
  modalities, then a 1x1 conv to `features`."""
  reduction: int = 4
  kernel_size: int = 7

  @nn.compact
  def fuse(self, optical, sar):
    joint = ChannelGate(self.reduction, dtype=self.dtype, name="channel_gate")(
        concat(optical, sar))
    spatial = SpatialGate(1, self.kernel_size, dtype=self.dtype,
                          name="spatial_gate")(joint)
    return self.project(joint * spatial.astype(joint.dtype))


class CrossAttention(nn.Module):
  """Multi-head scaled dot-product attention of `queries` (N, Lq, C) over
  `context` (N, Lk, C), with query/key/value/output projections of width C."""
  num_heads: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, queries, context):
    batch, _, channels = queries.shape
    head_dim = channels // self.num_heads
    def project(x, name):
      x = mixed_precision.Dense(channels, dtype=self.dtype, param_dtype=jnp.float32,
                   name=name)(x)
      return x.reshape(batch, -1, self.num_heads, head_dim)
    query, key, value = (project(queries, "query"), project(context, "key"),
                         project(context, "value"))
    logits = jnp.einsum("bqhd,bkhd->bhqk", query, key) / math.sqrt(head_dim)
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    attended = jnp.einsum("bhqk,bkhd->bqhd", weights.astype(value.dtype), value)
    attended = attended.reshape(batch, -1, channels)
    return mixed_precision.Dense(channels, dtype=self.dtype, param_dtype=jnp.float32,
                    name="out")(attended)


class CrossAttentionFusion(FusionBlock):
  """Symmetric cross-modal attention (MCANet-style, Fig. 21).

  Both feature maps are average-pooled to at most `grid` x `grid` tokens (to
  keep memory small at high resolution); optical queries attend to SAR
  keys/values and SAR queries to optical ones (multi-head, pre-LayerNorm). Each
  result is upsampled bilinearly and added to its modality as a residual; the
  two are concatenated and projected by a 1x1 conv to `features`.
  """
  num_heads: int = 4
  grid: int = 16

  def _heads(self, channels: int) -> int:
    heads = min(self.num_heads, channels)
    while channels % heads:
      heads -= 1
    return heads

  @nn.compact
  def fuse(self, optical, sar):
    batch, height, width, channels = optical.shape
    factor = max(1, math.ceil(max(height, width) / self.grid))

    def tokens(x, name):
      pooled = nn.avg_pool(x, (factor, factor), strides=(factor, factor))
      pooled_shape = pooled.shape
      normed = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32,
                            name=f"{name}_norm")(pooled)
      return normed.reshape(batch, -1, channels), pooled_shape

    def attend(queries, keys_values, shape, name):
      out = CrossAttention(self._heads(channels), dtype=self.dtype, name=name)(
          queries, keys_values)
      out = out.reshape(shape)
      return jax.image.resize(out, (batch, height, width, channels), "bilinear")

    optical_tokens, pooled_shape = tokens(optical, "optical")
    sar_tokens, _ = tokens(sar, "sar")
    optical = optical + attend(optical_tokens, sar_tokens, pooled_shape,
                               "optical_from_sar").astype(optical.dtype)
    sar = sar + attend(sar_tokens, optical_tokens, pooled_shape,
                       "sar_from_optical").astype(sar.dtype)
    return self.project(concat(optical, sar))


class GatedFusion(FusionBlock):
  """Gated fusion (review Figs. 22-24, Kang et al. [9]); `gate` is one of:

  - 'independent': each modality screened by its own gate computed from
    itself, fused = g_opt(optical) * optical + g_sar(sar) * sar;
  - 'complementary': one gate from the joint input chooses between them,
    g = g(optical, sar), fused = g * optical + (1 - g) * sar;
  - 'interactive': two cross-modal transmission gates computed from both
    modalities, each letting the other modality's features into its own
    (optical' = optical + g_opt * sar, sar' = sar + g_sar * optical), then
    concatenation and a 1x1 conv to `features`.
  Gates are sigmoid(1x1 conv) with per-channel, per-pixel weights.
  """
  gate: str = "interactive"

  @nn.compact
  def fuse(self, optical, sar):
    channels = optical.shape[-1]
    def gate_from(x, name):
      return nn.sigmoid(conv(channels, 1, dtype=self.dtype, name=name)(x))
    joint = concat(optical, sar)
    if self.gate == "independent":
      fused = (gate_from(optical, "optical_gate") * optical
               + gate_from(sar, "sar_gate") * sar)
    elif self.gate == "complementary":
      weight = gate_from(joint, "gate")
      fused = weight * optical + (1 - weight) * sar
    elif self.gate == "interactive":
      optical_in = optical + gate_from(joint, "sar_to_optical_gate") * sar
      sar_in = sar + gate_from(joint, "optical_to_sar_gate") * optical
      fused = concat(optical_in, sar_in)
    else:
      raise ValueError(f"unknown gate {self.gate!r}; valid gates: "
                       f"{', '.join(GATE_KINDS)}")
    if fused.shape[-1] != self.features:  # always for 'interactive' (2C)
      fused = self.project(fused)
    return fused


def warp_bilinear(x: jax.Array, offsets: jax.Array) -> jax.Array:
  """Samples x (N, H, W, C) at (row + offsets[..., 0], col + offsets[..., 1])
  with bilinear interpolation; coordinates are clamped to the border."""
  batch, height, width, channels = x.shape
  rows = jnp.arange(height, dtype=jnp.float32)[None, :, None] + offsets[..., 0]
  cols = jnp.arange(width, dtype=jnp.float32)[None, None, :] + offsets[..., 1]
  rows = jnp.clip(rows, 0, height - 1)
  cols = jnp.clip(cols, 0, width - 1)
  row0, col0 = jnp.floor(rows), jnp.floor(cols)
  row_frac = (rows - row0)[..., None].astype(x.dtype)
  col_frac = (cols - col0)[..., None].astype(x.dtype)
  row0, col0 = row0.astype(jnp.int32), col0.astype(jnp.int32)
  row1 = jnp.minimum(row0 + 1, height - 1)
  col1 = jnp.minimum(col0 + 1, width - 1)
  flat = x.reshape(batch, height * width, channels)

  def sample(r, c):
    index = (r * width + c).reshape(batch, height * width, 1)
    return jnp.take_along_axis(flat, index, axis=1).reshape(x.shape)

  top = sample(row0, col0) * (1 - col_frac) + sample(row0, col1) * col_frac
  bottom = sample(row1, col0) * (1 - col_frac) + sample(row1, col1) * col_frac
  return top * (1 - row_frac) + bottom * row_frac


class AlignmentFusion(FusionBlock):
  """Feature alignment (review Fig. 27): a 3x3 conv on both modalities predicts
  per-pixel offsets (bounded by `max_offset` pixels, zero at init so training
  starts from the identity) that warp the SAR features onto the optical grid;
  modality-specific 1x1 convs project both into a shared space, where they
  are summed."""
  max_offset: float = 4.0

  @nn.compact
  def fuse(self, optical, sar):
    offsets = mixed_precision.Conv(2, (3, 3), padding="SAME",
                      kernel_init=nn.initializers.zeros, dtype=self.dtype,
                      param_dtype=jnp.float32, name="offsets")(
                          concat(optical, sar))
    offsets = self.max_offset * jnp.tanh(offsets.astype(jnp.float32))
    aligned_sar = warp_bilinear(sar, offsets)
    return (self.project(optical, "optical_project")
            + self.project(aligned_sar, "sar_project"))
