"""CSEBGAN system: recipe pins, sharded == single-device step, conductor
gradients, ablations that really change the step, diverse generation and
class editing, eval masking, frozen networks from files, clear errors."""

from __future__ import annotations

import logging

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import csebgan as csebgan_config
from rsjax.systems import base
from rsjax.systems.csebgan.system import CSEBGAN
from system_checks import (KEY, abstract_state,
                           assert_sharded_step_equals_single,
                           assert_trees_close, fast_jit, make_batch,
                           padded_batches)

CLASSES = 9


def tiny_config(arg: str = "full", **overrides):
  """Smallest CSEBGAN for 32-pixel tiles (same sizes in every test)."""
  config = csebgan_config.get_config(arg)
  config.model.generator_kwargs.update(dict(
      ngf=2, num_upsamplings=1, embed_dim=4, mlp_hidden=4, spectral_norm=False))
  config.model.discriminator_kwargs.update(dict(ndf=4, num_layers=2,
                                                spectral_norm=False))
  config.model.segmenter_kwargs = dict(base_features=4, channel_multipliers=(1, 2))
  config.total_steps = 100
  config.update_from_flattened_dict(overrides)
  return config


def cseb_batch(seed: int = 0, batch: int = 8, mask=None):
  out = make_batch(seed, batch=batch, tile=32, mask=mask)
  return {k: out[k] for k in ("s2", "lulc", "valid", "mask") if k in out}


def filled_state(system, batch, seed: int = 0) -> base.State:
  """`system.init`'s structure filled by numpy (no compile of init)."""
  rng = np.random.default_rng(seed)
  abstract = abstract_state(system, batch)

  def fill(path, leaf):
    name = str(getattr(path[-1], "key", path[-1]))
    if name in ("scale", "var", "sigma"):
      return jnp.ones(leaf.shape, leaf.dtype)
    if name in ("kernel", "shift", "u"):
      fan_in = max(int(np.prod(leaf.shape[:-1])), 1) if name == "kernel" else 1
      return jnp.asarray(rng.normal(0, 1 / np.sqrt(fan_in), leaf.shape),
                         leaf.dtype)
    return jnp.zeros(leaf.shape, leaf.dtype)

  params = jax.tree_util.tree_map_with_path(fill, abstract.params)
  tx = system.tx if isinstance(system.tx, dict) else {"segmenter": system.tx}
  return base.State(
      step=jnp.zeros((), jnp.int32), rng=KEY, params=params,
      batch_stats=jax.tree_util.tree_map_with_path(fill, abstract.batch_stats),
      opt_state={n: t.init(params[n]) for n, t in tx.items()})


def with_sgd(system):
  """Plain SGD instead of Adam: Adam's first step is lr * sign(g), which
  turns round-off gradients (e.g. of conv biases that a normalization
  cancels) into full-size steps; comparisons of two steps need SGD."""
  system.tx = {name: optax.sgd(0.1) for name in system.tx}
  return system


@pytest.fixture(scope="module")
def cseb():
  """The full method (SGD), its single-device step (traced once), a state."""
  system = with_sgd(base.get_system(tiny_config()))
  step = fast_jit(chex.assert_max_traces(system.train_step, n=1))
  return system, step, filled_state(system, cseb_batch(0))


def test_recipe_pins():
  config = csebgan_config.get_config()
  assert config.loss.adversarial == "hinge"
  assert (config.loss.feature_matching, config.loss.perceptual,
          config.loss.conductor) == (10.0, 10.0, 1.0)
  rates = {n: config.optimizer[n].lr
           for n in ("generator", "discriminator", "conductor")}
  assert rates == {"generator": 1e-4, "discriminator": 4e-4, "conductor": 1e-4}
  system = CSEBGAN(tiny_config(total_steps=8))
  assert system.weights == {"feature_matching": 10.0, "perceptual": 10.0,
                            "conductor": 1.0}
  # Adam(b1=0, b2=0.9): update_t = -lr g_t / sqrt(v_t / (1 - 0.9^t)),
  # v_t = 0.9 v_{t-1} + 0.1 g_t^2; lr constant for 4 of 8 steps, then linear
  # decay to 0 (lr at step 6 is half).
  grads = [np.array([0.3, -2.0]), np.array([-1.0, 0.5])] + [
      np.array([1.0, 1.0])] * 5
  for name, lr in rates.items():
    tx = system.tx[name]
    opt, v = tx.init(jnp.zeros(2)), 0.0
    for t, g in enumerate(grads, start=1):
      update, opt = tx.update(jnp.asarray(g, jnp.float32), opt)
      v = 0.9 * v + 0.1 * g**2
      rate = lr * (1.0 if t <= 5 else 1.0 - (t - 5) / 4)
      np.testing.assert_allclose(update, -rate * g / (np.sqrt(v / (1 - 0.9**t))
                                                      + 1e-8), rtol=1e-4)


