"""Normalization and denormalization layers of the papers.

- `Normalization`: BatchNorm / InstanceNorm / identity by name, affine or
  parameter-free (pix2pix initialises the BatchNorm scale from N(1, 0.02)).
- `SPADE`: spatially-adaptive denormalization (Park et al. 2019, cited by
  RS-SPADE and CSEBGAN): parameter-free normalization, then per-pixel gamma and
  beta predicted by convolutions from a conditioning map resized to the
  feature size: out = norm(x) * (1 + gamma) + beta.
- `MultiSourceModulation`: the multi-source modulation module of RS-SPADE
  (Wang & Zhou, Sec. 3.1, Fig. 5): each source (LULC one-hot, SAR, DEM /
  slope / aspect / hillshade, ...) goes through its own embedding branch, at
  its own native resolution, the embeddings are fused and turned into
  gamma / beta applied after the BatchNorm.
- `SemanticDenorm`: the semantic-adaptive denormalization of CSEBGAN's SMBlk
  (Wang et al., Sec. III-A, Eq. 2-5): a per-layer 2-layer MLP maps the shared
  per-class semantic vectors to this layer's channels, the mask tiles them
  into maps Gamma and B, and out = BN(x) * Gamma + B.

Every modulation layer has the call signature `(x, condition, *, train)` so
the residual blocks in `spade.py` accept any of them.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rsjax.nn import fused_convs
from rsjax.nn import mixed_precision
from rsjax.nn.layers import conv, resize_to

Dtype = Any
NORM_KINDS = ("batch", "instance", "none")


def _scale_init(key, shape, dtype=jnp.float32):
  """pix2pix's BatchNorm scale init: N(1, 0.02)."""
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


class Normalization(nn.Module):
  """BatchNorm, InstanceNorm or identity, chosen by `kind`.

  BatchNorm uses batch statistics when `train` (global statistics over a
  sharded batch under jit) and running averages otherwise; momentum 0.9 and
  epsilon 1e-5 match PyTorch's defaults. `affine=False` gives the
  parameter-free normalization SPADE-style layers denormalize.
  """
  kind: str = "batch"
  affine: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    if self.kind not in NORM_KINDS:
      raise ValueError(f"unknown norm {self.kind!r}; valid: {NORM_KINDS}")
    if self.kind == "none":
      return x
    if self.kind == "batch":
      return nn.BatchNorm(
          use_running_average=not train, momentum=0.9, epsilon=1e-5,
          use_scale=self.affine, use_bias=self.affine, scale_init=_scale_init,
          dtype=self.dtype, param_dtype=jnp.float32, name="batch_norm")(x)
    return nn.InstanceNorm(
        epsilon=1e-5, use_scale=self.affine, use_bias=self.affine,
        scale_init=_scale_init, dtype=self.dtype, param_dtype=jnp.float32,
        name="instance_norm")(x)


class SPADE(nn.Module):
  """Spatially-adaptive denormalization from a conditioning map (any channels).

  `condition` (N, H', W', C) is resized to the feature size (nearest for
  label maps, `resize_method='linear'` for continuous rasters), passed through
  a shared 3x3 conv + ReLU with `hidden` channels and two 3x3 convs giving
  gamma and beta. With `fused` (3x3 kernels only), gamma and beta are one
  convolution (`fused_convs.shared_input`): the same parameters and
  function, one read of the shared map; None fuses when compiling for TPU
  (`fused_convs.resolve`).
  """
  norm: str = "batch"
  hidden: int = 128
  kernel_size: int = 3
  resize_method: str = "nearest"
  fused: bool | None = None
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, condition, *, train: bool):
    features = x.shape[-1]
    normalized = Normalization(self.norm, affine=False, dtype=self.dtype,
                               name="param_free_norm")(x, train=train)
    condition = resize_to(condition.astype(self.dtype), x.shape[1], x.shape[2],
                          method=self.resize_method)
    shared = nn.relu(conv(self.hidden, self.kernel_size, dtype=self.dtype,
                          name="shared")(condition))
    gamma, beta = _gamma_beta(shared, features, self.kernel_size,
                              fused_convs.resolve(self.fused), self.dtype)
    return normalized * (1.0 + gamma) + beta


