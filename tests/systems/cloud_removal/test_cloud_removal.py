"""CloudRemoval (two GANs + DRIBs): the paper's recipe, the sequential schedule,
sharded == single-device step, synthetic clouds with exact masks, masked
PSNRs against numpy, panels, config variants and bad-input errors."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import cloud_removal as cr_config
from rsjax.nn import layers
from rsjax.systems import base
from rsjax.systems.cloud_removal import clouds as clouds_lib
from rsjax.systems.cloud_removal import panels as panels_lib
from rsjax.systems.cloud_removal import scores as scores_lib
from rsjax.systems.cloud_removal.system import CloudRemoval
from system_checks import (KEY, assert_sharded_step_equals_single, fast_jit,
                           host_state, make_batch, sgd_system)

STAGE1_STEPS = 2
NETWORKS = ("stage1_generator", "stage1_discriminator", "stage2_generator",
            "stage2_discriminator")


def tiny_config(arg: str = "", **overrides):
  """Paper recipe, tiniest widths: 1 DRIB of ngf 2, Table 1 PatchGANs of ndf 4,
  synthetic training clouds, the batch's cloud masks for evaluation."""
  config = cr_config.get_config(arg)
  config.total_steps = 2 * STAGE1_STEPS
  config.data.batch_size = config.data.eval_batch_size = 8
  for stage in ("stage1", "stage2"):
    if config.model[stage].generator == "drib":
      config.model[stage].generator_kwargs = dict(ngf=2, num_blocks=1)
    elif config.model[stage].generator == "unet":
      config.model[stage].generator_kwargs = dict(ngf=2, num_downs=5)
    config.model[stage].discriminator_kwargs = dict(ndf=4)
  config.eval_clouds = "dataset"
  config.update_from_flattened_dict(overrides)
  if "dataset" in (config.clouds, config.eval_clouds):
    config.data.fields = tuple(dict.fromkeys(
        (*config.data.fields, "s2_cloudy", "cloud_mask")))
  return config


