"""Metrics of generative models: Frechet distance, LPIPS-style diversity and
the semantic-level diversity scores mCSD / mOCD of CSEBGAN (Wang et al.,
Sec. IV-A, Tables I-II).

Frechet distance (Heusel et al. 2017, the "FID" of the papers) between
Gaussians fitted to real and generated features,

  d^2 = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2)),

with tr (S_r S_g)^(1/2) = sum_i sqrt(lambda_i(S_r^(1/2) S_g S_r^(1/2))): the
product of two PSD matrices is similar to that symmetric PSD matrix, so two
symmetric eigen-decompositions replace a general matrix square root.
Statistics are accumulated as sums (of f, f f^T and a count), so they add up
over batches, devices and hosts (`feature_sums`, `frechet_distance_from_sums`).
The papers use Inception features; rsjax feeds whatever extractor the caller
has (CSEBGAN's system: pooled VGG19 relu5_1), so values compare only between
runs that share the extractor.

LPIPS (Zhang et al. 2018, the `lpips` package's `LPIPS.forward`, version
0.1): feature maps are unit-normalized over channels (x / (|x| + 1e-10)), the
squared difference is weighted per channel by the learned 1x1 linear layer
(`channel_weights`, one (C,) vector per layer; without them every channel
weighs 1: the unlearned "LPIPS-style" distance), giving one distance map per
layer; a pair's distance is the sum over layers of the map's spatial mean
(`distance_maps` -> `image_distance`). `rsjax.nn.lpips` holds the learned
trunks and weights. Diversity is the mean distance over all pairs of images
generated for the same mask (`pairwise_diversity`), or, as the CSEBGAN paper
has it (Sec. IV-A 4: 10 images per mask, 10 random pairs per mask), over
`num_pairs` pairs drawn per mask without replacement (`sampled_pairs`).

mCSD / mOCD (GroupDNet, Zhu et al. 2020; INADE, Tan et al. 2021): the semantic
embedding of one class c is resampled, everything else fixed; the distance
between the two images averaged over the pixels of class c is the class-
specific diversity (CSD, higher is better), averaged over the pixels of the
other classes the other-classes diversity (OCD, lower is better);
`region_distance` gives both. The means over classes (mCSD, mOCD) are taken by
the caller over the classes present. `pixel_distance_maps` is the same
machinery on raw pixels (mean absolute difference over bands), for runs
without a feature extractor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

FeatureMaps = Sequence[jax.Array]   # (N, h, w, C) per layer


def sqrtm_psd(matrix: jax.Array) -> jax.Array:
  """Square root of a symmetric positive semi-definite matrix (eigh;
  round-off negative eigenvalues are clipped to 0)."""
  matrix = jnp.asarray(matrix)
  matrix = 0.5 * (matrix + matrix.T)
  values, vectors = jnp.linalg.eigh(matrix)
  return (vectors * jnp.sqrt(jnp.clip(values, 0.0))) @ vectors.T


def trace_sqrt_product(cov_a: jax.Array, cov_b: jax.Array) -> jax.Array:
  """tr((A B)^(1/2)) for symmetric PSD A, B (see the module docstring)."""
  root_a = sqrtm_psd(cov_a)
  middle = root_a @ jnp.asarray(cov_b) @ root_a
  values = jnp.linalg.eigvalsh(0.5 * (middle + middle.T))
  return jnp.sum(jnp.sqrt(jnp.clip(values, 0.0)))


def frechet_distance(mu_a, cov_a, mu_b, cov_b) -> jax.Array:
  """Squared Frechet distance between N(mu_a, cov_a) and N(mu_b, cov_b)."""
  mu_a, mu_b = jnp.asarray(mu_a), jnp.asarray(mu_b)
  cov_a, cov_b = jnp.asarray(cov_a), jnp.asarray(cov_b)
  if mu_a.shape != mu_b.shape or cov_a.shape != cov_b.shape or (
      cov_a.shape != mu_a.shape * 2):
    raise ValueError(f"frechet_distance: means {mu_a.shape}, {mu_b.shape} and "
                     f"covariances {cov_a.shape}, {cov_b.shape} do not match")
  diff = mu_a - mu_b
  return (diff @ diff + jnp.trace(cov_a) + jnp.trace(cov_b)
          - 2.0 * trace_sqrt_product(cov_a, cov_b))


def feature_sums(features: jax.Array, weights=None) -> dict[str, jax.Array]:
  """{'sum': (D,), 'outer_sum': (D, D), 'count': ()} of (N, D) features;
  `weights` (N,) (1 real, 0 padding) weight every row."""
  features = jnp.asarray(features, jnp.float32)
  if features.ndim != 2:
    raise ValueError(f"feature_sums: expected (N, D) features, got "
                     f"{features.shape}")
  weights = (jnp.ones(features.shape[:1]) if weights is None
             else jnp.asarray(weights, jnp.float32))
  # where(): padding rows may hold garbage (NaN) that 0 * x keeps.
  weighted = jnp.where(weights[:, None] > 0, features * weights[:, None], 0.0)
  safe = jnp.where(weights[:, None] > 0, features, 0.0)
  return {"sum": weighted.sum(0), "outer_sum": weighted.T @ safe,
          "count": weights.sum()}


def statistics_from_sums(sums: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
  """(mean, unbiased covariance) in float64 on the host from `feature_sums`."""
  count = float(np.asarray(sums["count"]))
  if count < 2:
    raise ValueError(f"feature statistics need at least 2 samples, got {count}")
  total = np.asarray(sums["sum"], np.float64)
  mean = total / count
  cov = (np.asarray(sums["outer_sum"], np.float64)
         - count * np.outer(mean, mean)) / (count - 1)
  return mean, cov


def frechet_distance_float64(mu_a, cov_a, mu_b, cov_b) -> float:
  """`frechet_distance` on the host in float64 (numpy).

  The square roots of the covariances' eigenvalues amplify round-off: with
  2048-d Inception features and fewer than 2049 images the covariances are
  singular, and float32 eigenvalues of ~|S| 1e-7 that should be 0 add
  sqrt(|S| 1e-7) each, ~1 % of the distance (measured against pytorch-fid's
  scipy result in tests/nn/test_inception_lpips_reference.py); float64 makes
  that term ~1e-5 smaller.
  """
  mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
  cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
  if mu_a.shape != mu_b.shape or cov_a.shape != cov_b.shape or (
      cov_a.shape != mu_a.shape * 2):
    raise ValueError(f"frechet_distance: means {mu_a.shape}, {mu_b.shape} and "
                     f"covariances {cov_a.shape}, {cov_b.shape} do not match")
  values, vectors = np.linalg.eigh(0.5 * (cov_a + cov_a.T))
  root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
  middle = root_a @ cov_b @ root_a
  trace_sqrt = np.sum(np.sqrt(np.clip(
      np.linalg.eigvalsh(0.5 * (middle + middle.T)), 0.0, None)))
  diff = mu_a - mu_b
  return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b)
               - 2.0 * trace_sqrt)


def frechet_distance_from_sums(real_sums, fake_sums) -> float:
  """Frechet distance between the features summed by `feature_sums`
  (float64 on the host: `frechet_distance_float64`)."""
  mu_r, cov_r = statistics_from_sums(real_sums)
  mu_f, cov_f = statistics_from_sums(fake_sums)
  # Centre both on the real mean: smaller numbers for the algebra.
  return frechet_distance_float64(np.zeros_like(mu_r), cov_r, mu_f - mu_r,
                                  cov_f)


def pooled(feature_map: jax.Array) -> jax.Array:
  """(N, h, w, C) -> (N, C) global average (the Frechet features)."""
  return jnp.mean(jnp.asarray(feature_map, jnp.float32), axis=(1, 2))


def unit_normalize(features: jax.Array, eps: float = 1e-10) -> jax.Array:
  """Features divided by their L2 norm over channels (LPIPS)."""
  features = jnp.asarray(features, jnp.float32)
  norm = jnp.sqrt(jnp.sum(features**2, axis=-1, keepdims=True))
  return features / (norm + eps)


def distance_maps(features_a: FeatureMaps, features_b: FeatureMaps,
                  channel_weights: Sequence[jax.Array] | None = None
                  ) -> list[jax.Array]:
  """Per layer (N, h, w): squared distance of unit-normalized features,
  summed over channels with `channel_weights[layer]` ((C,), LPIPS's learned
  linear layers; None: all 1)."""
  if len(features_a) != len(features_b) or not features_a:
    raise ValueError(f"distance_maps: need the same non-empty layer lists, got "
                     f"{len(features_a)} and {len(features_b)} layers")
  if channel_weights is not None and len(channel_weights) != len(features_a):
    raise ValueError(f"distance_maps: {len(channel_weights)} channel weight "
                     f"vectors for {len(features_a)} layers")
  maps = []
  for layer, (a, b) in enumerate(zip(features_a, features_b)):
    squared = (unit_normalize(a) - unit_normalize(b))**2
    if channel_weights is None:
      maps.append(jnp.sum(squared, axis=-1))
    else:
      maps.append(squared @ jnp.asarray(channel_weights[layer], jnp.float32))
  return maps


def pixel_distance_maps(images_a: jax.Array, images_b: jax.Array
                        ) -> list[jax.Array]:
  """[(N, H, W)]: mean absolute difference over bands (one 'layer')."""
  return [jnp.mean(jnp.abs(jnp.asarray(images_a, jnp.float32)
                           - jnp.asarray(images_b, jnp.float32)), axis=-1)]


def _region_at(region: jax.Array, height: int, width: int) -> jax.Array:
  """(N, H, W) weights at (N, h, w): block means when h, w divide H, W (the
  feature grids of a CNN), else an antialiased linear resize."""
  n, full_h, full_w = region.shape
  if (full_h, full_w) == (height, width):
    return region
  if full_h % height == 0 and full_w % width == 0:
    blocks = region.reshape(n, height, full_h // height, width, full_w // width)
    return blocks.mean(axis=(2, 4))
  return jax.image.resize(region, (n, height, width), "linear")


def region_mean_distance(maps: Sequence[jax.Array], region=None
                         ) -> jax.Array:
  """(N,) sum over layers of each map's mean over `region` ((N, H, W) weights
  in [0, 1] at image resolution; None: all pixels). An empty region gives 0."""
  total = 0.0
  for layer in maps:
    layer = jnp.asarray(layer, jnp.float32)
    if region is None:
      total = total + jnp.mean(layer, axis=(1, 2))
      continue
    weights = _region_at(jnp.asarray(region, jnp.float32), *layer.shape[1:])
    total = total + (jnp.sum(layer * weights, axis=(1, 2))
                     / jnp.maximum(jnp.sum(weights, axis=(1, 2)), 1e-6))
  return total


def image_distance(features_a: FeatureMaps, features_b: FeatureMaps,
                   channel_weights: Sequence[jax.Array] | None = None
                   ) -> jax.Array:
  """(N,) LPIPS distance of each pair of images (learned with
  `channel_weights`, else the unweighted LPIPS-style distance)."""
  return region_mean_distance(distance_maps(features_a, features_b,
                                            channel_weights))


def pair_distances(samples: Sequence[FeatureMaps] | Sequence[jax.Array], *,
                   pixels: bool = False,
                   channel_weights: Sequence[jax.Array] | None = None
                   ) -> jax.Array:
  """(N, S (S - 1) / 2) distance of every pair i < j of S >= 2 samples per
  mask, pairs in the order (0, 1), (0, 2), ..., (S - 2, S - 1).

  `samples[s]` is the feature-map list of sample s (N images each), or with
  `pixels=True` the (N, H, W, C) images themselves.
  """
  if len(samples) < 2:
    raise ValueError(f"diversity needs >= 2 samples per mask, got "
                     f"{len(samples)}")
  if pixels:
    maps_fn = pixel_distance_maps
  else:
    maps_fn = lambda a, b: distance_maps(a, b, channel_weights)  # noqa: E731
  pairs = [region_mean_distance(maps_fn(samples[i], samples[j]))
           for i in range(len(samples)) for j in range(i + 1, len(samples))]
  return jnp.stack(pairs, axis=1)


def pairwise_diversity(samples: Sequence[FeatureMaps] | Sequence[jax.Array],
                       *, pixels: bool = False,
                       channel_weights: Sequence[jax.Array] | None = None
                       ) -> jax.Array:
  """(N,) mean distance over all pairs of S >= 2 samples per mask."""
  return jnp.mean(pair_distances(samples, pixels=pixels,
                                 channel_weights=channel_weights), axis=1)


def sampled_pairs(distances: jax.Array, num_pairs: int | None,
                  key: jax.Array) -> jax.Array:
  """(N,) mean of `num_pairs` of the (N, P) pair distances, drawn per row
  without replacement (the CSEBGAN paper's "randomly sample 10 pairs per
  mask"); all P pairs when `num_pairs` is None or >= P."""
  distances = jnp.asarray(distances, jnp.float32)
  total = distances.shape[1]
  if num_pairs is None or num_pairs >= total:
    return jnp.mean(distances, axis=1)
  if num_pairs < 1:
    raise ValueError(f"sampled_pairs: num_pairs must be >= 1, got {num_pairs}")
  keys = jax.random.split(key, distances.shape[0])
  order = jax.vmap(lambda k: jax.random.permutation(k, total))(keys)
  picked = jnp.take_along_axis(distances, order[:, :num_pairs], axis=1)
  return jnp.mean(picked, axis=1)


def region_distance(maps: Sequence[jax.Array], class_region: jax.Array,
                    counted=None) -> dict[str, jax.Array]:
  """CSD and OCD of one edit: {'csd', 'ocd' (N,), 'present' (N,) 0/1}.

  `maps`: distance maps between the image before and after resampling class
  c; `class_region` (N, H, W): 1 on pixels of class c; `counted` (N, H, W):
  pixels that count at all (e.g. valid pixels; None: all). `present` is 1
  for images holding both class c and other pixels (only they have a CSD and
  an OCD).
  """
  class_region = jnp.asarray(class_region, jnp.float32)
  counted = (jnp.ones_like(class_region) if counted is None
             else jnp.asarray(counted, jnp.float32))
  inside = class_region * counted
  outside = (1.0 - class_region) * counted
  present = ((inside.sum((1, 2)) > 0) & (outside.sum((1, 2)) > 0)).astype(
      jnp.float32)
  return {"csd": region_mean_distance(maps, inside),
          "ocd": region_mean_distance(maps, outside), "present": present}
