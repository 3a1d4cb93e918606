"""Segmentation: sharded == single-device step, no retrace, learning, eval
confusion matrix vs rsjax.metrics on argmax predictions (padding ignored),
finalized scores, panels, two-branch fusion, config errors."""

from __future__ import annotations

import chex
import jax
import numpy as np
import pytest

from configs import fusion_seg
from rsjax import metrics
from rsjax.systems import base
from rsjax.systems.segmentation.system import Segmentation
from system_checks import (assert_sharded_step_equals_single, fast_jit,
                           host_state, make_batch, segmentation_config,
                           sgd_system)


@pytest.fixture(scope="module")
def unet():
  system = base.get_system(segmentation_config(**{"loss.ignore_index": 8}))
  step = fast_jit(chex.assert_max_traces(system.train_step, n=1))
  return system, step, host_state(system, make_batch(0))


def test_sharded_step_equals_single_device_step(devices):
  """Data mesh of 8 and (data 4, fsdp 2), 5 seeds of params and batch."""
  system = sgd_system(segmentation_config(**{"loss.ignore_index": 8}))
  example = make_batch(0)
  assert_sharded_step_equals_single(
      system, lambda seed: host_state(system, example, seed),
      lambda seed: make_batch(seed + 1), devices)


def test_fusion_seg_sharded_step_equals_single_device_step(devices):
  """configs/fusion_seg.py (two-branch S2 + S1 segmenter, gated fusion),
  tiny widths: data mesh of 8 and (data 4, fsdp 2), 5 seeds."""
  config = fusion_seg.get_config("gated")
  config.model.segmenter_kwargs.update(base_features=4,
                                       channel_multipliers=(1, 2))
  config.total_steps = 100
  system = sgd_system(config)
  assert system.optical_inputs == ("s2",) and system.sar_inputs == ("s1",)
  example = make_batch(0)
  assert_sharded_step_equals_single(
      system, lambda seed: host_state(system, example, seed),
      lambda seed: make_batch(seed + 1), devices)


def test_steps_learn_without_retrace(unet):
  _, step, state = unet
  history = []
  for i in range(10):
    state, metrics_ = step(state, make_batch(20 + i % 2))
    history.append({k: float(v) for k, v in metrics_.items()})
  assert set(history[0]) == {"loss", "pixel_accuracy", "loss_is_finite"}
  assert all(h["loss_is_finite"] == 1.0 for h in history)
  assert np.mean([h["loss"] for h in history[-2:]]) < 0.9 * history[0]["loss"]
  assert history[-1]["pixel_accuracy"] > history[0]["pixel_accuracy"]


def test_eval_confusion_matrix_matches_metrics(unet):
  system, _, state = unet
  real = make_batch(7, batch=3)
  real["valid"][0, :4] = 0                       # invalid pixels do not count
  padded = make_batch(8, batch=4, mask=[1, 1, 1, 0])
  for name, value in real.items():
    padded[name][:3] = value
  eval_step = fast_jit(system.eval_step)
  sums = jax.device_get(eval_step(state, padded))
  logits = system.predict(state, real)
  labels = np.where(real["valid"] > 0, real["lulc"].astype(np.int32), -1)
  expected = metrics.confusion_matrix(np.argmax(logits, -1), labels,
                                      num_classes=9, ignore_index=8)
  np.testing.assert_array_equal(sums["confusion_matrix"], expected)
  assert float(sums["count"]) == 3.0
  assert sums["confusion_matrix"].sum() == np.sum((labels >= 0) & (labels != 8))
  scores = system.finalize_eval(sums)
  reference = metrics.segmentation_scores(np.asarray(expected))
  for key in ("pixel_accuracy", "mean_pixel_accuracy", "miou", "fwiou"):
    assert isinstance(scores[key], float)
    np.testing.assert_allclose(scores[key], float(reference[key]), rtol=1e-6)
  assert all(isinstance(v, float) for v in scores.values())
  np.testing.assert_allclose([scores[f"iou_{k}"] for k in range(9)],
                             np.asarray(reference["iou"]), rtol=1e-6)

  panels = system.panels(real, np.asarray(logits))
  assert list(panels) == ["s2 RGB", "s1", "prediction", "label"]
  for panel in panels.values():
    image = panel.image
    assert image.shape == (3, 32, 32, 3) and 0 <= image.min() <= image.max() <= 1
  # Invalid pixels are black.
  np.testing.assert_array_equal(panels["label"].image[0, 0, 0], 0.0)
  assert panels["label"].legend[-1][0] == "no label"
  assert panels["prediction"].title == "prediction, land cover classes"
  np.testing.assert_array_equal(
      panels["prediction"].image,
      system.panels(real, np.argmax(logits, -1))["prediction"].image)


