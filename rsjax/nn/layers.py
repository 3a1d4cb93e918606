"""Convolution helpers with the papers' N(0, 0.02) weight init, and small tools.

pix2pix, the cloud-removal paper (Sec. 3.3) and CSEBGAN initialise weights from a
normal distribution with mean 0 and standard deviation 0.02 and biases at 0. All
helpers take NHWC inputs, a compute `dtype` (e.g. bfloat16) and keep float32
parameters.

Also here: `SpectralConv` (a conv with optional spectral normalization, as SPADE
and CSEBGAN use), `leaky_relu` (slope 0.2), `check_spatial_divisible` (a clear
error for inputs the downsampling cannot take), `resize_to` (nearest for class
maps, bilinear for rasters), `count_params`, and `conv_specs`, which lists the
convolutions a network performs (kernel, stride, dilation) by abstract tracing,
so architecture tests compare paper-size networks to the papers' tables for free.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from rsjax.nn import mixed_precision

normal_init = nn.initializers.normal(stddev=0.02)
"""The papers' weight init: N(0, 0.02)."""

Dtype = Any


def conv(features: int, kernel_size: int = 3, stride: int = 1, *,
         dilation: int = 1, padding: str | int = "SAME", use_bias: bool = True,
         space_to_depth: bool = False, dtype: Dtype = jnp.float32,
         name: str | None = None) -> nn.Conv:
  """A square 2-D convolution with N(0, 0.02) weights.

  `padding` is 'SAME', 'VALID' or an int of pixels on every side (zero padding).
  In mixed precision its weight gradients are float32 (`mixed_precision`).
  `space_to_depth`: computed by `rsjax.nn.space_to_depth` where it applies.
  """
  if isinstance(padding, int):
    padding = ((padding, padding), (padding, padding))
  return mixed_precision.Conv(
      features, (kernel_size, kernel_size), strides=(stride, stride),
      kernel_dilation=(dilation, dilation), padding=padding, use_bias=use_bias,
      space_to_depth=space_to_depth, kernel_init=normal_init, dtype=dtype,
      param_dtype=jnp.float32, name=name)


def conv_transpose(features: int, kernel_size: int = 4, stride: int = 2, *,
                   use_bias: bool = True, dtype: Dtype = jnp.float32,
                   name: str | None = None) -> nn.ConvTranspose:
  """A transposed convolution that multiplies height and width by `stride`.

  With 'SAME' padding the output is exactly `stride` times the input, as the
  PyTorch originals get with kernel 4, stride 2, padding 1 (or kernel 3,
  stride 2, padding 1, output_padding 1).
  """
  return mixed_precision.ConvTranspose(
      features, (kernel_size, kernel_size), strides=(stride, stride),
      padding="SAME", use_bias=use_bias, kernel_init=normal_init, dtype=dtype,
      param_dtype=jnp.float32, name=name)


LEAKY_SLOPE = 0.2
"""Negative slope of the LeakyReLUs in pix2pix, PatchGAN and the DRIB encoder."""


def leaky_relu(x):
  """LeakyReLU with the papers' slope 0.2."""
  return nn.leaky_relu(x, negative_slope=LEAKY_SLOPE)


class SpectralConv(nn.Module):
  """A square convolution, optionally spectrally normalized (Miyato et al. 2018).

  SPADE and CSEBGAN put spectral normalization on the generator's and
  discriminator's convolutions; `flax.linen.SpectralNorm` keeps the power
  iteration vector `u` and `sigma` in the 'batch_stats' collection, updated
  only when `train` is True. With `spectral_norm=False` this is `conv(...)`.
  """
  features: int
  kernel_size: int = 3
  stride: int = 1
  dilation: int = 1
  padding: str | int = "SAME"
  use_bias: bool = True
  spectral_norm: bool = True
  space_to_depth: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    layer = conv(self.features, self.kernel_size, self.stride,
                 dilation=self.dilation, padding=self.padding,
                 use_bias=self.use_bias, space_to_depth=self.space_to_depth,
                 dtype=self.dtype, name="conv")
    if not self.spectral_norm:
      return layer(x)
    # float32: with a bfloat16 dtype Flax would store the wrapped kernel in bf16.
    return nn.SpectralNorm(layer, dtype=jnp.float32, name="spectral_norm")(
        x, update_stats=train)


def check_spatial_divisible(x: jax.Array, factor: int, model: str) -> None:
  """Raises a ValueError unless `x` is NHWC with H and W divisible by
  `factor`, the total stride of the network's downsampling."""
  if x.ndim != 4:
    raise ValueError(f"{model} expects NHWC inputs (4 dims), got shape "
                     f"{x.shape}")
  height, width = x.shape[1:3]
  if height % factor or width % factor:
    raise ValueError(
        f"{model} downsamples by {factor}: input height and width must be "
        f"divisible by {factor}, got {height}x{width} (shape {x.shape})")


def resize_to(x, height: int, width: int, *, method: str = "nearest"):
  """Resize NHWC `x` to `height` x `width` (no-op when it already matches).

  Use 'nearest' for categorical maps (one-hot land cover, masks) so classes
  never blend, and 'linear' for continuous rasters (SAR, DEM, terrain).
  """
  if x.shape[1:3] == (height, width):
    return x
  return jax.image.resize(x, (x.shape[0], height, width, x.shape[3]),
                          method=method)


def count_params(params) -> int:
  """Number of scalars in a parameter pytree (arrays or ShapeDtypeStructs)."""
  return sum(int(math.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(params))


class ConvSpec(NamedTuple):
  """One convolution as traced: kernel (kh, kw, in, out), strides, dilations.

  A transposed convolution shows as `input_dilation` = its stride.
  """
  kernel: tuple[int, ...]
  stride: tuple[int, ...]
  input_dilation: tuple[int, ...]
  dilation: tuple[int, ...]


def conv_specs(fn: Callable, *args) -> list[ConvSpec]:
  """Every convolution `fn(*args)` performs, in order, without computing.

  Traces `fn` abstractly (`args` may be `jax.ShapeDtypeStruct`s), so the
  layer list of a paper-size network costs no compute; architecture tests
  compare it to the papers' tables.
  """
  closed = jax.make_jaxpr(fn)(*args)
  return list(_walk_convs(closed.jaxpr))


def _walk_convs(jaxpr):
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "conv_general_dilated":
      yield ConvSpec(tuple(eqn.invars[1].aval.shape),
                     tuple(eqn.params["window_strides"]),
                     tuple(eqn.params["lhs_dilation"]),
                     tuple(eqn.params["rhs_dilation"]))
    for value in eqn.params.values():
      for sub in value if isinstance(value, (list, tuple)) else (value,):
        inner = getattr(sub, "jaxpr", sub)
        if hasattr(inner, "eqns"):
          yield from _walk_convs(inner)
