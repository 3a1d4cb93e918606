"""Shared checks for the model-zoo tests (issue 5): cheap variables and
output shapes, jit, retrace and bfloat16 checks.

XLA's CPU compile of `model.init` (threefry random bits for every parameter)
dominates test time, so most tests fill the abstract variable tree on the host
(`host_variables`, every leaf non-trivial: no zeroed biases) and only the determinism tests run a real init, with the
cheap-to-compile 'rbg' PRNG.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

FAST_COMPILE = {"xla_backend_optimization_level": 0,
                "xla_llvm_disable_expensive_passes": True}
fast_jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)
"""`jax.jit` at XLA's lowest CPU optimization: compiles fast, runs slower."""

KEY = jax.random.key(0, impl="rbg")
OTHER_KEY = jax.random.key(1, impl="rbg")


def abstract_variables(model, *args, **kwargs):
  """Variable shapes of `model.init(KEY, *args, **kwargs)`, no compute."""
  return jax.eval_shape(lambda *a: model.init(KEY, *a, **kwargs), *args)


def abstract_output(model, *args, **kwargs):
  """Output shapes of `model.apply` on `abstract_variables`, no compute."""
  variables = abstract_variables(model, *args, **kwargs)
  return jax.eval_shape(lambda v, *a: model.apply(v, *a, **kwargs),
                        variables, *args)


def host_variables(model, *args, seed: int = 0, **kwargs):
  """Variables with `init`'s structure filled by numpy, every leaf used as
  built: kernels He-scaled normal, biases and means N(0, 0.02) (the papers'
  init scale, but not 0: a bias the network should not have, or one that a
  normalization should cancel, changes the output the tests see), scales
  1 + N(0, 0.02), log-scales N(0, 0.02), variances U(0.5, 1.5);
  spectral-norm `sigma` 1 (it is recomputed in the forward), `u` N(0, 1)."""
  rng = np.random.default_rng(seed)             # kernels and the rest
  bias_rng = np.random.default_rng((seed, 1))   # biases and statistics
  shapes = abstract_variables(model, *args, **kwargs)

  def fill(path, leaf):
    # Spectral norm stores its vectors as 'conv/kernel/u' and '.../sigma'.
    name = str(getattr(path[-1], "key", path[-1])).rsplit("/", 1)[-1]
    if name in ("bias", "mean", "log_scale"):
      value = bias_rng.normal(0, 0.02, leaf.shape)
    elif name == "scale":
      value = 1 + bias_rng.normal(0, 0.02, leaf.shape)
    elif name == "var":
      value = bias_rng.uniform(0.5, 1.5, leaf.shape)
    elif name == "sigma":
      value = np.ones(leaf.shape)
    else:
      fan_in = max(int(np.prod(leaf.shape[:-1])), 1) if name == "kernel" else 1
      value = rng.normal(0, 1 / np.sqrt(fan_in), leaf.shape)
    return jnp.asarray(value, leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def assert_init_deterministic(model, *args, **kwargs):
  """Same key -> identical variables, another key -> different parameters."""
  init = jax.jit(functools.partial(model.init, **kwargs))
  first, again, other = init(KEY, *args), init(KEY, *args), init(OTHER_KEY, *args)
  chex.assert_trees_all_equal(first, again)
  differs = jax.tree_util.tree_map(lambda a, b: not np.array_equal(a, b),
                                   first["params"], other["params"])
  assert any(jax.tree_util.tree_leaves(differs))
  return first


def assert_jit_without_retrace(apply, variables, *args, perturb):
  """`apply` jits, runs twice on same-shaped inputs with one trace."""

  @jax.jit
  @chex.assert_max_traces(n=1)
  def run(variables, *args):
    return apply(variables, *args)

  first = run(variables, *args)
  second = run(variables, *perturb(args))
  return first, second


def assert_bfloat16_close(float32_out, bfloat16_out, atol=0.08):
  """bfloat16 compute is finite and within `atol` of float32."""
  for out32, out16 in zip(jax.tree_util.tree_leaves(float32_out),
                          jax.tree_util.tree_leaves(bfloat16_out)):
    assert out16.dtype == jnp.bfloat16
    out16 = np.asarray(out16, np.float32)
    assert np.all(np.isfinite(out16))
    np.testing.assert_allclose(out16, np.asarray(out32), atol=atol)


def float32_and_bfloat16(model, variables, *args, **kwargs):
  """Jitted `model.apply` outputs with float32 and with bfloat16 compute, on
  the same (float32) variables."""
  outputs = []
  for dtype in (jnp.float32, jnp.bfloat16):
    apply = functools.partial(model.clone(dtype=dtype).apply, **kwargs)
    outputs.append(jax.jit(apply)(variables, *args))
  return tuple(outputs)


def assert_generator_bfloat16(model, *args, atol=0.08):
  """On host variables, a generator's bfloat16 output (inference mode) is
  within `atol` of float32, which is a non-constant tanh image in [-1, 1]."""
  variables = host_variables(model, *args, train=False)
  y32, y16 = float32_and_bfloat16(model, variables, *args, train=False)
  assert_bfloat16_close(y32, y16, atol)
  assert bool(jnp.all(jnp.abs(y32) <= 1)) and float(jnp.std(y32)) > 1e-3
