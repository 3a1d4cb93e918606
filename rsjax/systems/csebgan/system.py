"""CSEBGAN: semantic image synthesis with Semantic Embeddings and a conductor.

Wang, Chen, Zou, Shi, "Remote Sensing Image Synthesis via Semantic Embedding
Generative Adversarial Networks" (Sec. III, Eq. 1-13). The land-cover map m
(`config.inputs`, one categorical field, default 'lulc') is the condition,
the optical image o (`config.target`, default 's2') the output:

  G  SENet (`rsjax.nn.senet`): per-class Semantic Embeddings sampled with
     fresh noise every step (Eq. 1), SMResBlks with semantic denorm (Eq. 5);
  D  multi-scale PatchGAN on concat(one-hot m, image), hinge loss (Eq. 11-12);
  C  the conductor, a U-Net segmenter (RS-UNet) on images (Eq. 8-10).

Tripartite training, one step (Eq. 13, lambda_fm = 10, lambda_perc = 10,
lambda_c = 1; `config.loss.{feature_matching, perceptual, conductor}`):

  1. one G forward (train mode), its vjp kept;
  2. D update: L_adv^D on real pairs and the stopped fake (Eq. 12), D run
     once on the batch [fake; real] as in SPADE's code;
  3. G loss against the updated D and the current C, differentiated w.r.t.
     the fake and C's parameters in one pass:
       L_G = L_adv^G + 10 L_fm + 10 L_perc + 1 L_c^fake        (Eq. 6, 7, 10)
     L_fm sums the per-map mean L1 over D's intermediate maps (Eq. 6) and
     averages D's scales (`losses.feature_matching_loss`, as SPADE's code);
     the fake gradient flows back through the kept vjp into G;
  4. C update on L_c^real (Eq. 9, real images: trains C only) + L_c^fake (its
     parameter gradient from pass 3, the fake stopped for C): the min over C
     of Eq. 13.

Perceptual loss: VGG19 weights from `config.vgg_weights` (a `.npz`, see
`rsjax.nn.vgg`); without one the term is OFF, a warning says so once and the
metric `g_perceptual_on` is 0. TTUR: Adam(0, 0.9) at 1e-4 (G), 4e-4 (D), 1e-4
(C), constant for the first half, then linear decay to 0 (`base.adam`).

Ablations of Table II, each a config switch:
  w/o sharing  `model.generator_kwargs.share_embeddings = False`
  w/o C        `conductor.enabled = False`
  frozen C     `conductor.trainable = False` (pre-trained from
               `conductor.workdir`, a segmentation run; eval mode, no update)
  w/o real     `conductor.real_images = False` (C learns from fakes only)
  w/o D        `model.discriminator = None` (no adversarial, no FM loss)

Baselines of Table I (`config.model.generator`): besides 'senet', a
generator conditioned on the mask alone trains and is evaluated by the same
code -- 'spade' (Park et al. 2019, `rsjax.nn.spade`) and 'pix2pixhd'
(Wang et al. 2018's global generator, `rsjax.nn.pix2pixhd`), each with its
own paper's objective set in `configs/csebgan.py` (the conductor off). They
take no noise (`takes_noise` False): their samples per mask are identical,
so the diversity is 0, and the semantic-level scores (mCSD / mOCD, '-' in
Table I) are not computed.

Semantic-level control: `generate` draws several images per mask from
different noise keys, `edit_class` resamples the embedding of one class with
every other class's noise fixed. Evaluation: `evaluation`; the land-cover
mask input and its checks: `mask`; frozen networks loaded from files:
`frozen`. The D-then-G update is `rsjax.systems.gan.adversarial_update`, with
the conductor's parameters as its `extra` (differentiated by the same G-loss
pass).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rsjax import losses
from rsjax.data import fields as fields_lib
from rsjax.nn import registry
from rsjax.nn.senet import embedding_noise, resample_class
from rsjax.systems import base, gan, trained
from rsjax.systems import inputs as inputs_lib
from rsjax.systems.csebgan import evaluation
from rsjax.systems.csebgan import frozen as frozen_lib
from rsjax.systems.csebgan import mask as mask_lib
from rsjax.systems.networks import (build_module, config_kwargs,
                                    generator_size_multiple)

GENERATOR, DISCRIMINATOR, CONDUCTOR = "generator", "discriminator", "conductor"
MASK_GENERATORS = {"spade": None,
                   "pix2pixhd": "rsjax.nn.pix2pixhd:GlobalGenerator"}
"""Table I's baselines: generators of the one-hot mask alone (None: the
model registry's entry of that name)."""
VGG, EVAL_SEGMENTER = "vgg", "eval_segmenter"
EVAL_NOISE_SALT = 0x7E57


