"""The DRIB generator of the two-GAN cloud-removal paper (Tables 1 and 2).

"Cloud removal with SAR-optical data fusion using two GANs and dilated
residual inception blocks" (Sec. 2.1, Fig. 2). With width `ngf` = 64:

  Encoder (Table 1)        CL(64,4,2) - CBL(128,4,2) - CBL(256,4,2) - CBL(512,4,1)
  Bottleneck (Table 2)     8 DRIBs at 512 channels, H/8
  Decoder (Table 1)        CBDR(256,4,1) - CBDR(128,4,2) - CBR(64,4,2) - CT(out,4,2)

C = convolution, B = BatchNorm, L = LeakyReLU(0.2), R = ReLU, T = tanh; the
numbers are (filters, kernel, stride). The decoder's convolutions are
transposed convolutions; its "D" is read as dropout (the paper trains with
dropout 0.5, the pix2pix decoder's CBDR). Symmetric skip concatenations (U-Net
style) join each decoder output to the encoder output of the same size:
dec0 + enc2, dec1 + enc1, dec2 + enc0, then CT to full resolution.

A DRIB (Table 2): three branches CBR(256,1,1,1) -> DBR(256,3,1,r) with dilation
r = 1, 2, 3 (D = dilated conv), concatenated, CB(512,1,1,1), plus the input.

A convolution that a BatchNorm follows (every "CB" above) has no bias: the
normalization subtracts the batch mean and so cancels it; its gradient would
be rounding noise that Adam scales up to full-size random steps (as in the
ResNet generator and pix2pix's code). The first encoder convolution (CL) and
the last transposed convolution (CT) keep theirs.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from rsjax.nn.layers import (check_spatial_divisible, conv, conv_transpose,
                             leaky_relu)
from rsjax.nn.norms import Normalization

Dtype = Any

ENCODER_TABLE = ((1, 4, 2), (2, 4, 2), (4, 4, 2), (8, 4, 1))
"""Encoder (filters as a multiple of ngf, kernel, stride), Table 1."""
DECODER_TABLE = ((4, 4, 1), (2, 4, 2), (1, 4, 2))
"""Decoder CBDR/CBDR/CBR (filters / ngf, kernel, stride), then CT(out, 4, 2)."""


class DRIB(nn.Module):
  """Dilated residual inception block (Table 2), residual add, no final act.

  `features` is the block's in/out width (512 in the paper), each branch has
  `branch_features` (256) channels.
  """
  features: int = 512
  branch_features: int = 256
  dilations: Sequence[int] = (1, 2, 3)
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    branches = []
    for rate in self.dilations:
      h = conv(self.branch_features, 1, use_bias=False, dtype=self.dtype,
               name=f"branch{rate}_reduce")(x)
      h = nn.relu(Normalization(dtype=self.dtype, name=f"branch{rate}_reduce_bn")(
          h, train=train))
      h = conv(self.branch_features, 3, dilation=rate, use_bias=False,
               dtype=self.dtype, name=f"branch{rate}_dilated")(h)
      h = nn.relu(Normalization(dtype=self.dtype, name=f"branch{rate}_dilated_bn")(
          h, train=train))
      branches.append(h)
    h = conv(self.features, 1, use_bias=False, dtype=self.dtype,
             name="project")(jnp.concatenate(branches, axis=-1))
    h = Normalization(dtype=self.dtype, name="project_bn")(h, train=train)
    return x + h


class DRIBGenerator(nn.Module):
  """Encoder - 8 DRIBs - decoder with skips (cloud-removal paper, Fig. 2).

  Input (N, H, W, any channels), H and W multiples of 8 (e.g. SAR for the
  SAR-to-optical GAN, cloudy optical + translated optical for the
  cloud-removal GAN); output (N, H, W, out_channels) in [-1, 1]. Dropout
  (rate 0.5) needs a 'dropout' RNG when `train`.
  """
  out_channels: int = 3
  ngf: int = 64
  num_blocks: int = 8
  dropout_rate: float = 0.5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    check_spatial_divisible(x, 8, "DRIBGenerator")  # three stride-2 convs
    x = x.astype(self.dtype)
    skips = []
    for i, (mult, kernel, stride) in enumerate(ENCODER_TABLE):
      x = conv(mult * self.ngf, kernel, stride, use_bias=i == 0,
               dtype=self.dtype, name=f"encoder_{i}")(x)
      if i > 0:  # CL first, CBL after
        x = Normalization(dtype=self.dtype, name=f"encoder_{i}_bn")(x, train=train)
      x = leaky_relu(x)
      skips.append(x)
    for i in range(self.num_blocks):
      x = DRIB(8 * self.ngf, 4 * self.ngf, dtype=self.dtype, name=f"drib_{i}")(
          x, train=train)
    for i, (mult, kernel, stride) in enumerate(DECODER_TABLE):
      x = conv_transpose(mult * self.ngf, kernel, stride, use_bias=False,
                         dtype=self.dtype, name=f"decoder_{i}")(x)
      x = Normalization(dtype=self.dtype, name=f"decoder_{i}_bn")(x, train=train)
      if i < 2:  # CBDR, CBDR, then CBR
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      x = nn.relu(x)
      x = jnp.concatenate([x, skips[2 - i]], axis=-1)
    x = conv_transpose(self.out_channels, 4, 2, dtype=self.dtype,
                       name="to_image")(x)
    return jnp.tanh(x)
