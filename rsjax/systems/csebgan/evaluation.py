"""Evaluation of CSEBGAN (Wang et al., Sec. IV-A): fidelity and diversity.

Per eval batch, as sums and counts weighted by `batch['mask']` (1 real, 0
padding), reduced once on the host by `finalize`:

- PSNR / SSIM / SAM of the generated image against the real one
  (`rsjax.systems.image_scores.score_sums`);
- mIoU / FWIoU / pixel accuracy of a segmenter on the generated images, from
  a summed confusion matrix: the pre-trained U-Net of a segmentation workdir
  (`evaluation.segmenter_workdir`, restored with Orbax) or, without one, the
  conductor (eval mode); a run with neither reports no segmentation scores;
- diversity: `evaluation.num_samples` images per mask from different noise
  keys, mean distance over all pairs: `pixel_diversity` (mean absolute
  difference in normalized units) and, with VGG19 weights
  (`config.vgg_weights`), `diversity` (LPIPS-style, unit-normalized VGG
  features relu1_1 .. relu5_1, no learned weights);
- semantic-level diversity (`evaluation.semantic_diversity`): for every class
  c, the embedding of c alone is resampled; CSD (distance over the pixels of
  c) and OCD (over the other pixels) are averaged over the images holding c,
  then over the classes: `pixel_mcsd` / `pixel_mocd` and, with VGG, `mcsd` /
  `mocd`;
- `fid`: Frechet distance between pooled VGG19 relu5_1 features of real and
  generated images (sums of f and f f^T over the split; VGG, not Inception,
  features: compare it only between rsjax runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rsjax import metrics
from rsjax.metrics import generative as gen
from rsjax.nn import vgg as vgg_lib
from rsjax.nn.senet import resample_class
from rsjax.systems.csebgan import frozen as frozen_lib
from rsjax.systems.image_scores import finalize_scores, score_sums

EVAL_SEGMENTER = "eval_segmenter"
_SAMPLE_SALT, _EDIT_SALT = 0x5A3B1E, 0xC1A55


class Evaluator:
  """eval_step sums and finalize of a `CSEBGAN` system."""

  def __init__(self, system, settings: Mapping[str, Any] | None):
    self.system = system
    settings = dict(settings or {})
    self.num_samples = int(settings.get("num_samples", 2))
    if self.num_samples < 2:
      raise ValueError(f"config.evaluation.num_samples must be >= 2 (diversity "
                       f"compares samples), got {self.num_samples}")
    self.semantic = bool(settings.get("semantic_diversity", True))
    self.segmenter_system, self.segmenter_init = None, None
    workdir = settings.get("segmenter_workdir")
    if workdir:
      self.segmenter_system, self.segmenter_init = frozen_lib.load_segmenter(
          workdir, "config.evaluation.segmenter_workdir",
          num_classes=system.num_classes, image_field=system.target)

  def frozen_variables(self) -> dict[str, Any]:
    if self.segmenter_init is None:
      return {}
    return {EVAL_SEGMENTER: jax.tree.map(jnp.asarray, self.segmenter_init)}

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

    sample_list = [samples[i] for i in range(self.num_samples)]
    sums["pixel_diversity_sum"] = weighted_sum(
        gen.pairwise_diversity(sample_list, pixels=True))
    sample_features = None
    if system.vgg is not None:
      sample_features = jax.lax.map(lambda x: tuple(self.features(state, x)),
                                    samples)
      per_sample = [[f[i] for f in sample_features]
                    for i in range(self.num_samples)]
      sums["diversity_sum"] = weighted_sum(gen.pairwise_diversity(per_sample))
      sums["fid_real"] = gen.feature_sums(
          gen.pooled(self.features(state, real)[-1]), weights)
      sums["fid_fake"] = gen.feature_sums(gen.pooled(per_sample[0][-1]), weights)
    if self.semantic:
      fake_features = (None if sample_features is None
                       else [f[0] for f in sample_features])
      sums.update(self._semantic_sums(state, onehot, labels, weights,
                                      base_noise, fake, fake_features))
    return sums

  def _semantic_sums(self, state, onehot, labels, weights, base_noise, fake,
                     fake_features) -> dict[str, jax.Array]:
    """Per class (K,): weighted sums of CSD and OCD and the image counts."""
    system = self.system
    edit_key = jax.random.fold_in(state.rng, _EDIT_SALT)
    counted = labels >= 0

    def per_class(class_id):
      edited = system.generate_from_noise(state, onehot, resample_class(
          base_noise, jax.random.fold_in(edit_key, class_id), class_id))
      region = labels == class_id
      out = {"pixel_": gen.region_distance(
          gen.pixel_distance_maps(fake, edited), region, counted)}
      if fake_features is not None:
        out[""] = gen.region_distance(gen.distance_maps(
            fake_features, self.features(state, edited)), region, counted)
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
    for name in ("pixel_diversity", "diversity"):
      if f"{name}_sum" in sums:
        out[name] = float(sums[f"{name}_sum"]) / count if count else float("nan")
    for prefix in ("pixel_", ""):
      if f"{prefix}semantic_count" not in sums:
        continue
      present = sums[f"{prefix}semantic_count"] > 0
      for kind in ("csd", "ocd"):
        per_class = (sums[f"{prefix}{kind}_sum"][present]
                     / sums[f"{prefix}semantic_count"][present])
        out[f"{prefix}m{kind}"] = (float(per_class.mean()) if per_class.size
                                   else float("nan"))
    if "fid_real" in sums:
      enough = min(float(sums["fid_real"]["count"]),
                   float(sums["fid_fake"]["count"])) >= 2
      out["fid"] = (gen.frechet_distance_from_sums(sums["fid_real"],
                                                   sums["fid_fake"])
                    if enough else float("nan"))
    return out
