"""PairedGAN: sharded == single-device step, no retrace, learning, EMA, losses,
bfloat16, RS-SPADE sources, eval masking, panels, config errors."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.systems import base
from rsjax.systems.rs_spade.system import PairedGAN
from system_checks import (KEY, assert_sharded_step_equals_single,
                           fast_jit, gan_config,
                           host_state, make_batch, padded_batches,
                           sgd_system)

SCALARS = {"g_loss", "g_adv", "g_l1", "g_ssim", "d_loss", "d_real", "d_fake",
           "loss_is_finite"}


EMA_DECAY = 0.75


@pytest.fixture(scope="module")
def pix2pix():
  """unet + PatchGAN, vanilla, SSIM on, EMA on; one single-device step jit
  shared by the tests of this module (at most one trace in all of them).
  EMA decay 0.75, not 0.5: at 0.5 the EMA formula is symmetric, so a
  reversed decay (decay on the new params) would pass unseen."""
  system = base.get_system(gan_config(**{"loss.ssim": 1.0,
                                         "ema_decay": EMA_DECAY}))
  step = fast_jit(chex.assert_max_traces(system.train_step, n=1))
  return system, step, host_state(system, make_batch(0))


def test_sharded_step_equals_single_device_step(devices):
  """Data mesh of 8 and (data 4, fsdp 2), 5 seeds of params and batch."""
  system = sgd_system(gan_config(**{"loss.ssim": 1.0, "ema_decay": 0.5}))
  example = make_batch(0)
  for single_state, _ in assert_sharded_step_equals_single(
      system, lambda seed: host_state(system, example, seed),
      lambda seed: make_batch(seed + 1), devices):
    # BatchNorm statistics really moved (global batch statistics, not a no-op).
    stats = single_state.batch_stats["generator"]["down2_norm"]["mean"]
    assert np.abs(np.asarray(stats)).max() > 0


def _leaf(tree, path):
  for entry in path:
    tree = tree[getattr(entry, "key", entry)]
  return tree


def test_steps_learn_without_retrace_and_ema(pix2pix):
  system, step, state = pix2pix
  assert state.ema_params is not None
  history = []
  for i in range(12):
    previous = state
    state, metrics = step(state, make_batch(10 + i % 3))
    history.append({k: float(v) for k, v in metrics.items()})
  assert set(history[0]) == SCALARS
  assert all(h["loss_is_finite"] == 1.0 for h in history)
  assert all(np.isfinite(list(h.values())).all() for h in history)
  assert int(state.step) == 12
  # L1 to a learnable target falls clearly within a few Adam steps.
  assert np.mean([h["g_l1"] for h in history[-3:]]) < 0.9 * history[0]["g_l1"]
  # EMA: decay * previous EMA + (1 - decay) * new params, written out in
  # float64 (#19: not base.ema_update itself). float32 rounds each of the two
  # products and the sum once: |error| <= 3 * 2**-24 * max|x| < 2e-7 * max|x|;
  # we allow 1e-6 * max|x| + 1e-7. A reversed decay is off by
  # 0.5 * |new - old EMA|, which after 12 Adam steps (lr 3e-3) is > 1e-4.
  decay = EMA_DECAY
  for path, got in jax.tree_util.tree_leaves_with_path(
      state.ema_params["generator"]):
    old_ema = np.asarray(_leaf(previous.ema_params["generator"], path), np.float64)
    new = np.asarray(_leaf(state.params["generator"], path), np.float64)
    expected = decay * old_ema + (1.0 - decay) * new
    scale = max(np.abs(old_ema).max(), np.abs(new).max())
    np.testing.assert_allclose(np.asarray(got, np.float64), expected, rtol=0,
                               atol=1e-6 * scale + 1e-7,
                               err_msg=jax.tree_util.keystr(path))
  kernel_path = ("up1", "kernel")
  moved = np.abs(np.asarray(_leaf(state.params["generator"], kernel_path))
                 - np.asarray(_leaf(previous.ema_params["generator"], kernel_path)))
  assert moved.max() > 1e-4    # the check above has something to see
  kernel = lambda p: np.asarray(p["up1"]["kernel"])  # noqa: E731
  assert not np.allclose(kernel(state.ema_params["generator"]),
                         kernel(state.params["generator"]))
  # predict uses the EMA parameters.
  batch = make_batch(3)
  prediction = system.predict(state, batch)
  ema_output = system.generator.apply(
      {"params": state.ema_params["generator"],
       "batch_stats": state.batch_stats["generator"]},
      system.condition(batch), train=False)
  np.testing.assert_allclose(prediction, ema_output, atol=1e-6)


def test_ssim_is_reported_at_weight_zero_only_when_asked(pix2pix):
  """Issue 24: an SSIM that is not optimized costs 6-10 % of a pix2pix step
  on a TPU; it is computed only with loss.report_ssim, and the metrics are
  the recipe's declared names either way."""
  _, _, state = pix2pix
  batch = make_batch(4)
  for report in (False, True):
    system = base.get_system(gan_config(**{"loss.report_ssim": report}))
    assert ("g_ssim" in system.recipe.metric_names) is report
    _, metrics = fast_jit(system.train_step)(state, batch)
    assert set(metrics) == set(system.recipe.metric_names)
    assert ("g_ssim" in metrics) is report
  assert 0 < float(metrics["g_ssim"]) < 1


