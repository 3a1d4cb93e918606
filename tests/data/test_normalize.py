"""rsjax.data.normalize: ranges, exact inverses, config errors."""

import ast

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from rsjax.data import normalize
from rsjax.geo import sar


def _dem(rng, n=64):
  return np.stack([rng.uniform(0, 3000, n), rng.uniform(0, 90, n),
                   rng.uniform(0, 359.9, n), rng.uniform(0, 1, n)],
                  -1).astype(np.float32)


def test_s2_maps_range_to_unit_interval_and_back():
  x = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
  y = normalize.normalize("s2", x)
  np.testing.assert_allclose(y, [[-1.0, -0.5, 0.0, 1.0]], atol=1e-6)
  np.testing.assert_allclose(normalize.denormalize("s2", y), x, atol=1e-6)
  clipped = normalize.normalize("s2_cloudy", np.array([-0.1, 2.0, 0, 0]))
  np.testing.assert_allclose(clipped, [-1, 1, -1, -1])


def test_s2_custom_per_band_high():
  cfg = {"s2": {"high": (0.3, 0.3, 0.3, 0.6)}}
  x = np.array([0.15, 0.3, 0.0, 0.3], np.float32)
  y = normalize.normalize("s2", x, cfg)
  np.testing.assert_allclose(y, [0.0, 1.0, -1.0, 0.0], atol=1e-6)
  np.testing.assert_allclose(normalize.denormalize("s2", y, cfg), x, atol=1e-6)


def test_normalize_keeps_float32():
  """A float32 image normalizes to float32 for numpy as for JAX (the range
  is cast to the image's dtype; numpy would otherwise promote to float64),
  with the per-band values worked by hand."""
  cfg = {"s2": {"low": (0.1, 0.1, 0.2, 0.0), "high": (0.5, 0.3, 0.6, 1.0)}}
  x = np.array([[0.1, 0.2, 0.5, 1.0], [0.0, 0.4, 0.3, 0.25]], np.float32)
  want = [[-1.0, 0.0, 0.5, 1.0], [-1.0, 1.0, -0.5, -0.5]]
  for xp in (np, jnp):
    y = normalize.normalize("s2", xp.asarray(x), cfg)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, want, atol=1e-6)


def test_denormalize_maps_back_onto_any_range_and_clips():
  """y in [-1, 1] -> low + (y + 1) / 2 (high - low), worked by hand for a
  range not starting at 0; values outside [-1, 1] clip to the range, and
  float32 stays float32 (numpy would promote to float64)."""
  cfg = {"s2": {"low": (0.1, 0.1, 0.2, 0.0), "high": (0.5, 0.3, 0.6, 1.0)}}
  y = np.array([[-1.0, 0.0, 0.5, 1.0], [-3.0, 2.0, -1.5, 1.25]], np.float32)
  want = [[0.1, 0.2, 0.5, 1.0], [0.1, 0.3, 0.2, 1.0]]
  for xp in (np, jnp):
    back = normalize.denormalize("s2", xp.asarray(y), cfg)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, want, atol=1e-6)
  with pytest.raises(ValueError, match=r"range s2 must have low < high"):
    normalize.denormalize("s2", y, {"s2": {"low": 0.5, "high": 0.5}})


def test_s1_and_dem_follow_their_config():
  """A config's own S1 dB ranges are used (not the defaults); aspect is
  taken modulo 360 (-90 and 450 are 270 and 90 degrees); errors name the
  source and the band."""
  cfg = {"s1": {"ranges": {"VV": (-20.0, 0.0), "VH": (-30.0, -10.0)}}}
  np.testing.assert_allclose(
      normalize.normalize("s1", np.array([[-10.0, -20.0]]), cfg), [[0.0, 0.0]])
  dem = np.array([[100.0, 10.0, -90.0, 0.5], [100.0, 10.0, 450.0, 0.5]])
  np.testing.assert_allclose(normalize.normalize("dem", dem)[:, 2],
                             [270.0 / 180.0 - 1.0, 90.0 / 180.0 - 1.0],
                             atol=1e-6)
  with pytest.raises(ValueError, match=r"^dem: expected 4 channels last"):
    normalize.normalize("dem", dem[:, :3])
  with pytest.raises(ValueError, match=r"^normalization range dem\.slope "
                     r"must have low < high"):
    normalize.normalize("dem", dem, {"dem": {"slope": (10.0, 10.0)}})


