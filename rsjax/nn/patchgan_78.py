"""The 78x78 PatchGAN of the two-GAN cloud-removal paper's Table 1.

Darbaghshahi et al. (cloud_removal_two_gan_drib, Sec. 2.1, Table 1) use one
discriminator design for both GANs (SAR-to-optical and cloud removal):

  CBL(64,4,2) CBL(128,4,2) CBL(256,4,2) CBL(512,4,2) C(1,3,1)

(filters, kernel, stride; C convolution, B batch normalization, L leaky
ReLU). It differs from pix2pix's 70x70 PatchGAN (`rsjax.nn.patchgan`) in
three places: batch norm on the first layer too, stride 2 in all four CBL
layers (pix2pix's C512 has stride 1) and a 3x3 output convolution (pix2pix:
4x4). One output sees a 78x78 input patch:

  3 -> (3 - 1) 2 + 4 = 8 -> 18 -> 38 -> 78.

The paper gives no padding; padding 1 on every layer (PyTorch's usual
`padding=1`) halves a 256x256 input exactly four times and keeps the size in
the 3x3 convolution, so Sec. 3.1's 256x256 inputs give 16x16 logits. The
paper does not say whether its convolutions have biases; as in rsjax's other
networks, a convolution that a batch norm follows has none (the norm's mean
subtraction cancels it), the output convolution has one.

The discriminator sees concat(condition, image) (Sec. 3.1: 256x256x1 +
256x256x3 for stage 1, 256x256x6 + 256x256x3 for stage 2) and returns, like
`PatchGAN`, (features, logits): the four post-activation CBL maps (for
feature matching) and unbounded (N, H/16, W/16, 1) logits.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from rsjax.nn.layers import conv, leaky_relu
from rsjax.nn.norms import Normalization
from rsjax.nn.patchgan import receptive_field

Dtype = Any

TABLE_1 = ((64, 4, 2), (128, 4, 2), (256, 4, 2), (512, 4, 2), (1, 3, 1))
"""(filters at ndf 64, kernel, stride) of each convolution, Table 1."""
PADDING = 1
RECEPTIVE_FIELD = receptive_field([(k, s) for _, k, s in TABLE_1])
"""78 pixels."""


class PatchGAN78(nn.Module):
  """Table 1's discriminator on concat(condition, image); any channel counts.

  `ndf` scales the widths (64: the paper's); `norm` is the CBL layers'
  normalization ('batch' as the paper; 'instance' or 'none' for other uses);
  `space_to_depth` (`rsjax.nn.space_to_depth`) changes how the few-channel
  first layer is computed, not what. `__call__(condition, image, *, train)`
  returns (features, logits); `condition=None` judges the image alone.
  """
  ndf: int = 64
  norm: str = "batch"
  space_to_depth: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, condition, image, *, train: bool):
    x = image if condition is None else jnp.concatenate(
        [condition.astype(image.dtype), image], axis=-1)
    x = x.astype(self.dtype)
    normalized = self.norm != "none"
    features = []
    for i, (filters, kernel, stride) in enumerate(TABLE_1[:-1]):
      x = conv(filters * self.ndf // 64, kernel, stride, padding=PADDING,
               use_bias=not normalized, space_to_depth=self.space_to_depth,
               dtype=self.dtype, name=f"conv_{i}")(x)
      x = Normalization(self.norm, dtype=self.dtype, name=f"norm_{i}")(
          x, train=train)
      x = leaky_relu(x)
      features.append(x)
    filters, kernel, stride = TABLE_1[-1]
    last = len(TABLE_1) - 1
    logits = conv(filters, kernel, stride, padding=PADDING, use_bias=True,
                  dtype=self.dtype, name=f"conv_{last}")(x)
    return features, logits