def test_eval_masking_ignores_padding(pix2pix):
  system, _, state = pix2pix
  real, padded = padded_batches(make_batch, 5)
  padded["s1"][3] = 1e6
  eval_step = fast_jit(system.eval_step)
  scores_real = system.finalize_eval(jax.device_get(eval_step(state, real)))
  sums = jax.device_get(eval_step(state, padded))
  assert float(sums["count"]) == 3.0
  scores_padded = system.finalize_eval(sums)
  assert set(scores_real) == {"psnr", "ssim", "sam"}
  for key in scores_real:
    assert np.isfinite(scores_real[key])
    np.testing.assert_allclose(scores_padded[key], scores_real[key], rtol=1e-5)
  # SAM in radians (RS-SPADE's unit): non-negative reflectances meet at
  # most at a right angle.
  assert 0 < scores_real["sam"] < np.pi / 2 and -1 <= scores_real["ssim"] <= 1


def test_panels(pix2pix):
  system, _, state = pix2pix
  batch = make_batch(2, batch=2)
  panels = system.panels(batch, np.asarray(system.predict(state, batch)))
  assert list(panels) == ["s1", "lulc", "dem", "pred RGB", "pred NRG",
                          "target RGB", "target NRG"]
  for panel in panels.values():
    image = panel.image
    assert image.shape == (2, 32, 32, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
  assert [panels[k].title for k in ("s1", "pred RGB", "target NRG")] == [
      "s1 VV, -25 to 0 dB", "pred s2 B4-B3-B2, target's stretch 2-98 %",
      "target s2 B8-B4-B3, stretch 2-98 %"]
  # LULC class 0 (water) in the Dynamic World colour #419BDF.
  index = np.argwhere(batch["lulc"] == 0)[0]
  np.testing.assert_allclose(panels["lulc"].image[tuple(index)],
                             np.array([0x41, 0x9B, 0xDF]) / 255, atol=1e-6)
  name, colour = panels["lulc"].legend[0]
  assert name == "water"
  np.testing.assert_allclose(colour, np.array([0x41, 0x9B, 0xDF]) / 255,
                             atol=1e-6)
  # A perfect prediction looks exactly like the target.
  same = system.panels(batch, batch["s2"])
  np.testing.assert_array_equal(same["pred RGB"].image,
                                same["target RGB"].image)
  # Padding examples of an evaluation batch (mask 0) are not drawn.
  padded = system.panels(dict(batch, mask=np.array([0.0, 1.0])), batch["s2"])
  for key, panel in padded.items():
    np.testing.assert_array_equal(panel.image, same[key].image[1:])


@pytest.mark.parametrize("overrides", [
    {"loss.adversarial": "lsgan"},
    {"loss.adversarial": "hinge", "dtype": "bfloat16",
     "model.generator": "rs_spade",
     "model.generator_kwargs": dict(ngf=2, num_upsamplings=2, hidden=8,
                                    embed_features=8, spectral_norm=False),
     "model.discriminator": "multiscale_patchgan",
     "model.discriminator_kwargs": dict(ndf=4, num_scales=2, num_layers=2,
                                        spectral_norm=True),
     "loss.feature_matching": 10.0, "loss.ssim": 1.0},
], ids=["lsgan_unet", "hinge_bf16_rs_spade_multiscale_fm"])
def test_loss_kinds_and_variants_step(overrides):
  system = base.get_system(gan_config(**overrides))
  state = host_state(system, make_batch(0))
  assert state.ema_params is None
  step = fast_jit(system.train_step)
  for i in range(2):
    state, metrics = step(state, make_batch(i))
    metrics = {k: float(v) for k, v in metrics.items()}
    assert metrics["loss_is_finite"] == 1.0
    assert all(np.isfinite(v) for v in metrics.values()), metrics
  assert ("g_fm" in metrics) == ("loss.feature_matching" in overrides)
  for leaf in jax.tree_util.tree_leaves(state.params):
    assert leaf.dtype == jnp.float32 and np.isfinite(np.asarray(leaf)).all()
  if overrides.get("model.generator") == "rs_spade":
    condition = system.condition(make_batch(0))
    assert sorted(condition) == ["dem", "lulc", "s1"]
    assert condition["lulc"].shape == (8, 32, 32, 9)
    prediction = jax.eval_shape(system.predict, state, make_batch(0))
    assert prediction.shape == (8, 32, 32, 4) and prediction.dtype == jnp.float32


def test_real_init_structure():
  system = base.get_system(gan_config(**{"ema_decay": 0.9}))
  batch = make_batch(0, batch=2)
  state = fast_jit(system.init)(KEY, batch)
  chex.assert_trees_all_equal_shapes_and_dtypes(state.params,
                                                host_state(system, batch).params)
  assert set(state.params) == {"generator", "discriminator"}
  assert int(state.step) == 0
  chex.assert_trees_all_equal(state.ema_params["generator"],
                              state.params["generator"])


@pytest.mark.parametrize("overrides, message", [
    ({"inputs": ("s1", "radar")}, "config.inputs"),
    ({"target": "rgb"}, "config.target"),
    ({"inputs": ("s2", "s1")}, "config.target"),
    ({"model.generator": "stylegan"}, "config.model.generator"),
    ({"model.discriminator": "nope"}, "config.model.discriminator"),
    ({"model.generator_kwargs": dict(ngf=4, bogus=1)}, "config.model.generator"),
    ({"loss.adversarial": "wgan"}, "config.loss.adversarial"),
    ({"ema_decay": 1.5}, "config.ema_decay"),
    ({"dtype": "float16"}, "config.dtype"),
])
def test_config_errors_name_the_key(overrides, message):
  with pytest.raises(ValueError, match=message.replace(".", r"\.")):
    PairedGAN(gan_config(**overrides))


def test_tile_size_and_missing_field_errors():
  system = PairedGAN(gan_config(**{"model.generator_kwargs": dict(ngf=4)}))
  with pytest.raises(ValueError, match=r"divisible by 256.*32x32"):
    jax.eval_shape(system.init, KEY, make_batch(0, batch=2))
  batch = make_batch(0, batch=2)
  del batch["dem"]
  with pytest.raises(KeyError, match="config.data.fields"):
    PairedGAN(gan_config()).check_batch(batch)
