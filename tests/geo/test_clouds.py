"""Tests for rsjax.geo.clouds: coverage, opacity, shadows, Porter-Duff over."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.geo import clouds

SIZE = 128


def _ground(bands=4, size=SIZE):
  """A dark, textured ground image in reflectance units."""
  rows, cols = np.mgrid[0:size, 0:size]
  base = 0.05 + 0.1 * (rows + cols) / (2 * size)
  return jnp.asarray(
      np.stack([base * (1 + 0.2 * b) for b in range(bands)], axis=-1),
      jnp.float32)


@pytest.mark.parametrize("target", [0.05, 0.25, 0.5, 0.8])
def test_coverage_hits_the_target_for_several_keys(target):
  keys = jax.random.split(jax.random.key(7), 4)
  add = functools.partial(clouds.add_clouds, image=_ground(),
                          coverage=target)
  result = jax.vmap(lambda key: add(key))(keys)
  coverage = np.asarray(result.cloud_mask.mean(axis=(1, 2)))
  np.testing.assert_allclose(coverage, target, atol=0.02)


def test_per_image_coverage_under_vmap_and_jit():
  keys = jax.random.split(jax.random.key(0), 3)
  images = jnp.stack([_ground(), 0.5 * _ground(), 2 * _ground()])
  targets = jnp.array([0.1, 0.4, 0.7])
  batched = jax.jit(jax.vmap(
      lambda k, im, c: clouds.add_clouds(k, im, coverage=c)))
  result = batched(keys, images, targets)
  assert result.image.shape == images.shape
  assert result.cloud_mask.shape == (3, SIZE, SIZE)
  np.testing.assert_allclose(result.cloud_mask.mean(axis=(1, 2)), targets,
                             atol=0.02)
  # Each batch element equals the unbatched call.
  for i in range(3):
    single = clouds.add_clouds(keys[i], images[i], coverage=targets[i])
    np.testing.assert_allclose(result.image[i], single.image, atol=1e-6)
    np.testing.assert_array_equal(result.cloud_mask[i], single.cloud_mask)


def test_deterministic_per_key_and_different_across_keys():
  image = _ground()
  first = clouds.add_clouds(jax.random.key(3), image, coverage=0.3)
  again = clouds.add_clouds(jax.random.key(3), image, coverage=0.3)
  other = clouds.add_clouds(jax.random.key(4), image, coverage=0.3)
  np.testing.assert_array_equal(first.image, again.image)
  np.testing.assert_array_equal(first.cloud_mask, again.cloud_mask)
  assert not np.array_equal(first.cloud_mask, other.cloud_mask)


def test_clear_pixels_are_untouched_and_thick_cores_are_the_cloud_colour():
  image = _ground(bands=3)
  reflectance = jnp.array([0.8, 0.85, 0.9])
  result = clouds.add_clouds(jax.random.key(1), image, coverage=0.4,
                             cloud_reflectance=reflectance,
                             **clouds.THICK_CLOUDS)
  clear = ~np.asarray(result.cloud_mask)
  np.testing.assert_array_equal(np.asarray(result.image)[clear],
                                np.asarray(image)[clear])
  core = np.asarray(result.alpha) == 1.0
  assert core.mean() > 0.2  # thick clouds are mostly opaque
  np.testing.assert_allclose(np.asarray(result.image)[core],
                             np.broadcast_to(reflectance, (core.sum(), 3)),
                             atol=1e-6)
  # Cloudy pixels are brighter than the dark ground in every band.
  cloudy = np.asarray(result.cloud_mask)
  assert np.all(np.asarray(result.image)[cloudy] > np.asarray(image)[cloudy])


def test_thin_clouds_let_the_ground_through():
  image = _ground()
  result = clouds.add_clouds(jax.random.key(2), image, coverage=0.5,
                             **clouds.THIN_CLOUDS)
  alpha = np.asarray(result.alpha)
  assert alpha.max() <= clouds.THIN_CLOUDS["opacity"] + 1e-6
  cloudy = np.asarray(result.cloud_mask)
  # Between the ground and the (at most 0.9) cloud: the ground still shows.
  out, ground = np.asarray(result.image)[cloudy], np.asarray(image)[cloudy]
  assert np.all(out > ground) and np.all(out < 0.5 * 0.9 + 0.5 * ground + 1e-6)


def test_alpha_blend_matches_porter_duff_over_by_hand():
  # Porter & Duff 1984, "over" with straight colours: a hand-computed pixel.
  color, alpha = clouds.over(jnp.float32(0.9), jnp.float32(0.25),
                             jnp.float32(0.1), jnp.float32(0.5))
  expected_alpha = 0.25 + 0.5 * 0.75  # 0.625
  expected_color = (0.9 * 0.25 + 0.1 * 0.5 * 0.75) / expected_alpha
  np.testing.assert_allclose(alpha, expected_alpha, rtol=1e-6)
  np.testing.assert_allclose(color, expected_color, rtol=1e-6)
  # Opaque background: the familiar lerp; fully transparent: nothing.
  color, alpha = clouds.over(jnp.float32(1.0), jnp.float32(0.3),
                             jnp.float32(0.2))
  np.testing.assert_allclose(color, 0.3 * 1.0 + 0.7 * 0.2, rtol=1e-6)
  np.testing.assert_allclose(alpha, 1.0)
  color, alpha = clouds.over(jnp.float32(1.0), jnp.float32(0.0),
                             jnp.float32(0.2), jnp.float32(0.0))
  assert float(color) == 0.0 and float(alpha) == 0.0


def test_shadows_are_the_shifted_cloud_and_darken_the_ground():
  image = _ground()
  offset = (9, -6)
  result = clouds.add_clouds(jax.random.key(5), image, coverage=0.25,
                             shadow_offset=offset, shadow_strength=0.6)
  cloud = np.asarray(result.cloud_mask)
  shadow = np.asarray(result.shadow_mask)
  shifted = np.zeros_like(cloud)
  shifted[9:, :-6] = cloud[:-9, 6:]
  np.testing.assert_array_equal(shadow, shifted & ~cloud)
  assert shadow.mean() > 0.02
  out, ground = np.asarray(result.image), np.asarray(image)
  assert np.all(out[shadow] < ground[shadow])
  untouched = ~cloud & ~shadow
  np.testing.assert_array_equal(out[untouched], ground[untouched])
  no_shadow = clouds.add_clouds(jax.random.key(5), image, coverage=0.25)
  assert not np.asarray(no_shadow.shadow_mask).any()


def test_extreme_coverages():
  image = _ground()
  none = clouds.add_clouds(jax.random.key(0), image, coverage=0.0)
  assert not np.asarray(none.cloud_mask).any()
  np.testing.assert_array_equal(none.image, image)
  full = clouds.add_clouds(jax.random.key(0), image, coverage=1.0)
  assert np.asarray(full.cloud_mask).all()


@pytest.mark.parametrize("bands", [None, 13])
def test_any_band_count(bands):
  image = _ground(bands=bands or 1, size=64)
  if bands is None:
    image = image[..., 0]
  result = clouds.add_clouds(jax.random.key(0), image, coverage=0.3)
  assert result.image.shape == image.shape
  assert result.cloud_mask.shape == (64, 64)


def test_rejects_a_batched_image():
  with pytest.raises(ValueError, match="vmap"):
    clouds.add_clouds(jax.random.key(0), jnp.zeros((2, 8, 8, 3)),
                      coverage=0.3)


def test_fractal_noise_is_standardised_with_the_requested_power_law():
  exponent = 3.0
  field = np.asarray(clouds.fractal_noise(
      jax.random.key(11), (256, 256), spectral_exponent=exponent,
      feature_size=1e6))
  assert abs(field.mean()) < 1e-4 and abs(field.std() - 1) < 1e-3
  # Radially averaged power spectrum, fitted in log-log (independent of how
  # the field was made): slope ~ -exponent.
  power = np.abs(np.fft.fft2(field)) ** 2
  freq = np.hypot(*np.meshgrid(np.fft.fftfreq(256), np.fft.fftfreq(256),
                               indexing="ij"))
  bins = np.geomspace(0.02, 0.3, 12)
  idx = np.digitize(freq.ravel(), bins)
  centers, means = [], []
  for i in range(1, len(bins)):
    sel = idx == i
    centers.append(freq.ravel()[sel].mean())
    means.append(power.ravel()[sel].mean())
  slope = np.polyfit(np.log(centers), np.log(means), 1)[0]
  assert abs(slope + exponent) < 0.5, slope


def test_the_cloud_mask_is_the_noise_above_its_coverage_quantile():
  """cloud_layer thresholds fractal_noise (with the same defaults) at its
  (1 - coverage) quantile; the thickness is 0 outside the mask, and without a
  shadow offset the shadow mask is an all-False boolean image."""
  key = jax.random.key(5)
  noise = np.asarray(clouds.fractal_noise(key, (SIZE, SIZE)))
  layer = clouds.cloud_layer(key, (SIZE, SIZE), coverage=0.3)
  expected = noise > np.quantile(noise, 0.7)
  # The quantiles of numpy and JAX may straddle one pixel of the noise.
  assert np.sum(np.asarray(layer.mask) != expected) <= 1
  outside = ~np.asarray(layer.mask)
  assert outside.any()
  np.testing.assert_array_equal(np.asarray(layer.thickness)[outside], 0.0)
  result = clouds.add_clouds(key, _ground(), coverage=0.3)
  assert result.shadow_mask.dtype == jnp.bool_
  assert not np.asarray(result.shadow_mask).any()


@pytest.mark.parametrize("offset", [(0, 0), (2, 3), (-1, 0), (0, -2),
                                    (1.6, -0.4), (5, 5)])
def test_shift_with_zeros_moves_the_field_and_fills_zeros(offset):
  """Checked pixel by pixel: out[r, c] = field[r - dr, c - dc] for the rounded
  offset (dr, dc) (down/right), zero where that pixel is outside."""
  field = np.arange(1, 21, dtype=np.float32).reshape(4, 5)
  dr, dc = (int(np.round(v)) for v in offset)
  want = np.zeros_like(field)
  for r in range(4):
    for c in range(5):
      if 0 <= r - dr < 4 and 0 <= c - dc < 5:
        want[r, c] = field[r - dr, c - dc]
  got = clouds.shift_with_zeros(jnp.asarray(field), offset)
  np.testing.assert_array_equal(np.asarray(got), want)


def test_the_documented_defaults():
  """fractal_noise: exponent 3.8, features of 64 px; cloud_layer: opacity 1,
  edge width 0.3 (and the same noise)."""
  key, shape = jax.random.key(2), (64, 64)
  np.testing.assert_array_equal(
      clouds.fractal_noise(key, shape),
      clouds.fractal_noise(key, shape, spectral_exponent=3.8,
                           feature_size=64.0))
  default = clouds.cloud_layer(key, shape, coverage=0.4)
  explicit = clouds.cloud_layer(key, shape, coverage=0.4, opacity=1.0,
                                edge_width=0.3, spectral_exponent=3.8,
                                feature_size=64.0)
  for got, expected in zip(default, explicit):
    np.testing.assert_array_equal(got, expected)


def test_noise_and_edge_options_reach_the_layer_and_the_image():
  """Non-default noise shape and edge width: cloud_layer thresholds the noise
  made with them, and add_clouds' opacity is that layer's."""
  key = jax.random.key(8)
  options = dict(edge_width=1.0, spectral_exponent=2.5, feature_size=16.0)
  noise = np.asarray(clouds.fractal_noise(
      key, (SIZE, SIZE), spectral_exponent=2.5, feature_size=16.0))
  layer = clouds.cloud_layer(key, (SIZE, SIZE), coverage=0.3, **options)
  expected = noise > np.quantile(noise, 0.7)
  assert np.sum(np.asarray(layer.mask) != expected) <= 1
  result = clouds.add_clouds(key, _ground(), coverage=0.3, **options)
  np.testing.assert_array_equal(result.alpha, layer.alpha)
  np.testing.assert_array_equal(result.cloud_mask, layer.mask)


def test_over_nothing_is_transparent_black():
  """Where both alphas are 0 the result is colour 0, alpha 0 (no 0 / 0)."""
  color, alpha = clouds.over(jnp.float32(0.7), jnp.float32(0.0),
                             jnp.float32(0.2), jnp.float32(0.0))
  assert float(alpha) == 0.0 and float(color) == 0.0


def test_a_single_band_image_keeps_its_shape():
  key = jax.random.key(4)
  ground = _ground()
  flat = clouds.add_clouds(key, ground[..., 0], coverage=0.3)
  banded = clouds.add_clouds(key, ground[..., :1], coverage=0.3)
  assert flat.image.shape == (SIZE, SIZE)
  np.testing.assert_array_equal(flat.image, banded.image[..., 0])
  # Masks are (H, W) whatever the bands, with shadows or without.
  for result in (flat, banded, clouds.add_clouds(key, ground, coverage=0.3)):
    assert result.shadow_mask.shape == result.cloud_mask.shape == (SIZE, SIZE)


def test_coverage_outside_zero_one_is_clipped():
  """A coverage above 1 is a full cover and below 0 none, with the opacities
  of coverage 1 and 0 (no NaN from a quantile outside [0, 1])."""
  key = jax.random.key(6)
  for given, clipped in ((1.5, 1.0), (-0.5, 0.0)):
    layer = clouds.cloud_layer(key, (64, 64), coverage=given)
    expected = clouds.cloud_layer(key, (64, 64), coverage=clipped)
    for got, want in zip(layer, expected):
      np.testing.assert_array_equal(got, want)
