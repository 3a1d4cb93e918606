"""SAR dB conversion, clipping and normalization."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.geo import sar


def test_db_round_trip():
  sigma0 = np.array([1e-4, 0.003, 0.05, 0.2, 1.0, 3.5])
  db = sar.to_db(sigma0)
  np.testing.assert_allclose(db[[0, 4]], [-40.0, 0.0], atol=1e-12)
  np.testing.assert_allclose(sar.from_db(db), sigma0, rtol=1e-12)
  np.testing.assert_allclose(sar.to_db(sar.from_db(db)), db, atol=1e-12)


def test_floor_for_zeros_and_negatives_and_nan_kept():
  db = sar.to_db(np.array([0.0, -0.01, np.nan]), floor=1e-3)
  np.testing.assert_array_equal(db[:2], [-30.0, -30.0])
  assert np.isnan(db[2])
  assert np.isfinite(sar.to_db(np.zeros(3))).all()
  with pytest.raises(ValueError, match="floor"):
    sar.to_db(np.ones(2), floor=0.0)


def test_jax_input_gives_jax_output():
  db = sar.to_db(jnp.asarray([0.0, 0.1]))
  assert isinstance(db, type(jnp.zeros(1)))
  np.testing.assert_allclose(np.asarray(db), [-50.0, -10.0], rtol=1e-6)


def test_clip_and_normalize_per_polarization():
  db = np.array([[-40.0, -40.0], [-25.0, -32.5], [-12.5, -16.25],
                 [0.0, 0.0], [5.0, 3.0]])
  clipped = sar.clip_db(db, ("VV", "VH"))
  np.testing.assert_array_equal(clipped[0], [-25.0, -32.5])
  np.testing.assert_array_equal(clipped[-1], [0.0, 0.0])
  normalized = sar.normalize_db(db, ("VV", "VH"))
  np.testing.assert_allclose(normalized[:, 0], [-1, -1, 0, 1, 1])
  np.testing.assert_allclose(normalized[:, 1], [-1, -1, 0, 1, 1])
  unit = sar.normalize_db(db, ["vv", "vh"], output_range=(0.0, 1.0))
  np.testing.assert_allclose(unit[2], [0.5, 0.5])


def test_normalize_round_trip_on_the_clipped_range():
  rng = np.random.default_rng(0)
  db = rng.uniform(-40, 5, size=(2, 16, 16))  # Channels first.
  ranges = {"VV": (-20.0, -2.0), "VH": (-30.0, -5.0)}
  for output_range in ((-1.0, 1.0), (0.0, 1.0)):
    normalized = sar.normalize_db(db, ("VV", "VH"), ranges=ranges,
                                  output_range=output_range, axis=0)
    assert normalized.min() >= output_range[0]
    assert normalized.max() <= output_range[1]
    back = sar.denormalize_db(normalized, ("VV", "VH"), ranges=ranges,
                              output_range=output_range, axis=0)
    np.testing.assert_allclose(
        back, sar.clip_db(db, ("VV", "VH"), ranges=ranges, axis=0),
        atol=1e-10)


def test_single_polarization_and_errors():
  db = np.full((4, 4, 1), -12.5)
  np.testing.assert_allclose(sar.normalize_db(db, "VV"), 0.0)
  with pytest.raises(KeyError, match="'RR'"):
    sar.normalize_db(db, "RR")
  with pytest.raises(ValueError, match="expected 2 channel"):
    sar.normalize_db(db, ("VV", "VH"))
  for bad in ((0.0, -25.0), (-5.0, -5.0)):
    with pytest.raises(ValueError, match="low < high"):
      sar.normalize_db(db, "VV", ranges={"VV": bad})


def test_one_pixel_one_string_float32_and_the_output_range_check():
  # One (VV, VH) pixel as a 1-D array; a polarization given as one string.
  np.testing.assert_array_equal(
      sar.clip_db(np.array([-30.0, 5.0]), ("VV", "VH")), [-25.0, 0.0])
  assert sar.db_ranges("vh") == [(-32.5, 0.0)]
  # float32 in, float32 out: the per-channel ranges take the input's dtype.
  db32 = np.array([[-30.0, -12.5]], np.float32)
  for function in (sar.clip_db, sar.normalize_db, sar.denormalize_db):
    assert function(db32, ("VV", "VH")).dtype == np.float32, function
  for output_range in ((1.0, 1.0), (1.0, 0.0)):
    with pytest.raises(ValueError, match=r"^output_range must have low < "
                       r"high, got \(1\.0, [01]\.0\)\.$"):
      sar.normalize_db(db32, ("VV", "VH"), output_range=output_range)


def test_denormalize_clips_outside_the_output_range():
  # VV (-25, 0) and VH (-32.5, 0) dB; (-1, 1) maps linearly onto them, and
  # values beyond +-1 land on the range's ends. Worked by hand: 0.5 is 3/4
  # of the way, -6.25 dB for VV and -8.125 dB for VH.
  normalized = np.array([[-1.5, -3.0], [0.5, 0.5], [1.5, 7.0]])
  db = sar.denormalize_db(normalized, ("VV", "VH"))
  # The inputs are exact binary fractions, so is every step: compare exactly.
  np.testing.assert_array_equal(
      db, [[-25.0, -32.5], [-6.25, -8.125], [0.0, 0.0]])


def test_every_function_returns_jax_for_jax_input():
  # "Every function takes numpy or jax arrays and returns the same kind."
  jax_array = type(jnp.zeros(1))
  db = jnp.asarray([[-30.0, -20.0], [-10.0, 2.0]])
  linear = sar.from_db(db)
  assert isinstance(linear, jax_array)
  # 10 ** (dB / 10) in float64 numpy; float32 keeps 6 significant digits.
  np.testing.assert_allclose(
      np.asarray(linear), 10.0 ** (np.asarray(db, np.float64) / 10.0),
      rtol=1e-6)
  clipped = sar.clip_db(db, ("VV", "VH"))
  assert isinstance(clipped, jax_array)
  np.testing.assert_array_equal(np.asarray(clipped),
                                [[-25.0, -20.0], [-10.0, 0.0]])
  back = sar.denormalize_db(jnp.asarray([[-1.0, 0.5]]), ("VV", "VH"))
  assert isinstance(back, jax_array)
  np.testing.assert_array_equal(np.asarray(back), [[-25.0, -8.125]])


def test_integers_become_float32_and_floats_keep_their_precision():
  """Integer input (e.g. dB stored as int16) is computed in float32; float64
  input stays float64, numpy and JAX alike (`_float`)."""
  db = np.array([[-20, -25], [-5, -10]], np.int16)
  for fn in (lambda x: sar.normalize_db(x, ("VV", "VH")),
             lambda x: sar.clip_db(x, ("VV", "VH")), sar.from_db):
    assert fn(db).dtype == np.float32
    assert fn(jnp.asarray(db)).dtype == jnp.float32
    assert fn(db.astype(np.float64)).dtype == np.float64
  np.testing.assert_allclose(sar.normalize_db(db, ("VV", "VH")),
                             sar.normalize_db(db.astype(np.float32),
                                              ("VV", "VH")))
