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
