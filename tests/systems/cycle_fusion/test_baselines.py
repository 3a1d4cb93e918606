"""Table II's comparison methods (Jiang, Shen & Li, TGRS 2022): AIHS against
an independent float64 NumPy/SciPy computation of Rahmani et al. 2010, and
AIHS / ESRCNN trained (or run) two steps and scored like the cycle GAN."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import optimize

from configs import cycle_fusion as cycle_fusion_config
from rsjax.nn.esrcnn import ESRCNN
from rsjax.systems import base
from rsjax.systems.cycle_fusion import aihs, baselines
from rsjax.train import trainer

LAMBDA, EPSILON = 1e-9, 1e-10          # Rahmani et al. 2010, Sec. III


def reference_aihs(ms, pan):
  """AIHS in float64 NumPy: moment-matched PAN, SciPy NNLS weights,
  numpy.gradient edges, F = M + W (P - I)."""
  ms, pan = np.float64(ms), np.float64(pan)
  average = ms.mean(-1)
  pan = (pan - pan.mean()) / pan.std() * average.std() + average.mean()
  alpha, _ = optimize.nnls(ms.reshape(-1, ms.shape[-1]), pan.reshape(-1))
  intensity = ms @ alpha
  d_rows, d_cols = np.gradient(pan)
  weights = np.exp(-LAMBDA / (np.hypot(d_rows, d_cols) ** 4 + EPSILON))
  return ms + (weights * (pan - intensity))[..., None], alpha, weights


def hand_example():
  """A 5 x 6 scene in reflectance: a bright field on the right, a road
  across it, dark in band 2 where the PAN is bright, so the unconstrained
  least squares give negative weights and NNLS clips them."""
  field = np.zeros((5, 6))
  field[:, 3:] = 1.0
  road = np.zeros((5, 6))
  road[2] = 1.0
  ms = np.stack([0.2 + 0.3 * field + 0.05 * road,
                 0.1 + 0.2 * field + 0.10 * road,
                 0.1 + 0.3 * field - 0.20 * road], -1)
  pan = 0.15 + 0.35 * field + 0.3 * road + 0.01 * np.arange(6)[None]
  return ms, pan


def test_aihs_matches_numpy_on_a_hand_example():
  ms, pan = hand_example()
  expected, alpha, weights = reference_aihs(ms, pan)
  unconstrained = np.linalg.lstsq(ms.reshape(-1, 3), np.ravel(
      aihs.match_moments(pan, ms.mean(-1))), rcond=None)[0]
  assert (unconstrained < 0).any() and (alpha == 0).any() and (alpha > 0).any()
  # Edges (W ~ 1) and the gentle ramp (W ~ 0.47, where exp(-lambda / g^4)
  # is steepest, so an error in |grad P| would show).
  assert weights.max() > 0.99 and ((weights > 0.1) & (weights < 0.9)).any()
  got = np.asarray(aihs.aihs(np.float32(ms)[None], np.float32(pan)[None]))[0]
  # float32 throughout: the inputs' rounding (6e-8 relative) through the 3x3
  # normal equations (condition number ~1e3 here) moves alpha by ~1e-4 of its
  # size, and F = M + W (P - I) by ~1e-5; W itself is exp of lambda / |grad|^4
  # changes by 4 lambda / g^4 (< 3 here) times the relative error of g
  # (float32 differences of ~0.3 values, g ~ 0.005: ~1e-5), i.e. < 5e-5 of
  # W, times |P - I| < 0.3.
  np.testing.assert_allclose(got, expected, atol=2e-5)
  np.testing.assert_allclose(
      np.asarray(aihs.nonnegative_weights(np.float32(ms), np.float32(
          aihs.match_moments(pan, ms.mean(-1))))), alpha, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("seed", range(6))
def test_nonnegative_weights_are_scipys_nnls(seed):
  """Random 4-band problems with a random sign per band (so 0-3 weights are
  clipped): the subset enumeration finds SciPy's active-set solution."""
  rng = np.random.default_rng(seed)
  ms = rng.uniform(0, 1, (12, 10, 4))
  signs = rng.choice([-1.0, 1.0], 4)
  pan = ms @ (signs * rng.uniform(0.2, 1.0, 4)) + 0.05 * rng.normal(
      size=(12, 10))
  expected, _ = optimize.nnls(ms.reshape(-1, 4), pan.reshape(-1))
  got = np.asarray(aihs.nonnegative_weights(np.float32(ms), np.float32(pan)))
  assert np.all(got >= 0)
  # float32 normal equations of 120 well-spread samples: condition number
  # < 100, so ~1e-5 relative error; exact zeros where SciPy clips.
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(got == 0, expected == 0)


