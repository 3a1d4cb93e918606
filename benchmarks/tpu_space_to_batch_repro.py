"""Minimal reproducer of a TPU compiler abort (space-to-batch pass), for an upstream report.

With libtpu (`pip install -e '.[tpu]'`; no TPU needed), compiling for a
v5e:2x2 topology the weight gradient of

    relu(conv3x3(jax.nn.one_hot(labels, 9)))      # 4 images of 256 x 256, 1 per chip

aborts the process in XLA's space-to-batch converter:

    Check failed: PropagateOnBackpropFilterConv(consumer) is OK
    (INVALID_ARGUMENT: Operands to select must be the same shape;
    got f32[256,8,33,8] and pred[256,8,33,8].

(libtpu 0.0.42.1, jax 0.10.2). The same function with the one-hot written as
`jnp.where(labels[..., None] == arange(9), 1.0, 0.0)` compiles, as does
either form with the pass disabled
(LIBTPU_INIT_ARGS=--xla_disable_hlo_passes=space-to-batch-converter).
RS-SPADE's land-cover embedding is this pattern; `rsjax.systems.inputs.one_hot`
uses the select form (issue 22). Not a test: the abort kills the process, so
each form runs in a subprocess here.

  python benchmarks/tpu_space_to_batch_repro.py          # prints both outcomes
"""

from __future__ import annotations

import os
import subprocess
import sys

_CHILD = r'''
import sys
import jax
import jax.numpy as jnp
from jax.experimental import topologies
from jax.sharding import AxisType, NamedSharding, PartitionSpec

topology = topologies.get_topology_desc(topology_name="v5e:2x2", platform="tpu")
mesh = jax.make_mesh((4,), ("data",), devices=topology.devices,
                     axis_types=(AxisType.Auto,))
classes, features = 9, 8
labels = jax.ShapeDtypeStruct((4, 256, 256), jnp.int32,
                              sharding=NamedSharding(mesh, PartitionSpec("data")))
kernel = jax.ShapeDtypeStruct((3, 3, classes, features), jnp.float32,
                              sharding=NamedSharding(mesh, PartitionSpec()))


def one_hot(codes):
  if sys.argv[1] == "convert":
    return jax.nn.one_hot(codes, classes, dtype=jnp.float32)
  return jnp.where(codes[..., None] == jnp.arange(classes), 1.0, 0.0)


def weight_gradient(kernel, labels):
  def loss(kernel):
    y = jax.lax.conv_general_dilated(one_hot(labels), kernel, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.mean(jax.nn.relu(y) ** 2)
  return jax.grad(loss)(kernel)


jax.jit(weight_gradient, out_shardings=NamedSharding(mesh, PartitionSpec())
        ).lower(kernel, labels).compile()
print("compiled")
'''


def outcome(form: str) -> str:
  """'compiled' or the compiler's check failure for one one-hot form."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", _CHILD, form], env=env,
                          capture_output=True, text=True, check=False)
  if result.returncode == 0 and "compiled" in result.stdout:
    return "compiled"
  failed = [line for line in result.stderr.splitlines()
            if "Check failed" in line]
  return (failed[0].split("] ", 1)[-1] if failed
          else f"exit status {result.returncode}")


def main() -> None:
  for form in ("convert", "select"):
    print(f"one-hot as {form}: {outcome(form)}")


if __name__ == "__main__":
  main()
