"""Float32 weight gradients in mixed precision (issue 24, item 4).

The inputs, kernels and output gradients here are multiples of 1/16 no larger
than 1 in magnitude: exact in bfloat16, their products multiples of 1/256,
and every sum below is under 2**15 in magnitude, so exact in float32 (24-bit
mantissa: 2**15 * 256 = 2**23). A float32 computation in any order therefore
gives the exact gradient, and JAX's own autodiff of the float32 layer is an
exact reference for the bfloat16 layers' float32 weight gradients. Rounded to
bfloat16 (8-bit mantissa), as Flax's plain layers return them, the same sums
are not exact: the tests check that too, so they can tell the two apart.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn import mixed_precision as mp

BF16 = jnp.bfloat16


def _sixteenths(seed, shape):
  rng = np.random.default_rng(seed)
  return (rng.integers(-16, 17, shape) / 16).astype(np.float32)


def _exact_params(params, seed=1):
  leaves, tree = jax.tree.flatten(params)
  return jax.tree.unflatten(
      tree, [_sixteenths(seed + i, leaf.shape) for i, leaf in enumerate(leaves)])


GEOMETRIES = {
    "3x3 same": (3, mp.ConvGeometry((1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 1)),
    "4x4 stride 2": (4, mp.ConvGeometry((2, 2), ((1, 1), (1, 1)), (1, 1), (1, 1), 1)),
    "3x3 dilation 2": (3, mp.ConvGeometry((1, 1), ((2, 2), (2, 2)), (1, 1), (2, 2), 1)),
    "3x3 valid stride 2": (3, mp.ConvGeometry((2, 2), ((0, 0), (0, 0)), (1, 1), (1, 1), 1)),
    "asymmetric": (3, mp.ConvGeometry((2, 1), ((0, 2), (1, 0)), (1, 1), (1, 1), 1)),
    "2 groups": (3, mp.ConvGeometry((1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1), 2)),
    "transposed": (4, mp.ConvGeometry((1, 1), ((2, 2), (2, 2)), (2, 2), (1, 1), 1)),
}


@pytest.mark.parametrize("name", GEOMETRIES)
def test_conv_weight_grad_is_autodiff_transpose(name):
  """The hand-written weight-gradient convolution equals JAX's transpose."""
  size, geometry = GEOMETRIES[name]
  x = _sixteenths(0, (2, 9, 8, 4))
  kernel = _sixteenths(1, (size, size, 4 // geometry.feature_group_count, 6))
  y, vjp = jax.vjp(lambda k: mp._plain_conv(x, k, geometry), kernel)
  g = _sixteenths(2, y.shape)
  (expected,) = vjp(g)
  got = mp.conv_weight_grad(x, g, kernel.shape, geometry)
  assert got.dtype == jnp.float32
  np.testing.assert_array_equal(got, expected)


LAYERS = {
    "conv": (nn.Conv(6, (3, 3), padding="SAME"), mp.Conv(6, (3, 3), padding="SAME")),
    "conv stride 2": (nn.Conv(6, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1))),
                      mp.Conv(6, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))),
    "conv dilated": (nn.Conv(6, (3, 3), kernel_dilation=(2, 2), padding="SAME"),
                     mp.Conv(6, (3, 3), kernel_dilation=(2, 2), padding="SAME")),
    "conv no bias": (nn.Conv(6, (3, 3), use_bias=False),
                     mp.Conv(6, (3, 3), use_bias=False)),
    "conv transpose": (nn.ConvTranspose(6, (4, 4), strides=(2, 2), padding="SAME"),
                       mp.ConvTranspose(6, (4, 4), strides=(2, 2), padding="SAME")),
    "conv transpose 3x3": (nn.ConvTranspose(6, (3, 3), strides=(2, 2), padding="SAME"),
                           mp.ConvTranspose(6, (3, 3), strides=(2, 2), padding="SAME")),
    "conv transpose valid": (nn.ConvTranspose(6, (3, 3), strides=(2, 2), padding="VALID"),
                             mp.ConvTranspose(6, (3, 3), strides=(2, 2), padding="VALID")),
    "dense": (nn.Dense(6), mp.Dense(6)),
}


def _layer_case(name, dtype):
  flax_layer, layer = LAYERS[name]
  flax_layer = flax_layer.clone(dtype=dtype)
  layer = layer.clone(dtype=dtype)
  x = _sixteenths(0, (2, 8, 8, 4))
  params = flax_layer.init(jax.random.key(0), x)
  assert (jax.tree.map(jnp.shape, layer.init(jax.random.key(0), x))
          == jax.tree.map(jnp.shape, params))
  return flax_layer, layer, x, _exact_params(params)


@pytest.mark.parametrize("dtype", [jnp.float32, BF16])
@pytest.mark.parametrize("name", LAYERS)
def test_same_parameters_same_outputs_as_flax(name, dtype):
  flax_layer, layer, x, params = _layer_case(name, dtype)
  expected = flax_layer.apply(params, x)
  got = layer.apply(params, x)
  assert got.dtype == expected.dtype == dtype
  np.testing.assert_array_equal(np.asarray(got, np.float32),
                                np.asarray(expected, np.float32))


