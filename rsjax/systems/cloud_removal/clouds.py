"""Cloudy inputs of the cloud-removal system: synthetic on device, or the dataset's.

The two-GAN cloud-removal paper (Darbaghshahi et al., Sec. 2.3, Fig. 4-5)
makes its cloudy images by alpha blending thick clouds over clear Sentinel-2
images, so every cloudy input has an exact cloud mask. The paper's clouds
are clipped from real cloudy images; these are procedural (how they differ,
and why: configs/cloud_removal.py, "Data protocol"). Two sources:

  'synthetic'  thick clouds made inside the jitted step with `rsjax.geo.clouds`
               over the clear target bands: Porter-Duff "over" of a fractal
               cloud layer (opacity 1, sharp edge: THICK_CLOUDS), one coverage
               per image drawn uniformly from `coverage` = (low, high). Training
               keys come from the step's RNG; evaluation keys from the image's
               content (`content_keys`), so every evaluation of an example sees
               the same clouds whatever the batch, order or sharding.
  'dataset'    the dataset's `s2_cloudy` and `cloud_mask` (0 clear, 1 cloud,
               2 shadow); clouds and shadows both count as corrupted pixels.

Images are normalized to [-1, 1] (`rsjax.data.normalize`); clouds are blended
in [0, 1] units ((x + 1) / 2, i.e. reflectance under the default s2
normalization), with the cloud-top reflectance `reflectance` in those units.

`random_crop` cuts one random window out of every tile-shaped field (the
system's `config.train_crop`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rsjax.geo import clouds as clouds_lib

SOURCES = ("synthetic", "dataset")
DEFAULT_SYNTHETIC = {
    "coverage": (0.1, 0.6),       # per-image cloud fraction, uniform in range
    "opacity": clouds_lib.THICK_CLOUDS["opacity"],
    "edge_width": clouds_lib.THICK_CLOUDS["edge_width"],
    "reflectance": 0.9,           # cloud top, in [0, 1] units
    "brightness_variation": 0.1,
    "feature_size": 64.0,         # pixels across the largest cloud structures
}
CONTENT_SEED = 0xC10D5
"""Seed of the evaluation clouds (combined with each image's content hash)."""


def check_source(value: str, key: str) -> str:
  if value not in SOURCES:
    raise ValueError(f"{key}: unknown cloud source {value!r}; valid: "
                     f"{', '.join(SOURCES)}")
  return value


def synthetic_params(config: Mapping[str, Any] | None) -> dict[str, Any]:
  """`DEFAULT_SYNTHETIC` overridden by `config` (config.synthetic_clouds)."""
  given = {} if config is None else dict(
      config.to_dict() if hasattr(config, "to_dict") else config)
  unknown = sorted(set(given) - set(DEFAULT_SYNTHETIC))
  if unknown:
    raise ValueError(f"config.synthetic_clouds: unknown key(s) {unknown}; "
                     f"valid: {sorted(DEFAULT_SYNTHETIC)}")
  params = {**DEFAULT_SYNTHETIC, **given}
  low, high = (float(v) for v in params["coverage"])
  if not 0.0 <= low <= high <= 1.0:
    raise ValueError(f"config.synthetic_clouds.coverage must be (low, high) "
                     f"with 0 <= low <= high <= 1, got {params['coverage']}")
  params["coverage"] = (low, high)
  for name in ("opacity", "edge_width", "reflectance", "feature_size"):
    params[name] = float(params[name])
  if not 0.0 < params["opacity"] <= 1.0:
    raise ValueError(f"config.synthetic_clouds.opacity must be in (0, 1], got "
                     f"{params['opacity']}")
  return params


def add_synthetic_clouds(keys, clear, coverages, params
                         ) -> tuple[jax.Array, jax.Array]:
  """Clouds over `clear` (B, H, W, C) in [-1, 1], one key and coverage per
  image. Returns (cloudy (B, H, W, C) float32 in [-1, 1], cloud mask
  (B, H, W) float32, 1 under a cloud)."""
  unit = (jnp.asarray(clear, jnp.float32) + 1.0) / 2.0

  def one(key, image, coverage):
    result = clouds_lib.add_clouds(
        key, image, coverage=coverage, opacity=params["opacity"],
        edge_width=params["edge_width"],
        cloud_reflectance=params["reflectance"],
        brightness_variation=params["brightness_variation"],
        feature_size=params["feature_size"])
    return result.image, result.cloud_mask

  cloudy, mask = jax.vmap(one)(keys, unit, coverages)
  # Outside the clouds, the clear pixels exactly (no [0, 1] round trip).
  cloudy = jnp.where(mask[..., None], cloudy * 2.0 - 1.0, clear)
  return cloudy.astype(jnp.float32), mask.astype(jnp.float32)


def _coverages(keys, params) -> jax.Array:
  low, high = params["coverage"]
  return jax.vmap(lambda k: jax.random.uniform(
      jax.random.fold_in(k, 1), (), minval=low, maxval=high))(keys)


def random_clouds(key, clear, params) -> tuple[jax.Array, jax.Array]:
  """Training clouds: per-image keys and coverages drawn from `key`."""
  keys = jax.random.split(key, clear.shape[0])
  return add_synthetic_clouds(keys, clear, _coverages(keys, params), params)


def content_keys(image) -> jax.Array:
  """One PRNG key per image of (B, H, W, C) from a hash of its pixels.

  The pixels are quantized to integers and hashed with position-dependent
  odd multipliers in wrapping uint32 arithmetic, which is associative: the
  hash, unlike a float sum, is the same for any reduction order or sharding.
  """
  _, height, width, channels = image.shape
  levels = jnp.round((jnp.asarray(image, jnp.float32) + 1.0) * 4096.0)
  levels = levels.astype(jnp.int32).astype(jnp.uint32)
  position = jnp.arange(height * width * channels, dtype=jnp.uint32)
  multipliers = (position * np.uint32(2654435761) + np.uint32(0x9E3779B9)
                 ) | np.uint32(1)
  hashes = jnp.sum(levels * multipliers.reshape(height, width, channels),
                   axis=(1, 2, 3), dtype=jnp.uint32)
  base = jax.random.key(CONTENT_SEED)
  return jax.vmap(lambda h: jax.random.fold_in(base, h))(hashes)


def fixed_clouds(clear, params) -> tuple[jax.Array, jax.Array]:
  """Evaluation clouds: a deterministic function of each clear image."""
  keys = content_keys(clear)
  return add_synthetic_clouds(keys, clear, _coverages(keys, params), params)


def dataset_clouds(batch, bands: Sequence[int]) -> tuple[jax.Array, jax.Array]:
  """The dataset's cloudy bands and corrupted-pixel mask (cloud or shadow)."""
  cloudy = jnp.asarray(batch["s2_cloudy"], jnp.float32)[..., list(bands)]
  mask = (jnp.asarray(batch["cloud_mask"]) > 0).astype(jnp.float32)
  return cloudy, mask


def required_fields(source: str) -> tuple[str, ...]:
  """Batch fields a cloud source reads besides the clear `s2`."""
  return ("s2_cloudy", "cloud_mask") if source == "dataset" else ()


def random_crop(batch, size: int, key) -> dict[str, Any]:
  """The same random size x size window of every tile-shaped field."""
  height, width = batch["s2"].shape[1:3]
  top, left = (jax.random.randint(k, (), 0, limit - size + 1)
               for k, limit in zip(jax.random.split(key), (height, width)))
  out = dict(batch)
  for name, value in batch.items():
    if getattr(value, "ndim", 0) >= 3 and value.shape[1:3] == (height, width):
      starts = (0, top, left) + (0,) * (value.ndim - 3)
      out[name] = jax.lax.dynamic_slice(
          value, starts, (value.shape[0], size, size) + value.shape[3:])
  return out
