"""Paired conditional GAN: pix2pix, RS-SPADE and each cloud-removal stage.

One recipe (Isola et al., "Image-to-image translation with conditional
adversarial networks", CVPR 2017, Eq. 1-4): a generator G maps the condition
x (the config's `inputs`) to the target y (`target`); a discriminator D sees
concat(x, image) and tells real pairs from generated ones. Objective

  G* = arg min_G max_D  L_cGAN(G, D) + lambda_L1 L_L1(G)           (Eq. 4)

extended, as the RS-SPADE paper (Wang & Zhou, Sec. 3.3) and the cloud-removal
paper (Eq. 3) do, with lambda_SSIM (1 - SSIM) and optionally pix2pixHD
feature matching over D's intermediate features:

  L_G = L_adv(D(x, G(x))) + loss.l1 |y - G(x)|_1 + loss.ssim (1 - SSIM(G(x), y))
        + loss.feature_matching sum_l |D_l(x, y) - D_l(x, G(x))|_1
  L_D = L_adv^D(D(x, y), D(x, sg(G(x))))

with L_adv one of vanilla (BCE, non-saturating for G), lsgan, hinge
(`config.loss.adversarial`). RS-SPADE (`model.generator = 'rs_spade'`) gets
its sources as a {field: raster} dict (one embedding branch per source,
land cover one-hot); every other generator gets the channel concatenation.

Step order (as the pix2pix reference `optimize_parameters`): one G forward
(train mode, its vjp kept), a D step on real and on the stopped fake (two D
calls, so BatchNorm statistics are per call as in PyTorch), then the G step
against the *updated* D, back-propagated through the kept vjp (the same fake,
no second G forward). D's BatchNorm / spectral-norm state is threaded through
its three calls. Evaluation and `predict` run G in inference mode (running
BatchNorm averages, no dropout) with the EMA parameters when
`config.ema_decay` > 0.

`GANRecipe.update` is that step for one G/D pair, on its own variables
(`GANNets`); PairedGAN runs it once per step, the cloud-removal system once
per stage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from rsjax import losses, metrics
from rsjax.nn import registry
from rsjax.systems import base
from rsjax.systems import inputs as inputs_lib

NETS = ("generator", "discriminator")


def config_kwargs(config_dict) -> dict[str, Any]:
  """A ConfigDict / mapping of module kwargs as a plain dict (None: {})."""
  if config_dict is None:
    return {}
  return dict(config_dict.to_dict() if hasattr(config_dict, "to_dict")
              else config_dict)


def generator_size_multiple(module, name: str) -> int:
  """What H and W of the generator's input must be divisible by."""
  if hasattr(module, "num_downs"):
    return 2**module.num_downs                   # unet
  if hasattr(module, "num_upsamplings"):
    return 2**module.num_upsamplings             # spade, rs_spade, senet
  return {"drib": 8, "resnet": 4}.get(name, 1)


def split_discriminator_output(output):
  """(features, logits) of a PatchGAN, or lists of them per scale."""
  if isinstance(output, list):                   # MultiScalePatchGAN
    return [f for f, _ in output], [l for _, l in output]
  return output


def _mean_logit(logits) -> jax.Array:
  scales = logits if isinstance(logits, list) else [logits]
  return jnp.mean(jnp.stack([jnp.mean(x.astype(jnp.float32)) for x in scales]))


