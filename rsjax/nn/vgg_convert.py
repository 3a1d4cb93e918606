"""Converts a VGG19 checkpoint the user already has to rsjax's VGG19 `.npz`.

Sources (no network access, nothing downloaded):
- a torchvision VGG19 state_dict (`features.N.weight` OIHW, `features.N.bias`),
  as a dict of numpy arrays, a `.npz` of those arrays, or a `.pth`/`.pt` file
  (then PyTorch is imported lazily; it is not an rsjax dependency);
- a Keras VGG19 `.h5` (e.g. vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5,
  or a Keras 3 `.weights.h5`; layers `block{b}_conv{c}`, HWIO kernels) or a
  Keras 3 `.keras` archive (its model.weights.h5); read with h5py, imported
  lazily.

The output layout is documented in `rsjax.nn.vgg`. Command line:

  python -m rsjax.nn.vgg_convert vgg19-dcbb9e9d.pth vgg19.npz
"""

from __future__ import annotations

import argparse
import io
import os
import re
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from rsjax.nn.vgg import VGG19_CONV_LAYERS

TORCHVISION_FEATURE_INDEX = {
    0: "conv1_1", 2: "conv1_2", 5: "conv2_1", 7: "conv2_2",
    10: "conv3_1", 12: "conv3_2", 14: "conv3_3", 16: "conv3_4",
    19: "conv4_1", 21: "conv4_2", 23: "conv4_3", 25: "conv4_4",
    28: "conv5_1", 30: "conv5_2", 32: "conv5_3", 34: "conv5_4",
}
"""Index of each convolution in torchvision's `vgg19().features`."""

_TORCH_KEY = re.compile(r"(?:^|\.)features\.(\d+)\.(weight|bias)$")
_KERAS_LAYER = re.compile(r"block(\d)_conv(\d)")


def from_torchvision_state_dict(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """torchvision VGG19 state_dict (OIHW) -> {'conv1_1/kernel': HWIO, ...}.

  Keys may carry a prefix (e.g. 'vgg.features.0.weight'); classifier keys are
  ignored. Values may be numpy arrays or CPU tensors.
  """
  flat = {}
  for key, value in state_dict.items():
    match = _TORCH_KEY.search(key)
    if not match:
      continue
    index, kind = int(match.group(1)), match.group(2)
    if index not in TORCHVISION_FEATURE_INDEX:
      raise ValueError(f"state_dict key {key!r}: features.{index} is not a VGG19 "
                       "convolution (is this a VGG19 without BatchNorm?)")
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value,
                       dtype=np.float32)
    name = TORCHVISION_FEATURE_INDEX[index]
    if kind == "weight":
      flat[f"{name}/kernel"] = np.transpose(array, (2, 3, 1, 0))
    else:
      flat[f"{name}/bias"] = array
  _check_complete(flat, "state_dict")
  return flat


def from_keras_h5(path: str | io.IOBase) -> dict[str, np.ndarray]:
  """Keras VGG19 weights (.h5 path or file object; whole model or weights only)
  -> flat HWIO dict. Datasets are found by their `block{b}_conv{c}` layer name
  anywhere in the path; 4-D ones are kernels, 1-D ones biases."""
  try:
    import h5py  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ImportError("reading a Keras .h5 needs h5py (pip install h5py)") from error
  flat = {}

  def visit(name, item):
    if not isinstance(item, h5py.Dataset):
      return
    match = _KERAS_LAYER.search(name)
    if not match:
      return
    layer = f"conv{match.group(1)}_{match.group(2)}"
    kind = "kernel" if item.ndim == 4 else "bias" if item.ndim == 1 else None
    if kind:
      flat[f"{layer}/{kind}"] = np.asarray(item[()], dtype=np.float32)

  with h5py.File(path, "r") as h5:
    h5.visititems(visit)
  _check_complete(flat, str(path))
  return flat


def from_keras_archive(path: str) -> dict[str, np.ndarray]:
  """A Keras 3 `.keras` zip archive -> flat HWIO dict (via model.weights.h5)."""
  with zipfile.ZipFile(path) as archive:
    try:
      weights = archive.read("model.weights.h5")
    except KeyError:
      raise ValueError(f"{path}: no model.weights.h5 inside this .keras archive") from None
  return from_keras_h5(io.BytesIO(weights))


def _check_complete(flat: Mapping[str, np.ndarray], source: str) -> None:
  """Raises unless conv1_1 .. conv5_1 (the layers VGG19 uses) are present."""
  needed = [f"{name}/{kind}" for name, _ in VGG19_CONV_LAYERS[:13]
            for kind in ("kernel", "bias")]
  missing = [key for key in needed if key not in flat]
  if missing:
    raise ValueError(f"{source}: no VGG19 weights for {', '.join(missing)}")


def _load_torch(path: str) -> Mapping[str, Any]:
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ImportError(
        f"reading {path} needs PyTorch, which rsjax does not install; either "
        "`pip install torch`, or save the state_dict as a .npz elsewhere "
        "(numpy.savez(path, **{k: v.numpy() for k, v in sd.items()}))") from error
  state = torch.load(path, map_location="cpu", weights_only=True)
  return state.get("state_dict", state)


def save_vgg19_npz(flat: Mapping[str, np.ndarray], path: str,
                   preprocessing: str = "imagenet") -> None:
  """Writes the rsjax VGG19 .npz (layout in `rsjax.nn.vgg`)."""
  arrays = {key: np.asarray(value, np.float32) for key, value in flat.items()}
  np.savez(path, preprocessing=np.asarray(preprocessing), **arrays)


def convert(source: str | Mapping[str, Any], destination: str) -> None:
  """Converts a torchvision state_dict (dict, .npz, .pth/.pt) or a Keras .h5 to
  the rsjax VGG19 .npz at `destination`."""
  if isinstance(source, Mapping):
    flat, preprocessing = from_torchvision_state_dict(source), "imagenet"
  else:
    extension = os.path.splitext(source)[1].lower()
    if extension in (".h5", ".hdf5"):
      flat, preprocessing = from_keras_h5(source), "caffe"
    elif extension == ".keras":
      flat, preprocessing = from_keras_archive(source), "caffe"
    elif extension in (".pth", ".pt"):
      flat, preprocessing = from_torchvision_state_dict(_load_torch(source)), "imagenet"
    elif extension == ".npz":
      with np.load(source, allow_pickle=False) as archive:
        state = {key: archive[key] for key in archive.files}
      flat, preprocessing = from_torchvision_state_dict(state), "imagenet"
    else:
      raise ValueError(f"{source}: unknown VGG19 checkpoint type {extension!r}; "
                       "expected .pth/.pt (torchvision), .npz (state_dict arrays), "
                       ".h5 or .keras (Keras)")
  save_vgg19_npz(flat, destination, preprocessing)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("source", help="torchvision .pth/.pt/.npz or Keras .h5/.keras")
  parser.add_argument("destination", help="output .npz")
  args = parser.parse_args(argv)
  convert(args.source, args.destination)
  print(f"wrote {args.destination}")


if __name__ == "__main__":
  main()
