"""Segmentation scores from a confusion matrix: PA, MPA, per-class IoU, mIoU, FWIoU.

The confusion matrix is the sum-and-count form of every score: compute it per
batch on device (it is summable across batches, hosts and devices), add the
matrices up, then call `segmentation_scores` once. Definitions follow the
optical+SAR fusion review (Eq. 1-5) and the usual benchmark code, with
`cm[i, j]` = number of pixels of true class i predicted as class j:

  PA    = sum_i cm[i, i] / sum_ij cm[i, j]
  MPA   = mean over classes of cm[i, i] / sum_j cm[i, j]
  IoU_i = cm[i, i] / (sum_j cm[i, j] + sum_j cm[j, i] - cm[i, i])
  mIoU  = mean over classes of IoU_i
  FWIoU = sum_i (sum_j cm[i, j] / sum_ij cm[i, j]) * IoU_i

A class absent from both labels and predictions has no IoU (NaN in `iou`) and is
left out of the means; a class absent from the labels has no accuracy and is left
out of MPA.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
from jax.sharding import AxisType, NamedSharding, PartitionSpec


def confusion_matrix(pred_labels, labels, *, num_classes: int,
                     ignore_index: int | None = None) -> jax.Array:
  """Counts (true class, predicted class) pairs over all pixels of the batch.

  Args:
    pred_labels: integer class predictions, any shape (e.g. (N, H, W)).
    labels: integer ground truth of the same shape.
    num_classes: K; the result is a (K, K) int32 matrix.
    ignore_index: a label value whose pixels are not counted. Label values
      outside [0, K) are never counted; predictions outside [0, K) count as
      wrong for their true class but in no column.

  Returns:
    `cm` with `cm[i, j]` = pixels of true class i predicted as j. int32 holds
    about 2e9 pixels; accumulate larger totals on the host in int64.
  """
  pred_labels, labels = jnp.asarray(pred_labels), jnp.asarray(labels)
  if pred_labels.shape != labels.shape:
    raise ValueError(
        f"confusion_matrix: pred_labels and labels shapes differ: "
        f"{pred_labels.shape} vs {labels.shape}.")
  for name, array in (("pred_labels", pred_labels), ("labels", labels)):
    if not jnp.issubdtype(array.dtype, jnp.integer):
      raise ValueError(
          f"confusion_matrix: {name} must hold integer class indices, got "
          f"{array.dtype} (take the argmax of logits first).")
  if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
    raise ValueError(
        f"confusion_matrix: num_classes must be a positive int, got {num_classes!r}.")
  return _confusion_matrix(pred_labels, labels, num_classes, ignore_index)


def _confusion_matrix(pred_labels, labels, num_classes, ignore_index):
  labels = labels.reshape(-1).astype(jnp.int32)
  pred_labels = pred_labels.reshape(-1).astype(jnp.int32)
  valid = (labels >= 0) & (labels < num_classes)
  if ignore_index is not None:
    valid &= labels != ignore_index
  # One-hot contraction over pixels rather than a scatter: it shards over the
  # pixel axis like any matmul, and out-of-range predictions get a zero row.
  true_onehot = jax.nn.one_hot(jnp.where(valid, labels, -1), num_classes,
                               dtype=jnp.int32)
  pred_onehot = jax.nn.one_hot(pred_labels, num_classes, dtype=jnp.int32)
  return jnp.einsum("pi,pj->ij", true_onehot, pred_onehot,
                    preferred_element_type=jnp.int32,
                    out_sharding=_replicated_if_explicit(true_onehot))


# Jitted by assignment rather than with a decorator: the mutation tests
# (`make mutants`, see TESTING.md) skip decorated functions.
_confusion_matrix = jax.jit(_confusion_matrix,
                            static_argnames=("num_classes", "ignore_index"))


def _replicated_if_explicit(x: jax.Array) -> NamedSharding | None:
  """A replicated sharding when `x` lives on a mesh with Explicit axes.

  Under explicit sharding (the default of `jax.make_mesh` since JAX 0.7), a
  contraction over a sharded axis must name its output sharding; on Auto meshes
  and single devices the compiler chooses.
  """
  mesh = jax.typeof(x).sharding.mesh
  if mesh.empty or AxisType.Explicit not in mesh.axis_types:
    return None
  return NamedSharding(mesh, PartitionSpec())


def segmentation_scores(cm) -> dict[str, jax.Array]:
  """PA, MPA, per-class IoU, mIoU and FWIoU of a (K, K) confusion matrix.

  Works on numpy or jax arrays, inside or outside `jit`. Returns float32 values:
  `pixel_accuracy`, `mean_pixel_accuracy`, `iou` (shape (K,), NaN for classes
  absent from labels and predictions), `miou`, `fwiou`. With no counted pixel at
  all, every score is NaN.
  """
  cm = jnp.asarray(cm)
  if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
    raise ValueError(
        f"segmentation_scores: expected a square (K, K) confusion matrix, got "
        f"shape {cm.shape}.")
  # float64 on the host keeps large counts exact; jax follows its x64 setting.
  cm = cm.astype(jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
  true_per_class = cm.sum(axis=1)
  pred_per_class = cm.sum(axis=0)
  hits = jnp.diagonal(cm)
  total = cm.sum()
  union = true_per_class + pred_per_class - hits
  present = union > 0
  iou = jnp.where(present, hits / jnp.where(present, union, 1.0), jnp.nan)
  labelled = true_per_class > 0
  class_accuracy = hits / jnp.where(labelled, true_per_class, 1.0)
  frequency = true_per_class / total
  scores = {
      "pixel_accuracy": hits.sum() / total,
      "mean_pixel_accuracy": _mean_where(class_accuracy, labelled),
      "iou": iou,
      "miou": _mean_where(iou, present),
      "fwiou": jnp.where(total > 0,
                         jnp.sum(jnp.where(present, frequency * iou, 0.0)),
                         jnp.nan),
  }
  return {name: value.astype(jnp.float32) for name, value in scores.items()}


def _mean_where(values, where):
  count = where.sum()
  return jnp.where(count > 0,
                   jnp.sum(jnp.where(where, values, 0.0)) / jnp.maximum(count, 1),
                   jnp.nan)


__all__ = ["confusion_matrix", "segmentation_scores"]