def test_sharded_step_equals_single_device_step(cseb, devices):
  """Data mesh of 8 and (data 4, fsdp 2), 5 seeds of params and batch; the
  single-device step is the module's (default device, traced once)."""
  system, step, _ = cseb
  example = cseb_batch(0)
  assert_sharded_step_equals_single(
      system, lambda seed: filled_state(system, example, seed),
      lambda seed: cseb_batch(seed + 1), devices, single_step=step)


def test_steps_update_every_network(cseb):
  system, step, state = cseb
  new_state, metrics = step(state, cseb_batch(2))
  metrics = {k: float(v) for k, v in metrics.items()}
  assert set(metrics) == {"g_loss", "g_adv", "g_fm", "g_perceptual_on", "c_fake",
                          "c_real", "c_loss", "d_loss", "d_real", "d_fake",
                          "loss_is_finite"}
  assert metrics["loss_is_finite"] == 1.0 and metrics["g_perceptual_on"] == 0.0
  assert all(np.isfinite(v) for v in metrics.values()), metrics
  np.testing.assert_allclose(
      metrics["g_loss"], metrics["g_adv"] + 10 * metrics["g_fm"]
      + metrics["c_fake"], rtol=1e-5)
  for net in ("generator", "discriminator", "conductor"):
    moved = jax.tree.map(lambda a, b: not np.allclose(a, b),
                         state.params[net], new_state.params[net])
    assert any(jax.tree.leaves(moved)), net


def test_conductor_fake_term_reaches_generator_real_term_does_not(cseb):
  """d L_c^fake / d G != 0; d L_c^real / d G == 0 but d L_c^real / d C != 0."""
  system, _, state = cseb
  batch = cseb_batch(3)
  mask, labels = system.mask_input(batch), system.labels(batch)
  real = jnp.asarray(batch["s2"])
  noise = system.noise(KEY, 8)
  c_vars = (state.params["conductor"], state.batch_stats["conductor"])

  def terms(g_params, c_params):
    fake = system.generator.apply(
        {"params": g_params, "batch_stats": state.batch_stats["generator"]},
        mask, noise, train=False)
    c_real, _ = system.conduct(c_params, c_vars[1], real, labels)
    c_fake, _ = system.conduct(c_params, c_vars[1], fake, labels)
    return c_real, c_fake

  both = fast_jit(jax.jacrev(lambda g, c: jnp.stack(terms(g, c)),
                             argnums=(0, 1)))
  g_grads, c_grads = both(state.params["generator"], c_vars[0])
  real_g, fake_g = (jax.tree.map(lambda x: x[i], g_grads) for i in (0, 1))
  real_c = jax.tree.map(lambda x: x[0], c_grads)
  norm = lambda tree: sum(float(jnp.abs(x).sum()) for x in jax.tree.leaves(tree))  # noqa: E731
  assert norm(real_g) == 0.0
  assert norm(fake_g) > 0.0 and norm(real_c) > 0.0


def _one_step(arg, state, batch, system=None):
  system = system or with_sgd(base.get_system(tiny_config(arg)))
  if set(state.params) != set(jax.eval_shape(system.init, KEY, batch).params):
    state = filled_state(system, batch)
  return fast_jit(system.train_step)(state, batch)


