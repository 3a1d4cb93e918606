"""Stride-2 convolutions by space-to-depth compute the paper's layers (issue 24).

As in test_fused_convs: inputs and kernels are multiples of 1/16 no larger
than 1, so products are multiples of 1/256 and every sum here (at most
4 * 4 * 19 terms) is exact in float32 whatever the order: the rearranged
convolution must equal the plain one bit for bit, gradients included, and a
whole network whose first layer is rearranged must give the same outputs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn import layers as layers_lib
from rsjax.nn import mixed_precision as mp
from rsjax.nn import space_to_depth
from rsjax.nn.patchgan import PatchGAN
from rsjax.nn.unet import UNetGenerator


def _sixteenths(seed, shape):
  rng = np.random.default_rng(seed)
  return (rng.integers(-16, 17, shape) / 16).astype(np.float32)


def _exact(tree, seed=1):
  leaves, structure = jax.tree.flatten(tree)
  return jax.tree.unflatten(structure, [
      _sixteenths(seed + i, leaf.shape) for i, leaf in enumerate(leaves)])


def test_unshuffle_puts_each_2x2_block_in_the_channels():
  x = np.arange(2 * 4 * 6 * 3).reshape(2, 4, 6, 3)
  s = np.asarray(space_to_depth.unshuffle(x))
  assert s.shape == (2, 2, 3, 12)
  for u in range(2):
    for v in range(2):
      np.testing.assert_array_equal(
          s[..., (u * 2 + v) * 3:(u * 2 + v + 1) * 3], x[:, u::2, v::2])


CASES = {
    "4x4 pad 1 (pix2pix)": dict(kernel_size=(4, 4), padding=((1, 1), (1, 1))),
    "4x4 same": dict(kernel_size=(4, 4), padding="SAME"),
    "2x2 valid": dict(kernel_size=(2, 2), padding="VALID"),
    "6x6 pad 2": dict(kernel_size=(6, 6), padding=((2, 2), (2, 2))),
}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("case", CASES)
def test_rearranged_conv_equals_the_conv(case, dtype):
  kwargs = dict(features=8, strides=(2, 2), dtype=dtype, **CASES[case])
  plain = mp.Conv(space_to_depth=False, **kwargs)
  rearranged = mp.Conv(space_to_depth=True, **kwargs)
  x = _sixteenths(0, (2, 8, 12, 19))
  params = _exact(plain.init(jax.random.key(0), x))
  assert (jax.tree.map(jnp.shape, rearranged.init(jax.random.key(0), x))
          == jax.tree.map(jnp.shape, params))
  specs = layers_lib.conv_specs(lambda: rearranged.apply(params, x))
  half = tuple(k // 2 for k in CASES[case]["kernel_size"])
  assert len(specs) == 1
  assert (specs[0].kernel, specs[0].stride) == (half + (4 * 19, 8), (1, 1))
  expected = plain.apply(params, x)
  got = rearranged.apply(params, x)
  np.testing.assert_array_equal(np.asarray(got, np.float32),
                                np.asarray(expected, np.float32))

  g = _sixteenths(2, expected.shape)
  def grads(layer):
    return jax.grad(lambda p, x: jnp.sum(layer.apply(p, x).astype(jnp.float32)
                                         * g), argnums=(0, 1))(params, x)
  jax.tree.map(np.testing.assert_array_equal, grads(rearranged), grads(plain))


def test_layers_it_cannot_compute_are_computed_as_they_are():
  x = _sixteenths(0, (1, 9, 9, 3))
  for kwargs in (dict(kernel_size=(3, 3), strides=(2, 2), padding="VALID"),
                 dict(kernel_size=(4, 4), strides=(1, 1), padding="SAME"),
                 dict(kernel_size=(4, 4), strides=(2, 2), padding="VALID")):
    layer = mp.Conv(4, space_to_depth=True, **kwargs)
    params = _exact(layer.init(jax.random.key(0), x))
    specs = layers_lib.conv_specs(lambda: layer.apply(params, x))
    assert specs[0].kernel[:2] == kwargs["kernel_size"]
    np.testing.assert_array_equal(
        layer.apply(params, x),
        mp.Conv(4, space_to_depth=False, **kwargs).apply(params, x))


def test_only_few_channel_inputs_are_rearranged():
  assert space_to_depth.worthwhile(True, space_to_depth.MAX_CHANNELS)
  assert not space_to_depth.worthwhile(True, space_to_depth.MAX_CHANNELS + 1)
  assert not space_to_depth.worthwhile(False, 19)


NETWORKS = {
    "unet": (lambda s: UNetGenerator(out_channels=4, ngf=40, num_downs=3,
                                     dropout_rate=0.0, space_to_depth=s),
             lambda net, variables, x: net.apply(variables, x, train=False),
             lambda net, x: net.init(jax.random.key(0), x, train=False)),
    "patchgan": (lambda s: PatchGAN(ndf=40, space_to_depth=s),
                 lambda net, variables, x: net.apply(
                     variables, x[..., :15], x[..., 15:], train=False)[1],
                 lambda net, x: net.init(jax.random.key(0), x[..., :15],
                                         x[..., 15:], train=False)),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_networks_give_the_same_outputs_rearranged(name):
  """`space_to_depth=True` rearranges the stride-2 layers of at most 32 input
  channels: here the 19-channel first layer only (the next ones read 40 or
  more channels), so the outputs are the same bits (a second rearranged
  layer would read the leaky ReLU's inexact multiples of 0.2 and could round
  differently)."""
  build, run, init = NETWORKS[name]
  x = _sixteenths(0, (2, 32, 32, 19))
  variables = dict(init(build(False), x))
  variables["params"] = _exact(variables["params"])

  def specs(setting):
    return layers_lib.conv_specs(lambda: run(build(setting), variables, x))

  plain, fitted = specs(False), specs(True)
  rearranged = [spec.stride == (2, 2) and spec.kernel[2] <= 32
                and spec.input_dilation == (1, 1) for spec in plain]
  assert rearranged[0] and not any(rearranged[1:])
  assert [spec.stride == (1, 1) and spec.kernel[2] == 4 * plain_spec.kernel[2]
          for spec, plain_spec in zip(fitted, plain)] == rearranged
  expected = jax.jit(lambda v: run(build(False), v, x))(variables)
  got = jax.jit(lambda v: run(build(True), v, x))(variables)
  assert np.all(np.isfinite(expected))
  np.testing.assert_array_equal(got, expected)
