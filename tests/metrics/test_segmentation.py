"""Confusion matrix and segmentation scores against brute-force numpy counts."""

import chex
import jax
import numpy as np
import pytest

from rsjax import metrics


def _brute_force_cm(pred, labels, num_classes, ignore_index=None):
  cm = np.zeros((num_classes, num_classes), np.int64)
  for p, t in zip(pred.ravel(), labels.ravel()):
    if t == ignore_index or not 0 <= t < num_classes or not 0 <= p < num_classes:
      continue
    cm[t, p] += 1
  return cm


def _brute_force_scores(cm):
  """Independent float64 scores: loops over classes, skipping absent ones."""
  k = cm.shape[0]
  total = cm.sum()
  ious, accs, fw = [], [], 0.0
  iou_per_class = np.full(k, np.nan)
  for i in range(k):
    tp = cm[i, i]
    row, col = cm[i].sum(), cm[:, i].sum()
    if row + col - tp > 0:
      iou_per_class[i] = tp / (row + col - tp)
      ious.append(iou_per_class[i])
      fw += row / total * iou_per_class[i]
    if row > 0:
      accs.append(tp / row)
  return {"pixel_accuracy": np.trace(cm) / total,
          "mean_pixel_accuracy": np.mean(accs), "iou": iou_per_class,
          "miou": np.mean(ious), "fwiou": fw}


def _labels(seed, shape=(4, 16, 16), num_classes=6):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, num_classes, shape)
  pred = np.where(rng.uniform(size=shape) < 0.7, labels,
                  rng.integers(0, num_classes, shape))
  return pred.astype(np.int32), labels.astype(np.int32)


def test_confusion_matrix_matches_brute_force():
  pred, labels = _labels(0)
  cm = metrics.confusion_matrix(pred, labels, num_classes=6)
  assert cm.shape == (6, 6) and cm.dtype == np.int32
  np.testing.assert_array_equal(cm, _brute_force_cm(pred, labels, 6))


def test_confusion_matrix_ignores_ignore_index_and_out_of_range_labels():
  pred, labels = _labels(1)
  labels[0, :4] = 255
  labels[1, :2] = -1
  labels[2, :3] = 7
  pred[3, :5] = 9   # a prediction outside the classes is wrong, not dropped
  cm = metrics.confusion_matrix(pred, labels, num_classes=6, ignore_index=255)
  np.testing.assert_array_equal(cm, _brute_force_cm(pred, labels, 6, 255))
  counted = np.isin(labels, np.arange(6))
  assert int(np.asarray(cm).sum()) + int(np.sum(counted & ~np.isin(pred, np.arange(6)))) \
      == int(counted.sum())


def test_confusion_matrix_is_summable_across_batches_and_devices(devices):
  pred, labels = _labels(2, shape=(8, 8, 8))
  whole = metrics.confusion_matrix(pred, labels, num_classes=6)
  parts = sum(metrics.confusion_matrix(pred[i:i + 2], labels[i:i + 2], num_classes=6)
              for i in range(0, 8, 2))
  np.testing.assert_array_equal(whole, parts)
  for axis_type in (jax.sharding.AxisType.Explicit, jax.sharding.AxisType.Auto):
    mesh = jax.make_mesh((8,), ("data",), axis_types=(axis_type,))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    sharded = jax.jit(lambda p, t: metrics.confusion_matrix(p, t, num_classes=6))(
        jax.device_put(pred, sharding), jax.device_put(labels, sharding))
    np.testing.assert_array_equal(sharded, whole, err_msg=str(axis_type))


def test_confusion_matrix_jit_without_retrace():
  chex.clear_trace_counter()

  def count(p, t):
    return metrics.confusion_matrix(p, t, num_classes=6, ignore_index=0)

  traced = jax.jit(chex.assert_max_traces(count, n=1))
  for seed in range(3):
    pred, labels = _labels(seed)
    np.testing.assert_array_equal(traced(pred, labels),
                                  _brute_force_cm(pred, labels, 6, 0))


def test_confusion_matrix_errors():
  pred, labels = _labels(0)
  with pytest.raises(ValueError, match="shapes differ"):
    metrics.confusion_matrix(pred[:, :-1], labels, num_classes=6)
  with pytest.raises(ValueError, match="integer"):
    metrics.confusion_matrix(pred.astype(np.float32), labels, num_classes=6)
  with pytest.raises(ValueError, match="num_classes"):
    metrics.confusion_matrix(pred, labels, num_classes=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_brute_force(seed):
  pred, labels = _labels(seed, num_classes=8)
  labels[labels == 5] = 4   # class 5 only predicted, never labelled
  pred[pred == 6] = 3       # class 6 only labelled, never predicted
  labels[labels == 7] = 0   # class 7 absent from both
  pred[pred == 7] = 0
  cm = _brute_force_cm(pred, labels, 8)
  got = metrics.segmentation_scores(cm)
  want = _brute_force_scores(cm)
  assert np.isnan(got["iou"][7])
  for key in want:
    np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6,
                               err_msg=key)


