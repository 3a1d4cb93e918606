"""Build speed of the rs_multisource TFDS dataset: tiles/s and peak memory.

Builds one config (default `synthetic`: 256x256 tiles with every source) into
a temporary data_dir and prints one table: wall time of the whole build, of
writing the synthetic scenes (make_scene) and of the rest (alignment, DEM
derivatives, TFRecord writing), tiles per second, and the process's peak
resident memory. Not a test; the numbers depend on the machine (named in the
header) and on what else runs on it.

  python benchmarks/dataset_build.py --config synthetic
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from data_builders.rs_multisource import rs_multisource_dataset_builder as rsms  # noqa: E402


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="synthetic",
                      choices=[c.name for c in rsms.Builder.BUILDER_CONFIGS
                               if c.source == "synthetic"])
  args = parser.parse_args()

  scene_seconds = []
  write_scenes = rsms.write_synthetic_scenes

  def timed_write(config, root):
    start = time.perf_counter()
    write_scenes(config, root)
    scene_seconds.append(time.perf_counter() - start)

  rsms.write_synthetic_scenes = timed_write
  with tempfile.TemporaryDirectory() as data_dir:
    start = time.perf_counter()
    builder = rsms.Builder(config=args.config, data_dir=data_dir)
    builder.download_and_prepare()
    total = time.perf_counter() - start
  splits = {name: s.num_examples for name, s in builder.info.splits.items()}
  tiles = sum(splits.values())
  peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  config = builder.builder_config
  print(f"# rs_multisource/{args.config} build on {platform.node()} "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} "
        f"CPUs, load {os.getloadavg()[0]:.1f})")
  print(f"# {config.num_scenes} scenes of {config.scene_size}^2 px, "
        f"tiles {config.tile_size}^2, splits {splits}")
  print("| total s | scenes s | tiling+writing s | tiles | tiles/s | "
        "peak RSS MiB |")
  print("|---|---|---|---|---|---|")
  scenes = sum(scene_seconds)
  print(f"| {total:.1f} | {scenes:.1f} | {total - scenes:.1f} | {tiles} | "
        f"{tiles / total:.2f} | {peak_mib:.0f} |")


if __name__ == "__main__":
  main()
