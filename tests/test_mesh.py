"""Mesh construction and sharding rules on the 8 simulated devices."""

import jax
import numpy as np
import pytest
from jax.sharding import AxisType, PartitionSpec

from rsjax import mesh as mesh_lib


def test_minus_one_takes_the_remaining_devices(devices):
  mesh = mesh_lib.make_mesh((("data", -1), ("fsdp", 2)))
  assert dict(mesh.shape) == {"data": 4, "fsdp": 2}
  assert mesh.axis_types == (AxisType.Auto, AxisType.Auto)
  assert mesh_lib.batch_divisor(mesh) == 8


@pytest.mark.parametrize("axes,match", [
    ((("data", 3), ("fsdp", 2)), "needs 6 devices"),
    ((("data", -1), ("fsdp", 3)), "not divisible"),
    ((("data", -1), ("fsdp", -1)), "at most one"),
    ((("data", 8), ("data", 1)), "unique"),
])
def test_bad_mesh_configs_are_named(axes, match, devices):
  with pytest.raises(ValueError, match=match):
    mesh_lib.make_mesh(axes)


def test_batches_are_split_over_all_axes(devices):
  mesh = mesh_lib.make_mesh((("data", -1), ("fsdp", 2)))
  batch = jax.device_put(np.zeros((16, 4, 4, 3)), mesh_lib.batch_sharding(mesh))
  assert len(batch.addressable_shards) == 8
  assert batch.addressable_shards[0].data.shape == (2, 4, 4, 3)


def test_params_replicated_without_fsdp_and_sharded_with_it(devices):
  data_only = mesh_lib.make_mesh((("data", -1), ("fsdp", 1)))
  assert mesh_lib.param_sharding((3, 3, 64, 128), data_only).spec == PartitionSpec()
  fsdp = mesh_lib.make_mesh((("data", 2), ("fsdp", 4)))
  assert mesh_lib.param_sharding((3, 3, 256, 512), fsdp).spec == \
      PartitionSpec(None, None, None, "fsdp")
  assert mesh_lib.param_sharding((3, 3, 3, 64), fsdp).spec == PartitionSpec()
  assert mesh_lib.param_sharding((1023, 1023), fsdp, fsdp_min_size=1).spec == \
      PartitionSpec()     # nothing divisible by 4
  tree = {"w": jax.ShapeDtypeStruct((4, 1024, 256), np.float32),
          "b": jax.ShapeDtypeStruct((256,), np.float32)}
  shardings = mesh_lib.state_shardings(tree, fsdp)
  assert shardings["w"].spec == PartitionSpec(None, "fsdp", None)
  assert shardings["b"].spec == PartitionSpec()


def test_configs_default_fsdp_min_size_is_the_meshs():
  """configs/ import nothing of rsjax, so the default is written twice."""
  from configs import common  # pylint: disable=g-import-not-at-top
  assert common.base_config("paired_gan").fsdp_min_size == \
      mesh_lib.FSDP_MIN_SIZE
