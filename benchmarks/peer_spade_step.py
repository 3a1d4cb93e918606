"""Train-step time of the PyTorch original NVlabs/SPADE (the peer), not rsjax.

Times `Pix2PixTrainer.run_generator_one_step` + `run_discriminator_one_step`
(one iteration of NVlabs' train.py) with its default options and
`--no_vgg_loss --no_instance`, on random one-hot label maps and images of the
given shape. The peer is never committed: set it up with

  bash benchmarks/peer_setup.sh /path/to/SPADE      # -> peers/SPADE, peers/venv

then run it with the peer's Python (not rsjax's .venv):

  peers/venv/bin/python benchmarks/peer_spade_step.py --tile 128 --batch 2 --threads 2
  python benchmarks/peer_spade_step.py --device cuda --tile 256 --batch 16 --amp bf16

`--serve` reads a step count per stdin line and answers one JSON line of
per-step (wall, process CPU) seconds, so benchmarks/spade_side_by_side.py can alternate it with
the rsjax step in one run. Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(ROOT, "peers", "SPADE")


def build_trainer(args):
  """NVlabs' Pix2PixTrainer with train.py's default options."""
  if not os.path.isdir(os.path.join(PEER, "models")):
    sys.exit(f"no peer at {PEER}: run benchmarks/peer_setup.sh first")
  sys.path.insert(0, PEER)
  from options.train_options import TrainOptions  # pylint: disable=import-error
  from trainers.pix2pix_trainer import Pix2PixTrainer  # pylint: disable=import-error

  argv = ["--dataset_mode", "custom", "--label_dir", "-", "--image_dir", "-",
          "--label_nc", str(args.label_nc), "--output_nc", str(args.output_nc),
          "--no_instance", "--no_vgg_loss", "--batchSize", str(args.batch),
          "--crop_size", str(args.tile), "--load_size", str(args.tile),
          "--gpu_ids", "0" if args.device == "cuda" else "-1"]
  saved, sys.argv = sys.argv, [sys.argv[0], *argv]
  try:
    options = TrainOptions()
    opt = options.gather_options()   # parse() would also write files
  finally:
    sys.argv = saved
  opt.isTrain = True
  opt.semantic_nc = opt.label_nc
  opt.gpu_ids = [0] if args.device == "cuda" else []
  with contextlib.redirect_stdout(sys.stderr):
    return Pix2PixTrainer(opt), opt


def param_counts(trainer) -> dict[str, int]:
  model = trainer.pix2pix_model_on_one_gpu
  return {name: sum(p.numel() for p in net.parameters())
          for name, net in (("generator", model.netG),
                            ("discriminator", model.netD))}


def make_data(torch, args, seed):
  generator = torch.Generator().manual_seed(seed)
  shape = (args.batch, 1, args.tile, args.tile)
  return {"label": torch.randint(0, args.label_nc, shape, generator=generator),
          "instance": torch.zeros(1),
          "image": torch.rand((args.batch, args.output_nc, args.tile, args.tile),
                              generator=generator) * 2 - 1}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tile", type=int, default=128)
  parser.add_argument("--batch", type=int, default=2)
  parser.add_argument("--label_nc", type=int, default=9)
  parser.add_argument("--output_nc", type=int, default=4)
  parser.add_argument("--threads", type=int, default=None)
  parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
  parser.add_argument("--amp", default="none", choices=("none", "bf16"))
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--serve", action="store_true")
  parser.add_argument("--params", action="store_true",
                      help="print parameter counts and exit")
  args = parser.parse_args()

  import torch  # pylint: disable=import-outside-toplevel
  if args.threads:
    torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  trainer, _ = build_trainer(args)
  if args.params:
    print(json.dumps(param_counts(trainer)))
    return
  batches = [make_data(torch, args, seed) for seed in range(2)]
  autocast = (torch.autocast(args.device, dtype=torch.bfloat16)
              if args.amp == "bf16" else contextlib.nullcontext())
  sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

  def step(index):
    data = dict(batches[index % 2])  # preprocess_input edits the dict
    with autocast:
      trainer.run_generator_one_step(data)
      trainer.run_discriminator_one_step(data)

  def timed(count):
    times = []
    for i in range(count):
      wall, cpu = time.perf_counter(), time.process_time()
      step(i)
      sync()
      times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times

  timed(args.warmup)
  if args.serve:
    print(json.dumps({"ready": True, "params": param_counts(trainer),
                      "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
      print(json.dumps(timed(int(line))), flush=True)
    return
  times = timed(args.steps)
  step_s = statistics.median(wall for wall, _ in times)
  name = (torch.cuda.get_device_name() if args.device == "cuda"
          else f"CPU, {torch.get_num_threads()} threads")
  print(f"# NVlabs/SPADE Pix2PixTrainer G+D step, torch {torch.__version__}, "
        f"{name}")
  print("| batch | tile | amp | step ms | images/s |")
  print("|---|---|---|---|---|")
  print(f"| {args.batch} | {args.tile} | {args.amp} | {step_s * 1e3:.0f} | "
        f"{args.batch / step_s:.2f} |")


if __name__ == "__main__":
  main()