def test_ablations_change_the_step(cseb):
  system, step, state = cseb
  batch = cseb_batch(4)
  full, _ = step(state, batch)
  # w/o real: the real-image term trains C only, so G's update is unchanged.
  no_real, metrics = _one_step("conductor_no_real", state, batch)
  assert "c_real" not in metrics
  assert_trees_close(no_real.params["generator"], full.params["generator"],
                     atol=1e-6)
  assert not np.allclose(no_real.params["conductor"]["classifier"]["kernel"],
                         full.params["conductor"]["classifier"]["kernel"])
  # w/o C: no conductor, so no fake term reaches G (traced).
  no_c = base.get_system(tiny_config("no_conductor"))
  shapes = jax.eval_shape(no_c.init, KEY, batch)
  assert set(shapes.params) == {"generator", "discriminator"}
  _, metrics = jax.eval_shape(no_c.train_step, shapes, batch)
  assert not {"c_fake", "c_real", "c_loss"} & set(metrics)
  # w/o D: no discriminator, adversarial or feature-matching loss (traced).
  no_d = base.get_system(tiny_config("no_discriminator"))
  shapes = jax.eval_shape(no_d.init, KEY, batch)
  assert set(shapes.params) == {"generator", "conductor"}
  _, no_d_metrics = jax.eval_shape(no_d.train_step, shapes, batch)
  assert not {"g_adv", "g_fm", "d_loss"} & set(no_d_metrics)
  # w/o sharing: one set of embeddings per SMBlk instead of one shared set.
  no_share = base.get_system(tiny_config("no_sharing"))
  g_shapes = jax.eval_shape(no_share.init, KEY, batch).params["generator"]
  assert "semantic_embeddings" not in g_shapes
  per_layer = [p for p, _ in jax.tree_util.tree_leaves_with_path(g_shapes)
               if "semantic_embeddings" in jax.tree_util.keystr(p)]
  assert len(per_layer) == 2 * 6     # shift + log_scale in each of 6 SMBlks
  assert no_share.generator.share_embeddings is False


def test_frozen_conductor_from_a_segmentation_workdir(tmp_path, cseb):
  from rsjax.store import checkpoint as checkpoint_lib
  from rsjax.store import run_config
  from rsjax.systems.segmentation.system import Segmentation
  # A "pre-trained" segmentation run whose network matches the conductor.
  seg_config = tiny_config()
  seg_config.system, seg_config.inputs = "segmentation", ("s2",)
  seg_config.optimizer.segmenter = dict(lr=1e-3, b1=0.5, b2=0.999,
                                        decay_start=0.5)
  segmentation = Segmentation(seg_config)
  batch = cseb_batch(5)
  seg_state = filled_state(segmentation, batch, seed=7).replace(
      rng=jax.random.PRNGKey(0))                  # the trainer's key type
  manager = checkpoint_lib.make_manager(tmp_path, keep=1, interval=1)
  checkpoint_lib.save(manager, 3, seg_state, force=True)
  manager.wait_until_finished()
  run_config.save(tmp_path, seg_config)

  system = with_sgd(base.get_system(tiny_config(
      "frozen_conductor", **{"conductor.workdir": str(tmp_path),
                             "evaluation.segmenter_workdir": str(tmp_path)})))
  init_params = jax.eval_shape(system.init, KEY, batch).params
  assert set(init_params) == {"generator", "discriminator", "conductor",
                              "eval_segmenter"}
  assert "conductor" not in system.tx
  saved = jax.device_get(seg_state.params["segmenter"])
  assert_trees_close(system.conductor_init["params"], saved, 0)
  assert_trees_close(system.evaluator.segmenter_init["params"], saved, 0)
  state = filled_state(system, batch)
  state = state.replace(params={**state.params,
                                "conductor": system.conductor_init["params"]})
  new_state, metrics = fast_jit(system.train_step)(state, batch)
  assert_trees_close(new_state.params["conductor"], state.params["conductor"], 0)
  assert_trees_close(new_state.batch_stats["conductor"],
                     state.batch_stats["conductor"], 0)
  assert float(metrics["c_fake"]) > 0


def test_diverse_generation_and_class_editing(cseb):
  system, _, state = cseb
  batch = cseb_batch(6, batch=2)
  halves = (np.arange(32) >= 16).astype(np.uint8) * 3      # class 0 | class 3
  batch["lulc"] = np.broadcast_to(halves, (2, 32, 32)).copy()
  keys = jax.random.split(jax.random.key(1), 3)
  samples = fast_jit(system.generate)(state, batch, keys)
  assert samples.shape == (3, 2, 32, 32, 4)
  for i, j in ((0, 1), (0, 2), (1, 2)):
    assert float(jnp.abs(samples[i] - samples[j]).mean()) > 1e-3
  edit = fast_jit(system.edit_class, static_argnums=2)
  before = system.predict(state, batch)
  after = edit(state, batch, 0, jax.random.key(2))
  change = np.abs(np.asarray(after - before)).mean(-1)
  edited, kept = change[:, :, :16].mean(), change[:, :, 16:].mean()
  assert edited > 5 * kept, (edited, kept)
  # Far from the boundary (beyond the receptive field) nothing changes.
  np.testing.assert_allclose(change[:, :, 28:], 0, atol=1e-6)
  with pytest.raises(ValueError, match="class_id 9"):
    system.edit_class(state, batch, 9, jax.random.key(2))


