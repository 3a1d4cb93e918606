"""A stride-2 convolution of a few-channel input computed by space-to-depth.

Issue 24, item 3. The TPU pads the channel dimension to 128 lanes: a
convolution that reads a full-resolution input of few channels (the pix2pix
U-Net's first layer on the 15 source channels, the PatchGAN's first layer on
the condition and image, 19 channels) moves mostly padding and uses a sliver
of the matrix unit. The same function, rearranged: a k x k stride-2
convolution (k even) of the padded input x equals a (k/2) x (k/2) stride-1
'VALID' convolution of its 2 x 2 pixel-unshuffle

    S[n, i, j, (u, v, c)] = x[n, 2i + u, 2j + v, c]

with the kernel

    K'[p, q, (u, v, c), o] = K[2p + u, 2q + v, c, o],

since output (i, j) reads x[2i + a, 2j + b] for a = 2p + u, b = 2q + v. Four
times the channels at a quarter of the pixels. The parameters stay the
k x k kernel of the paper's layer (`K'` is computed from it in the step), so
checkpoints are the same either way.

It does not pay by the TPU compiler's own estimate (BENCHMARKS.md section
10): compiled for a v5e chip, the unshuffle is a relayout that costs more
than the narrow convolution it replaces (pix2pix at 16 images per chip,
both first layers rearranged: 40.6 -> 44.6 ms, though 2.83 -> 2.00 GiB). So
it is an option (`space_to_depth=True` on `layers.conv`, the U-Net generator
and the PatchGAN), off by default, for accelerators or compiler versions
where it may pay. It applies to the layers it computes exactly (`applies`:
stride 2, an even kernel, no dilation, an even padded size) that read at
most 32 channels, so that the unshuffled input fits in 128 lanes; others
are computed as they are.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


MAX_CHANNELS = 32
"""Input channels up to which the unshuffled input (4x) fits in 128 lanes."""


def worthwhile(setting: bool, in_channels: int) -> bool:
  """Whether a layer with this `space_to_depth` setting rearranges an input
  of `in_channels` channels."""
  return bool(setting) and in_channels <= MAX_CHANNELS


def applies(kernel_size: tuple[int, int], strides: tuple[int, int],
            dilation: tuple[int, int], padded_shape: tuple[int, int]) -> bool:
  """Whether the rearrangement computes this convolution exactly: stride 2,
  even kernel, no dilation, an even padded height and width."""
  return (tuple(strides) == (2, 2) and tuple(dilation) == (1, 1)
          and all(k % 2 == 0 for k in kernel_size)
          and all(size % 2 == 0 for size in padded_shape))


def unshuffle(x: jax.Array) -> jax.Array:
  """(N, H, W, C) -> (N, H/2, W/2, 4C), channel index (u * 2 + v) * C + c."""
  n, height, width, channels = x.shape
  x = x.reshape(n, height // 2, 2, width // 2, 2, channels)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(
      n, height // 2, width // 2, 4 * channels)


def unshuffled_kernel(kernel: jax.Array) -> jax.Array:
  """(k, k, C, O) -> (k/2, k/2, 4C, O), matching `unshuffle`'s channels."""
  kh, kw, channels, out = kernel.shape
  kernel = kernel.reshape(kh // 2, 2, kw // 2, 2, channels, out)
  return kernel.transpose(0, 2, 1, 3, 4, 5).reshape(
      kh // 2, kw // 2, 4 * channels, out)


def pad(x: jax.Array, padding) -> jax.Array:
  """Zero padding ((top, bottom), (left, right)) of an NHWC array."""
  return jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
