"""Per-source normalization of dataset fields to [-1, 1], and exact inverses.

Generators of the papers end in tanh, so every continuous source is mapped
linearly from a physical range onto [-1, 1] (values outside the range are
clipped first). The inverses give physical units back, e.g. to write predicted
Sentinel-2 reflectance to a GeoTIFF. The mapping is driven by a config
(`default_config()`, a plain dict of dicts that `ml_collections.ConfigDict`
accepts), with one entry per *source*:

  s2   Sentinel-2 reflectance (DN / 10000), B2, B3, B4, B8. Default range
       [0, 1] per band. We keep the full physical range rather than the
       visually nicer [0, 0.3]: cloudy inputs (`s2_cloudy`) share this mapping
       and clouds are bright (0.3-1.0), and vegetation NIR often exceeds 0.3,
       so a 0.3 clip would destroy exactly the signal cloud removal and fusion
       need. Override `high` (a float or one value per band) for other choices.
  s1   Sentinel-1 backscatter in dB, clipped per polarization with the ranges
       of `rsjax.geo.sar` (VV [-25, 0], VH [-32.5, 0] by default).
  dem  4 channels: elevation m ([0, 3000] by default; set it to your area),
       slope deg [0, 90], aspect deg [0, 360), hillshade [0, 1].
       Aspect is circular: `aspect: 'linear'` maps [0, 360] onto [-1, 1] (one
       channel, north at both ends), `aspect: 'sincos'` replaces it by
       (sin, cos) of the azimuth (dem gets 5 channels: elev, slope, sin, cos,
       hillshade), which has no seam at north. Flat cells (slope 0) carry
       aspect 0 from `rsjax.geo.terrain`.

Which source normalizes a field is declared with the field
(`rsjax.data.fields`, `Field.normalization`; `FIELD_SOURCES` is that table):
s2_cloudy, s2_t2 and s2_coarse use the s2 mapping, s1_t2 the s1 one. Integer
fields (lulc, lulc_t2, valid, cloud_mask), metadata and the readers' padding
`mask` pass through unchanged: class indices stay integers, models one-hot
them. Band names (S2's, S1's polarizations, the DEM channels) come from the
declaration too; `band_names(field, config)` gives a field's channels after
normalization (the DEM's aspect may become sin and cos).

A dataset may hold a field in other units than the declaration's
(`rsjax.data.field_layout`): 8-bit digital numbers (SEN1-2's PNGs, GID's and
WHU-OPT-SAR's images) use the `dn8` mapping, [0, 255] onto [-1, 1], as the
papers normalize them; the SAR mapping takes its polarizations from the
field's bands (SEN1-2 has VV only). `normalize_batch(..., layouts=...)` and
`source_of(field, units)` choose by units; units a source cannot map (S2 in
dB) are an error naming the field.

Every function takes numpy or jax arrays (channels last) and returns the same
kind of array; jax inputs work under `jit`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rsjax.data import field_layout
from rsjax.data import fields as fields_lib
from rsjax.geo import sar

SOURCES = ("s2", "s1", "dem", "dn8")
# The units each source maps; `dn8` takes any field stored as 8-bit numbers.
SOURCE_UNITS = {"s2": ("reflectance",), "s1": ("dB",),
                "dem": fields_lib.FIELDS["dem"].units,
                "dn8": (field_layout.DN8,)}
FIELD_SOURCES: Mapping[str, str] = {
    f.name: f.normalization for f in fields_lib.FIELDS.values()
    if f.normalization is not None}
PADDING_MASK = "mask"  # added to evaluation batches by `rsjax.data.readers`
PASSTHROUGH_FIELDS = tuple(
    f.name for f in fields_lib.FIELDS.values() if f.normalization is None
) + (PADDING_MASK,)
S2_BANDS = fields_lib.band_names("s2")
DEM_CHANNELS = fields_lib.band_names("dem")
ASPECT_MODES = ("linear", "sincos")
_DEM = {band: index for index, band in enumerate(DEM_CHANNELS)}


def default_config() -> dict[str, Any]:
  """The default normalization config (a dict of per-source dicts)."""
  return {
      "s2": {"low": 0.0, "high": 1.0},
      "s1": {"polarizations": fields_lib.band_names("s1"),
             "ranges": {k: tuple(v) for k, v in sar.DEFAULT_DB_RANGES.items()}},
      "dem": {"elevation": (0.0, 3000.0), "slope": (0.0, 90.0),
              "aspect": "linear", "hillshade": (0.0, 1.0)},
      "dn8": {"low": 0.0, "high": 255.0},
  }


def _plain(value):
  """`value` with every ConfigDict or other mapping in it, at any depth, a
  plain dict: the pipeline keys its compiled normalization by the resolved
  config's repr, read back with `ast.literal_eval`."""
  if hasattr(value, "to_dict"):
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {k: _plain(v) for k, v in value.items()}
  return value


def _as_dict(config) -> dict[str, Any]:
  return default_config() if config is None else _plain(config)


