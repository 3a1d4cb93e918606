"""LULC segmentation: RS-UNet or a two-branch optical+SAR fusion segmenter.

The downstream experiment of the RS-SPADE paper (Wang & Zhou, Sec. 4): a
U-Net (Ronneberger et al. 2015; `rsjax.nn.unet.RSUNet`) trained with
pixel-wise softmax cross-entropy on the land-cover labels,

  L = - sum_p w_{y_p} log softmax(f(x))_{p, y_p} / sum_p w_{y_p}

over counted pixels p (labels in [0, K), not `config.loss.ignore_index`, and
`valid` when the batch carries it), with optional class weights w
(`config.loss.class_weights`). Scores are PA, MPA, IoU, mIoU and FWIoU of a
confusion matrix summed over the split (`rsjax.metrics.segmentation_scores`).

`config.model.segmenter`:
  rs_unet     one network on the channel concatenation of `config.inputs`;
  two_branch  `rsjax.nn.fusion.TwoBranchSegmenter` (Li et al.'s review of
              optical+SAR fusion): the SAR inputs (s1, s1_t2) form the SAR
              branch, every other input (s2, dem, ...) the optical branch;
              `segmenter_kwargs` picks the fusion ('concat', 'gated', ...).
Labels are `lulc`, which therefore cannot be an input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rsjax import losses, metrics
from rsjax.nn import registry
from rsjax.systems import base, checks, trained
from rsjax.systems import inputs as inputs_lib
from rsjax.systems.networks import build_module, config_kwargs

LABEL_FIELD = "lulc"
NET = "segmenter"
IGNORED = -1


class Segmentation:
  """Cross-entropy segmentation system (see the module docstring)."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.dtype = base.compute_dtype(config)
    self.num_classes = int(config.num_classes)
    self.inputs = checks.config_inputs(config, LABEL_FIELD,
                                       "the segmentation label")
    self.segmenter_name = config.model.segmenter
    self.two_branch = self.segmenter_name == "two_branch"
    if self.two_branch:
      self.sar_inputs = tuple(n for n in self.inputs if n in inputs_lib.SAR_FIELDS)
      self.optical_inputs = tuple(n for n in self.inputs if n not in self.sar_inputs)
      if not self.sar_inputs or not self.optical_inputs:
        raise ValueError(
            f"config.inputs {list(self.inputs)}: the two_branch segmenter needs "
            f"at least one SAR field ({', '.join(inputs_lib.SAR_FIELDS)}) and "
            f"one other (optical) field")
    self.segmenter = build_module(
        "config.model.segmenter", registry.get_segmenter, self.segmenter_name,
        {"num_classes": self.num_classes,
         **config_kwargs(config.model.get("segmenter_kwargs"))}, self.dtype)
    ignore = config.loss.get("ignore_index", -1)
    self.ignore_index = None if ignore is None or ignore < 0 else int(ignore)
    weights = config.loss.get("class_weights")
    if weights is not None:
      weights = tuple(float(w) for w in weights)
      if len(weights) != self.num_classes:
        raise ValueError(f"config.loss.class_weights: {len(weights)} weights for "
                         f"config.num_classes = {self.num_classes} classes")
    self.class_weights = weights
    self.tx = base.adam(config.optimizer[NET], int(config.total_steps))
    self.predict_fields = self.inputs
    self.output_field = LABEL_FIELD
    self.output_bands = None

  def check_batch(self, batch: Mapping[str, Any]) -> None:
    """Clear errors for missing fields or labels of the wrong shape."""
    checks.require_fields(batch, (*self.inputs, LABEL_FIELD),
                          "config.inputs / labels")
    labels = batch[LABEL_FIELD]
    if labels.ndim != 3:
      raise ValueError(f"labels {LABEL_FIELD!r}: expected (B, H, W), got shape "
                       f"{labels.shape}")

  def network_inputs(self, batch) -> tuple[jax.Array, ...]:
    """(concat of inputs,) for rs_unet; (optical, sar) for two_branch."""
    if self.two_branch:
      return (inputs_lib.concat_inputs(batch, self.optical_inputs, self.num_classes),
              inputs_lib.concat_inputs(batch, self.sar_inputs, self.num_classes))
    return (inputs_lib.concat_inputs(batch, self.inputs, self.num_classes),)

  def _apply(self, variables, batch, **kwargs):
    return self.segmenter.apply(variables, *self.network_inputs(batch), **kwargs)

  def labels(self, batch) -> jax.Array:
    """int32 labels, with pixels that are not `valid` (if given) set to -1."""
    labels = jnp.asarray(batch[LABEL_FIELD]).astype(jnp.int32)
    if "valid" in batch:
      labels = jnp.where(jnp.asarray(batch["valid"]) > 0, labels, IGNORED)
    return labels

  def init(self, rng: jax.Array, batch) -> base.State:
    self.check_batch(batch)
    key, state_key = jax.random.split(rng)
    variables = self.segmenter.init({"params": key}, *self.network_inputs(batch),
                                    train=False)
    params = {NET: variables["params"]}
    return base.State(
        step=jnp.zeros((), jnp.int32), rng=state_key, params=params,
        batch_stats={NET: variables.get("batch_stats", {})},
        opt_state={NET: self.tx.init(params[NET])})

  def _loss(self, logits, labels):
    return losses.cross_entropy(logits, labels, ignore_index=self.ignore_index,
                                class_weights=self.class_weights)

  def train_step(self, state: base.State, batch):
    """One Adam step on the cross-entropy; float32 metrics: loss,
    pixel_accuracy (counted pixels of this batch), loss_is_finite."""
    labels = self.labels(batch)

    def loss_fn(params):
      logits, stats = base.train_apply(
          self.segmenter, params, state.batch_stats[NET],
          *self.network_inputs(batch),
          rngs={"dropout": state.step_rng("dropout")})
      return self._loss(logits, labels), (logits, stats)

    (loss, (logits, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params[NET])
    params, opt_state = base.optimizer_step(self.tx, grads, state.opt_state[NET],
                                            state.params[NET])
    counted = self._counted(labels)
    hits = (jnp.argmax(logits, -1) == labels) & counted
    accuracy = jnp.sum(hits) / jnp.maximum(jnp.sum(counted), 1)
    new_state = state.replace(step=state.step + 1, params={NET: params},
                              batch_stats={NET: stats},
                              opt_state={NET: opt_state})
    scalars = {"loss": loss, "pixel_accuracy": accuracy,
               "loss_is_finite": jnp.isfinite(loss)}
    return new_state, {k: jnp.asarray(v, jnp.float32) for k, v in scalars.items()}

  def _counted(self, labels):
    counted = (labels >= 0) & (labels < self.num_classes)
    if self.ignore_index is not None:
      counted &= labels != self.ignore_index
    return counted

  def predict(self, state: base.State, batch) -> jax.Array:
    """Float32 logits (B, H, W, num_classes), inference mode."""
    return self._apply({"params": state.params[NET],
                        "batch_stats": state.batch_stats[NET]},
                       batch, train=False).astype(jnp.float32)

  def eval_step(self, state: base.State, batch) -> dict[str, jax.Array]:
    """{'confusion_matrix': (K, K) int32 over counted pixels of real examples
    (padding rows get label -1, so they never count), 'count': examples}."""
    labels = self.labels(batch)
    mask = jnp.asarray(batch.get("mask", jnp.ones(labels.shape[:1])), jnp.float32)
    labels = jnp.where(mask[:, None, None] > 0, labels, IGNORED)
    predicted = jnp.argmax(self.predict(state, batch), axis=-1).astype(jnp.int32)
    cm = metrics.confusion_matrix(predicted, labels, num_classes=self.num_classes,
                                  ignore_index=self.ignore_index)
    return {"confusion_matrix": cm, "count": jnp.sum(mask)}

  def finalize_eval(self, sums: Mapping[str, Any]) -> dict[str, float]:
    """pixel_accuracy, mean_pixel_accuracy, miou, fwiou and the per-class
    IoU as iou_0 .. iou_{K-1} (NaN for classes absent from labels and
    predictions), all floats, from the summed confusion matrix."""
    cm = np.asarray(sums["confusion_matrix"], np.float64)
    scores = metrics.segmentation_scores(cm)
    out = {k: float(np.asarray(scores[k])) for k in
           ("pixel_accuracy", "mean_pixel_accuracy", "miou", "fwiou")}
    out.update({f"iou_{k}": float(v)
                for k, v in enumerate(np.asarray(scores["iou"]))})
    return out

  def panels(self, batch: Mapping[str, Any], prediction
             ) -> dict[str, base.Panel]:
    """Host-side panels of the real examples: each input field (optical as
    RGB only), the prediction (logits or class indices) and the label in
    the Dynamic World palette (ignored / invalid pixels black)."""
    batch, prediction = inputs_lib.real_rows(batch, prediction)
    normalization = trained.normalization(self.config)
    out = {}
    for name in self.inputs:
      for key, value in inputs_lib.field_panels(
          name, batch[name], self.num_classes, normalization=normalization,
          bands=inputs_lib.run_bands(self.config, name)).items():
        if not key.endswith(" NRG"):
          out[key] = value
    prediction = np.asarray(prediction)
    if prediction.ndim == 4:
      prediction = prediction.argmax(-1)
    labels = np.asarray(batch[LABEL_FIELD]).astype(np.int64)
    if "valid" in batch:
      labels = np.where(np.asarray(batch["valid"]) > 0, labels, IGNORED)
    if self.ignore_index is not None:
      labels = np.where(labels == self.ignore_index, IGNORED, labels)
    out["prediction"] = inputs_lib.palette_panel(
        LABEL_FIELD, prediction, self.num_classes, title="prediction")
    out["label"] = inputs_lib.palette_panel(LABEL_FIELD, labels,
                                            self.num_classes, title="label")
    return out
