"""Train-step throughput of a system config on the in-memory batch source.

Prints one table row per config: batch, tile, dtype, devices, compile time,
step time (median), images/s, model FLOPs per step (XLA cost analysis), MFU
against `--peak_tflops` (the device's dense peak, e.g. 989 for an H100 in
bf16), and peak device memory from XLA's memory analysis. Runs without
TensorFlow, so it works on a JAX-only GPU machine. Not a test.

  python benchmarks/train_step.py --config configs/rs_spade.py:demo --batch 4 --tile 256
  python benchmarks/train_step.py --config configs/pix2pix.py --batch 64 --dtype bfloat16 --peak_tflops 989
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rsjax.data import pipeline  # noqa: E402
from rsjax.systems import base  # noqa: E402
from rsjax.train import mesh as mesh_lib  # noqa: E402


def load_config(spec: str):
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("bench_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--tile", type=int, default=256)
  parser.add_argument("--dtype", default="float32")
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--peak_tflops", type=float, default=None)
  args = parser.parse_args()

  config = load_config(args.config)
  config.dtype = args.dtype
  config.data.source = "memory"
  config.data.tile_size = args.tile
  config.data.batch_size = args.batch
  config.data.memory_examples = max(2 * args.batch, 16)
  mesh = mesh_lib.make_mesh(config.mesh)
  system = base.get_system(config)
  iterator = pipeline.create_iterator(config.data, mesh, train=True)
  batch = next(iterator)
  abstract = jax.eval_shape(system.init, jax.random.PRNGKey(0), batch)
  shardings = mesh_lib.state_shardings(abstract, mesh)
  state = jax.jit(system.init, out_shardings=shardings)(
      jax.random.PRNGKey(0), batch)

  start = time.perf_counter()
  compiled = jax.jit(system.train_step, donate_argnums=0,
                     out_shardings=(shardings, mesh_lib.replicated(mesh))
                     ).lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float((cost or {}).get("flops", float("nan")))
  memory = compiled.memory_analysis()
  peak_bytes = (getattr(memory, "temp_size_in_bytes", 0)
                + getattr(memory, "argument_size_in_bytes", 0)
                + getattr(memory, "output_size_in_bytes", 0)) if memory else 0

  batches = [next(iterator) for _ in range(2)]
  times = []
  for step in range(args.steps + 1):
    start = time.perf_counter()
    state, metrics = compiled(state, batches[step % 2])
    jax.block_until_ready(metrics)
    if step:  # the first call warms up allocators
      times.append(time.perf_counter() - start)
  iterator.close()
  step_s = statistics.median(times)
  device = jax.devices()[0]
  mfu = (flops / step_s / (args.peak_tflops * 1e12 * jax.device_count())
         if args.peak_tflops else float("nan"))
  print(f"# {device.device_kind} x{jax.device_count()} ({device.platform}); "
        f"config {args.config}")
  print("| batch | tile | dtype | compile s | step ms | images/s | "
        "GFLOP/step | MFU | peak MiB |")
  print("|---|---|---|---|---|---|---|---|---|")
  print(f"| {args.batch} | {args.tile} | {args.dtype} | {compile_s:.1f} | "
        f"{step_s * 1e3:.1f} | {args.batch / step_s:.2f} | {flops / 1e9:.1f} | "
        f"{mfu:.1%} | {peak_bytes / 2**20:.0f} |")


if __name__ == "__main__":
  main()
