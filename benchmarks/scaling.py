"""Data-parallel scaling: 1 device vs N at equal per-device batch, and the
collectives in the compiled sharded step.

For each device count the config's train step is compiled on a mesh of that
many devices with a global batch of `--per_device_batch` x devices. The table
gives images/s, images/s per device and CPU seconds per image. On simulated
CPU devices (`--simulate 8`, the default on a CPU host) all devices share the
same cores, so the wall-clock per-device rate must fall by ~N; CPU seconds per
image is the fair measure there (ideal: equal to 1 device's). On N real
accelerators, compare images/s per device. Then every collective of the
sharded step's HLO is listed with its size: a data-parallel step should only
all-reduce gradients and small statistics (no all-gather of the batch or of
parameters). Not a test.

  python benchmarks/scaling.py --config configs/pix2pix.py:demo --per_device_batch 2 --tile 256
  python benchmarks/scaling.py --config configs/rs_spade.py --per_device_batch 8 --tile 256 --simulate 0
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/pix2pix.py:demo")
  parser.add_argument("--per_device_batch", type=int, default=2)
  parser.add_argument("--tile", type=int, default=256)
  parser.add_argument("--dtype", default="float32")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--simulate", type=int, default=8,
                      help="simulated CPU devices (0: use the real devices)")
  args = parser.parse_args()
  if args.simulate:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_"
                               f"host_platform_device_count={args.simulate}")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

  import jax  # pylint: disable=import-outside-toplevel
  import train_step  # pylint: disable=import-outside-toplevel
  from rsjax import mesh as mesh_lib  # pylint: disable=import-outside-toplevel

  devices = jax.devices()
  counts = sorted({1, len(devices)})
  rows, sharded = [], None
  for count in counts:
    config = train_step.load_config(args.config)
    mesh = mesh_lib.make_mesh(config.mesh, devices[:count])
    bench = train_step.build(config, batch=args.per_device_batch * count,
                             tile=args.tile, dtype=args.dtype, mesh=mesh)
    bench.run(1)
    times = bench.run(args.steps)
    wall = statistics.median(t[0] for t in times)
    cpu = statistics.median(t[1] for t in times)
    images = args.per_device_batch * count
    rows.append((count, images, wall, cpu, bench.compile_s))
    sharded = bench

  device = devices[0]
  print(f"# {device.device_kind} ({device.platform}), {len(devices)} devices; "
        f"config {args.config}, tile {args.tile}, {args.dtype}; load average "
        f"{os.getloadavg()[0]:.1f}")
  print("| devices | global batch | step ms | images/s | images/s per device | "
        "CPU s per image | vs 1 device (CPU s/image) | compile s |")
  print("|---|---|---|---|---|---|---|---|")
  base_cpu = rows[0][3] / rows[0][1]
  for count, images, wall, cpu, compile_s in rows:
    print(f"| {count} | {images} | {wall * 1e3:.1f} | {images / wall:.2f} | "
          f"{images / wall / count:.2f} | {cpu / images:.3f} | "
          f"{base_cpu / (cpu / images):.2f}x | {compile_s:.1f} |")

  found = mesh_lib.collectives(sharded.hlo)
  params = sum(x.size for x in jax.tree.leaves(sharded.state.params))
  print(f"\n# collectives of the {counts[-1]}-device step "
        f"({params} parameters = {4 * params / 2**20:.2f} MiB in float32)")
  print("| op | count | arrays | MiB | largest array |")
  print("|---|---|---|---|---|")
  by_op = collections.defaultdict(list)
  for collective in found:
    by_op[collective.op].append(collective)
  for op, items in sorted(by_op.items()):
    arrays = [shape for c in items for shape in c.shapes]
    largest = max(arrays, key=lambda a: mesh_lib.Collective(op, (a,)).bytes)
    print(f"| {op} | {len(items)} | {len(arrays)} | "
          f"{sum(c.bytes for c in items) / 2**20:.3f} | "
          f"{largest[0]}{list(largest[1])} |")
  if not found:
    print("| (none) | 0 | 0 | 0 | - |")


if __name__ == "__main__":
  main()
