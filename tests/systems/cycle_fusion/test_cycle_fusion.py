"""CycleFusion (residual cycle GAN): end to end on synthetic_tiny, sharded ==
single-device step, the paper's recipe, input channels per mode, the cycle at
the ideal solution, eval masking and baselines, and errors at start."""

from __future__ import annotations

import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import cycle_fusion as cycle_fusion_config
from rsjax import metrics
from rsjax.systems import base
from rsjax.systems.cycle_fusion import resize_branch
from rsjax.systems.cycle_fusion import scores as scores_lib
from rsjax.train import trainer
from rsjax.train import training_length
from system_checks import (KEY, SEEDS, assert_sharded_step_equals_single,
                           fast_jit, host_state, sgd_system)

TILE, BATCH = 32, 8
SCALARS = {"g_loss", "g_adv_forward", "g_adv_backward", "g_l1", "g_cloud_l1",
           "g_cycle", "d_forward_loss", "d_forward_real", "d_forward_fake",
           "d_backward_loss", "d_backward_real", "d_backward_fake",
           "loss_is_finite"}


def tiny_config(arg="hsts,cloudy", **overrides):
  config = cycle_fusion_config.get_config(arg)
  config.resolution_ratio = 4      # whole 32 px tiles (modis: S 50, 200 px)
  config.patch_size = None
  config.model.generator_kwargs = dict(ngf=2, num_blocks=1)
  config.model.discriminator_kwargs = dict(ndf=4, num_layers=2)
  config.epochs = None   # the paper's 150 epochs would disagree
  config.total_steps = 100
  for network in ("generator", "discriminator"):
    config.optimizer[network].lr = 3e-3
  config.update_from_flattened_dict(overrides)
  return config


