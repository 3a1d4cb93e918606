"""Evaluation of CSEBGAN (Wang et al., Sec. IV-A): fidelity and diversity.

Per eval batch, as sums and counts weighted by `batch['mask']` (1 real, 0
padding), reduced once on the host by `finalize`:

- PSNR / SSIM / SAM of the generated image against the real one
  (`rsjax.systems.image_scores.score_sums`);
- mIoU / FWIoU / pixel accuracy of a segmenter on the generated images, from
  a summed confusion matrix: the pre-trained U-Net of a segmentation workdir
  (`evaluation.segmenter_workdir`, restored with Orbax) or, without one, the
  conductor (eval mode); a run with neither reports no segmentation scores;
- the paper's protocol (Sec. IV-A 3-4): `evaluation.num_samples` (10) images
  per mask from different noise keys; diversity is the mean distance of
  `evaluation.num_pairs` (10) pairs drawn at random per mask among them
  (0 or None: all pairs);
- the paper's networks, from weights the user converted (nothing is
  downloaded): with `evaluation.inception_weights` (`python -m
  rsjax.nn.inception_convert`), `fid`: Frechet distance of pytorch-fid's
  Inception-v3 pool3 features of the real images and of all generated ones
  (num_samples per mask); with `evaluation.lpips_weights` (`python -m
  rsjax.nn.lpips_convert`), `diversity`: learned LPIPS, and `mcsd` / `mocd`
  on the learned LPIPS maps;
- without them, the same scores on VGG19 features (`config.vgg_weights`, the
  perceptual loss's network) under `vgg_` keys, so they are never taken for
  the paper's: `vgg_fid` (pooled relu5_1 of the real images and of the
  first sample), `vgg_diversity`, `vgg_mcsd` / `vgg_mocd` (unit-normalized
  relu1_1 .. relu5_1, no learned weights); compare them only between rsjax
  runs;
- always `pixel_diversity`, `pixel_mcsd` / `pixel_mocd`: the same on pixels
  (mean absolute difference in normalized units);
- semantic-level diversity (`evaluation.semantic_diversity`): for every class
  c, the embedding of c alone is resampled; CSD (distance over the pixels of
  c) and OCD (over the other pixels) are averaged over the images holding c,
  then over the classes.

The Inception and LPIPS weights join the state as frozen networks (like the
evaluation segmenter), so a config that names them initializes and saves
them with the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import os

from rsjax import metrics
from rsjax.data import fields as fields_lib
from rsjax.metrics import generative as gen
from rsjax.nn import inception as inception_lib
from rsjax.nn import lpips as lpips_lib
from rsjax.nn import vgg as vgg_lib
from rsjax.nn.senet import resample_class
from rsjax.systems.csebgan import frozen as frozen_lib
from rsjax.systems.image_scores import finalize_scores, score_sums

EVAL_SEGMENTER, INCEPTION, LPIPS = "eval_segmenter", "fid_inception", "lpips"
_SAMPLE_SALT, _EDIT_SALT, _PAIR_SALT = 0x5A3B1E, 0xC1A55, 0x9A125
PAPER_SAMPLES, PAPER_PAIRS = 10, 10   # Sec. IV-A 4: per mask


def _load_frozen(loader, path: str, key: str, converter: str, **fields):
  """(module, {'params': numpy}) of a converted weight file, or an error
  naming the config key and the converter."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{key} = {path!r}: no such file (write it with "
                            f"`python -m {converter} <weights> {path}`)")
  try:
    module, variables = loader(path, **fields)
  except (OSError, ValueError, KeyError) as error:
    raise ValueError(f"{key} = {path!r}: not a usable weight file of "
                     f"{converter}: {error}") from error
  return module, jax.tree.map(np.asarray, variables)


