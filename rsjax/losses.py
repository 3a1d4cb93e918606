"""Losses of the papers' systems, as pure functions returning float32 scalars.

  adversarial: vanilla cGAN (BCE on logits; pix2pix, RS-SPADE, cloud removal
    Eq. 1), least squares (LSGAN; the residual cycle GAN), hinge (CSEBGAN
    Eq. 11-12). Logits may be one array or a list of arrays (one per scale of a
    multi-scale discriminator); scales are averaged.
  reconstruction: L1 (optionally masked, e.g. the cycle GAN's cloud-masked L1),
    SSIM loss 1 - SSIM (cloud removal Eq. 3; 11x11 Gaussian via rsjax.metrics).
  feature matching over discriminator features (CSEBGAN Eq. 6: summed over
    layers, averaged over a multi-scale discriminator's scales) and
    the VGG perceptual loss (CSEBGAN Eq. 7, weights 1/32 .. 1 on relu1_1 ..
    relu5_1 as in pix2pixHD/SPADE).
  pixel-wise cross-entropy with an ignore index and optional class weights
    (segmentation; CSEBGAN's conductor).

Losses are computed in float32 whatever the compute dtype of the networks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from rsjax import metrics

ADVERSARIAL_KINDS = ("vanilla", "lsgan", "hinge")
VGG_LAYER_WEIGHTS = {"relu1_1": 1 / 32, "relu2_1": 1 / 16, "relu3_1": 1 / 8,
                     "relu4_1": 1 / 4, "relu5_1": 1.0}


def _scales(logits) -> list[jax.Array]:
  if isinstance(logits, (list, tuple)):
    return [jnp.asarray(x, jnp.float32) for x in logits]
  return [jnp.asarray(logits, jnp.float32)]


def _check_kind(kind: str) -> None:
  if kind not in ADVERSARIAL_KINDS:
    raise ValueError(f"unknown adversarial loss {kind!r}; valid: "
                     f"{', '.join(ADVERSARIAL_KINDS)}")


def discriminator_loss(kind: str, real_logits, fake_logits) -> jax.Array:
  """The discriminator's loss on real and generated samples (scales averaged)."""
  _check_kind(kind)
  losses = []
  for real, fake in zip(_scales(real_logits), _scales(fake_logits), strict=True):
    if kind == "vanilla":
      loss = (optax.sigmoid_binary_cross_entropy(real, jnp.ones_like(real)).mean()
              + optax.sigmoid_binary_cross_entropy(fake, jnp.zeros_like(fake)).mean())
    elif kind == "lsgan":
      loss = jnp.mean((real - 1.0) ** 2) + jnp.mean(fake**2)
    else:
      loss = jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))
    losses.append(loss)
  return jnp.mean(jnp.stack(losses))


def generator_adversarial_loss(kind: str, fake_logits) -> jax.Array:
  """The generator's adversarial loss (non-saturating for vanilla)."""
  _check_kind(kind)
  losses = []
  for fake in _scales(fake_logits):
    if kind == "vanilla":
      loss = optax.sigmoid_binary_cross_entropy(fake, jnp.ones_like(fake)).mean()
    elif kind == "lsgan":
      loss = jnp.mean((fake - 1.0) ** 2)
    else:
      loss = -jnp.mean(fake)
    losses.append(loss)
  return jnp.mean(jnp.stack(losses))


