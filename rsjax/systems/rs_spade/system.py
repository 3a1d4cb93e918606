"""Paired conditional GAN system: pix2pix and RS-SPADE (`paired_gan`).

A generator G maps the condition x (the config's `inputs`) to the target y
(`target`) and a PatchGAN D judges concat(x, image), trained with the pix2pix
recipe (Isola et al., CVPR 2017, Eq. 1-4; `rsjax.systems.pix2pix_recipe`)
extended as the RS-SPADE paper does (Wang & Zhou, Sec. 3.3): L1, 1 - SSIM and
optionally pix2pixHD feature matching, L_adv one of vanilla, lsgan, hinge
(`config.loss`). RS-SPADE (`model.generator = 'rs_spade'`, Sec. 3.1, Fig. 5)
gets its sources as a {field: raster} dict (one embedding branch per source,
land cover one-hot); every other generator gets the channel concatenation.

One D step and one G step per train step (`rsjax.systems.gan`); evaluation
and `predict` run G in inference mode (running BatchNorm averages, no
dropout) with the EMA parameters when `config.ema_decay` > 0. Scores: PSNR,
SSIM, SAM (Tables 1-2; `rsjax.systems.image_scores`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from rsjax.nn import registry
from rsjax.systems import base, checks, gan, image_scores, trained
from rsjax.systems import inputs as inputs_lib
from rsjax.systems import pix2pix_recipe
from rsjax.systems.networks import (build_module, config_kwargs,
                                    generator_size_multiple)


class PairedGAN:
  """pix2pix-style paired GAN system (see the module docstring)."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.dtype = base.compute_dtype(config)
    (self.target,) = inputs_lib.check_field_names((config.target,),
                                                  "config.target")
    self.inputs = checks.config_inputs(config, self.target, "config.target")
    self.num_classes = int(config.num_classes)
    self.out_channels = len(inputs_lib.run_bands(config, self.target))
    self.predict_fields = self.inputs
    self.output_field = self.target
    self.output_bands = None
    self.generator_name = config.model.generator
    self.multi_source = self.generator_name == "rs_spade"
    g_kwargs = {"out_channels": self.out_channels,
                **config_kwargs(config.model.get("generator_kwargs"))}
    if self.multi_source:
      g_kwargs.setdefault("sources", self.inputs)
      g_kwargs.setdefault("categorical_sources", tuple(
          n for n in self.inputs if n in inputs_lib.CATEGORICAL_FIELDS))
    if self.generator_name == "senet":
      g_kwargs.setdefault("num_classes", self.num_classes)
    self.generator = build_module("config.model.generator",
                                  registry.get_generator, self.generator_name,
                                  g_kwargs, self.dtype)
    self.discriminator = build_module(
        "config.model.discriminator", registry.get_discriminator,
        config.model.discriminator,
        config_kwargs(config.model.get("discriminator_kwargs")), self.dtype)
    self.tx = {net: base.adam(config.optimizer[net], int(config.total_steps))
               for net in gan.NETS}
    self.recipe = pix2pix_recipe.PairedRecipe(
        self.generator, self.discriminator, self.tx,
        gan.adversarial_kind(config.loss.adversarial, "config.loss.adversarial"),
        pix2pix_recipe.loss_weights(config.loss),
        pix2pix_recipe.report_ssim(config.loss))
    self.ema_decay = gan.ema_decay(config)
    self.size_multiple = generator_size_multiple(self.generator,
                                                 self.generator_name)

  # ------------------------------------------------------------- inputs --

  def check_batch(self, batch: Mapping[str, Any]) -> None:
    """Clear errors for missing fields, wrong channels, or a tile size the
    generator cannot take (static shapes: works under jit and eval_shape)."""
    checks.require_fields(batch, (*self.inputs, self.target),
                          "config.inputs / config.target")
    target = batch[self.target]
    checks.check_image(target, self.out_channels,
                       f"config.target {self.target!r}")
    checks.check_tile_size(
        target.shape, self.size_multiple,
        f"config.model.generator {self.generator_name!r}",
        "change config.data tile size or the generator's depth kwargs")

  def condition(self, batch):
    """The generator's input: a source dict (RS-SPADE) or a concatenation."""
    if self.multi_source:
      return inputs_lib.source_dict(batch, self.inputs, self.num_classes)
    return inputs_lib.concat_inputs(batch, self.inputs, self.num_classes)

  def _d_condition(self, batch):
    return inputs_lib.concat_inputs(batch, self.inputs, self.num_classes)

  # --------------------------------------------------------------- init --

  def init(self, rng: jax.Array, batch) -> base.State:
    self.check_batch(batch)
    g_key, d_key, noise_key, state_key = jax.random.split(rng, 4)
    target = jnp.asarray(batch[self.target], jnp.float32)
    g_vars = self.generator.init(
        {"params": g_key, "dropout": noise_key, "noise": noise_key},
        self.condition(batch), train=False)
    d_vars = self.discriminator.init({"params": d_key}, self._d_condition(batch),
                                     target, train=False)
    params = {"generator": g_vars["params"], "discriminator": d_vars["params"]}
    return base.State(
        step=jnp.zeros((), jnp.int32), rng=state_key, params=params,
        batch_stats={"generator": g_vars.get("batch_stats", {}),
                     "discriminator": d_vars.get("batch_stats", {})},
        opt_state={net: self.tx[net].init(params[net]) for net in gan.NETS},
        ema_params=gan.initial_ema(params, self.ema_decay))

  # --------------------------------------------------------------- train --

  def train_step(self, state: base.State, batch):
    """One D update and one G update; returns (state, float32 metrics)."""
    real = jnp.asarray(batch[self.target], jnp.float32)
    rngs = {"dropout": state.step_rng("dropout"), "noise": state.step_rng("noise")}
    nets, _, scalars = self.recipe.update(
        gan.Nets(state.params, state.batch_stats, state.opt_state),
        self.condition(batch), self._d_condition(batch), real, rngs)
    new_state = state.replace(
        step=state.step + 1, params=nets.params, batch_stats=nets.batch_stats,
        opt_state=nets.opt_state,
        ema_params=gan.ema_step(state.ema_params, nets.params, self.ema_decay))
    return new_state, scalars

  # ---------------------------------------------------------------- eval --

  def predict(self, state: base.State, batch) -> jax.Array:
    """G(x) in normalized units [-1, 1], inference mode (EMA params if any)."""
    params = (state.ema_params["generator"] if state.ema_params is not None
              else state.params["generator"])
    output = self.generator.apply(
        {"params": params, "batch_stats": state.batch_stats["generator"]},
        self.condition(batch), train=False,
        rngs={"noise": jax.random.fold_in(state.rng, 0x7E57)})
    return output.astype(jnp.float32)

  def eval_step(self, state: base.State, batch) -> dict[str, jax.Array]:
    """`image_scores.score_sums` of the prediction against the target."""
    return image_scores.score_sums(self.predict(state, batch),
                                   batch[self.target], batch.get("mask"))

  def finalize_eval(self, sums: Mapping[str, Any]) -> dict[str, float]:
    return image_scores.finalize_scores(sums)

  def panels(self, batch: Mapping[str, Any], prediction
             ) -> dict[str, base.Panel]:
    """Host-side panels of the real examples: every input field, then the
    prediction and the target as RGB and NRG composites (prediction stretched
    like the target)."""
    batch, prediction = inputs_lib.real_rows(batch, prediction)
    normalization = trained.normalization(self.config)
    out = {}
    for name in self.inputs:
      out.update(inputs_lib.field_panels(
          name, batch[name], self.num_classes, normalization=normalization,
          bands=inputs_lib.run_bands(self.config, name)))
    out.update(inputs_lib.prediction_panels(
        self.target, prediction, batch[self.target], self.num_classes,
        normalization=normalization,
        bands=inputs_lib.run_bands(self.config, self.target)))
    return out
