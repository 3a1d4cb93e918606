"""Conv helpers, spectral normalization, resizing and layer introspection."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn.layers import (SpectralConv, conv, conv_specs, conv_transpose,
                             count_params, leaky_relu, resize_to)
from zoo_checks import KEY


def test_conv_helpers_shapes_and_normal_init():
  x = jnp.ones((2, 16, 16, 7))
  layer = conv(256, 4, 2)
  params = layer.init(KEY, x)["params"]
  assert layer.apply({"params": params}, x).shape == (2, 8, 8, 256)
  assert abs(float(params["kernel"].std()) - 0.02) < 0.002
  np.testing.assert_array_equal(params["bias"], 0)
  up = conv_transpose(5, 4, 2)
  assert up.apply(up.init(KEY, x), x).shape == (2, 32, 32, 5)
  valid = conv(3, 4, 1, padding=1)
  assert valid.apply(valid.init(KEY, x), x).shape == (2, 15, 15, 3)


def test_bfloat16_compute_keeps_float32_params():
  layer = conv(8, 3, dtype=jnp.bfloat16)
  variables = layer.init(KEY, jnp.ones((1, 8, 8, 3)))
  assert variables["params"]["kernel"].dtype == jnp.float32
  assert layer.apply(variables, jnp.ones((1, 8, 8, 3))).dtype == jnp.bfloat16


def test_spectral_conv_converges_to_largest_singular_value():
  layer = SpectralConv(6, 3, spectral_norm=True)
  x = jax.random.normal(jax.random.PRNGKey(1), (1, 8, 8, 4))
  variables = layer.init(KEY, x, train=False)
  step = jax.jit(lambda v: layer.apply(v, x, train=True, mutable=["batch_stats"])[1])
  stats = variables["batch_stats"]
  for _ in range(30):
    stats = step({**variables, "batch_stats": stats})["batch_stats"]
  kernel = np.asarray(variables["params"]["conv"]["kernel"]).reshape(-1, 6)
  sigma = np.linalg.svd(kernel, compute_uv=False)[0]
  stored = jax.tree_util.tree_leaves(
      {k: v for k, v in stats["spectral_norm"].items() if "sigma" in k})
  np.testing.assert_allclose(float(stored[0].reshape(())), sigma, rtol=1e-3)
  # The normalized layer's output equals the plain conv divided by sigma.
  plain = SpectralConv(6, 3, spectral_norm=False)
  y_plain = plain.apply({"params": variables["params"]}, x)
  y_sn = layer.apply({**variables, "batch_stats": stats}, x, train=False)
  bias = variables["params"]["conv"]["bias"]
  np.testing.assert_allclose(y_sn - bias, (y_plain - bias) / sigma, rtol=1e-3,
                             atol=1e-5)


def test_resize_to_keeps_one_hot_and_is_identity_at_size():
  labels = jax.nn.one_hot(jnp.arange(36).reshape(1, 6, 6) % 4, 4)
  resized = resize_to(labels, 18, 18)
  assert resized.shape == (1, 18, 18, 4)
  np.testing.assert_array_equal(resized.sum(-1), 1)
  assert resize_to(labels, 6, 6) is labels
  smooth = resize_to(jnp.ones((1, 4, 4, 2)), 8, 8, method="linear")
  np.testing.assert_allclose(smooth, 1, rtol=1e-6)


def test_leaky_relu_slope_and_count_params():
  np.testing.assert_allclose(leaky_relu(jnp.array([-1.0, 2.0])), [-0.2, 2.0])
  tree = {"a": jnp.zeros((3, 4)), "b": jax.ShapeDtypeStruct((5,), jnp.float32)}
  assert count_params(tree) == 17


def test_conv_specs_lists_convs_in_order():
  layer_a, layer_b = conv(4, 3, 2), conv_transpose(2, 4, 2)

  x = jnp.ones((1, 8, 8, 3))
  va = layer_a.init(KEY, x)
  vb = layer_b.init(KEY, layer_a.apply(va, x))

  def net(x):
    return layer_b.apply(vb, layer_a.apply(va, x))

  specs = conv_specs(net, jax.ShapeDtypeStruct(x.shape, jnp.float32))
  assert [(s.kernel, s.stride, s.input_dilation) for s in specs] == [
      ((3, 3, 3, 4), (2, 2), (1, 1)), ((4, 4, 4, 2), (1, 1), (2, 2))]


@pytest.mark.parametrize("padding", ["SAME", 0, 2])
def test_conv_padding_forms(padding):
  layer = conv(1, 3, padding=padding)
  x = jnp.ones((1, 8, 8, 1))
  size = {"SAME": 8, 0: 6, 2: 10}[padding]
  assert layer.apply(layer.init(KEY, x), x).shape == (1, size, size, 1)


def test_spectral_conv_keeps_float32_params_under_bfloat16_compute():
  from rsjax.nn.layers import SpectralConv
  module = SpectralConv(4, dtype=jnp.bfloat16)
  x = jnp.ones((1, 8, 8, 3))
  variables = module.init(jax.random.PRNGKey(0), x, train=True)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
  out, _ = module.apply(variables, x, train=True, mutable=["batch_stats"])
  assert out.dtype == jnp.bfloat16
