"""PatchGAN: pix2pix's 70x70 layer list, receptive field, features, scales."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn.layers import conv_specs, count_params
from rsjax.nn.patchgan import (MultiScalePatchGAN, PatchGAN, patchgan_layers,
                               receptive_field)
from zoo_checks import (abstract_variables, assert_bfloat16_close,
                        assert_init_deterministic, assert_jit_without_retrace,
                        float32_and_bfloat16, host_variables)


def test_layer_list_is_c64_c128_c256_c512_with_4x4_kernels():
  model = PatchGAN()
  cond = jax.ShapeDtypeStruct((1, 256, 256, 2), jnp.float32)
  image = jax.ShapeDtypeStruct((1, 256, 256, 4), jnp.float32)
  variables = abstract_variables(model, cond, image, train=False)
  apply = lambda v, c, i: model.apply(v, c, i, train=False)  # noqa: E731
  specs = conv_specs(apply, variables, cond, image)
  assert [(s.kernel, s.stride) for s in specs] == [
      ((4, 4, 6, 64), (2, 2)), ((4, 4, 64, 128), (2, 2)),
      ((4, 4, 128, 256), (2, 2)), ((4, 4, 256, 512), (1, 1)),
      ((4, 4, 512, 1), (1, 1))]
  features, logits = jax.eval_shape(apply, variables, cond, image)
  assert [f.shape[1:] for f in features] == [
      (128, 128, 64), (64, 64, 128), (32, 32, 256), (31, 31, 512)]
  assert logits.shape == (1, 30, 30, 1)  # pix2pix's 30x30 patches at 256
  # pix2pix's n_layers=3 discriminator on 6 input channels: 2,768,705 weights
  # (16*6*64 + 64 + 16*64*128 + 16*128*256 + 16*256*512 + 16*512 + 1, plus
  # BatchNorm scale and bias of the middle three layers).
  assert count_params(variables["params"]) == (
      16 * 6 * 64 + 64 + 16 * 64 * 128 + 16 * 128 * 256 + 16 * 256 * 512
      + 16 * 512 + 1 + 2 * (128 + 256 + 512))


def test_receptive_field_from_layer_list_is_70():
  layers = [(kernel, stride) for _, kernel, stride in patchgan_layers(3)]
  assert receptive_field(layers) == 70
  assert receptive_field([(k, s) for _, k, s in patchgan_layers(1)]) == 16
  assert receptive_field([(k, s) for _, k, s in patchgan_layers(2)]) == 34


def test_receptive_field_empirically_70():
  model = PatchGAN(ndf=2, norm="none")
  image = jnp.zeros((1, 96, 96, 1))
  variables = host_variables(model, None, image, train=False)

  def centre_logit(image):
    _, logits = model.apply(variables, None, image, train=False)
    return logits[0, logits.shape[1] // 2, logits.shape[2] // 2, 0]

  grad = jax.jit(jax.grad(centre_logit))(
      jax.random.normal(jax.random.PRNGKey(0), image.shape))
  rows, cols = np.nonzero(np.abs(np.asarray(grad[0, :, :, 0])) > 0)
  assert rows.max() - rows.min() + 1 == 70
  assert cols.max() - cols.min() + 1 == 70


@pytest.mark.parametrize("cond_channels,image_channels,size",
                         [(2, 4, 64), (13, 1, 32)])
def test_conditional_output_shapes(cond_channels, image_channels, size):
  model = PatchGAN(ndf=4)
  cond = jax.ShapeDtypeStruct((2, size, size, cond_channels), jnp.float32)
  image = jax.ShapeDtypeStruct((2, size, size, image_channels), jnp.float32)
  variables = abstract_variables(model, cond, image, train=False)
  features, logits = jax.eval_shape(
      lambda v, c, i: model.apply(v, c, i, train=False), variables, cond, image)
  assert len(features) == 4
  assert logits.shape == (2, size // 8 - 2, size // 8 - 2, 1)


def test_multiscale_outputs_per_scale_and_128():
  model = MultiScalePatchGAN(num_scales=3, ndf=4)
  cond = jax.ShapeDtypeStruct((1, 128, 128, 3), jnp.float32)
  image = jax.ShapeDtypeStruct((1, 128, 128, 4), jnp.float32)
  variables = abstract_variables(model, cond, image, train=False)
  outputs = jax.eval_shape(lambda v, c, i: model.apply(v, c, i, train=False),
                           variables, cond, image)
  assert [logits.shape[1] for _, logits in outputs] == [14, 6, 2]
  assert sorted(variables["params"]) == ["scale_0", "scale_1", "scale_2"]


def test_spectral_norm_instance_norm_jit_no_retrace():
  model = PatchGAN(ndf=4, norm="instance", spectral_norm=True)
  cond, image = jnp.ones((2, 32, 32, 2)), jnp.ones((2, 32, 32, 3))
  variables = host_variables(model, cond, image, train=False)
  apply = lambda v, c, i: model.apply(v, c, i, train=True,  # noqa: E731
                                      mutable=["batch_stats"])
  ((features, logits), stats), _ = assert_jit_without_retrace(
      apply, variables, cond, image, perturb=lambda a: (a[0] - 1, a[1] + 1))
  assert logits.shape == (2, 2, 2, 1)
  assert "spectral_norm" in stats["batch_stats"]["conv_0"]


def test_deterministic_init_and_bfloat16():
  model = PatchGAN(ndf=4)
  cond, image = jnp.zeros((1, 32, 32, 1)), jnp.zeros((1, 32, 32, 3))
  assert_init_deterministic(model, cond, image, train=False)
  cond = jax.random.normal(jax.random.PRNGKey(1), cond.shape)
  variables = host_variables(model, cond, image, train=False)
  out32, out16 = float32_and_bfloat16(model, variables, cond, image,
                                      train=False)
  assert_bfloat16_close(out32[1], out16[1], atol=0.1)


@pytest.mark.parametrize("style", ["pix2pix", "spade"])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_no_bias_in_convs_that_a_norm_follows(norm, style):
  """A BatchNorm or InstanceNorm subtracts a per-channel mean, which cancels
  a conv bias: only the first and the last conv (and every conv without a
  norm) have one."""
  model = PatchGAN(ndf=4, norm=norm, style=style)
  image = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  params = abstract_variables(model, None, image, train=False)["params"]
  biased = [i for i in range(5) if "bias" in params[f"conv_{i}"]["conv"]]
  assert biased == ([0, 4] if norm != "none" else [0, 1, 2, 3, 4])
