"""Frechet distance (vs scipy.linalg.sqrtm), feature sums, LPIPS-style
distances, pairwise diversity and CSD / OCD against hand computations."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from rsjax.metrics import generative as gen


def _random_cov(rng, dim, rank=None):
  factor = rng.normal(size=(dim, rank or dim))
  return factor @ factor.T / dim


# float32 and the backward error of a symmetric eigensolver: the computed
# eigenpairs are exact for cov + E with |E|_2 <= c n eps |cov|_2; c = 4 is
# generous for LAPACK's syevd at n = 8 (its bound is a small multiple of n).
_EPS32 = float(np.finfo(np.float32).eps)


def _backward_error(cov):
  return 4 * cov.shape[0] * _EPS32 * np.linalg.norm(cov, 2)


def _root_tolerance(cov):
  """How far a float32 root may be from the exact one, |E| as above.

  The square root's derivative at cov is bounded by 1 / (2 sqrt(lambda_min)),
  and for any PSD A, B |A^(1/2) - B^(1/2)|_2 <= |A - B|_2^(1/2) (operator
  monotonicity); clipping round-off negative eigenvalues moves at most |E|.
  The smaller bound holds, plus the rounding of the product V diag(s) V^T.
  """
  error = _backward_error(cov)
  lambda_min = max(np.linalg.eigvalsh(cov)[0], 0.0)
  smooth = error / (2 * np.sqrt(lambda_min)) if lambda_min > 0 else np.inf
  product = 4 * cov.shape[0] * _EPS32 * np.sqrt(np.linalg.norm(cov, 2))
  return min(smooth, np.sqrt(2 * error)) + product


def _float64_root(cov):
  values, vectors = np.linalg.eigh(cov)
  return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _assert_is_psd_root(root, cov):
  """What defines the PSD square root, at float32 precision: root @ root is
  cov, root is symmetric positive semi-definite, and root is within the
  perturbation bound of a float64 eigendecomposition's root."""
  root = np.asarray(root, np.float64)
  # The computed root squares back to cov + E (up to the product's rounding)
  # whatever the conditioning: round-off in a zero eigenvalue comes back squared.
  residual = np.linalg.norm(root @ root - cov, 2)
  assert residual <= 2 * _backward_error(cov), (residual, _backward_error(cov))
  scale = np.linalg.norm(root, 2)
  asymmetry = np.abs(root - root.T).max()
  assert asymmetry <= 2 * cov.shape[0] * _EPS32 * scale, asymmetry
  lowest = np.linalg.eigvalsh(0.5 * (root + root.T))[0]
  assert lowest >= -_root_tolerance(cov), lowest
  np.testing.assert_allclose(root, _float64_root(cov), rtol=0,
                             atol=_root_tolerance(cov))


def test_sqrtm_psd_is_the_psd_square_root():
  rng = np.random.default_rng(0)
  for rank in (None, 3, 1):     # full rank and singular
    cov = _random_cov(rng, 8, rank)
    _assert_is_psd_root(gen.sqrtm_psd(cov), cov)


def test_sqrtm_psd_matches_scipy_on_full_rank():
  # scipy's Schur method is accurate to float64 on a well-conditioned matrix,
  # so the float32 bound holds against it too (not on singular matrices,
  # where the Schur method itself loses digits).
  rng = np.random.default_rng(1)
  cov = _random_cov(rng, 8)
  np.testing.assert_allclose(gen.sqrtm_psd(cov),
                             np.real(scipy.linalg.sqrtm(cov)), rtol=0,
                             atol=_root_tolerance(cov))


def test_psd_root_check_rejects_wrong_roots():
  """The check above fails for plausible wrong answers: a Cholesky factor
  (L L^T = cov but L is not symmetric), a root that drops the smallest
  eigenvalue of a full-rank matrix, the matrix itself, and the true root
  scaled by 1 + 1e-3."""
  rng = np.random.default_rng(2)
  cov = _random_cov(rng, 8)
  values, vectors = np.linalg.eigh(cov)
  truncated = (vectors[:, 1:] * np.sqrt(values[1:])) @ vectors[:, 1:].T
  wrong = {
      "cholesky": np.linalg.cholesky(cov),
      "drops smallest eigenvalue": truncated,
      "scaled": (1 + 1e-3) * _float64_root(cov),
      "square instead of root": cov,
  }
  for name, root in wrong.items():
    with pytest.raises(AssertionError):
      _assert_is_psd_root(root, cov)
      pytest.fail(f"{name} passed as a PSD square root")


