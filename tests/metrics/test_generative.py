"""Frechet distance (vs scipy.linalg.sqrtm), feature sums, LPIPS-style
distances, pairwise diversity and CSD / OCD against hand computations."""

from __future__ import annotations

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
