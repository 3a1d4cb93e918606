"""U-Nets: the pix2pix generator (unet_256) and RS-UNet, the LULC segmenter.

`UNetGenerator` is the pix2pix generator (Isola et al., "Image-to-image
translation with conditional adversarial networks", CVPR 2017, Sec. 6.1.1 and
the authors' `unet_256`): `num_downs` 4x4 stride-2 convolutions
C64-C128-C256-C512-C512-C512-C512-C512 with LeakyReLU(0.2), BatchNorm on every
level but the outermost and the innermost, a mirrored ReLU decoder of 4x4
stride-2 transposed convolutions with skip concatenations, dropout 0.5 in the
first three decoder blocks (the paper's CD512-CD1024-CD1024) and tanh.

`RSUNet` is the U-Net (Ronneberger et al. 2015) of the RS-SPADE paper's
downstream segmentation experiment (Sec. 4, Fig. 7): a stem double-conv block
(3x3 conv, BN, ReLU, twice), 5 max-pool downsamplings each followed by a double
conv, 5 upsamplings (2x2 stride-2 transposed conv, skip concatenation, double
conv) and a 1x1 classifier. The pooling window is `pool_window`: 2, Ronneberger
et al.'s 2x2 max-pool (the default: CSEBGAN's conductor and evaluator and the
fusion zoo cite that U-Net), or 3, the RS-SPADE paper's "convolution layers and
pooling layers employ 3x3 kernels" (Sec. 4.2, p. 6; configs/unet_seg.py sets
it on rs_multisource). Either halves the tile (`halving_max_pool`). The
paper's sentence is read as the blocks' convolutions and the pooling; the
2x2 up-convolution stays Ronneberger's, which the paper does not restate.
It is also CSEBGAN's conductor. Its encoder and
decoder are separate modules (`UNetEncoder`, `UNetDecoder`) so the two-branch
optical+SAR segmenter in `rsjax.nn.fusion` reuses the same blocks.

All modules take NHWC inputs with any number of channels, compute in `dtype`
(e.g. bfloat16) with float32 parameters, and return float32 outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rsjax.nn.layers import check_spatial_divisible, conv, conv_transpose

Dtype = Any

RSUNET_MULTIPLIERS = (1, 2, 4, 8, 16, 32)
"""RS-UNet widths per level, as multiples of `base_features`: stem + 5 downs."""


def batch_norm(train: bool, dtype: Dtype, name: str) -> nn.BatchNorm:
  """BatchNorm with PyTorch's defaults (momentum 0.1, eps 1e-5), float32 params."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                      dtype=dtype, param_dtype=jnp.float32, name=name)


POOL_WINDOWS = (2, 3)


def halving_max_pool(x: jax.Array, window: int) -> jax.Array:
  """Stride-2 max pool of NHWC `x` that halves H and W (both even).

  window 2: 2x2 blocks, no padding (Ronneberger et al. 2015). window 3
  (RS-SPADE Sec. 4.2): the 3x3 window around each even pixel, rows and
  columns 2i-1 .. 2i+1, with one pixel of -inf padding on each side, so the
  first window sees rows 0..1 only (PyTorch's MaxPool2d(3, 2, padding=1)).
  The paper gives the kernel but not the padding; a centred window keeps
  output i on input 2i as the 2x2 pool's does to within half a pixel.
  """
  if window == 2:
    return nn.max_pool(x, (2, 2), strides=(2, 2))
  if window == 3:
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
  raise ValueError(f"pool_window must be one of {list(POOL_WINDOWS)}, got "
                   f"{window!r}")


class DoubleConv(nn.Module):
  """U-Net block: (3x3 conv -> BatchNorm -> ReLU) twice, `features` channels."""
  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    for index in (1, 2):
      x = conv(self.features, 3, use_bias=False, dtype=self.dtype,
               name=f"conv{index}")(x)
      x = batch_norm(train, self.dtype, f"norm{index}")(x)
      x = nn.relu(x)
    return x


class UNetEncoder(nn.Module):
  """RS-UNet encoder: a stem block, then `len(channel_multipliers) - 1` stages
  of stride-2 max-pool (`pool_window` 2 or 3, `halving_max_pool`) + double
  conv. Returns every stage's output, full resolution first (the skips of
  the decoder; the last one is the bottleneck)."""
  base_features: int = 32
  channel_multipliers: Sequence[int] = RSUNET_MULTIPLIERS
  dtype: Dtype = jnp.float32
  pool_window: int = 2

  @property
  def stage_features(self) -> tuple[int, ...]:
    return tuple(self.base_features * m for m in self.channel_multipliers)

  @property
  def num_downs(self) -> int:
    return len(self.channel_multipliers) - 1

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> list[jax.Array]:
    check_spatial_divisible(x, 2**self.num_downs, type(self).__name__)
    widths = self.stage_features
    x = DoubleConv(widths[0], dtype=self.dtype, name="stem")(
        x.astype(self.dtype), train=train)
    stages = [x]
    for level in range(1, self.num_downs + 1):
      x = halving_max_pool(x, self.pool_window)
      x = DoubleConv(widths[level], dtype=self.dtype, name=f"down{level}")(
          x, train=train)
      stages.append(x)
    return stages


