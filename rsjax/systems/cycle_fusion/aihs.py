"""Adaptive IHS pan-sharpening (AIHS), the classical row of the fusion tables.

Rahmani, Strait, Merkurjev, Moeller & Wittman, "An adaptive IHS
pan-sharpening method", IEEE GRSL 7(4), 2010 -- reference [48] of Jiang,
Shen & Li (TGRS 2022), the "AIHS" row of Table II, which fuses the t2 MODIS
image with the t2 Sentinel-1 SAR image as if the SAR image were the
panchromatic (PAN) one. For an upsampled multispectral image M (bands M_i)
and a PAN image P on the same grid, all in reflectance [0, 1]:

  1. intensity weights   alpha = argmin_{alpha >= 0} || P - sum_i alpha_i M_i ||^2
                         over all pixels (non-negative least squares)
  2. intensity           I = sum_i alpha_i M_i
  3. edge weights        W = exp(-lambda / (|grad P|^4 + eps)),
                         lambda = 1e-9, eps = 1e-10 (the paper's values)
  4. fused bands         F_i = M_i + W (P - I)

|grad P| is the Euclidean norm of the central-difference gradient (one-sided
differences on the border rows and columns, numpy.gradient's convention; the
paper does not name a stencil).

What rsjax adds, because the fusion paper's "PAN" is SAR, which the paper does
not say how it prepared: with `match_pan` (default) P is first moved to the
mean and standard deviation of the MS bands' average (the usual histogram
matching of component-substitution pan-sharpening, Vivone et al. 2015), so a
SAR image in dB-derived units has the reflectance level of the optical image
before step 1. A multi-channel P (VV and VH) is averaged into one band.

Step 1 is solved exactly for the few bands of an MS image: every non-empty
subset of the bands gives the unconstrained least-squares weights on it (the
other weights 0); the non-negative ones with the smallest residual are the
NNLS solution (the NNLS optimum is one of them: its non-zero weights solve
the normal equations restricted to themselves). 2^C - 1 small solves, no
iteration, so it jits and vmaps. Everything is float32; the normal equations'
sums over the pixels are taken at HIGHEST precision.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

EDGE_LAMBDA = 1e-9     # Rahmani et al. 2010, Sec. III: lambda
EDGE_EPSILON = 1e-10   # Rahmani et al. 2010, Sec. III: epsilon
_HIGHEST = jax.lax.Precision.HIGHEST


def band_subsets(num_bands: int) -> np.ndarray:
  """(2^C - 1, C) 0/1 rows: every non-empty subset of the bands."""
  return np.array([row for row in itertools.product((0.0, 1.0),
                                                    repeat=num_bands)
                   if any(row)], np.float32)


def nonnegative_weights(multispectral, pan) -> jax.Array:
  """alpha (C,) >= 0 minimising ||pan - sum_i alpha_i ms_i||^2 (step 1).

  multispectral: (H, W, C); pan: (H, W). Exact by active-set enumeration
  (see the module docstring)."""
  ms = jnp.asarray(multispectral, jnp.float32).reshape(-1,
                                                       multispectral.shape[-1])
  p = jnp.asarray(pan, jnp.float32).reshape(-1)
  gram = jnp.einsum("nc,nd->cd", ms, ms, precision=_HIGHEST)
  rhs = jnp.einsum("nc,n->c", ms, p, precision=_HIGHEST)
  num_bands = gram.shape[0]
  subsets = jnp.asarray(band_subsets(num_bands))

  def solve_on(subset):
    # Restricted normal equations; bands outside the subset get weight 0
    # (identity rows), so one C x C solve serves every subset.
    system = gram * jnp.outer(subset, subset) + jnp.diag(1.0 - subset)
    weights = jnp.linalg.solve(system, rhs * subset) * subset
    # ||p - ms a||^2 - ||p||^2 = a.G.a - 2 a.b (the same ||p||^2 for all).
    residual = weights @ gram @ weights - 2.0 * weights @ rhs
    feasible = jnp.all(weights >= 0.0) & jnp.all(jnp.isfinite(weights))
    return weights, jnp.where(feasible, residual, jnp.inf)

  weights, residuals = jax.vmap(solve_on)(subsets)
  best = jnp.argmin(residuals)
  # All subsets infeasible (P anti-correlated with every band): alpha = 0.
  return jnp.where(jnp.isfinite(residuals[best]), weights[best],
                   jnp.zeros(num_bands, jnp.float32))


def gradient_magnitude(image) -> jax.Array:
  """|grad image| of (H, W): central differences inside, one-sided on the
  border (numpy.gradient with unit spacing)."""

  def along(x, axis):
    x = jnp.moveaxis(x, axis, 0)
    inner = (x[2:] - x[:-2]) / 2.0
    first, last = x[1:2] - x[:1], x[-1:] - x[-2:-1]
    return jnp.moveaxis(jnp.concatenate([first, inner, last], 0), 0, axis)

  image = jnp.asarray(image, jnp.float32)
  return jnp.sqrt(along(image, 0) ** 2 + along(image, 1) ** 2)


def edge_weights(pan, lam: float = EDGE_LAMBDA,
                 eps: float = EDGE_EPSILON) -> jax.Array:
  """W = exp(-lambda / (|grad P|^4 + eps)) (step 3), (H, W)."""
  return jnp.exp(-lam / (gradient_magnitude(pan) ** 4 + eps))


def match_moments(pan, reference) -> jax.Array:
  """`pan` moved to the mean and standard deviation of `reference`."""
  pan = jnp.asarray(pan, jnp.float32)
  std = jnp.std(pan)
  scale = jnp.where(std > 0, jnp.std(reference) / jnp.where(std > 0, std, 1.0),
                    0.0)
  return (pan - jnp.mean(pan)) * scale + jnp.mean(reference)


def aihs_image(multispectral, pan, *, match_pan: bool = True,
               lam: float = EDGE_LAMBDA, eps: float = EDGE_EPSILON
               ) -> jax.Array:
  """AIHS of one image: (H, W, C) upsampled MS and (H, W) or (H, W, K) PAN,
  reflectance [0, 1] -> fused (H, W, C) (not clipped)."""
  ms = jnp.asarray(multispectral, jnp.float32)
  pan = jnp.asarray(pan, jnp.float32)
  if pan.ndim == 3:
    pan = jnp.mean(pan, axis=-1)
  if match_pan:
    pan = match_moments(pan, jnp.mean(ms, axis=-1))
  alpha = nonnegative_weights(ms, pan)
  intensity = jnp.einsum("hwc,c->hw", ms, alpha, precision=_HIGHEST)
  detail = edge_weights(pan, lam, eps) * (pan - intensity)
  return ms + detail[..., None]


@jax.jit
def aihs(multispectral, pan) -> jax.Array:
  """Batched AIHS with the paper's lambda, eps and moment matching:
  (N, H, W, C) MS, (N, H, W[, K]) PAN in [0, 1] -> (N, H, W, C)."""
  return jax.vmap(aihs_image)(multispectral, pan)