def test_eval_scores_and_padding(cseb):
  system, _, state = cseb
  real, padded = padded_batches(cseb_batch, 7)
  real["mask"] = np.ones(3, np.float32)
  eval_step = fast_jit(system.eval_step)
  scores = system.finalize_eval(jax.device_get(eval_step(state, real)))
  sums = jax.device_get(eval_step(state, padded))
  assert float(sums["count"]) == 3.0
  assert set(scores) == {"psnr", "ssim", "sam", "miou", "fwiou",
                         "pixel_accuracy", "pixel_diversity", "pixel_mcsd",
                         "pixel_mocd"}
  for key, value in system.finalize_eval(sums).items():
    assert np.isfinite(value), key
    np.testing.assert_allclose(value, scores[key], rtol=1e-4, err_msg=key)
  assert scores["pixel_diversity"] > 0
  assert scores["pixel_mcsd"] > scores["pixel_mocd"] > 0
  panels = system.panels(real, np.asarray(system.predict(state, real)))
  assert list(panels) == ["lulc", "generated RGB", "generated NRG", "real RGB",
                          "real NRG"]


def _write_vgg(path, seed=0, drop=None):
  from rsjax.nn import vgg as vgg_lib
  rng = np.random.default_rng(seed)
  arrays, channels = {}, 3
  for name, out in vgg_lib.USED_CONV_LAYERS:
    if name == drop:
      continue
    arrays[f"{name}/kernel"] = rng.normal(
        0, np.sqrt(2 / (9 * channels)), (3, 3, channels, out)).astype(np.float32)
    arrays[f"{name}/bias"] = np.zeros(out, np.float32)
    channels = out
  np.savez(path, **arrays)
  return str(path)


def test_perceptual_loss_with_vgg_weights(tmp_path, caplog):
  with caplog.at_level(logging.WARNING):
    CSEBGAN(tiny_config())
  assert "perceptual loss" in caplog.text and "OFF" in caplog.text
  system = CSEBGAN(tiny_config(vgg_weights=_write_vgg(tmp_path / "vgg.npz")))
  assert system.perceptual_on
  batch = cseb_batch(0)
  shapes = jax.eval_shape(system.init, KEY, batch)
  _, metrics = jax.eval_shape(system.train_step, shapes, batch)
  assert {"g_perceptual", "g_perceptual_on"} <= set(metrics)
  sums = jax.eval_shape(system.eval_step, shapes, dict(batch, mask=np.ones(8)))
  assert {"vgg_diversity_sum", "vgg_fid_real", "vgg_fid_fake", "vgg_csd_sum",
          "vgg_ocd_sum"} <= set(sums)
  assert not {"diversity_sum", "fid_real", "csd_sum"} & set(sums)  # not paper's
  assert sums["vgg_fid_real"]["outer_sum"].shape == (512, 512)
  # The loss is rsjax.losses.perceptual_loss on the loaded VGG19 (B4, B3, B2).
  from rsjax import losses
  image = jnp.asarray(batch["s2"][:1, :16, :16])
  other = jnp.flip(image, 1)
  params = jax.tree.map(jnp.asarray, system.vgg_init["params"])
  expected = losses.perceptual_loss(
      lambda x: system.vgg.apply({"params": params}, x), image, other)
  got = system.perceptual(params, image, other)
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  assert float(got) > 0 and system.vgg.rgb_bands == (2, 1, 0)