class Evaluator:
  """eval_step sums and finalize of a `CSEBGAN` system."""

  def __init__(self, system, settings: Mapping[str, Any] | None):
    self.system = system
    settings = dict(settings or {})
    self.num_samples = int(settings.get("num_samples", PAPER_SAMPLES))
    if self.num_samples < 2:
      raise ValueError(f"config.evaluation.num_samples must be >= 2 (diversity "
                       f"compares samples), got {self.num_samples}")
    pairs = settings.get("num_pairs", PAPER_PAIRS)
    self.num_pairs = int(pairs) if pairs else None
    if self.num_pairs is not None and self.num_pairs < 1:
      raise ValueError(f"config.evaluation.num_pairs must be >= 1, or 0 / None "
                       f"for all pairs, got {pairs}")
    # A generator without class embeddings (Table I's baselines) has no
    # semantic-level diversity to measure ('-' in the table).
    self.semantic = bool(settings.get("semantic_diversity", True)) and (
        system.takes_noise)
    self.segmenter_system, self.segmenter_init = None, None
    workdir = settings.get("segmenter_workdir")
    if workdir:
      self.segmenter_system, self.segmenter_init = frozen_lib.load_segmenter(
          workdir, "config.evaluation.segmenter_workdir",
          num_classes=system.num_classes, image_field=system.target)
    rgb = (fields_lib.composite_bands(system.target, "RGB")
           if system.out_channels == fields_lib.channels(system.target)
           else None)
    self.inception, self.inception_init = None, None
    if settings.get("inception_weights"):
      self.inception, self.inception_init = _load_frozen(
          inception_lib.load_fid_inception, settings["inception_weights"],
          "config.evaluation.inception_weights", "rsjax.nn.inception_convert",
          rgb_bands=rgb)
    self.lpips, self.lpips_init = None, None
    if settings.get("lpips_weights"):
      self.lpips, self.lpips_init = _load_frozen(
          lpips_lib.load_lpips, settings["lpips_weights"],
          "config.evaluation.lpips_weights", "rsjax.nn.lpips_convert",
          rgb_bands=rgb)

  def frozen_variables(self) -> dict[str, Any]:
    frozen = {name: jax.tree.map(jnp.asarray, init) for name, init in (
        (EVAL_SEGMENTER, self.segmenter_init), (INCEPTION, self.inception_init),
        (LPIPS, self.lpips_init)) if init is not None}
    return frozen

  # ------------------------------------------------------------ networks --

  def segment(self, state, batch, fake) -> jax.Array | None:
    """Logits of the evaluation segmenter on the generated images."""
    system = self.system
    if self.segmenter_system is not None:
      seg = self.segmenter_system
      inputs = seg.network_inputs({**batch, system.target: fake})
      return seg.segmenter.apply(
          {"params": state.params[EVAL_SEGMENTER],
           "batch_stats": state.batch_stats[EVAL_SEGMENTER]}, *inputs,
          train=False)
    if system.conductor_on:
      name = "conductor"
      return system.conductor.apply(
          {"params": state.params[name], "batch_stats": state.batch_stats[name]},
          fake, train=False)
    return None

  def features(self, state, images) -> list[jax.Array] | None:
    """VGG19 relu1_1 .. relu5_1 of `images`, or None without VGG weights."""
    if self.system.vgg is None:
      return None
    out = self.system.vgg.apply({"params": state.params["vgg"]}, images)
    return [out[name].astype(jnp.float32) for name in vgg_lib.FEATURE_LAYERS]

  def lpips_features(self, state, images) -> list[jax.Array]:
    """The LPIPS trunk's five feature maps of `images`."""
    return self.lpips.apply({"params": state.params[LPIPS]}, images,
                            method="features")

  def lpips_weights(self, state) -> list[jax.Array]:
    return self.lpips.apply({"params": state.params[LPIPS]},
                            method="channel_weights")

  def pool3(self, state, images) -> jax.Array:
    """(N, 2048) FID Inception features of `images`."""
    return self.inception.apply({"params": state.params[INCEPTION]}, images)

  # ---------------------------------------------------------------- sums --

  def sums(self, state, batch) -> dict[str, jax.Array]:
    system = self.system
    system.check_labels(batch)
    real = jnp.asarray(batch[system.target], jnp.float32)
    weights = jnp.asarray(batch.get("mask", jnp.ones(real.shape[:1])),
                          jnp.float32)
    labels = system.labels(batch)              # -1: invalid pixel / padding
    onehot = system.mask_input(batch)
    batch_size = real.shape[0]
    eval_key = jax.random.fold_in(state.rng, _SAMPLE_SALT)
    base_noise = system.eval_noise(state, batch_size)
    noises = jnp.stack([base_noise] + [
        system.noise(jax.random.fold_in(eval_key, i), batch_size)
        for i in range(1, self.num_samples)])
    samples = jax.lax.map(
        lambda n: system.generate_from_noise(state, onehot, n), noises)
    fake = samples[0]

    sums = score_sums(fake, real, weights)
    logits = self.segment(state, batch, fake)
    if logits is not None:
      sums["confusion_matrix"] = metrics.confusion_matrix(
          jnp.argmax(logits, -1).astype(jnp.int32), labels,
          num_classes=system.num_classes)

    def weighted_sum(values):
      return jnp.sum(jnp.where(weights > 0, values * weights, 0.0))

    # Pairs drawn per mask: by its row in the batch and the state's key.
    pair_key = jax.random.fold_in(eval_key, _PAIR_SALT)

    def diversity_sum(pair_distances):
      return weighted_sum(gen.sampled_pairs(pair_distances, self.num_pairs,
                                            pair_key))

    def per_sample(stacked):
      return [[f[i] for f in stacked] for i in range(self.num_samples)]

    sums["pixel_diversity_sum"] = diversity_sum(gen.pair_distances(
        [samples[i] for i in range(self.num_samples)], pixels=True))
    # Semantic diversity: {prefix: (features of `fake`, feature function,
    # channel weights)} per feature network.
    semantic = {"pixel_": None}
    if system.vgg is not None:
      vgg_samples = per_sample(jax.lax.map(
          lambda x: tuple(self.features(state, x)), samples))
      sums["vgg_diversity_sum"] = diversity_sum(gen.pair_distances(vgg_samples))
      sums["vgg_fid_real"] = gen.feature_sums(
          gen.pooled(self.features(state, real)[-1]), weights)
      sums["vgg_fid_fake"] = gen.feature_sums(
          gen.pooled(vgg_samples[0][-1]), weights)
      semantic["vgg_"] = (vgg_samples[0], self.features, None)
    if self.lpips is not None:
      lin = self.lpips_weights(state)
      lpips_samples = per_sample(jax.lax.map(
          lambda x: tuple(self.lpips_features(state, x)), samples))
      sums["diversity_sum"] = diversity_sum(gen.pair_distances(
          lpips_samples, channel_weights=lin))
      semantic[""] = (lpips_samples[0], self.lpips_features, lin)
    if self.inception is not None:
      fake_pool3 = jax.lax.map(lambda x: self.pool3(state, x), samples)
      sums["fid_real"] = gen.feature_sums(self.pool3(state, real), weights)
      sums["fid_fake"] = gen.feature_sums(
          fake_pool3.reshape(-1, fake_pool3.shape[-1]),
          jnp.tile(weights, self.num_samples))
    if self.semantic:
      sums.update(self._semantic_sums(state, onehot, labels, weights,
                                      base_noise, fake, semantic))
    return sums

  def _semantic_sums(self, state, onehot, labels, weights, base_noise, fake,
                     networks) -> dict[str, jax.Array]:
    """Per class (K,): weighted sums of CSD and OCD and the image counts, for
    each entry of `networks` ({score prefix: None for pixels, or (features
    of `fake`, feature function, channel weights)})."""
    system = self.system
    edit_key = jax.random.fold_in(state.rng, _EDIT_SALT)
    counted = labels >= 0

    def per_class(class_id):
      edited = system.generate_from_noise(state, onehot, resample_class(
          base_noise, jax.random.fold_in(edit_key, class_id), class_id))
      region = labels == class_id
      out = {}
      for prefix, network in networks.items():
        if network is None:
          maps = gen.pixel_distance_maps(fake, edited)
        else:
          fake_features, features_fn, channel_weights = network
          maps = gen.distance_maps(fake_features, features_fn(state, edited),
                                   channel_weights)
        out[prefix] = gen.region_distance(maps, region, counted)
      return out

    per = jax.lax.map(per_class, jnp.arange(system.num_classes))
    sums = {}
    for prefix, result in per.items():
      w = jnp.where(weights[None] > 0, result["present"] * weights[None], 0.0)
      sums[f"{prefix}csd_sum"] = jnp.sum(w * result["csd"], axis=1)
      sums[f"{prefix}ocd_sum"] = jnp.sum(w * result["ocd"], axis=1)
      sums[f"{prefix}semantic_count"] = jnp.sum(w, axis=1)
    return sums

  # ------------------------------------------------------------ finalize --

  def finalize(self, sums: Mapping[str, Any]) -> dict[str, float]:
    """Scores as floats (see the module docstring for the keys)."""
    sums = {k: jax.tree.map(np.asarray, v) for k, v in sums.items()}
    out = finalize_scores(sums)
    count = float(sums["count"])
    if "confusion_matrix" in sums:
      scores = metrics.segmentation_scores(
          np.asarray(sums["confusion_matrix"], np.float64))
      out.update({k: float(np.asarray(scores[k]))
                  for k in ("miou", "fwiou", "pixel_accuracy")})
    for prefix in ("pixel_", "vgg_", ""):
      if f"{prefix}diversity_sum" in sums:
        out[f"{prefix}diversity"] = (float(sums[f"{prefix}diversity_sum"])
                                     / count if count else float("nan"))
      if f"{prefix}semantic_count" not in sums:
        continue
      present = sums[f"{prefix}semantic_count"] > 0
      for kind in ("csd", "ocd"):
        per_class = (sums[f"{prefix}{kind}_sum"][present]
                     / sums[f"{prefix}semantic_count"][present])
        out[f"{prefix}m{kind}"] = (float(per_class.mean()) if per_class.size
                                   else float("nan"))
    for prefix in ("vgg_", ""):
      if f"{prefix}fid_real" not in sums:
        continue
      real, fake = sums[f"{prefix}fid_real"], sums[f"{prefix}fid_fake"]
      enough = min(float(real["count"]), float(fake["count"])) >= 2
      out[f"{prefix}fid"] = (gen.frechet_distance_from_sums(real, fake)
                             if enough else float("nan"))
    return out
