"""Seeded random weights and inputs, in PyTorch's layout, that the JAX tests
and `make_reference_fixtures.py` (run with PyTorch) both build from numpy
alone, so reference outputs computed by pytorch-fid / lpips can be committed
as a small fixture instead of the weights (Inception-v3: ~22M parameters).

Every array depends only on (seed, its state_dict key): the two sides may list
the keys in different orders. Scales keep activations O(1) through deep
random networks: He-scaled convolutions, BatchNorm statistics near identity.
"""

from __future__ import annotations

import zlib

import numpy as np

SEED = 17


def _rng(key: str, seed: int = SEED) -> np.random.Generator:
  return np.random.default_rng([seed, zlib.crc32(key.encode())])


def tensor(key: str, shape: tuple[int, ...], seed: int = SEED) -> np.ndarray:
  """The float32 array of state_dict entry `key` (torch layout `shape`)."""
  rng = _rng(key, seed)
  leaf = key.rsplit(".", 1)[-1]
  if leaf == "weight" and len(shape) == 4 and ".lin" not in f".{key}" \
      and not key.startswith("lin"):
    fan_in = int(np.prod(shape[1:]))
    value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
  elif key.startswith("lin") or ".lin" in key:           # LPIPS lin: >= 0
    value = rng.uniform(0.0, 2.0 / shape[1], shape)
  elif leaf == "running_var":
    value = rng.uniform(0.5, 1.5, shape)
  elif leaf == "running_mean":
    value = 0.1 * rng.standard_normal(shape)
  elif leaf == "weight":                                   # BatchNorm gamma
    value = 1.0 + 0.1 * rng.standard_normal(shape)
  elif leaf == "bias":
    value = 0.05 * rng.standard_normal(shape)
  else:
    raise ValueError(f"no rule for state_dict key {key!r}")
  return value.astype(np.float32)


def state_dict(shapes: dict[str, tuple[int, ...]], seed: int = SEED
               ) -> dict[str, np.ndarray]:
  """{key: tensor(key, shape)} for a {key: torch shape} listing."""
  return {key: tensor(key, tuple(shape), seed) for key, shape in shapes.items()}


def images(name: str, shape: tuple[int, ...], seed: int = SEED) -> np.ndarray:
  """NHWC float32 test images in [0, 1]: smooth gradients plus noise."""
  rng = _rng(f"images/{name}", seed)
  n, h, w, c = shape
  yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
  phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, c))
  smooth = 0.5 + 0.3 * np.sin(3 * yy[None, ..., None] + 5 * xx[None, ..., None]
                              + phase)
  noisy = smooth + 0.15 * rng.standard_normal(shape)
  return np.clip(noisy, 0.0, 1.0).astype(np.float32)


# Inputs of the committed reference outputs.
INCEPTION_IMAGES = ("inception", (3, 64, 80, 3))   # resized to 299 x 299
LPIPS_IMAGES = (("lpips_a", (3, 64, 72, 3)), ("lpips_b", (3, 64, 72, 3)))