def cloudy_batch(seed: int = 0, batch: int = 8, tile: int = 32, mask=None):
  """make_batch's learnable fields plus a blocky cloud mask (1 cloud,
  2 shadow) and the cloudy image (bright clouds, dark shadows)."""
  out = make_batch(seed, batch, tile, mask)
  rng = np.random.default_rng(seed + 100)
  blocks = rng.choice(3, (batch, tile // 4, tile // 4), p=[0.6, 0.3, 0.1])
  cloud_mask = np.repeat(np.repeat(blocks, 4, 1), 4, 2).astype(np.uint8)
  cloud_mask[0] = 0                      # one image without clouds
  s2 = out["s2"]
  cloudy = np.where(cloud_mask[..., None] == 1, np.float32(0.8), s2)
  cloudy = np.where(cloud_mask[..., None] == 2, s2 * 0.5 - 0.5, cloudy)
  out.update(s2_cloudy=cloudy.astype(np.float32), cloud_mask=cloud_mask)
  return out


@pytest.fixture(scope="module")
def sequential():
  """The default (sequential) system and one single-device jitted step
  shared by this module's tests (at most one trace)."""
  system = base.get_system(tiny_config())
  step = fast_jit(chex.assert_max_traces(system.train_step, n=1))
  return system, step, host_state(system, cloudy_batch(0))


@pytest.fixture(scope="module")
def predict_stages(sequential):
  return fast_jit(sequential[0].predict_stages)


def _changed(a, b) -> bool:
  return any(not np.array_equal(np.asarray(x), np.asarray(y))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_sequential_schedule_trains_stage1_then_stage2(sequential):
  system, step, state = sequential
  assert system.stage1_steps == STAGE1_STEPS
  assert set(state.params) == set(NETWORKS) and state.ema_params is None
  history = []
  for i in range(2 * STAGE1_STEPS):
    previous = state
    state, metrics = step(state, cloudy_batch(10 + i))
    metrics = {k: float(v) for k, v in metrics.items()}
    history.append(metrics)
    assert metrics["loss_is_finite"] == 1.0
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    first = i < STAGE1_STEPS
    assert metrics["stage1_active"] == float(first)
    assert metrics["stage2_active"] == float(not first)
    for net in NETWORKS:
      trained = net.startswith("stage1") == first
      for part in ("params", "opt_state"):
        moved = _changed(getattr(previous, part)[net], getattr(state, part)[net])
        assert moved == trained, (i, net, part)
    # A frozen stage 1 keeps its BatchNorm averages (inference mode).
    assert _changed(previous.batch_stats["stage1_generator"],
                    state.batch_stats["stage1_generator"]) == first
  assert int(state.step) == 2 * STAGE1_STEPS
  assert set(history[0]) == {"cloud_fraction", "loss_is_finite"} | {
      f"{stage}_{k}" for stage in ("stage1", "stage2")
      for k in ("active", *system.recipes[stage].metric_names[:-1])}
  g_losses = {h["stage1_g_loss"] for h in history[:STAGE1_STEPS]}
  # cGAN + 100 L1 + 100 (1 - SSIM), Eq. 5.
  for h in history:
    stage = "stage1" if h["stage1_active"] else "stage2"
    np.testing.assert_allclose(
        h[f"{stage}_g_loss"],
        h[f"{stage}_g_adv"] + 100 * h[f"{stage}_g_l1"] + 100 * h[f"{stage}_g_ssim"],
        rtol=1e-5)
  assert all(v > 0 for v in g_losses)
  assert 0.1 < history[-1]["cloud_fraction"] < 0.6


def test_sharded_step_equals_single_device_step(devices):
  """Phase 2 (frozen stage 1 feeding stage 2, clouds made on device)."""
  system = sgd_system(tiny_config())
  example = cloudy_batch(0)
  for _, single_metrics in assert_sharded_step_equals_single(
      system, lambda seed: host_state(system, example, seed).replace(
          step=jnp.asarray(STAGE1_STEPS, jnp.int32)),
      lambda seed: cloudy_batch(seed + 1), devices):
    assert float(single_metrics["stage2_active"]) == 1.0


def test_paper_recipe():
  """Eq. 5 weights, Adam(2e-4, 0.5, 0.999), dropout 0.5, N(0, 0.02) init,
  DRIB generators of about half U-Net's parameters (Sec. 2.1)."""
  config = cr_config.get_config()
  system = CloudRemoval(config)
  for stage in ("stage1", "stage2"):
    recipe = system.recipes[stage]
    assert recipe.adversarial == "vanilla"
    assert dict(recipe.weights) == {"l1": 100.0, "ssim": 100.0,
                                    "feature_matching": 0.0}
    assert type(recipe.generator).__name__ == "DRIBGenerator"
    assert recipe.generator.dropout_rate == 0.5
    assert recipe.generator.ngf == 64 and recipe.generator.num_blocks == 8
    assert type(recipe.discriminator).__name__ == "PatchGAN78"   # Table 1
    assert recipe.discriminator.ndf == 64 and recipe.discriminator.norm == "batch"
  assert config.data.batch_size == 32 and config.schedule == "sequential"
  assert tuple(config.sar_bands) == (0,) and system.output_bands == (0, 1, 2)
  # The optimizers are Adam(2e-4, b1=0.5, b2=0.999), constant rate.
  grads = [{"w": jnp.asarray(g, jnp.float32)} for g in ([1.0, -2.0], [0.5, 3.0],
                                                         [-1.0, 0.25])]
  reference = optax.adam(2e-4, b1=0.5, b2=0.999)
  for name in NETWORKS:
    params = {"w": jnp.zeros(2)}
    ours, theirs = system.tx[name].init(params), reference.init(params)
    for g in grads:
      u_ours, ours = system.tx[name].update(g, ours, params)
      u_theirs, theirs = reference.update(g, theirs, params)
      np.testing.assert_allclose(u_ours["w"], u_theirs["w"], rtol=1e-6)
  # Parameter counts at paper size (abstract: no compute).
  batch = jax.ShapeDtypeStruct((2, 256, 256, 4), jnp.float32)
  shapes = {"s2": batch, "s1": jax.ShapeDtypeStruct((2, 256, 256, 2), jnp.float32)}
  drib = jax.eval_shape(system.init, KEY, shapes).params
  unet = jax.eval_shape(CloudRemoval(cr_config.get_config("arch=unet-unet")).init,
                        KEY, shapes).params
  ratio = (layers.count_params(drib["stage2_generator"])
           / layers.count_params(unet["stage2_generator"]))
  assert 0.4 < ratio < 0.6, ratio
  # Input channels: G1 sees VV; G2 the cloudy bands + the translation (6);
  # D1 (1 + 3) and D2 (6 + 3) channels (Sec. 3.1).
  assert drib["stage1_generator"]["encoder_0"]["kernel"].shape[2] == 1
  assert drib["stage2_generator"]["encoder_0"]["kernel"].shape[2] == 6
  assert drib["stage1_discriminator"]["conv_0"]["kernel"].shape[2] == 4
  assert drib["stage2_discriminator"]["conv_0"]["kernel"].shape[2] == 9


def test_masked_psnrs_count_only_their_pixels(sequential, predict_stages):
  """eval_step against numpy on a batch whose cloudy and clear pixels have
  very different errors; the padding row (garbage) does not count."""
  system, _, state = sequential
  batch = cloudy_batch(5, mask=[1, 1, 1, 1, 1, 1, 1, 0])
  batch["s2"][7] = np.nan
  batch["s1"][7] = 1e6
  sums = jax.device_get(fast_jit(system.eval_step)(state, batch))
  scores = system.finalize_eval(sums)
  assert set(scores_lib.SCORES) <= set(scores)
  stages = predict_stages(state, batch)
  pred = (np.asarray(stages["stage2"], np.float64)[:7] + 1) / 2
  stage1 = (np.asarray(stages["stage1"], np.float64)[:7] + 1) / 2
  target = (batch["s2"][:7, ..., :3].astype(np.float64) + 1) / 2
  cloudy = batch["cloud_mask"][:7] > 0

  def psnr(a, b, where):
    return [10 * np.log10(1 / np.mean(((x - y)[m]) ** 2))
            for x, y, m in zip(a, b, where) if m.any()]

  np.testing.assert_allclose(scores["psnr_cloudy"],
                             np.mean(psnr(pred, target, cloudy)), rtol=1e-4)
  np.testing.assert_allclose(scores["psnr_clear"],
                             np.mean(psnr(pred, target, ~cloudy)), rtol=1e-4)
  everywhere = np.ones_like(cloudy)
  np.testing.assert_allclose(scores["psnr"],
                             np.mean(psnr(pred, target, everywhere)), rtol=1e-4)
  np.testing.assert_allclose(scores["stage1_psnr"],
                             np.mean(psnr(stage1, target, everywhere)), rtol=1e-4)
  assert float(sums["count"]) == 7 and float(sums["cloudy_count"]) == 6
  np.testing.assert_allclose(scores["cloud_fraction"], cloudy.mean(), rtol=1e-5)
  assert -1 <= scores["ssim"] <= 1 and -1 <= scores["stage1_ssim"] <= 1


def test_score_sums_on_a_hand_made_case():
  """Output exact in the clear pixels, off by 0.2 (in [0, 1]) in the cloudy
  ones: clear PSNR inf, cloudy PSNR 20 log10(1 / 0.2)."""
  target = np.zeros((2, 16, 16, 3), np.float32)
  corrupted = np.zeros((2, 16, 16), np.float32)
  corrupted[:, :8] = 1
  prediction = target + 0.4 * corrupted[..., None]        # [-1, 1] units
  sums = scores_lib.score_sums(prediction, target, corrupted, None)
  scores = scores_lib.finalize_scores(jax.device_get(sums))
  np.testing.assert_allclose(scores["psnr_cloudy"], 20 * np.log10(5), rtol=1e-5)
  assert scores["psnr_clear"] == np.inf
  np.testing.assert_allclose(scores["psnr"], 20 * np.log10(5) + 10 * np.log10(2),
                             rtol=1e-5)
  assert np.isnan(scores["stage1_psnr"])


def test_synthetic_clouds_exact_masks_and_deterministic_eval():
  params = clouds_lib.synthetic_params({"coverage": (0.2, 0.5)})
  clear = jnp.asarray(cloudy_batch(3, batch=4)["s2"][..., :3])
  cloudy, mask = jax.jit(lambda k, x: clouds_lib.random_clouds(k, x, params))(
      jax.random.key(1), clear)
  cloudy, mask = np.asarray(cloudy), np.asarray(mask, bool)
  np.testing.assert_array_equal(cloudy[~mask], np.asarray(clear)[~mask])
  assert (np.abs(cloudy - np.asarray(clear)).max(-1)[mask] > 0).all()
  fractions = mask.mean(axis=(1, 2))
  assert (fractions > 0.19).all() and (fractions < 0.51).all()
  assert len(set(np.round(fractions, 4))) == 4      # one coverage per image
  # Evaluation clouds depend on each image only: any order, any batch.
  fixed = jax.jit(lambda x: clouds_lib.fixed_clouds(x, params))
  a_cloudy, a_mask = fixed(clear)
  b_cloudy, b_mask = fixed(clear[::-1])
  np.testing.assert_array_equal(np.asarray(a_mask), np.asarray(b_mask)[::-1])
  np.testing.assert_allclose(np.asarray(a_cloudy), np.asarray(b_cloudy)[::-1],
                             atol=1e-6)
  c_cloudy, _ = fixed(clear[:2])
  np.testing.assert_allclose(np.asarray(a_cloudy)[:2], np.asarray(c_cloudy),
                             atol=1e-6)
  assert not np.array_equal(np.asarray(a_mask)[0], np.asarray(a_mask)[1])


def test_random_crop_takes_one_window_of_every_tile_field():
  rows = np.arange(32, dtype=np.float32)[:, None] * 100 + np.arange(32)
  batch = {"s2": np.broadcast_to(rows[None, ..., None], (2, 32, 32, 4)),
           "cloud_mask": np.broadcast_to(rows[None], (2, 32, 32)).astype(np.int32),
           "mask": np.ones(2, np.float32)}
  crops = [clouds_lib.random_crop(batch, 16, jax.random.key(i)) for i in range(4)]
  for crop in crops:
    assert crop["s2"].shape == (2, 16, 16, 4) and crop["mask"].shape == (2,)
    np.testing.assert_array_equal(crop["s2"][..., 0], crop["cloud_mask"])
    corner = float(crop["s2"][0, 0, 0, 0])
    top, left = divmod(int(corner), 100)
    np.testing.assert_array_equal(crop["s2"][0, ..., 0],
                                  rows[top:top + 16, left:left + 16])
  assert len({float(c["s2"][0, 0, 0, 0]) for c in crops}) > 1


def test_panels(sequential, predict_stages):
  system, _, state = sequential
  batch = cloudy_batch(2)
  stages = jax.device_get(predict_stages(state, batch))
  panels = system.panels(batch, stages["stage2"])
  assert list(panels) == ["SAR VV", "cloudy", "cloud mask", "output", "target"]
  panels = system.panels(batch, stages)
  assert list(panels) == ["SAR VV", "cloudy", "cloud mask", "stage 1", "output",
                          "target"]
  for panel in panels.values():
    image = panel.image
    assert image.shape == (8, 32, 32, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
  assert panels["SAR VV"].title == "SAR VV, -25 to 0 dB"
  assert panels["output"].title == "output s2 B4-B3-B2, target's stretch 2-98 %"
  # A perfect output looks exactly like the target (RGB = B4, B3, B2).
  same = system.panels(batch, dict(stages, stage2=batch["s2"][..., :3]))
  np.testing.assert_array_equal(same["output"].image, same["target"].image)
  assert panels_lib.display_bands(system.bands) == (2, 1, 0)


@pytest.mark.parametrize("arg", [
    "arch=unet-unet", "arch=unet-drib", "arch=drib-unet", "arch=none-drib",
    "loss=l1-l1", "loss=l1-ssim+l1", "loss=ssim-ssim", "loss=ssim+l1-l1",
    "joint,dataset", "demo", "arch=unet-drib,loss=ssim-ssim,demo"])
def test_config_variants_build(arg):
  config = cr_config.get_config(arg)
  system = CloudRemoval(config)
  stage1, stage2 = cr_config.parse_arg(arg)["arch"]
  assert system.has_stage1 == (stage1 != "none")
  assert config.model.stage2.generator == stage2
  loss1, loss2 = cr_config.parse_arg(arg)["loss"]
  for stage, loss in (("stage1", loss1), ("stage2", loss2)):
    if stage in system.recipes:
      w = system.recipes[stage].weights
      assert (w["l1"], w["ssim"]) == cr_config.LOSSES[loss]
  if "dataset" in arg:
    assert {"s2_cloudy", "cloud_mask"} <= set(config.data.fields)
  assert system.predict_fields == ("s1", "s2_cloudy")


def test_joint_and_no_translation_steps():
  """'joint' steps hold all four networks and both stages' metrics; without
  stage 1, G2 reads the cloudy bands and the SAR (3 + 1 channels)."""
  for arg, networks in (("joint", NETWORKS), ("arch=none-drib", NETWORKS[2:])):
    system = base.get_system(tiny_config(arg))
    batch = cloudy_batch(0)
    state = jax.eval_shape(system.init, KEY, batch)
    assert set(state.params) == set(networks)
    new_state, metrics = jax.eval_shape(system.train_step, state, batch)
    chex.assert_trees_all_equal_shapes_and_dtypes(new_state.params, state.params)
    stages = ("stage1", "stage2") if len(networks) == 4 else ("stage2",)
    expected = {"cloud_fraction", "loss_is_finite"}
    for stage in stages:
      expected |= {f"{stage}_active"} | {
          f"{stage}_{k}" for k in system.recipes[stage].metric_names
          if k != "loss_is_finite"}
    assert set(metrics) == expected
    g2 = state.params["stage2_generator"]["encoder_0"]["kernel"]
    assert g2.shape[2] == (6 if len(networks) == 4 else 4)


@pytest.mark.parametrize("overrides, error, message", [
    ({"clouds": "fog"}, ValueError, r"config\.clouds"),
    ({"eval_clouds": "fog"}, ValueError, r"config\.eval_clouds"),
    ({"schedule": "alternate"}, ValueError, r"config\.schedule"),
    ({"stage1_fraction": 1.0}, ValueError, r"config\.stage1_fraction"),
    ({"optical_bands": (0, 4)}, ValueError, r"config\.optical_bands"),
    ({"sar_bands": ()}, ValueError, r"config\.sar_bands"),
    ({"model.stage1.generator": "gan"}, ValueError,
     r"config\.model\.stage1\.generator"),
    ({"loss.stage2.adversarial": "wgan"}, ValueError,
     r"config\.loss\.stage2\.adversarial"),
    ({"synthetic_clouds.coverage": (0.5, 0.2)}, ValueError,
     r"config\.synthetic_clouds\.coverage"),
    ({"ema_decay": 0.9}, ValueError, r"config\.ema_decay"),
    ({"train_crop": 36}, ValueError, r"config\.train_crop = 36"),
])
def test_config_errors_name_the_key(overrides, error, message):
  with pytest.raises(error, match=message):
    CloudRemoval(tiny_config(**overrides))


def test_bad_batches_fail_at_init():
  system = CloudRemoval(tiny_config())
  init = lambda batch: jax.eval_shape(system.init, KEY, batch)  # noqa: E731
  batch = cloudy_batch(0, batch=2)
  del batch["cloud_mask"]
  with pytest.raises(KeyError, match=r"'cloud_mask'.*config\.data\.fields"):
    init(batch)
  batch = cloudy_batch(0, batch=2)
  batch["cloud_mask"] = batch["cloud_mask"][:, :16]
  with pytest.raises(ValueError, match=r"'cloud_mask': expected shape \(2, 32, 32\)"):
    init(batch)
  cropping = CloudRemoval(tiny_config(train_crop=48))
  with pytest.raises(ValueError, match=r"train_crop = 48 is larger"):
    jax.eval_shape(cropping.init, KEY, cloudy_batch(0, batch=2))
  with pytest.raises(ValueError, match=r"divisible by 8, got 36x36"):
    init(cloudy_batch(0, batch=2, tile=36))
  unet = CloudRemoval(tiny_config("arch=unet-drib"))
  with pytest.raises(ValueError, match=r"divisible by 32, got 40x40"):
    jax.eval_shape(unet.init, KEY, cloudy_batch(0, batch=2, tile=40))
  with pytest.raises(ValueError, match="configs/cloud_removal.py: unknown variant"):
    cr_config.get_config("clouds=thin")
  with pytest.raises(ValueError, match=r"bad arch='drib'"):
    cr_config.get_config("arch=drib")


def test_predict_reads_the_batch_cloudy_image(sequential, predict_stages):
  """Inference gives `s2_cloudy` (what a user has): predict removes those
  clouds; without it, predict uses the evaluation clouds over `s2`."""
  system, _, state = sequential
  batch = cloudy_batch(7)
  predict = fast_jit(system.predict)
  with_cloudy = np.asarray(predict(state, batch))
  expected = predict_stages(state, batch)["stage2"]   # eval clouds = dataset
  np.testing.assert_allclose(with_cloudy, expected, rtol=1e-5, atol=1e-6)
  clear = dict(batch)
  clear["s2_cloudy"] = batch["s2"]
  assert not np.allclose(np.asarray(predict(state, clear)), with_cloudy)
