"""The comparison methods of the fusion paper's Table II, as systems.

Jiang, Shen & Li (TGRS 2022), Sec. III-A, Table II (resolution improvement,
t2 MODIS 500 m -> S2 10 m) compares its proposed-HSS with AIHS (MODIS + t2
SAR) and its proposed-ST with ESRCNN (MODIS + t1 S2); Table IV (thick cloud
removal) its proposed-HSS with, among others, SAR-opt-cGAN (t2 SAR + cloudy
t2 S2). `config.baseline` picks one; the system then sees the same observations as the cycle GAN
(`observations.FusionInputs`: `config.mode`, bands, resolution ratio, patch
windows, clouds) and is scored by the same indices (`scores`, SAM in
degrees), so its rows land in the same report table:

  'aihs'    Rahmani et al. 2010 (`aihs`): no parameters, nothing to train;
            the PAN image is the t2 SAR (mode 'hss', its channels averaged)
            or the t1 image (mode 'st', its bands averaged), the MS image the
            upsampled X^. `train_step` only counts steps, so `launch.train`
            writes a checkpoint that `launch.evaluate` scores.
  'esrcnn'  Shao et al. 2019 (`rsjax.nn.esrcnn`): the 9-1-5 network on the
            stacked forward input of the mode ((Z, X^) in 'st'), trained on
            the mean squared error to X (SRCNN's loss) with
            `config.optimizer.generator` (Adam).
  'sar_opt_cgan'  Grohnfeldt, Schmitt & Zhu, IGARSS 2018 (the fusion paper's
            reference [52]; its Table IV names it SAR-opt-cGAN but cites it
            as Simu-Fus-GAN, see configs/cycle_fusion.py): pix2pix (Isola et
            al. 2017) on the stacked SAR and cloudy optical image (mode
            'hss'): U-Net generator, 70 px PatchGAN conditioned on the same
            stack, cGAN (BCE) + 100 L1, Adam(0.5, 0.999) 2e-4
            (`rsjax.systems.pix2pix_recipe`, `config.model`, `config.loss`).

Both output in normalized units; the prediction is clipped to [-1, 1], the
range of the target's normalization, before scoring.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import ml_collections

from rsjax.nn import registry
from rsjax.nn.esrcnn import ESRCNN
from rsjax.systems import base, gan, pix2pix_recipe
from rsjax.systems.cycle_fusion import aihs as aihs_lib
from rsjax.systems.cycle_fusion import patches
from rsjax.systems.cycle_fusion import table_evaluation
from rsjax.systems.cycle_fusion.observations import FusionInputs
from rsjax.systems.networks import (build_module, config_kwargs,
                                    generator_size_multiple)

BASELINES = ("aihs", "esrcnn", "sar_opt_cgan")
NETWORK = "generator"
AIHS_MODES = {"hss": "sar", "st": "t1"}
"""AIHS's PAN image per mode."""


def to_unit(image) -> jax.Array:
  """Normalized [-1, 1] -> reflectance [0, 1] (the scores' mapping)."""
  return (jnp.asarray(image, jnp.float32) + 1.0) / 2.0


