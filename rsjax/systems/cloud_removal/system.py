"""Cloud removal with two GANs (Darbaghshahi, Mohammadi & Soryani, "Cloud
removal in remote sensing images using generative adversarial networks and
SAR-to-optical image translation", Sec. 2, Fig. 1-2, Eq. 1-5).

  stage 1 (SAR-to-optical):  G1(SAR VV) -> optical bands,  D1 sees (SAR, image)
  stage 2 (cloud removal):   G2(cloudy bands ++ G1(SAR)) -> cloud-free bands,
                             D2 sees (the 6-channel condition, image)

Each stage is a paired GAN trained with the pix2pix recipe
(`rsjax.systems.pix2pix_recipe.PairedRecipe`: a D step, then a G step against
the updated D) and
L_G = L_cGAN + 100 L1 + 100 (1 - SSIM) (Eq. 5); both generators are DRIB
encoder-decoders (`rsjax.nn.drib`, Tables 1-2) or, for the ablation of Table 5,
U-Nets; `config.model.stage1.generator = 'none'` is Table 5's first row (no
translation: G2 gets the cloudy bands and the SAR directly).

The paper trains the two GANs separately (GAN1 on many SAR/optical pairs,
then GAN2 on the translations of the trained GAN1, Sec. 2). `config.schedule`:

  'sequential' (the paper): steps [0, S1) train stage 1 only; steps
      [S1, total) train stage 2 only, fed the frozen stage 1's output in
      inference mode, exactly what `predict` feeds it. S1 = stage1_fraction *
      total_steps; each stage's learning-rate schedule spans its own steps.
  'joint': both GANs every step; stage 2 gets stage 1's train-mode output of
      that step with its gradient stopped.

`config.train_crop` (None: whole tiles) trains on one random window of that
size per batch (the generators are fully convolutional; evaluation and
`predict` see whole tiles): a CPU demo's shortcut, not the paper's.

Clouds come from `clouds` (`config.clouds`, `config.eval_clouds`):
synthetic thick clouds made on device, or the dataset's `s2_cloudy` /
`cloud_mask`. Scores (`scores`): psnr, ssim, psnr_cloudy, psnr_clear,
stage1_psnr, stage1_ssim; sample grids: `panels`.

`predict` reads s1 and s2_cloudy when `eval_clouds` is 'dataset' (real
cloudy scenes), else s1 and the clear s2, which it clouds deterministically.

State networks: stage1_generator, stage1_discriminator, stage2_generator,
stage2_discriminator (the stage-1 pair is absent without stage 1). Training
metrics are `stage{1,2}_<PairedRecipe metric>`, `stage{1,2}_active` (1 when the
stage trained in that step; an idle stage reports zeros), cloud_fraction and
loss_is_finite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rsjax.nn import registry
from rsjax.systems import base, checks, gan, pix2pix_recipe, trained
from rsjax.systems import inputs as inputs_lib
from rsjax.systems.cloud_removal import clouds as clouds_lib
from rsjax.systems.cloud_removal import panels as panels_lib
from rsjax.systems.cloud_removal import scores as scores_lib
from rsjax.systems.networks import (build_module, config_kwargs,
                                    generator_size_multiple)

STAGES = ("stage1", "stage2")
SCHEDULES = ("sequential", "joint")
NO_STAGE = "none"
SSIM_MIN_SIZE = 11


def _int_tuple(value, key: str, limit: int) -> tuple[int, ...]:
  values = tuple(int(v) for v in (value if isinstance(value, (list, tuple))
                                  else (value,)))
  if not values or len(set(values)) != len(values) or not all(
      0 <= v < limit for v in values):
    raise ValueError(f"{key} must be distinct band indices in [0, {limit}), "
                     f"got {value!r}")
  return values


class CloudRemoval:
  """The two-GAN cloud-removal system (see the module docstring)."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.dtype = base.compute_dtype(config)
    # Indices into the bands the run reads (config.data.bands).
    self.sar_channels = len(inputs_lib.run_bands(config, "s1"))
    self.optical_channels = len(inputs_lib.run_bands(config, "s2"))
    self.sar_bands = _int_tuple(config.sar_bands, "config.sar_bands",
                                self.sar_channels)
    self.bands = _int_tuple(config.optical_bands, "config.optical_bands",
                            self.optical_channels)
    self.clouds = clouds_lib.check_source(config.clouds, "config.clouds")
    self.eval_clouds = clouds_lib.check_source(
        config.get("eval_clouds") or self.clouds, "config.eval_clouds")
    self.cloud_params = clouds_lib.synthetic_params(
        config.get("synthetic_clouds"))
    gan.ema_decay(config, "cloud_removal")
    self.has_stage1 = config.model.stage1.generator != NO_STAGE
    self.stages = STAGES if self.has_stage1 else STAGES[1:]
    self.schedule = config.get("schedule", "sequential")
    if self.schedule not in SCHEDULES:
      raise ValueError(f"config.schedule: unknown schedule {self.schedule!r}; "
                       f"valid: {', '.join(SCHEDULES)}")
    total = int(config.total_steps)
    self.stage1_steps = total
    stage_steps = {"stage1": total, "stage2": total}
    if self.has_stage1 and self.schedule == "sequential":
      fraction = float(config.stage1_fraction)
      self.stage1_steps = int(round(fraction * total))
      if not 0 < self.stage1_steps < total:
        raise ValueError(
            f"config.stage1_fraction = {fraction} gives {self.stage1_steps} of "
            f"config.total_steps = {total} steps to stage 1; both stages need "
            f"at least one step")
      stage_steps = {"stage1": self.stage1_steps,
                     "stage2": total - self.stage1_steps}
    self.recipes, self.size_multiple, self.tx = {}, 1, {}
    for stage in self.stages:
      recipe, multiple = self._build_stage(stage, stage_steps[stage])
      self.recipes[stage] = recipe
      self.size_multiple = int(np.lcm(self.size_multiple, multiple))
      for net in gan.NETS:
        self.tx[f"{stage}_{net}"] = recipe.tx[net]
    self.train_crop = config.get("train_crop")
    if self.train_crop is not None:
      self.train_crop = int(self.train_crop)
      if (self.train_crop < SSIM_MIN_SIZE
          or self.train_crop % self.size_multiple):
        raise ValueError(
            f"config.train_crop = {self.train_crop} must be None or a size of "
            f"at least {SSIM_MIN_SIZE} divisible by {self.size_multiple} (the "
            f"generators' downsampling)")
    # What a user has at inference time: the SAR and a cloudy image.
    self.predict_fields = ("s1", "s2_cloudy")
    self.output_field = "s2"
    self.output_bands = self.bands

  def _build_stage(self, stage: str, steps: int):
    model = self.config.model[stage]
    key = f"config.model.{stage}"
    g_kwargs = {"out_channels": len(self.bands),
                **config_kwargs(model.get("generator_kwargs"))}
    generator = build_module(
        f"{key}.generator", registry.get_generator, model.generator, g_kwargs,
        self.dtype)
    discriminator = build_module(
        f"{key}.discriminator", registry.get_discriminator,
        model.discriminator,
        config_kwargs(model.get("discriminator_kwargs")), self.dtype)
    loss = self.config.loss[stage]
    tx = {net: base.adam(self.config.optimizer[f"{stage}_{net}"], steps)
          for net in gan.NETS}
    recipe = pix2pix_recipe.PairedRecipe(
        generator, discriminator, tx,
        gan.adversarial_kind(loss.adversarial,
                                    f"config.loss.{stage}.adversarial"),
        pix2pix_recipe.loss_weights(loss), pix2pix_recipe.report_ssim(loss))
    return recipe, generator_size_multiple(generator, model.generator)

  # ------------------------------------------------------------- inputs --

  def check_batch(self, batch: Mapping[str, Any]) -> None:
    """Clear errors, at trace time, for missing fields, wrong shapes and tile
    sizes the generators cannot take (the fields of both cloud sources)."""
    checks.require_fields(
        batch, ["s1", "s2", *clouds_lib.required_fields(self.clouds),
                *clouds_lib.required_fields(self.eval_clouds)],
        "needed by config.clouds / config.eval_clouds")
    s2 = batch["s2"]
    checks.check_image(s2, self.optical_channels, "field 's2'")
    expected = {"s1": s2.shape[:3] + (self.sar_channels,),
                "s2_cloudy": s2.shape,
                "cloud_mask": s2.shape[:3]}
    for name, shape in expected.items():
      if name in batch:
        checks.check_shape(batch[name], shape, f"field {name!r}",
                           f"(as 's2' {s2.shape})")
    checks.check_tile_size(
        s2.shape, self.size_multiple, "config.model.stage1/stage2 generators",
        "change the tile size or the generators' depth kwargs")
    height, width = s2.shape[1:3]
    if self.train_crop is not None and self.train_crop > min(height, width):
      raise ValueError(f"config.train_crop = {self.train_crop} is larger than "
                       f"the {height}x{width} tiles")
    if min(height, width) < SSIM_MIN_SIZE:
      raise ValueError(f"tiles of {height}x{width} are smaller than the "
                       f"{SSIM_MIN_SIZE}x{SSIM_MIN_SIZE} SSIM window")

  def sar(self, batch) -> jax.Array:
    return jnp.asarray(batch["s1"], jnp.float32)[..., list(self.sar_bands)]

  def target(self, batch) -> jax.Array:
    return jnp.asarray(batch["s2"], jnp.float32)[..., list(self.bands)]

  def cloudy_input(self, batch, source: str, key=None):
    """(cloudy bands, corrupted mask (B, H, W)): random synthetic clouds when
    `key` is given, content-keyed ones otherwise, or the dataset's."""
    if source == "dataset":
      return clouds_lib.dataset_clouds(batch, self.bands)
    if key is None:
      return clouds_lib.fixed_clouds(self.target(batch), self.cloud_params)
    return clouds_lib.random_clouds(key, self.target(batch), self.cloud_params)

  def stage2_condition(self, cloudy, translated, batch) -> jax.Array:
    """G2's input: the cloudy bands and the translation (or, without stage
    1, the SAR)."""
    second = translated if self.has_stage1 else self.sar(batch)
    return jnp.concatenate([cloudy, second.astype(jnp.float32)], axis=-1)

  # --------------------------------------------------------------- init --

  def init(self, rng: jax.Array, batch) -> base.State:
    self.check_batch(batch)
    real = self.target(batch)
    conditions = {"stage1": self.sar(batch),
                  "stage2": self.stage2_condition(real, real, batch)}
    params, stats, opt_state = {}, {}, {}
    keys = jax.random.split(rng, 2 * len(STAGES) + 1)
    for i, stage in enumerate(self.stages):
      recipe = self.recipes[stage]
      g_key, d_key = keys[2 * i], keys[2 * i + 1]
      g_vars = recipe.generator.init(
          {"params": g_key, "dropout": g_key, "noise": g_key},
          conditions[stage], train=False)
      d_vars = recipe.discriminator.init({"params": d_key}, conditions[stage],
                                         real, train=False)
      for net, variables in (("generator", g_vars), ("discriminator", d_vars)):
        name = f"{stage}_{net}"
        params[name] = variables["params"]
        stats[name] = variables.get("batch_stats", {})
        opt_state[name] = self.tx[name].init(params[name])
    return base.State(step=jnp.zeros((), jnp.int32), rng=keys[-1],
                      params=params, batch_stats=stats, opt_state=opt_state)

  # --------------------------------------------------------------- train --

  @staticmethod
  def _nets(state, stage: str) -> gan.Nets:
    pick = lambda tree: {net: tree[f"{stage}_{net}"]  # noqa: E731
                         for net in gan.NETS}
    return gan.Nets(pick(state.params), pick(state.batch_stats),
                              pick(state.opt_state))

  def _rngs(self, state, stage_index: int) -> dict[str, jax.Array]:
    return {name: jax.random.fold_in(state.step_rng(name), stage_index)
            for name in ("dropout", "noise")}

  def _translate(self, state, batch, params=None) -> jax.Array:
    """Stage 1 in inference mode (running BatchNorm averages, no dropout)."""
    recipe = self.recipes["stage1"]
    params = state.params["stage1_generator"] if params is None else params
    output = recipe.generator.apply(
        {"params": params, "batch_stats": state.batch_stats["stage1_generator"]},
        self.sar(batch), train=False)
    return output.astype(jnp.float32)

  def _update(self, stage, nets, state, condition, real):
    index = STAGES.index(stage) + 1
    return self.recipes[stage].update(nets, condition, condition, real,
                                      self._rngs(state, index))

  def train_step(self, state: base.State, batch):
    """One update of stage 1 and/or stage 2 (see `config.schedule`)."""
    self.check_batch(batch)
    if self.train_crop is not None:
      batch = clouds_lib.random_crop(batch, self.train_crop,
                                        state.step_rng("crop"))
    real = self.target(batch)
    cloudy, corrupted = self.cloudy_input(batch, self.clouds,
                                          state.step_rng("clouds"))
    nets = {stage: self._nets(state, stage) for stage in self.stages}

    def train_stage1(nets):
      new, fake, metrics = self._update("stage1", nets["stage1"], state,
                                        self.sar(batch), real)
      return {**nets, "stage1": new}, fake, metrics

    def train_stage2(nets, translated):
      condition = self.stage2_condition(cloudy, translated, batch)
      new, _, metrics = self._update("stage2", nets["stage2"], state,
                                     condition, real)
      return {**nets, "stage2": new}, metrics

    if not self.has_stage1:
      nets, m2 = train_stage2(nets, None)
      metrics, active = {"stage2": m2}, {"stage2": 1.0}
    elif self.schedule == "joint":
      nets, fake, m1 = train_stage1(nets)
      nets, m2 = train_stage2(nets, jax.lax.stop_gradient(fake))
      metrics, active = {"stage1": m1, "stage2": m2}, {"stage1": 1.0,
                                                        "stage2": 1.0}
    else:
      zeros = tuple({k: jnp.zeros((), jnp.float32)
                     for k in self.recipes[stage].metric_names}
                    for stage in STAGES)

      def phase1(nets):
        nets, _, m1 = train_stage1(nets)
        return nets, (m1, zeros[1]), jnp.array([1.0, 0.0])

      def phase2(nets):
        nets, m2 = train_stage2(nets, self._translate(state, batch))
        return nets, (zeros[0], m2), jnp.array([0.0, 1.0])

      nets, (m1, m2), flags = jax.lax.cond(state.step < self.stage1_steps,
                                           phase1, phase2, nets)
      metrics = {"stage1": m1, "stage2": m2}
      active = {"stage1": flags[0], "stage2": flags[1]}

    params, stats, opt_state = {}, {}, {}
    for stage, stage_nets in nets.items():
      for net in gan.NETS:
        params[f"{stage}_{net}"] = stage_nets.params[net]
        stats[f"{stage}_{net}"] = stage_nets.batch_stats[net]
        opt_state[f"{stage}_{net}"] = stage_nets.opt_state[net]
    new_state = state.replace(step=state.step + 1, params=params,
                              batch_stats=stats, opt_state=opt_state)
    scalars = {"cloud_fraction": jnp.mean(corrupted)}
    finite = jnp.array(True)
    for stage, stage_metrics in metrics.items():
      finite &= (stage_metrics.pop("loss_is_finite") > 0) | (active[stage] == 0)
      scalars[f"{stage}_active"] = active[stage]
      scalars.update({f"{stage}_{k}": v for k, v in stage_metrics.items()})
    scalars["loss_is_finite"] = finite
    return new_state, {k: jnp.asarray(v, jnp.float32)
                       for k, v in scalars.items()}

  # ---------------------------------------------------------------- eval --

  def _forward(self, state, batch, cloudy):
    """(stage-1 output or None, stage-2 output), inference mode, float32."""
    translated = self._translate(state, batch) if self.has_stage1 else None
    output = self.recipes["stage2"].generator.apply(
        {"params": state.params["stage2_generator"],
         "batch_stats": state.batch_stats["stage2_generator"]},
        self.stage2_condition(cloudy, translated, batch), train=False)
    return translated, output.astype(jnp.float32)

  def predict_stages(self, state, batch) -> dict[str, jax.Array]:
    """{'cloudy', 'cloud_mask', 'stage1' (with stage 1), 'stage2'}: the
    evaluation inputs and both stages' outputs, normalized units."""
    cloudy, corrupted = self.cloudy_input(batch, self.eval_clouds)
    translated, output = self._forward(state, batch, cloudy)
    out = {"cloudy": cloudy, "cloud_mask": corrupted, "stage2": output}
    if translated is not None:
      out["stage1"] = translated
    return out

  def predict(self, state: base.State, batch) -> jax.Array:
    """The cloud-free `output_bands` of s2 in [-1, 1] (stage 2's output).

    The cloudy input is the batch's `s2_cloudy` when it has one (full-scene
    inference, dataset clouds), else the evaluation clouds over `s2`."""
    if "s2_cloudy" in batch:
      cloudy = jnp.asarray(batch["s2_cloudy"], jnp.float32)[..., list(self.bands)]
      return self._forward(state, batch, cloudy)[1]
    return self.predict_stages(state, batch)["stage2"]

  def eval_step(self, state: base.State, batch) -> dict[str, jax.Array]:
    self.check_batch(batch)
    stages = self.predict_stages(state, batch)
    return scores_lib.score_sums(stages["stage2"], self.target(batch),
                                   stages["cloud_mask"], stages.get("stage1"),
                                   batch.get("mask"))

  def finalize_eval(self, sums: Mapping[str, Any]) -> dict[str, float]:
    return scores_lib.finalize_scores(sums)

  def panels(self, batch: Mapping[str, Any], prediction
             ) -> dict[str, base.Panel]:
    """Host sample-grid panels of the real examples (see `panels.panels`)."""
    batch, prediction = inputs_lib.real_rows(batch, prediction)
    if not isinstance(prediction, Mapping):
      stages = jax.device_get(self.cloudy_input(dict(batch), self.eval_clouds))
      prediction = {"cloudy": stages[0], "cloud_mask": stages[1],
                    "stage2": prediction}
    return panels_lib.panels(batch, prediction, np.asarray(self.target(batch)),
                             self.bands, trained.normalization(self.config))
