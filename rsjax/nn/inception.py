"""The FID Inception-v3: pool3 features (2048-d) for the Frechet Inception
Distance, as the CSEBGAN paper's FID (Wang et al., Sec. IV-A 3, ref. [42]:
Heusel et al. 2017) computes it.

This is the network of `pytorch-fid` (mseitzer/pytorch-fid,
`pytorch_fid.inception.fid_inception_v3` + `InceptionV3` with block 3), the
PyTorch port of TensorFlow's original FID graph: torchvision's Inception-v3
(Szegedy et al. 2016) with its blocks patched as the TF graph has them:

- Mixed_5b..5d (InceptionA), Mixed_6b..6e (InceptionC), Mixed_7b (InceptionE):
  the 3x3 average pool of the pool branch does not count the zero padding
  (`count_include_pad=False`);
- Mixed_7c (InceptionE): that branch max-pools (3x3, stride 1, padding 1);
- every BasicConv2d is conv (no bias) -> BatchNorm (eps 0.001, inference
  statistics) -> ReLU.

Input: `pytorch-fid` takes RGB in [0, 1], resizes to 299 x 299 (bilinear,
align_corners=False, no antialiasing) and maps to [-1, 1] (2 x - 1); so does
`FIDInceptionV3`, after picking the RGB bands and mapping `input_range`
(default (-1, 1), the generators' tanh range) to [0, 1]
(`rsjax.nn.rgb_input`). Output: (N, 2048) global average of Mixed_7c.

Weights come from a local `.npz` written by `rsjax.nn.inception_convert` from
the FID weights file the user has (pt_inception-2015-12-05-6726825d.pth);
nothing is downloaded. Layout (float32, one array per key):

  <block>/kernel  (kh, kw, C_in, C_out) HWIO     e.g. Conv2d_1a_3x3/kernel,
  <block>/scale, <block>/bias                        Mixed_5b/branch1x1/mean
  <block>/mean,  <block>/var   (C_out,)  BatchNorm gamma, beta, running stats

for every BasicConv2d of the network (`conv_shapes()` lists them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rsjax.nn.rgb_input import rgb01

FID_SIZE = 299
FEATURES = 2048
BN_EPS = 1e-3
BN_KEYS = ("scale", "bias", "mean", "var")

Pair = tuple[int, int]


def _pair(value) -> Pair:
  return (value, value) if isinstance(value, int) else tuple(value)


class BasicConv(nn.Module):
  """torchvision's BasicConv2d in inference: conv -> BatchNorm -> ReLU."""
  features: int
  kernel: Pair | int
  stride: int = 1
  padding: Pair | int = 0

  @nn.compact
  def __call__(self, x):
    kh, kw = _pair(self.kernel)
    ph, pw = _pair(self.padding)
    zeros = nn.initializers.zeros
    kernel = self.param("kernel", zeros, (kh, kw, x.shape[-1], self.features))
    scale = self.param("scale", nn.initializers.ones, (self.features,))
    bias = self.param("bias", zeros, (self.features,))
    mean = self.param("mean", zeros, (self.features,))
    var = self.param("var", nn.initializers.ones, (self.features,))
    y = jax.lax.conv_general_dilated(
        x, kernel, (self.stride, self.stride), ((ph, ph), (pw, pw)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=jax.lax.Precision.HIGHEST)
    y = (y - mean) / jnp.sqrt(var + BN_EPS) * scale + bias
    return nn.relu(y)


def _avg_pool_same(x):
  """3x3 stride-1 average, padding 1, padded zeros not counted (TF's pool)."""
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool(x, stride: int, padding: int = 0):
  pad = ((padding, padding), (padding, padding))
  return nn.max_pool(x, (3, 3), (stride, stride), pad)


class InceptionA(nn.Module):
  """Mixed_5b..5d (FIDInceptionA)."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(64, 1, name="branch1x1")(x)
    b5 = BasicConv(48, 1, name="branch5x5_1")(x)
    b5 = BasicConv(64, 5, padding=2, name="branch5x5_2")(b5)
    b3 = BasicConv(64, 1, name="branch3x3dbl_1")(x)
    b3 = BasicConv(96, 3, padding=1, name="branch3x3dbl_2")(b3)
    b3 = BasicConv(96, 3, padding=1, name="branch3x3dbl_3")(b3)
    bp = BasicConv(self.pool_features, 1, name="branch_pool")(_avg_pool_same(x))
    return jnp.concatenate([b1, b5, b3, bp], -1)


class InceptionB(nn.Module):
  """Mixed_6a (torchvision InceptionB): grid 35 -> 17."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, 3, stride=2, name="branch3x3")(x)
    bd = BasicConv(64, 1, name="branch3x3dbl_1")(x)
    bd = BasicConv(96, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = BasicConv(96, 3, stride=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool(x, 2)], -1)


class InceptionC(nn.Module):
  """Mixed_6b..6e (FIDInceptionC): factorized 7x7 convolutions."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv(192, 1, name="branch1x1")(x)
    b7 = BasicConv(c7, 1, name="branch7x7_1")(x)
    b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv(c7, 1, name="branch7x7dbl_1")(x)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv(192, 1, name="branch_pool")(_avg_pool_same(x))
    return jnp.concatenate([b1, b7, bd, bp], -1)


class InceptionD(nn.Module):
  """Mixed_7a (torchvision InceptionD): grid 17 -> 8."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(192, 1, name="branch3x3_1")(x)
    b3 = BasicConv(320, 3, stride=2, name="branch3x3_2")(b3)
    b7 = BasicConv(192, 1, name="branch7x7x3_1")(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv(192, 3, stride=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool(x, 2)], -1)


class InceptionE(nn.Module):
  """Mixed_7b (FIDInceptionE_1: average pool) and Mixed_7c (FIDInceptionE_2:
  max pool)."""
  pool: str

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(320, 1, name="branch1x1")(x)
    b3 = BasicConv(384, 1, name="branch3x3_1")(x)
    b3 = jnp.concatenate([
        BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
        BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], -1)
    bd = BasicConv(448, 1, name="branch3x3dbl_1")(x)
    bd = BasicConv(384, 3, padding=1, name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([
        BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
        BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], -1)
    pooled = _avg_pool_same(x) if self.pool == "avg" else _max_pool(x, 1, 1)
    bp = BasicConv(192, 1, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], -1)


class FIDInceptionV3(nn.Module):
  """(N, H, W, C) images -> (N, 2048) pool3 features (module docstring)."""
  rgb_bands: Sequence[int] | None = None
  input_range: tuple[float, float] = (-1.0, 1.0)

  def preprocess(self, images: jax.Array) -> jax.Array:
    """RGB in [0, 1] -> 299 x 299 bilinear (no antialiasing) -> [-1, 1]."""
    x = rgb01(images, self.rgb_bands, self.input_range, "FIDInceptionV3")
    x = jax.image.resize(x, (x.shape[0], FID_SIZE, FID_SIZE, 3), "linear",
                         antialias=False)
    return 2.0 * x - 1.0

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = self.preprocess(images)
    x = BasicConv(32, 3, stride=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv(32, 3, name="Conv2d_2a_3x3")(x)
    x = BasicConv(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
    x = _max_pool(x, 2)
    x = BasicConv(80, 1, name="Conv2d_3b_1x1")(x)
    x = BasicConv(192, 3, name="Conv2d_4a_3x3")(x)
    x = _max_pool(x, 2)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, name="Mixed_6b")(x)
    x = InceptionC(160, name="Mixed_6c")(x)
    x = InceptionC(160, name="Mixed_6d")(x)
    x = InceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE("avg", name="Mixed_7b")(x)
    x = InceptionE("max", name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))


def param_shapes() -> dict[str, tuple[int, ...]]:
  """{'Conv2d_1a_3x3/kernel': (3, 3, 3, 32), ...}: every weight's shape."""
  abstract = jax.eval_shape(
      FIDInceptionV3().init, jax.random.key(0),
      jax.ShapeDtypeStruct((1, FID_SIZE, FID_SIZE, 3), jnp.float32))
  flat = jax.tree_util.tree_flatten_with_path(abstract["params"])[0]
  return {"/".join(p.key for p in path): tuple(leaf.shape) for path, leaf in flat}


def params_from_flat(flat: Mapping[str, np.ndarray]) -> dict:
  """{'Mixed_5b/branch1x1/kernel': ..., ...} -> nested Flax params, checking
  that every weight is present with its shape."""
  params: dict = {}
  for key, shape in param_shapes().items():
    if key not in flat:
      raise KeyError(f"FID Inception weights lack {key!r} (shape {shape})")
    value = np.asarray(flat[key], np.float32)
    if value.shape != shape:
      raise ValueError(f"FID Inception weight {key!r} has shape {value.shape}, "
                       f"expected {shape} (kernels are HWIO)")
    node = params
    *parents, leaf = key.split("/")
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  return params


def load_fid_inception(path: str, **fields: Any) -> tuple[FIDInceptionV3, dict]:
  """(module, {'params'}) from an `.npz` of `rsjax.nn.inception_convert`;
  `fields` (rgb_bands, input_range) pass to `FIDInceptionV3`."""
  with np.load(path, allow_pickle=False) as archive:
    flat = {key: archive[key] for key in archive.files}
  return FIDInceptionV3(**fields), {"params": params_from_flat(flat)}
