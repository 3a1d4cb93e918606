"""Residual generator against the fusion paper's Fig. 2 description."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn.layers import conv_specs
from rsjax.nn.resnet import ResnetGenerator
from zoo_checks import (abstract_variables, assert_generator_bfloat16,
                        assert_init_deterministic, assert_jit_without_retrace,
                        host_variables)


def test_paper_layer_list():
  model = ResnetGenerator(out_channels=4)
  x = jax.ShapeDtypeStruct((1, 256, 256, 6), jnp.float32)
  variables = abstract_variables(model, x, train=False)
  specs = conv_specs(lambda v, x: model.apply(v, x, train=False), variables, x)
  layers = [(s.kernel, s.stride, s.input_dilation) for s in specs]
  one, two = (1, 1), (2, 2)
  assert layers[:3] == [((7, 7, 6, 64), one, one),      # extraction
                        ((3, 3, 64, 128), two, one),    # encoding
                        ((3, 3, 128, 256), two, one)]
  assert layers[3:15] == [((3, 3, 256, 256), one, one)] * 12  # 6 residual blocks
  assert layers[15:] == [((3, 3, 256, 128), one, two),  # deconvs, stride 2
                         ((3, 3, 128, 64), one, two),
                         ((7, 7, 64, 4), one, one)]      # compression
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
  assert out.shape == (1, 256, 256, 4)


def test_train_mode_jit_no_retrace_updates_batch_stats():
  model = ResnetGenerator(ngf=4, num_blocks=1)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 32, 32, 3))
  variables = host_variables(model, x, train=False)
  apply = lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"])  # noqa: E731
  (y, stats), _ = assert_jit_without_retrace(apply, variables, x,
                                             perturb=lambda a: (a[0] * 2,))
  assert y.shape == (2, 32, 32, 3)
  before = variables["batch_stats"]["encoder_0_norm"]["batch_norm"]["mean"]
  after = stats["batch_stats"]["encoder_0_norm"]["batch_norm"]["mean"]
  assert not np.allclose(before, after)


def test_deterministic_init():
  assert_init_deterministic(ResnetGenerator(ngf=2, num_blocks=1),
                            jnp.zeros((1, 16, 16, 2)), train=False)


def test_bfloat16_close_to_float32():
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 32, 32, 3))
  assert_generator_bfloat16(
      ResnetGenerator(ngf=4, num_blocks=2, norm="instance"), x)


def test_rejects_size_not_divisible_by_4():
  with pytest.raises(ValueError, match="divisible by 4"):
    abstract_variables(ResnetGenerator(ngf=2), jnp.zeros((1, 30, 30, 3)),
                       train=False)


@pytest.mark.parametrize("norm,biased", [("batch", False), ("instance", False),
                                         ("none", True)])
def test_no_bias_in_convs_that_a_centring_norm_follows(norm, biased):
  """Batch and instance norm subtract a per-channel mean, which cancels a
  conv bias before them; without a norm the convs keep theirs."""
  model = ResnetGenerator(out_channels=3, ngf=2, num_blocks=1, norm=norm)
  params = abstract_variables(model, jax.ShapeDtypeStruct(
      (1, 16, 16, 2), jnp.float32), train=False)["params"]
  convs = [params[f"encoder_{i}"] for i in range(3)] + [
      params[f"decoder_{i}"] for i in range(2)] + [
      params["residual_0"]["conv_0"], params["residual_0"]["conv_1"]]
  assert all(("bias" in conv) == biased for conv in convs)
  assert "bias" in params["to_image"]   # tanh follows, no normalization
