"""CSEBGAN's evaluation with the paper's networks (Sec. IV-A 3-4): FID on the
FID Inception-v3 and learned LPIPS diversity / mCSD / mOCD, from converted
weight files (random here; the networks themselves are checked against
pytorch-fid and lpips in tests/nn/test_inception_lpips_reference.py), the
protocol's counts as defaults, and VGG-based scores kept apart."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import csebgan as csebgan_config
from rsjax.nn import inception, lpips
from rsjax.systems.csebgan import evaluation
from rsjax.systems.csebgan.system import CSEBGAN
from system_checks import fast_jit
from test_csebgan import cseb_batch, filled_state, tiny_config


def _write_inception(path):
  rng = np.random.default_rng(0)
  arrays = {}
  for key, shape in inception.param_shapes().items():
    leaf = key.rsplit("/", 1)[1]
    if leaf == "kernel":
      arrays[key] = rng.normal(0, np.sqrt(2 / np.prod(shape[:3])), shape)
    elif leaf in ("scale", "var"):
      arrays[key] = np.ones(shape)
    else:
      arrays[key] = 0.05 * rng.standard_normal(shape)
  np.savez(path, **{k: v.astype(np.float32) for k, v in arrays.items()})
  return str(path)


def _write_lpips(path, net="alex"):
  rng = np.random.default_rng(1)
  arrays = {"net": np.asarray(net)}
  for index, shape in lpips.conv_shapes(net).items():
    arrays[f"conv{index}/kernel"] = rng.normal(
        0, np.sqrt(2 / np.prod(shape[:3])), shape).astype(np.float32)
    arrays[f"conv{index}/bias"] = np.zeros(shape[-1], np.float32)
  for k, c in enumerate(lpips.channels(net)):
    arrays[f"lin{k}/weight"] = rng.uniform(0, 2 / c, c).astype(np.float32)
  np.savez(path, **arrays)
  return str(path)


def test_paper_protocol_defaults():
  settings = csebgan_config.get_config().evaluation
  assert (settings.num_samples, settings.num_pairs) == (10, 10)
  assert settings.inception_weights is None and settings.lpips_weights is None
  demo = csebgan_config.get_config("demo").evaluation
  assert (demo.num_samples, demo.num_pairs) == (2, 0)


def test_inception_fid_and_learned_lpips(tmp_path):
  samples = 3
  config = tiny_config(**{
      "evaluation.num_samples": samples, "evaluation.num_pairs": 2,
      "evaluation.inception_weights": _write_inception(tmp_path / "inc.npz"),
      "evaluation.lpips_weights": _write_lpips(tmp_path / "lpips.npz")})
  system = CSEBGAN(config)
  evaluator = system.evaluator
  assert evaluator.inception.rgb_bands == evaluator.lpips.rgb_bands == (2, 1, 0)
  batch = cseb_batch(1, batch=2, mask=np.ones(2))
  state = filled_state(system, batch)   # then the loaded frozen weights:
  frozen = evaluator.frozen_variables()
  assert set(frozen) == {evaluation.INCEPTION, evaluation.LPIPS}
  state = state.replace(params={**state.params, **{
      name: variables["params"] for name, variables in frozen.items()}})
  sums = jax.device_get(fast_jit(system.eval_step)(state, batch))
  assert {"fid_real", "fid_fake", "diversity_sum", "csd_sum", "ocd_sum",
          "pixel_diversity_sum"} <= set(sums)
  assert not any(key.startswith("vgg_") for key in sums)   # no VGG weights
  # Real images once, all `samples` generated images per mask.
  assert float(sums["fid_real"]["count"]) == 2.0
  assert float(sums["fid_fake"]["count"]) == 2.0 * samples
  real = jnp.asarray(batch["s2"], jnp.float32)
  pool3 = jax.jit(evaluator.pool3)(state, real)
  np.testing.assert_allclose(sums["fid_real"]["sum"], np.asarray(pool3).sum(0),
                             rtol=1e-5, atol=1e-5 * float(np.abs(pool3).max()))
  scores = system.finalize_eval(sums)
  assert {"fid", "diversity", "mcsd", "mocd", "pixel_diversity"} <= set(scores)
  assert not any(key.startswith("vgg_") for key in scores)
  assert all(np.isfinite(scores[k]) for k in ("fid", "diversity", "mcsd",
                                                "mocd"))
  assert scores["diversity"] > 0 and scores["fid"] > 0

  # The generator replaced by the identity: every sample is the real image,
  # so the fake sums are `samples` copies of the real ones, diversity is 0.
  system.generate_from_noise = lambda state, mask, noise: real
  same = jax.device_get(fast_jit(system.eval_step)(state, batch))
  for key in ("sum", "outer_sum"):
    scale = float(np.abs(same["fid_real"][key]).max())
    np.testing.assert_allclose(same["fid_fake"][key],
                               samples * same["fid_real"][key], rtol=0,
                               atol=1e-5 * samples * scale)
  assert abs(float(same["diversity_sum"])) < 1e-6


def test_weight_file_errors(tmp_path):
  with pytest.raises(FileNotFoundError,
                     match="inception_weights.*rsjax.nn.inception_convert"):
    CSEBGAN(tiny_config(**{"evaluation.inception_weights":
                           str(tmp_path / "none.npz")}))
  np.savez(tmp_path / "bad.npz", net=np.asarray("squeeze"))
  with pytest.raises(ValueError, match="lpips_weights.*squeeze"):
    CSEBGAN(tiny_config(**{"evaluation.lpips_weights":
                           str(tmp_path / "bad.npz")}))
  with pytest.raises(ValueError, match="num_pairs"):
    CSEBGAN(tiny_config(**{"evaluation.num_pairs": -1}))
  assert evaluation.PAPER_SAMPLES == evaluation.PAPER_PAIRS == 10
