"""The pix2pix recipe of one conditional G/D pair: its losses and its update.

Isola et al., "Image-to-image translation with conditional adversarial
networks", CVPR 2017, Eq. 1-4: a generator G maps the condition x to the
target y; a discriminator D sees concat(x, image) and tells real pairs from
generated ones. Objective

  G* = arg min_G max_D  L_cGAN(G, D) + lambda_L1 L_L1(G)           (Eq. 4)

extended, as the RS-SPADE paper (Wang & Zhou, Sec. 3.3) and the two-GAN
cloud-removal paper (Darbaghshahi et al., Eq. 3, 5) do, with lambda_SSIM
(1 - SSIM) and optionally feature matching over D's intermediate features:

  L_G = L_adv(D(x, G(x))) + l1 |y - G(x)|_1 + ssim (1 - SSIM(G(x), y))
        + feature_matching mean_l |D_l(x, y) - D_l(x, G(x))|_1
  L_D = L_adv^D(D(x, y), D(x, sg(G(x))))

with L_adv one of vanilla (BCE, non-saturating for G), lsgan, hinge. The
step is `rsjax.systems.gan.adversarial_update` (a D step on real and
stopped fake pairs, two D calls; then the G step against the updated D
through the kept vjp of one G forward). `PairedRecipe.update` runs it for
one pair on its own variables (`gan.Nets`): RS-SPADE / pix2pix run it once
per step (`rsjax.systems.rs_spade`), the cloud-removal system once per stage
(`rsjax.systems.cloud_removal`).

Feature matching: none of the recipe's papers (pix2pix, RS-SPADE, cloud
removal) uses it; it is off in their configs. Its one user,
`configs/spade_reference.py` (NVlabs SPADE), scales its weight by the maps
per scale, so the MEAN over maps here
(`losses.feature_matching_loss(layer_reduction='mean')`) gives NVlabs' sum
over maps, averaged over scales.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from rsjax import losses
from rsjax.systems import base, gan

WEIGHTS = ("l1", "ssim", "feature_matching")


def loss_weights(loss_config) -> dict[str, float]:
  """{'l1', 'ssim', 'feature_matching'} weights of a loss config (0 if unset)."""
  return {k: float(loss_config.get(k, 0.0) or 0.0) for k in WEIGHTS}


def report_ssim(loss_config) -> bool:
  """`loss_config.report_ssim`: compute g_ssim at weight 0, to report it."""
  return bool(loss_config.get("report_ssim", False))


@dataclasses.dataclass(frozen=True)
class PairedRecipe:
  """The pix2pix update of one G/D pair (see the module docstring).

  `tx` holds the optax transformations {'generator', 'discriminator'};
  `weights` the loss weights {'l1', 'ssim', 'feature_matching'};
  `report_ssim` computes g_ssim at weight 0 too, only to report it (it costs
  6-10 % of a pix2pix step on a TPU, issue 24; evaluation reports SSIM
  anyway).
  """
  generator: Any
  discriminator: Any
  tx: Mapping[str, optax.GradientTransformation]
  adversarial: str
  weights: Mapping[str, float]
  report_ssim: bool = False

  @property
  def ssim_scored(self) -> bool:
    """Whether `update` returns g_ssim: optimized, or asked for a report."""
    return self.weights["ssim"] > 0 or self.report_ssim

  @property
  def metric_names(self) -> tuple[str, ...]:
    """The keys of the scalars `update` returns."""
    names = ("g_loss", "d_loss", "d_real", "d_fake", "g_adv", "g_l1")
    ssim = ("g_ssim",) if self.ssim_scored else ()
    fm = ("g_fm",) if self.weights["feature_matching"] > 0 else ()
    return names + ssim + fm + ("loss_is_finite",)

  def discriminate(self, params, stats, condition, image):
    """D in train mode: (features, logits, updated batch_stats)."""
    output, stats = base.train_apply(self.discriminator, params, stats,
                                     condition, image)
    features, logits = gan.split_discriminator_output(output)
    return features, logits, stats

  def update(self, nets: gan.Nets, condition, d_condition, real, rngs
             ) -> tuple[gan.Nets, jax.Array, dict[str, jax.Array]]:
    """One D update, then one G update against the updated D.

    `condition` is G's input (an array or a source dict), `d_condition` the
    array D sees beside the image, `real` the target (float32), `rngs` G's
    RNGs ('dropout', 'noise'). Returns the new variables, G's train-mode
    output (float32; the fake D was trained on) and float32 scalars g_loss,
    d_loss, d_real, d_fake (mean logits), g_adv, g_l1, g_ssim (optimized or
    `report_ssim`), g_fm (with feature matching) and loss_is_finite.
    """
    w = self.weights

    def generate(g_params):
      fake, g_stats = base.train_apply(
          self.generator, g_params, nets.batch_stats[gan.GENERATOR], condition,
          rngs=rngs)
      return fake.astype(jnp.float32), g_stats

    def discriminate(params, stats, image):
      _, logits, stats = self.discriminate(params, stats, d_condition, image)
      return logits, stats

    def generator_loss(fake_image, d_params, d_stats):
      if w["feature_matching"] > 0:
        real_features, _, d_stats = self.discriminate(
            d_params, d_stats, d_condition, real)
      features, logits, d_stats = self.discriminate(
          d_params, d_stats, d_condition, fake_image)
      parts = {"g_adv": losses.generator_adversarial_loss(self.adversarial,
                                                          logits),
               "g_l1": losses.l1_loss(fake_image, real)}
      total = parts["g_adv"] + w["l1"] * parts["g_l1"]
      if w["ssim"] > 0:
        parts["g_ssim"] = losses.ssim_loss(fake_image, real, data_range=2.0)
        total = total + w["ssim"] * parts["g_ssim"]
      if w["feature_matching"] > 0:
        parts["g_fm"] = losses.feature_matching_loss(
            real_features, features, layer_reduction="mean")
        total = total + w["feature_matching"] * parts["g_fm"]
      return total, (parts, d_stats)

    step = gan.adversarial_update(
        nets, self.tx, generate=generate, generator_loss=generator_loss,
        pair=gan.two_calls(discriminate), kind=self.adversarial, real=real)
    parts = step.aux
    if self.ssim_scored and "g_ssim" not in parts:  # reported only
      parts["g_ssim"] = losses.ssim_loss(jax.lax.stop_gradient(step.fake), real,
                                         data_range=2.0)
    d_loss = step.scalars["d_loss"]
    finite = jnp.isfinite(step.g_loss) & jnp.isfinite(d_loss)
    scalars = {"g_loss": step.g_loss, **step.scalars, **parts,
               "loss_is_finite": finite}
    return step.nets, step.fake, {k: jnp.asarray(v, jnp.float32)
                                  for k, v in scalars.items()}