def fusion_batch(seed=0, batch=BATCH, tile=TILE, mask=None):
  """Normalized fields where t2 = t1 outside changed blocks and the t2 SAR
  tells the changed blocks' reflectance."""
  rng = np.random.default_rng(seed)
  blocks = (batch, tile // 4, tile // 4)

  def up(x):
    return np.repeat(np.repeat(x, 4, 1), 4, 2)

  s2 = up(rng.uniform(-0.8, 0.4, blocks + (4,))).astype(np.float32)
  s1_t2 = up(rng.uniform(-1, 1, blocks + (2,))).astype(np.float32)
  changed = up(rng.random(blocks) < 0.3)[..., None]
  from_sar = np.tanh(np.concatenate([s1_t2, s1_t2[..., :1] - s1_t2[..., 1:],
                                     -s1_t2[..., :1]], -1))
  s2_t2 = np.where(changed, from_sar, s2).astype(np.float32)
  out = dict(s2=s2, s2_t2=s2_t2, s1_t2=s1_t2,
             cloud_mask=up(rng.integers(0, 3, blocks)).astype(np.uint8))
  if mask is not None:
    out["mask"] = np.asarray(mask, np.float32)
  return out


@pytest.fixture(scope="module")
def hsts_cloudy():
  """One single-device train step jit, shared by the tests of this module."""
  system = base.get_system(tiny_config())
  step = fast_jit(chex.assert_max_traces(system.train_step, n=1))
  return system, step, host_state(system, fusion_batch(0))


def test_sharded_step_equals_single_device_step(devices):
  """Data mesh of 8 and (data 4, fsdp 2), 5 seeds of params and batch."""
  system = sgd_system(tiny_config())
  example = fusion_batch(0)
  results = assert_sharded_step_equals_single(
      system, lambda seed: host_state(system, example, seed),
      lambda seed: fusion_batch(seed + 1), devices)
  for seed, (single_state, single_metrics) in zip(SEEDS, results):
    assert set(single_metrics) == SCALARS
    # Every network moved, and the clouds gave the masked term a value.
    state = host_state(system, example, seed)
    for name in state.params:
      before = jax.tree.leaves(state.params[name])
      after = jax.tree.leaves(single_state.params[name])
      assert any(not np.allclose(a, b) for a, b in zip(before, after)), name
    assert float(single_metrics["g_cloud_l1"]) > 0


def test_loss_is_the_papers_sum_and_steps_learn(hsts_cloudy, devices):
  system, step, state = hsts_cloudy
  state, history = jax.device_put(state, devices[0]), []  # the compiled step
  for i in range(6):
    state, metrics = step(state, jax.device_put(fusion_batch(10 + i % 2),
                                                devices[0]))
    history.append({k: float(v) for k, v in metrics.items()})
  for h in history:
    assert h["loss_is_finite"] == 1.0 and np.isfinite(list(h.values())).all()
    # Eq. 5-7 with the paper's weights (50, 100, 50).
    expected = (h["g_adv_forward"] + h["g_adv_backward"] + 50 * h["g_l1"]
                + 100 * h["g_cloud_l1"] + 50 * h["g_cycle"])
    assert h["g_loss"] == pytest.approx(expected, rel=1e-5)
  assert int(state.step) == 6
  assert np.mean([h["g_l1"] for h in history[-2:]]) < 0.9 * history[0]["g_l1"]
  assert history[-1]["g_cycle"] < history[0]["g_cycle"]


def test_recipe_pins():
  config = cycle_fusion_config.get_config("hsts")
  assert (config.loss.l1, config.loss.cloud_l1, config.loss.cycle) == (50, 100, 50)
  assert config.loss.adversarial == "lsgan"
  assert config.model.generator_kwargs.to_dict() == dict(ngf=64, num_blocks=6)
  assert config.model.discriminator == "patchgan"
  assert config.model.discriminator_sigmoid  # Fig. 3: "Conv + Sigmoid"
  assert not cycle_fusion_config.get_config("demo").model.discriminator_sigmoid
  assert (config.epochs, config.total_steps) == (150, None)   # Sec. III
  system = base.get_system(training_length.stand_in(config))
  # LSGAN discriminator loss with the paper's 1/2 (Eq. 8-9).
  real, fake = jnp.array([[0.5, 2.0]]), jnp.array([[0.25, -1.0]])
  assert float(system.discriminator_loss(real, fake)) == pytest.approx(
      0.5 * ((0.25 + 1.0) / 2 + (0.0625 + 1.0) / 2))
  # Adam(0.5, 0.999) at 2e-4, constant for half the steps, then linear to 0:
  # with a constant gradient each Adam update is -lr_t.
  for name in ("forward_generator", "backward_generator",
               "forward_discriminator", "backward_discriminator"):
    assert config.optimizer[name.split("_")[1]].b1 == 0.5
  tx = base.adam(config.optimizer.generator, total_steps=100)
  update = jax.jit(tx.update)
  params, opt_state, rates = jnp.zeros(()), tx.init(jnp.zeros(())), []
  for _ in range(100):
    delta, opt_state = update(jnp.ones(()), opt_state, params)
    rates.append(-float(delta))
  np.testing.assert_allclose(rates[:50], 2e-4, rtol=1e-3)
  np.testing.assert_allclose(rates[50:], 2e-4 * (1 - np.arange(50) / 50),
                             rtol=1e-3, atol=1e-9)


@pytest.mark.parametrize("mode,forward_in,backward_out", [
    ("hss", 2 + 3, 2), ("st", 3 + 3, 3), ("hsts,cloudy", 2 + 3 + 3, 2 + 3),
    ("hsts,rgbn", 2 + 4 + 4, 2 + 4)])
def test_each_mode_gets_its_input_channels(mode, forward_in, backward_out):
  system = base.get_system(tiny_config(mode))
  batch = fusion_batch(2, batch=2)
  shapes = jax.eval_shape(system.init, KEY, batch).params
  bands = forward_in - backward_out

  def channels(net, layer, axis):
    kernel = shapes[net][layer]
    return (kernel["conv"] if "conv" in kernel else kernel)["kernel"].shape[axis]

  assert channels("forward_generator", "encoder_0", 2) == forward_in
  assert channels("forward_generator", "to_image", 3) == bands
  assert channels("backward_generator", "encoder_0", 2) == bands
  assert channels("backward_generator", "to_image", 3) == backward_out
  # D_F judges X / X_f, D_B the forward generator's whole input.
  assert channels("forward_discriminator", "conv_0", 2) == bands
  assert channels("backward_discriminator", "conv_0", 2) == forward_in
  observed = system.inputs.observations(batch)
  parts = {"hss": ("sar", "lowres"), "st": ("t1", "lowres")}.get(
      mode, ("sar", "t1", "lowres"))
  assert tuple(observed) == parts
  bands_idx = list(system.output_bands)
  if "sar" in observed:
    np.testing.assert_array_equal(observed["sar"], batch["s1_t2"])
  if "t1" in observed:
    np.testing.assert_array_equal(observed["t1"], batch["s2"][..., bands_idx])
  clouds = batch["cloud_mask"] == 1 if "cloudy" in mode else None
  np.testing.assert_allclose(observed["lowres"], resize_branch.resize(
      batch["s2_t2"][..., bands_idx], 4, cloud_mask=clouds), atol=1e-6)


def test_cycle_of_the_ideal_fusion_is_the_input():
  """X_f = X and G_B(X_f) = (Y, Z) regenerate (Y, Z, X^) exactly (clouds too)."""
  system = base.get_system(tiny_config("hsts,cloudy"))
  batch = fusion_batch(3, batch=2)
  observed = system.inputs.observations(batch)
  target = batch["s2_t2"][..., :3]
  regenerated = jnp.concatenate([observed["sar"], observed["t1"]], -1)
  inputs = system.inputs
  cycled = inputs.cycle(target, regenerated, inputs.cloud_mask(batch))
  np.testing.assert_allclose(cycled, inputs.forward_input(observed), atol=1e-6)


def test_eval_masks_padding_and_scores_baselines(hsts_cloudy):
  system, _, state = hsts_cloudy
  eval_step = fast_jit(system.eval_step)
  real = fusion_batch(4, batch=4)
  doubled = {k: np.concatenate([v, v]) for k, v in real.items()}
  doubled["mask"] = np.ones(8, np.float32)
  padded = {k: np.concatenate([v, np.full_like(v, 7 if v.dtype == np.uint8
                                                else np.nan)])
            for k, v in real.items()}
  padded["mask"] = np.array([1, 1, 1, 1, 0, 0, 0, 0], np.float32)
  scores = system.finalize_eval(jax.device_get(eval_step(state, doubled)))
  masked = system.finalize_eval(jax.device_get(eval_step(state, padded)))
  assert set(scores) == set(masked)
  for key in scores:
    assert masked[key] == pytest.approx(scores[key], rel=1e-5, abs=1e-6), key
  names = ("sam", "ergas", "q", "psnr", "ssim")
  per_band = {f"{m}_{b}" for m in ("psnr", "ssim", "q") for b in ("B2", "B3", "B4")}
  baselines = {f"{p}_{m}" for p in ("lowres", "t1") for m in names}
  assert set(scores) == set(names) | per_band | baselines
  assert scores["ssim"] == pytest.approx(np.mean(
      [scores[f"ssim_{b}"] for b in ("B2", "B3", "B4")]), rel=1e-5)
  # The t1 image equals the target outside the changed blocks: it beats
  # the blurred, cloudy LR image, and scores are in their ranges.
  assert scores["t1_psnr"] > scores["lowres_psnr"]
  assert all(np.isfinite(v) for v in scores.values())
  assert 0 <= scores["sam"] <= 180 and scores["ergas"] > 0


def test_panels_show_the_real_examples_with_titles():
  system = base.get_system(tiny_config())
  batch = fusion_batch(5, batch=3, mask=[1, 1, 0])
  target = batch["s2_t2"][..., list(system.inputs.bands)]
  panels = system.panels(batch, target)
  assert [(k, p.title) for k, p in panels.items()] == [
      ("s1_t2", "s1_t2 VV, -25 to 0 dB"),
      ("s2 RGB", "s2 B4-B3-B2, target's stretch 2-98 %"),
      ("lowres RGB", "lowres s2_t2 B4-B3-B2, target's stretch 2-98 %"),
      ("pred RGB", "pred s2_t2 B4-B3-B2, target's stretch 2-98 %"),
      ("target RGB", "target s2_t2 B4-B3-B2, stretch 2-98 %")]
  for panel in panels.values():
    assert panel.image.shape == (2, TILE, TILE, 3)   # no padding row
  np.testing.assert_array_equal(panels["pred RGB"].image,
                                panels["target RGB"].image)


def test_global_skip_adds_the_upsampled_low_res_image():
  """global_skip = 'low_res': X_f = clip(X^ + G_F(.), -1, 1), starting at X^
  (zero last layer), in predict and in the loss; None: G_F(.) unchanged."""
  assert cycle_fusion_config.get_config("hsts").model.global_skip is None
  assert cycle_fusion_config.get_config("demo").model.global_skip == "low_res"
  batch = fusion_batch(7, batch=2)
  plain = base.get_system(tiny_config())
  skip = base.get_system(tiny_config(**{"model.global_skip": "low_res"}))
  state = fast_jit(skip.init)(KEY, batch)
  last = state.params["forward_generator"]["to_image"]
  assert all(not np.any(v) for v in jax.tree.leaves(last))
  low = np.asarray(skip.inputs.observations(batch)["lowres"])
  predict = fast_jit(skip.predict)
  np.testing.assert_allclose(predict(state, batch), np.clip(low, -1, 1),
                             atol=1e-6)
  # The generator loss sees the same X_f (its L1 before the update).
  _, step_metrics = fast_jit(skip.train_step)(state, batch)
  target = batch["s2_t2"][..., :3]
  assert float(step_metrics["g_l1"]) == pytest.approx(
      np.abs(np.clip(low, -1, 1) - target).mean(), rel=1e-5)
  # Trained (random) weights: the skip adds X^ to the same generator output.
  state = host_state(skip, batch)
  g_params = state.params["forward_generator"]
  g_params["to_image"] = jax.tree.map(lambda v: 500 * v, g_params["to_image"])
  raw = skip.forward_generator.apply(
      {"params": state.params["forward_generator"],
       "batch_stats": state.batch_stats["forward_generator"]},
      skip.inputs.forward_input(skip.inputs.observations(batch)), train=False)
  assert np.abs(raw).max() > 0.1
  np.testing.assert_allclose(predict(state, batch),
                             np.clip(low + raw, -1, 1), atol=1e-5)
  np.testing.assert_allclose(fast_jit(plain.predict)(state, batch), raw,
                             atol=1e-5)


def test_fusion_scores_per_band_match_the_metrics():
  rng = np.random.default_rng(6)
  pred = rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  target = np.clip(pred + rng.normal(0, 0.2, pred.shape), -1, 1).astype(np.float32)
  scores = scores_lib.per_image_scores(pred, target, ratio=4,
                                          band_names=("B2", "B3", "B4"))
  p, t = (pred + 1) / 2, (target + 1) / 2
  for i, band in enumerate(("B2", "B3", "B4")):
    np.testing.assert_allclose(scores[f"psnr_{band}"], metrics.psnr(
        p[..., i:i + 1], t[..., i:i + 1], data_range=1.0), rtol=1e-5)
    np.testing.assert_allclose(scores[f"q_{band}"], metrics.q_index(
        p[..., i:i + 1], t[..., i:i + 1]), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(scores["ssim"], metrics.ssim(p, t, data_range=1.0),
                             rtol=1e-5)
  np.testing.assert_allclose(scores["ergas"], metrics.ergas(p, t, ratio=0.25),
                             rtol=1e-5)
  np.testing.assert_allclose(scores["sam"], metrics.sam(p, t, degrees=True),
                             rtol=1e-5)


@pytest.mark.parametrize("overrides,error,message", [
    ({"mode": "fusion"}, ValueError, "config.mode.*hss, st, hsts"),
    ({"low_res": "real"}, ValueError, "config.low_res"),
    ({"resolution_ratio": 0}, ValueError, "config.resolution_ratio"),
    ({"bands": (0, 5)}, ValueError, "config.bands"),
    ({"sar_field": "s3"}, ValueError, "config.sar_field"),
    ({"data.fields": ("s2_t2", "s2")}, ValueError,
     r"config.data.fields.*\['s1_t2', 'cloud_mask'\]"),
    ({"loss.adversarial": "wgan"}, ValueError, "config.loss.adversarial"),
    ({"ema_decay": 0.9}, ValueError, "config.ema_decay"),
    ({"model.global_skip": "t1"}, ValueError,
     "config.model.global_skip.*None, low_res"),
])
def test_config_errors_name_the_key(overrides, error, message):
  with pytest.raises(error, match=message):
    base.get_system(tiny_config(**overrides))


@pytest.mark.parametrize("change,error,message", [
    (lambda b: b.pop("s1_t2"), KeyError, "no field 's1_t2'"),
    (lambda b: b.update(cloud_mask=b["cloud_mask"][:, :16]), ValueError,
     r"cloud_mask_field 'cloud_mask': expected shape \(2, 32, 32\)"),
    (lambda b: b.update({k: v[:, :30, :30] for k, v in b.items()}), ValueError,
     "resolution_ratio=4 does not divide the tile size 30x30"),
])
def test_bad_batches_fail_at_init(change, error, message):
  system = base.get_system(tiny_config())
  batch = fusion_batch(5, batch=2)
  change(batch)
  with pytest.raises(error, match=message):
    jax.eval_shape(system.init, KEY, batch)


def _tiny_run_config(data_dir, steps=2):
  config = tiny_config("hsts,cloudy")
  config.data.data_dir = data_dir
  config.data.name = "rs_multisource/synthetic_tiny"
  config.data.batch_size = config.data.eval_batch_size = 8
  config.epochs = None   # the paper's 150 epochs would disagree
  config.total_steps = steps
  config.log_every = config.checkpoint_every = 1
  config.eval_every = steps
  config.keep_checkpoints = 10
  config.num_eval_batches = 1
  return config


def test_end_to_end_resume_on_synthetic_tiny(tmp_path, synthetic_tiny, devices):
  config = _tiny_run_config(synthetic_tiny)
  first = trainer.train_and_evaluate(config, str(tmp_path), stop_after=1)
  assert first == {}
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]
  scores = trainer.train_and_evaluate(config, str(tmp_path))
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  assert {"sam", "ergas", "q", "psnr", "ssim", "psnr_B4", "lowres_psnr",
          "t1_psnr"} <= set(scores)
  assert all(np.isfinite(v) for v in scores.values())
  lines = [json.loads(l) for l in
           (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [l["step"] for l in lines if "train/g_cycle" in l] == [1, 2]
  assert any("validation/ergas" in l for l in lines)
  assert (tmp_path / "samples" / "step_000002.png").exists()
  # A resolution ratio the 64-pixel tiles cannot take fails before training.
  config.resolution_ratio = 3
  with pytest.raises(ValueError, match="resolution_ratio=3 does not divide"):
    trainer.train_and_evaluate(config, str(tmp_path / "ratio"))


def test_a_length_in_epochs_is_derived_before_the_networks_are_built():
  """The paper's 150 epochs leave total_steps to the trainer; building the
  system from the bare config says how to get one instead of failing on
  None."""
  config = cycle_fusion_config.get_config("hsts")
  with pytest.raises(ValueError, match=r"config.epochs=150 .*stand_in"):
    base.get_system(config)
  assert training_length.stand_in(config).total_steps == 1
