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

Panels (numpy, host): `field_panels` renders a field as `base.Panel`s,
(B, H, W, 3) images in [0, 1] with a title: SAR as grey from VV (channel 0)
and DEM as its hillshade channel (the last one in both aspect layouts), each
titled and noted with the physical range shown black to white (from the
normalization the batch went through, e.g. VV -25 to 0 dB); land cover with
the Dynamic World palette and a legend of the class names; masks in black and
white; optical as RGB (B4, B3, B2 = indices 2, 1, 0) or NRG (B8, B4, B3 = 3,
2, 1) composites with a 2-98 % percentile stretch per example and band;
`composite` with a reference applies the reference's (the target's) stretch
to another image (the prediction), so both are shown on the same scale, as
`prediction_panels` does. `real_rows` drops the padding examples of an
evaluation batch before its panels are drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rsjax.data import field_layout
from rsjax.data import fields as fields_lib
from rsjax.data import normalize as normalize_lib
from rsjax.systems import base

# Read from the one field declaration (rsjax.data.fields).
CATEGORICAL_FIELDS = fields_lib.fields_of_kind("categorical")
MASK_FIELDS = fields_lib.fields_of_kind("mask")
SAR_FIELDS = fields_lib.fields_of_kind("sar")
OPTICAL_FIELDS = fields_lib.fields_of_kind("optical")
RGB_BANDS = fields_lib.composite_bands("s2", "RGB")   # B4, B3, B2
NRG_BANDS = fields_lib.composite_bands("s2", "NRG")   # B8, B4, B3
DYNAMIC_WORLD_PALETTE = fields_lib.DYNAMIC_WORLD_PALETTE

_OUT_OF_RANGE_COLOUR = np.zeros(3, np.float32)  # ignored / unknown: black
STRETCH = "stretch 2-98 %"
STRETCH_NOTE = ("Composites: each band stretched per example from its 2nd to "
                "its 98th percentile; a prediction on its target's stretch.")
# The normalization of a run that does not configure one.
DEFAULT_NORMALIZATION = normalize_lib.resolve_config()


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


def field_channels(name: str, num_classes: int, bands=None) -> int:
  """Channels of `field_input(name)` in a run whose `config.data.bands` is
  `bands` (None: the declared bands)."""
  if name in CATEGORICAL_FIELDS:
    return num_classes
  f = fields_lib.field(name)
  if not f.channel_axis:
    return 1
  return len(field_layout.run_bands(bands, name))


def run_bands(config, name: str) -> tuple[str, ...]:
  """The bands of field `name` a run with `config` reads
  (`config.data.bands`, or the declared ones)."""
  data = config.get("data") or {}
  return field_layout.run_bands(data.get("bands"), name)


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
  if not image.size:
    empty = np.zeros(image.shape[:1] + (1, 1) + image.shape[3:], image.dtype)
    return empty, empty + 1
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


def grey_range(name: str, channel: int, normalization=None
               ) -> tuple[float, float]:
  """Physical values of channel `channel` of a field's panel input that grey
  shows black and white: the ends of the field's normalization range, or
  (-1, 1) when the field is not normalized (`normalization` None)."""
  if normalization is None or normalize_lib.source_of(name) is None:
    return -1.0, 1.0
  layout = normalize_lib.band_names(name, normalization)
  ends = np.array([[-1.0] * len(layout), [1.0] * len(layout)], np.float32)
  physical = normalize_lib.denormalize(name, ends, normalization)
  index = fields_lib.band_names(name).index(layout[channel])
  return float(physical[0, index]), float(physical[1, index])


def grey_panel(name: str, value, channel: int, *, title: str | None = None,
               normalization=DEFAULT_NORMALIZATION) -> base.Panel:
  """Channel `channel` of a field's (B, H, W, C) panel input in grey, titled
  with the band and the physical range from black to white (SAR's dB); only
  with the channel's index when the field has another band set than the
  declared one."""
  title = title or name
  value = np.asarray(value, np.float32)
  image = grey(value[..., channel])
  layout = (normalize_lib.band_names(name, normalization)
            if name in fields_lib.FIELDS else ())
  if value.shape[-1] != len(layout):
    return base.Panel(image, f"{title} channel {channel}")
  band = layout[channel]
  low, high = grey_range(name, channel, normalization)
  unit = fields_lib.band_units(name).get(band, "")
  unit = "" if unit in ("unitless", "") else f" {unit}"
  return base.Panel(
      image, f"{title} {band}, {low:g} to {high:g}{unit}",
      note=f"{title} {band}: black {low:g}{unit}, white {high:g}{unit}; "
           f"values outside are clipped.")


def palette_panel(name: str, labels, num_classes: int | None = None, *,
                  title: str | None = None) -> base.Panel:
  """Class indices of categorical field `name` as a `palette_image` panel
  whose legend names each class beside its colour (and 'no label' for the
  black of ignored pixels, when there are any)."""
  labels = np.asarray(labels)
  image = palette_image(labels, num_classes)
  names = [n.replace("_", " ") for n in fields_lib.class_names(name)]
  count = num_classes or max(len(names), int(labels.max(initial=0)) + 1)
  colours = palette_image(np.arange(count)[None, None], count)[0, 0]
  legend = [(names[k] if k < len(names) else f"class {k}",
             tuple(float(c) for c in colours[k])) for k in range(count)]
  if np.any((labels < 0) | (labels >= count)):
    legend.append(("no label", tuple(float(c) for c in _OUT_OF_RANGE_COLOUR)))
  return base.Panel(image, f"{title or name}, land cover classes",
                    legend=tuple(legend))