def test_frechet_distance_matches_scipy_formula():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(200, 6))
  b = 0.7 * rng.normal(size=(150, 6)) @ rng.normal(size=(6, 6)) + 0.5
  mu_a, cov_a = a.mean(0), np.cov(a, rowvar=False)
  mu_b, cov_b = b.mean(0), np.cov(b, rowvar=False)
  covmean = np.real(scipy.linalg.sqrtm(cov_a @ cov_b))
  expected = (np.sum((mu_a - mu_b)**2) + np.trace(cov_a) + np.trace(cov_b)
              - 2 * np.trace(covmean))
  got = float(gen.frechet_distance(mu_a, cov_a, mu_b, cov_b))
  np.testing.assert_allclose(got, expected, rtol=1e-3)
  assert abs(float(gen.frechet_distance(mu_a, cov_a, mu_a, cov_a))) < 1e-3
  with pytest.raises(ValueError, match="do not match"):
    gen.frechet_distance(mu_a, cov_a, mu_b[:3], cov_b)


def test_feature_sums_accumulate_to_numpy_statistics():
  rng = np.random.default_rng(2)
  a, b = rng.normal(size=(10, 4)), rng.normal(size=(12, 4)) + 1
  first = gen.feature_sums(a)
  padded = np.concatenate([b, np.full((3, 4), np.nan)])   # padding rows
  second = gen.feature_sums(padded, np.r_[np.ones(12), np.zeros(3)])
  total = {k: np.asarray(first[k]) + np.asarray(second[k]) for k in first}
  mean, cov = gen.statistics_from_sums(total)
  both = np.concatenate([a, b])
  np.testing.assert_allclose(mean, both.mean(0), atol=1e-5)
  np.testing.assert_allclose(cov, np.cov(both, rowvar=False), atol=1e-4)
  other = gen.feature_sums(rng.normal(size=(40, 4)) * 2)
  expected = float(gen.frechet_distance(*gen.statistics_from_sums(total),
                                        *gen.statistics_from_sums(other)))
  np.testing.assert_allclose(gen.frechet_distance_from_sums(total, other),
                             expected, rtol=1e-4)
  with pytest.raises(ValueError, match="at least 2"):
    gen.statistics_from_sums(gen.feature_sums(a[:1]))


def test_lpips_style_distance_by_hand():
  rng = np.random.default_rng(3)
  layers_a = [rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 2, 2, 5))]
  layers_b = [rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 2, 2, 5))]
  expected = 0.0
  for a, b in zip(layers_a, layers_b):
    na = a / np.linalg.norm(a, axis=-1, keepdims=True)
    nb = b / np.linalg.norm(b, axis=-1, keepdims=True)
    expected = expected + ((na - nb)**2).sum(-1).mean((1, 2))
  np.testing.assert_allclose(gen.image_distance(layers_a, layers_b), expected,
                             rtol=1e-5)
  np.testing.assert_allclose(gen.image_distance(layers_a, layers_a), 0,
                             atol=1e-6)
  # Scaling a feature vector does not change the unit-normalized distance.
  scaled = [3.0 * x for x in layers_a]
  np.testing.assert_allclose(gen.image_distance(layers_a, scaled), 0, atol=1e-5)


def test_pairwise_diversity_is_the_mean_over_all_pairs():
  rng = np.random.default_rng(4)
  samples = [rng.normal(size=(2, 4, 4, 3)) for _ in range(3)]
  pairs = [np.abs(samples[i] - samples[j]).mean((1, 2, 3))
           for i, j in ((0, 1), (0, 2), (1, 2))]
  np.testing.assert_allclose(gen.pairwise_diversity(samples, pixels=True),
                             np.mean(pairs, 0), rtol=1e-5)
  identical = [samples[0]] * 3
  np.testing.assert_allclose(gen.pairwise_diversity(identical, pixels=True), 0)
  with pytest.raises(ValueError, match=">= 2"):
    gen.pairwise_diversity(samples[:1], pixels=True)


def test_region_distance_splits_class_and_other_pixels():
  before = np.zeros((2, 4, 4, 1), np.float32)
  after = before.copy()
  after[:, :, :2] = 1.0           # the edit changes the left half by 1
  after[:, :, 2:] = 0.25          # and spills 0.25 on the right half
  region = np.zeros((2, 4, 4), np.float32)
  region[0, :, :2] = 1            # image 0: class on the left half
  region[1] = 1                   # image 1: the class covers everything
  counted = np.ones((2, 4, 4), np.float32)
  counted[0, 0, 0] = 0            # an uncounted pixel changes nothing here
  result = gen.region_distance(gen.pixel_distance_maps(before, after), region,
                               counted)
  np.testing.assert_allclose(result["csd"][0], 1.0, rtol=1e-6)
  np.testing.assert_allclose(result["ocd"][0], 0.25, rtol=1e-6)
  np.testing.assert_array_equal(result["present"], [1.0, 0.0])
  # A region at a coarser feature resolution is resized (area-like).
  coarse = [np.asarray(gen.pixel_distance_maps(before, after)[0])[:, ::2, ::2]]
  half = gen.region_distance(coarse, region)
  np.testing.assert_allclose(half["csd"][0], 1.0, rtol=1e-5)


