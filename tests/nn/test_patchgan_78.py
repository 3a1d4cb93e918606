"""The cloud-removal paper's Table 1 discriminator (`rsjax.nn.patchgan_78`).

Table 1 (cloud_removal_two_gan_drib): CBL(64,4,2) CBL(128,4,2) CBL(256,4,2)
CBL(512,4,2) C(1,3,1). Worked by hand: one logit sees
3 -> (3-1)*2+4 = 8 -> 18 -> 38 -> 78 input pixels, and four stride-2
halvings with padding 1 take 256 px to 16x16 logits (Sec. 3.1's inputs).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn import patchgan_78
from rsjax.nn.patchgan_78 import PatchGAN78
from zoo_checks import (abstract_variables, assert_bfloat16_close,
                        assert_init_deterministic, float32_and_bfloat16,
                        host_variables)


def table_1_parameter_shapes(in_channels):
  """Every parameter's shape, written from Table 1: no bias where the batch
  norm follows, an affine batch norm on each CBL, a bias on C(1,3,1)."""
  shapes, cin = {}, in_channels
  for i, cout in enumerate((64, 128, 256, 512)):
    shapes[f"conv_{i}/kernel"] = (4, 4, cin, cout)
    shapes[f"norm_{i}/batch_norm/scale"] = (cout,)
    shapes[f"norm_{i}/batch_norm/bias"] = (cout,)
    cin = cout
  shapes["conv_4/kernel"] = (3, 3, 512, 1)
  shapes["conv_4/bias"] = (1,)
  return shapes


def flat_shapes(tree):
  return {"/".join(str(k.key) for k in path): tuple(leaf.shape)
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


# Sec. 3.1: stage 1 sees 256x256x1 SAR + 256x256x3; stage 2 sees the
# 256x256x6 cloudy + translated bands + 256x256x3.
@pytest.mark.parametrize("condition_channels", [1, 6])
def test_table_1_parameters_and_16x16_logits_at_256(condition_channels):
  model = PatchGAN78()
  condition = jax.ShapeDtypeStruct((1, 256, 256, condition_channels), jnp.float32)
  image = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)
  variables = abstract_variables(model, condition, image, train=False)
  assert flat_shapes(variables["params"]) == table_1_parameter_shapes(
      condition_channels + 3)
  features, logits = jax.eval_shape(
      lambda v, c, i: model.apply(v, c, i, train=False), variables, condition,
      image)
  assert logits.shape == (1, 16, 16, 1)
  assert [f.shape[1:] for f in features] == [
      (128, 128, 64), (64, 64, 128), (32, 32, 256), (16, 16, 512)]


def test_receptive_field_measured_by_gradients_is_78():
  """The input pixels with a non-zero gradient of one logit are a 78x78 box.

  Inference mode: a training-mode batch norm couples every pixel through the
  batch statistics, so the field of a patch discriminator is that of its
  running-statistics form. Leaky ReLU has a non-zero slope everywhere, so no
  pixel of the field drops out by a dead unit."""
  model = PatchGAN78(ndf=8)          # the field does not depend on the width
  condition = jnp.zeros((1, 256, 256, 1))
  image = jax.random.normal(jax.random.PRNGKey(0), (1, 256, 256, 3))
  variables = host_variables(model, condition, image, train=False)
  row, col = 8, 5

  def one_logit(condition, image):
    _, logits = model.apply(variables, condition, image, train=False)
    return logits[0, row, col, 0]

  grads = jax.jit(jax.grad(one_logit, argnums=(0, 1)))(condition, image)
  seen = np.any(np.concatenate([np.asarray(g[0]) for g in grads], -1) != 0, -1)
  rows, cols = np.nonzero(seen)
  assert rows.max() - rows.min() + 1 == 78
  assert cols.max() - cols.min() + 1 == 78
  assert seen.sum() == 78 * 78                   # the whole box, nothing else

  # Where the box lies, walked back from the logit through each layer's
  # kernel k, stride s and padding p: [s * lo - p, s * hi - p + k - 1].
  def span(index):
    lo = hi = index
    for k, s in [(3, 1), (4, 2), (4, 2), (4, 2), (4, 2)]:
      lo, hi = s * lo - 1, s * hi - 1 + k - 1
    return lo, hi
  assert (rows.min(), rows.max()) == span(row)
  assert (cols.min(), cols.max()) == span(col)
  assert patchgan_78.RECEPTIVE_FIELD == 78


def test_features_are_the_four_cbl_maps_and_widths_scale_with_ndf():
  model = PatchGAN78(ndf=4)
  image = jax.random.normal(jax.random.PRNGKey(2), (2, 32, 32, 3))
  variables = host_variables(model, None, image, train=False)
  features, logits = model.apply(variables, None, image, train=False)
  assert [f.shape[1:] for f in features] == [
      (16, 16, 4), (8, 8, 8), (4, 4, 16), (2, 2, 32)]
  assert logits.shape == (2, 2, 2, 1)


def test_deterministic_init_and_bfloat16():
  model = PatchGAN78(ndf=4)
  condition = jax.random.normal(jax.random.PRNGKey(1), (1, 32, 32, 1))
  image = jnp.zeros((1, 32, 32, 3))
  assert_init_deterministic(model, condition, image, train=False)
  variables = host_variables(model, condition, image, train=False)
  out32, out16 = float32_and_bfloat16(model, variables, condition, image,
                                      train=False)
  assert_bfloat16_close(out32[1], out16[1], atol=0.1)