def resolve_config(config=None) -> dict[str, Any]:
  """Defaults overlaid with `config`; unknown source names raise KeyError."""
  given = _as_dict(config)
  unknown = sorted(set(given) - set(SOURCES))
  if unknown:
    raise KeyError(f"normalization config: unknown source(s) {unknown}; valid "
                   f"sources are {list(SOURCES)}.")
  result = copy.deepcopy(default_config())
  for source, entries in given.items():
    bad = sorted(set(entries) - set(result[source]))
    if bad:
      raise KeyError(f"normalization config '{source}': unknown key(s) {bad}; "
                     f"valid keys are {sorted(result[source])}.")
    result[source].update(entries)
  mode = result["dem"]["aspect"]
  if mode not in ASPECT_MODES:
    raise ValueError(f"normalization config 'dem.aspect' must be one of "
                     f"{list(ASPECT_MODES)}, got {mode!r}.")
  return result


def source_of(field: str, units: tuple[str, ...] | None = None
              ) -> str | None:
  """The source whose mapping normalizes `field` held in `units` (one per
  band; None: the declared units); None for pass-through fields."""
  if field in PASSTHROUGH_FIELDS:
    return None
  if field not in FIELD_SOURCES:
    raise KeyError(f"unknown field {field!r}; normalized fields are "
                   f"{sorted(FIELD_SOURCES)}, pass-through fields are "
                   f"{sorted(PASSTHROUGH_FIELDS)}.")
  source = FIELD_SOURCES[field]
  if units is None:
    return source
  units = tuple(units)
  if set(units) == {field_layout.DN8}:
    return "dn8"
  if source == "dem":
    if units != SOURCE_UNITS["dem"]:
      raise ValueError(f"field {field!r} holds units {list(units)}; the dem "
                       f"mapping takes {list(SOURCE_UNITS['dem'])}.")
  elif set(units) - set(SOURCE_UNITS[source]):
    raise ValueError(
        f"field {field!r} holds units {sorted(set(units))}; its mapping "
        f"({source!r}) takes {list(SOURCE_UNITS[source])} or "
        f"{field_layout.DN8!r}.")
  return source


def _xp(x):
  return jnp if isinstance(x, jax.Array) else np


def _float(xp, x):
  x = xp.asarray(x)
  return x if xp.issubdtype(x.dtype, xp.floating) else x.astype(xp.float32)


def _range(name: str, low_high) -> tuple[Any, Any]:
  low, high = (np.asarray(v, np.float64) for v in low_high)
  if not np.all(low < high):
    raise ValueError(f"normalization range {name} must have low < high, got "
                     f"{(low.tolist(), high.tolist())}.")
  return low, high


def _to_unit(xp, x, low, high):
  """Clip x to [low, high] and map linearly onto [-1, 1]."""
  low = xp.asarray(low, x.dtype)
  high = xp.asarray(high, x.dtype)
  return (xp.clip(x, low, high) - low) / (high - low) * 2.0 - 1.0


def _from_unit(xp, y, low, high):
  low = xp.asarray(low, y.dtype)
  high = xp.asarray(high, y.dtype)
  return low + (xp.clip(y, -1.0, 1.0) + 1.0) * 0.5 * (high - low)


def _check_channels(name, x, channels):
  if x.ndim == 0 or x.shape[-1] != channels:
    raise ValueError(f"{name}: expected {channels} channels last, got an "
                     f"array of shape {x.shape}.")


def normalize_s2(x, cfg: Mapping[str, Any]):
  """Reflectance -> [-1, 1], clipped to [low, high] (per band if sequences)."""
  xp = _xp(x)
  x = _float(xp, x)
  low, high = _range("s2", (cfg["low"], cfg["high"]))
  return _to_unit(xp, x, low, high)


def denormalize_s2(y, cfg: Mapping[str, Any]):
  xp = _xp(y)
  y = _float(xp, y)
  low, high = _range("s2", (cfg["low"], cfg["high"]))
  return _from_unit(xp, y, low, high)


def normalize_s1(x, cfg: Mapping[str, Any]):
  """dB -> [-1, 1], clipped per polarization (`rsjax.geo.sar.normalize_db`)."""
  return sar.normalize_db(x, tuple(cfg["polarizations"]), ranges=cfg["ranges"])


def denormalize_s1(y, cfg: Mapping[str, Any]):
  return sar.denormalize_db(y, tuple(cfg["polarizations"]),
                            ranges=cfg["ranges"])


def normalize_dn8(x, cfg: Mapping[str, Any]):
  """8-bit digital numbers -> [-1, 1], clipped to [low, high]."""
  return normalize_s2(x, cfg)


def denormalize_dn8(y, cfg: Mapping[str, Any]):
  return denormalize_s2(y, cfg)


def dem_band_names(cfg: Mapping[str, Any]) -> tuple[str, ...]:
  """Normalized DEM channels: the declared ones, with aspect replaced by
  (aspect_sin, aspect_cos) when `cfg['aspect']` is 'sincos'."""
  if cfg["aspect"] != "sincos":
    return DEM_CHANNELS
  return tuple(part for band in DEM_CHANNELS for part in (
      ("aspect_sin", "aspect_cos") if band == "aspect" else (band,)))