class CSEBGAN(mask_lib.MaskConditioned):
  """CSEBGAN system (see the module docstring)."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.dtype = base.compute_dtype(config)
    self.num_classes = int(config.num_classes)
    inputs = inputs_lib.check_field_names(config.get("inputs", ("lulc",)),
                                          "config.inputs")
    if len(inputs) != 1 or inputs[0] not in inputs_lib.CATEGORICAL_FIELDS:
      raise ValueError(f"config.inputs: CSEBGAN is conditioned on one land-cover "
                       f"field ({', '.join(inputs_lib.CATEGORICAL_FIELDS)}), "
                       f"got {list(inputs)}")
    self.label_field = inputs[0]
    (self.target,) = inputs_lib.check_field_names((config.target,), "config.target")
    self.out_channels = len(inputs_lib.run_bands(config, self.target))
    self.predict_fields, self.output_field, self.output_bands = (
        inputs, self.target, None)

    g_name = config.model.generator
    if g_name != "senet" and g_name not in MASK_GENERATORS:
      raise ValueError(f"config.model.generator = {g_name!r}: CSEBGAN's "
                       f"generator is 'senet' (Table I's baselines: "
                       f"{', '.join(MASK_GENERATORS)})")
    self.takes_noise = g_name == "senet"
    g_kwargs = {"out_channels": self.out_channels,
                **config_kwargs(config.model.get("generator_kwargs"))}
    if self.takes_noise:
      g_kwargs["num_classes"] = self.num_classes
    getter = registry.get_generator if MASK_GENERATORS.get(g_name) is None \
        else lambda _, **kw: registry.resolve(MASK_GENERATORS[g_name])(**kw)
    self.generator = build_module("config.model.generator", getter, g_name,
                                  g_kwargs, self.dtype)
    self.size_multiple = generator_size_multiple(self.generator, g_name)
    d_name = config.model.get("discriminator")
    self.discriminator = None if d_name in (None, "", "none") else build_module(
        "config.model.discriminator", registry.get_discriminator, d_name,
        config_kwargs(config.model.get("discriminator_kwargs")), self.dtype)
    self.adversarial = gan.adversarial_kind(
        config.loss.get("adversarial", "hinge"), "config.loss.adversarial")
    self.weights = {k: float(config.loss.get(k, 0.0) or 0.0)
                    for k in ("feature_matching", "perceptual", "conductor")}
    self._init_conductor(config)
    self._init_vgg(config)
    if self.discriminator is None and not self.conductor_on and not self.perceptual_on:
      raise ValueError("nothing trains the generator: config.model.discriminator "
                       "is None, the conductor is off and the perceptual loss "
                       "has no config.vgg_weights")
    self.tx = {GENERATOR: base.adam(config.optimizer[GENERATOR],
                                    int(config.total_steps))}
    if self.discriminator is not None:
      self.tx[DISCRIMINATOR] = base.adam(config.optimizer[DISCRIMINATOR],
                                         int(config.total_steps))
    if self.conductor_on and self.conductor_trainable:
      if CONDUCTOR not in config.optimizer:
        raise KeyError("config.optimizer.conductor: missing (lr, b1, b2, "
                       "decay_start of the conductor's Adam)")
      self.tx[CONDUCTOR] = base.adam(config.optimizer[CONDUCTOR],
                                     int(config.total_steps))
    self.evaluator = evaluation.Evaluator(self, config.get("evaluation"))

  def _init_conductor(self, config) -> None:
    settings = config.get("conductor") or ml_collections.ConfigDict()
    self.conductor_on = bool(settings.get("enabled", True)) and (
        self.weights["conductor"] > 0)
    self.conductor_trainable = bool(settings.get("trainable", True))
    self.conductor_real = bool(settings.get("real_images", True))
    self.conductor = None
    self.conductor_init = None
    if not self.conductor_on:
      return
    self.conductor = build_module(
        "config.model.segmenter", registry.get_segmenter,
        config.model.get("segmenter", "rs_unet"),
        {"num_classes": self.num_classes,
         **config_kwargs(config.model.get("segmenter_kwargs"))}, self.dtype)
    workdir = settings.get("workdir")
    if workdir:
      _, self.conductor_init = frozen_lib.load_segmenter(
          workdir, "config.conductor.workdir", num_classes=self.num_classes,
          image_field=self.target)
    elif not self.conductor_trainable:
      logging.warning("config.conductor.trainable is False without "
                      "config.conductor.workdir: the frozen conductor keeps "
                      "its random initialization")

  def _init_vgg(self, config) -> None:
    path = config.get("vgg_weights")
    self.vgg, self.vgg_init = None, None
    if path:
      rgb = (fields_lib.composite_bands(self.target, "RGB")
             if self.out_channels == fields_lib.channels(self.target)
             else None)
      self.vgg, self.vgg_init = frozen_lib.load_vgg(
          path, "config.vgg_weights", rgb_bands=rgb, dtype=self.dtype)
    self.perceptual_on = self.vgg is not None and self.weights["perceptual"] > 0
    if self.weights["perceptual"] > 0 and self.vgg is None:
      logging.warning(
          "CSEBGAN: config.vgg_weights is not set, so the VGG perceptual loss "
          "(weight config.loss.perceptual = %g) is OFF; metric g_perceptual_on "
          "= 0", self.weights["perceptual"])

  # ------------------------------------------------------------- inputs --

  def noise(self, key, batch_size: int) -> jax.Array:
    """SENet's embedding noise; (B, 0) for a generator that takes none."""
    if not self.takes_noise:
      return jnp.zeros((batch_size, 0), jnp.float32)
    return embedding_noise(key, batch_size, self.num_classes,
                           self.generator.embed_dim)

  def generator_inputs(self, mask, noise) -> tuple:
    """(mask, noise) for SENet, (mask,) for a baseline generator."""
    return (mask, noise) if self.takes_noise else (mask,)

  # --------------------------------------------------------------- init --

  def init(self, rng: jax.Array, batch) -> base.State:
    self.check_batch(batch)
    g_key, d_key, c_key, state_key = jax.random.split(rng, 4)
    mask, image = self.mask_input(batch), jnp.asarray(batch[self.target],
                                                      jnp.float32)
    noise = self.noise(g_key, mask.shape[0])
    variables = {GENERATOR: self.generator.init(
        {"params": g_key}, *self.generator_inputs(mask, noise), train=False)}
    if self.discriminator is not None:
      variables[DISCRIMINATOR] = self.discriminator.init(
          {"params": d_key}, mask, image, train=False)
    if self.conductor_on:
      variables[CONDUCTOR] = (
          jax.tree.map(jnp.asarray, self.conductor_init)
          if self.conductor_init is not None else
          self.conductor.init({"params": c_key}, image, train=False))
      if self.conductor_init is not None:
        frozen_lib.check_same_structure(
            self.conductor_init, jax.eval_shape(lambda: self.conductor.init(
                {"params": c_key}, image, train=False)),
            "config.conductor.workdir: its segmenter does not match "
            "config.model.segmenter / segmenter_kwargs")
    frozen = {}
    if self.vgg is not None:
      frozen[VGG] = jax.tree.map(jnp.asarray, self.vgg_init)
    frozen.update(self.evaluator.frozen_variables())
    params = {n: v["params"] for n, v in {**variables, **frozen}.items()}
    stats = {n: v.get("batch_stats", {}) for n, v in {**variables, **frozen}.items()}
    return base.State(
        step=jnp.zeros((), jnp.int32), rng=state_key, params=params,
        batch_stats=stats,
        opt_state={n: tx.init(params[n]) for n, tx in self.tx.items()})

  # -------------------------------------------------------------- train --

  def _discriminate(self, params, stats, mask, fake, real):
    """D on fakes and reals in one call (as SPADE): features and logits of
    each, and the new D state. The two batches are interleaved (fake 0,
    real 0, fake 1, ...), not stacked end to end, so that each device's
    shard of the batch axis holds its own fakes and reals: stacked, a data
    mesh moved halves between chips (82 collective-permutes, 196 MB per
    chip per step at 256 px on a v5e-16, issue 24). D sees the same images
    either way: per-image layers give the same values, a batch norm the
    same statistics (summed in another order)."""
    output, stats = base.train_apply(self.discriminator, params, stats,
                                     _interleave(mask, mask),
                                     _interleave(fake, real))
    features, logits = gan.split_discriminator_output(output)
    fake_out = jax.tree.map(lambda x: _deinterleave(x, 0), (features, logits))
    real_out = jax.tree.map(lambda x: _deinterleave(x, 1), (features, logits))
    return fake_out, real_out, stats

  def conduct(self, params, stats, image, labels):
    """Conductor cross-entropy of `image` against `labels` (Eq. 9 / 10) and
    its new BatchNorm statistics (eval mode, unchanged, when frozen)."""
    if self.conductor_trainable:
      logits, stats = base.train_apply(self.conductor, params, stats, image)
    else:
      logits = self.conductor.apply({"params": params, "batch_stats": stats},
                                    image, train=False)
    return losses.cross_entropy(logits, labels), stats

  def perceptual(self, params, fake, real) -> jax.Array:
    """VGG perceptual loss (Eq. 7; pix2pixHD layer weights)."""
    features = lambda x: self.vgg.apply({"params": params}, x)  # noqa: E731
    return losses.perceptual_loss(features, fake, real)

  def train_step(self, state: base.State, batch):
    """D, then G and C (see the module docstring); float32 metrics."""
    self.check_labels(batch)
    real = jnp.asarray(batch[self.target], jnp.float32)
    mask, labels = self.mask_input(batch), self.labels(batch)
    noise = self.noise(state.step_rng("noise"), mask.shape[0])
    params, stats = dict(state.params), dict(state.batch_stats)
    opt_state = dict(state.opt_state)
    w = self.weights

    def generate(g_params):
      fake, g_stats = base.train_apply(self.generator, g_params,
                                       stats[GENERATOR],
                                       *self.generator_inputs(mask, noise))
      return fake.astype(jnp.float32), g_stats

    def pair(d_params, d_stats, real_image, fake_image):
      (_, fake_logits), (_, real_logits), d_stats = self._discriminate(
          d_params, d_stats, mask, fake_image, real_image)
      return real_logits, fake_logits, d_stats

    # Eq. 9: C on real images (trains C only; independent of the D step).
    c_stats = stats.get(CONDUCTOR)
    c_real = None
    if self.conductor_on and self.conductor_real:
      (c_real, c_stats), c_real_grads = jax.value_and_grad(
          self.conduct, has_aux=True)(params[CONDUCTOR], c_stats, real, labels)

    def generator_loss(fake_image, d_params, d_stats, c_params):
      parts, total, c_new_stats = {}, 0.0, None
      if self.discriminator is not None:
        (features, logits), (real_features, _), d_stats = self._discriminate(
            d_params, d_stats, mask, fake_image, real)
        parts["g_adv"] = losses.generator_adversarial_loss(self.adversarial,
                                                           logits)
        total = total + parts["g_adv"]
        if w["feature_matching"] > 0:
          parts["g_fm"] = losses.feature_matching_loss(real_features, features)
          total = total + w["feature_matching"] * parts["g_fm"]
      if self.perceptual_on:
        parts["g_perceptual"] = self.perceptual(params[VGG], fake_image, real)
        total = total + w["perceptual"] * parts["g_perceptual"]
      if self.conductor_on:
        parts["c_fake"], c_new_stats = self.conduct(c_params, c_stats,
                                                    fake_image, labels)
        total = total + w["conductor"] * parts["c_fake"]
      return total, ((parts, c_new_stats), d_stats)

    has_d = self.discriminator is not None
    names = (GENERATOR, DISCRIMINATOR) if has_d else (GENERATOR,)
    pick = lambda tree: {n: tree[n] for n in names}  # noqa: E731
    step = gan.adversarial_update(
        gan.Nets(pick(params), pick(stats), pick(opt_state)), self.tx,
        generate=generate, generator_loss=generator_loss,
        pair=pair if has_d else None, kind=self.adversarial, real=real,
        extra=(params.get(CONDUCTOR, {}),))
    params.update(step.nets.params)
    stats.update(step.nets.batch_stats)
    opt_state.update(step.nets.opt_state)
    parts, c_new_stats = step.aux
    if self.conductor_on:
      stats[CONDUCTOR] = c_new_stats
    if self.conductor_on and self.conductor_trainable:
      (c_grads,) = step.extra_grads
      if self.conductor_real:
        c_grads = jax.tree.map(lambda a, b: a + w["conductor"] * b, c_grads,
                               c_real_grads)
      params[CONDUCTOR], opt_state[CONDUCTOR] = base.optimizer_step(
          self.tx[CONDUCTOR], c_grads, opt_state[CONDUCTOR], params[CONDUCTOR])

    metrics = {"g_perceptual_on": float(self.perceptual_on), **step.scalars}
    if c_real is not None:
      metrics["c_real"] = c_real
    metrics.update(parts, g_loss=step.g_loss)
    if self.conductor_on:
      metrics["c_loss"] = parts["c_fake"] + metrics.get("c_real", 0.0)
    finite = jnp.all(jnp.isfinite(jnp.stack(
        [jnp.asarray(v, jnp.float32) for v in metrics.values()])))
    metrics["loss_is_finite"] = finite
    new_state = state.replace(step=state.step + 1, params=params,
                              batch_stats=stats, opt_state=opt_state)
    return new_state, {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}

  # ----------------------------------------------------- generation / eval --

  def eval_noise(self, state: base.State, batch_size: int) -> jax.Array:
    """The noise `predict` uses: fixed for a state (repeatable evaluation)."""
    return self.noise(jax.random.fold_in(state.rng, EVAL_NOISE_SALT), batch_size)

  def generate_from_noise(self, state: base.State, mask, noise) -> jax.Array:
    """G(m, noise) in inference mode (running BatchNorm averages)."""
    output = self.generator.apply(
        {"params": state.params[GENERATOR],
         "batch_stats": state.batch_stats[GENERATOR]},
        *self.generator_inputs(mask, noise), train=False)
    return output.astype(jnp.float32)

  def predict(self, state: base.State, batch) -> jax.Array:
    """One generated image per mask, [-1, 1], with the state's eval noise."""
    self.check_labels(batch)
    mask = self.mask_input(batch)
    return self.generate_from_noise(state, mask,
                                    self.eval_noise(state, mask.shape[0]))

  def generate(self, state: base.State, batch, keys: Sequence[jax.Array] | jax.Array
               ) -> jax.Array:
    """(S, B, H, W, C): one image per mask for each of the S noise keys."""
    self.check_labels(batch)
    mask = self.mask_input(batch)
    keys = jnp.stack(list(keys)) if isinstance(keys, (list, tuple)) else keys
    return jax.lax.map(lambda key: self.generate_from_noise(
        state, mask, self.noise(key, mask.shape[0])), keys)

  def edit_class(self, state: base.State, batch, class_id, key,
                 noise: jax.Array | None = None) -> jax.Array:
    """`predict`'s images (or those of `noise`) with the embedding of class
    `class_id` resampled from `key`; every other class keeps its noise."""
    if not self.takes_noise:
      raise ValueError(f"edit_class: config.model.generator "
                       f"{self.config.model.generator!r} has no class "
                       f"embeddings to resample (only 'senet')")
    if isinstance(class_id, (int, np.integer)) and not (
        0 <= class_id < self.num_classes):
      raise ValueError(f"edit_class: class_id {class_id} is not in [0, "
                       f"config.num_classes = {self.num_classes})")
    self.check_labels(batch)
    mask = self.mask_input(batch)
    noise = self.eval_noise(state, mask.shape[0]) if noise is None else noise
    return self.generate_from_noise(state, mask,
                                    resample_class(noise, key, class_id))

  def eval_step(self, state: base.State, batch) -> dict[str, jax.Array]:
    return self.evaluator.sums(state, batch)

  def finalize_eval(self, sums: Mapping[str, Any]) -> dict[str, float]:
    return self.evaluator.finalize(sums)

  def panels(self, batch: Mapping[str, Any], prediction
             ) -> dict[str, base.Panel]:
    """Host-side panels of the real examples: the mask, the generated image
    and the real one (RGB and NRG composites, the prediction stretched like
    the real image)."""
    batch, prediction = inputs_lib.real_rows(batch, prediction)
    out = inputs_lib.field_panels(self.label_field, batch[self.label_field],
                                  self.num_classes)
    out.update(inputs_lib.prediction_panels(
        self.target, prediction, batch[self.target], self.num_classes,
        ("generated", "real"), trained.normalization(self.config),
        bands=inputs_lib.run_bands(self.config, self.target)))
    return out


def _interleave(a: jax.Array, b: jax.Array) -> jax.Array:
  """Rows a[0], b[0], a[1], b[1], ...: (2N, ...) from two (N, ...)."""
  return jnp.stack([a, b], axis=1).reshape((2 * a.shape[0],) + a.shape[1:])


def _deinterleave(x: jax.Array, which: int) -> jax.Array:
  """The rows of `_interleave`'s first (0) or second (1) input."""
  return x.reshape((x.shape[0] // 2, 2) + x.shape[1:])[:, which]
