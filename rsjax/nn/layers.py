"""Convolution helpers with the papers' N(0, 0.02) weight init.

pix2pix, the cloud-removal paper (Sec. 3.3) and CSEBGAN initialise weights from a
normal distribution with mean 0 and standard deviation 0.02 and biases at 0. All
helpers take NHWC inputs, a compute `dtype` (e.g. bfloat16) and keep float32
parameters.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

normal_init = nn.initializers.normal(stddev=0.02)
"""The papers' weight init: N(0, 0.02)."""

Dtype = Any


def conv(features: int, kernel_size: int = 3, stride: int = 1, *,
         dilation: int = 1, padding: str | int = "SAME", use_bias: bool = True,
         dtype: Dtype = jnp.float32, name: str | None = None) -> nn.Conv:
  """A square 2-D convolution with N(0, 0.02) weights.

  `padding` is 'SAME', 'VALID' or an int of pixels on every side (zero padding).
  """
  if isinstance(padding, int):
    padding = ((padding, padding), (padding, padding))
  return nn.Conv(
      features, (kernel_size, kernel_size), strides=(stride, stride),
      kernel_dilation=(dilation, dilation), padding=padding, use_bias=use_bias,
      kernel_init=normal_init, dtype=dtype, param_dtype=jnp.float32, name=name)


def conv_transpose(features: int, kernel_size: int = 4, stride: int = 2, *,
                   use_bias: bool = True, dtype: Dtype = jnp.float32,
                   name: str | None = None) -> nn.ConvTranspose:
  """A transposed convolution that multiplies height and width by `stride`.

  With 'SAME' padding the output is exactly `stride` times the input, as the
  PyTorch originals get with kernel 4, stride 2, padding 1 (or kernel 3,
  stride 2, padding 1, output_padding 1).
  """
  return nn.ConvTranspose(
      features, (kernel_size, kernel_size), strides=(stride, stride),
      padding="SAME", use_bias=use_bias, kernel_init=normal_init, dtype=dtype,
      param_dtype=jnp.float32, name=name)