def _triangle_resize_matrix(size_in, size_out):
  """Antialiased linear resize as a matrix (float64, from the definition): the
  output pixel i samples input coordinate (i + 1/2) size_in / size_out - 1/2
  with a triangle kernel widened by the downscale factor, normalised over the
  input pixels it reaches."""
  scale = size_in / size_out
  width = max(scale, 1.0)
  out = np.zeros((size_out, size_in))
  for i in range(size_out):
    x = (i + 0.5) * scale - 0.5
    out[i] = np.maximum(0.0, 1 - np.abs(np.arange(size_in) - x) / width)
    out[i] /= out[i].sum()
  return out


# float32 sums of O(1) terms, a few dozen operations: 1e-5 is ~100 eps.
_RTOL32 = 1e-5


@pytest.mark.parametrize("height", [4, 3])
def test_region_at_a_non_dividing_feature_grid_is_resized_linearly(height):
  # A 6x6 class region on a height x 4 feature map: 6 / 4 is not an integer,
  # so the region is resized (antialiased linear), not block-averaged, even
  # where the other axis divides (6 / 3).
  region = np.zeros((1, 6, 6), np.float32)
  region[0, :3, :3] = 1                         # class in the top-left
  layer = np.arange(4 * height, dtype=np.float32).reshape(1, height, 4) / 16
  weights = (_triangle_resize_matrix(6, height) @ region[0].astype(np.float64)
             @ _triangle_resize_matrix(6, 4).T)
  inside = (layer[0] * weights).sum() / weights.sum()
  outside = (layer[0] * (1 - weights)).sum() / (1 - weights).sum()
  result = gen.region_distance([layer], region)
  np.testing.assert_allclose(result["csd"], [inside], rtol=_RTOL32)
  np.testing.assert_allclose(result["ocd"], [outside], rtol=_RTOL32)
  # Also for a boolean region (e.g. labels == c) passed directly.
  np.testing.assert_allclose(
      gen.region_mean_distance([layer], region.astype(bool)), [inside],
      rtol=_RTOL32)


def test_region_smaller_than_one_feature_cell():
  # One class pixel of a 4x4 image covers a quarter of a 2x2 map's cell: the
  # region mean is that cell's value (weights are normalised, whatever their sum).
  region = np.zeros((1, 4, 4), np.float32)
  region[0, 3, 0] = 1
  layer = np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32)
  np.testing.assert_allclose(gen.region_mean_distance([layer], region), [3.0],
                             rtol=_RTOL32)


def test_region_distance_counted_pixels_and_presence():
  before = np.zeros((3, 4, 4, 1), np.float32)
  after = before.copy()
  after[:, 0, 0] = 1.0                  # the only change, at pixel (0, 0)
  maps = gen.pixel_distance_maps(before, after)
  region = np.zeros((3, 4, 4), np.float32)
  region[0, :, :2] = 1                  # image 0: class on the left half
  region[1, 0, 0] = 1                   # image 1: a one-pixel class
  region[2] = 1
  region[2, 3, 3] = 0                   # image 2: one pixel of other classes
  counted = np.ones((3, 4, 4), np.float32)
  result = gen.region_distance(maps, region, counted)
  np.testing.assert_allclose(result["csd"], [1 / 8, 1.0, 1 / 15], rtol=_RTOL32)
  np.testing.assert_array_equal(result["present"], [1, 1, 1])
  counted[0, 0, 0] = 0                  # uncounting the changed pixel
  result = gen.region_distance(maps, region, counted)
  np.testing.assert_allclose(result["csd"][0], 0.0, atol=0)
  # A batch where one image lacks the class and one lacks other classes.
  absent = region.copy()
  absent[0] = 0
  absent[1] = 1
  np.testing.assert_array_equal(
      gen.region_distance(maps, absent)["present"], [0, 0, 1])


def test_distance_maps_need_matching_layer_lists():
  rng = np.random.default_rng(5)
  layers = [rng.normal(size=(1, 2, 2, 3)), rng.normal(size=(1, 1, 1, 3))]
  for a, b in ((layers, layers[:1]), ([], [])):
    with pytest.raises(ValueError, match="^distance_maps: need the same"):
      gen.image_distance(a, b)


