"""Normalization, SPADE, multi-source and semantic-embedding denormalization."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn.norms import (SPADE, MultiSourceModulation, Normalization,
                            SemanticCondition, SemanticDenorm)
from zoo_checks import (assert_bfloat16_close, assert_init_deterministic,
                        host_variables)

X = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 6)) * 3 + 1


@pytest.mark.parametrize("kind,axes", [("batch", (0, 1, 2)), ("instance", (1, 2))])
def test_normalization_statistics(kind, axes):
  model = Normalization(kind, affine=False)
  variables = model.init(jax.random.PRNGKey(0), X, train=False)
  y, _ = model.apply(variables, X, train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-5)
  np.testing.assert_allclose(y.std(axis=axes), 1, atol=1e-3)
  assert "params" not in variables  # parameter-free


def test_normalization_none_and_unknown():
  model = Normalization("none")
  assert model.apply({}, X, train=True) is X
  with pytest.raises(ValueError, match="valid"):
    Normalization("group").init(jax.random.PRNGKey(0), X, train=False)


def spade_reference(variables, x, condition):
  """Independent SPADE: instance-normalize, then lax convs of the parameters."""
  p = variables["params"]

  def conv(v, layer):
    out = jax.lax.conv_general_dilated(v, p[layer]["kernel"], (1, 1), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return out + p[layer]["bias"]

  mean = x.mean(axis=(1, 2), keepdims=True)
  normalized = (x - mean) / jnp.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
  shared = jax.nn.relu(conv(condition, "shared"))
  return normalized * (1 + conv(shared, "gamma")) + conv(shared, "beta")


def test_spade_matches_reference_and_resizes_condition():
  model = SPADE(norm="instance", hidden=5)
  coarse = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 3))
  variables = host_variables(model, X, coarse, train=False)
  y = model.apply(variables, X, coarse, train=False)
  full = jnp.repeat(jnp.repeat(coarse, 2, axis=1), 2, axis=2)  # nearest x2
  np.testing.assert_allclose(y, spade_reference(variables, X, full),
                             rtol=1e-4, atol=1e-4)


SOURCES = {"lulc": jax.nn.one_hot(jnp.arange(64).reshape(1, 8, 8) % 9, 9),
           "sar": jnp.ones((1, 8, 8, 2)),
           "dem": jnp.linspace(0, 1, 4 * 3 * 3).reshape(1, 3, 3, 4)}


@pytest.mark.parametrize("sources", [("lulc",), ("sar", "dem"),
                                     ("lulc", "sar", "dem")])
def test_multi_source_any_subset(sources):
  model = MultiSourceModulation(sources=sources, embed_features=4, hidden=8)
  x = jnp.ones((1, 16, 16, 5))
  variables = host_variables(model, x, SOURCES, train=False)
  assert sorted(k for k in variables["params"] if k.startswith("embed_")) == \
      sorted(f"embed_{name}" for name in sources)
  kernel = variables["params"]["fuse"]["kernel"]
  assert kernel.shape == (3, 3, 4 * len(sources), 8)
  y = model.apply(variables, x, SOURCES, train=False)
  assert y.shape == x.shape
  assert bool(jnp.all(jnp.isfinite(y)))


def test_multi_source_uses_every_source():
  model = MultiSourceModulation(embed_features=4, hidden=8)
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 8, 8, 5))
  variables = host_variables(model, x, SOURCES, train=False)
  apply = jax.jit(functools.partial(model.apply, train=False))
  base = apply(variables, x, SOURCES)
  for name in SOURCES:
    changed = dict(SOURCES, **{name: SOURCES[name] * 0.5 + 0.3})
    assert not np.allclose(apply(variables, x, changed), base), name


def test_multi_source_missing_source_is_a_clear_error():
  model = MultiSourceModulation(sources=("lulc", "s1"))
  with pytest.raises(KeyError, match="s1"):
    model.init(jax.random.PRNGKey(0), X, SOURCES, train=False)


def test_semantic_denorm_tiles_mlp_vectors_by_mask():
  """Eq. 5 with an identity norm: out = x * MLP_g(gamma_k) + MLP_b(beta_k)."""
  classes, dim = 3, 4
  labels = jnp.arange(64).reshape(1, 8, 8) % classes
  mask = jax.nn.one_hot(labels, classes)
  gamma = jax.random.normal(jax.random.PRNGKey(1), (1, classes, dim))
  beta = jax.random.normal(jax.random.PRNGKey(2), (1, classes, dim))
  condition = SemanticCondition(mask, gamma, beta)
  model = SemanticDenorm(norm="none", mlp_hidden=5)
  x = jax.random.normal(jax.random.PRNGKey(3), (1, 8, 8, 6))
  variables = host_variables(model, x, condition, train=False)
  y = np.asarray(model.apply(variables, x, condition, train=False))
  p = jax.tree_util.tree_map(np.asarray, variables["params"])

  def mlp(v, name):
    h = np.maximum(v @ p[f"{name}_fc1"]["kernel"] + p[f"{name}_fc1"]["bias"], 0)
    return h @ p[f"{name}_fc2"]["kernel"] + p[f"{name}_fc2"]["bias"]

  g, b = mlp(np.asarray(gamma[0]), "gamma"), mlp(np.asarray(beta[0]), "beta")
  k = np.asarray(labels[0])
  np.testing.assert_allclose(y[0], np.asarray(x[0]) * g[k] + b[k],
                             rtol=1e-4, atol=1e-4)


def test_deterministic_init_and_bfloat16():
  model = SPADE(hidden=8)
  condition = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 3))
  assert_init_deterministic(model, X, condition, train=False)
  variables = host_variables(model, X, condition, train=False)
  y32 = model.apply(variables, X, condition, train=False)
  y16 = model.clone(dtype=jnp.bfloat16).apply(variables, X, condition, train=False)
  assert_bfloat16_close(y32, y16, atol=0.25)
