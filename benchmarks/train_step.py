"""Train-step throughput of a system config on the in-memory batch source.

Prints one table row per config: batch, tile, dtype, devices, compile time,
step time (median), images/s, model FLOPs per step over all devices (XLA
cost analysis counts one device's program), MFU of one device against
`--peak_tflops` (the device's dense peak, e.g. 989 for an H100 in bf16), and
the compiler's peak memory per device (`rsjax.train.aot.step_report`). CPU s/step is the
process's CPU time per step (all threads): steadier than wall time on a
shared machine. `build` and `StepBench` are reused by the other scripts. Runs without
TensorFlow, so it works on a JAX-only GPU machine. Not a test.

  python benchmarks/train_step.py --config configs/rs_spade.py:demo --batch 4 --tile 256
  python benchmarks/train_step.py --config configs/pix2pix.py --batch 64 --dtype bfloat16 --peak_tflops 989
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import statistics
import sys
import time
from typing import Any

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rsjax import mesh as mesh_lib  # noqa: E402
from rsjax.data import pipeline  # noqa: E402
from rsjax.systems import base  # noqa: E402
from rsjax.train import aot  # noqa: E402
from rsjax.train import training_length  # noqa: E402


def load_config(spec: str):
  """`path[:arg]` -> the ConfigDict of that config file's `get_config(arg)`."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("bench_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


@dataclasses.dataclass
class StepBench:
  """A compiled, donated train step with its state and two batches."""
  compiled: Any
  state: Any
  batches: list
  compile_s: float
  flops: float          # per device (the SPMD program's), XLA's count
  peak_bytes: int        # per device, the compiler's own peak
  hlo: str

  def run(self, steps: int) -> list[tuple[float, float]]:
    """(wall s, process CPU s) of each of `steps` steps."""
    times = []
    for step in range(steps):
      wall, cpu = time.perf_counter(), time.process_time()
      self.state, metrics = self.compiled(self.state, self.batches[step % 2])
      jax.block_until_ready(metrics)
      times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def build(config, *, batch: int, tile: int, dtype: str = "float32",
          mesh=None) -> StepBench:
  """Compiles `config`'s train step on in-memory batches (no TensorFlow)."""
  config.dtype = dtype
  config.data.source = "memory"
  config.data.tile_size = tile
  config.data.batch_size = batch
  config.data.memory_examples = max(2 * batch, 16)
  mesh = mesh_lib.make_mesh(config.mesh) if mesh is None else mesh
  config = training_length.stand_in(config)   # a paper's epochs: no dataset
  system = base.get_system(config)
  iterator = pipeline.create_iterator(config.data, mesh, train=True)
  try:
    batches = [next(iterator) for _ in range(2)]
  finally:
    iterator.close()
  abstract = jax.eval_shape(system.init, jax.random.PRNGKey(0), batches[0])
  shardings = mesh_lib.state_shardings(abstract, mesh)
  state = jax.jit(system.init, out_shardings=shardings)(
      jax.random.PRNGKey(0), batches[0])
  start = time.perf_counter()
  lowered = jax.jit(system.train_step, donate_argnums=0,
                    out_shardings=(shardings, mesh_lib.replicated(mesh))
                    ).lower(state, batches[0])
  compiled = lowered.compile()
  compile_s = time.perf_counter() - start
  report = aot.step_report("train", compiled, batch, 0, None)
  return StepBench(compiled, state, batches, compile_s, report.flops,
                   report.peak_bytes, compiled.as_text())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--tile", type=int, default=256)
  parser.add_argument("--dtype", default="float32")
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--peak_tflops", type=float, default=None)
  args = parser.parse_args()

  bench = build(load_config(args.config), batch=args.batch, tile=args.tile,
                dtype=args.dtype)
  bench.run(1)  # the first call warms up allocators
  times = bench.run(args.steps)
  step_s = statistics.median(wall for wall, _ in times)
  cpu_s = statistics.median(cpu for _, cpu in times)
  device = jax.devices()[0]
  # XLA counts the FLOPs of one device's program: each device's share of
  # the step, against one device's peak.
  mfu = (bench.flops / step_s / (args.peak_tflops * 1e12)
         if args.peak_tflops else float("nan"))
  print(f"# {device.device_kind} x{jax.device_count()} ({device.platform}); "
        f"config {args.config}")
  print("| batch | tile | dtype | compile s | step ms | CPU s/step | images/s "
        "| GFLOP/step (all devices) | MFU | peak MiB/device |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  print(f"| {args.batch} | {args.tile} | {args.dtype} | {bench.compile_s:.1f} | "
        f"{step_s * 1e3:.1f} | {cpu_s:.2f} | {args.batch / step_s:.2f} | "
        f"{bench.flops * jax.device_count() / 1e9:.1f} | {mfu:.1%} | "
        f"{bench.peak_bytes / 2**20:.0f} |")


if __name__ == "__main__":
  main()
