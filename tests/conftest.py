"""Test setup: 8 simulated CPU devices, so sharded code runs on a real mesh.

XLA reads the flag when the backend starts, so it is set here, before anything
imports JAX. TensorFlow (the input pipeline only) must not grab accelerators.
"""

import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import jax  # noqa: E402  (must come after XLA_FLAGS)
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def devices():
  """The 8 simulated CPU devices."""
  found = jax.devices()
  assert len(found) == 8, f"expected 8 simulated devices, got {found}"
  return found
