"""ESRCNN: the SRCNN-style fusion network of the fusion paper's Table II.

Shao, Cai, Fu, Hu & Liu, "Deep learning-based fusion of Landsat-8 and
Sentinel-2 images for a harmonized surface reflectance product", Remote Sens.
Environ. 235, 2019 -- reference [49] of Jiang, Shen & Li (TGRS 2022), the
"ESRCNN" row of Table II (the t2 coarse image fused with the t1 fine image).
ESRCNN extends SRCNN (Dong, Loy, He & Tang, TPAMI 2016) from one upsampled
image to several co-registered inputs stacked on channels; its layers are
SRCNN's 9-1-5 table:

  patch extraction     Conv(64, 9x9) + ReLU
  non-linear mapping   Conv(32, 1x1) + ReLU
  reconstruction       Conv(out_channels, 5x5), linear

'SAME' zero padding keeps the input's size (SRCNN trains on 'VALID' crops;
a fused image must cover the whole grid). Weights N(0, 0.02)
(`rsjax.nn.layers.conv`), not SRCNN's N(0, 0.001): with Adam, the scale of
the initial weights only sets where training starts.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from rsjax.nn.layers import conv

Dtype = Any
LAYER_TABLE = ((64, 9), (32, 1))
"""SRCNN's hidden layers (filters, kernel); the last conv has 5x5 kernels."""
RECONSTRUCTION_KERNEL = 5


class ESRCNN(nn.Module):
  """(N, H, W, InC) stacked inputs -> (N, H, W, out_channels), unbounded."""
  out_channels: int = 3
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    del train                                    # no dropout or norm layers
    x = x.astype(self.dtype)
    for i, (features, kernel) in enumerate(LAYER_TABLE):
      x = nn.relu(conv(features, kernel, dtype=self.dtype, name=f"conv_{i}")(x))
    return conv(self.out_channels, RECONSTRUCTION_KERNEL, dtype=self.dtype,
                name="reconstruction")(x)