def l1_loss(pred, target, mask=None) -> jax.Array:
  """Mean absolute error; with `mask` (N, H, W[, 1]), over the masked pixels."""
  error = jnp.abs(jnp.asarray(pred, jnp.float32) - jnp.asarray(target, jnp.float32))
  if mask is None:
    return jnp.mean(error)
  mask = jnp.asarray(mask, jnp.float32)
  if mask.ndim == error.ndim - 1:
    mask = mask[..., None]
  mask = jnp.broadcast_to(mask, error.shape)
  return jnp.sum(error * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def ssim_loss(pred, target, *, data_range: float = 2.0) -> jax.Array:
  """1 - mean SSIM (images in [-1, 1] have data_range 2)."""
  return 1.0 - jnp.mean(metrics.ssim(pred, target, data_range=data_range))


LAYER_REDUCTIONS = ("sum", "mean")


def feature_matching_loss(real_features, fake_features, *,
                          layer_reduction: str = "sum") -> jax.Array:
  """Feature matching between discriminator features of real and fake inputs.

  CSEBGAN Eq. 6 (after pix2pixHD and SPADE):

    L_fm = E sum_{i=1}^{L_D - 1} (1 / N_i) |D^(i)(o, m) - D^(i)(G(m), m)|_1

  the SUM over D's intermediate feature maps (the final prediction excluded)
  of each map's mean absolute difference. `real_features` and
  `fake_features` are one discriminator's list of maps, or a list (one per
  scale of a multi-scale discriminator) of such lists; scales are AVERAGED,
  as the codes CSEBGAN follows do (SPADE's `GAN_Feat_loss` divides by num_D,
  pix2pixHD weights each scale 1/num_D). Callers pass the maps without the
  logits. Real features are treated as constants.

  `layer_reduction='mean'` averages the maps of a scale instead of summing
  them: L_fm / (maps per scale). It is not Eq. 6; the pix2pix recipe keeps
  it (`rsjax.systems.pix2pix_recipe`), whose weight in
  `configs/spade_reference.py` is scaled by the maps per scale to match.
  """
  if layer_reduction not in LAYER_REDUCTIONS:
    raise ValueError(f"feature matching: unknown layer_reduction "
                     f"{layer_reduction!r}; valid: {LAYER_REDUCTIONS}")
  real_scales = _feature_scales(real_features)
  fake_scales = _feature_scales(fake_features)
  shapes = lambda scales: [len(s) for s in scales]  # noqa: E731
  if shapes(real_scales) != shapes(fake_scales) or not all(shapes(real_scales)):
    raise ValueError(f"feature matching needs the same non-empty feature lists; "
                     f"got {shapes(real_scales)} real and "
                     f"{shapes(fake_scales)} fake maps per scale")
  per_scale = []
  for real_maps, fake_maps in zip(real_scales, fake_scales):
    per_map = jnp.stack([l1_loss(fake, jax.lax.stop_gradient(real))
                         for real, fake in zip(real_maps, fake_maps)])
    per_scale.append(jnp.sum(per_map) if layer_reduction == "sum"
                     else jnp.mean(per_map))
  return jnp.mean(jnp.stack(per_scale))


def _feature_scales(features) -> list[list]:
  """[[maps of scale 0], [maps of scale 1], ...] of one D's list of maps
  (one scale) or a multi-scale D's list of lists."""
  features = list(features)
  if features and all(isinstance(f, (list, tuple)) for f in features):
    return [list(scale) for scale in features]
  return [features]


def perceptual_loss(features_fn: Callable[[jax.Array], Mapping[str, jax.Array]],
                    pred, target,
                    layer_weights: Mapping[str, float] = VGG_LAYER_WEIGHTS
                    ) -> jax.Array:
  """Weighted L1 between VGG features of pred and target (target constant).

  `features_fn` maps an image batch to a dict of named activations, e.g.
  `lambda x: vgg.apply(vgg_variables, x)` from `rsjax.nn.vgg.load_vgg19`.
  """
  pred_features = features_fn(pred)
  target_features = features_fn(target)
  missing = sorted(set(layer_weights) - set(pred_features))
  if missing:
    raise ValueError(f"perceptual loss: the feature extractor gives no "
                     f"{missing}; it gives {sorted(pred_features)}")
  return sum(weight * l1_loss(pred_features[name],
                              jax.lax.stop_gradient(target_features[name]))
             for name, weight in layer_weights.items())


def cross_entropy(logits, labels, *, ignore_index: int | None = None,
                  class_weights: Sequence[float] | jax.Array | None = None
                  ) -> jax.Array:
  """Pixel-wise softmax cross-entropy, averaged over counted pixels.

  Args:
    logits: (..., K) unnormalized scores.
    labels: (...) integer classes; `ignore_index` and values outside [0, K)
      are not counted.
    class_weights: optional (K,) weights; the mean is then weighted by the
      weight of each pixel's class (PyTorch's `CrossEntropyLoss(weight=...)`).
  """
  logits = jnp.asarray(logits, jnp.float32)
  labels = jnp.asarray(labels)
  num_classes = logits.shape[-1]
  if labels.shape != logits.shape[:-1]:
    raise ValueError(f"cross_entropy: labels of shape {labels.shape} do not "
                     f"match logits of shape {logits.shape}")
  valid = (labels >= 0) & (labels < num_classes)
  if ignore_index is not None:
    valid &= labels != ignore_index
  safe_labels = jnp.where(valid, labels, 0)
  per_pixel = optax.softmax_cross_entropy_with_integer_labels(logits, safe_labels)
  weights = valid.astype(jnp.float32)
  if class_weights is not None:
    class_weights = jnp.asarray(class_weights, jnp.float32)
    if class_weights.shape != (num_classes,):
      raise ValueError(f"cross_entropy: class_weights must have shape "
                       f"({num_classes},), got {class_weights.shape}")
    weights = weights * class_weights[safe_labels]
  return jnp.sum(per_pixel * weights) / jnp.maximum(jnp.sum(weights), 1e-12)
