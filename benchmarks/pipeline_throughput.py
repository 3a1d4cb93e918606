"""Input-pipeline throughput (tiles/s) of rsjax.data, 256 x 256, all sources.

    python benchmarks/pipeline_throughput.py --data_dir=/tmp/rsjax_tfds
    python benchmarks/pipeline_throughput.py --sources=memory   # no TensorFlow

Each source is read with each of `--read_modes` side by side, in rounds
(every mode once per round, `--rounds` rounds, the median reported), so
that a change of load hits every mode alike: 'random_access' is rsjax's own
reader (`rsjax.data.readers`), 'grain' reads through Grain's dataset graph
(`rsjax.data.grain_reader`; `--read_workers` worker processes, 0: threads
only).

Measures the full path: read -> global sharded jax.Array -> augment +
normalize on device, waiting for each batch to be ready. 'tfds' reads
`rs_multisource/<config>` (built into --data_dir, as ArrayRecord, if missing:
about a minute on a CPU for 'synthetic'); 'memory' serves `MemorySource`.
Absolute numbers depend on the machine: report them with the device named.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax

# The repository root: data_builders/ is not an installed package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rsjax.data import fields, pipeline

ALL_SPATIAL = tuple(fields.SPATIAL)


def _ensure_built(name: str, data_dir: str, file_format: str) -> None:
  pipeline.import_tfds()
  from data_builders.rs_multisource import rs_multisource_dataset_builder as m  # pylint: disable=g-import-not-at-top
  if m.Builder(config=name.split("/", 1)[1], data_dir=data_dir,
               file_format=file_format).is_prepared():
    return
  config = name.split("/", 1)[1]
  print(f"building {name} into {data_dir} ({file_format})...", flush=True)
  start = time.perf_counter()
  m.Builder(config=config, data_dir=data_dir,
            file_format=file_format).download_and_prepare()
  print(f"built in {time.perf_counter() - start:.1f} s", flush=True)


def measure(config: dict, mesh, steps: int, warmup: int) -> float:
  it = pipeline.create_iterator(config, mesh)
  for _ in range(warmup):
    jax.block_until_ready(next(it))
  start = time.perf_counter()
  for _ in range(steps):
    jax.block_until_ready(next(it))
  elapsed = time.perf_counter() - start
  it.close()
  return steps * it.global_batch / elapsed


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", default="/tmp/rsjax_tfds")
  parser.add_argument("--name", default="rs_multisource/synthetic")
  parser.add_argument("--file_format", default="array_record",
                      choices=["array_record", "tfrecord"])
  parser.add_argument("--sources", default="tfds,memory")
  parser.add_argument("--batch_size", type=int, default=0,
                      help="global batch; 0: 4 per device")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--read_modes", default="random_access,grain")
  parser.add_argument("--read_workers", type=int, default=0)
  parser.add_argument("--rounds", type=int, default=3)
  args = parser.parse_args()

  mesh = jax.make_mesh((jax.device_count(),), ("data",))
  batch = args.batch_size or 4 * jax.device_count()
  modes = args.read_modes.split(",")
  print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind}, "
        f"global batch {batch}, all sources {ALL_SPATIAL}, "
        f"read_workers {args.read_workers}, median of {args.rounds} rounds")
  for source in args.sources.split(","):
    if source == "tfds":
      _ensure_built(args.name, args.data_dir, args.file_format)
      config = dict(name=args.name, data_dir=args.data_dir, batch_size=batch,
                    fields=ALL_SPATIAL)
      label = f"tfds {args.name} ({args.file_format})"
    else:
      config = dict(source="memory", batch_size=batch, fields=ALL_SPATIAL,
                    tile_size=256, memory_examples=max(64, 2 * batch))
      label = "memory source"
    rates = {mode: [] for mode in modes}
    for _ in range(args.rounds):
      for mode in modes:
        rates[mode].append(measure(
            dict(config, read_mode=mode, read_workers=args.read_workers),
            mesh, args.steps, args.warmup))
    base = statistics.median(rates[modes[0]])
    for mode in modes:
      rate = statistics.median(rates[mode])
      print(f"{label:45s} {mode:14s} {rate:9.1f} tiles/s "
            f"({rate / base:.2f}x {modes[0]})", flush=True)


if __name__ == "__main__":
  main()
