"""rsjax.data.augment: the 8 dihedral ops, alignment, determinism, aspect."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

from rsjax.data import augment
from rsjax.geo import terrain

# one reflectance vector per LULC class: s2 is a deterministic function of lulc
COLORS = np.random.default_rng(0).uniform(0, 1, (9, 4)).astype(np.float32)


def _aligned_batch(n=16, t=12, seed=0):
  lulc = np.random.default_rng(seed).integers(0, 9, (n, t, t), np.uint8)
  return {"lulc": lulc, "s2": COLORS[lulc], "valid": (lulc > 3).astype(
      np.uint8), "mask": np.ones(n, np.float32)}


def _numpy_dihedral(image):
  """The 8 symmetries of the square, computed independently with numpy."""
  rots = [np.rot90(image, k) for k in range(4)]
  return rots + [np.fliplr(r) for r in rots]


def test_ops_are_the_dihedral_group():
  image = np.arange(16, dtype=np.float32).reshape(4, 4)
  batch = jnp.asarray(np.broadcast_to(image, (8, 4, 4)))
  out = np.asarray(augment.apply_ops(batch, jnp.arange(8)))
  expected = {r.tobytes() for r in _numpy_dihedral(image)}
  assert {o.tobytes() for o in out} == expected
  np.testing.assert_array_equal(out[0], image)


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
def test_sources_stay_aligned_on_sharded_batch(devices, axis_type):
  mesh = jax.make_mesh((8,), ("data",), axis_types=(axis_type,))
  sharding = NamedSharding(mesh, P("data"))
  batch = jax.device_put(_aligned_batch(), sharding)
  fn = jax.jit(lambda b, s: augment.random_augment(b, seed=3, step=s))
  out = fn(batch, jnp.int32(5))
  assert out["s2"].sharding.is_equivalent_to(sharding, 4)
  lulc = np.asarray(out["lulc"])
  np.testing.assert_array_equal(np.asarray(out["s2"]), COLORS[lulc])
  np.testing.assert_array_equal(np.asarray(out["valid"]), lulc > 3)
  np.testing.assert_array_equal(out["mask"], batch["mask"])
  assert not np.array_equal(lulc, np.asarray(batch["lulc"]))
  ops = augment.sample_ops(3, 5, 16)
  np.testing.assert_array_equal(
      lulc, np.asarray(augment.apply_ops(jnp.asarray(_aligned_batch()["lulc"]),
                                         ops)))


def test_ops_roughly_uniform_and_deterministic():
  ops = np.asarray(augment.sample_ops(0, 7, 4000))
  counts = np.bincount(ops, minlength=8)
  chi2 = ((counts - 500) ** 2 / 500).sum()
  assert chi2 < 24.3, counts  # chi-square, 7 dof, p = 0.001
  np.testing.assert_array_equal(ops, augment.sample_ops(0, 7, 4000))
  assert not np.array_equal(ops[:64], augment.sample_ops(0, 8, 64))
  # the op of example i does not depend on the batch size
  np.testing.assert_array_equal(ops[:10], augment.sample_ops(0, 7, 10))
  flips = np.asarray(augment.sample_ops(0, 7, 400, mode="flips"))
  assert set(flips.tolist()) == {0, 1, 2, 3}


def test_no_aug_is_identity():
  batch = {k: jnp.asarray(v) for k, v in _aligned_batch().items()}
  out = augment.random_augment(batch, seed=0, step=3, mode="none")
  for k in batch:
    np.testing.assert_array_equal(out[k], batch[k])
  assert not np.any(augment.sample_ops(0, 3, 16, mode="none"))


def test_flips_on_non_square_tiles():
  x = jnp.arange(2 * 4 * 6, dtype=jnp.float32).reshape(2, 4, 6)
  out = augment.random_augment({"s1": x[..., None]}, seed=0, step=0,
                               mode="flips")
  assert out["s1"].shape == (2, 4, 6, 1)
  with pytest.raises(ValueError, match="square"):
    augment.random_augment({"s1": x[..., None]}, seed=0, step=0)
  with pytest.raises(ValueError, match="mode"):
    augment.sample_ops(0, 0, 2, mode="rot45")
  # Fields of one batch share one grid: here the heights differ.
  with pytest.raises(ValueError, match="different tile sizes"):
    augment.spatial_fields({"s1": x[..., None], "s2": jnp.zeros((2, 5, 6, 4))})


def test_aspect_follows_mirrored_terrain():
  """Aspect of the transformed DEM == transformed aspect (gdaldem formulas)."""
  rng = np.random.default_rng(4)
  t = 16
  yy, xx = np.mgrid[:t, :t].astype(np.float32)
  z = (200 + 30 * np.sin(xx / 3.0) + 20 * np.cos(yy / 4.0) + xx * yy / 5
       + rng.normal(0, 1, (t, t))).astype(np.float32)
  z[4:10, 3:9] = 250.0  # a plateau: flat cells keep their aspect (0)
  def dem_of(elev):
    return np.stack([elev, terrain.slope(elev, res=10.0),
                     terrain.aspect(elev, res=10.0),
                     terrain.hillshade(elev, res=10.0)], -1)
  dem = jnp.asarray(np.broadcast_to(dem_of(z), (8, t, t, 4)))
  ops = jnp.arange(8)
  out = np.asarray(augment.augment_batch({"dem": dem}, ops)["dem"])
  moved = np.asarray(augment.apply_ops(jnp.asarray(
      np.broadcast_to(z, (8, t, t))), ops))
  assert (out[0, 5:9, 4:8, 1] == 0).all()  # op 0 is the identity
  for i in range(8):
    expected = terrain.aspect(moved[i], res=10.0)
    diff = (out[i, ..., 2] - expected + 180) % 360 - 180
    np.testing.assert_allclose(diff, 0, atol=1e-2, err_msg=f"op {i}")
    np.testing.assert_allclose(out[i, ..., 1], terrain.slope(moved[i],
                                                              res=10.0),
                               atol=1e-4)


def _sloped_dem(n=8, t=6):
  """A DEM batch whose slope channel (1) is 0 in the top-left 2 x 2 cells of
  every tile; aspect (2) is 30 degrees everywhere."""
  dem = np.zeros((n, t, t, 4), np.float32)
  dem[..., 0] = 100.0
  dem[..., 1] = 5.0
  dem[:, :2, :2, 1] = 0.0
  dem[..., 2] = 30.0
  return jnp.asarray(dem)


def test_flat_cells_keep_their_aspect_by_the_slope_channel_default():
  """By default slope is channel 1 of the aspect's field: where it is 0 the
  aspect stays as it was; elsewhere a row flip (op 2) turns 30 degrees into
  180 - 30 = 150. With slope_channel=None every cell is corrected."""
  dem = _sloped_dem()
  ops = jnp.full((8,), 2)
  out = np.asarray(augment.augment_batch({"dem": dem}, ops)["dem"])
  flat = np.asarray(augment.apply_ops(dem, ops))[..., 1] == 0
  assert flat.sum() == 8 * 4
  np.testing.assert_array_equal(out[..., 2][flat], 30.0)
  np.testing.assert_array_equal(out[..., 2][~flat], 150.0)
  every = np.asarray(augment.augment_batch({"dem": dem}, ops,
                                           slope_channel=None)["dem"])
  np.testing.assert_array_equal(every[..., 2], 150.0)


def test_without_the_transpose_bit_aspect_follows_the_flips_only():
  """transpose=False ignores bit 4 for the rasters and for aspect alike:
  ops 4..7 act as ops 0..3 (aspect 30 -> 30, 330, 150, 210)."""
  dem = _sloped_dem()
  ops = jnp.arange(8)
  out = np.asarray(augment.augment_batch({"dem": dem}, ops,
                                         transpose=False)["dem"])
  np.testing.assert_array_equal(out[4:], out[:4])
  np.testing.assert_allclose(out[:4, 3, 3, 2], [30.0, 330.0, 150.0, 210.0])


def test_random_augment_draws_its_modes_ops_and_passes_options_on():
  """'flips' draws from ops 0..3 with the transpose bit off, as
  augment_batch(sample_ops(..., 'flips'), transpose=False) does; keyword
  options (here: no aspect correction) reach augment_batch."""
  batch = {"dem": _sloped_dem(16), "lulc": jnp.asarray(
      np.random.default_rng(3).integers(0, 9, (16, 6, 6), np.uint8))}
  for mode in ("flips", "dihedral"):
    for kwargs in ({}, {"aspect": None}):
      out = augment.random_augment(batch, seed=5, step=7, mode=mode, **kwargs)
      ops = augment.sample_ops(5, 7, 16, mode)
      expected = augment.augment_batch(batch, ops,
                                       transpose=mode == "dihedral", **kwargs)
      for name in batch:
        np.testing.assert_array_equal(out[name], expected[name])
  flips = augment.sample_ops(5, 7, 64, "flips")
  assert set(np.asarray(flips).tolist()) == {0, 1, 2, 3}
  untouched = augment.random_augment(batch, seed=5, step=7, aspect=None)
  assert (np.asarray(untouched["dem"])[..., 2] == 30.0).all()


def test_a_batch_without_spatial_fields_is_returned_as_it_is():
  batch = {"mask": jnp.ones(4), "tile_row": jnp.arange(4)}
  out = augment.random_augment(batch, seed=0, step=0)
  assert out == batch and out is not batch


def test_spatial_fields_of_different_widths_or_heights_are_refused():
  """Sizes compare rows and columns: fields that differ only in width are
  refused as well as ones that differ in height."""
  with pytest.raises(ValueError, match="different tile sizes"):
    augment.spatial_fields({"s1": jnp.zeros((2, 4, 6, 1)),
                            "s2": jnp.zeros((2, 4, 5, 4))})
  with pytest.raises(ValueError, match="different tile sizes"):
    augment.spatial_fields({"s1": jnp.zeros((2, 4, 6, 1)),
                            "s2": jnp.zeros((2, 5, 6, 4))})
  with pytest.raises(ValueError, match=r"apply_ops needs \(batch, rows, cols"):
    augment.apply_ops(jnp.zeros((2, 4)), jnp.zeros(2, jnp.int32))


def test_transform_aspect_honours_the_transpose_bit_by_default():
  """Op 4 is the transpose alone: aspect a becomes 270 - a (mod 360)."""
  aspect = jnp.array([[30.0, 300.0]])
  np.testing.assert_allclose(augment.transform_aspect(aspect, jnp.array([4])),
                             [[240.0, 330.0]])