def test_scores_hand_computed_case():
  cm = np.array([[3, 1, 0],
                 [0, 2, 0],
                 [0, 0, 0]])
  got = metrics.segmentation_scores(cm)
  np.testing.assert_allclose(got["pixel_accuracy"], 5 / 6, rtol=1e-6)
  np.testing.assert_allclose(got["mean_pixel_accuracy"], (3 / 4 + 1) / 2, rtol=1e-6)
  np.testing.assert_allclose(got["iou"][:2], [3 / 4, 2 / 3], rtol=1e-6)
  assert np.isnan(got["iou"][2])
  np.testing.assert_allclose(got["miou"], (3 / 4 + 2 / 3) / 2, rtol=1e-6)
  np.testing.assert_allclose(got["fwiou"], 4 / 6 * 3 / 4 + 2 / 6 * 2 / 3, rtol=1e-6)


def test_perfect_prediction_scores_one():
  _, labels = _labels(3)
  got = metrics.segmentation_scores(
      metrics.confusion_matrix(labels, labels, num_classes=6))
  for key in ("pixel_accuracy", "mean_pixel_accuracy", "miou", "fwiou"):
    np.testing.assert_allclose(got[key], 1.0, rtol=1e-6)


def test_scores_work_under_jit_and_an_empty_matrix_is_nan():
  pred, labels = _labels(4)
  cm = metrics.confusion_matrix(pred, labels, num_classes=6)
  jitted = jax.jit(metrics.segmentation_scores)(cm)
  eager = metrics.segmentation_scores(np.asarray(cm))
  for key in eager:
    np.testing.assert_allclose(jitted[key], eager[key], rtol=1e-6)
  empty = metrics.segmentation_scores(np.zeros((3, 3), np.int64))
  assert all(np.all(np.isnan(v)) for v in empty.values())


def test_scores_reject_a_non_square_matrix():
  with pytest.raises(ValueError, match="square"):
    metrics.segmentation_scores(np.zeros((3, 4)))


def test_scores_of_single_pixel_classes():
  # Class 0: one pixel, labelled and predicted (union 1, IoU 1, accuracy 1).
  # Class 1: three pixels, one predicted as class 2 (never labelled).
  cm = np.array([[1, 0, 0],
                 [0, 2, 1],
                 [0, 0, 0]])
  got = metrics.segmentation_scores(cm)
  np.testing.assert_allclose(got["iou"], [1.0, 2 / 3, 0.0], rtol=1e-6)
  np.testing.assert_allclose(got["mean_pixel_accuracy"], (1 + 2 / 3) / 2,
                             rtol=1e-6)
  np.testing.assert_allclose(got["miou"], (1 + 2 / 3 + 0) / 3, rtol=1e-6)
  np.testing.assert_allclose(got["fwiou"], 1 / 4 * 1 + 3 / 4 * 2 / 3, rtol=1e-6)


def test_scores_of_a_single_counted_pixel():
  # One present class and a total of one pixel: every mean has one term.
  got = metrics.segmentation_scores(np.array([[1, 0], [0, 0]]))
  for key in ("pixel_accuracy", "mean_pixel_accuracy", "miou", "fwiou"):
    np.testing.assert_allclose(got[key], 1.0, rtol=1e-6, err_msg=key)


def test_scores_follow_x64_and_stay_float32():
  """Under x64, counts past float32's 2^24 stay exact: PA of 2^24 + 1 hits in
  2^24 + 2 pixels is 1 - 1/(2^24 + 2), which float32 counts would round to
  1 - 2/(2^24 + 2). The scores are float32 either way (documented)."""
  n = 2**24
  cm = np.array([[n + 1, 1], [0, 0]], np.int64)
  with jax.enable_x64(True):
    got = metrics.segmentation_scores(cm)
  assert all(v.dtype == np.float32 for v in got.values())
  assert float(got["pixel_accuracy"]) == np.float32(1 - 1 / (n + 2))
  assert np.float32(1 - 1 / (n + 2)) != np.float32(1 - 2 / (n + 2))


def test_confusion_matrix_with_one_class():
  labels = np.array([[0, 0, 5]], np.int32)   # 5: out of range, not counted
  np.testing.assert_array_equal(
      metrics.confusion_matrix(labels, labels, num_classes=1), [[2]])


@pytest.mark.parametrize("bad", [True, 2.5, -1])
def test_confusion_matrix_rejects_a_non_int_num_classes(bad):
  pred, labels = _labels(0)
  with pytest.raises(ValueError, match="^confusion_matrix: num_classes"):
    metrics.confusion_matrix(pred, labels, num_classes=bad)


def test_confusion_matrix_dtype_errors_name_the_argument():
  pred, labels = _labels(0)
  with pytest.raises(ValueError, match="^confusion_matrix: pred_labels must"):
    metrics.confusion_matrix(pred.astype(np.float32), labels, num_classes=6)
  with pytest.raises(ValueError, match="^confusion_matrix: labels must"):
    metrics.confusion_matrix(pred, labels.astype(np.float32), num_classes=6)
