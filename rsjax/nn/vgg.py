"""VGG19 feature extractor for perceptual (VGG) losses.

The convolutional layers of VGG19 (Simonyan & Zisserman 2015, configuration E)
up to conv5_1, returning relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1: the
five activations of the VGG loss of pix2pixHD/SPADE that CSEBGAN uses with
weight 10 (weights 1/32, 1/16, 1/8, 1/4, 1 in those papers).

Weights come from a local `.npz` file; nothing is downloaded. Layout (one array
per key, float32):

  conv{block}_{layer}/kernel   (3, 3, C_in, C_out)   HWIO
  conv{block}_{layer}/bias     (C_out,)
  preprocessing                0-d string: 'imagenet' or 'caffe' (optional,
                               default 'imagenet')

for conv1_1, conv1_2, conv2_1, conv2_2, conv3_1..conv3_4, conv4_1..conv4_4 and
conv5_1 (conv5_2..conv5_4 may be present and are ignored). `rsjax.nn.vgg_convert`
writes this file from a torchvision state_dict ('imagenet' preprocessing: RGB in
[0, 1], minus mean (0.485, 0.456, 0.406), divided by std (0.229, 0.224, 0.225))
or from a Keras VGG19 .h5 ('caffe' preprocessing: BGR in [0, 255] minus
(103.939, 116.779, 123.68)).

Multispectral inputs: VGG19 was trained on RGB photographs, so the extractor
picks three bands with `rgb_bands` (indices of red, green, blue in the input's
last axis; e.g. (2, 1, 0) for Sentinel-2 B2-B3-B4-B8 stacks stored in that order).
With `rgb_bands=None` a 3-band input is taken as RGB and a 1-band input (SAR,
grayscale) is repeated to three bands; other band counts raise a ValueError.
Inputs are first mapped from `input_range` (default (-1, 1), the generators'
tanh range) to [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rsjax.nn.layers import conv

Dtype = Any

VGG19_CONV_LAYERS = (
    ("conv1_1", 64), ("conv1_2", 64),
    ("conv2_1", 128), ("conv2_2", 128),
    ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), ("conv3_4", 256),
    ("conv4_1", 512), ("conv4_2", 512), ("conv4_3", 512), ("conv4_4", 512),
    ("conv5_1", 512), ("conv5_2", 512), ("conv5_3", 512), ("conv5_4", 512),
)
"""All 16 convolutions of VGG19 with their output channels, in order."""

FEATURE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""The activations `VGG19` returns (the perceptual-loss layers)."""

USED_CONV_LAYERS = VGG19_CONV_LAYERS[:13]
"""The convolutions needed to reach relu5_1 (conv1_1 .. conv5_1)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
PREPROCESSINGS = ("imagenet", "caffe")


class VGG19(nn.Module):
  """VGG19 features relu1_1 .. relu5_1 of an NHWC image (see module docstring
  for `rgb_bands`, `input_range` and `preprocessing`). Returns a dict of
  activations in `dtype`; height and width are halved after each block."""
  rgb_bands: Sequence[int] | None = None
  input_range: tuple[float, float] = (-1.0, 1.0)
  preprocessing: str = "imagenet"
  dtype: Dtype = jnp.float32

  def to_rgb(self, x: jax.Array) -> jax.Array:
    """Selects the RGB bands and maps them to [0, 1]."""
    if x.ndim != 4:
      raise ValueError(f"VGG19 expects NHWC images, got shape {x.shape}")
    bands = x.shape[-1]
    if self.rgb_bands is not None:
      if len(self.rgb_bands) != 3 or not all(0 <= b < bands for b in self.rgb_bands):
        raise ValueError(f"VGG19 rgb_bands must be 3 band indices in [0, {bands}), "
                         f"got {self.rgb_bands}")
      x = x[..., jnp.asarray(self.rgb_bands)]
    elif bands == 1:
      x = jnp.repeat(x, 3, axis=-1)
    elif bands != 3:
      raise ValueError(f"VGG19 got {bands} bands; pass rgb_bands=(red, green, "
                       "blue) band indices to pick the three it was trained on")
    low, high = self.input_range
    return (x.astype(jnp.float32) - low) / (high - low)

  def normalize(self, rgb: jax.Array) -> jax.Array:
    """ImageNet normalization of an RGB image in [0, 1]."""
    if self.preprocessing == "imagenet":
      return (rgb - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
    if self.preprocessing == "caffe":
      return rgb[..., ::-1] * 255.0 - jnp.asarray(CAFFE_BGR_MEAN)
    raise ValueError(f"unknown VGG19 preprocessing {self.preprocessing!r}; valid: "
                     f"{', '.join(PREPROCESSINGS)}")

  @nn.compact
  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    x = self.normalize(self.to_rgb(x)).astype(self.dtype)
    features = {}
    previous_block = 1
    for name, channels in USED_CONV_LAYERS:
      block, layer = name[4:].split("_")
      if int(block) != previous_block:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        previous_block = int(block)
      x = nn.relu(conv(channels, 3, dtype=self.dtype, name=name)(x))
      if layer == "1":
        features[f"relu{block}_1"] = x
    return features


def params_from_flat(flat: Mapping[str, np.ndarray]) -> dict:
  """{'conv1_1/kernel': HWIO, ...} -> Flax params {'conv1_1': {'kernel', 'bias'}}
  for the layers `VGG19` uses, checking every shape."""
  params = {}
  in_channels = 3
  for name, channels in USED_CONV_LAYERS:
    expected = {"kernel": (3, 3, in_channels, channels), "bias": (channels,)}
    params[name] = {}
    for kind, shape in expected.items():
      key = f"{name}/{kind}"
      if key not in flat:
        raise KeyError(f"VGG19 weights lack {key!r} (expected shape {shape}); "
                       f"found keys: {sorted(flat)[:6]}...")
      value = np.asarray(flat[key], dtype=np.float32)
      if value.shape != shape:
        raise ValueError(f"VGG19 weight {key!r} has shape {value.shape}, "
                         f"expected {shape} (kernels are HWIO)")
      params[name][kind] = value
    in_channels = channels
  return params


def load_vgg19(path: str, **fields: Any) -> tuple[VGG19, dict]:
  """Loads a VGG19 `.npz` (layout in the module docstring).

  Returns `(module, variables)` with the module's `preprocessing` taken from the
  file; other `VGG19` fields (rgb_bands, input_range, dtype) pass through.
  Use as `module.apply(variables, images)`.
  """
  with np.load(path, allow_pickle=False) as archive:
    flat = {key: archive[key] for key in archive.files}
  preprocessing = str(flat.pop("preprocessing", "imagenet"))
  if preprocessing not in PREPROCESSINGS:
    raise ValueError(f"{path}: unknown preprocessing {preprocessing!r}; valid: "
                     f"{', '.join(PREPROCESSINGS)}")
  params = jax.tree.map(jnp.asarray, params_from_flat(flat))
  return VGG19(preprocessing=preprocessing, **fields), {"params": params}
