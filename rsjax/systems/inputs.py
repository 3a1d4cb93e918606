"""Network inputs built from batch fields, and host-side display panels.

Batch fields follow `rsjax.data.fields` (normalized by `rsjax.data.normalize`):
continuous rasters (s1, s2, dem, s2_cloudy, ...) are (B, H, W, C) in [-1, 1];
land cover (lulc, lulc_t2) is (B, H, W) integer classes, one-hot encoded here
with `num_classes` channels (values outside [0, K) give all-zero vectors);
masks (valid, cloud_mask) are (B, H, W) integers, given to networks as one
float channel.

  field_input(batch, name, num_classes)     one field as (B, H, W, C) float32
  concat_inputs(batch, names, num_classes)  pix2pix-style channel concatenation
  source_dict(batch, names, num_classes)    RS-SPADE's {source: raster} dict

Panels (numpy, host): `field_panel` renders a field as (B, H, W, 3) in [0, 1]:
SAR as grey from VV (channel 0), land cover with the Dynamic World palette,
DEM as its hillshade channel (the last one in both aspect layouts), optical
as RGB (B4, B3, B2 = indices 2, 1, 0) or NRG (B8, B4, B3 = 3, 2, 1)
composites with a 2-98 % percentile stretch per example; `composite` with
a reference applies the reference's (the target's) stretch to another image
(the prediction), so both are shown on the same scale, as
`prediction_panels` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rsjax.data import fields as fields_lib

# Read from the one field declaration (rsjax.data.fields).
CATEGORICAL_FIELDS = fields_lib.fields_of_kind("categorical")
MASK_FIELDS = fields_lib.fields_of_kind("mask")
SAR_FIELDS = fields_lib.fields_of_kind("sar")
OPTICAL_FIELDS = fields_lib.fields_of_kind("optical")
RGB_BANDS = fields_lib.composite_bands("s2", "RGB")   # B4, B3, B2
NRG_BANDS = fields_lib.composite_bands("s2", "NRG")   # B8, B4, B3
DYNAMIC_WORLD_PALETTE = fields_lib.DYNAMIC_WORLD_PALETTE

_OUT_OF_RANGE_COLOUR = np.zeros(3, np.float32)  # ignored / unknown: black


def check_field_names(names: Sequence[str], key: str) -> tuple[str, ...]:
  """The names as a tuple; a ValueError naming `key` for unknown fields."""
  if isinstance(names, str):
    names = (names,)
  names = tuple(names)
  if not names:
    raise ValueError(f"{key}: needs at least one field name")
  spatial = [n for n, f in fields_lib.FIELDS.items() if f.spatial]
  unknown = [n for n in names if n not in spatial]
  if unknown:
    raise ValueError(f"{key}: unknown field(s) {unknown}; valid spatial "
                     f"fields: {', '.join(sorted(spatial))}")
  return names


def field_channels(name: str, num_classes: int) -> int:
  """Channels of `field_input(name)` under the default data layout."""
  if name in CATEGORICAL_FIELDS:
    return num_classes
  return fields_lib.channels(name)


def one_hot(labels: jax.Array, num_classes: int) -> jax.Array:
  """(..., ) class codes -> (..., num_classes) float32 one-hot (codes outside
  0..num_classes-1 give all zeros), as `jax.nn.one_hot`.

  Written as a select of 1.0 and 0.0, not as jax.nn.one_hot's conversion of
  the comparison to float: with the converted comparison feeding a
  convolution whose output goes through a ReLU, the TPU compiler's
  space-to-batch pass (libtpu 0.0.42) aborts on the filter gradient when a
  chip holds few images ("Check failed: PropagateOnBackpropFilterConv";
  RS-SPADE's land-cover embedding; issue 22). The values are the same.
  `benchmarks/tpu_space_to_batch_repro.py` reproduces the abort.
  """
  codes = labels.astype(jnp.int32)[..., None]
  return jnp.where(codes == jnp.arange(num_classes), jnp.float32(1),
                   jnp.float32(0))


def field_input(batch: Mapping[str, jax.Array], name: str,
                num_classes: int) -> jax.Array:
  """One batch field as a (B, H, W, C) float32 network input."""
  if name not in batch:
    raise KeyError(f"batch has no field {name!r} (fields: {sorted(batch)}); "
                   f"add it to config.data.fields")
  value = jnp.asarray(batch[name])
  if name in CATEGORICAL_FIELDS:
    return one_hot(value, num_classes)
  value = value.astype(jnp.float32)
  return value[..., None] if value.ndim == 3 else value


def concat_inputs(batch, names: Sequence[str], num_classes: int) -> jax.Array:
  """The fields' inputs concatenated on channels (pix2pix's condition)."""
  return jnp.concatenate([field_input(batch, n, num_classes) for n in names],
                         axis=-1)


def source_dict(batch, names: Sequence[str], num_classes: int
                ) -> dict[str, jax.Array]:
  """{field name: input raster}, RS-SPADE's multi-source condition."""
  return {n: field_input(batch, n, num_classes) for n in names}


