"""Image metrics against independent references: scikit-image for PSNR/SSIM,
hand-written float64 numpy for SAM, ERGAS and Q."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rsjax import metrics

TOL = 1e-4


def _pair(seed=0, shape=(3, 32, 40, 4), noise=0.1):
  rng = np.random.default_rng(seed)
  target = rng.uniform(0.0, 1.0, shape).astype(np.float32)
  pred = np.clip(target + noise * rng.normal(size=shape), 0, 1).astype(np.float32)
  return pred, target


def _sk_ssim(pred, target, data_range):
  return np.array([
      structural_similarity(t, p, data_range=data_range, channel_axis=-1,
                            gaussian_weights=True, sigma=1.5,
                            use_sample_covariance=False)
      for p, t in zip(pred.astype(np.float64), target.astype(np.float64))])


# --- PSNR -------------------------------------------------------------------

@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_psnr_matches_skimage(data_range):
  pred, target = _pair()
  pred, target = pred * data_range, target * data_range
  expected = [peak_signal_noise_ratio(t.astype(np.float64), p.astype(np.float64),
                                      data_range=data_range)
              for p, t in zip(pred, target)]
  got = metrics.psnr(pred, target, data_range=data_range)
  assert got.shape == (3,)
  np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)


def test_psnr_masked_is_psnr_of_selected_pixels():
  pred, target = _pair()
  mask = np.zeros(pred.shape[:3], np.float32)
  mask[:, 5:20, 7:30] = 1
  got = metrics.psnr(pred, target, data_range=1.0, mask=mask)
  for i in range(3):
    sel = mask[i] > 0
    mse = np.mean((pred[i][sel].astype(np.float64) - target[i][sel]) ** 2)
    np.testing.assert_allclose(got[i], 10 * np.log10(1 / mse), rtol=TOL)


def test_psnr_of_identical_images_is_infinite():
  _, target = _pair()
  assert np.all(np.isposinf(metrics.psnr(target, target, data_range=1.0)))


# --- SSIM -------------------------------------------------------------------

@pytest.mark.parametrize("data_range,shape", [(1.0, (3, 32, 40, 4)),
                                              (2.0, (2, 24, 24, 1)),
                                              (255.0, (2, 11, 15, 3))])
def test_ssim_matches_skimage(data_range, shape):
  pred, target = _pair(shape=shape, noise=0.2)
  pred, target = pred * data_range, target * data_range
  got = metrics.ssim(pred, target, data_range=data_range)
  assert got.shape == (shape[0],)
  np.testing.assert_allclose(got, _sk_ssim(pred, target, data_range), atol=TOL)


def test_ssim_with_mask_averages_the_map_over_masked_centres():
  pred, target = _pair(noise=0.2)
  mask = np.zeros(pred.shape[:3], np.float32)
  mask[:, :16, :] = 1
  got = metrics.ssim(pred, target, data_range=1.0, mask=mask)
  for i in range(3):
    _, full_map = structural_similarity(
        target[i].astype(np.float64), pred[i].astype(np.float64), data_range=1.0,
        channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, full=True)
    valid_map = full_map[5:-5, 5:-5].mean(axis=-1)   # skimage's valid region
    valid_mask = mask[i, 5:-5, 5:-5] > 0
    np.testing.assert_allclose(got[i], valid_map[valid_mask].mean(), atol=TOL)


def test_ssim_identity_is_one():
  _, target = _pair()
  np.testing.assert_allclose(metrics.ssim(target, target, data_range=1.0), 1.0,
                             atol=1e-6)


def test_ssim_rejects_images_smaller_than_the_window():
  pred, target = _pair(shape=(1, 10, 32, 2))
  with pytest.raises(ValueError, match="at least 11x11"):
    metrics.ssim(pred, target, data_range=1.0)


# --- SAM --------------------------------------------------------------------

def _sam_reference(pred, target, mask=None):
  """Plain float64 loop over pixels: mean arccos of the normalised dot product."""
  pred, target = pred.astype(np.float64), target.astype(np.float64)
  out = []
  for i in range(pred.shape[0]):
    angles = []
    for r in range(pred.shape[1]):
      for c in range(pred.shape[2]):
        u, v = pred[i, r, c], target[i, r, c]
        if mask is not None and not mask[i, r, c]:
          continue
        if not np.any(u) or not np.any(v):
          continue
        cos = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
        angles.append(np.arccos(np.clip(cos, -1, 1)))
    out.append(np.mean(angles))
  return np.array(out)


def test_sam_hand_computed_case():
  # Pixel 1: 45 degrees; pixel 2: 90 degrees; pixel 3: 0; pixel 4: zero vector.
  pred = np.array([[[[1, 0], [1, 0]], [[2, 2], [0, 0]]]], np.float32)
  target = np.array([[[[1, 1], [0, 1]], [[1, 1], [3, 4]]]], np.float32)
  np.testing.assert_allclose(metrics.sam(pred, target, degrees=True),
                             [(45 + 90 + 0) / 3], atol=TOL)
  np.testing.assert_allclose(metrics.sam(pred, target),
                             [np.deg2rad(45.0)], atol=TOL)


def test_sam_matches_reference_and_excludes_zero_vectors():
  pred, target = _pair(shape=(2, 8, 9, 4), noise=0.3)
  pred[0, 2, 3] = 0
  target[1, 4, :] = 0
  got = metrics.sam(pred, target)
  assert np.all(np.isfinite(got))
  np.testing.assert_allclose(got, _sam_reference(pred, target), atol=TOL)


def test_sam_masked_matches_reference():
  pred, target = _pair(shape=(2, 8, 9, 4), noise=0.3)
  mask = np.random.default_rng(1).uniform(size=pred.shape[:3]) > 0.5
  np.testing.assert_allclose(metrics.sam(pred, target, mask=mask),
                             _sam_reference(pred, target, mask), atol=TOL)


def test_sam_identity_is_exactly_zero():
  _, target = _pair()
  np.testing.assert_array_equal(metrics.sam(target, target), 0.0)
  # A scaled spectrum has the same direction; only rounding remains (~1 ulp).
  np.testing.assert_allclose(metrics.sam(target, 3.0 * target), 0.0, atol=1e-6)


def test_sam_rejects_a_per_band_mask():
  pred, target = _pair()
  with pytest.raises(ValueError, match="mask"):
    metrics.sam(pred, target, mask=np.ones(pred.shape))


# --- ERGAS ------------------------------------------------------------------

def test_ergas_hand_computed_case():
  target = np.array([[[[2.0, 4.0]], [[2.0, 4.0]]]], np.float32)  # (1, 2, 1, 2)
  pred = np.array([[[[3.0, 4.0]], [[1.0, 6.0]]]], np.float32)
  # Band 0: RMSE 1, mean 2 -> 0.5; band 1: RMSE sqrt(2), mean 4 -> sqrt(2)/4.
  expected = 100 * 0.25 * np.sqrt((0.5**2 + (np.sqrt(2) / 4) ** 2) / 2)
  np.testing.assert_allclose(metrics.ergas(pred, target, ratio=0.25), [expected],
                             rtol=TOL)


def test_ergas_matches_reference_with_mask():
  pred, target = _pair(noise=0.05)
  target += 0.1
  mask = np.random.default_rng(2).uniform(size=pred.shape[:3]) > 0.3
  got = metrics.ergas(pred, target, ratio=1 / 3, mask=mask)
  for i in range(3):
    sel = mask[i]
    p, t = pred[i][sel].astype(np.float64), target[i][sel].astype(np.float64)
    rel = np.sqrt(np.mean((p - t) ** 2, axis=0)) / t.mean(axis=0)
    np.testing.assert_allclose(got[i], 100 / 3 * np.sqrt(np.mean(rel**2)),
                               rtol=TOL)


def test_ergas_identity_is_zero():
  _, target = _pair()
  np.testing.assert_allclose(metrics.ergas(target, target, ratio=0.5), 0.0)


# --- Q index ----------------------------------------------------------------

def _q_reference(x, y):
  """Wang-Bovik Q of two float64 blocks, with the paper's code's special cases."""
  mx, my = x.mean(), y.mean()
  vx, vy = x.var(), y.var()
  cxy = ((x - mx) * (y - my)).mean()
  if vx + vy > 0 and mx**2 + my**2 > 0:
    return 4 * cxy * mx * my / ((vx + vy) * (mx**2 + my**2))
  if vx + vy == 0 and mx**2 + my**2 > 0:
    return 2 * mx * my / (mx**2 + my**2)
  return 1.0


def _q_reference_images(pred, target, block_size):
  out = []
  for i in range(pred.shape[0]):
    per_band = []
    for b in range(pred.shape[-1]):
      x, y = pred[i, ..., b].astype(np.float64), target[i, ..., b].astype(np.float64)
      if block_size is None:
        per_band.append(_q_reference(x, y))
        continue
      h, w = x.shape
      per_band.append(np.mean([
          _q_reference(x[r:r + block_size, c:c + block_size],
                       y[r:r + block_size, c:c + block_size])
          for r in range(h - block_size + 1) for c in range(w - block_size + 1)]))
    out.append(np.mean(per_band))
  return np.array(out)


def test_q_hand_computed_case():
  x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
  y = np.array([2.0, 2.0, 3.0, 5.0]).reshape(1, 2, 2, 1)
  # mx = 2.5, my = 3, var x = 1.25, var y = 1.5, cov = 1.25.
  expected = 4 * 1.25 * 2.5 * 3 / ((1.25 + 1.5) * (2.5**2 + 3**2))
  np.testing.assert_allclose(metrics.q_index(x, y), [expected], rtol=TOL)


@pytest.mark.parametrize("block_size", [None, 1, 4, 8])
def test_q_matches_reference(block_size):
  pred, target = _pair(shape=(2, 12, 13, 3), noise=0.2)
  pred[0, :6, :6, 0] = 0.5      # constant blocks exercise the special cases
  target[0, :6, :6, 0] = 0.5
  pred[1, :5, :5, 1] = 0.25
  got = metrics.q_index(pred, target, block_size=block_size)
  np.testing.assert_allclose(got, _q_reference_images(pred, target, block_size),
                             atol=TOL)


@pytest.mark.parametrize("block_size", [None, 8])
def test_q_identity_is_one(block_size):
  _, target = _pair()
  np.testing.assert_allclose(metrics.q_index(target, target, block_size=block_size),
                             1.0, atol=1e-5)


def test_q_rejects_a_bad_block_size():
  pred, target = _pair(shape=(1, 8, 8, 1))
  for bad in (0, 9, 2.5, True):
    with pytest.raises(ValueError, match="block_size"):
      metrics.q_index(pred, target, block_size=bad)


# --- shared behaviour -------------------------------------------------------

MASKABLE = {
    "psnr": functools.partial(metrics.psnr, data_range=1.0),
    "ssim": functools.partial(metrics.ssim, data_range=1.0),
    "sam": metrics.sam,
    "ergas": functools.partial(metrics.ergas, ratio=0.5),
}
ALL = dict(MASKABLE, q_index=metrics.q_index,
           q_index_blocks=functools.partial(metrics.q_index, block_size=8))


@pytest.mark.parametrize("name", sorted(MASKABLE))
@pytest.mark.parametrize("mask_shape", ["nhw", "nhw1"])
def test_all_ones_mask_equals_unmasked(name, mask_shape):
  pred, target = _pair()
  shape = pred.shape[:3] + ((1,) if mask_shape == "nhw1" else ())
  fn = MASKABLE[name]
  np.testing.assert_allclose(fn(pred, target, mask=np.ones(shape, bool)),
                             fn(pred, target), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(MASKABLE))
def test_mask_and_its_complement_partition_the_image(name):
  """Scores inside and outside a cloud mask are each computed exactly."""
  pred, target = _pair()
  mask = np.zeros(pred.shape[:3], bool)
  mask[:, :, :20] = True
  fn = MASKABLE[name]
  inside = fn(pred, target, mask=mask)
  outside = fn(pred, target, mask=~mask)
  assert np.all(np.isfinite(inside)) and np.all(np.isfinite(outside))
  crop_in = fn(pred[:, :, :20 + 5], target[:, :, :20 + 5],
               mask=mask[:, :, :20 + 5]) if name == "ssim" else None
  if crop_in is not None:   # SSIM windows straddle the edge: check via a crop
    np.testing.assert_allclose(inside, crop_in, atol=1e-6)
  elif name != "ergas":     # ERGAS mixes means, not a per-pixel average
    np.testing.assert_allclose(
        fn(pred[:, :, :20], target[:, :, :20]), inside, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(MASKABLE))
def test_empty_mask_gives_nan(name):
  pred, target = _pair()
  got = MASKABLE[name](pred, target, mask=np.zeros(pred.shape[:3]))
  assert np.all(np.isnan(got))


@pytest.mark.parametrize("name", sorted(ALL))
def test_jit_vmap_and_no_retrace(name):
  fn = ALL[name]
  pred, target = _pair()
  chex.clear_trace_counter()

  def score(p, t):
    return fn(p, t)

  traced = jax.jit(chex.assert_max_traces(score, n=1))
  first = traced(pred, target)
  second = traced(pred + 0.01, target)
  assert first.shape == second.shape == (3,)
  np.testing.assert_allclose(first, fn(pred, target), rtol=1e-5)
  stacked = np.stack([pred, pred * 0.9])
  stacked_target = np.stack([target, target])
  batched = jax.vmap(fn)(stacked, stacked_target)
  assert batched.shape == (2, 3)
  np.testing.assert_allclose(batched[1], fn(pred * 0.9, target), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(ALL))
def test_bfloat16_inputs_are_scored_in_float32(name):
  pred, target = _pair()
  got = ALL[name](jnp.asarray(pred, jnp.bfloat16), jnp.asarray(target, jnp.bfloat16))
  assert got.dtype == jnp.float32 and np.all(np.isfinite(got))


@pytest.mark.parametrize("name", sorted(ALL))
def test_clear_errors_for_bad_shapes(name):
  fn = ALL[name]
  pred, target = _pair()
  with pytest.raises(ValueError, match="shapes differ"):
    fn(pred, target[:, :-1])
  with pytest.raises(ValueError, match="rank 4"):
    fn(pred[0], target[0])


@pytest.mark.parametrize("name", sorted(MASKABLE))
def test_clear_error_for_a_mismatched_mask(name):
  pred, target = _pair()
  with pytest.raises(ValueError, match="mask"):
    MASKABLE[name](pred, target, mask=np.ones((3, 5, 5)))


@pytest.mark.parametrize("fn", [metrics.psnr, metrics.ssim])
@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "1", None, np.ones(2)])
def test_non_positive_data_range_is_rejected(fn, bad):
  pred, target = _pair()
  with pytest.raises(ValueError, match="data_range"):
    fn(pred, target, data_range=bad)


def test_non_positive_ratio_is_rejected():
  pred, target = _pair()
  with pytest.raises(ValueError, match="ratio"):
    metrics.ergas(pred, target, ratio=0)


def test_data_range_may_be_traced_under_an_outer_jit():
  pred, target = _pair()
  got = jax.jit(lambda p, t, r: metrics.psnr(p, t, data_range=r))(pred, target, 1.0)
  np.testing.assert_allclose(got, metrics.psnr(pred, target, data_range=1.0),
                             rtol=1e-6)


@pytest.mark.parametrize("axis_type", ["Explicit", "Auto"])
@pytest.mark.parametrize("name", sorted(ALL))
def test_sharded_batch_equals_unsharded(name, axis_type, devices):
  pred, target = _pair(shape=(8, 24, 24, 3))
  mask = np.random.default_rng(3).uniform(size=pred.shape[:3]) > 0.4
  mesh = jax.make_mesh((8,), ("data",),
                       axis_types=(getattr(jax.sharding.AxisType, axis_type),))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  put = lambda a: jax.device_put(a, sharding)
  fn = ALL[name]
  np.testing.assert_allclose(jax.jit(fn)(put(pred), put(target)),
                             fn(pred, target), rtol=1e-5)
  if name in MASKABLE:
    np.testing.assert_allclose(
        jax.jit(lambda p, t, m: fn(p, t, mask=m))(put(pred), put(target), put(mask)),
        fn(pred, target, mask=mask), rtol=1e-5)


# --- degenerate and badly scaled bands (Q) -----------------------------------

@pytest.mark.parametrize("block_size", [None, 2])
def test_q_of_all_zero_images_is_one(block_size):
  # Both means zero and both blocks constant: the paper's code gives 1.
  zeros = np.zeros((1, 4, 4, 2), np.float32)
  np.testing.assert_array_equal(
      metrics.q_index(zeros, zeros, block_size=block_size), [1.0])


def test_q_of_zero_mean_bands_is_one():
  # var(x) + var(y) > 0 but mean(x)^2 + mean(y)^2 = 0: Q is 0/0, the paper's
  # code gives 1 (the reference's last case).
  x = np.array([[1.0, -1.0], [-1.0, 1.0]], np.float32).reshape(1, 2, 2, 1)
  y = 2 * x
  assert _q_reference(x[0, ..., 0].astype(np.float64),
                      y[0, ..., 0].astype(np.float64)) == 1.0
  np.testing.assert_array_equal(metrics.q_index(x, y), [1.0])


@pytest.mark.parametrize("block_size", [None, 4])
def test_q_is_exact_for_bands_of_very_different_offsets(block_size):
  """A digital-number band near 1000 next to low-contrast reflectance bands:
  each band's statistics must be taken about its own mean (a shift shared by
  all bands leaves ~1000^2 eps of cancellation in the variance of a band of
  variance 1e-7)."""
  rng = np.random.default_rng(5)
  shape = (2, 8, 8)
  target = np.stack([1000 + rng.uniform(size=shape),        # DN band
                     0.5 + 1e-3 * rng.uniform(size=shape),  # low contrast
                     rng.uniform(size=shape)], axis=-1)
  pred = np.stack([1000 + rng.uniform(size=shape),
                   0.5 + 1e-3 * rng.uniform(size=shape),   # independent: Q ~ 0
                   target[..., 2] + 0.1 * rng.normal(size=shape)], axis=-1)
  pred, target = pred.astype(np.float32), target.astype(np.float32)
  np.testing.assert_allclose(
      metrics.q_index(pred, target, block_size=block_size),
      _q_reference_images(pred, target, block_size), atol=TOL)


# --- every error names its metric ----------------------------------------------

@pytest.mark.parametrize("name", sorted(ALL))
def test_errors_name_the_metric(name):
  fn, prefix = ALL[name], name.removesuffix("_blocks")
  pred, target = _pair()
  with pytest.raises(ValueError, match=rf"^{prefix}: pred and target shapes"):
    fn(pred, target[:, :-1])
  with pytest.raises(ValueError, match=rf"^{prefix}: expected NHWC"):
    fn(pred[0], target[0])
  if name in MASKABLE:
    with pytest.raises(ValueError, match=rf"^{prefix}: mask of shape"):
      fn(pred, target, mask=np.ones((3, 5, 5)))


@pytest.mark.parametrize("fn", [metrics.psnr, metrics.ssim])
def test_data_range_error_names_metric_and_argument(fn):
  pred, target = _pair()
  with pytest.raises(ValueError,
                     match=rf"^{fn.__name__}: data_range must be a positive"):
    fn(pred, target, data_range=-1.0)


def test_ratio_error_names_metric_and_argument():
  pred, target = _pair()
  with pytest.raises(ValueError, match=r"^ergas: ratio must be a positive"):
    metrics.ergas(pred, target, ratio=-1.0)
