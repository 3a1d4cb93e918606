"""Two variants of one train step, compiled for a TPU topology side by side.

Runs `python -m launch.compile --steps train --json` (the real TPU compiler
from libtpu, no TPU) once per variant, each with the shared config flags
plus its own, and prints the TPU compiler's estimate of the step time, the
efficiency it allows (FLOP time at the chip's peak / estimate), the peak
HBM per chip and the share of each kind of work (`rsjax.train.tpu_profile`),
then the ratio of the estimates. A variant's JSON already in --out is not
compiled again. Issue 24 measures its changes with it, e.g. RS-SPADE's
fused modulation against the paper's layer-by-layer form:

  python benchmarks/tpu_profile_ab.py --out bench/ab --config configs/rs_spade.py \\
      --topology v5e:2x2 --batch 32 --common=--config.dtype=bfloat16 \\
      --a_name layers --a=--config.model.generator_kwargs.fused_modulation=False \\
      --b_name fused --b=--config.model.generator_kwargs.fused_modulation=True

Flags starting with '--' are given with '=' (`--a=--config.x=1`), repeatable.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compile_variant(args, name: str, flags: list[str]) -> dict:
  path = os.path.join(args.out, f"{name}.json")
  if not os.path.exists(path):
    subprocess.run(
        [sys.executable, "-m", "launch.compile", "--config", args.config,
         "--topology", args.topology, "--batch", str(args.batch), "--steps",
         "train", "--json", path, *args.common, *flags],
        cwd=ROOT, check=True)
  with open(path, encoding="utf-8") as f:
    return json.load(f)["steps"]["train"]


def row(name: str, step: dict) -> str:
  profile = step["profile"]
  kinds = ", ".join(f"{c['name']} {c['share']:.0%}" for c in profile["by_kind"])
  return (f"| {name} | {profile['step_seconds_estimate'] * 1e3:.1f} | "
          f"{profile['efficiency']:.0%} | "
          f"{step['bytes_per_chip']['peak'] / 2**30:.2f} | "
          f"{profile['flop_seconds'] * 1e3:.1f} | "
          f"{profile['hbm_seconds'] * 1e3:.1f} | {kinds} |")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--config", required=True)
  parser.add_argument("--topology", default="v5e:2x2")
  parser.add_argument("--batch", type=int, required=True)
  parser.add_argument("--common", action="append", default=[])
  parser.add_argument("--a", action="append", default=[])
  parser.add_argument("--b", action="append", default=[])
  parser.add_argument("--a_name", default="a")
  parser.add_argument("--b_name", default="b")
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  steps = {args.a_name: compile_variant(args, args.a_name, args.a),
           args.b_name: compile_variant(args, args.b_name, args.b)}
  print(f"{args.config} on {args.topology}, global batch {args.batch}, "
        f"{' '.join(args.common)}")
  print("| variant | compiler estimate ms | efficiency | peak GiB/chip | "
        "FLOP bound ms | HBM bound ms | kinds |\n|---|---|---|---|---|---|---|")
  for name, step in steps.items():
    print(row(name, step))
  a, b = (s["profile"]["step_seconds_estimate"] for s in steps.values())
  print(f"\n{args.a_name} / {args.b_name}: {a / b:.2f}x")


if __name__ == "__main__":
  main()
