"""Full-scene inference throughput: megapixels/s and peak RSS against scene size.

  python benchmarks/inference_throughput.py                  # 1k, 2k, 4k px
  python benchmarks/inference_throughput.py --sizes 512,1024,2048
  python benchmarks/inference_throughput.py --workdir workdir/rs_spade  # a run

For each size a square synthetic scene (`rsjax.geo.synthetic.make_scene`:
S1, LULC, DEM in their own grids and CRSs) is written once under --scratch;
then a fresh child process restores the generator, compiles its predict on
one zero batch, and runs `rsjax.eval.inference.full_scene.predict_scene` over the whole
scene into a COG: reading and aligning, terrain, normalization, predict,
blending, encoding and the COG copy are all in the time. Each child reports
its RSS before the scene loop (after restore and compile), the peak RSS
during the loop (sampled every 20 ms) and their difference, what the scene
itself costs: bounded by the window batch and a strip of the scene's width,
not by its area. The process's lifetime peak (ru_maxrss, compile included) is
shown too.

Without --workdir, a checkpoint of --config (default the demo-size RS-SPADE)
with freshly initialized weights is written: speed does not depend on the
weight values. Absolute numbers depend on the machine: report them with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _max_rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB


def _rss_mib() -> float:
  """Current resident set size (Linux /proc)."""
  with open("/proc/self/statm") as statm:
    return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _PeakRss:
  """Samples the current RSS every 20 ms in a thread; `peak` in MiB."""

  def __enter__(self):
    self.peak, self._stop = _rss_mib(), threading.Event()
    self._thread = threading.Thread(target=self._sample, daemon=True)
    self._thread.start()
    return self

  def _sample(self):
    while not self._stop.wait(0.02):
      self.peak = max(self.peak, _rss_mib())

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
    self.peak = max(self.peak, _rss_mib())


def make_workdir(config_spec: str, workdir: str, window: int) -> None:
  """A workdir holding config.json and an (untrained) step-0 checkpoint."""
  from benchmarks.train_step import load_config  # pylint: disable=g-import-not-at-top
  from rsjax.store import checkpoint, run_config  # pylint: disable=g-import-not-at-top
  from rsjax.systems import base, trained  # pylint: disable=g-import-not-at-top
  from rsjax.train import trainer  # pylint: disable=g-import-not-at-top
  config = load_config(config_spec)
  config.data.source = "memory"
  run = trainer.Trainer(config, workdir)
  if run.manager.latest_step() is not None:
    return
  system = base.get_system(config)
  names = sorted(set(config.data.fields) | set(system.predict_fields))
  batch = trained.example_batch(names, window, config.data.batch_size,
                                trained.normalization(config))
  state, _ = run.restore_or_init(batch)
  checkpoint.save(run.manager, 0, state, force=True)
  run.manager.wait_until_finished()
  run_config.save(workdir, config)


def child(args) -> None:
  """One inference run; prints a JSON line of its numbers."""
  import jax  # pylint: disable=g-import-not-at-top
  from rsjax.eval.inference import full_scene  # pylint: disable=g-import-not-at-top
  from rsjax.eval.inference import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
  from rsjax.geo import scene as scene_lib  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  run = predictor_lib.load_predictor(args.workdir, window=args.window,
                                     batch_size=args.batch)
  paths = scene_lib.find_sources(args.child_scene, list(run.fields))
  with scene_lib.SceneReader(paths) as inputs:
    zeros = predictor_lib.example_batch(run.fields, args.window, args.batch,
                                        None)
    jax.block_until_ready(run(zeros))                 # compile
    ready_s, ready_rss = time.perf_counter() - start, _rss_mib()
    with _PeakRss() as loop:
      stats = full_scene.predict_scene(
          run, inputs, args.child_output, window=args.window,
          overlap=args.overlap, batch_size=args.batch, progress=False)
  print(json.dumps(dict(
      height=stats.height, width=stats.width, windows=stats.windows,
      seconds=stats.seconds, mp_per_s=stats.megapixels_per_second,
      windows_per_s=stats.windows / stats.seconds, ready_s=ready_s,
      ready_rss_mib=ready_rss, loop_peak_rss_mib=loop.peak,
      lifetime_peak_rss_mib=_max_rss_mib(),
      strip_rows=stats.peak_accumulator_rows)))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="1024,2048,4096",
                      help="square scene sizes in pixels, comma-separated")
  parser.add_argument("--config", default="configs/rs_spade.py:demo")
  parser.add_argument("--workdir", default=None,
                      help="a trained run; default: untrained --config")
  parser.add_argument("--scratch", default="/tmp/rsjax_inference_bench")
  parser.add_argument("--window", type=int, default=256)
  parser.add_argument("--overlap", type=int, default=64)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--child_scene", help=argparse.SUPPRESS)
  parser.add_argument("--child_output", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child_scene:
    child(args)
    return

  import jax  # pylint: disable=g-import-not-at-top
  from rsjax.geo import synthetic  # pylint: disable=g-import-not-at-top
  os.makedirs(args.scratch, exist_ok=True)
  generator = args.workdir or f"{args.config} (untrained)"
  if args.workdir is None:
    args.workdir = os.path.join(args.scratch, "workdir")
    make_workdir(args.config, args.workdir, args.window)
  device = jax.devices()[0]
  print(f"machine: {platform.node()}, {os.cpu_count()} CPU cores, "
        f"{jax.device_count()} x {device.platform} {device.device_kind}; "
        f"generator {generator}; "
        f"window {args.window}, overlap {args.overlap}, batch {args.batch}",
        flush=True)
  print(f"{'scene px':>10} {'windows':>8} {'seconds':>8} {'MP/s':>7} "
        f"{'windows/s':>9} {'RSS before':>11} {'loop peak':>10} "
        f"{'loop growth':>12} {'process peak':>13}   (RSS in MiB)",
        flush=True)
  for size in (int(s) for s in args.sizes.split(",")):
    scene = os.path.join(args.scratch, f"scene_{size}")
    if not os.path.exists(os.path.join(scene, "dem.tif")):
      synthetic.make_scene(size, scene, size=size)
    output = os.path.join(args.scratch, f"prediction_{size}.tif")
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), f"--workdir={args.workdir}",
         f"--child_scene={scene}", f"--child_output={output}",
         f"--window={args.window}", f"--overlap={args.overlap}",
         f"--batch={args.batch}"], cwd=ROOT, capture_output=True, text=True,
        check=False)
    if result.returncode:
      sys.exit(f"size {size} failed:\n{result.stderr[-3000:]}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"{row['height']}x{row['width']}".rjust(10),
          f"{row['windows']:>8d} {row['seconds']:>8.1f} {row['mp_per_s']:>7.3f} "
          f"{row['windows_per_s']:>9.2f} {row['ready_rss_mib']:>11.0f} "
          f"{row['loop_peak_rss_mib']:>10.0f} "
          f"{row['loop_peak_rss_mib'] - row['ready_rss_mib']:>12.0f} "
          f"{row['lifetime_peak_rss_mib']:>13.0f}", flush=True)


if __name__ == "__main__":
  main()