def mask_panel(name: str, value, *, title: str | None = None) -> base.Panel:
  """A mask field (0, 1, ...) in black (0) and white (1 and above), the
  title saying which classes each is."""
  classes = fields_lib.class_names(name)
  image = np.repeat(np.clip(np.asarray(value, np.float32), 0, 1)[..., None], 3,
                    axis=-1)
  return base.Panel(image, f"{title or name}: {classes[0]} black, "
                           f"{'/'.join(classes[1:])} white")


def composite_panel(title: str, image, bands: Sequence[int],
                    band_names: Sequence[str], reference=None,
                    reference_title: str = "target") -> base.Panel:
  """`composite` as a panel titled with the bands shown as R, G, B and the
  stretch, e.g. 's2 B4-B3-B2, stretch 2-98 %'."""
  stretch = STRETCH if reference is None else f"{reference_title}'s {STRETCH}"
  return base.Panel(composite(image, bands, reference),
                    f"{title} {'-'.join(band_names)}, {stretch}",
                    note=STRETCH_NOTE)


def field_panels(name: str, value, num_classes: int, reference=None, *,
                 role: str | None = None, reference_role: str = "target",
                 normalization=DEFAULT_NORMALIZATION,
                 bands: Sequence[str] | None = None) -> dict[str, base.Panel]:
  """Display panels of one field (suffixes ' RGB'/' NRG' for optical).

  role: what the image is ('pred', 'target'); it replaces the field name in
    the keys and precedes it in the titles.
  reference_role: what `reference` is, for the titles.
  normalization: the resolved normalization the batch went through (None:
    physical units), for the range grey panels show.
  bands: the names of the value's channels when they are not the declared
    ones (a run's `config.data.bands`, `run_bands`): composites are found
    by name among them.
  """
  value = np.asarray(value)
  key = role or name
  title = f"{role} {name}" if role else name
  if name in CATEGORICAL_FIELDS:
    return {key: palette_panel(name, value, num_classes, title=title)}
  if name in MASK_FIELDS:
    return {key: mask_panel(name, value, title=title)}
  if value.ndim == 3:
    value = value[..., None]
  declared = fields_lib.FIELDS.get(name)
  if declared is not None and declared.kind == "elevation":
    # Hillshade is the last channel of every normalized DEM layout (the
    # sin/cos aspect encoding adds a channel before it).
    return {key: grey_panel(name, value, value.shape[-1] - 1, title=title,
                            normalization=normalization)}
  if bands is not None and len(bands) != value.shape[-1]:
    bands = None
  if declared is not None and (bands is not None
                               or value.shape[-1] == declared.channels):
    composites = {}
    for label, _ in declared.display.composites:
      indices = fields_lib.composite_bands(name, label, bands)
      if indices is not None:
        shown = tuple((bands or declared.bands)[i] for i in indices)
        composites[f"{key} {label}"] = (indices, shown)
    if composites:
      return {label: composite_panel(title, value, bands, shown, reference,
                                     reference_role)
              for label, (bands, shown) in composites.items()}
  if value.shape[-1] == 3:
    return {key: composite_panel(title, value, (0, 1, 2),
                                 ("ch1", "ch2", "ch3"), reference,
                                 reference_role)}
  grey_band = fields_lib.grey_band(name) if declared is not None else None
  return {key: grey_panel(name, value, grey_band or 0, title=title,
                          normalization=normalization)}   # SAR: VV


def prediction_panels(name: str, prediction, target, num_classes: int,
                      labels: tuple[str, str] = ("pred", "target"),
                      normalization=DEFAULT_NORMALIZATION,
                      bands: Sequence[str] | None = None
                      ) -> dict[str, base.Panel]:
  """Panels of a predicted field and of its target, the prediction on the
  target's stretch; keys name them by `labels` instead of the field (e.g.
  'pred RGB', 'target RGB'); `bands` as in `field_panels`."""
  target = np.asarray(target, np.float32)
  out = field_panels(name, np.asarray(prediction, np.float32), num_classes,
                     target, role=labels[0], reference_role=labels[1],
                     normalization=normalization, bands=bands)
  out.update(field_panels(name, target, num_classes, role=labels[1],
                          normalization=normalization, bands=bands))
  return out


def real_rows(batch: Mapping[str, Any], prediction=None):
  """(batch, prediction) without the rows of padding examples (the batch's
  `mask` 0); unchanged when the batch has no mask. `prediction` may be an
  array or a pytree of arrays with a row per example."""
  mask = batch.get(normalize_lib.PADDING_MASK)
  if mask is None:
    return batch, prediction
  keep = np.asarray(mask).reshape(-1) > 0

  def rows(x):
    x = np.asarray(x)
    return x[keep] if x.ndim and x.shape[0] == keep.shape[0] else x

  return ({k: rows(v) for k, v in batch.items()},
          None if prediction is None else jax.tree.map(rows, prediction))
