"""Fused convolutions compute the paper's layers (issue 24, item 3).

The inputs, kernels and biases here are small multiples of 1/16, so every
product and every partial sum of a convolution is exact in float32 (the
bounds are worked out at each test): the order in which a compiler adds the
products cannot change a bit, and the fused forms must equal the
layer-by-layer forms, and a float64 reference, exactly.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn import fused_convs
from rsjax.nn import target
from rsjax.nn import layers as layers_lib
from rsjax.nn.layers import conv
from rsjax.nn.norms import SPADE, MultiSourceModulation
from rsjax.nn.spade import SPADEGenerator


def _sixteenths(rng, shape, limit):
  """Multiples of 1/16 in [-limit, limit] (limit a multiple of 1/16)."""
  steps = int(limit * 16)
  return (rng.integers(-steps, steps + 1, shape) / 16).astype(np.float32)


def _reference_conv(x, kernel, bias):
  """A 3x3 'SAME' convolution in float64 with numpy."""
  x = np.pad(np.asarray(x, np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
  height, width = x.shape[1] - 2, x.shape[2] - 2
  out = np.zeros(x.shape[:1] + (height, width, kernel.shape[-1]))
  for dy in range(3):
    for dx in range(3):
      out += np.einsum("nhwc,co->nhwo", x[:, dy:dy + height, dx:dx + width],
                       np.asarray(kernel[dy, dx], np.float64))
  return out + np.asarray(bias, np.float64)


def _exact(variables, rng, limit=0.125):
  """`variables` with every leaf replaced by multiples of 1/16."""
  return jax.tree.map(lambda a: _sixteenths(rng, a.shape, limit), variables)


class _Shared(nn.Module):
  @nn.compact
  def __call__(self, x):
    return fused_convs.shared_input(x, {"gamma": 5, "beta": 3})


class _Blocks(nn.Module):
  @nn.compact
  def __call__(self, inputs):
    return fused_convs.block_diagonal(inputs, 4)


def test_conv_params_are_those_of_an_nn_conv():
  """Same names, shapes, initializers and RNG streams as `layers.conv`."""
  class Both(nn.Module):
    @nn.compact
    def __call__(self, x):
      conv(6, 3, name="plain")(x)
      return fused_convs.ConvParams(6, x.shape[-1], name="declared")()

  params = Both().init(jax.random.PRNGKey(3), jnp.zeros((1, 4, 4, 5)))["params"]
  plain, declared = params["plain"], params["declared"]
  assert jax.tree.map(jnp.shape, plain) == jax.tree.map(jnp.shape, declared)
  assert declared["kernel"].dtype == jnp.float32
  # Same initializer: N(0, 0.02) kernels, zero biases (different streams:
  # the names differ).
  np.testing.assert_array_equal(declared["bias"], np.zeros(6))
  assert 0.01 < float(jnp.std(declared["kernel"])) < 0.03


def test_shared_input_equals_separate_convolutions_exactly():
  # |x| <= 1, |w|, |b| <= 1/8, 9 * 7 products per output: sums <= 8 in
  # units of 1/16: exact.
  rng = np.random.default_rng(0)
  x = _sixteenths(rng, (2, 6, 5, 7), 1.0)
  params = _exact(_Shared().init(jax.random.PRNGKey(0), x)["params"], rng)
  out = _Shared().apply({"params": params}, x)
  assert sorted(out) == ["beta", "gamma"]
  for name, features in (("gamma", 5), ("beta", 3)):
    expected = _reference_conv(x, params[name]["kernel"], params[name]["bias"])
    assert out[name].shape == (2, 6, 5, features)
    np.testing.assert_array_equal(np.asarray(out[name], np.float64), expected)


def test_block_diagonal_equals_separate_convolutions_exactly():
  rng = np.random.default_rng(1)
  inputs = {"embed_a": _sixteenths(rng, (2, 8, 8, 9), 1.0),
            "embed_b": _sixteenths(rng, (2, 8, 8, 2), 1.0),
            "embed_c": _sixteenths(rng, (2, 8, 8, 4), 1.0)}
  params = _exact(_Blocks().init(jax.random.PRNGKey(0), inputs)["params"], rng)
  out = dict(zip(inputs, np.split(
      np.asarray(_Blocks().apply({"params": params}, inputs)), 3, axis=-1)))
  for name, x in inputs.items():
    assert params[name]["kernel"].shape == (3, 3, x.shape[-1], 4)
    np.testing.assert_array_equal(
        np.asarray(out[name], np.float64),
        _reference_conv(x, params[name]["kernel"], params[name]["bias"]))
  with pytest.raises(ValueError, match="differ in batch, height or width"):
    _Blocks().init(jax.random.PRNGKey(0), {"a": jnp.zeros((1, 8, 8, 2)),
                                           "b": jnp.zeros((1, 4, 4, 2))})


def _modulation_inputs(rng):
  x = jax.random.normal(jax.random.PRNGKey(5), (2, 16, 16, 8))
  condition = {"lulc": _sixteenths(rng, (2, 16, 16, 9), 1.0),
               "sar": _sixteenths(rng, (2, 16, 16, 2), 1.0),
               "dem": _sixteenths(rng, (2, 16, 16, 4), 1.0)}
  return x, condition


def _assert_same_layers_and_outputs(layers, fused, rng, *inputs):
  """Both forms declare the same parameters with the same initial values;
  given exactly representable parameters, they give the same output."""
  key = jax.random.PRNGKey(7)
  initial = layers.init(key, *inputs, train=True)
  fused_initial = fused.init(key, *inputs, train=True)
  assert jax.tree.structure(initial) == jax.tree.structure(fused_initial)
  for a, b in zip(jax.tree.leaves(initial), jax.tree.leaves(fused_initial)):
    np.testing.assert_array_equal(a, b)
  variables = {"params": _exact(initial["params"], rng),
               "batch_stats": initial["batch_stats"]}
  want, _ = layers.apply(variables, *inputs, train=True,
                         mutable=["batch_stats"])
  got, _ = fused.apply(variables, *inputs, train=True,
                       mutable=["batch_stats"])
  np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dem_size", [16, 8])
def test_multi_source_modulation_fused_equals_the_paper_s_layers(dem_size):
  """Every product and partial sum is exact (embedding sums <= 17, fuse
  sums <= 230 in units of 1/256, gamma/beta <= 2100 in units of 1/4096: all
  under 2^24), so the outputs are equal bit for bit. A DEM at half the
  resolution is embedded apart (its own grid) and resized by nearest
  neighbours, which copies values exactly."""
  rng = np.random.default_rng(2)
  x, condition = _modulation_inputs(rng)
  condition["dem"] = condition["dem"][:, :dem_size, :dem_size]
  settings = dict(embed_features=4, hidden=8,
                  categorical_sources=("lulc", "dem"))
  _assert_same_layers_and_outputs(
      MultiSourceModulation(fused=False, **settings),
      MultiSourceModulation(fused=True, **settings), rng, x, condition)


def test_spade_gamma_beta_fused_equals_two_convolutions():
  rng = np.random.default_rng(3)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 6))
  label = _sixteenths(rng, (2, 8, 8, 5), 1.0)
  _assert_same_layers_and_outputs(SPADE(hidden=4, fused=False),
                                  SPADE(hidden=4, fused=True), rng, x, label)


def _gradients(model, variables, x, condition, weights):
  """d(sum(output * weights)) / d(parameters, x), batch statistics on."""
  def loss(params, x):
    out, _ = model.apply({**variables, "params": params}, x, condition,
                         train=True, mutable=["batch_stats"])
    return jnp.sum(out * weights)
  return jax.grad(loss, argnums=(0, 1))(variables["params"], x)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_modulation_gradients_fused_equal_the_paper_s_layers(norm):
  """Gradients of every parameter (bias gradients summed apart per output in
  `shared_input`) and of the input. Without normalization the input, the
  parameters and the loss weights are multiples of 1/16, and every gradient
  is a multiple of 2^-20 below 8 (at most 23 significant bits, 24 in
  float32), so products and sums are exact at that scale and the forms agree
  bit for bit. With the batch norm the
  normalized input is no multiple of 1/16, sums over pixels may be added in
  another order, and the forms agree to float32 rounding: each gradient
  within 1e-5 of its largest magnitude (a sum of n float32 terms in any
  order is within about n * 2^-24 of the exact sum, relative to the sum of
  magnitudes; n <= 512 pixels x 9 taps here)."""
  rng = np.random.default_rng(6)
  _, condition = _modulation_inputs(rng)
  x = _sixteenths(rng, (2, 16, 16, 8), 1.0)
  weights = _sixteenths(rng, (2, 16, 16, 8), 0.5)
  settings = dict(embed_features=4, hidden=8, norm=norm)
  layers = MultiSourceModulation(fused=False, **settings)
  fused = MultiSourceModulation(fused=True, **settings)
  initial = layers.init(jax.random.PRNGKey(7), x, condition, train=True)
  variables = {**initial, "params": _exact(initial["params"], rng)}
  want = _gradients(layers, variables, x, condition, weights)
  got = _gradients(fused, variables, x, condition, weights)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(want),
                          jax.tree.leaves(got)):
    a, b = np.asarray(a), np.asarray(b)
    assert np.abs(a).max() > 0, path
    if norm == "none":
      np.testing.assert_array_equal(b, a, err_msg=str(path))
    else:
      np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * np.abs(a).max(),
                                 err_msg=str(path))


def test_spade_gamma_beta_gradients_fused_equal_two_convolutions():
  """SPADE's gamma/beta as one convolution: the same gradients, exactly
  (no normalization, multiples of 1/16 as above)."""
  rng = np.random.default_rng(8)
  x = _sixteenths(rng, (2, 8, 8, 6), 1.0)
  label = _sixteenths(rng, (2, 8, 8, 5), 1.0)
  weights = _sixteenths(rng, (2, 8, 8, 6), 0.5)
  layers, fused = (SPADE(hidden=4, norm="none", fused=f) for f in (False, True))
  initial = layers.init(jax.random.PRNGKey(9), x, label, train=True)
  variables = {**initial, "params": _exact(initial["params"], rng)}
  want = _gradients(layers, variables, x, label, weights)
  got = _gradients(fused, variables, x, label, weights)
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    np.testing.assert_array_equal(np.asarray(b), np.asarray(a))


def test_rs_spade_generator_checkpoints_load_in_either_form():
  """The generator's parameter tree and initial values do not depend on the
  form, so a checkpoint of one restores into the other."""
  condition = {"lulc": jnp.zeros((1, 64, 64, 9)), "sar": jnp.zeros((1, 64, 64, 2)),
               "dem": jnp.zeros((1, 64, 64, 4))}
  trees = []
  for fused in (False, True):
    model = SPADEGenerator(out_channels=4, conditioning="multi_source", ngf=2,
                           num_upsamplings=3, embed_features=4, hidden=8,
                           fused_modulation=fused)
    trees.append(model.init(jax.random.PRNGKey(0), condition, train=False))
  assert jax.tree.structure(trees[0]) == jax.tree.structure(trees[1])
  for a, b in zip(jax.tree.leaves(trees[0]), jax.tree.leaves(trees[1])):
    np.testing.assert_array_equal(a, b)


def test_unset_layers_fuse_when_compiled_for_tpu_only():
  """`fused=None` fuses where it pays: under `target_platform('tpu')` (how
  rsjax.train.aot compiles for a TPU topology) the modulation runs 3
  convolutions (one block-diagonal, the fusing one, gamma with beta), for
  this CPU host the paper's 6."""
  rng = np.random.default_rng(4)
  x, condition = _modulation_inputs(rng)
  model = MultiSourceModulation(embed_features=4, hidden=8)
  variables = model.init(jax.random.PRNGKey(0), x, condition, train=False)

  def convolutions():
    # A new function each time: JAX caches a trace by function, and the
    # target platform is not part of its key.
    return len(layers_lib.conv_specs(
        lambda: model.apply(variables, x, condition, train=False)))

  assert not fused_convs.preferred()
  assert convolutions() == 6
  with target.target_platform("tpu"):
    assert fused_convs.preferred()
    assert convolutions() == 3
  with target.target_platform("cpu"):
    assert convolutions() == 6
  assert fused_convs.resolve(True) and not fused_convs.resolve(False)
