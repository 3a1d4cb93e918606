"""Converts learned-LPIPS weights the user has to rsjax's LPIPS `.npz`.

LPIPS (Zhang et al. 2018; the `lpips` package, version 0.1) is a torchvision
trunk (AlexNet or VGG16, ImageNet weights) plus five learned 1x1 linear
layers. The package ships only the linear layers (lpips/weights/v0.1/alex.pth,
vgg.pth: `lin{k}.model.1.weight` (1, C, 1, 1)) and takes the trunk from
torchvision (alexnet-owt-7be5be79.pth, vgg16-397923af.pth: `features.{i}.
weight|bias`). Give both files, or one file holding a whole `lpips.LPIPS`
state_dict (`net.slice{s}.{i}.weight|bias`, `lin{k}.model.1.weight`); the
trunk ('alex' or 'vgg') is read from the first kernel's shape. Files are
`.pth`/`.pt` (PyTorch imported lazily; not an rsjax dependency) or `.npz` of
the state_dict arrays. Nothing is downloaded:

  python -m rsjax.nn.lpips_convert alex.pth alexnet-owt-7be5be79.pth lpips_alex.npz
  python -m rsjax.nn.lpips_convert vgg.pth vgg16-397923af.pth lpips_vgg.npz

The output layout is documented in `rsjax.nn.lpips`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rsjax.nn.inception_convert import load_source
from rsjax.nn.lpips import NETS, channels, conv_shapes

_TRUNK = re.compile(r"(?:^|\.)(?:features|slice\d)\.(\d+)\.(weight|bias)$")
_LIN = re.compile(r"(?:^|\.)lin(\d)\.model\.1\.weight$")


def _array(value) -> np.ndarray:
  value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
  return np.asarray(value, np.float32)


def from_state_dicts(states: Sequence[Mapping[str, Any]]) -> tuple[str, dict]:
  """('alex' | 'vgg', {'conv{i}/kernel': HWIO, 'conv{i}/bias', 'lin{k}/weight'})
  from the state_dicts together (linear layers and trunk)."""
  flat = {}
  for state in states:
    for key, value in state.items():
      if match := _TRUNK.search(key):
        index, kind = int(match.group(1)), match.group(2)
        array = _array(value)
        flat[f"conv{index}/" + ("kernel" if kind == "weight" else "bias")] = (
            np.transpose(array, (2, 3, 1, 0)) if kind == "weight" else array)
      elif match := _LIN.search(key):
        flat[f"lin{match.group(1)}/weight"] = _array(value).reshape(-1)
  first = flat.get("conv0/kernel")
  if first is None:
    raise ValueError("no LPIPS trunk weights (features.0.weight or "
                     "net.slice1.0.weight): give the torchvision AlexNet / VGG16 "
                     "state_dict too")
  net = {11: "alex", 3: "vgg"}.get(first.shape[0])
  if net is None:
    raise ValueError(f"features.0.weight has a {first.shape[0]}x{first.shape[1]} "
                     "kernel: neither AlexNet (11x11) nor VGG16 (3x3)")
  expected = {f"lin{k}/weight": (c,) for k, c in enumerate(channels(net))}
  for index, shape in conv_shapes(net).items():
    expected[f"conv{index}/kernel"] = shape
    expected[f"conv{index}/bias"] = shape[-1:]
  missing = [key for key in expected if key not in flat]
  if missing:
    hint = (" (the lpips package's lin layers: weights/v0.1/<net>.pth)"
            if any(k.startswith("lin") for k in missing) else "")
    raise ValueError(f"LPIPS ({net}): no weights for {', '.join(missing)}{hint}")
  for key, shape in expected.items():
    if flat[key].shape != shape:
      raise ValueError(f"LPIPS ({net}): {key} has shape {flat[key].shape}, "
                       f"expected {shape}")
  return net, {key: flat[key] for key in expected}


def convert(sources: Sequence[str | Mapping[str, Any]], destination: str) -> str:
  """State_dicts (dicts, .pth/.pt, .npz) -> rsjax LPIPS `.npz`; returns net."""
  states = [s if isinstance(s, Mapping) else load_source(s) for s in sources]
  net, flat = from_state_dicts(states)
  np.savez(destination, net=np.asarray(net), **flat)
  return net


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("sources", nargs="+",
                      help="lpips lin weights and torchvision trunk (.pth/.npz), "
                           "or one whole lpips.LPIPS state_dict")
  parser.add_argument("destination", help="output .npz")
  args = parser.parse_args(argv)
  net = convert(args.sources, args.destination)
  print(f"wrote {args.destination} (LPIPS {net}; valid nets: {', '.join(NETS)})")


if __name__ == "__main__":
  main()
