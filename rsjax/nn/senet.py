"""CSEBGAN's Semantic Embedding Network (SENet) generator.

Wang, Chen, Zou, Shi, "Remote Sensing Image Synthesis via Semantic Embedding
Generative Adversarial Networks", Sec. III-A, Fig. 2-3, Eq. 1-5:

- `SemanticEmbeddings`: for each of K classes a learned shift b_k and
  log-scale s_k for gamma and for beta; a semantic vector is sampled with the
  reparameterization trick, gamma_k = n_k * exp(s_k / 2) + b_k (Eq. 1). The
  2K vectors are shared by all layers.
- SMResBlk = `spade.SPADEResBlock` whose modulation is `norms.SemanticDenorm`
  (per-layer 2-layer MLPs, mask tiling, Eq. 5).
- `SENet`: the SPADE generator body (`spade.ModulatedDecoder`) with SMResBlks.
- `share_embeddings=False`: the "w/o sharing" ablation (Table II): every
  SMBlk learns its own Semantic Embeddings (`UnsharedSemanticDenorm`), as
  CLADE / INADE do, applied to the same noise.

The noise is an explicit input of shape (N, 2, K, D) (index 0: gamma, 1: beta)
so that `resample_class` can redraw one class's vectors while keeping the
others fixed: semantic-level editing, measured by mCSD / mOCD.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from rsjax.nn.layers import resize_to
from rsjax.nn.norms import SemanticCondition, SemanticDenorm
from rsjax.nn.spade import ModulatedDecoder, check_divisible

Dtype = Any


def embedding_noise(key, batch: int, num_classes: int, embed_dim: int):
  """Standard normal noise n_k for every image, gamma/beta and class."""
  return jax.random.normal(key, (batch, 2, num_classes, embed_dim), jnp.float32)


def resample_class(noise, key, class_index: int):
  """New noise for class `class_index` (gamma and beta), others unchanged."""
  fresh = jax.random.normal(key, noise[:, :, class_index].shape, noise.dtype)
  return noise.at[:, :, class_index].set(fresh)


class SemanticEmbeddings(nn.Module):
  """Per-class distributions of gamma and beta vectors (CSEBGAN Eq. 1).

  Parameters `shift` (b) and `log_scale` (s), each (2, K, D). The shift starts
  from N(0, 1) so classes differ at init, the log-scale from 0 (unit scale).
  Returns gamma, beta of shape (N, K, D) for noise (N, 2, K, D); zero noise
  gives the mean vectors.
  """
  num_classes: int
  embed_dim: int = 64

  @nn.compact
  def __call__(self, noise):
    shape = (2, self.num_classes, self.embed_dim)
    if noise.shape[1:] != shape:
      raise ValueError(f"SemanticEmbeddings: noise must be (N, {shape[0]}, "
                       f"{shape[1]}, {shape[2]}), got {noise.shape}")
    shift = self.param("shift", nn.initializers.normal(1.0), shape, jnp.float32)
    log_scale = self.param("log_scale", nn.initializers.zeros, shape, jnp.float32)
    vectors = noise * jnp.exp(0.5 * log_scale) + shift
    return vectors[:, 0], vectors[:, 1]


class UnsharedSemanticDenorm(nn.Module):
  """A `SemanticDenorm` with its own `SemanticEmbeddings` (w/o sharing).

  `condition.gamma` / `condition.beta` carry the raw noise n (N, K, D) of
  gamma and beta; this layer reparameterizes it with its own shift and
  log-scale before `denorm`, which builds the `SemanticDenorm` (e.g. a
  `functools.partial` of it with its norm, MLP width and gamma offset).
  """
  num_classes: int
  embed_dim: int
  denorm: Callable[..., nn.Module] = SemanticDenorm
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, condition: SemanticCondition, *, train: bool):
    noise = jnp.stack([condition.gamma, condition.beta], axis=1)
    gamma, beta = SemanticEmbeddings(self.num_classes, self.embed_dim,
                                     name="semantic_embeddings")(noise)
    return self.denorm(dtype=self.dtype, name="denorm")(
        x, SemanticCondition(condition.mask, gamma, beta), train=train)


class SENet(nn.Module):
  """CSEBGAN's generator: SMResBlks modulated by sampled semantic embeddings.

  `mask`: (N, H, W, K) one-hot class map. `noise`: (N, 2, K, D) from
  `embedding_noise`; when None it is drawn from the 'noise' RNG stream.
  Output (N, H, W, out_channels) in [-1, 1]. The defaults follow SPADE's
  generator widths; `num_classes=15` is GID-15. `share_embeddings=False`
  gives every SMBlk its own embeddings (the paper's "w/o sharing").
  """
  out_channels: int = 3
  num_classes: int = 15
  embed_dim: int = 64
  ngf: int = 64
  num_upsamplings: int = 5
  norm: str = "batch"
  spectral_norm: bool = True
  mlp_hidden: int = 128
  gamma_offset: float = 0.0
  share_embeddings: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, mask, noise=None, *, train: bool):
    if mask.shape[-1] != self.num_classes:
      raise ValueError(f"SENet: mask has {mask.shape[-1]} channels, expected a "
                       f"one-hot map with num_classes={self.num_classes}")
    height, width = mask.shape[1:3]
    check_divisible("SENet", height, width, self.num_upsamplings)
    if noise is None:
      noise = embedding_noise(self.make_rng("noise"), mask.shape[0],
                              self.num_classes, self.embed_dim)
    denorm = functools.partial(SemanticDenorm, norm=self.norm,
                               mlp_hidden=self.mlp_hidden,
                               gamma_offset=self.gamma_offset)
    if self.share_embeddings:
      gamma, beta = SemanticEmbeddings(self.num_classes, self.embed_dim,
                                       name="semantic_embeddings")(noise)
      modulation = denorm
    else:
      expected = (2, self.num_classes, self.embed_dim)
      if noise.shape[1:] != expected:
        raise ValueError(f"SENet: noise must be (N, {expected[0]}, "
                         f"{expected[1]}, {expected[2]}), got {noise.shape}")
      gamma, beta = noise[:, 0], noise[:, 1]   # each layer reparameterizes
      modulation = functools.partial(
          UnsharedSemanticDenorm, self.num_classes, self.embed_dim, denorm)
    condition = SemanticCondition(mask, gamma, beta)
    factor = 2**self.num_upsamplings
    stem_input = resize_to(mask.astype(self.dtype), height // factor,
                           width // factor)
    return ModulatedDecoder(
        self.out_channels, modulation, ngf=self.ngf,
        num_upsamplings=self.num_upsamplings, spectral_norm=self.spectral_norm,
        dtype=self.dtype, name="decoder")(stem_input, condition, train=train)
