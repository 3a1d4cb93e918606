"""Learned LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric"), the diversity metric of the CSEBGAN paper
(Wang et al., Sec. IV-A 4, ref. [44]), as the `lpips` package (version 0.1,
`lpips.LPIPS(net='alex' | 'vgg')`) computes it:

- inputs in [-1, 1] pass the ScalingLayer: (x - shift) / scale with
  shift (-0.030, -0.088, -0.188), scale (0.458, 0.448, 0.450);
- the trunk (torchvision AlexNet: relu1..relu5; or VGG16: relu1_2, relu2_2,
  relu3_3, relu4_3, relu5_3) gives five feature maps;
- per layer the features are unit-normalized over channels, the squared
  difference is weighted by the learned 1x1 linear layer (`lin0..lin4`, no
  bias), averaged over space; the distance is the sum over layers
  (`rsjax.metrics.generative.distance_maps` with `channel_weights`).

`LPIPS.features` returns the trunk's maps, `LPIPS.channel_weights` the
learned vectors, so a caller can compute features once and compare many pairs;
`LPIPS.__call__(a, b)` is the (N,) distance. Images are first reduced to RGB
and mapped from `input_range` to [0, 1] (`rsjax.nn.rgb_input`), then to
[-1, 1].

Weights come from a local `.npz` written by `rsjax.nn.lpips_convert` (the
`lpips` package's linear layers + the torchvision trunk the user has); nothing
is downloaded. Layout (float32): `net` (0-d string 'alex' or 'vgg'),
`conv{i}/kernel` HWIO and `conv{i}/bias` for the trunk's convolutions at
torchvision `features` index i, and `lin{k}/weight` (C_k,) for k = 0..4.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rsjax.metrics import generative as gen
from rsjax.nn.rgb_input import rgb01

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)

# ("conv", torchvision features index, out channels, kernel, stride, padding),
# ("pool", kernel, stride), ("tap",): a feature map after the preceding ReLU.
TRUNKS: dict[str, tuple[tuple, ...]] = {
    "alex": (
        ("conv", 0, 64, 11, 4, 2), ("tap",), ("pool", 3, 2),
        ("conv", 3, 192, 5, 1, 2), ("tap",), ("pool", 3, 2),
        ("conv", 6, 384, 3, 1, 1), ("tap",),
        ("conv", 8, 256, 3, 1, 1), ("tap",),
        ("conv", 10, 256, 3, 1, 1), ("tap",)),
    "vgg": (
        ("conv", 0, 64, 3, 1, 1), ("conv", 2, 64, 3, 1, 1), ("tap",),
        ("pool", 2, 2),
        ("conv", 5, 128, 3, 1, 1), ("conv", 7, 128, 3, 1, 1), ("tap",),
        ("pool", 2, 2),
        ("conv", 10, 256, 3, 1, 1), ("conv", 12, 256, 3, 1, 1),
        ("conv", 14, 256, 3, 1, 1), ("tap",), ("pool", 2, 2),
        ("conv", 17, 512, 3, 1, 1), ("conv", 19, 512, 3, 1, 1),
        ("conv", 21, 512, 3, 1, 1), ("tap",), ("pool", 2, 2),
        ("conv", 24, 512, 3, 1, 1), ("conv", 26, 512, 3, 1, 1),
        ("conv", 28, 512, 3, 1, 1), ("tap",)),
}
NETS = tuple(TRUNKS)


def channels(net: str) -> list[int]:
  """Channels of the five feature maps of `net`."""
  out, last = [], 3
  for op in TRUNKS[net]:
    if op[0] == "conv":
      last = op[2]
    elif op[0] == "tap":
      out.append(last)
  return out


def conv_shapes(net: str) -> dict[int, tuple[int, int, int, int]]:
  """{torchvision features index: HWIO kernel shape} of the trunk."""
  shapes, last = {}, 3
  for op in TRUNKS[net]:
    if op[0] == "conv":
      _, index, out, kernel, _, _ = op
      shapes[index] = (kernel, kernel, last, out)
      last = out
  return shapes


class LPIPS(nn.Module):
  """Learned LPIPS of `net` ('alex', the package default, or 'vgg')."""
  net: str = "alex"
  rgb_bands: Sequence[int] | None = None
  input_range: tuple[float, float] = (-1.0, 1.0)

  def setup(self):
    if self.net not in TRUNKS:
      raise ValueError(f"unknown LPIPS net {self.net!r}; valid: {', '.join(NETS)}")
    zeros = nn.initializers.zeros
    self.convs = {
        str(index): (self.param(f"conv{index}_kernel", zeros, shape),
                self.param(f"conv{index}_bias", zeros, shape[-1:]))
        for index, shape in conv_shapes(self.net).items()}
    self.lins = [self.param(f"lin{k}_weight", zeros, (c,))
                 for k, c in enumerate(channels(self.net))]

  def features(self, images: jax.Array) -> list[jax.Array]:
    """The trunk's five (N, h, w, C) feature maps of `images`."""
    x = 2.0 * rgb01(images, self.rgb_bands, self.input_range, "LPIPS") - 1.0
    x = (x - jnp.asarray(SHIFT)) / jnp.asarray(SCALE)
    taps = []
    for op in TRUNKS[self.net]:
      if op[0] == "conv":
        _, index, _, _, stride, pad = op
        kernel, bias = self.convs[str(index)]
        x = jax.lax.conv_general_dilated(
            x, kernel, (stride, stride), ((pad, pad), (pad, pad)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=jax.lax.Precision.HIGHEST) + bias
        x = nn.relu(x)
      elif op[0] == "pool":
        x = nn.max_pool(x, (op[1], op[1]), (op[2], op[2]))
      else:
        taps.append(x)
    return taps

  def channel_weights(self) -> list[jax.Array]:
    """The learned (C,) weights of lin0..lin4."""
    return list(self.lins)

  def __call__(self, images_a: jax.Array, images_b: jax.Array) -> jax.Array:
    """(N,) LPIPS distance of each pair."""
    return gen.image_distance(self.features(images_a),
                              self.features(images_b), self.lins)


def params_from_flat(flat: Mapping[str, np.ndarray], net: str) -> dict:
  """{'conv0/kernel', 'conv0/bias', ..., 'lin0/weight', ...} -> Flax params
  of `LPIPS(net)`, checking every shape."""
  expected = {}
  for index, shape in conv_shapes(net).items():
    expected[f"conv{index}/kernel"] = shape
    expected[f"conv{index}/bias"] = shape[-1:]
  for k, c in enumerate(channels(net)):
    expected[f"lin{k}/weight"] = (c,)
  params = {}
  for key, shape in expected.items():
    if key not in flat:
      raise KeyError(f"LPIPS ({net}) weights lack {key!r} (shape {shape})")
    value = np.asarray(flat[key], np.float32)
    if value.shape != shape:
      raise ValueError(f"LPIPS ({net}) weight {key!r} has shape {value.shape}, "
                       f"expected {shape}")
    params[key.replace("/", "_")] = value
  return params


def load_lpips(path: str, **fields: Any) -> tuple[LPIPS, dict]:
  """(module, {'params'}) from an `.npz` of `rsjax.nn.lpips_convert`; the
  trunk is the file's `net`; `fields` (rgb_bands, input_range) pass on."""
  with np.load(path, allow_pickle=False) as archive:
    flat = {key: archive[key] for key in archive.files}
  net = str(flat.pop("net", ""))
  if net not in TRUNKS:
    raise ValueError(f"{path}: 'net' is {net!r}; expected one of {', '.join(NETS)}")
  return LPIPS(net=net, **fields), {"params": params_from_flat(flat, net)}