def test_two_branch_gated_bfloat16_with_class_weights():
  system = base.get_system(segmentation_config(**{
      "model.segmenter": "two_branch", "dtype": "bfloat16",
      "model.segmenter_kwargs": dict(base_features=4, channel_multipliers=(1, 2),
                                     fusion="gated"),
      "inputs": ("s2", "dem", "s1"),
      "loss.class_weights": tuple(np.linspace(0.5, 1.5, 9))}))
  assert system.optical_inputs == ("s2", "dem") and system.sar_inputs == ("s1",)
  state = host_state(system, make_batch(0))
  for leaf in jax.tree_util.tree_leaves(state.params):
    assert leaf.dtype == np.float32
  state, metrics_ = fast_jit(system.train_step)(state, make_batch(1))
  assert float(metrics_["loss_is_finite"]) == 1.0
  assert np.isfinite(float(metrics_["loss"]))


@pytest.mark.parametrize("overrides, message", [
    ({"inputs": ("s2", "lulc")}, "config.inputs"),
    ({"inputs": ("s2", "optical")}, "config.inputs"),
    ({"model.segmenter": "deeplab"}, "config.model.segmenter"),
    ({"model.segmenter": "two_branch", "inputs": ("s2", "dem")}, "config.inputs"),
    ({"loss.class_weights": (1.0, 2.0)}, "config.loss.class_weights"),
])
def test_config_errors_name_the_key(overrides, message):
  with pytest.raises(ValueError, match=message.replace(".", r"\.")):
    Segmentation(segmentation_config(**overrides))


def _weighted_ce_numpy(logits, labels, ignore_index, class_weights):
  """sum_p w[y_p] * -log softmax(z_p)[y_p] / sum_p w[y_p] over the pixels with
  0 <= y_p < K and y_p != ignore_index, in float64 (independent of rsjax)."""
  z = np.asarray(logits, np.float64)
  z = z - z.max(-1, keepdims=True)
  log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
  labels = np.asarray(labels, np.int64)
  counted = (labels >= 0) & (labels < z.shape[-1])
  if ignore_index is not None:
    counted &= labels != ignore_index
  y = labels[counted]
  w = np.asarray(class_weights, np.float64)[y]
  nll = -np.take_along_axis(log_p[counted], y[:, None], -1)[:, 0]
  return float(np.sum(w * nll) / np.sum(w))


def test_train_loss_is_weighted_cross_entropy_without_ignored_pixels():
  """The train step's loss (#19) is the class-weighted cross-entropy over
  counted pixels, computed here in numpy from the step's own logits: pixels of
  `loss.ignore_index` (8) and invalid pixels do not count and every pixel is
  weighted by its class's weight.

  Tolerance: the logits are recomputed by the same jitted network, so they
  agree with the step's to a few float32 ulps; the float32 loss sums 8192
  per-pixel terms (pairwise: ~log2(8192) = 13 roundings) and each log-softmax
  costs a few ulps of the largest logit; 1e-5 relative (~85 ulp) covers both.
  Ignoring the index or dropping the weights moves the loss by > 0.1 % here
  (checked below), a hundred times that."""
  weights = (0.2, 4.0, 1.0, 0.3, 3.0, 1.0, 0.5, 2.0, 1.0)
  system = base.get_system(segmentation_config(**{
      "loss.ignore_index": 8, "loss.class_weights": weights}))
  batch = make_batch(5)
  batch["valid"][:, :5, :7] = 0                    # invalid pixels too
  assert np.sum(batch["lulc"] == 8) > 100          # the ignored class occurs
  state = host_state(system, make_batch(0))
  # A classifier bias far from uniform, so the classes' losses differ and
  # the weights matter (a near-uniform start gives every class ~log 9).
  params = jax.tree.map(lambda x: x, state.params)
  params["segmenter"]["classifier"]["bias"] = np.linspace(
      -3.0, 3.0, 9).astype(np.float32)
  state = state.replace(params=params)
  _, metrics_ = fast_jit(system.train_step)(state, batch)

  @jax.jit
  def step_logits(state, batch):
    logits, _ = base.train_apply(
        system.segmenter, state.params["segmenter"],
        state.batch_stats["segmenter"], *system.network_inputs(batch),
        rngs={"dropout": state.step_rng("dropout")})
    return logits.astype(np.float32)

  logits = np.asarray(step_logits(state, batch))
  labels = np.where(batch["valid"] > 0, batch["lulc"].astype(np.int64), -1)
  expected = _weighted_ce_numpy(logits, labels, 8, weights)
  np.testing.assert_allclose(float(metrics_["loss"]), expected, rtol=1e-5)
  # The two mistakes would be visible: each moves the loss by more than 0.1 %.
  unweighted = _weighted_ce_numpy(logits, labels, 8, np.ones(9))
  not_ignored = _weighted_ce_numpy(logits, labels, None, weights)
  for wrong in (unweighted, not_ignored):
    assert abs(wrong - expected) > 1e-3 * expected