def test_gradient_is_numpys():
  image = np.random.default_rng(0).uniform(0, 1, (7, 5))
  np.testing.assert_allclose(
      np.asarray(aihs.gradient_magnitude(np.float32(image))),
      np.hypot(*np.gradient(image)), atol=1e-6)


def test_esrcnn_layer_table():
  """SRCNN's 9-1-5 table with 64 and 32 filters (Dong et al. 2016), same
  size out as in."""
  variables = ESRCNN(out_channels=3).init(jax.random.PRNGKey(0),
                                          np.zeros((1, 16, 16, 6), np.float32))
  shapes = {name: layer["kernel"].shape
            for name, layer in variables["params"].items()}
  assert shapes == {"conv_0": (9, 9, 6, 64), "conv_1": (1, 1, 64, 32),
                    "reconstruction": (5, 5, 32, 3)}


def _memory_config(arg):
  """`arg` on 8 random tiles (one batch) larger than its patches (250 px for
  modis, 160 for s2_clouds), a step a checkpoint, evaluated after the second
  step."""
  config = cycle_fusion_config.get_config(arg)
  config.data.source = "memory"
  config.data.tile_size = 250 if config.experiment == "modis" else 160
  config.data.memory_examples = 8
  config.data.batch_size = config.data.eval_batch_size = 8
  config.epochs = None   # the paper's 150 epochs would disagree
  config.total_steps = 2
  config.log_every = 1
  config.eval_every = 2
  config.checkpoint_every = 1
  config.num_eval_batches = 1
  return config


@pytest.mark.parametrize("arg,mode,ratio", [
    ("modis,aihs", "hss", 50), ("modis,esrcnn", "st", 50),
    ("s2_clouds,sar_opt_cgan", "hss", 1)])
def test_baseline_trains_two_steps_and_is_scored(arg, mode, ratio, tmp_path):
  config = _memory_config(arg)
  assert config.mode == mode and config.resolution_ratio == ratio
  if "sar_opt_cgan" in arg:   # tiny pix2pix: the unet_128 depth, narrow
    config.model.generator_kwargs.ngf = 2
    config.model.discriminator_kwargs.update(dict(ndf=4, num_layers=2))
  system = base.get_system(config)
  assert isinstance(system, baselines.FusionBaseline)
  scores = trainer.train_and_evaluate(config, str(tmp_path))
  # The cycle GAN's indices (SAM in degrees), and the LR image's beside it.
  assert {"sam", "ergas", "q", "psnr", "ssim", "psnr_B2", "lowres_psnr"} <= set(
      scores)
  assert all(np.isfinite(v) for v in scores.values())
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
      "1", "2"]


def test_aihs_system_predicts_the_function_of_its_observations():
  config = _memory_config("modis,aihs")
  config.patch_size = None
  config.resolution_ratio = 4
  system = base.get_system(config)
  rng = np.random.default_rng(0)
  batch = {"s2_t2": rng.uniform(-1, 1, (2, 16, 16, 4)).astype(np.float32),
           "s1_t2": rng.uniform(-1, 1, (2, 16, 16, 2)).astype(np.float32)}
  state = system.init(jax.random.PRNGKey(0), batch)
  observed = system.inputs.observations(batch)
  expected = np.stack([reference_aihs((np.asarray(observed["lowres"][i]) + 1)
                                      / 2, (batch["s1_t2"][i].mean(-1) + 1) / 2
                                      )[0] for i in range(2)])
  np.testing.assert_allclose(np.asarray(system.predict(state, batch)),
                             np.clip(expected * 2 - 1, -1, 1), atol=1e-4)


def test_aihs_needs_a_pan_like_input():
  config = _memory_config("modis,aihs,hsts")
  with pytest.raises(ValueError, match="AIHS fuses the LR image with one"):
    base.get_system(config)
