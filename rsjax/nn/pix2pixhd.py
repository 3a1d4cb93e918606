"""The Pix2PixHD global generator G1, a baseline row of CSEBGAN's Table I.

Wang, Liu, Zhu, Tao, Kautz & Catanzaro, "High-resolution image synthesis and
semantic manipulation with conditional GANs", CVPR 2018 (Sec. 3.2 and the
appendix's network table), the "Pix2PixHD" row of CSEBGAN's Table I
(Wang, Chen, Zou & Shi). G1, the global generator, in the paper's notation:

  c7s1-64, d128, d256, d512, d1024, R1024 x 9, u512, u256, u128, u64, c7s1-3

  c7s1-k  7x7 conv, stride 1, k filters, reflection padding 3, then
          InstanceNorm + ReLU (the last one: tanh, no norm)
  dk      3x3 conv, stride 2, k filters, InstanceNorm, ReLU
  Rk      residual block: two 3x3 convs of k filters (reflection padding 1),
          InstanceNorm after each, ReLU after the first, plus the input
  uk      3x3 fractional-strided conv, stride 1/2, k filters, InstanceNorm,
          ReLU

Widths scale with `ngf` (64), the downsamplings with `num_downs` (4; H and W
must be multiples of 2^num_downs), the blocks with `num_blocks` (9).
InstanceNorm is affine-free (pix2pixHD's `InstanceNorm2d(affine=False)`).
The input is the one-hot label map (no instance edge map, no feature
encoder: GID-15 has no instances, and the encoder is pix2pixHD's optional
multimodal mode), so the generator is deterministic. The local enhancer G2
doubles the resolution of 1024 x 512 inputs; at CSEBGAN's 256 x 256 tiles
G1 alone is the network, as pix2pixHD's `--netG global`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from rsjax.nn.layers import check_spatial_divisible, conv, conv_transpose
from rsjax.nn.norms import Normalization

Dtype = Any
MAX_FEATURES_FACTOR = 16       # d1024 = 16 x ngf after four downsamplings


def reflect_pad(x, pixels: int):
  """Reflection padding of H and W (PyTorch's ReflectionPad2d)."""
  return jnp.pad(x, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)),
                 mode="reflect")


class ResidualBlock(nn.Module):
  """Rk: [pad, conv3, IN, ReLU, pad, conv3, IN] + input."""
  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    h = conv(self.features, 3, padding="VALID", dtype=self.dtype,
             name="conv_0")(reflect_pad(x, 1))
    h = nn.relu(Normalization("instance", affine=False, dtype=self.dtype,
                              name="norm_0")(h, train=train))
    h = conv(self.features, 3, padding="VALID", dtype=self.dtype,
             name="conv_1")(reflect_pad(h, 1))
    h = Normalization("instance", affine=False, dtype=self.dtype,
                      name="norm_1")(h, train=train)
    return x + h


class GlobalGenerator(nn.Module):
  """G1: (N, H, W, K) one-hot labels -> (N, H, W, out_channels) in [-1, 1]."""
  out_channels: int = 3
  ngf: int = 64
  num_downs: int = 4
  num_blocks: int = 9
  dtype: Dtype = jnp.float32

  def _norm_relu(self, x, name: str, train: bool):
    return nn.relu(Normalization("instance", affine=False, dtype=self.dtype,
                                 name=name)(x, train=train))

  @nn.compact
  def __call__(self, labels, *, train: bool):
    check_spatial_divisible(labels, 2**self.num_downs, "GlobalGenerator")
    x = labels.astype(self.dtype)
    x = conv(self.ngf, 7, padding="VALID", dtype=self.dtype,
             name="stem")(reflect_pad(x, 3))
    x = self._norm_relu(x, "stem_norm", train)
    for i in range(self.num_downs):
      x = conv(self.ngf * 2**(i + 1), 3, 2, padding=1, dtype=self.dtype,
               name=f"down_{i}")(x)
      x = self._norm_relu(x, f"down_{i}_norm", train)
    for i in range(self.num_blocks):
      x = ResidualBlock(self.ngf * 2**self.num_downs, dtype=self.dtype,
                        name=f"residual_{i}")(x, train=train)
    for i in range(self.num_downs):
      x = conv_transpose(self.ngf * 2**(self.num_downs - i - 1), 3, 2,
                         dtype=self.dtype, name=f"up_{i}")(x)
      x = self._norm_relu(x, f"up_{i}_norm", train)
    x = conv(self.out_channels, 7, padding="VALID", dtype=self.dtype,
             name="to_image")(reflect_pad(x, 3))
    return jnp.tanh(x)