def _lpips_by_hand(layers_a, layers_b):
  total = 0.0
  for a, b in zip(layers_a, layers_b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na = a / np.linalg.norm(a, axis=-1, keepdims=True)
    nb = b / np.linalg.norm(b, axis=-1, keepdims=True)
    total = total + ((na - nb)**2).sum(-1).mean((1, 2))
  return total


def test_pairwise_diversity_of_two_feature_map_samples():
  rng = np.random.default_rng(6)
  samples = [[rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 2, 2, 5))]
             for _ in range(2)]
  np.testing.assert_allclose(gen.pairwise_diversity(samples),
                             _lpips_by_hand(*samples), rtol=_RTOL32)


def test_bfloat16_features_are_scored_in_float32():
  """Values exactly representable in bfloat16 give the float64 results of the
  same values to float32 precision (bfloat16 arithmetic would be off by ~2^-9
  relative)."""
  rng = np.random.default_rng(7)
  to_bf16 = lambda x: np.asarray(jnp.asarray(x, jnp.bfloat16))
  features = to_bf16(rng.normal(size=(64, 3)))
  exact = features.astype(np.float64)
  sums = gen.feature_sums(features)
  # Recursive summation: |error| <= n eps sum |terms| (products of two bfloat16
  # values are exact in float32).
  n_eps = 64 * float(np.finfo(np.float32).eps)
  np.testing.assert_allclose(sums["sum"], exact.sum(0), rtol=0,
                             atol=n_eps * np.abs(exact).sum(0).max())
  np.testing.assert_allclose(sums["outer_sum"], exact.T @ exact, rtol=0,
                             atol=n_eps * (np.abs(exact).T @ np.abs(exact)).max())
  layers_a = [to_bf16(rng.normal(size=(2, 4, 4, 3)))]
  layers_b = [to_bf16(rng.normal(size=(2, 4, 4, 3)))]
  np.testing.assert_allclose(gen.image_distance(layers_a, layers_b),
                             _lpips_by_hand(layers_a, layers_b), rtol=_RTOL32)
  np.testing.assert_allclose(gen.pooled(layers_a[0]),
                             layers_a[0].astype(np.float64).mean((1, 2)),
                             rtol=_RTOL32)
  layer = to_bf16(rng.uniform(size=(2, 4, 4)))
  np.testing.assert_allclose(gen.region_mean_distance([layer]),
                             layer.astype(np.float64).mean((1, 2)),
                             rtol=_RTOL32)


def test_feature_sums_weights_count_rows():
  # A weight of 2 counts a row twice: the sums of rows [a, a, b].
  rng = np.random.default_rng(8)
  rows = rng.normal(size=(3, 4))
  weighted = gen.feature_sums(rows, np.array([2.0, 1.0, 0.0]))
  repeated = rows[[0, 0, 1]].astype(np.float64)
  np.testing.assert_allclose(weighted["sum"], repeated.sum(0), rtol=_RTOL32,
                             atol=1e-6)
  np.testing.assert_allclose(weighted["outer_sum"], repeated.T @ repeated,
                             rtol=_RTOL32, atol=1e-6)
  assert float(weighted["count"]) == 3.0


def test_statistics_of_two_samples_by_hand():
  mean, cov = gen.statistics_from_sums(
      gen.feature_sums(np.array([[1.0, 2.0], [3.0, 5.0]])))
  assert mean.dtype == cov.dtype == np.float64   # documented: float64 on host
  np.testing.assert_allclose(mean, [2.0, 3.5], rtol=1e-12)
  np.testing.assert_allclose(cov, [[2.0, 3.0], [3.0, 4.5]], rtol=1e-12)


def test_frechet_distance_rejects_covariances_of_another_dimension():
  with pytest.raises(ValueError, match="^frechet_distance: .* do not match"):
    gen.frechet_distance(np.zeros(3), np.eye(4), np.zeros(3), np.eye(4))


def test_frechet_distance_of_singular_covariances_is_finite():
  """Rank-1 covariances in 8 dimensions (features that live on a line): the
  seven zero eigenvalues of C^(1/2) C C^(1/2) come out as +-round-off, which
  must be clipped before the square root. d(N(mu, C), N(mu, C)) = 0; each
  clipped eigenvalue adds at most sqrt(|E|), |E| <= 4 n eps |C|^2 (the
  eigensolver's backward error, see _backward_error), to the trace term."""
  rng = np.random.default_rng(9)
  v = rng.normal(size=8)
  cov = np.outer(v, v)
  mu = rng.normal(size=8)
  got = float(gen.frechet_distance(mu, cov, mu, cov))
  bound = 2 * 8 * np.sqrt(_backward_error(cov @ cov)) + _backward_error(cov)
  assert np.isfinite(got) and abs(got) <= bound, (got, bound)