class PairedGAN:
  """pix2pix-style paired GAN system (see the module docstring)."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.dtype = base.compute_dtype(config)
    self.num_classes = int(config.num_classes)
    self.inputs = inputs_lib.check_field_names(config.inputs, "config.inputs")
    (self.target,) = inputs_lib.check_field_names((config.target,), "config.target")
    if self.target in self.inputs:
      raise ValueError(f"config.target {self.target!r} is also in config.inputs "
                       f"{list(self.inputs)}")
    self.out_channels = inputs_lib.field_channels(self.target, self.num_classes)
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
               for net in NETS}
    self.recipe = GANRecipe(
        self.generator, self.discriminator, self.tx,
        adversarial_kind(config.loss.adversarial, "config.loss.adversarial"),
        loss_weights(config.loss))
    self.ema_decay = float(config.get("ema_decay", 0.0) or 0.0)
    if not 0.0 <= self.ema_decay < 1.0:
      raise ValueError(f"config.ema_decay must be in [0, 1), got {self.ema_decay}")
    self.size_multiple = generator_size_multiple(self.generator,
                                                 self.generator_name)

  # ------------------------------------------------------------- inputs --

  def check_batch(self, batch: Mapping[str, Any]) -> None:
    """Clear errors for missing fields, wrong channels, or a tile size the
    generator cannot take (static shapes: works under jit and eval_shape)."""
    for name in (*self.inputs, self.target):
      if name not in batch:
        raise KeyError(f"batch has no field {name!r} (config.inputs / "
                       f"config.target); it has {sorted(batch)}: add it to "
                       f"config.data.fields")
    target = batch[self.target]
    if target.ndim != 4 or target.shape[-1] != self.out_channels:
      raise ValueError(f"config.target {self.target!r}: expected (B, H, W, "
                       f"{self.out_channels}), got shape {target.shape}")
    height, width = target.shape[1:3]
    if height % self.size_multiple or width % self.size_multiple:
      raise ValueError(
          f"config.model.generator {self.generator_name!r} needs a tile size "
          f"divisible by {self.size_multiple}, got {height}x{width} (change "
          f"config.data tile size or the generator's depth kwargs)")

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
        opt_state={net: self.tx[net].init(params[net]) for net in NETS},
        ema_params=({"generator": params["generator"]} if self.ema_decay > 0
                    else None))

  # --------------------------------------------------------------- train --

  def train_step(self, state: base.State, batch):
    """One D update and one G update; returns (state, float32 metrics)."""
    real = jnp.asarray(batch[self.target], jnp.float32)
    rngs = {"dropout": state.step_rng("dropout"), "noise": state.step_rng("noise")}
    nets, _, scalars = self.recipe.update(
        GANNets(state.params, state.batch_stats, state.opt_state),
        self.condition(batch), self._d_condition(batch), real, rngs)
    ema = state.ema_params
    if ema is not None:
      ema = {"generator": base.ema_update(ema["generator"],
                                          nets.params["generator"],
                                          self.ema_decay)}
    new_state = state.replace(step=state.step + 1, params=nets.params,
                              batch_stats=nets.batch_stats,
                              opt_state=nets.opt_state, ema_params=ema)
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
    """`score_sums` of the prediction against the target."""
    return score_sums(self.predict(state, batch), batch[self.target],
                      batch.get("mask"))

  def finalize_eval(self, sums: Mapping[str, Any]) -> dict[str, float]:
    return finalize_scores(sums)

  def panels(self, batch: Mapping[str, Any], prediction) -> dict[str, np.ndarray]:
    """Host-side (B, H, W, 3) images in [0, 1]: every input field, then the
    prediction and the target as RGB and NRG composites (prediction stretched
    like the target)."""
    out = {}
    for name in self.inputs:
      out.update(inputs_lib.field_panels(name, np.asarray(batch[name]),
                                         self.num_classes))
    target = np.asarray(batch[self.target], np.float32)
    prediction = np.asarray(prediction, np.float32)
    for label, image, reference in (("pred", prediction, target),
                                    ("target", target, None)):
      for key, value in inputs_lib.field_panels(
          self.target, image, self.num_classes, reference).items():
        out[key.replace(self.target, label, 1)] = value
    return out


class GANNets(NamedTuple):
  """One G/D pair's variables: params, batch_stats and optimizer states, each
  a dict {'generator': ..., 'discriminator': ...}."""
  params: dict[str, Any]
  batch_stats: dict[str, Any]
  opt_state: dict[str, Any]


def adversarial_kind(kind: str, key: str) -> str:
  """`kind` if it is a known adversarial loss; else a ValueError naming `key`."""
  if kind not in losses.ADVERSARIAL_KINDS:
    raise ValueError(f"{key}: unknown kind {kind!r}; valid: "
                     f"{', '.join(losses.ADVERSARIAL_KINDS)}")
  return kind


def loss_weights(loss_config) -> dict[str, float]:
  """{'l1', 'ssim', 'feature_matching'} weights of a loss config (0 if unset)."""
  return {k: float(loss_config.get(k, 0.0) or 0.0)
          for k in ("l1", "ssim", "feature_matching")}


@dataclasses.dataclass(frozen=True)
class GANRecipe:
  """The paired-GAN update of one G/D pair (see the module docstring).

  `tx` holds the optax transformations {'generator', 'discriminator'};
  `weights` the loss weights {'l1', 'ssim', 'feature_matching'}. Any system
  with one or several conditional GANs (PairedGAN, each stage of the cloud
  removal system) runs `update` once per pair and step.
  """
  generator: Any
  discriminator: Any
  tx: Mapping[str, optax.GradientTransformation]
  adversarial: str
  weights: Mapping[str, float]

  @property
  def metric_names(self) -> tuple[str, ...]:
    """The keys of the scalars `update` returns."""
    names = ("g_loss", "d_loss", "d_real", "d_fake", "g_adv", "g_l1", "g_ssim")
    fm = ("g_fm",) if self.weights["feature_matching"] > 0 else ()
    return names + fm + ("loss_is_finite",)

  def discriminate(self, params, stats, condition, image):
    """D in train mode: (features, logits, updated batch_stats)."""
    output, mutated = self.discriminator.apply(
        {"params": params, "batch_stats": stats}, condition, image, train=True,
        mutable=["batch_stats"])
    features, logits = split_discriminator_output(output)
    return features, logits, mutated.get("batch_stats", stats)

  def update(self, nets: GANNets, condition, d_condition, real, rngs
             ) -> tuple[GANNets, jax.Array, dict[str, jax.Array]]:
    """One D update, then one G update against the updated D.

    `condition` is G's input (an array or a source dict), `d_condition` the
    array D sees beside the image, `real` the target (float32), `rngs` G's
    RNGs ('dropout', 'noise'). Returns the new variables, G's train-mode
    output (float32; the fake D was trained on) and float32 scalars g_loss,
    d_loss, d_real, d_fake (mean logits), g_adv, g_l1, g_ssim (reported even
    at weight 0), g_fm (with feature matching) and loss_is_finite.
    """
    params, stats = nets.params, nets.batch_stats

    def generate(g_params):
      fake, mutated = self.generator.apply(
          {"params": g_params, "batch_stats": stats["generator"]}, condition,
          train=True, rngs=rngs, mutable=["batch_stats"])
      return fake.astype(jnp.float32), mutated.get("batch_stats", {})

    fake, g_vjp, g_stats = jax.vjp(generate, params["generator"], has_aux=True)

    # D step on real pairs and stopped fakes.
    def d_loss_fn(d_params):
      _, real_logits, d_stats = self.discriminate(
          d_params, stats["discriminator"], d_condition, real)
      _, fake_logits, d_stats = self.discriminate(
          d_params, d_stats, d_condition, jax.lax.stop_gradient(fake))
      loss = losses.discriminator_loss(self.adversarial, real_logits, fake_logits)
      return loss, (d_stats, _mean_logit(real_logits), _mean_logit(fake_logits))

    (d_loss, (d_stats, d_real, d_fake)), d_grads = jax.value_and_grad(
        d_loss_fn, has_aux=True)(params["discriminator"])
    d_updates, d_opt = self.tx["discriminator"].update(
        d_grads, nets.opt_state["discriminator"], params["discriminator"])
    d_params = optax.apply_updates(params["discriminator"], d_updates)

    # G step against the updated D, through the kept vjp of the G forward.
    w = self.weights
    if w["feature_matching"] > 0:
      real_features, _, d_stats = self.discriminate(
          d_params, d_stats, d_condition, real)

    def g_loss_fn(fake_image):
      features, logits, new_d_stats = self.discriminate(
          d_params, d_stats, d_condition, fake_image)
      parts = {"g_adv": losses.generator_adversarial_loss(self.adversarial, logits),
               "g_l1": losses.l1_loss(fake_image, real)}
      total = parts["g_adv"] + w["l1"] * parts["g_l1"]
      if w["ssim"] > 0:
        parts["g_ssim"] = losses.ssim_loss(fake_image, real, data_range=2.0)
        total = total + w["ssim"] * parts["g_ssim"]
      if w["feature_matching"] > 0:
        parts["g_fm"] = losses.feature_matching_loss(real_features, features)
        total = total + w["feature_matching"] * parts["g_fm"]
      return total, (parts, new_d_stats)

    (g_loss, (parts, d_stats)), fake_grad = jax.value_and_grad(
        g_loss_fn, has_aux=True)(fake)
    (g_grads,) = g_vjp(fake_grad)
    g_updates, g_opt = self.tx["generator"].update(
        g_grads, nets.opt_state["generator"], params["generator"])
    g_params = optax.apply_updates(params["generator"], g_updates)

    if "g_ssim" not in parts:  # reported even when not optimized
      parts["g_ssim"] = losses.ssim_loss(jax.lax.stop_gradient(fake), real,
                                         data_range=2.0)
    new_nets = GANNets(
        params={"generator": g_params, "discriminator": d_params},
        batch_stats={"generator": g_stats, "discriminator": d_stats},
        opt_state={"generator": g_opt, "discriminator": d_opt})
    finite = jnp.isfinite(g_loss) & jnp.isfinite(d_loss)
    scalars = {"g_loss": g_loss, "d_loss": d_loss, "d_real": d_real,
               "d_fake": d_fake, **parts, "loss_is_finite": finite}
    return new_nets, fake, {k: jnp.asarray(v, jnp.float32)
                            for k, v in scalars.items()}


def score_sums(prediction, target, mask=None) -> dict[str, jax.Array]:
  """Mask-weighted sums of per-image PSNR, SSIM (data range 1) and SAM
  (degrees) on prediction and target mapped from [-1, 1] to [0, 1], and the
  count. `mask` (B,) is 1 for real examples and 0 for eval padding."""
  pred = (jnp.asarray(prediction, jnp.float32) + 1.0) / 2.0
  target = (jnp.asarray(target, jnp.float32) + 1.0) / 2.0
  mask = jnp.ones(target.shape[:1]) if mask is None else jnp.asarray(
      mask, jnp.float32)
  counted = mask > 0
  per_image = {
      "psnr": metrics.psnr(pred, target, data_range=1.0),
      "ssim": metrics.ssim(pred, target, data_range=1.0),
      "sam": metrics.sam(pred, target, degrees=True)}
  # where(): padding rows may hold garbage (inf or NaN) that 0 * x keeps.
  sums = {f"{k}_sum": jnp.sum(jnp.where(counted, v * mask, 0.0))
          for k, v in per_image.items()}
  sums["count"] = jnp.sum(mask)
  return sums


def finalize_scores(sums: Mapping[str, Any]) -> dict[str, float]:
  """{'psnr' (dB), 'ssim', 'sam' (degrees)}: means over counted images."""
  count = float(np.asarray(sums["count"]))
  return {k: (float(np.asarray(sums[f"{k}_sum"])) / count if count else
              float("nan")) for k in ("psnr", "ssim", "sam")}


def build_module(key: str, getter, name: str, kwargs: dict, dtype):
  """A registry module; errors (unknown name, bad kwargs) name `key`."""
  try:
    return getter(name, dtype=dtype, **kwargs)
  except (ValueError, TypeError) as error:
    raise ValueError(f"{key} = {name!r}: {error}") from error
