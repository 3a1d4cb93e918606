"""PatchGAN discriminators (pix2pix, Isola et al. 2017) and a multi-scale wrapper.

With `num_layers=3` (the default) this is pix2pix's 70x70 PatchGAN, used by
pix2pix, RS-SPADE and the residual cycle GAN (the cloud-removal paper's
Table 1 discriminator is another network: `rsjax.nn.patchgan_78`):

  C64(4,2) - LReLU, C128(4,2)-N-LReLU, C256(4,2)-N-LReLU, C512(4,1)-N-LReLU, C1(4,1)

(PyTorch padding 1, so a 256x256 input gives 30x30 logits). The
discriminator sees the channel concatenation of condition and image and
returns every intermediate activation (for CSEBGAN's feature-matching loss,
Eq. 6) and the logits. `MultiScalePatchGAN` runs copies on the input
average-pooled by 2 between scales (pix2pixHD, as CSEBGAN uses).

`style` picks where the options go, as each original does:
  'pix2pix': spectral norm (if on) on every conv, affine norms, a bias on
    every conv but those a normalization (BatchNorm or InstanceNorm)
    follows: both subtract a per-channel mean, which cancels the bias.
  'spade' (NVlabs SPADE's `get_nonspade_norm_layer`): spectral norm and an
    affine-free norm on the normalized convs only, which have no bias; the
    first and last convs are plain convs with a bias.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from rsjax.nn.layers import SpectralConv, leaky_relu
from rsjax.nn.norms import Normalization

Dtype = Any
STYLES = ("pix2pix", "spade")


def patchgan_layers(num_layers: int = 3) -> list[tuple[int, int, int]]:
  """(filters / ndf, kernel, stride) of each conv; the last gives 1 logit."""
  layers = [(min(2**i, 8), 4, 2) for i in range(num_layers)]
  layers.append((min(2**num_layers, 8), 4, 1))
  layers.append((0, 4, 1))  # 0: one output channel
  return layers


def receptive_field(kernels_and_strides: Sequence[tuple[int, int]]) -> int:
  """Receptive field (pixels) of one output of a stack of convolutions."""
  field = 1
  for kernel, stride in reversed(list(kernels_and_strides)):
    field = (field - 1) * stride + kernel
  return field


class PatchGANOptions(nn.Module):
  """The options of one PatchGAN, shared by `PatchGAN` and
  `MultiScalePatchGAN`: width `ndf`, `num_layers` stride-2 convolutions,
  `norm` ('batch', 'instance' or 'none'), `spectral_norm`, `style` (see the
  module docstring), `space_to_depth` (`rsjax.nn.space_to_depth`: how the
  few-channel first layer is computed, not what) and the compute `dtype`."""
  ndf: int = 64
  num_layers: int = 3
  norm: str = "batch"
  spectral_norm: bool = False
  style: str = "pix2pix"
  space_to_depth: bool = False
  dtype: Dtype = jnp.float32


class PatchGAN(PatchGANOptions):
  """n-layer PatchGAN on concat(condition, image); any channel counts.

  `__call__(condition, image, *, train)` returns (features, logits): features
  is the list of post-activation maps of every layer but the last, logits
  (N, H', W', 1) are unbounded (pair them with BCE-with-logits, hinge or MSE).
  Pass `condition=None` for an unconditional discriminator (e.g. cycle GAN).
  """

  @nn.compact
  def __call__(self, condition, image, *, train: bool):
    if self.style not in STYLES:
      raise ValueError(f"PatchGAN: unknown style {self.style!r}; valid: {STYLES}")
    spade = self.style == "spade"
    x = image if condition is None else jnp.concatenate(
        [condition.astype(image.dtype), image], axis=-1)
    x = x.astype(self.dtype)
    layers = patchgan_layers(self.num_layers)
    last = len(layers) - 1

    def conv_layer(i, features, kernel, stride, x):
      normalized = 0 < i < last and self.norm != "none"
      use_bias = not normalized   # a norm's mean subtraction cancels a bias
      spectral = self.spectral_norm and (normalized or not spade)
      return SpectralConv(features, kernel, stride, padding=1,
                          use_bias=use_bias, spectral_norm=spectral,
                          space_to_depth=self.space_to_depth,
                          dtype=self.dtype, name=f"conv_{i}")(x, train=train)

    features = []
    for i, (mult, kernel, stride) in enumerate(layers[:-1]):
      x = conv_layer(i, mult * self.ndf, kernel, stride, x)
      if i > 0:
        x = Normalization(self.norm, affine=not spade, dtype=self.dtype,
                          name=f"norm_{i}")(x, train=train)
      x = leaky_relu(x)
      features.append(x)
    _, kernel, stride = layers[-1]
    return features, conv_layer(last, 1, kernel, stride, x)


def downsample_by_two(x):
  """pix2pixHD's 3x3 stride-2 average pooling (padding not counted)."""
  return nn.avg_pool(x, (3, 3), strides=(2, 2), padding="SAME",
                     count_include_pad=False)


class MultiScalePatchGAN(PatchGANOptions):
  """`num_scales` PatchGANs on the input at full, 1/2, 1/4, ... resolution.

  Each scale's PatchGAN has this module's options. Returns a list, finest
  scale first, of (features, logits) per scale.
  """
  num_scales: int = 2

  @nn.compact
  def __call__(self, condition, image, *, train: bool):
    outputs = []
    for scale in range(self.num_scales):
      if scale > 0:
        image = downsample_by_two(image)
        condition = None if condition is None else downsample_by_two(condition)
      outputs.append(PatchGAN(self.ndf, self.num_layers, self.norm,
                              self.spectral_norm, self.style,
                              self.space_to_depth, dtype=self.dtype,
                              name=f"scale_{scale}")(condition, image, train=train))
    return outputs