# ----------------------------------------------------------------- panels --

def _unit(x) -> np.ndarray:
  """[-1, 1] -> [0, 1], clipped."""
  return np.clip((np.asarray(x, np.float32) + 1.0) / 2.0, 0.0, 1.0)


def grey(x) -> np.ndarray:
  """(B, H, W) in [-1, 1] -> (B, H, W, 3) grey in [0, 1]."""
  return np.repeat(_unit(x)[..., None], 3, axis=-1)


def palette_image(labels, num_classes: int | None = None) -> np.ndarray:
  """(B, H, W) class indices -> (B, H, W, 3) colours.

  The Dynamic World palette for classes 0..8; more classes continue with a
  fixed pseudo-random palette; labels outside [0, num_classes) (ignored
  pixels) are black.
  """
  labels = np.asarray(labels).astype(np.int64)
  k = num_classes or max(len(DYNAMIC_WORLD_PALETTE), int(labels.max(initial=0)) + 1)
  colours = DYNAMIC_WORLD_PALETTE
  if k > len(colours):
    extra = np.random.default_rng(0).random((k - len(colours), 3)).astype(np.float32)
    colours = np.concatenate([colours, extra])
  colours = np.concatenate([colours, _OUT_OF_RANGE_COLOUR[None]])
  index = np.where((labels >= 0) & (labels < k), labels, k)
  return colours[index]


def _percentiles(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per example and band 2nd and 98th percentiles of (B, H, W, C)."""
  low = np.percentile(image, 2, axis=(1, 2), keepdims=True)
  high = np.percentile(image, 98, axis=(1, 2), keepdims=True)
  return low, np.maximum(high, low + 1e-6)


def composite(image, bands: Sequence[int], reference=None) -> np.ndarray:
  """Bands of a [-1, 1] image as a stretched (B, H, W, 3) [0, 1] composite.

  The stretch (per example and band, 2-98 %) comes from `reference` when
  given (e.g. the target, so that a prediction is shown on its scale).
  """
  selected = _unit(np.asarray(image)[..., list(bands)])
  source = selected if reference is None else _unit(
      np.asarray(reference)[..., list(bands)])
  low, high = _percentiles(source)
  return np.clip((selected - low) / (high - low), 0.0, 1.0)


def field_panels(name: str, value, num_classes: int,
                 reference=None) -> dict[str, np.ndarray]:
  """Display panels of one field (suffixes ' RGB'/' NRG' for optical)."""
  value = np.asarray(value)
  if name in CATEGORICAL_FIELDS:
    return {name: palette_image(value, num_classes)}
  if name in MASK_FIELDS:
    return {name: np.repeat(np.clip(value.astype(np.float32), 0, 1)[..., None],
                            3, axis=-1)}
  if value.ndim == 3:
    value = value[..., None]
  declared = fields_lib.FIELDS.get(name)
  if declared is not None and declared.kind == "elevation":
    # Hillshade is the last channel of every normalized DEM layout (the
    # sin/cos aspect encoding adds a channel before it).
    return {name: grey(value[..., -1])}
  if declared is not None and value.shape[-1] == declared.channels:
    composites = {f"{name} {label}": fields_lib.composite_bands(name, label)
                  for label, _ in declared.display.composites}
    if composites:
      return {label: composite(value, bands, reference)
              for label, bands in composites.items()}
  if value.shape[-1] == 3:
    return {name: composite(value, (0, 1, 2), reference)}
  grey_band = fields_lib.grey_band(name) if declared is not None else None
  return {name: grey(value[..., grey_band or 0])}   # SAR: VV


def prediction_panels(name: str, prediction, target, num_classes: int,
                      labels: tuple[str, str] = ("pred", "target")
                      ) -> dict[str, np.ndarray]:
  """Panels of a predicted field and of its target, the prediction on the
  target's stretch; keys name them by `labels` instead of the field (e.g.
  'pred RGB', 'target RGB')."""
  target = np.asarray(target, np.float32)
  out = {}
  for label, image, reference in ((labels[0], prediction, target),
                                  (labels[1], target, None)):
    for key, value in field_panels(name, np.asarray(image, np.float32),
                                   num_classes, reference).items():
      out[key.replace(name, label, 1)] = value
  return out
