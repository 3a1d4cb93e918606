"""CSEBGAN's Table I baselines on CSEBGAN's task (Wang, Chen, Zou & Shi):
SPADE and Pix2PixHD configs, Pix2PixHD's global generator against its
paper's layer table, and each baseline trained two steps and evaluated by
CSEBGAN's evaluation (deterministic: diversity 0, no mCSD / mOCD)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import csebgan as csebgan_config
from rsjax.nn.pix2pixhd import GlobalGenerator
from rsjax.systems import base
from rsjax.train import trainer


def test_global_generator_is_the_papers_table():
  """Wang et al. 2018, appendix: c7s1-64, d128, d256, d512, d1024,
  R1024 x 9, u512, u256, u128, u64, c7s1-3 (kernel, in, out per conv), on
  CSEBGAN's 256 px tiles of 16 one-hot classes; nothing is allocated."""
  model = GlobalGenerator(out_channels=3)
  labels = jax.ShapeDtypeStruct((1, 256, 256, 16), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x,
                                                 train=False), labels)
  params = variables["params"]
  table = [("stem", 7, 16, 64), ("down_0", 3, 64, 128),
           ("down_1", 3, 128, 256), ("down_2", 3, 256, 512),
           ("down_3", 3, 512, 1024)]
  table += [(f"residual_{i}", 3, 1024, 1024) for i in range(9)]
  table += [("up_0", 3, 1024, 512), ("up_1", 3, 512, 256),
            ("up_2", 3, 256, 128), ("up_3", 3, 128, 64),
            ("to_image", 7, 64, 3)]
  for name, kernel, fan_in, fan_out in table:
    kernels = ([params[name]["conv_0"]["kernel"], params[name]["conv_1"][
        "kernel"]] if name.startswith("residual") else [params[name]["kernel"]])
    for k in kernels:
      assert k.shape == (kernel, kernel, fan_in, fan_out), name
  # Affine-free InstanceNorm: no parameters besides the convs'.
  assert set(params) == {row[0] for row in table}
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False),
                       variables, labels)
  assert out.shape == (1, 256, 256, 3)


def test_global_generator_output_range_and_size_check():
  model = GlobalGenerator(out_channels=4, ngf=2, num_downs=2, num_blocks=1)
  labels = jax.nn.one_hot(jax.random.randint(jax.random.PRNGKey(1),
                                             (2, 16, 16), 0, 5), 5)
  variables = model.init(jax.random.PRNGKey(0), labels, train=False)
  out = model.apply(variables, labels, train=False)
  assert out.shape == (2, 16, 16, 4) and float(jnp.max(jnp.abs(out))) <= 1.0
  with pytest.raises(ValueError, match="GlobalGenerator"):
    model.apply(variables, labels[:, :14, :14], train=False)


def test_baseline_configs_follow_their_papers():
  spade = csebgan_config.get_config("spade")
  hd = csebgan_config.get_config("pix2pixhd")
  full = csebgan_config.get_config("full")
  for config in (spade, hd):
    assert not config.conductor.enabled and "conductor" not in config.optimizer
    # CSEBGAN's data, schedule and evaluation protocol.
    for key in ("data", "total_steps", "evaluation", "inputs", "target"):
      assert config[key] == full[key], key
    assert (config.loss.feature_matching, config.loss.perceptual) == (10, 10)
  assert spade.loss.adversarial == "hinge"
  assert (spade.optimizer.generator.lr, spade.optimizer.discriminator.lr,
          spade.optimizer.generator.b1) == (1e-4, 4e-4, 0.0)
  assert hd.loss.adversarial == "lsgan"
  assert hd.model.discriminator_kwargs.num_scales == 3
  assert (hd.optimizer.generator.lr, hd.optimizer.generator.b1,
          hd.optimizer.generator.decay_start) == (2e-4, 0.5, 0.5)
  assert csebgan_config.get_config("spade,gid15").data.name == "gid15/rgb"
  with pytest.raises(ValueError, match="ablation of CSEBGAN"):
    csebgan_config.get_config("spade,no_sharing")


def _tiny(arg):
  """`arg` with tiny networks on 16 random tiles (32 px; 64 px for
  Pix2PixHD, whose third D scale sees 16 px: at 32 its 8 px leave no logits);
  two steps, then CSEBGAN's evaluation on one batch."""
  config = csebgan_config.get_config(arg)
  kwargs = config.model.generator_kwargs
  if config.model.generator == "spade":
    kwargs.update(dict(ngf=2, num_upsamplings=1, hidden=4))
  else:
    kwargs.update(dict(ngf=2, num_downs=2, num_blocks=1))
  config.model.discriminator_kwargs.update(dict(ndf=4, num_layers=2))
  config.data.source = "memory"
  config.data.tile_size = 32 if config.model.generator == "spade" else 64
  config.data.memory_examples = 16
  config.data.batch_size = config.data.eval_batch_size = 8
  config.evaluation.num_samples = 2
  config.total_steps = 2
  config.log_every = config.checkpoint_every = 1
  config.eval_every = 2
  config.num_eval_batches = 1
  return config


@pytest.mark.parametrize("arg", ["spade", "pix2pixhd"])
def test_baseline_trains_two_steps_and_is_evaluated(arg, tmp_path):
  config = _tiny(arg)
  system = base.get_system(config)
  assert not system.takes_noise and not system.conductor_on
  scores = trainer.train_and_evaluate(config, str(tmp_path))
  assert {"psnr", "ssim", "sam", "pixel_diversity"} <= set(scores)
  # One image per mask whatever the noise: diversity exactly 0, and no
  # semantic-level scores ('-' in Table I).
  assert scores["pixel_diversity"] == 0.0
  assert not any("csd" in k or "ocd" in k for k in scores)
  assert all(np.isfinite(v) for v in scores.values()), scores
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
      "1", "2"]
  with pytest.raises(ValueError, match="no class embeddings"):
    state = jax.eval_shape(system.init, jax.random.PRNGKey(0), {
        "s2": jax.ShapeDtypeStruct((1, 32, 32, 4), jnp.float32),
        "lulc": jax.ShapeDtypeStruct((1, 32, 32), jnp.int32)})
    system.edit_class(state, {"lulc": jnp.zeros((1, 32, 32), jnp.int32)}, 1,
                      jax.random.PRNGKey(0))
