"""Parameter counts of the two-branch optical+SAR segmenter per fusion mode.

Shapes only (`jax.eval_shape` of `init`): nothing is computed, so this runs in
seconds on any machine. Run:

  python benchmarks/fusion_params.py [--base-features 32] [--size 256]
      [--optical-bands 4] [--sar-bands 2] [--classes 10]

Also prints the single-branch RS-UNet and pix2pix unet_256 for reference.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from rsjax.nn.fusion import FUSION_MODES, GATE_KINDS, TwoBranchSegmenter
from rsjax.nn.unet import RSUNet, UNetGenerator


def count(tree) -> int:
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def abstract_params(model, *inputs):
  return jax.eval_shape(lambda: model.init(
      jax.random.key(0), *inputs, train=False))["params"]


def fusion_rows(args):
  optical = jnp.zeros((1, args.size, args.size, args.optical_bands))
  sar = jnp.zeros((1, args.size, args.size, args.sar_bands))
  for fusion in FUSION_MODES:
    for gate in GATE_KINDS if fusion == "gated" else (None,):
      options = {"gate": gate} if gate else {}
      model = TwoBranchSegmenter(args.classes, fusion, base_features=args.base_features,
                                 **options)
      params = abstract_params(model, optical, sar)
      fusion_params = count({k: v for k, v in params.items()
                             if k.startswith(("fuse", "decision"))})
      name = f"{fusion} ({gate})" if gate else fusion
      yield name, count(params), fusion_params


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--base-features", type=int, default=32)
  parser.add_argument("--size", type=int, default=256)
  parser.add_argument("--optical-bands", type=int, default=4)
  parser.add_argument("--sar-bands", type=int, default=2)
  parser.add_argument("--classes", type=int, default=10)
  args = parser.parse_args(argv)

  print(f"TwoBranchSegmenter, base_features={args.base_features}, widths "
        f"{[args.base_features * m for m in (1, 2, 4, 8, 16, 32)]}, input "
        f"{args.size}x{args.size}, optical {args.optical_bands} + SAR "
        f"{args.sar_bands} bands, {args.classes} classes")
  rows = list(fusion_rows(args))
  early = dict((name, total) for name, total, _ in rows)["early"]
  print(f"{'fusion':<28}{'params':>14}{'in fusion':>18}{'vs early':>10}")
  for name, total, fusion_params in rows:
    print(f"{name:<28}{total:>14,}{fusion_params:>18,}{total / early:>9.2f}x")

  image = jnp.zeros((1, args.size, args.size, args.optical_bands + args.sar_bands))
  rsunet = count(abstract_params(RSUNet(args.classes, args.base_features), image))
  print(f"\nRSUNet (single branch, same widths): {rsunet:,}")
  unet = count(abstract_params(UNetGenerator(out_channels=3),
                               jnp.zeros((1, 256, 256, 3))))
  print(f"pix2pix unet_256 (ngf=64, 3 -> 3 channels): {unet:,}")


if __name__ == "__main__":
  main()
