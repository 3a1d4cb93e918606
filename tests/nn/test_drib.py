"""DRIB generator against the cloud-removal paper's Tables 1 and 2."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn.drib import DRIB, DRIBGenerator
from rsjax.nn.layers import conv_specs, count_params
from zoo_checks import (KEY, abstract_variables, assert_generator_bfloat16,
                        assert_init_deterministic, assert_jit_without_retrace,
                        host_variables)


def abstract_init(model, shape):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  return abstract_variables(model, x, train=False), x


def test_paper_layer_list_at_width_64():
  model = DRIBGenerator(out_channels=3)
  variables, x = abstract_init(model, (1, 256, 256, 2))
  specs = conv_specs(lambda v, x: model.apply(v, x, train=False), variables, x)
  # Encoder (Table 1): CL(64,4,2) CBL(128,4,2) CBL(256,4,2) CBL(512,4,1).
  assert [(s.kernel, s.stride) for s in specs[:4]] == [
      ((4, 4, 2, 64), (2, 2)), ((4, 4, 64, 128), (2, 2)),
      ((4, 4, 128, 256), (2, 2)), ((4, 4, 256, 512), (1, 1))]
  # 8 DRIBs (Table 2): 3 x [1x1 -> 3x3 dilated r] + 1x1 to 512.
  dribs = specs[4:4 + 8 * 7]
  for block in range(8):
    layers = dribs[7 * block:7 * block + 7]
    for branch, rate in enumerate((1, 2, 3)):
      reduce, dilated = layers[2 * branch], layers[2 * branch + 1]
      assert reduce.kernel == (1, 1, 512, 256) and reduce.stride == (1, 1)
      assert dilated.kernel == (3, 3, 256, 256) and dilated.dilation == (rate, rate)
    assert layers[6].kernel == (1, 1, 768, 512)
  # Decoder (Table 1): deconvs 256 s1, 128 s2, 64 s2, out s2; skips double the input.
  decoder = specs[4 + 56:]
  assert [(s.kernel, s.input_dilation) for s in decoder] == [
      ((4, 4, 512, 256), (1, 1)), ((4, 4, 512, 128), (2, 2)),
      ((4, 4, 256, 64), (2, 2)), ((4, 4, 128, 3), (2, 2))]
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
  assert out.shape == (1, 256, 256, 3)


def test_parameter_count_matches_hand_count():
  def conv(k, cin, cout):        # with a bias: CL and CT
    return k * k * cin * cout + cout

  def conv_bn(k, cin, cout):     # C followed by B: no bias, BN scale and shift
    return k * k * cin * cout + 2 * cout

  encoder = (conv(4, 3, 64) + conv_bn(4, 64, 128) + conv_bn(4, 128, 256)
             + conv_bn(4, 256, 512))
  drib = 3 * (conv_bn(1, 512, 256) + conv_bn(3, 256, 256)) + conv_bn(1, 768, 512)
  decoder = (conv_bn(4, 512, 256) + conv_bn(4, 512, 128) + conv_bn(4, 256, 64)
             + conv(4, 128, 3))
  variables, _ = abstract_init(DRIBGenerator(), (1, 256, 256, 3))
  assert count_params(variables["params"]) == encoder + 8 * drib + decoder
  # 17,728 fewer than with a bias in every convolution (896 in the encoder,
  # 2,048 per DRIB, 448 in the decoder).
  assert encoder + 8 * drib + decoder == 26_670_083 - 17_728


def test_no_bias_in_convs_that_batchnorm_follows():
  variables, _ = abstract_init(DRIBGenerator(ngf=4, num_blocks=1),
                               (1, 32, 32, 3))
  params = variables["params"]
  biased = sorted(name for name, layer in params.items()
                  if "bias" in layer and "_bn" not in name)
  assert biased == ["encoder_0", "to_image"]
  assert all("bias" not in conv for conv in params["drib_0"].values()
             if "kernel" in conv)


def test_fewer_parameters_than_unet_256():
  from rsjax.nn import unet  # ours: a plain import, never skipped
  drib, _ = abstract_init(DRIBGenerator(out_channels=3, ngf=64), (1, 256, 256, 3))
  x = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)
  model = unet.UNetGenerator(out_channels=3, ngf=64)
  reference = jax.eval_shape(lambda x: model.init(KEY, x, train=False), x)
  drib_count = count_params(drib["params"])
  unet_count = count_params(reference["params"])
  # The paper: DRIBs "halved the number of our generator parameters than U-net".
  assert drib_count < 0.65 * unet_count, (drib_count, unet_count)


def test_train_mode_dropout_batch_stats_jit_no_retrace():
  model = DRIBGenerator(out_channels=3, ngf=4, num_blocks=1)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 32, 32, 2))
  variables = host_variables(model, x, train=False)

  def apply(variables, x, key):
    return model.apply(variables, x, train=True, rngs={"dropout": key},
                       mutable=["batch_stats"])

  (y1, _), (y2, stats) = assert_jit_without_retrace(
      apply, variables, x, jax.random.PRNGKey(1),
      perturb=lambda a: (a[0] + 1.0, jax.random.PRNGKey(2)))
  assert y1.shape == (2, 32, 32, 3)
  assert not np.allclose(y1, y2)
  assert jax.tree_util.tree_structure(stats["batch_stats"]) == \
      jax.tree_util.tree_structure(variables["batch_stats"])


def test_deterministic_init():
  model = DRIBGenerator(ngf=2, num_blocks=1)
  assert_init_deterministic(model, jnp.zeros((1, 16, 16, 3)), train=False)


def test_bfloat16_close_to_float32():
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 32, 32, 3))
  assert_generator_bfloat16(DRIBGenerator(ngf=4, num_blocks=2), x)


def test_drib_is_residual():
  block = DRIB(features=8, branch_features=4)
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 8, 8, 8))
  variables = host_variables(block, x, train=False)
  # A zero BatchNorm scale after the 1x1 projection leaves only the shortcut.
  zeroed = jax.tree_util.tree_map(jnp.zeros_like, variables["params"])
  y = block.apply({**variables, "params": zeroed}, x, train=False)
  np.testing.assert_allclose(y, x, atol=1e-6)


def test_rejects_size_not_divisible_by_8():
  with pytest.raises(ValueError, match="divisible by 8"):
    abstract_variables(DRIBGenerator(ngf=4), jnp.zeros((1, 36, 36, 3)),
                       train=False)
