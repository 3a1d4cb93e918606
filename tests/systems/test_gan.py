"""rsjax.systems.gan: the D-then-G update against a hand-written step, the
D step's loss and threading of D's state, the EMA helpers; rsjax.systems.checks
messages."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from rsjax import losses
from rsjax.systems import base, checks, gan
from system_checks import assert_trees_close

LR = 0.1


class Count(nn.Module):
  """A dense layer that counts its calls in a batch_stats variable."""
  features: int

  @nn.compact
  def __call__(self, x, *, train: bool):
    calls = self.variable("batch_stats", "calls", jnp.zeros, ())
    if train:
      calls.value = calls.value + 1
    return nn.Dense(self.features)(x)


def _setup():
  g, d = Count(3), Count(1)
  condition = jax.random.normal(jax.random.key(0), (4, 2))
  real = jax.random.normal(jax.random.key(1), (4, 3))
  g_vars = g.init(jax.random.key(2), condition, train=False)
  d_vars = d.init(jax.random.key(3), real, train=False)
  tx = {gan.GENERATOR: optax.sgd(LR), gan.DISCRIMINATOR: optax.sgd(LR)}
  params = {gan.GENERATOR: g_vars["params"], gan.DISCRIMINATOR: d_vars["params"]}
  nets = gan.Nets(params,
                  {gan.GENERATOR: g_vars["batch_stats"],
                   gan.DISCRIMINATOR: d_vars["batch_stats"]},
                  {k: tx[k].init(v) for k, v in params.items()})
  return g, d, condition, real, tx, nets


def test_adversarial_update_is_d_step_then_g_step_against_the_new_d():
  g, d, condition, real, tx, nets = _setup()
  kind = "lsgan"

  def generate(g_params):
    return base.train_apply(g, g_params, nets.batch_stats["generator"],
                            condition)

  def discriminate(params, stats, image):
    return base.train_apply(d, params, stats, image)

  def generator_loss(fake, d_params, d_stats):
    logits, d_stats = discriminate(d_params, d_stats, fake)
    loss = losses.generator_adversarial_loss(kind, logits) + jnp.mean(
        jnp.abs(fake - real))
    return loss, ({"g_adv": loss}, d_stats)

  step = gan.adversarial_update(nets, tx, generate=generate,
                                generator_loss=generator_loss,
                                pair=gan.two_calls(discriminate), kind=kind,
                                real=real)

  # By hand: D's SGD step on L_D(D(real), D(G(x))), then G's against new D.
  g_params, d_params = (nets.params["generator"],
                        nets.params["discriminator"])
  fake = g.apply({"params": g_params, "batch_stats": {"calls": 0.0}}, condition,
                 train=False)

  def d_loss(p):
    apply = lambda x: d.apply({"params": p, "batch_stats": {"calls": 0.0}},  # noqa: E731
                              x, train=False)
    return losses.discriminator_loss(kind, apply(real), apply(fake))

  new_d = jax.tree.map(lambda p, dp: p - LR * dp, d_params,
                       jax.grad(d_loss)(d_params))

  def g_loss(p):
    image = g.apply({"params": p, "batch_stats": {"calls": 0.0}}, condition,
                    train=False)
    logits = d.apply({"params": new_d, "batch_stats": {"calls": 0.0}}, image,
                     train=False)
    return losses.generator_adversarial_loss(kind, logits) + jnp.mean(
        jnp.abs(image - real))

  new_g = jax.tree.map(lambda p, dp: p - LR * dp, g_params,
                       jax.grad(g_loss)(g_params))
  assert_trees_close(step.nets.params["discriminator"], new_d, atol=1e-6)
  assert_trees_close(step.nets.params["generator"], new_g, atol=1e-6)
  np.testing.assert_allclose(step.g_loss, g_loss(g_params), rtol=1e-6)
  np.testing.assert_allclose(step.scalars["d_loss"], d_loss(d_params),
                             rtol=1e-6)
  np.testing.assert_allclose(step.fake, fake, rtol=1e-6)
  # G ran once; D twice in its step (real, fake) and once in G's loss.
  assert float(step.nets.batch_stats["generator"]["calls"]) == 1
  assert float(step.nets.batch_stats["discriminator"]["calls"]) == 3
  assert set(step.scalars) == {"d_loss", "d_real", "d_fake"}


def test_update_without_d_and_with_extra_parameters():
  g, _, condition, real, tx, nets = _setup()
  nets = gan.Nets(*({"generator": part["generator"]} for part in nets))
  extra = {"w": jnp.asarray(2.0)}

  def generate(g_params):
    return base.train_apply(g, g_params, nets.batch_stats["generator"],
                            condition)

  def generator_loss(fake, d_params, d_stats, e):
    assert d_params is None and d_stats is None
    return e["w"] * jnp.mean(fake**2), ("aux", None)

  step = gan.adversarial_update(nets, tx, generate=generate,
                                generator_loss=generator_loss, extra=(extra,))
  assert set(step.nets.params) == {"generator"} and step.scalars == {}
  assert step.aux == "aux"
  (grads,) = step.extra_grads
  np.testing.assert_allclose(grads["w"], jnp.mean(step.fake**2), rtol=1e-6)


def test_discriminator_update_uses_the_given_loss():
  _, d, _, real, tx, nets = _setup()
  fake = real + 1.0

  def discriminate(params, stats, image):
    return base.train_apply(d, params, stats, image)

  half = lambda r, f: 0.5 * losses.discriminator_loss("lsgan", r, f)  # noqa: E731
  step = gan.discriminator_update(
      tx["discriminator"], half, gan.two_calls(discriminate),
      nets.params["discriminator"], nets.batch_stats["discriminator"],
      nets.opt_state["discriminator"], real, fake)
  apply = lambda x: d.apply({"params": nets.params["discriminator"],  # noqa: E731
                             "batch_stats": {"calls": 0.0}}, x, train=False)
  np.testing.assert_allclose(step.scalars["d_loss"], half(apply(real),
                                                          apply(fake)),
                             rtol=1e-6)
  np.testing.assert_allclose(step.scalars["d_real"], jnp.mean(apply(real)),
                             rtol=1e-6)
  assert float(step.batch_stats["calls"]) == 2


def test_ema_helpers():
  config = ml_collections.ConfigDict({"ema_decay": 0.5})
  assert gan.ema_decay(config) == 0.5
  with pytest.raises(ValueError, match="config.ema_decay: demo keeps no"):
    gan.ema_decay(config, "demo")
  with pytest.raises(ValueError, match=r"config.ema_decay must be in \[0, 1\)"):
    gan.ema_decay(ml_collections.ConfigDict({"ema_decay": 1.0}))
  params = {"generator": {"w": jnp.ones(2)}, "discriminator": {}}
  assert gan.initial_ema(params, 0.0) is None
  ema = gan.initial_ema(params, 0.5)
  new = {"generator": {"w": jnp.full(2, 3.0)}}
  np.testing.assert_allclose(gan.ema_step(ema, new, 0.5)["generator"]["w"], 2.0)
  assert gan.ema_step(None, new, 0.5) is None
  with pytest.raises(ValueError, match="config.loss.x: unknown kind 'wgan'"):
    gan.adversarial_kind("wgan", "config.loss.x")


def test_batch_check_messages():
  batch = {"s2": np.zeros((2, 12, 12, 4)), "s1": np.zeros((2, 12, 12, 2))}
  with pytest.raises(KeyError, match=r"no field 'lulc' \(config.inputs\); it "
                     r"has \['s1', 's2'\]: add it to config.data.fields"):
    checks.require_fields(batch, ("s2", "lulc"), "config.inputs")
  checks.check_image(batch["s2"], 4, "field 's2'")
  with pytest.raises(ValueError, match=r"field 's1': expected \(B, H, W, 4\)"):
    checks.check_image(batch["s1"], 4, "field 's1'")
  checks.check_shape(batch["s1"], [(2, 12, 12), (2, 12, 12, 2)], "s1")
  with pytest.raises(ValueError, match=r"s1: expected shape \(2, 12, 12\) "
                     r"\(note\), got \(2, 12, 12, 2\)"):
    checks.check_shape(batch["s1"], (2, 12, 12), "s1", "(note)")
  checks.check_tile_size(batch["s2"].shape, 4, "G")
  with pytest.raises(ValueError, match=r"G needs a tile size divisible by 8, "
                     r"got 12x12 \(fix\)"):
    checks.check_tile_size(batch["s2"].shape, 8, "G", "fix")
