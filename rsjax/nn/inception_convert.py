"""Converts the FID Inception-v3 weights the user has to rsjax's `.npz`.

Source: the state_dict of `pytorch_fid.inception.fid_inception_v3()`, i.e. the
file pytorch-fid itself loads, pt_inception-2015-12-05-6726825d.pth
(TensorFlow's FID graph ported by mseitzer/pytorch-fid), as a `.pth`/`.pt`
(PyTorch imported lazily; it is not an rsjax dependency), a `.npz` of its
arrays, or a dict of arrays. Keys are torchvision's
(`Mixed_5b.branch1x1.conv.weight` OIHW, `...bn.weight|bias|running_mean|
running_var`); `fc.*`, `AuxLogits.*` and `num_batches_tracked` are ignored;
any prefix before the block name (e.g. 'module.') is dropped. The output
layout is documented in `rsjax.nn.inception`. Nothing is downloaded:

  python -m rsjax.nn.inception_convert pt_inception-2015-12-05-6726825d.pth fid_inception.npz
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from rsjax.nn.inception import param_shapes

_KEY = re.compile(r"(?:^|\.)((?:Conv2d|Mixed)_[\w.]+?)\.(conv|bn)\.(weight|bias|running_mean|running_var)$")
_BN = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}


def _array(value) -> np.ndarray:
  value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
  return np.asarray(value, np.float32)


def from_state_dict(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """pytorch-fid Inception state_dict -> {'Mixed_5b/branch1x1/kernel': HWIO,
  ...}, checked against the network's shapes."""
  flat = {}
  for key, value in state_dict.items():
    match = _KEY.search(key)
    if not match:
      continue
    block, part, kind = match.groups()
    name = block.replace(".", "/")
    array = _array(value)
    if part == "conv":
      if kind != "weight":
        raise ValueError(f"{key}: the FID Inception's convolutions have no bias")
      flat[f"{name}/kernel"] = np.transpose(array, (2, 3, 1, 0))
    else:
      flat[f"{name}/{_BN[kind]}"] = array
  expected = param_shapes()
  missing = sorted(set(expected) - set(flat))
  if missing:
    raise ValueError(f"state_dict: no FID Inception weights for {len(missing)} "
                     f"keys, e.g. {', '.join(missing[:4])} (is this the "
                     "pytorch-fid pt_inception-2015-12-05 state_dict?)")
  for key, shape in expected.items():
    if flat[key].shape != shape:
      raise ValueError(f"state_dict: {key} has shape {flat[key].shape}, "
                       f"expected {shape}")
  return {key: flat[key] for key in expected}


def load_source(source: str) -> Mapping[str, Any]:
  """A state_dict from a `.pth`/`.pt` (PyTorch, lazily) or `.npz` file."""
  extension = os.path.splitext(source)[1].lower()
  if extension == ".npz":
    with np.load(source, allow_pickle=False) as archive:
      return {key: archive[key] for key in archive.files}
  if extension in (".pth", ".pt"):
    try:
      import torch  # pylint: disable=import-outside-toplevel
    except ImportError as error:
      raise ImportError(
          f"reading {source} needs PyTorch, which rsjax does not install; "
          "either `pip install torch`, or save the state_dict as a .npz "
          "elsewhere (numpy.savez(path, **{k: v.numpy() for k, v in "
          "sd.items()}))") from error
    state = torch.load(source, map_location="cpu", weights_only=True)
    return state.get("state_dict", state)
  raise ValueError(f"{source}: unknown checkpoint type {extension!r}; expected "
                   ".pth/.pt (PyTorch) or .npz (state_dict arrays)")


def convert(source: str | Mapping[str, Any], destination: str) -> None:
  """State_dict (dict, .pth/.pt, .npz) -> rsjax FID Inception `.npz`."""
  state = source if isinstance(source, Mapping) else load_source(source)
  np.savez(destination, **from_state_dict(state))


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("source", help="pytorch-fid pt_inception-*.pth (or .npz)")
  parser.add_argument("destination", help="output .npz")
  args = parser.parse_args(argv)
  convert(args.source, args.destination)
  print(f"wrote {args.destination}")


if __name__ == "__main__":
  main()