class MultiSourceModulation(nn.Module):
  """RS-SPADE's multi-source modulation module (Wang & Zhou, Fig. 5).

  `condition` is a mapping from source name to an NHWC raster; every name in
  `sources` must be present, each raster may have its own resolution and
  channel count (e.g. LULC 9-class one-hot at 10 m, SAR VV/VH at 10 m, DEM +
  slope + aspect + hillshade at 30 m). Each source's embedding branch (3x3 conv
  + ReLU, `embed_features` channels) runs at the source's own resolution; the
  embeddings are resized to the feature size (nearest for
  `categorical_sources`, bilinear otherwise), concatenated, fused by a 3x3
  conv + ReLU and turned into per-pixel gamma / beta that denormalize the
  parameter-free BatchNorm: out = BN(x) * (1 + gamma) + beta. Any subset of
  sources works: the list is configuration (the paper's ablation, Table 2).

  With `fused` the layers are computed in fewer, wider convolutions, the
  same function with the same parameters (`rsjax.nn.fused_convs`, issue
  24): the embedding convolutions of the sources that share a grid as one
  block-diagonal convolution, gamma and beta as one. `fused=False` runs the
  paper's layers one by one; None (the default) fuses when compiling for
  TPU chips, where it pays (`fused_convs.resolve`).
  """
  sources: Sequence[str] = ("lulc", "sar", "dem")
  categorical_sources: Sequence[str] = ("lulc",)
  norm: str = "batch"
  embed_features: int = 64
  hidden: int = 128
  fused: bool | None = None
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, condition, *, train: bool):
    missing = [name for name in self.sources if name not in condition]
    if missing:
      raise KeyError(f"MultiSourceModulation: sources {missing} missing from "
                     f"the condition (got {sorted(condition)}); expected "
                     f"{list(self.sources)}")
    height, width, features = x.shape[1], x.shape[2], x.shape[3]
    normalized = Normalization(self.norm, affine=False, dtype=self.dtype,
                               name="param_free_norm")(x, train=train)
    method = {name: "nearest" if name in self.categorical_sources
              else "linear" for name in self.sources}
    inputs = {}
    for name in self.sources:
      source = condition[name].astype(self.dtype)
      # Embed at native resolution unless the source is finer than the
      # features (then shrink first: cheaper, same receptive content).
      if source.shape[1] > height or source.shape[2] > width:
        source = resize_to(source, height, width, method=method[name])
      inputs[name] = source
    fused = nn.relu(conv(self.hidden, 3, dtype=self.dtype, name="fuse")(
        self._embeddings(inputs, method, height, width)))
    gamma, beta = _gamma_beta(fused, features, 3,
                              fused_convs.resolve(self.fused), self.dtype)
    return normalized * (1.0 + gamma) + beta

  def _embeddings(self, inputs: dict[str, jax.Array], method: dict[str, str],
                  height: int, width: int) -> jax.Array:
    """The sources' embeddings (conv + ReLU) on the feature grid,
    concatenated in the order of `sources`."""
    if not fused_convs.resolve(self.fused):
      return jnp.concatenate(
          [resize_to(nn.relu(conv(self.embed_features, 3, dtype=self.dtype,
                                  name=f"embed_{name}")(x)),
                     height, width, method=method[name])
           for name, x in inputs.items()], axis=-1)
    grids: dict[tuple[int, ...], dict[str, jax.Array]] = {}
    for name, x in inputs.items():
      grids.setdefault(x.shape[:3], {})[f"embed_{name}"] = x
    if len(grids) == 1 and next(iter(grids))[1:] == (height, width):
      # Every source on the feature grid: the block-diagonal output is
      # already the concatenation.
      return nn.relu(fused_convs.block_diagonal(
          next(iter(grids.values())), self.embed_features, dtype=self.dtype))
    embedded = {}
    for group in grids.values():
      outputs = fused_convs.block_diagonal(group, self.embed_features,
                                           dtype=self.dtype)
      embedded.update(zip(group, jnp.split(outputs, len(group), axis=-1)))
    return jnp.concatenate(
        [resize_to(nn.relu(embedded[f"embed_{name}"]), height, width,
                   method=method[name]) for name in inputs], axis=-1)


def _gamma_beta(shared, features: int, kernel_size: int, fused: bool,
                dtype) -> tuple[jax.Array, jax.Array]:
  """The gamma and beta convolutions of a SPADE-style layer over `shared`:
  one convolution when `fused` (3x3 kernels), two otherwise."""
  if fused and kernel_size == fused_convs.KERNEL_SIZE:
    out = fused_convs.shared_input(shared, {"gamma": features,
                                            "beta": features}, dtype=dtype)
    return out["gamma"], out["beta"]
  return (conv(features, kernel_size, dtype=dtype, name="gamma")(shared),
          conv(features, kernel_size, dtype=dtype, name="beta")(shared))


class SemanticCondition(NamedTuple):
  """What a `SemanticDenorm` layer modulates with.

  mask: (N, H, W, K) one-hot (or soft) class map at any resolution.
  gamma, beta: (N, K, D) semantic vectors sampled from the Semantic
    Embeddings (CSEBGAN Eq. 1), shared by all layers.
  """
  mask: jax.Array
  gamma: jax.Array
  beta: jax.Array


class SemanticDenorm(nn.Module):
  """CSEBGAN's semantic-adaptive denormalization (Eq. 2-5).

  Per layer, two 2-layer MLPs f_gamma, f_beta (D -> `mlp_hidden` -> C, ReLU
  between) map each class's shared vector to this layer's C channels; the
  mask (nearest-resized to the feature size) tiles them into Gamma and B, and
  out = BN(x) * Gamma + B (Eq. 5). `gamma_offset=1.0` gives SPADE's
  (1 + Gamma) variant; the default 0 is the paper's equation.
  """
  norm: str = "batch"
  mlp_hidden: int = 128
  gamma_offset: float = 0.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, condition: SemanticCondition, *, train: bool):
    features = x.shape[-1]
    normalized = Normalization(self.norm, affine=False, dtype=self.dtype,
                               name="param_free_norm")(x, train=train)

    def mlp(vectors, name):
      hidden = mixed_precision.Dense(self.mlp_hidden, dtype=self.dtype,
                        param_dtype=jnp.float32, name=f"{name}_fc1")(vectors)
      return mixed_precision.Dense(features, dtype=self.dtype, param_dtype=jnp.float32,
                      name=f"{name}_fc2")(nn.relu(hidden))

    gamma_per_class = mlp(condition.gamma.astype(self.dtype), "gamma")  # (N, K, C)
    beta_per_class = mlp(condition.beta.astype(self.dtype), "beta")
    mask = resize_to(condition.mask.astype(self.dtype), x.shape[1], x.shape[2])
    gamma_map = jnp.einsum("nhwk,nkc->nhwc", mask, gamma_per_class)
    beta_map = jnp.einsum("nhwk,nkc->nhwc", mask, beta_per_class)
    return normalized * (self.gamma_offset + gamma_map) + beta_map

