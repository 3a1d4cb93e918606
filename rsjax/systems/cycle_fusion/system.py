"""Deep residual cycle GAN for spatio-temporal-spectral fusion (`cycle_fusion`).

Jiang, Shen & Li, "Deep-learning-based spatio-temporal-spectral integrated
fusion of heterogeneous remote sensing images", TGRS 2022 (Sec. II, Fig. 1-3,
Eq. 1-9). Observations (`observations.FusionInputs`), all on the HR grid
and in normalized units:

  Y   t2 HR SAR            `config.sar_field` ('s1_t2'), all channels
  Z   t1 HR MS             `config.t1_field` ('s2'), `config.bands`
  X^  t2 LR MS, upsampled  `config.low_res`: 'simulate' = resize(X) of the
                           target (the paper's simulated experiments) or
                           'dataset' = `config.low_res_field` ('s2_coarse',
                           which views the t2 date like the paper's MODIS and
                           Landsat 8 images, Tables I and V)
  X   t2 HR MS (label)     `config.target` ('s2_t2'), `config.bands`
  M   binary cloud mask    `config.cloudy`: `config.cloud_mask_field` in
                           `config.cloud_classes`; X^ gets its pixels filled

`config.mode` picks the forward generator's input (Eq. 2): 'hss' (Y, X^),
'st' (Z, X^), 'hsts' (Y, Z, X^). The forward generator G_F gives the fused
X_f; the backward part regenerates the input: X^* = resize(X_f) (Eq. 3, the
fixed branch of `resize_branch`, with M when cloudy) and (Y*, Z*) = G_B(X_f)
(Eq. 4; Y* and/or Z* as the mode has them). Both generators are the residual
ResNet of Fig. 2, both discriminators the PatchGAN of Fig. 3: D_F judges X
against X_f, D_B judges (Y, Z, X^) against (Y*, Z*, X^*). Losses:

  L_G   = L_adv + L_con                                              (Eq. 5)
  L_adv = mse(D_F(X_f), 1) + mse(D_B((Y*, Z*, X^*)), 1)              (Eq. 6)
  L_con = l1 |X_f - X| + cloud_l1 |M (X_f - X)|
          + cycle |(Y*, Z*, X^*) - (Y, Z, X^)|       (Eq. 7; 50, 100, 50)
  L_DF  = (mse(D_F(X_f), 0) + mse(D_F(X), 1)) / 2                    (Eq. 8)
  L_DB  = (mse(D_B((Y, Z, X^)), 1) + mse(D_B((Y*, Z*, X^*)), 0)) / 2 (Eq. 9)

D(.) is the PatchGAN's patch map, through a sigmoid when
`config.model.discriminator_sigmoid` (Fig. 3 ends in "Conv + Sigmoid"; the
LSGAN and CycleGAN codes use the raw map). Every L1 is a mean over all
elements, so the cloud term is the masked error over all pixels (cloud pixels
weigh l1 + cloud_l1 = 150, clear pixels 50).
`config.loss.adversarial` ('lsgan') may swap the MSE for another kind.
Step order as CycleGAN (Zhu et al. 2017): one joint update of both
generators (one loss, Eq. 5) against the current discriminators, then each
discriminator on the stopped fakes. Adam at 2e-4, constant for the first
half, then linear decay to 0 (paper: 75 + 75 epochs); the paper gives no
betas, so pix2pix / CycleGAN's (0.5, 0.999) (`config.optimizer`). Each
discriminator's step is `rsjax.systems.gan.discriminator_update`. Scores of
the paper's tables: `scores`; the fixed resize branch: `resize_branch`.

`config.resolution_ratio` S is the paper's 50 (MODIS, Sec. III-A), 1 (thick
cloud removal, the cloudy S2 image at 10 m, Sec. III-B) or 3 (Landsat 8,
Sec. III-C); `config.patch_size` (`patches`) trains on random windows of
the paper's patch size and evaluates / predicts on the central window.

`config.baseline` ('aihs' or 'esrcnn', Table II's comparison methods; None,
the default, is the cycle GAN) makes `CycleFusion(config)` build
`baselines.FusionBaseline` instead: the same observations and scores.

`config.model.global_skip` (not in the paper; default None = Fig. 2's
generator unchanged): 'low_res' makes the forward generator learn a residual
on the upsampled LR image, X_f = clip(X^ + G_F(...), -1, 1): G_F's tanh
output is the correction, the clip keeps X_f in the normalized range of X
(its gradient is zero only where X^ + G_F leaves [-1, 1]). The forward
generator's last convolution (`to_image`) then starts at zero, so X_f = X^
at step 0 and training starts from the trivial baseline. The same X_f feeds
the losses, the cycle, D_F and `predict`.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import ml_collections

from rsjax import losses
from rsjax.nn import registry
from rsjax.systems import base, gan
from rsjax.systems.cycle_fusion import baselines, patches
from rsjax.systems.cycle_fusion import table_evaluation
from rsjax.systems.cycle_fusion.observations import FusionInputs, choice
from rsjax.systems.networks import (build_module, config_kwargs,
                                    generator_size_multiple)

GENERATORS = ("forward_generator", "backward_generator")
DISCRIMINATORS = ("forward_discriminator", "backward_discriminator")


class CycleFusion(table_evaluation.TableEvaluation):
  """The residual cycle GAN system (see the module docstring)."""

  def __new__(cls, config: ml_collections.ConfigDict):
    if config.get("baseline") is not None:   # Table II's comparison methods
      return baselines.FusionBaseline(config)
    return super().__new__(cls)

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.dtype = base.compute_dtype(config)
    self.inputs = inputs = FusionInputs(config)
    self.band_names = inputs.band_names
    self.predict_fields = inputs.predict_fields
    self.output_field = config.target
    self.output_bands = inputs.bands
    g_kwargs = config_kwargs(config.model.get("generator_kwargs"))
    g_name = config.model.generator
    self.forward_generator = build_module(
        "config.model.generator", registry.get_generator, g_name,
        {**g_kwargs, "out_channels": len(inputs.bands)}, self.dtype)
    self.backward_generator = build_module(
        "config.model.generator", registry.get_generator, g_name,
        {**g_kwargs, "out_channels": sum(inputs.channels[p]
                                         for p in inputs.backward_parts)},
        self.dtype)
    self.size_multiple = generator_size_multiple(self.forward_generator, g_name)
    self.patch_size = patches.check_patch_size(
        config.get("patch_size"), inputs.ratio, self.size_multiple,
        f"config.model.generator {g_name!r}")
    self.discriminator = build_module(
        "config.model.discriminator", registry.get_discriminator,
        config.model.discriminator,
        config_kwargs(config.model.get("discriminator_kwargs")), self.dtype)
    self.adversarial = gan.adversarial_kind(config.loss.get("adversarial"),
                                            "config.loss.adversarial")
    self.weights = {k: float(config.loss[k]) for k in ("l1", "cloud_l1", "cycle")}
    self.sigmoid = bool(config.model.get("discriminator_sigmoid", False))
    gan.ema_decay(config, "cycle_fusion")    # the paper has no EMA
    self.global_skip = choice(config.model, "global_skip", (None, "low_res"),
                              "config.model.")
    self.q_block_size = config.get("q_block_size")
    self.eval_baselines = bool(config.get("eval_baselines", True))
    total = int(config.total_steps)
    self.tx = {**{n: base.adam(config.optimizer.generator, total)
                  for n in GENERATORS},
               **{n: base.adam(config.optimizer.discriminator, total)
                  for n in DISCRIMINATORS}}

  # ------------------------------------------------------------------ init --

  def init(self, rng: jax.Array, batch) -> base.State:
    self.inputs.check_batch(batch, self.size_multiple, self.patch_size)
    batch = self.central(batch)
    keys = dict(zip(GENERATORS + DISCRIMINATORS + ("state",),
                    jax.random.split(rng, 5)))
    observed = self.inputs.observations(batch)
    g_input = self.inputs.forward_input(observed)
    fused = jnp.zeros(g_input.shape[:3] + (len(self.inputs.bands),), jnp.float32)
    variables = {
        "forward_generator": self.forward_generator.init(
            keys["forward_generator"], g_input, train=False),
        "backward_generator": self.backward_generator.init(
            keys["backward_generator"], fused, train=False),
        "forward_discriminator": self.discriminator.init(
            keys["forward_discriminator"], None, fused, train=False),
        "backward_discriminator": self.discriminator.init(
            keys["backward_discriminator"], None, g_input, train=False)}
    params = {n: v["params"] for n, v in variables.items()}
    if self.global_skip:
      params["forward_generator"] = zero_last_layer(params["forward_generator"])
    return base.State(
        step=jnp.zeros((), jnp.int32), rng=keys["state"], params=params,
        batch_stats={n: v.get("batch_stats", {}) for n, v in variables.items()},
        opt_state={n: self.tx[n].init(params[n]) for n in params})

  # ----------------------------------------------------------------- train --

  def central(self, batch):
    """The batch's central `config.patch_size` window (whole tiles if None)."""
    return patches.central(batch, self.patch_size, self.inputs.ratio,
                           self.config.target)

  def fuse(self, output, observed) -> jax.Array:
    """X_f from the forward generator's float32 output: itself, or with
    `global_skip` = 'low_res' the residual on X^ (see the module docstring)."""
    if self.global_skip is None:
      return output
    return jnp.clip(observed["lowres"] + output, -1.0, 1.0)

  def _discriminate(self, params, stats, image):
    """D's patch outputs (through a sigmoid if configured, Fig. 3)."""
    (_, logits), stats = base.train_apply(self.discriminator, params, stats,
                                          None, image)
    logits = logits.astype(jnp.float32)
    return (jax.nn.sigmoid(logits) if self.sigmoid else logits), stats

  def discriminator_loss(self, real_logits, fake_logits) -> jax.Array:
    """Eq. 8-9: half the LSGAN loss on real (label 1) and fake (label 0)."""
    return 0.5 * losses.discriminator_loss(self.adversarial, real_logits,
                                           fake_logits)

  def train_step(self, state: base.State, batch):
    """One joint generator update, then both discriminators (float32 metrics),
    on one random `config.patch_size` window of the batch if set."""
    batch = patches.random(batch, self.patch_size, self.inputs.ratio,
                           self.config.target, state.step_rng("patch"))
    observed = self.inputs.observations(batch)
    real_input = self.inputs.forward_input(observed)
    target = self.inputs.optical(batch, "target")
    mask = self.inputs.cloud_mask(batch)
    params, stats = state.params, state.batch_stats
    w, kind = self.weights, self.adversarial

    def g_loss_fn(g_params):
      fused, f_stats = base.train_apply(
          self.forward_generator, g_params["forward_generator"],
          stats["forward_generator"], real_input)
      fused = self.fuse(fused.astype(jnp.float32), observed)
      regenerated, b_stats = base.train_apply(
          self.backward_generator, g_params["backward_generator"],
          stats["backward_generator"], fused)
      cycled = self.inputs.cycle(fused, regenerated.astype(jnp.float32), mask)
      f_logits, df_stats = self._discriminate(
          params["forward_discriminator"], stats["forward_discriminator"], fused)
      b_logits, db_stats = self._discriminate(
          params["backward_discriminator"], stats["backward_discriminator"],
          cycled)
      m = jnp.zeros_like(target[..., :1]) if mask is None else mask
      parts = {"g_adv_forward": losses.generator_adversarial_loss(kind, f_logits),
               "g_adv_backward": losses.generator_adversarial_loss(kind, b_logits),
               "g_l1": losses.l1_loss(fused, target),
               "g_cloud_l1": losses.l1_loss(m * fused, m * target),
               "g_cycle": losses.l1_loss(cycled, real_input)}
      total = (parts["g_adv_forward"] + parts["g_adv_backward"]
               + w["l1"] * parts["g_l1"] + w["cloud_l1"] * parts["g_cloud_l1"]
               + w["cycle"] * parts["g_cycle"])
      new_stats = {"forward_generator": f_stats, "backward_generator": b_stats,
                   "forward_discriminator": df_stats,
                   "backward_discriminator": db_stats}
      return total, (parts, new_stats, fused, cycled)

    g_params = {n: params[n] for n in GENERATORS}
    (g_loss, (parts, new_stats, fused, cycled)), g_grads = jax.value_and_grad(
        g_loss_fn, has_aux=True)(g_params)
    new_params, new_opt = {}, {}
    for name in GENERATORS:
      new_params[name], new_opt[name] = base.optimizer_step(
          self.tx[name], g_grads[name], state.opt_state[name], params[name])

    # Discriminators (Eq. 8-9) on the stopped fakes.
    scalars = {}
    for name, real, fake in (
        ("forward_discriminator", target, fused),
        ("backward_discriminator", real_input, cycled)):
      d = gan.discriminator_update(
          self.tx[name], self.discriminator_loss,
          gan.two_calls(self._discriminate), params[name], new_stats[name],
          state.opt_state[name], real, fake)
      new_params[name], new_opt[name], new_stats[name] = (
          d.params, d.opt_state, d.batch_stats)
      short = name.split("_")[0]          # d_loss -> d_forward_loss, ...
      scalars.update({f"d_{short}_{k[2:]}": v for k, v in d.scalars.items()})

    new_state = state.replace(step=state.step + 1, params=new_params,
                              batch_stats=new_stats, opt_state=new_opt)
    scalars.update(parts, g_loss=g_loss, loss_is_finite=jnp.isfinite(g_loss)
                   & jnp.isfinite(scalars["d_forward_loss"])
                   & jnp.isfinite(scalars["d_backward_loss"]))
    return new_state, {k: jnp.asarray(v, jnp.float32) for k, v in scalars.items()}

  # ------------------------------------------------------------------ eval --

  def predict(self, state: base.State, batch) -> jax.Array:
    """X_f = G_F(observations), inference mode, normalized units of s2 (of
    the central `config.patch_size` window if set)."""
    batch = self.central(batch)
    observed = self.inputs.observations(batch)
    output = self.forward_generator.apply(
        {"params": state.params["forward_generator"],
         "batch_stats": state.batch_stats["forward_generator"]},
        self.inputs.forward_input(observed), train=False)
    return self.fuse(output.astype(jnp.float32), observed)


def zero_last_layer(params, name: str = "to_image"):
  """`params` with the layer `name`'s arrays set to zero (so a tanh generator
  outputs 0 until trained)."""
  if name not in params:
    raise ValueError(f"config.model.global_skip: the generator has no "
                     f"{name!r} layer to start at zero")
  return {**params, name: jax.tree.map(jnp.zeros_like, params[name])}