class UpStage(nn.Module):
  """U-Net decoder stage: 2x2 stride-2 transposed conv, skip concat, double conv."""
  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, skip: jax.Array, *, train: bool) -> jax.Array:
    x = conv_transpose(self.features, 2, 2, dtype=self.dtype, name="upsample")(x)
    x = jnp.concatenate([skip.astype(x.dtype), x], axis=-1)
    return DoubleConv(self.features, dtype=self.dtype, name="block")(x, train=train)


class UNetDecoder(nn.Module):
  """RS-UNet decoder: one `UpStage` per encoder downsampling; `up1` starts at
  the bottleneck. Takes the encoder's stage list, returns full-resolution
  features with `base_features * channel_multipliers[0]` channels."""
  base_features: int = 32
  channel_multipliers: Sequence[int] = RSUNET_MULTIPLIERS
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, stages: Sequence[jax.Array], *, train: bool) -> jax.Array:
    num_downs = len(self.channel_multipliers) - 1
    if len(stages) != num_downs + 1:
      raise ValueError(f"UNetDecoder expects {num_downs + 1} encoder stages, "
                       f"got {len(stages)}")
    x = stages[-1]
    for step in range(1, num_downs + 1):
      level = num_downs - step
      x = UpStage(self.base_features * self.channel_multipliers[level],
                  dtype=self.dtype, name=f"up{step}")(x, stages[level], train=train)
    return x


class RSUNet(nn.Module):
  """RS-UNet LULC segmenter (RS-SPADE paper Sec. 4; CSEBGAN's conductor).

  5 downsamplings and 5 upsamplings by default (one per entry of
  `channel_multipliers` after the first); input height and width must be
  divisible by 2**5. `pool_window` 3 is the paper's 3x3 pooling (Sec. 4.2),
  2 Ronneberger et al.'s. Returns float32 logits (N, H, W, num_classes).
  """
  num_classes: int
  base_features: int = 32
  channel_multipliers: Sequence[int] = RSUNET_MULTIPLIERS
  dtype: Dtype = jnp.float32
  pool_window: int = 2

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    stages = UNetEncoder(self.base_features, self.channel_multipliers,
                         dtype=self.dtype, pool_window=self.pool_window,
                         name="encoder")(x, train=train)
    features = UNetDecoder(self.base_features, self.channel_multipliers,
                           dtype=self.dtype, name="decoder")(stages, train=train)
    logits = conv(self.num_classes, 1, dtype=self.dtype, name="classifier")(features)
    return logits.astype(jnp.float32)


class UNetGenerator(nn.Module):
  """pix2pix U-Net generator (Isola et al. 2017; `unet_256` at num_downs=8).

  Level i (1-based) of the encoder has `ngf * min(2**(i-1), 8)` channels. As in
  the authors' code, the convolutions followed by BatchNorm have no bias, the
  outermost and innermost encoder levels have no BatchNorm, and only the last
  transposed convolution has a bias. Dropout (`dropout_rate`, active when
  `train`) follows the first `num_dropout_blocks` decoder blocks counted from
  the innermost, as in the paper's decoder CD512-CD1024-CD1024-C1024-...
  (the PyTorch reference shifts these one block outward; parameters are the
  same). Input height and width must be divisible by 2**num_downs.
  Call with `rngs={'dropout': key}` when `train` and `dropout_rate > 0`.
  `space_to_depth` (`rsjax.nn.space_to_depth`) changes how the few-channel
  stride-2 convolutions are computed, not what.
  """
  out_channels: int = 3
  ngf: int = 64
  num_downs: int = 8
  dropout_rate: float = 0.5
  num_dropout_blocks: int = 3
  space_to_depth: bool = False
  dtype: Dtype = jnp.float32

  @property
  def level_features(self) -> tuple[int, ...]:
    return tuple(self.ngf * min(2**i, 8) for i in range(self.num_downs))

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if self.num_downs < 1:
      raise ValueError(f"UNetGenerator needs num_downs >= 1, got {self.num_downs}")
    check_spatial_divisible(x, 2**self.num_downs, type(self).__name__)
    widths = self.level_features
    innermost = self.num_downs
    x = x.astype(self.dtype)
    skips = []
    for level in range(1, innermost + 1):
      if level > 1:
        x = nn.leaky_relu(x, 0.2)
      x = conv(widths[level - 1], 4, 2, padding=1, use_bias=False,
               space_to_depth=self.space_to_depth, dtype=self.dtype,
               name=f"down{level}")(x)
      if 1 < level < innermost:
        x = batch_norm(train, self.dtype, f"down{level}_norm")(x)
      skips.append(x)
    for level in range(innermost, 1, -1):
      x = nn.relu(x)
      x = conv_transpose(widths[level - 2], 4, 2, use_bias=False,
                         dtype=self.dtype, name=f"up{level}")(x)
      x = batch_norm(train, self.dtype, f"up{level}_norm")(x)
      if innermost - level < self.num_dropout_blocks and self.dropout_rate > 0:
        x = nn.Dropout(self.dropout_rate, name=f"up{level}_dropout")(
            x, deterministic=not train)
      x = jnp.concatenate([skips[level - 2], x], axis=-1)
    x = nn.relu(x)
    x = conv_transpose(self.out_channels, 4, 2, use_bias=True, dtype=self.dtype,
                       name="up1")(x)
    return jnp.tanh(x).astype(jnp.float32)