def _grads(layer, params, x, g):
  def loss(p, x):
    return jnp.sum(layer.apply(p, x).astype(jnp.float32) * g)
  return jax.grad(loss, argnums=(0, 1))(params, x)


@pytest.mark.parametrize("name", LAYERS)
def test_bfloat16_weight_gradients_are_exact_float32(name):
  flax_layer, layer, x, params = _layer_case(name, BF16)
  g = _sixteenths(3, flax_layer.apply(params, x).shape)
  exact_params, exact_x = _grads(flax_layer.clone(dtype=jnp.float32), params, x, g)
  got_params, got_x = _grads(layer, params, x, g)
  flax_params, flax_x = _grads(flax_layer, params, x, g)
  for path, got in jax.tree_util.tree_leaves_with_path(got_params):
    assert got.dtype == jnp.float32, path
  jax.tree.map(np.testing.assert_array_equal, got_params, exact_params)
  # Flax's plain bfloat16 layer rounds the same sums to 8 bits of mantissa.
  kernel = "kernel"
  assert not np.array_equal(flax_params["params"][kernel],
                            exact_params["params"][kernel])
  # The input gradient stays in the compute dtype, computed as Flax does.
  assert got_x.dtype == flax_x.dtype
  np.testing.assert_array_equal(got_x, flax_x)


@pytest.mark.parametrize("name", ["conv", "conv transpose", "dense"])
def test_bfloat16_reduction_is_flax_plain_behaviour(name):
  flax_layer, layer, x, params = _layer_case(name, BF16)
  g = _sixteenths(3, flax_layer.apply(params, x).shape)
  with mp.gradients_reduced_in("bfloat16"):
    got = _grads(layer, params, x, g)
  jax.tree.map(np.testing.assert_array_equal, got, _grads(flax_layer, params, x, g))


def test_traced_with_grad_dtype_applies_while_tracing():
  layer = mp.Dense(3, dtype=BF16)
  x = _sixteenths(0, (4, 5))
  params = _exact_params(layer.init(jax.random.key(0), x))
  def kernel_grad(p):
    return jax.grad(lambda p: jnp.sum(layer.apply(p, x).astype(jnp.float32)))(
        p)["params"]["kernel"]
  exact = jax.jit(kernel_grad)(params)
  rounded = jax.jit(mp.traced_with_grad_dtype(kernel_grad, "bfloat16"))(params)
  np.testing.assert_array_equal(
      rounded, np.asarray(np.asarray(exact).astype(BF16), np.float32))


def test_unknown_grad_reduce_dtype_names_the_config_key():
  with pytest.raises(ValueError, match="config.grad_reduce_dtype"):
    mp.traced_with_grad_dtype(lambda: None, "float16")


def test_unsupported_flax_options_are_refused():
  layer = mp.Conv(4, (3, 3), input_dilation=(2, 2))
  with pytest.raises(NotImplementedError, match="input_dilation"):
    layer.init(jax.random.key(0), jnp.zeros((1, 4, 4, 2)))


@pytest.mark.parametrize("reduce_dtype, expected", [("float32", {"f32"}),
                                                    ("bfloat16", {"bf16"})])
def test_tpu_all_reduces_weight_gradients_in_the_configured_dtype(
    reduce_dtype, expected):
  """Compiled for 4 v5e chips (the real TPU compiler, libtpu) with the batch
  split over them: the data-parallel all-reduces of a convolution's, a
  transposed convolution's and a dense layer's weight gradients."""
  from rsjax import mesh as mesh_lib
  from rsjax.train import aot
  mesh = aot.tpu_mesh("v5e:2x2", (("data", -1),))
  data = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
      x = nn.relu(mp.Conv(32, (4, 4), strides=(2, 2), dtype=BF16)(x))
      x = nn.relu(mp.ConvTranspose(16, (4, 4), strides=(2, 2), dtype=BF16)(x))
      return mp.Dense(8, dtype=BF16)(x)

  x = jax.ShapeDtypeStruct((16, 32, 32, 4), jnp.float32, sharding=data)
  params = jax.eval_shape(Net().init, jax.random.key(0), x)
  params = jax.tree.map(
      lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype, sharding=replicated),
      params)

  def grads(params, x):
    return jax.grad(lambda p: jnp.mean(Net().apply(p, x).astype(jnp.float32)
                                       ** 2))(params)

  step = mp.traced_with_grad_dtype(grads, reduce_dtype)
  hlo = jax.jit(step).lower(params, x).compile().as_text()
  reduced: dict[str, int] = {}
  for collective in mesh_lib.collectives(hlo):
    assert collective.op == "all-reduce"
    for dtype, size in collective.bytes_by_dtype.items():
      reduced[dtype] = reduced.get(dtype, 0) + size
  assert set(reduced) == expected
  parameters = sum(p.size for p in jax.tree.leaves(params))
  assert sum(reduced.values()) >= parameters * (4 if expected == {"f32"} else 2)
