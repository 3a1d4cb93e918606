"""The test environment itself: 8 devices and an importable package."""

import jax
import numpy as np

import rsjax


def test_eight_simulated_devices(devices):
  assert jax.device_count() == 8
  assert all(d.platform == "cpu" for d in devices)


def test_a_sharded_computation_uses_all_devices(devices):
  mesh = jax.make_mesh((8,), ("data",))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  x = jax.device_put(np.arange(16.0), sharding)
  assert len(x.addressable_shards) == 8
  assert float(jax.jit(lambda a: (a * 2).sum())(x)) == 240.0


def test_package_has_a_version():
  assert rsjax.__version__
