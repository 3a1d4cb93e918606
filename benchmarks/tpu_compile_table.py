"""Paper-size train steps compiled for a TPU slice on this CPU host: one table.

Runs `python -m launch.compile` (the real TPU compiler from libtpu, no TPU)
for each system and mesh, keeps each run's JSON in --out, and prints a
Markdown table of all JSON files found there: per-chip HBM, FLOPs,
collectives, the roofline time of the step and the MFU it would allow
(the step's FLOP time at the chip's published peak over the roofline time;
not a bound: see `rsjax.train.aot.StepReport.seconds_roofline`), and the TPU compiler's own estimate of the step time with the
efficiency it allows (FLOP time / estimate; `rsjax.train.tpu_profile`).
A paper-size compile takes 2-15 minutes on 2 cores; a JSON already in --out
is not compiled again.

  python benchmarks/tpu_compile_table.py --out bench/tpu \\
      --systems pix2pix,rs_spade --topology v5e:4x4 --batch 16 \\
      --meshes data=16,fsdp=1 data=4,fsdp=4
  python benchmarks/tpu_compile_table.py --out bench/tpu --systems rs_spade \\
      --override=--config.dtype=bfloat16 --tag bf16
  python benchmarks/tpu_compile_table.py --out bench/tpu --no-run   # table only

CSEBGAN's step holds its frozen VGG19 (the perceptual loss); without the
user's weights the script compiles it with a VGG19 of zeros of the right
shapes (`placeholder_vgg19`).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 2 ** 30


def _name(system: str, topology: str, mesh: str, batch: int,
          tag: str = "") -> str:
  label = f"{system}-{tag}" if tag else system
  return (f"{label}_{topology.replace(':', '-')}_{mesh.replace(',', '_')}"
          f"_b{batch}.json").replace("=", "")


def placeholder_vgg19(out: str) -> str:
  """A VGG19 `.npz` of zeros in `rsjax.nn.vgg`'s layout, so that CSEBGAN's
  perceptual loss (its frozen VGG19 is part of the step) is compiled without
  the user's weights: a compile depends on the shapes, not the values. Never
  train with it."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, ROOT)
  from rsjax.nn import vgg  # pylint: disable=g-import-not-at-top
  path = os.path.join(out, "vgg19_zeros_for_compiling.npz")
  if not os.path.exists(path):
    arrays, channels = {}, 3
    for name, features in vgg.USED_CONV_LAYERS:
      arrays[f"{name}/kernel"] = np.zeros((3, 3, channels, features),
                                          np.float32)
      arrays[f"{name}/bias"] = np.zeros(features, np.float32)
      channels = features
    np.savez(path, **arrays)
  return path


def compile_one(out: str, system: str, topology: str, mesh: str,
                batch: int, overrides=(), tag: str = "") -> str:
  path = os.path.join(out, _name(system, topology, mesh, batch, tag))
  overrides = list(overrides)
  if system == "csebgan":
    overrides.append(f"--config.vgg_weights={placeholder_vgg19(out)}")
  if not os.path.exists(path):
    subprocess.run(
        [sys.executable, "-m", "launch.compile", "--config",
         f"configs/{system}.py", "--topology", topology, "--mesh", mesh,
         "--batch", str(batch), "--steps", "train", "--json", path,
         *overrides], cwd=ROOT, check=False)
  return path


def row(path: str) -> str:
  with open(path) as f:
    run = json.load(f)
  step = run["steps"]["train"]
  memory, chip = step["bytes_per_chip"], step["chip"]
  flop_seconds = step["flops_per_device"] / chip["peak_flops"]
  # Files written before the rename hold "step_seconds_lower_bound".
  bound = step.get("step_seconds_roofline",
                   step.get("step_seconds_lower_bound"))
  collectives = ", ".join(
      f"{kind} {c['count']} x {c['bytes'] / 1e6:.0f} MB"
      for kind, c in sorted(step["collectives"].items())) or "none"
  mesh = ",".join(f"{k}={v}" for k, v in run["mesh"].items())
  system = os.path.basename(path).split("_v")[0]
  profile = step.get("profile")
  estimate = (f"{profile['step_seconds_estimate'] * 1e3:.1f} | "
              f"{profile['efficiency'] * 100:.0f}%" if profile else "- | -")
  # Files written before the compiler's own peak was read hold the sum of
  # the parts only (marked *).
  mark = "" if "compiler_peak" in memory else "*"
  return (f"| {system} | {run['topology']} | {mesh} | {step['batch']} | "
          f"{memory['peak'] / GIB:.2f}{mark} | {memory['state'] / GIB:.2f} | "
          f"{memory['peak'] / memory['capacity'] * 100:.0f}% | "
          f"{step['flops_per_device'] / 1e9:.1f} | {collectives} | "
          f"{bound * 1e3:.1f} | {flop_seconds / bound * 100:.0f}% | "
          f"{estimate} | {run['compile_seconds']:.0f} |")


def table(paths) -> str:
  header = ("| system | topology | mesh | global batch | peak GiB/chip | "
            "state GiB/chip | of HBM | GFLOP/chip | collectives per chip | "
            "roofline ms | MFU at the roofline | compiler estimate ms | "
            "efficiency | compile s |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
  return "\n".join([header] + [row(p) for p in sorted(paths)])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--systems", default="pix2pix,rs_spade")
  parser.add_argument("--topology", default="v5e:4x4")
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--meshes", nargs="+",
                      default=["data=16,fsdp=1", "data=4,fsdp=4"])
  parser.add_argument("--override", action="append", default=[],
                      help="a config flag for every compile, written with "
                      "'=': --override=--config.dtype=bfloat16 (repeatable; "
                      "give --tag with it)")
  parser.add_argument("--tag", default="",
                      help="names the variant in the file and the table, "
                      "e.g. bf16")
  parser.add_argument("--no-run", action="store_true",
                      help="only print the table of the JSON files in --out")
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  if not args.no_run:
    for system in args.systems.split(","):
      for mesh in args.meshes:
        compile_one(args.out, system, args.topology, mesh, args.batch,
                    args.override, args.tag)
  print(table(glob.glob(os.path.join(args.out, "*.json"))))


if __name__ == "__main__":
  main()