def test_s1_uses_geo_sar_ranges():
  rng = np.random.default_rng(0)
  x = np.stack([rng.uniform(-25, 0, 50), rng.uniform(-32.5, 0, 50)], -1)
  y = normalize.normalize("s1_t2", x.astype(np.float32))
  np.testing.assert_allclose(y, sar.normalize_db(x, ("VV", "VH")), atol=1e-6)
  np.testing.assert_allclose(normalize.denormalize("s1", y), x, atol=1e-4)
  np.testing.assert_allclose(normalize.normalize("s1", [[-25.0, 0.0]]),
                             [[-1.0, 1.0]])


@pytest.mark.parametrize("aspect", ["linear", "sincos"])
def test_dem_round_trip(aspect):
  x = _dem(np.random.default_rng(1))
  cfg = {"dem": {"aspect": aspect}}
  y = normalize.normalize("dem", x, cfg)
  assert y.shape[-1] == (5 if aspect == "sincos" else 4)
  assert y.min() >= -1 and y.max() <= 1
  back = normalize.denormalize("dem", y, cfg)
  np.testing.assert_allclose(back[:, [0, 1, 3]], x[:, [0, 1, 3]], rtol=1e-5,
                             atol=1e-3)
  diff = (back[:, 2] - x[:, 2] + 180) % 360 - 180
  np.testing.assert_allclose(diff, 0, atol=1e-3)


def test_dem_sincos_values():
  x = np.array([[100.0, 10.0, 90.0, 0.5]], np.float32)
  y = normalize.normalize("dem", x, {"dem": {"aspect": "sincos"}})
  np.testing.assert_allclose(y[0, 2:4], [1.0, 0.0], atol=1e-6)  # east


def test_passthrough_fields_unchanged():
  lulc = np.arange(9, dtype=np.uint8)
  assert normalize.normalize("lulc", lulc) is lulc
  out = normalize.normalize_batch({"lulc": lulc, "valid": lulc})
  assert out["lulc"].dtype == np.uint8


def test_jax_under_jit_and_configdict():
  cfg = ml_collections.ConfigDict(
      {"dem": {"elevation": (0.0, 1000.0)}, "s2": {"high": 0.5}})
  batch = {"s2": jnp.full((2, 4), 0.25), "dem": jnp.asarray(
      _dem(np.random.default_rng(2), 2)), "lulc": jnp.zeros((2,), jnp.uint8)}
  out = jax.jit(lambda b: normalize.normalize_batch(b, cfg))(batch)
  np.testing.assert_allclose(out["s2"], 0.0, atol=1e-6)
  back = normalize.denormalize_batch(out, cfg)
  assert isinstance(back["s2"], jax.Array)
  np.testing.assert_allclose(back["s2"], 0.25, atol=1e-6)


def test_errors_name_valid_choices():
  with pytest.raises(KeyError, match=r"unknown source.*'sentinel3'.*'dem'"):
    normalize.resolve_config({"sentinel3": {}})
  with pytest.raises(KeyError, match="unknown key"):
    normalize.resolve_config({"s2": {"max": 0.3}})
  with pytest.raises(ValueError, match="dem.aspect"):
    normalize.resolve_config({"dem": {"aspect": "degrees"}})
  with pytest.raises(KeyError, match="unknown field 'ndvi'"):
    normalize.normalize("ndvi", np.zeros(3))
  with pytest.raises(ValueError, match=r"range s2 must have low < high"):
    normalize.normalize("s2", np.zeros(4), {"s2": {"high": 0.0}})
  with pytest.raises(ValueError, match="4 channels"):
    normalize.normalize("dem", np.zeros((2, 3)))