def test_pooled_is_the_spatial_mean():
  rng = np.random.default_rng(10)
  maps = rng.normal(size=(2, 3, 4, 5))
  got = gen.pooled(maps)
  assert got.shape == (2, 5) and got.dtype == np.float32
  np.testing.assert_allclose(got, maps.mean((1, 2)), rtol=_RTOL32, atol=1e-6)


def test_feature_sums_reject_feature_maps():
  with pytest.raises(ValueError, match=r"^feature_sums: expected \(N, D\)"):
    gen.feature_sums(np.zeros((2, 3, 4)))


def test_learned_lpips_channel_weights_by_hand():
  """LPIPS (lpips package, v0.1): per layer sum_c w_c (a_c/|a| - b_c/|b|)^2,
  spatial mean, summed over layers; all-ones weights give the unlearned
  distance."""
  rng = np.random.default_rng(4)
  layers_a = [rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 2, 2, 5))]
  layers_b = [rng.normal(size=(2, 4, 4, 3)), rng.normal(size=(2, 2, 2, 5))]
  weights = [rng.uniform(size=3), rng.uniform(size=5)]
  expected = 0.0
  for a, b, w in zip(layers_a, layers_b, weights):
    na = a / np.linalg.norm(a, axis=-1, keepdims=True)
    nb = b / np.linalg.norm(b, axis=-1, keepdims=True)
    expected = expected + (w * (na - nb)**2).sum(-1).mean((1, 2))
  np.testing.assert_allclose(gen.image_distance(layers_a, layers_b, weights),
                             expected, rtol=1e-5)
  ones = [np.ones(3), np.ones(5)]
  np.testing.assert_allclose(gen.image_distance(layers_a, layers_b, ones),
                             gen.image_distance(layers_a, layers_b), rtol=1e-6)
  with pytest.raises(ValueError, match="channel weight"):
    gen.distance_maps(layers_a, layers_b, weights[:1])


def test_sampled_pairs_draw_distinct_pairs_per_mask():
  """The paper's "10 random pairs per mask": distances 2^p make the sum of
  the picked pairs name them (exact in float32 below 2^24)."""
  import jax  # pylint: disable=import-outside-toplevel
  samples = [jnp.zeros((3, 2, 2, 1)) for _ in range(6)]
  pairs = gen.pair_distances(samples, pixels=True)
  assert pairs.shape == (3, 15)
  distances = jnp.tile(2.0 ** jnp.arange(15), (3, 1))
  picked = gen.sampled_pairs(distances, 5, jax.random.key(0)) * 5
  chosen = [{p for p in range(15) if int(value) >> p & 1}
            for value in np.asarray(picked)]
  assert all(len(c) == 5 for c in chosen)           # no pair twice
  assert len({frozenset(c) for c in chosen}) > 1    # drawn per mask
  np.testing.assert_allclose(gen.sampled_pairs(distances, None, None),
                             distances.mean(1))
  np.testing.assert_allclose(gen.sampled_pairs(distances, 15, None),
                             distances.mean(1))
  with pytest.raises(ValueError, match="num_pairs"):
    gen.sampled_pairs(distances, 0, jax.random.key(0))


def test_frechet_distance_from_sums_is_float64():
  """Rank-1 covariances in 512-d (two images per side): float32 eigenvalues
  would add ~sqrt(|C| 1e-7) per zero eigenvalue; the host path matches the
  closed form |mu_a - mu_b|^2 + |u|^2 + |v|^2 - 2 |u.v| to 1e-5."""
  rng = np.random.default_rng(5)
  a = rng.normal(2.0, 3.0, size=(2, 512))
  b = rng.normal(1.0, 2.0, size=(2, 512))
  u, v = (a[0] - a[1]) / np.sqrt(2), (b[0] - b[1]) / np.sqrt(2)
  exact = (np.sum((a.mean(0) - b.mean(0))**2) + u @ u + v @ v
           - 2 * abs(u @ v))
  sums_a = {"sum": a.sum(0), "outer_sum": a.T @ a, "count": 2.0}
  sums_b = {"sum": b.sum(0), "outer_sum": b.T @ b, "count": 2.0}
  np.testing.assert_allclose(gen.frechet_distance_from_sums(sums_a, sums_b),
                             exact, rtol=1e-5)