def dem_channels(cfg: Mapping[str, Any]) -> int:
  """Number of normalized DEM channels: 4 (linear aspect) or 5 (sin/cos)."""
  return len(dem_band_names(cfg))


def band_names(field: str, config=None) -> tuple[str, ...]:
  """A raster field's channels after `normalize` with `config`."""
  if source_of(field) == "dem":
    return dem_band_names(resolve_config(config)["dem"])
  return fields_lib.band_names(field)


_LINEAR_DEM = ("elevation", "slope", "hillshade")  # clipped ranges in cfg


def normalize_dem(x, cfg: Mapping[str, Any]):
  """(elevation m, slope deg, aspect deg, hillshade) -> [-1, 1] channels,
  in the order of `dem_band_names(cfg)`."""
  xp = _xp(x)
  x = _float(xp, x)
  _check_channels("dem", x, len(DEM_CHANNELS))
  physical = {band: x[..., i] for i, band in enumerate(DEM_CHANNELS)}
  parts = {band: _to_unit(xp, physical[band], *_range(f"dem.{band}",
                                                      cfg[band]))
           for band in _LINEAR_DEM}
  aspect = xp.mod(physical["aspect"], 360.0)
  if cfg["aspect"] == "sincos":
    radians = aspect * (np.pi / 180.0)
    parts.update(aspect_sin=xp.sin(radians), aspect_cos=xp.cos(radians))
  else:
    parts["aspect"] = aspect / 180.0 - 1.0
  return xp.stack([parts[band] for band in dem_band_names(cfg)], axis=-1)


def denormalize_dem(y, cfg: Mapping[str, Any]):
  """The inverse of `normalize_dem`: the 4 physical channels back."""
  xp = _xp(y)
  y = _float(xp, y)
  names = dem_band_names(cfg)
  _check_channels("dem", y, len(names))
  channel = {band: y[..., i] for i, band in enumerate(names)}
  physical = {band: _from_unit(xp, channel[band], *_range(f"dem.{band}",
                                                          cfg[band]))
              for band in _LINEAR_DEM}
  if cfg["aspect"] == "sincos":
    degrees = xp.arctan2(channel["aspect_sin"],
                         channel["aspect_cos"]) * (180.0 / np.pi)
    physical["aspect"] = xp.mod(degrees, 360.0)
  else:
    physical["aspect"] = xp.mod(
        (xp.clip(channel["aspect"], -1.0, 1.0) + 1.0) * 180.0, 360.0)
  return xp.stack([physical[band] for band in DEM_CHANNELS], axis=-1)


_FORWARD = {"s2": normalize_s2, "s1": normalize_s1, "dem": normalize_dem,
            "dn8": normalize_dn8}
_INVERSE = {"s2": denormalize_s2, "s1": denormalize_s1,
            "dem": denormalize_dem, "dn8": denormalize_dn8}


def normalize(field: str, x, config=None, layout=None):
  """Normalizes one field (pass-through fields are returned unchanged);
  `layout` (`field_layout.FieldLayout`): what the field holds, when it is
  not the declared bands and units."""
  return _convert(_FORWARD, field, x, config, layout)


def denormalize(field: str, y, config=None, layout=None):
  """Physical units back from a normalized field (e.g. a generator output)."""
  return _convert(_INVERSE, field, y, config, layout)


def normalize_batch(batch: Mapping[str, Any], config=None,
                    layouts: Mapping[str, Any] | None = None
                    ) -> dict[str, Any]:
  """Normalizes every field of an example or batch dict; `layouts`:
  {field: FieldLayout} of fields not held as declared."""
  return _convert_batch(_FORWARD, batch, config, layouts)


def denormalize_batch(batch: Mapping[str, Any], config=None,
                      layouts: Mapping[str, Any] | None = None
                      ) -> dict[str, Any]:
  """Physical units back for every field of a normalized batch dict."""
  return _convert_batch(_INVERSE, batch, config, layouts)


def _convert(mappings, field: str, x, config, layout=None):
  """`x` through the mapping in `mappings` (`_FORWARD` or `_INVERSE`) of
  `field`'s source for its units; a pass-through field unchanged (config
  unread)."""
  source = source_of(field, None if layout is None else layout.units)
  if source is None:
    return x
  cfg = resolve_config(config)[source]
  if source == "s1" and layout is not None:
    cfg = {**cfg, "polarizations": tuple(layout.bands)}
  return mappings[source](x, cfg)


def _convert_batch(mappings, batch: Mapping[str, Any], config, layouts=None):
  """`_convert` of every field; the config is checked up front, so a bad one
  fails even when every field passes through."""
  config = resolve_config(config)
  layouts = dict(layouts or {})
  return {field: _convert(mappings, field, x, config, layouts.get(field))
          for field, x in batch.items()}