def test_clear_errors(tmp_path, cseb):
  missing = str(tmp_path / "nope.npz")
  with pytest.raises(FileNotFoundError, match="config.vgg_weights.*nope.npz"):
    CSEBGAN(tiny_config(vgg_weights=missing))
  broken = _write_vgg(tmp_path / "broken.npz", drop="conv3_2")
  with pytest.raises(ValueError, match="broken.npz.*conv3_2"):
    CSEBGAN(tiny_config(vgg_weights=broken))
  with pytest.raises(FileNotFoundError, match="config.conductor.workdir"):
    CSEBGAN(tiny_config(**{"conductor.workdir": str(tmp_path)}))
  for overrides, message in (
      ({"inputs": ("s1",)}, "config.inputs"),
      ({"model.generator": "spade"}, "config.model.generator"),
      ({"evaluation.num_samples": 1}, "num_samples"),
      ({"model.discriminator": None, "conductor.enabled": False},
       "nothing trains")):
    with pytest.raises(ValueError, match=message):
      CSEBGAN(tiny_config(**overrides))
  system, _, state = cseb
  batch = cseb_batch(0, batch=2)
  batch["lulc"][0, 3, 3] = CLASSES          # a class >= num_classes
  with pytest.raises(Exception, match="num_classes"):
    jax.block_until_ready(system.predict(state, batch))
  batch["valid"][0, 3, 3] = 0               # an invalid pixel is not checked
  assert system.predict(state, batch).shape == (2, 32, 32, 4)


def test_fid_compares_real_with_generated_features(tmp_path):
  """CSEBGAN's FID (#19) is between pooled VGG relu5_1 features of the real
  images and of the generated ones (`predict`'s image, the eval noise), not
  real against real: the eval sums are checked against features computed
  here, and a generator replaced by the identity on the real image gives the
  same statistics on both sides.

  Tolerance: the same float32 networks (generator, 13 VGG convolutions) run
  under two different jits (eval's lax.map over samples, and a plain apply
  here), so fusion and summation order differ; each layer's relative
  rounding is at most ~sqrt(fan_in <= 4608) ~ 70 ulp ~ 1e-5, and ~20 layers
  add up to < 2e-4 of the features' scale; we allow 1e-3 of the largest
  |sum|. Real and generated sums differ by more than 10 % of that scale
  (checked), so counting real twice cannot pass."""
  system = CSEBGAN(tiny_config(vgg_weights=_write_vgg(tmp_path / "vgg.npz"),
                               **{"evaluation.semantic_diversity": False}))
  batch = cseb_batch(4, batch=4, mask=np.ones(4))
  state = filled_state(system, batch)
  sums = jax.device_get(fast_jit(system.eval_step)(state, batch))

  @jax.jit
  def pooled_relu5(params, images):
    out = system.vgg.apply({"params": params}, images)["relu5_1"]
    return jnp.mean(out.astype(jnp.float32), axis=(1, 2))

  real = jnp.asarray(batch["s2"], jnp.float32)
  fake = fast_jit(system.predict)(state, batch)
  real_f = np.asarray(pooled_relu5(state.params["vgg"], real), np.float64)
  fake_f = np.asarray(pooled_relu5(state.params["vgg"], fake), np.float64)
  scale = max(np.abs(real_f.sum(0)).max(), np.abs(fake_f.sum(0)).max())
  for name, f in (("vgg_fid_real", real_f), ("vgg_fid_fake", fake_f)):
    np.testing.assert_allclose(sums[name]["sum"], f.sum(0), rtol=0,
                               atol=1e-3 * scale, err_msg=name)
    np.testing.assert_allclose(sums[name]["outer_sum"], f.T @ f, rtol=0,
                               atol=1e-3 * np.abs(f.T @ f).max(), err_msg=name)
    assert float(sums[name]["count"]) == 4.0
  assert np.abs(real_f.sum(0) - fake_f.sum(0)).max() > 0.1 * scale
  fid = system.finalize_eval(sums)["vgg_fid"]
  assert np.isfinite(fid) and fid > 0

  # The identity "generator" (the real image back): both sides' sums agree.
  identity = CSEBGAN(tiny_config(vgg_weights=_write_vgg(tmp_path / "vgg.npz"),
                                 **{"evaluation.semantic_diversity": False}))
  identity.generate_from_noise = lambda state, mask, noise: real
  same = jax.device_get(fast_jit(identity.eval_step)(state, batch))
  for key in ("sum", "outer_sum"):
    np.testing.assert_allclose(
        same["vgg_fid_fake"][key], same["vgg_fid_real"][key], rtol=0,
        atol=1e-3 * np.abs(same["vgg_fid_real"][key]).max())