def test_s1_inverse_uses_the_configured_ranges():
  # Non-default ranges: [-1, 1] maps onto VV [-20, -5] and VH [-30, -10] dB.
  # Hand values: -1 -> low, 1 -> high, 0 -> midpoint (-12.5, -20).
  cfg = {"s1": {"ranges": {"VV": (-20.0, -5.0), "VH": (-30.0, -10.0)}}}
  y = np.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]], np.float32)
  # Every number is exact in float32 (multiples of 1/4 below 2**24).
  np.testing.assert_array_equal(normalize.denormalize("s1", y, cfg),
                                [[-20.0, -30.0], [-12.5, -20.0], [-5.0, -10.0]])


def test_dem_linear_aspect_inverse_by_hand():
  # Linear aspect: [-1, 1] is [0, 360] degrees, north (0 == 360) at both
  # ends, so 1 gives 0; values beyond +-1 are clipped first. Channels last on
  # an (H, W, C) image: elevation 1500 m, slope 45 deg, hillshade 0.5 are the
  # midpoints of the default ranges.
  aspect_in = np.array([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], np.float32)
  y = np.zeros((1, 7, 4), np.float32)
  y[..., 2] = aspect_in
  back = normalize.denormalize("dem", y)
  assert back.shape == (1, 7, 4)
  # float32 arithmetic on these multiples of 1/2 and 45 degrees is exact.
  np.testing.assert_array_equal(back[0, :, 2],
                                [0.0, 0.0, 90.0, 180.0, 270.0, 0.0, 0.0])
  np.testing.assert_array_equal(back[0, :, [0, 1, 3]],
                                np.repeat([[1500.0], [45.0], [0.5]], 7, 1))


def test_dem_inverse_of_jax_is_jax_and_errors_name_the_dem():
  y = jnp.zeros((2, 4))
  back = normalize.denormalize("dem", y)
  assert isinstance(back, jax.Array)
  np.testing.assert_allclose(back, [[1500.0, 45.0, 180.0, 0.5]] * 2)
  with pytest.raises(ValueError, match="dem: expected 4 channels"):
    normalize.denormalize("dem", np.zeros((2, 5)))
  with pytest.raises(ValueError, match=r"range dem\.elevation .*low < high"):
    normalize.denormalize("dem", np.zeros((2, 4)),
                          {"dem": {"elevation": (10.0, 10.0)}})


def test_integers_become_float32_floats_keep_precision_and_numpy_stays_numpy():
  """Integer input is computed in float32, float64 stays float64, and numpy
  input gives numpy output (`_float`, `_xp`)."""
  s2 = np.array([[0, 1, 0, 1]], np.uint8)
  out = normalize.normalize("s2", s2)
  assert type(out) is np.ndarray and out.dtype == np.float32
  np.testing.assert_array_equal(out, [[-1.0, 1.0, -1.0, 1.0]])
  assert normalize.normalize("s2", s2.astype(np.float64)).dtype == np.float64
  dem = _dem(np.random.default_rng(5), 3)
  assert normalize.normalize("dem", dem.astype(np.int32)).dtype == np.float32
  assert type(normalize.denormalize("dem", normalize.normalize("dem", dem))) \
      is np.ndarray


def test_a_scalar_is_refused_naming_the_channels_expected():
  with pytest.raises(ValueError, match=r"^dem: expected 4 channels last, got "
                     r"an array of shape \(\)"):
    normalize.normalize("dem", np.float32(3.0))


def test_a_resolved_config_is_plain_literals_however_it_nests_configdicts():
  """The pipeline keys its compiled normalization by the resolved config's
  repr and reads it back with ast.literal_eval: ConfigDicts at any depth,
  inside a dict or around one, become plain dicts."""
  ranges = {"VV": (-20.0, 0.0), "VH": (-30.0, -10.0)}
  nested = ml_collections.ConfigDict(ranges)
  for config in ({"s1": ml_collections.ConfigDict({"ranges": ranges})},
                 ml_collections.ConfigDict({"s1": {"ranges": ranges}}),
                 {"s1": {"ranges": nested}},
                 {"s1": ml_collections.ConfigDict({"ranges": nested})}):
    resolved = normalize.resolve_config(config)
    assert ast.literal_eval(repr(resolved)) == resolved
    assert resolved["s1"]["ranges"] == ranges
