"""Deep residual cycle GAN for spatio-temporal-spectral fusion (`cycle_fusion`).

Jiang, Shen & Li, "Deep-learning-based spatio-temporal-spectral integrated
fusion of heterogeneous remote sensing images", TGRS 2022 (Sec. II, Fig. 1-3,
Eq. 1-9). Observations, all on the HR grid and in normalized units:

  Y   t2 HR SAR            `config.sar_field` ('s1_t2'), all channels
  Z   t1 HR MS             `config.t1_field` ('s2'), `config.bands`
  X^  t2 LR MS, upsampled  `config.low_res`: 'simulate' = resize(X) of the
                           target (the paper's simulated experiments; the
                           synthetic world's `s2_coarse` views t1, not t2) or
                           'dataset' = `config.low_res_field` ('s2_coarse')
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

Every L1 is a mean over all elements, so the cloud term is the masked error
over all pixels (cloud pixels weigh l1 + cloud_l1 = 150, clear pixels 50).
`config.loss.adversarial` ('lsgan') may swap the MSE for another kind.
Step order as CycleGAN (Zhu et al. 2017): one joint update of both
generators (one loss, Eq. 5) against the current discriminators, then each
discriminator on the stopped fakes. Adam at 2e-4, constant for the first
half, then linear decay to 0 (paper: 75 + 75 epochs); the paper gives no
betas, so pix2pix / CycleGAN's (0.5, 0.999) (`config.optimizer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from rsjax import losses
from rsjax.data import normalize
from rsjax.nn import registry
from rsjax.systems import base
from rsjax.systems import fusion_scores
from rsjax.systems import inputs as inputs_lib
from rsjax.systems import resize_branch
from rsjax.systems.paired_gan import (build_module, config_kwargs,
                                      generator_size_multiple)

MODES = {"hss": ("sar", "lowres"), "st": ("t1", "lowres"),
         "hsts": ("sar", "t1", "lowres")}
LOW_RES = ("simulate", "dataset")
GENERATORS = ("forward_generator", "backward_generator")
DISCRIMINATORS = ("forward_discriminator", "backward_discriminator")


def _choice(config, key: str, valid, prefix: str = "config.") -> Any:
  value = config.get(key)
  if value not in valid:
    raise ValueError(f"{prefix}{key}: unknown value {value!r}; valid: "
                     f"{', '.join(valid)}")
  return value


class CycleFusion:
  """The residual cycle GAN system (see the module docstring)."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.dtype = base.compute_dtype(config)
    self.mode = _choice(config, "mode", MODES)
    self.low_res = _choice(config, "low_res", LOW_RES)
    self.parts = MODES[self.mode]
    self.ratio = resize_branch.check_ratio(config.resolution_ratio)
    self.upsampling = resize_branch.check_upsampling(config.resize.upsample)
    self.cloud_value = float(config.resize.cloud_value)
    self.cloudy = bool(config.cloudy)
    self.cloud_classes = tuple(int(c) for c in config.cloud_classes)
    self.bands = tuple(int(b) for b in config.bands)
    names = normalize.S2_BANDS
    if not self.bands or any(not 0 <= b < len(names) for b in self.bands) \
        or len(set(self.bands)) != len(self.bands):
      raise ValueError(f"config.bands must be distinct indices into "
                       f"{names}, got {config.bands!r}")
    self.band_names = tuple(names[b] for b in self.bands)
    self.fields = {"sar": config.sar_field, "t1": config.t1_field,
                   "lowres": (config.target if self.low_res == "simulate"
                              else config.low_res_field),
                   "target": config.target, "cloud": config.cloud_mask_field}
    for key in ("sar_field", "t1_field", "low_res_field", "target",
                "cloud_mask_field"):
      inputs_lib.check_field_names((config[key],), f"config.{key}")
    self.predict_fields = tuple(dict.fromkeys(
        [self.fields[p] for p in self.parts]
        + ([self.fields["cloud"]] if self.cloudy else [])))
    self.required_fields = tuple(dict.fromkeys(
        self.predict_fields + (self.fields["target"],)))
    fields = config.get("data", {}).get("fields")
    missing = [f for f in self.required_fields if fields and f not in fields]
    if missing:
      raise ValueError(f"config.data.fields {tuple(fields)} lacks {missing}, "
                       f"which cycle_fusion mode {self.mode!r} (low_res "
                       f"{self.low_res!r}, cloudy {self.cloudy}) reads")
    self.output_field = config.target
    self.output_bands = self.bands
    self.num_classes = int(config.num_classes)
    self.channels = {"sar": inputs_lib.field_channels(config.sar_field,
                                                      self.num_classes),
                     "t1": len(self.bands), "lowres": len(self.bands)}
    self.backward_parts = tuple(p for p in self.parts if p != "lowres")
    g_kwargs = config_kwargs(config.model.get("generator_kwargs"))
    g_name = config.model.generator
    self.forward_generator = build_module(
        "config.model.generator", registry.get_generator, g_name,
        {**g_kwargs, "out_channels": len(self.bands)}, self.dtype)
    self.backward_generator = build_module(
        "config.model.generator", registry.get_generator, g_name,
        {**g_kwargs, "out_channels": sum(self.channels[p]
                                         for p in self.backward_parts)},
        self.dtype)
    self.size_multiple = generator_size_multiple(self.forward_generator, g_name)
    self.discriminator = build_module(
        "config.model.discriminator", registry.get_discriminator,
        config.model.discriminator,
        config_kwargs(config.model.get("discriminator_kwargs")), self.dtype)
    self.adversarial = _choice(config.loss, "adversarial",
                               losses.ADVERSARIAL_KINDS, "config.loss.")
    self.weights = {k: float(config.loss[k]) for k in ("l1", "cloud_l1", "cycle")}
    if float(config.get("ema_decay", 0.0) or 0.0) != 0.0:
      raise ValueError("config.ema_decay: cycle_fusion keeps no generator EMA "
                       "(the paper has none); set it to 0")
    self.q_block_size = config.get("q_block_size")
    self.eval_baselines = bool(config.get("eval_baselines", True))
    total = int(config.total_steps)
    self.tx = {**{n: base.adam(config.optimizer.generator, total)
                  for n in GENERATORS},
               **{n: base.adam(config.optimizer.discriminator, total)
                  for n in DISCRIMINATORS}}

  # ---------------------------------------------------------- observations --

  def check_batch(self, batch: Mapping[str, Any]) -> None:
    """Clear errors for missing fields, bad shapes or an unusable tile size
    (static shapes: works under jit and eval_shape, i.e. at start)."""
    for name in self.required_fields:
      if name not in batch:
        raise KeyError(f"batch has no field {name!r} (cycle_fusion mode "
                       f"{self.mode!r}); it has {sorted(batch)}: add it to "
                       f"config.data.fields")
    target = batch[self.fields["target"]]
    if target.ndim != 4 or target.shape[-1] <= max(self.bands):
      raise ValueError(f"config.target {self.fields['target']!r}: expected "
                       f"(B, H, W, C > {max(self.bands)}) for config.bands "
                       f"{self.bands}, got shape {target.shape}")
    height, width = target.shape[1:3]
    for part in ("t1", "lowres", "sar"):
      name = self.fields[part]
      if name in self.required_fields and batch[name].shape[:3] != target.shape[:3]:
        raise ValueError(f"field {name!r} of shape {batch[name].shape} does not "
                         f"match the target's {target.shape[:3]}")
    if self.cloudy:
      mask = batch[self.fields["cloud"]]
      if tuple(mask.shape) not in (target.shape[:3], target.shape[:3] + (1,)):
        raise ValueError(f"config.cloud_mask_field {self.fields['cloud']!r}: "
                         f"expected shape {target.shape[:3]} (one class per HR "
                         f"pixel), got {mask.shape}")
    resize_branch.check_ratio(self.ratio, height, width)
    if height % self.size_multiple or width % self.size_multiple:
      raise ValueError(f"config.model.generator needs a tile size divisible "
                       f"by {self.size_multiple}, got {height}x{width}")

  def _optical(self, batch, part):
    return jnp.asarray(batch[self.fields[part]], jnp.float32)[..., self.bands]

  def cloud_mask(self, batch):
    """M: (B, H, W, 1) float32, 1 on cloud-covered pixels (None if clear)."""
    if not self.cloudy:
      return None
    mask = jnp.asarray(batch[self.fields["cloud"]])
    mask = mask.reshape(mask.shape[:3])
    return jnp.isin(mask, jnp.asarray(self.cloud_classes))[..., None].astype(
        jnp.float32)

  def observations(self, batch) -> dict[str, jax.Array]:
    """{'sar', 't1', 'lowres'} of the mode (normalized, HR grid)."""
    out = {}
    mask = self.cloud_mask(batch)
    for part in self.parts:
      if part == "sar":
        out[part] = inputs_lib.field_input(batch, self.fields["sar"],
                                           self.num_classes)
      elif part == "t1":
        out[part] = self._optical(batch, "t1")
      elif self.low_res == "simulate":
        out[part] = resize_branch.resize(
            self._optical(batch, "target"), self.ratio, method=self.upsampling,
            cloud_mask=mask, cloud_value=self.cloud_value)
      else:
        low = self._optical(batch, "lowres")
        out[part] = low if mask is None else resize_branch.cloud_fill(
            low, mask, self.cloud_value)
    return out

  def forward_input(self, observed) -> jax.Array:
    """(Y, Z, X^) of the mode, concatenated on channels (Eq. 2)."""
    return jnp.concatenate([observed[p] for p in self.parts], axis=-1)

  # ------------------------------------------------------------------ init --

  def init(self, rng: jax.Array, batch) -> base.State:
    self.check_batch(batch)
    keys = dict(zip(GENERATORS + DISCRIMINATORS + ("state",),
                    jax.random.split(rng, 5)))
    observed = self.observations(batch)
    g_input = self.forward_input(observed)
    fused = jnp.zeros(g_input.shape[:3] + (len(self.bands),), jnp.float32)
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
    return base.State(
        step=jnp.zeros((), jnp.int32), rng=keys["state"], params=params,
        batch_stats={n: v.get("batch_stats", {}) for n, v in variables.items()},
        opt_state={n: self.tx[n].init(params[n]) for n in params})

  # ----------------------------------------------------------------- train --

  def _apply(self, module, params, stats, *args):
    """A train-mode call; returns (output, updated batch_stats)."""
    output, mutated = module.apply({"params": params, "batch_stats": stats},
                                   *args, train=True, mutable=["batch_stats"])
    return output, mutated.get("batch_stats", stats)

  def _discriminate(self, params, stats, image):
    (_, logits), stats = self._apply(self.discriminator, params, stats, None,
                                     image)
    return logits, stats

  def discriminator_loss(self, real_logits, fake_logits) -> jax.Array:
    """Eq. 8-9: half the LSGAN loss on real (label 1) and fake (label 0)."""
    return 0.5 * losses.discriminator_loss(self.adversarial, real_logits,
                                           fake_logits)

  def cycle(self, fused, regenerated, mask) -> jax.Array:
    """(Y*, Z*, X^*): G_B's output and the resize branch, in input order."""
    split = np.cumsum([self.channels[p] for p in self.backward_parts])[:-1]
    pieces = dict(zip(self.backward_parts, jnp.split(regenerated, split, -1)))
    pieces["lowres"] = resize_branch.resize(
        fused, self.ratio, method=self.upsampling, cloud_mask=mask,
        cloud_value=self.cloud_value)
    return jnp.concatenate([pieces[p] for p in self.parts], axis=-1)

  def train_step(self, state: base.State, batch):
    """One joint generator update, then both discriminators (float32 metrics)."""
    observed = self.observations(batch)
    real_input = self.forward_input(observed)
    target = self._optical(batch, "target")
    mask = self.cloud_mask(batch)
    params, stats = state.params, state.batch_stats
    w, kind = self.weights, self.adversarial

    def g_loss_fn(g_params):
      fused, f_stats = self._apply(self.forward_generator,
                                   g_params["forward_generator"],
                                   stats["forward_generator"], real_input)
      fused = fused.astype(jnp.float32)
      regenerated, b_stats = self._apply(self.backward_generator,
                                         g_params["backward_generator"],
                                         stats["backward_generator"], fused)
      cycled = self.cycle(fused, regenerated.astype(jnp.float32), mask)
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
      updates, new_opt[name] = self.tx[name].update(
          g_grads[name], state.opt_state[name], params[name])
      new_params[name] = optax.apply_updates(params[name], updates)

    # Discriminators (Eq. 8-9) on the stopped fakes.
    scalars = {}
    for name, real, fake in (
        ("forward_discriminator", target, fused),
        ("backward_discriminator", real_input, cycled)):
      def d_loss_fn(d_params, name=name, real=real, fake=fake):
        real_logits, d_stats = self._discriminate(d_params, new_stats[name], real)
        fake_logits, d_stats = self._discriminate(
            d_params, d_stats, jax.lax.stop_gradient(fake))
        loss = self.discriminator_loss(real_logits, fake_logits)
        return loss, (d_stats, jnp.mean(real_logits), jnp.mean(fake_logits))

      (d_loss, (new_stats[name], d_real, d_fake)), d_grads = jax.value_and_grad(
          d_loss_fn, has_aux=True)(params[name])
      updates, new_opt[name] = self.tx[name].update(
          d_grads, state.opt_state[name], params[name])
      new_params[name] = optax.apply_updates(params[name], updates)
      short = name.split("_")[0]
      scalars.update({f"d_{short}_loss": d_loss, f"d_{short}_real": d_real,
                      f"d_{short}_fake": d_fake})

    new_state = state.replace(step=state.step + 1, params=new_params,
                              batch_stats=new_stats, opt_state=new_opt)
    scalars.update(parts, g_loss=g_loss, loss_is_finite=jnp.isfinite(g_loss)
                   & jnp.isfinite(scalars["d_forward_loss"])
                   & jnp.isfinite(scalars["d_backward_loss"]))
    return new_state, {k: jnp.asarray(v, jnp.float32) for k, v in scalars.items()}

  # ------------------------------------------------------------------ eval --

  def predict(self, state: base.State, batch) -> jax.Array:
    """X_f = G_F(observations), inference mode, normalized units of s2."""
    output = self.forward_generator.apply(
        {"params": state.params["forward_generator"],
         "batch_stats": state.batch_stats["forward_generator"]},
        self.forward_input(self.observations(batch)), train=False)
    return output.astype(jnp.float32)

  def eval_step(self, state: base.State, batch) -> dict[str, jax.Array]:
    """Sums of the tables' indices for X_f, and for the trivial baselines
    X^ ('lowres_') and Z ('t1_', when the mode reads it) if eval_baselines."""
    images = {"": self.predict(state, batch)}
    if self.eval_baselines:
      observed = self.observations(batch)
      images.update({f"{p}_": observed[p] for p in ("lowres", "t1")
                     if p in observed})
    return fusion_scores.score_sums(
        images, self._optical(batch, "target"), batch.get("mask"),
        ratio=self.ratio, band_names=self.band_names,
        q_block_size=self.q_block_size)

  def finalize_eval(self, sums: Mapping[str, Any]) -> dict[str, float]:
    scores = fusion_scores.finalize(sums)
    for prefix in ("lowres_", "t1_"):
      if f"{prefix}count" in sums:
        scores.update(fusion_scores.finalize(sums, prefix))
    return scores

  def panels(self, batch: Mapping[str, Any], prediction) -> dict[str, np.ndarray]:
    """Host (B, H, W, 3) images: the observations, X_f and X (RGB; NRG too
    when config.bands has B8), on the target's stretch."""
    target = np.asarray(batch[self.fields["target"]], np.float32)[..., self.bands]
    observed = jax.device_get(self.observations(batch))
    out = {}
    if "sar" in observed:
      out[self.fields["sar"]] = inputs_lib.grey(observed["sar"][..., 0])
    images = [(self.fields["t1"], observed.get("t1")),
              ("lowres", observed["lowres"]), ("pred", prediction),
              ("target", target)]
    for label, image in images:
      if image is not None:
        out.update(self._optical_panels(label, np.asarray(image, np.float32),
                                        target))
    return out

  def _optical_panels(self, label, image, reference):
    out = {}
    for suffix, wanted in (("RGB", (2, 1, 0)), ("NRG", (3, 2, 1))):
      if all(b in self.bands for b in wanted):
        order = [self.bands.index(b) for b in wanted]
        out[f"{label} {suffix}"] = inputs_lib.composite(image, order, reference)
    if not out:
      out[label] = inputs_lib.grey(image[..., 0])
    return out
