"""CSEBGAN's SENet: semantic embeddings (Eq. 1), diversity and class editing."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn.senet import (SENet, SemanticEmbeddings, embedding_noise,
                            resample_class)
from zoo_checks import (abstract_variables, assert_bfloat16_close,
                        assert_init_deterministic, assert_jit_without_retrace,
                        float32_and_bfloat16, host_variables)

CLASSES, DIM = 3, 8
SMALL = dict(num_classes=CLASSES, embed_dim=DIM, ngf=2, num_upsamplings=3,
             mlp_hidden=8, spectral_norm=False)


def halves_mask(size=32, batch=1):
  """Class 0 on the left half, 1 on the right half; class 2 absent."""
  labels = jnp.broadcast_to((jnp.arange(size) >= size // 2).astype(int),
                            (batch, size, size))
  return jax.nn.one_hot(labels, CLASSES)


def test_reparameterization_eq1():
  module = SemanticEmbeddings(CLASSES, DIM)
  noise = jax.random.normal(jax.random.PRNGKey(0), (2, 2, CLASSES, DIM))
  params = {"shift": jnp.full((2, CLASSES, DIM), 0.5),
            "log_scale": jnp.full((2, CLASSES, DIM), np.log(4.0))}
  gamma, beta = module.apply({"params": params}, noise)
  np.testing.assert_allclose(gamma, noise[:, 0] * 2.0 + 0.5, rtol=1e-6)
  np.testing.assert_allclose(beta, noise[:, 1] * 2.0 + 0.5, rtol=1e-6)
  with pytest.raises(ValueError, match="noise"):
    module.apply({"params": params}, noise[:, :, :2])


def test_resample_class_changes_only_that_class():
  noise = embedding_noise(jax.random.PRNGKey(0), 2, CLASSES, DIM)
  edited = resample_class(noise, jax.random.PRNGKey(1), 1)
  assert not np.allclose(edited[:, :, 1], noise[:, :, 1])
  np.testing.assert_array_equal(edited[:, :, 0], noise[:, :, 0])
  np.testing.assert_array_equal(edited[:, :, 2], noise[:, :, 2])


@pytest.fixture(scope="module")
def small_senet():
  model = SENet(out_channels=4, **SMALL)
  mask = halves_mask(64, batch=2)
  noise = embedding_noise(jax.random.PRNGKey(0), 2, CLASSES, DIM)
  variables = host_variables(model, mask, noise, train=False)
  return model, variables, mask, noise, jax.jit(functools.partial(
      model.apply, train=False))


def test_output_shape_and_noise_diversity(small_senet):
  model, variables, mask, noise, apply = small_senet
  first = apply(variables, mask, noise)
  second = apply(variables, mask, embedding_noise(jax.random.PRNGKey(5), 2,
                                                  CLASSES, DIM))
  assert first.shape == (2, 64, 64, 4)
  assert float(jnp.abs(first - second).mean()) > 1e-2


def test_resampling_one_class_edits_that_class_far_more(small_senet):
  """The mCSD / mOCD idea: change in the edited class >> change elsewhere."""
  model, variables, mask, noise, apply = small_senet
  before = apply(variables, mask, noise)
  after = apply(variables, mask, resample_class(noise, jax.random.PRNGKey(9), 0))
  change = np.abs(np.asarray(after - before)).mean(axis=-1)
  in_class = change[np.asarray(mask[..., 0]) == 1].mean()
  elsewhere = change[np.asarray(mask[..., 1]) == 1].mean()
  assert in_class > 5 * elsewhere, (in_class, elsewhere)


def test_noise_from_rng_stream():
  model = SENet(**dict(SMALL, num_upsamplings=1))
  mask = halves_mask(8)
  variables = host_variables(model, mask, jnp.zeros((1, 2, CLASSES, DIM)),
                             train=False)
  run = jax.jit(lambda v, key: model.apply(v, mask, train=False,
                                           rngs={"noise": key}))
  a, b = run(variables, jax.random.PRNGKey(3)), run(variables, jax.random.PRNGKey(3))
  c = run(variables, jax.random.PRNGKey(4))
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)


def test_paper_size_structure_256():
  model = SENet(out_channels=3, num_classes=15, spectral_norm=False)
  mask = jax.ShapeDtypeStruct((1, 256, 256, 15), jnp.float32)
  noise = jax.ShapeDtypeStruct((1, 2, 15, 64), jnp.float32)
  variables = abstract_variables(model, mask, noise, train=False)
  params = variables["params"]
  assert params["semantic_embeddings"]["shift"].shape == (2, 15, 64)
  norm = params["decoder"]["head_0"]["norm_0"]  # an SMBlk: 2-layer MLPs
  assert norm["gamma_fc1"]["kernel"].shape == (64, 128)
  assert norm["gamma_fc2"]["kernel"].shape == (128, 1024)
  assert params["decoder"]["up_3"]["conv_1"]["conv"]["kernel"].shape == (3, 3, 64, 64)
  out = jax.eval_shape(lambda v, m, n: model.apply(v, m, n, train=False),
                       variables, mask, noise)
  assert out.shape == (1, 256, 256, 3)


def test_train_jit_no_retrace_deterministic_init_bfloat16():
  model = SENet(out_channels=2, **dict(SMALL, num_upsamplings=2))
  mask = halves_mask(16)
  noise = embedding_noise(jax.random.PRNGKey(0), 1, CLASSES, DIM)
  assert_init_deterministic(model.clone(num_upsamplings=1), mask[:, :4, :4],
                            noise,
                            train=False)
  variables = host_variables(model, mask, noise, train=False)
  apply = lambda v, m, n: model.apply(v, m, n, train=True,  # noqa: E731
                                      mutable=["batch_stats"])
  (y, _), _ = assert_jit_without_retrace(apply, variables, mask, noise,
                                         perturb=lambda a: (a[0], a[1] * 2))
  assert y.shape == (1, 16, 16, 2)
  y32, y16 = float32_and_bfloat16(model, variables, mask, noise, train=False)
  assert_bfloat16_close(y32, y16, atol=0.1)


def test_wrong_mask_channels_is_a_clear_error():
  with pytest.raises(ValueError, match="num_classes"):
    abstract_variables(SENet(**SMALL), jnp.zeros((1, 32, 32, 5)), None,
                       train=False)


def test_unshared_embeddings_per_smblk_still_edit_one_class():
  """w/o sharing (Table II): each SMBlk reparameterizes the same noise with
  its own shift / log-scale; resampling one class still edits that class."""
  model = SENet(out_channels=2, share_embeddings=False,
                **dict(SMALL, num_upsamplings=1))
  mask = halves_mask(32)
  noise = embedding_noise(jax.random.PRNGKey(0), 1, CLASSES, DIM)
  variables = host_variables(model, mask, noise, train=False)
  params = variables["params"]
  assert "semantic_embeddings" not in params
  block = params["decoder"]["head_0"]
  assert block["norm_0"]["semantic_embeddings"]["shift"].shape == (2, CLASSES, DIM)
  assert block["norm_1"]["semantic_embeddings"]["shift"].shape == (2, CLASSES, DIM)
  apply = jax.jit(functools.partial(model.apply, train=False))
  # Layers really use their own embeddings: shifting one layer's changes G.
  shifted = jax.tree_util.tree_map_with_path(
      lambda p, x: x + 1.0 if "norm_0" in jax.tree_util.keystr(p) and
      "shift" in jax.tree_util.keystr(p) and "head_0" in
      jax.tree_util.keystr(p) else x, variables)
  before = apply(variables, mask, noise)
  assert float(jnp.abs(apply(shifted, mask, noise) - before).mean()) > 1e-3
  after = apply(variables, mask, resample_class(noise, jax.random.PRNGKey(9), 0))
  change = np.abs(np.asarray(after - before)).mean(axis=-1)
  in_class = change[np.asarray(mask[..., 0]) == 1].mean()
  elsewhere = change[np.asarray(mask[..., 1]) == 1].mean()
  assert in_class > 5 * elsewhere, (in_class, elsewhere)
