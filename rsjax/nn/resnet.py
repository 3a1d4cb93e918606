"""The residual generator of the deep residual cycle GAN (fusion paper, Fig. 2).

"Heterogeneous spatio-temporal-spectral fusion with a deep residual cycle
GAN" (Sec. II-B); the forward and backward generators share this structure:

  1. feature extraction   Conv(64, 7x7, s1) + BN + ReLU
  2. feature encoding     Conv(128, 3x3, s2) + BN + ReLU, Conv(256, 3x3, s2) + BN + ReLU
  3. residual learning    6 x [Conv(256, 3x3) + BN + ReLU, Conv(256, 3x3) + BN, add]
  4. feature decoding     DeConv(128, 3x3, s2) + BN + ReLU, DeConv(64, 3x3, s2) + BN + ReLU
  5. feature compression  Conv(OutC, 7x7, s1) + Tanh

Widths scale with `ngf` (64 in the paper); zero padding keeps sizes exact.
As in CycleGAN's generator, a convolution that a BatchNorm follows has no
bias: BatchNorm removes it, so its gradient is rounding noise that Adam would
scale up to full-size random steps.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from rsjax.nn.layers import check_spatial_divisible, conv, conv_transpose
from rsjax.nn.norms import Normalization

Dtype = Any

ENCODER_TABLE = ((1, 7, 1), (2, 3, 2), (4, 3, 2))
"""Extraction + encoding convs (filters / ngf, kernel, stride)."""
DECODER_TABLE = ((2, 3, 2), (1, 3, 2))
"""Decoding deconvs (filters / ngf, kernel, stride)."""


# Norms that subtract a per-channel mean, which cancels a per-channel conv bias
# before them: those convolutions have none.
CENTRING_NORMS = ("batch", "instance")


class ResidualBlock(nn.Module):
  """Conv-BN-ReLU, Conv-BN, plus the input (fusion paper, Fig. 2)."""
  features: int
  norm: str = "batch"
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    use_bias = self.norm not in CENTRING_NORMS
    h = conv(self.features, 3, use_bias=use_bias, dtype=self.dtype,
             name="conv_0")(x)
    h = nn.relu(Normalization(self.norm, dtype=self.dtype, name="norm_0")(
        h, train=train))
    h = conv(self.features, 3, use_bias=use_bias, dtype=self.dtype,
             name="conv_1")(h)
    h = Normalization(self.norm, dtype=self.dtype, name="norm_1")(h, train=train)
    return x + h


class ResnetGenerator(nn.Module):
  """Residual generator: (N, H, W, InC) -> (N, H, W, out_channels) in [-1, 1].

  H and W must be multiples of 4 (two stride-2 convolutions).
  """
  out_channels: int = 3
  ngf: int = 64
  num_blocks: int = 6
  norm: str = "batch"
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    check_spatial_divisible(x, 4, "ResnetGenerator")  # two stride-2 convs
    x = x.astype(self.dtype)
    use_bias = self.norm not in CENTRING_NORMS
    for i, (mult, kernel, stride) in enumerate(ENCODER_TABLE):
      x = conv(mult * self.ngf, kernel, stride, use_bias=use_bias,
               dtype=self.dtype, name=f"encoder_{i}")(x)
      x = nn.relu(Normalization(self.norm, dtype=self.dtype,
                                name=f"encoder_{i}_norm")(x, train=train))
    for i in range(self.num_blocks):
      x = ResidualBlock(4 * self.ngf, self.norm, dtype=self.dtype,
                        name=f"residual_{i}")(x, train=train)
    for i, (mult, kernel, stride) in enumerate(DECODER_TABLE):
      x = conv_transpose(mult * self.ngf, kernel, stride, use_bias=use_bias,
                         dtype=self.dtype, name=f"decoder_{i}")(x)
      x = nn.relu(Normalization(self.norm, dtype=self.dtype,
                                name=f"decoder_{i}_norm")(x, train=train))
    x = conv(self.out_channels, 7, dtype=self.dtype, name="to_image")(x)
    return jnp.tanh(x)