class FusionBaseline(table_evaluation.TableEvaluation):
  """A comparison method of Table II behind the System contract."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.method = config.get("baseline")
    if self.method not in BASELINES:
      raise ValueError(f"config.baseline: unknown method {self.method!r}; "
                       f"valid: {', '.join(BASELINES)} (or None: the cycle GAN)")
    self.inputs = inputs = FusionInputs(config)
    self.band_names = inputs.band_names
    self.predict_fields = inputs.predict_fields
    self.output_field = config.target
    self.output_bands = inputs.bands
    self.q_block_size = config.get("q_block_size")
    self.eval_baselines = bool(config.get("eval_baselines", True))
    if self.method == "aihs":
      if inputs.mode not in AIHS_MODES:
        raise ValueError(f"config.mode {inputs.mode!r}: AIHS fuses the LR "
                         f"image with one PAN-like image, so mode 'hss' (the "
                         f"SAR, Table II) or 'st' (the t1 image)")
      self.network, self.tx = None, {}
      self.size_multiple = 1
    elif self.method == "sar_opt_cgan":
      self.network = build_module(
          "config.model.generator", registry.get_generator,
          config.model.generator,
          {**config_kwargs(config.model.get("generator_kwargs")),
           "out_channels": len(inputs.bands)}, base.compute_dtype(config))
      discriminator = build_module(
          "config.model.discriminator", registry.get_discriminator,
          config.model.discriminator,
          config_kwargs(config.model.get("discriminator_kwargs")),
          base.compute_dtype(config))
      total = int(config.total_steps)
      self.tx = {n: base.adam(config.optimizer[n], total) for n in gan.NETS}
      self.recipe = pix2pix_recipe.PairedRecipe(
          self.network, discriminator, self.tx,
          gan.adversarial_kind(config.loss.adversarial, "config.loss.adversarial"),
          pix2pix_recipe.loss_weights(config.loss))
      self.size_multiple = generator_size_multiple(self.network,
                                                   config.model.generator)
    else:
      self.network = ESRCNN(out_channels=len(inputs.bands),
                            dtype=base.compute_dtype(config))
      self.tx = {NETWORK: base.adam(config.optimizer.generator,
                                    int(config.total_steps))}
      self.size_multiple = 1
    self.patch_size = patches.check_patch_size(
        config.get("patch_size"), inputs.ratio, self.size_multiple,
        f"config.baseline {self.method!r}")

  def central(self, batch):
    return patches.central(batch, self.patch_size, self.inputs.ratio,
                           self.config.target)

  def init(self, rng: jax.Array, batch) -> base.State:
    self.inputs.check_batch(batch, self.size_multiple, self.patch_size)
    batch = self.central(batch)
    net_key, state_key = jax.random.split(rng)
    params, stats = {}, {}
    if self.method == "sar_opt_cgan":
      condition = self.inputs.forward_input(self.inputs.observations(batch))
      d_key, net_key = jax.random.split(net_key)
      g_vars = self.network.init({"params": net_key, "dropout": net_key},
                                 condition, train=False)
      target = self.inputs.optical(batch, "target")
      d_vars = self.recipe.discriminator.init({"params": d_key}, condition,
                                              target, train=False)
      for name, variables in ((gan.GENERATOR, g_vars),
                              (gan.DISCRIMINATOR, d_vars)):
        params[name] = variables["params"]
        stats[name] = variables.get("batch_stats", {})
    elif self.network is not None:
      observed = self.inputs.observations(batch)
      variables = self.network.init(net_key, self.inputs.forward_input(observed))
      params[NETWORK], stats[NETWORK] = variables["params"], {}
    return base.State(
        step=jnp.zeros((), jnp.int32), rng=state_key, params=params,
        batch_stats=stats,
        opt_state={n: self.tx[n].init(params[n]) for n in self.tx})

  def fuse(self, params, observed, stats=None) -> jax.Array:
    """The method's fused image, normalized units (not yet clipped)."""
    if self.network is None:
      pan = observed[AIHS_MODES[self.inputs.mode]]
      if AIHS_MODES[self.inputs.mode] == "sar":
        pan = jnp.clip(pan, -1.0, 1.0)
      fused = aihs_lib.aihs(to_unit(observed["lowres"]), to_unit(pan))
      return fused * 2.0 - 1.0
    if self.method == "sar_opt_cgan":
      output = self.network.apply(
          {"params": params[NETWORK], "batch_stats": stats[NETWORK]},
          self.inputs.forward_input(observed), train=False)
      return output.astype(jnp.float32)
    output = self.network.apply({"params": params[NETWORK]},
                                self.inputs.forward_input(observed))
    return output.astype(jnp.float32)

  def train_step(self, state: base.State, batch):
    """AIHS: the step count only. ESRCNN: one Adam step on the MSE to X, on
    a random `config.patch_size` window."""
    if self.network is None:
      metrics = {"loss_is_finite": jnp.ones((), jnp.float32)}
      return state.replace(step=state.step + 1), metrics
    batch = patches.random(batch, self.patch_size, self.inputs.ratio,
                           self.config.target, state.step_rng("patch"))
    observed = self.inputs.observations(batch)
    target = self.inputs.optical(batch, "target")
    if self.method == "sar_opt_cgan":
      condition = self.inputs.forward_input(observed)
      nets, _, scalars = self.recipe.update(
          gan.Nets(state.params, state.batch_stats, state.opt_state),
          condition, condition, target, {"dropout": state.step_rng("dropout")})
      return state.replace(step=state.step + 1, params=nets.params,
                           batch_stats=nets.batch_stats,
                           opt_state=nets.opt_state), scalars

    def loss_fn(params):
      fused = self.fuse({NETWORK: params}, observed)
      return jnp.mean((fused - target) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(state.params[NETWORK])
    params, opt_state = base.optimizer_step(
        self.tx[NETWORK], grads, state.opt_state[NETWORK], state.params[NETWORK])
    new_state = state.replace(step=state.step + 1, params={NETWORK: params},
                              opt_state={NETWORK: opt_state})
    return new_state, {"g_mse": loss.astype(jnp.float32),
                       "loss_is_finite": jnp.isfinite(loss).astype(jnp.float32)}

  def predict(self, state: base.State, batch) -> jax.Array:
    """The fused image of the central window, normalized, in [-1, 1]."""
    batch = self.central(batch)
    observed = self.inputs.observations(batch)
    return jnp.clip(self.fuse(state.params, observed, state.batch_stats),
                    -1.0, 1.0)
