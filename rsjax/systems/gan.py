"""The adversarial update of the GAN papers, written once.

Every GAN system here (pix2pix and RS-SPADE, each stage of the two-GAN cloud
removal, CSEBGAN, the residual cycle GAN) trains its networks with the same
pieces; what differs per paper is passed in as callbacks:

  D step  `discriminator_update`: L_D on the real images and the stopped
          fakes, D's gradient and one optimizer step; D's BatchNorm /
          spectral-norm state is threaded through its calls; the mean logits
          are reported as d_real / d_fake. How D sees a real / fake pair is
          the paper's `pair` callback: `two_calls` (D on the real images,
          then on the fakes, as pix2pix's `backward_D`) or CSEBGAN's single
          call on the batch [fake; real] (SPADE's code).
  update  `adversarial_update`, the order of pix2pix's `optimize_parameters`
          (Isola et al. 2017): one G forward in train mode with its vjp
          kept, the D step, then the generator loss against the *updated* D,
          differentiated w.r.t. the fake (and any `extra` parameters the loss
          also trains, e.g. CSEBGAN's conductor), back-propagated into G
          through the kept vjp (no second G forward), and one optimizer step
          of G. The loss itself is the paper's `generator_loss` callback
          (pix2pix's L_cGAN + L1 + SSIM + feature matching in
          `rsjax.systems.pix2pix_recipe`, CSEBGAN's hinge + FM + perceptual +
          conductor terms in `rsjax.systems.csebgan`).
  EMA     an optional exponential moving average of the generator's
          parameters (`ema_decay`, `initial_ema`, `ema_step`).

The residual cycle GAN updates its two generators first (CycleGAN's order)
and then each discriminator with `discriminator_update`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from rsjax import losses
from rsjax.systems import base

GENERATOR, DISCRIMINATOR = "generator", "discriminator"
NETS = (GENERATOR, DISCRIMINATOR)

# (params, stats, real, fake) -> (real logits, fake logits, new stats)
Pair = Callable[[Any, Any, jax.Array, jax.Array], tuple[Any, Any, Any]]


class Nets(NamedTuple):
  """One G/D pair's variables: params, batch_stats and optimizer states, each
  a dict {'generator': ..., 'discriminator': ...} (no 'discriminator' in a
  GAN without D, e.g. CSEBGAN's "w/o D" ablation)."""
  params: dict[str, Any]
  batch_stats: dict[str, Any]
  opt_state: dict[str, Any]


class Update(NamedTuple):
  """What `adversarial_update` returns.

  nets: the new variables (the input's keys); fake: G's train-mode output
  (float32, the fake D was trained on); g_loss: the generator loss; aux: the
  generator loss's aux; extra_grads: the gradients of the `extra` parameters;
  scalars: {'d_loss', 'd_real', 'd_fake'} of the D step ({} without D).
  """
  nets: Nets
  fake: jax.Array
  g_loss: jax.Array
  aux: Any
  extra_grads: tuple[Any, ...]
  scalars: dict[str, jax.Array]


def adversarial_kind(kind: str, key: str) -> str:
  """`kind` if it is a known adversarial loss; else a ValueError naming `key`."""
  if kind not in losses.ADVERSARIAL_KINDS:
    raise ValueError(f"{key}: unknown kind {kind!r}; valid: "
                     f"{', '.join(losses.ADVERSARIAL_KINDS)}")
  return kind


def split_discriminator_output(output):
  """(features, logits) of a PatchGAN, or lists of them per scale."""
  if isinstance(output, list):                   # MultiScalePatchGAN
    return [f for f, _ in output], [l for _, l in output]
  return output


def mean_logit(logits) -> jax.Array:
  """The mean of D's logits (of every scale), float32."""
  scales = logits if isinstance(logits, list) else [logits]
  return jnp.mean(jnp.stack([jnp.mean(x.astype(jnp.float32)) for x in scales]))


def two_calls(discriminate) -> Pair:
  """A `pair` that calls `discriminate(params, stats, image) -> (logits,
  stats)` on the real images, then on the fakes (pix2pix's `backward_D`: two
  calls, so BatchNorm statistics are per call as in PyTorch)."""
  def pair(params, stats, real, fake):
    real_logits, stats = discriminate(params, stats, real)
    fake_logits, stats = discriminate(params, stats, fake)
    return real_logits, fake_logits, stats
  return pair


class DiscriminatorUpdate(NamedTuple):
  """D's new params, optimizer state and batch_stats, and its scalars
  {'d_loss', 'd_real', 'd_fake'} (float32 means of the logits)."""
  params: Any
  opt_state: Any
  batch_stats: Any
  scalars: dict[str, jax.Array]


def discriminator_update(tx: optax.GradientTransformation, loss, pair: Pair,
                         params, stats, opt_state, real, fake
                         ) -> DiscriminatorUpdate:
  """One optimizer step of D on loss(D(real), D(stop_gradient(fake))).

  `loss(real_logits, fake_logits)` is the paper's L_D (`d_loss_of(kind)`
  for `losses.discriminator_loss`); `pair` calls D on both (`two_calls`).
  """
  def loss_fn(d_params):
    real_logits, fake_logits, d_stats = pair(d_params, stats, real,
                                             jax.lax.stop_gradient(fake))
    return loss(real_logits, fake_logits), (
        d_stats, mean_logit(real_logits), mean_logit(fake_logits))

  (value, (new_stats, d_real, d_fake)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(params)
  new_params, new_opt = base.optimizer_step(tx, grads, opt_state, params)
  return DiscriminatorUpdate(new_params, new_opt, new_stats,
                             {"d_loss": value, "d_real": d_real, "d_fake": d_fake})


def d_loss_of(kind: str):
  """L_D(real_logits, fake_logits) of an adversarial `kind`."""
  return functools.partial(losses.discriminator_loss, kind)


def adversarial_update(nets: Nets, tx: Mapping[str, optax.GradientTransformation],
                       *, generate, generator_loss, pair: Pair | None = None,
                       kind: str | None = None, real=None, extra=()) -> Update:
  """One D step, then one G step against the updated D (module docstring).

  generate(g_params) -> (fake float32, G's new batch_stats): G in train mode.
  pair, kind, real: the D step (`discriminator_update` with the L_D of the
    adversarial `kind`); pair None: no D (and `nets` has no 'discriminator').
  generator_loss(fake, d_params, d_stats, *extra) -> (loss, (aux, d_stats)):
    d_params / d_stats are D's after its step (None without D); it returns
    D's state after the calls it makes.
  extra: parameters differentiated by generator_loss beside the fake; their
    gradients come back in `Update.extra_grads` (the caller applies them).
  """
  params, stats, opt_state = nets.params, nets.batch_stats, nets.opt_state
  fake, g_vjp, g_stats = jax.vjp(generate, params[GENERATOR], has_aux=True)
  new_params, new_stats, new_opt = dict(params), dict(stats), dict(opt_state)
  d_params = d_stats = None
  scalars = {}
  if pair is not None:
    d = discriminator_update(tx[DISCRIMINATOR], d_loss_of(kind), pair,
                             params[DISCRIMINATOR], stats[DISCRIMINATOR],
                             opt_state[DISCRIMINATOR], real, fake)
    d_params, d_stats, scalars = d.params, d.batch_stats, d.scalars
    new_params[DISCRIMINATOR], new_opt[DISCRIMINATOR] = d.params, d.opt_state

  def loss_fn(fake_image, *extra_params):
    return generator_loss(fake_image, d_params, d_stats, *extra_params)

  (g_loss, (aux, d_stats)), grads = jax.value_and_grad(
      loss_fn, argnums=tuple(range(1 + len(extra))), has_aux=True)(fake, *extra)
  (g_grads,) = g_vjp(grads[0])
  new_params[GENERATOR], new_opt[GENERATOR] = base.optimizer_step(
      tx[GENERATOR], g_grads, opt_state[GENERATOR], params[GENERATOR])
  new_stats[GENERATOR] = g_stats
  if pair is not None:
    new_stats[DISCRIMINATOR] = d_stats
  return Update(Nets(new_params, new_stats, new_opt), fake, g_loss, aux,
                tuple(grads[1:]), scalars)


# ------------------------------------------------------------------- EMA --

def ema_decay(config: ml_collections.ConfigDict, system: str | None = None
              ) -> float:
  """`config.ema_decay` (0: no EMA), checked to lie in [0, 1); with `system`
  named, that system keeps no generator EMA and any nonzero decay is an
  error."""
  decay = float(config.get("ema_decay", 0.0) or 0.0)
  if system is not None and decay:
    raise ValueError(f"config.ema_decay: {system} keeps no generator EMA; "
                     f"set it to 0")
  if not 0.0 <= decay < 1.0:
    raise ValueError(f"config.ema_decay must be in [0, 1), got {decay}")
  return decay


def initial_ema(params: Mapping[str, Any], decay: float):
  """State.ema_params at init: {'generator': G's params}, None if decay 0."""
  return {GENERATOR: params[GENERATOR]} if decay > 0 else None


def ema_step(ema_params, params: Mapping[str, Any], decay: float):
  """State.ema_params after a step with G's new `params` (None stays None)."""
  if ema_params is None:
    return None
  return {GENERATOR: base.ema_update(ema_params[GENERATOR], params[GENERATOR],
                                     decay)}
