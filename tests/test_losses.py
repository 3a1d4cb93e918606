"""Losses against float64 numpy formulas and scikit-image."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from rsjax import losses


def _log_sigmoid(x):
  return -np.logaddexp(0.0, -x)


@pytest.fixture
def logits():
  rng = np.random.default_rng(0)
  return (rng.normal(size=(2, 5, 5, 1)).astype(np.float32),
          rng.normal(size=(2, 5, 5, 1)).astype(np.float32))


def test_vanilla_losses_are_bce(logits):
  real, fake = logits
  want_d = -np.mean(_log_sigmoid(real)) - np.mean(_log_sigmoid(-fake))
  want_g = -np.mean(_log_sigmoid(fake))
  np.testing.assert_allclose(losses.discriminator_loss("vanilla", real, fake),
                             want_d, rtol=1e-5)
  np.testing.assert_allclose(losses.generator_adversarial_loss("vanilla", fake),
                             want_g, rtol=1e-5)


def test_lsgan_and_hinge(logits):
  real, fake = logits
  np.testing.assert_allclose(losses.discriminator_loss("lsgan", real, fake),
                             np.mean((real - 1) ** 2) + np.mean(fake**2), rtol=1e-5)
  np.testing.assert_allclose(losses.generator_adversarial_loss("lsgan", fake),
                             np.mean((fake - 1) ** 2), rtol=1e-5)
  np.testing.assert_allclose(
      losses.discriminator_loss("hinge", real, fake),
      np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake)),
      rtol=1e-5)
  np.testing.assert_allclose(losses.generator_adversarial_loss("hinge", fake),
                             -np.mean(fake), rtol=1e-5)


def test_multiscale_logits_are_averaged(logits):
  real, fake = logits
  small_real, small_fake = real[:, :2, :2], fake[:, :2, :2]
  want = (losses.discriminator_loss("hinge", real, fake)
          + losses.discriminator_loss("hinge", small_real, small_fake)) / 2
  np.testing.assert_allclose(
      losses.discriminator_loss("hinge", [real, small_real], [fake, small_fake]),
      want, rtol=1e-6)


def test_unknown_adversarial_kind_lists_the_valid_ones(logits):
  with pytest.raises(ValueError, match="vanilla, lsgan, hinge"):
    losses.generator_adversarial_loss("wgan", logits[0])


def test_l1_masked():
  pred = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
  target = np.zeros_like(pred)
  mask = np.array([[[1, 0], [0, 1]]], np.float32)
  np.testing.assert_allclose(losses.l1_loss(pred, target), pred.mean())
  np.testing.assert_allclose(losses.l1_loss(pred, target, mask),
                             (0 + 1 + 6 + 7) / 4)


@pytest.mark.parametrize("mask_shape", [(2, 3, 5), (2, 3, 5, 1), (2, 3, 5, 4)])
def test_l1_mask_of_every_documented_shape(mask_shape):
  """(N, H, W), (N, H, W, 1) or per-channel masks on (N, H, W, C) images of
  distinct sizes (so a mask broadcast against the wrong axes cannot pass):
  the float64 sum of |error| over the masked values over their count."""
  rng = np.random.default_rng(5)
  pred, target = rng.normal(size=(2, 2, 3, 5, 4)).astype(np.float32)
  mask = rng.integers(0, 2, mask_shape).astype(bool)
  full = np.broadcast_to(mask if len(mask_shape) == 4 else mask[..., None]
                         if len(mask_shape) == 3 else mask, pred.shape)
  error = np.abs(pred.astype(np.float64) - target)
  np.testing.assert_allclose(losses.l1_loss(pred, target, mask),
                             (error * full).sum() / full.sum(), rtol=1e-6)


def test_l1_over_a_single_masked_value_is_that_value():
  pred = np.array([[[[3.0], [5.0]]]], np.float32)          # (1, 1, 2, 1)
  mask = np.array([[[0.0, 1.0]]], np.float32)
  np.testing.assert_allclose(losses.l1_loss(pred, np.zeros_like(pred), mask),
                             5.0)
  np.testing.assert_allclose(
      losses.l1_loss(pred, np.zeros_like(pred), np.zeros_like(mask)), 0.0)


def test_ssim_loss_matches_skimage():
  rng = np.random.default_rng(1)
  target = rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  pred = np.clip(target + 0.3 * rng.normal(size=target.shape), -1, 1).astype(np.float32)
  ssims = [structural_similarity(t.astype(np.float64), p.astype(np.float64),
                                 data_range=2.0, channel_axis=-1,
                                 gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)
           for p, t in zip(pred, target)]
  np.testing.assert_allclose(losses.ssim_loss(pred, target), 1 - np.mean(ssims),
                             atol=1e-4)
  grad = jax.grad(lambda p: losses.ssim_loss(p, target))(pred)
  assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def _eq6_numpy(real_maps, fake_maps):
  """CSEBGAN Eq. 6 in float64 numpy: sum over maps of mean |real - fake|."""
  return sum(np.mean(np.abs(np.asarray(r, np.float64) - np.asarray(f, np.float64)))
             for r, f in zip(real_maps, fake_maps, strict=True))


def _feature_maps(rng, shapes):
  return [rng.normal(size=shape).astype(np.float32) for shape in shapes]


# A 3-layer PatchGAN's four intermediate maps (ndf 4) on a 16 px input.
MAP_SHAPES = [(2, 8, 8, 4), (2, 4, 4, 8), (2, 2, 2, 16), (2, 1, 1, 32)]


def test_feature_matching_is_eq6_sum_over_layers():
  rng = np.random.default_rng(3)
  real, fake = _feature_maps(rng, MAP_SHAPES), _feature_maps(rng, MAP_SHAPES)
  # Each map's mean is float32 sums of at most 512 terms of size ~1: relative
  # error well below 1e-5 (N * eps = 512 * 6e-8 = 3e-5 worst case, far less
  # with pairwise summation); 4 such means summed add no more.
  np.testing.assert_allclose(losses.feature_matching_loss(real, fake),
                             _eq6_numpy(real, fake), rtol=1e-5)
  # Worked by hand: maps differing by 2 and 4 everywhere give 2 + 4 = 6 (a
  # mean over the two maps would give 3).
  twos = [np.zeros((1, 4, 4, 2)), np.zeros((1, 2, 2, 3))]
  np.testing.assert_allclose(
      losses.feature_matching_loss(
          twos, [np.full((1, 4, 4, 2), 2.0), np.full((1, 2, 2, 3), 4.0)]), 6.0)
  grad = jax.grad(lambda r: losses.feature_matching_loss(r, fake))(real)
  assert all(np.all(g == 0) for g in jax.tree.leaves(grad))   # real is constant
  with pytest.raises(ValueError, match="same non-empty"):
    losses.feature_matching_loss(real, fake[:3])


def test_feature_matching_averages_the_scales_of_a_multiscale_discriminator():
  """Eq. 6 per scale, scales averaged (SPADE's GAN_Feat_loss / num_D)."""
  rng = np.random.default_rng(4)
  coarse = [(n, h // 2, w // 2, c) for n, h, w, c in MAP_SHAPES[:3]] + [(2, 1, 1, 32)]
  real = [_feature_maps(rng, MAP_SHAPES), _feature_maps(rng, coarse)]
  fake = [_feature_maps(rng, MAP_SHAPES), _feature_maps(rng, coarse)]
  expected = (_eq6_numpy(real[0], fake[0]) + _eq6_numpy(real[1], fake[1])) / 2
  np.testing.assert_allclose(losses.feature_matching_loss(real, fake), expected,
                             rtol=1e-5)   # as above
  with pytest.raises(ValueError, match="same non-empty"):
    losses.feature_matching_loss(real, [fake[0], fake[1][:2]])


def test_feature_matching_mean_reduction_divides_by_the_maps_per_scale():
  """The pix2pix recipe's reduction: Eq. 6 / maps per scale."""
  rng = np.random.default_rng(5)
  real = [_feature_maps(rng, MAP_SHAPES), _feature_maps(rng, MAP_SHAPES)]
  fake = [_feature_maps(rng, MAP_SHAPES), _feature_maps(rng, MAP_SHAPES)]
  expected = (_eq6_numpy(real[0], fake[0]) + _eq6_numpy(real[1], fake[1])) / 2 / 4
  np.testing.assert_allclose(
      losses.feature_matching_loss(real, fake, layer_reduction="mean"), expected,
      rtol=1e-5)   # as above
  with pytest.raises(ValueError, match="layer_reduction"):
    losses.feature_matching_loss(real, fake, layer_reduction="max")


def test_perceptual_loss_weights_layers():
  def features(x):
    return {"a": x, "b": 2 * x}

  pred, target = np.ones((1, 2, 2, 1), np.float32), np.zeros((1, 2, 2, 1), np.float32)
  np.testing.assert_allclose(
      losses.perceptual_loss(features, pred, target, {"a": 0.5, "b": 1.0}),
      0.5 * 1 + 1.0 * 2)
  with pytest.raises(ValueError, match="gives no"):
    losses.perceptual_loss(features, pred, target)


def test_perceptual_loss_runs_on_vgg19_with_random_weights():
  from rsjax.nn.vgg import VGG19
  vgg = VGG19()
  images = np.random.default_rng(2).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
  variables = vgg.init(jax.random.key(0), images)
  loss = losses.perceptual_loss(lambda x: vgg.apply(variables, x), images * 0.5, images)
  assert np.isfinite(loss) and loss > 0
  np.testing.assert_allclose(
      losses.perceptual_loss(lambda x: vgg.apply(variables, x), images, images), 0.0)


def _ce_reference(logits, labels, ignore_index=None, class_weights=None):
  logits = logits.astype(np.float64)
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  total, weight_sum = 0.0, 0.0
  for index in np.ndindex(labels.shape):
    label = labels[index]
    if label == ignore_index or not 0 <= label < logits.shape[-1]:
      continue
    weight = 1.0 if class_weights is None else class_weights[label]
    total += -weight * log_probs[index + (label,)]
    weight_sum += weight
  return total / weight_sum


def test_cross_entropy_matches_reference_with_ignore_and_weights():
  rng = np.random.default_rng(3)
  logits = rng.normal(size=(2, 4, 4, 5)).astype(np.float32)
  labels = rng.integers(0, 5, (2, 4, 4))
  labels[0, 0, :] = 255
  weights = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
  np.testing.assert_allclose(losses.cross_entropy(logits, labels, ignore_index=255),
                             _ce_reference(logits, labels, 255), rtol=1e-5)
  np.testing.assert_allclose(
      losses.cross_entropy(logits, labels, ignore_index=255, class_weights=weights),
      _ce_reference(logits, labels, 255, weights), rtol=1e-5)
  grad = jax.grad(lambda x: losses.cross_entropy(x, labels, ignore_index=255))(logits)
  np.testing.assert_array_equal(grad[0, 0], 0.0)   # ignored pixels get no gradient


def test_cross_entropy_out_of_range_labels_with_ignore_and_small_weights():
  """Labels below 0 and at K are not counted even when an ignore_index inside
  [0, K) is given too; class weights whose counted sum is below 1 still give
  the weighted mean (not the sum); bfloat16 logits are scored in float32
  (the float64 formula of the same rounded logits to 1e-5, where bfloat16
  arithmetic would be ~1e-2 off)."""
  rng = np.random.default_rng(7)
  logits = rng.normal(size=(3, 4, 5)).astype(np.float32)
  labels = rng.integers(0, 5, (3, 4))
  labels[0, :2] = -1
  labels[1, :2] = 5                      # = K
  labels[2, :2] = 2                      # the ignored class
  weights = np.array([0.1, 0.05, 0.2, 0.1, 0.02])
  want = _ce_reference(logits, labels, 2, weights)
  got = losses.cross_entropy(logits, labels, ignore_index=2,
                             class_weights=weights)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  one = np.zeros_like(labels) - 1
  one[0, 3] = 4                          # a single counted pixel, weight 0.02
  np.testing.assert_allclose(
      losses.cross_entropy(logits, one, ignore_index=2, class_weights=weights),
      _ce_reference(logits, one, 2, weights), rtol=1e-5)
  rounded = jnp.asarray(logits, jnp.bfloat16)
  np.testing.assert_allclose(
      losses.cross_entropy(rounded, labels, ignore_index=2),
      _ce_reference(np.asarray(rounded, np.float64), labels, 2), rtol=1e-5)


def test_cross_entropy_errors():
  logits = np.zeros((1, 2, 2, 3), np.float32)
  with pytest.raises(ValueError, match="do not match"):
    losses.cross_entropy(logits, np.zeros((1, 2, 3), np.int32))
  with pytest.raises(ValueError, match="class_weights"):
    losses.cross_entropy(logits, np.zeros((1, 2, 2), np.int32), class_weights=[1, 2])


def test_losses_are_float32_for_bfloat16_inputs(logits):
  real, fake = (jnp.asarray(x, jnp.bfloat16) for x in logits)
  assert losses.discriminator_loss("vanilla", real, fake).dtype == jnp.float32
  assert losses.l1_loss(real, fake).dtype == jnp.float32
  # Computed in float32 from the bfloat16 values, single and multi-scale: the
  # float64 formula of the same (bf16-rounded) logits within float32 rounding
  # (rtol 1e-5); bf16 arithmetic (8-bit mantissa) would be off by ~1e-2.
  real64, fake64 = (np.asarray(x, np.float64) for x in (real, fake))
  want = np.mean(np.maximum(0, 1 - real64)) + np.mean(np.maximum(0, 1 + fake64))
  for pair in ((real, fake), ([real, real], [fake, fake])):
    got = losses.discriminator_loss("hinge", *pair)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_real_and_fake_logits_must_have_the_same_scales(logits):
  real, fake = logits
  with pytest.raises(ValueError):
    losses.discriminator_loss("hinge", [real, real[:, :2, :2]], [fake])


def test_cross_entropy_ignores_an_index_inside_the_class_range():
  """`ignore_index` must drop pixels even when it is a valid class number
  (#19: 255 above is outside [0, K) and is dropped anyway, so ignoring the
  argument went unseen). Class 2 of 5 is ignored here; rtol 1e-5 is ~85
  float32 ulps for a 32-term float32 mean of log-softmaxes of O(1) logits."""
  rng = np.random.default_rng(4)
  logits = rng.normal(size=(2, 4, 4, 5)).astype(np.float32)
  logits[..., 2] += 3.0               # class 2's pixels have a small loss
  labels = rng.integers(0, 5, (2, 4, 4))
  assert np.sum(labels == 2) > 0
  weights = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
  for class_weights in (None, weights):
    got = losses.cross_entropy(logits, labels, ignore_index=2,
                               class_weights=class_weights)
    np.testing.assert_allclose(got, _ce_reference(logits, labels, 2, class_weights),
                               rtol=1e-5)
    assert abs(float(got) - _ce_reference(logits, labels, None, class_weights)) > 1e-2
  grad = jax.grad(lambda x: losses.cross_entropy(x, labels, ignore_index=2))(logits)
  np.testing.assert_array_equal(grad[labels == 2], 0.0)


def test_vgg_perceptual_weights_are_pix2pixhds_and_the_loss_is_eq7():
  """CSEBGAN's perceptual loss (Wang et al., Eq. 7: sum over VGG layers of
  1/M_i ||F_i(o) - F_i(G)||_1, with its other objectives following pix2pixHD
  [11] and SPADE [15]) is their VGG loss: weights 1/32, 1/16, 1/8, 1/4, 1 on
  relu1_1 .. relu5_1 (#19: changing one weight went unseen). The loss is
  pinned on tiny feature maps of different sizes (so the 1/M_i mean is
  checked too) against a value worked out by hand: pred is 1..16 on a 4x4
  grid, target 0, and layer i keeps the top-left s_i x s_i corner times c_i:

    relu1_1  s=4 c=1    mean 8.5          x 1/32 = 0.265625
    relu2_1  s=3 c=2    2 * 54/9 = 12     x 1/16 = 0.75
    relu3_1  s=2 c=3    3 * 14/4 = 10.5   x 1/8  = 1.3125
    relu4_1  s=1 c=4    4 * 1 = 4         x 1/4  = 1.0
    relu5_1  s=4 c=0.5  0.5 * 8.5 = 4.25  x 1    = 4.25
                                            total = 7.578125

  Every term is a float32 sum of at most 16 small integers (exact) and one
  division (1/9 is inexact: one rounding), then 5 products and 4 sums: < 12
  half-ulp roundings, so rtol 1e-6 (~8 ulp) holds; any changed weight moves
  the total by >= 0.13."""
  from rsjax.nn import vgg
  assert losses.VGG_LAYER_WEIGHTS == {"relu1_1": 1 / 32, "relu2_1": 1 / 16,
                                      "relu3_1": 1 / 8, "relu4_1": 1 / 4,
                                      "relu5_1": 1.0}
  assert tuple(losses.VGG_LAYER_WEIGHTS) == vgg.FEATURE_LAYERS
  layers = {"relu1_1": (4, 1.0), "relu2_1": (3, 2.0), "relu3_1": (2, 3.0),
            "relu4_1": (1, 4.0), "relu5_1": (4, 0.5)}

  def features(x):
    return {name: c * x[:, :s, :s, :] for name, (s, c) in layers.items()}

  pred = np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1)
  target = np.zeros_like(pred)
  np.testing.assert_allclose(losses.perceptual_loss(features, pred, target),
                             7.578125, rtol=1e-6)
  # L1 is symmetric; the target side is constant (no gradient).
  np.testing.assert_allclose(losses.perceptual_loss(features, target, pred),
                             7.578125, rtol=1e-6)
  grad = jax.grad(lambda t: losses.perceptual_loss(features, pred, t))(target)
  np.testing.assert_array_equal(grad, 0.0)
