"""rsjax `spade_reference` vs the PyTorch original NVlabs/SPADE, in one run.

Both train steps (G step + D step, batch and tile as given, float32) are
built and warmed up, then run in alternating rounds (peer, rsjax, peer,
rsjax, ...) so that a change in the machine's load hits both alike; the
table gives the median wall time and process CPU time per step of each and
their ratio. The peer (set up by benchmarks/peer_setup.sh, never committed)
runs in its own Python as `peer_spade_step.py --serve`. Not a test.

  python benchmarks/spade_side_by_side.py --tile 128 --batch 2 --threads 2
  python benchmarks/spade_side_by_side.py --device cuda --tile 256 --batch 16 \
      --dtype bfloat16 --peer_python python3 --peer_amp bf16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)


def start_peer(args) -> tuple[subprocess.Popen, dict]:
  command = [args.peer_python, os.path.join(HERE, "peer_spade_step.py"),
             "--serve", "--tile", str(args.tile), "--batch", str(args.batch),
             "--device", args.device, "--amp", args.peer_amp,
             "--warmup", "1"]
  if args.threads:
    command += ["--threads", str(args.threads)]
  peer = subprocess.Popen(command, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, cwd=ROOT)
  hello = json.loads(peer.stdout.readline())
  return peer, hello


def ask_peer(peer: subprocess.Popen, steps: int) -> list[tuple[float, float]]:
  """Per-step (wall, CPU) seconds of the peer (CPU time of the whole process)."""
  peer.stdin.write(f"{steps}\n")
  peer.stdin.flush()
  line = peer.stdout.readline()
  if not line:
    raise RuntimeError("the peer process ended; see its stderr above")
  return [tuple(t) for t in json.loads(line)]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tile", type=int, default=128)
  parser.add_argument("--batch", type=int, default=2)
  parser.add_argument("--dtype", default="float32")
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps_per_round", type=int, default=1)
  parser.add_argument("--peer_python",
                      default=os.path.join(ROOT, "peers", "venv", "bin", "python"))
  parser.add_argument("--peer_amp", default="none", choices=("none", "bf16"))
  args = parser.parse_args()

  peer, hello = start_peer(args)   # first: its warm-up overlaps nothing
  import jax  # pylint: disable=import-outside-toplevel
  import train_step  # pylint: disable=import-outside-toplevel
  config = train_step.load_config(
      os.path.join(ROOT, "configs", "spade_reference.py"))
  bench = train_step.build(config, batch=args.batch, tile=args.tile,
                           dtype=args.dtype)
  bench.run(1)
  ours, theirs = [], []
  for _ in range(args.rounds):
    theirs += ask_peer(peer, args.steps_per_round)
    ours += bench.run(args.steps_per_round)
  peer.stdin.close()
  peer.wait(timeout=60)

  def median(times, index):
    return statistics.median(t[index] for t in times)

  device = jax.devices()[0]
  print(f"# {device.device_kind} ({device.platform}), {args.threads} threads; "
        f"peer torch threads {hello['threads']}; load average "
        f"{os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M')}")
  ours_params = {name: sum(x.size for x in jax.tree.leaves(p))
                 for name, p in bench.state.params.items()}
  print(f"# parameters: rsjax {ours_params}; peer {hello['params']}")
  print("| step (G+D) | batch | tile | dtype | wall s (median) | CPU s "
        "(median) | images/s | wall s of each round |")
  print("|---|---|---|---|---|---|---|---|")
  for name, times, dtype in (
      ("NVlabs/SPADE (PyTorch)", theirs,
       "float32" if args.peer_amp == "none" else "bf16 autocast"),
      ("rsjax spade_reference", ours, args.dtype)):
    wall = median(times, 0)
    print(f"| {name} | {args.batch} | {args.tile} | {dtype} | {wall:.2f} | "
          f"{median(times, 1):.2f} | {args.batch / wall:.2f} | "
          f"{', '.join(f'{t[0]:.2f}' for t in times)} |")
  print(f"\nrsjax / peer speed: wall {median(theirs, 0) / median(ours, 0):.2f}x, "
        f"CPU time {median(theirs, 1) / median(ours, 1):.2f}x "
        f"(rsjax compile {bench.compile_s:.0f} s, "
        f"{bench.flops * jax.device_count() / 1e9:.0f} GFLOP/step by XLA's "
        f"count)")


if __name__ == "__main__":
  main()
