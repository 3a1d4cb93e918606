"""The one declaration of every field of a multi-source example.

A field is one named array of an example: a raster tile, (T, T, C) or (T, T)
with T the tile size, or a small metadata value. `FIELDS` declares each field
once, as a frozen `Field`:

  kind           'optical', 'sar', 'categorical', 'mask', 'elevation' or
                 'metadata' (`KINDS`).
  bands          band names, channels last, e.g. S2 (B2, B3, B4, B8), S1 (VV,
                 VH), dem (elevation, slope, aspect, hillshade); a (T, T)
                 raster has one band and no channel axis; metadata has none.
  units          one per band ('reflectance', 'dB', 'metres', 'degrees',
                 'class index', ...); metadata has one.
  dtype          the storage dtype, in physical units (as builders store it
                 and readers return it).
  normalization  the source of `rsjax.data.normalize` that maps the field
                 onto [-1, 1] ('s2', 's1', 'dem'); None: it passes through.
  classes        what the values of a categorical or mask field mean.
  display        how panels show it (`Display`): composites by band name,
                 the band shown in grey, or a palette.
  encoding       how a TFDS builder stores it ('zlib', 'bytes' or 'none').

Band names and class tables of the source rasters are facts of the files
(`rsjax.geo.bands`), which the declaration names. Everything else reads the
declaration instead of repeating it: normalization (`rsjax.data.normalize`),
readers and the in-memory source, the TFDS builders' features
(`data_builders.field_features`), full-scene inference (band names, class
fields) and reports (palette, class names). A dataset may hold another band set than the
declared one (e.g. SEN12MS's 13 S2 bands): `spec(name, T, bands=...)` gives
its shape.

Helpers: `field(name)`, `spec(name, tile_size, bands=None)`, `channels`,
`band_names`, `band_units`, `band_indices`, `fields_of_kind`, `class_names`,
`palette`, `composite_bands`, `grey_band`, `is_device_field`;
`DYNAMIC_WORLD_PALETTE` is the land-cover palette as an array; `SPATIAL` and
`METADATA` are the {name: (channels or None, dtype)} / {name: (shape, dtype)}
views older code reads.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping, Sequence

import numpy as np

from rsjax.geo import bands as geo_bands

KINDS = ("optical", "sar", "categorical", "mask", "elevation", "metadata")
ENCODINGS = ("zlib", "bytes", "none")

# Dynamic World v1 class colours, in label order: water, trees, grass,
# flooded vegetation, crops, shrub and scrub, built, bare, snow and ice.
DYNAMIC_WORLD_COLOURS = (0x419BDF, 0x397D49, 0x88B053, 0x7A87C6, 0xE49635,
                         0xDFC35A, 0xC4281B, 0xA59B8F, 0xB39FE1)


@dataclasses.dataclass(frozen=True)
class Display:
  """How panels show a field.

  composites: (label, band names shown as R, G, B) pairs, e.g. ('RGB',
    ('B4', 'B3', 'B2')); each is drawn when the field has those bands.
  grey: the band shown in grey (SAR's VV, the DEM's hillshade).
  palette: 0xRRGGBB per class of a categorical field.
  A mask field is shown as its values clipped to [0, 1].
  """
  composites: tuple[tuple[str, tuple[str, ...]], ...] = ()
  grey: str | None = None
  palette: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Field:
  """One field of an example (see the module docstring for each attribute)."""
  name: str
  kind: str
  description: str
  bands: tuple[str, ...]
  units: tuple[str, ...]
  dtype: type
  normalization: str | None = None
  classes: tuple[str, ...] = ()
  display: Display = Display()
  channel_axis: bool = True
  shape: tuple[int, ...] = ()          # metadata only
  encoding: str = "zlib"

  def __post_init__(self):
    problems = []
    if self.kind not in KINDS:
      problems.append(f"kind {self.kind!r} is not one of {KINDS}")
    if self.encoding not in ENCODINGS:
      problems.append(f"encoding {self.encoding!r} is not one of {ENCODINGS}")
    expected_units = len(self.bands) if self.spatial else 1
    if len(self.units) != expected_units:
      problems.append(f"{len(self.units)} units for {expected_units} band(s)")
    if self.spatial and not self.bands:
      problems.append("a raster field needs at least one band name")
    if self.spatial and not self.channel_axis and len(self.bands) != 1:
      problems.append("a raster without channel axis has exactly one band")
    if not self.spatial and (self.bands or self.normalization):
      problems.append("metadata has no bands and no normalization")
    if self.kind in ("categorical", "mask") and not self.classes:
      problems.append(f"a {self.kind} field names its classes")
    for band in self.display_bands:
      if band not in self.bands:
        problems.append(f"display band {band!r} is not one of {self.bands}")
    if problems:
      raise ValueError(f"field {self.name!r}: " + "; ".join(problems) + ".")

  @property
  def spatial(self) -> bool:
    """A raster tile (T, T[, C]), not metadata."""
    return self.kind != "metadata"

  @property
  def channels(self) -> int:
    """Bands stored per pixel (1 for a (T, T) raster)."""
    return len(self.bands)

  @property
  def display_bands(self) -> tuple[str, ...]:
    shown = [b for _, names in self.display.composites for b in names]
    return tuple(shown + ([self.display.grey] if self.display.grey else []))


def _optical(name: str, description: str) -> Field:
  return Field(
      name, "optical", description, geo_bands.S2_BANDS,
      ("reflectance",) * len(geo_bands.S2_BANDS), np.float32,
      normalization="s2",
      display=Display(composites=(("RGB", ("B4", "B3", "B2")),
                                  ("NRG", ("B8", "B4", "B3")))))


def _sar(name: str, description: str) -> Field:
  # dB barely compresses (~0.85 with zlib): stored raw to save build time.
  return Field(name, "sar", description, geo_bands.S1_BANDS,
               ("dB",) * len(geo_bands.S1_BANDS), np.float32,
               normalization="s1", display=Display(grey="VV"),
               encoding="bytes")


def _land_cover(name: str, description: str) -> Field:
  return Field(name, "categorical", description, ("label",), ("class index",),
               np.uint8, classes=geo_bands.DYNAMIC_WORLD_CLASSES,
               display=Display(palette=DYNAMIC_WORLD_COLOURS),
               channel_axis=False)


def _metadata(name: str, description: str, units: str, shape, dtype) -> Field:
  return Field(name, "metadata", description, (), (units,), dtype,
               shape=tuple(shape), encoding="none")


_DECLARED = (
    _optical("s2", "Sentinel-2 reflectance (DN / 10000)"),
    _sar("s1", "Sentinel-1 backscatter in dB"),
    _land_cover("lulc", "Dynamic World land-cover class"),
    Field("dem", "elevation",
          "Copernicus DEM and its terrain derivatives (Horn 3x3; hillshade "
          "for sun azimuth 315, altitude 45)",
          geo_bands.TERRAIN_BANDS, ("metres", "degrees", "degrees", "unitless"),
          np.float32, normalization="dem", display=Display(grey="hillshade"),
          encoding="bytes"),
    Field("valid", "mask", "1 where every source of the example has data",
          ("valid",), ("flag",), np.uint8, classes=("nodata", "valid"),
          channel_axis=False),
    _optical("s2_cloudy", "cloudy Sentinel-2 reflectance"),
    Field("cloud_mask", "mask", "cloud mask of s2_cloudy", ("cloud_mask",),
          ("class index",), np.uint8, classes=geo_bands.CLOUD_MASK_CLASSES,
          channel_axis=False),
    _optical("s2_t2", "Sentinel-2 reflectance at the second date"),
    _sar("s1_t2", "Sentinel-1 backscatter in dB at the second date"),
    _land_cover("lulc_t2", "land-cover class at the second date"),
    _optical("s2_coarse", "low-resolution optical reflectance, bilinear onto "
             "the tile grid"),
    _metadata("scene_id", "scene folder name", "text", (), object),
    _metadata("crs", "WKT of the tile's CRS", "text", (), object),
    _metadata("transform", "affine (a, b, c, d, e, f) of the tile's pixels",
              "CRS units", (6,), np.float64),
    _metadata("tile_row", "the tile's row in its scene's tiling", "tiles", (),
              np.int32),
    _metadata("tile_col", "the tile's column in its scene's tiling", "tiles",
              (), np.int32),
)
FIELDS: Mapping[str, Field] = types.MappingProxyType(
    {f.name: f for f in _DECLARED})

DEFAULT_FIELDS = ("s2", "s1", "lulc", "dem", "valid")
NUM_LULC_CLASSES = len(FIELDS["lulc"].classes)  # Dynamic World: 0..8

# name -> (channels or None for (T, T), dtype)
SPATIAL: Mapping[str, tuple[int | None, type]] = types.MappingProxyType({
    f.name: (f.channels if f.channel_axis else None, f.dtype)
    for f in _DECLARED if f.spatial})
# name -> (shape, dtype); text fields have dtype object
METADATA: Mapping[str, tuple[tuple[int, ...], type]] = types.MappingProxyType({
    f.name: (f.shape, f.dtype) for f in _DECLARED if not f.spatial})


def field(name: str) -> Field:
  """The declaration of `name`; a KeyError listing the fields otherwise."""
  try:
    return FIELDS[name]
  except KeyError:
    raise KeyError(f"unknown field {name!r}; fields are "
                   f"{sorted(SPATIAL) + sorted(METADATA)}.") from None


def spec(name: str, tile_size: int, bands: Sequence[str] | None = None
         ) -> tuple[tuple[int, ...], type]:
  """(shape, dtype) of one example's field.

  `bands`: the band set a dataset holds when it is not the declared one
  (e.g. 13 S2 bands); it sets the channel count of a field with a channel
  axis.
  """
  f = field(name)
  if not f.spatial:
    return f.shape, f.dtype
  if bands is not None and not (f.channel_axis and len(bands)):
    raise ValueError(f"field {name!r}: a band set needs a field with a "
                     f"channel axis and at least one band, got {bands!r}.")
  if not f.channel_axis:
    return (tile_size, tile_size), f.dtype
  count = f.channels if bands is None else len(bands)
  return (tile_size, tile_size, count), f.dtype


def _spatial(name: str) -> Field:
  f = field(name)
  if not f.spatial:
    raise ValueError(f"field {name!r} is metadata: it has no bands.")
  return f


def channels(name: str) -> int:
  """Declared bands of a raster field (1 for a (T, T) raster)."""
  return _spatial(name).channels


def band_names(name: str) -> tuple[str, ...]:
  """The declared band names of a raster field, in channel order."""
  return _spatial(name).bands


def band_units(name: str) -> dict[str, str]:
  """{band name: units} of a raster field."""
  f = _spatial(name)
  return dict(zip(f.bands, f.units))


def band_indices(name: str, wanted: Sequence[str],
                 available: Sequence[str] | None = None) -> tuple[int, ...]:
  """Channel indices of the `wanted` bands among `available` (default: the
  field's declared bands); a KeyError names any band that is not there."""
  available = tuple(band_names(name) if available is None else available)
  missing = [b for b in wanted if b not in available]
  if missing:
    raise KeyError(f"field {name!r}: no band(s) {missing}; its bands are "
                   f"{list(available)}.")
  return tuple(available.index(b) for b in wanted)


def fields_of_kind(*kinds: str) -> tuple[str, ...]:
  """Names of the fields of the given kinds, in declaration order."""
  unknown = sorted(set(kinds) - set(KINDS))
  if unknown:
    raise ValueError(f"unknown field kind(s) {unknown}; kinds are {KINDS}.")
  return tuple(f.name for f in _DECLARED if f.kind in kinds)


def class_names(name: str) -> tuple[str, ...]:
  """What the values 0, 1, ... of a categorical or mask field mean."""
  f = field(name)
  if not f.classes:
    raise ValueError(f"field {name!r} ({f.kind}) has no classes.")
  return f.classes


def palette(name: str) -> np.ndarray:
  """(K, 3) float32 colours in [0, 1] of a categorical field's classes."""
  colours = field(name).display.palette
  if not colours:
    raise ValueError(f"field {name!r} has no palette.")
  return np.array([[(c >> 16) & 0xFF, (c >> 8) & 0xFF, c & 0xFF]
                   for c in colours], np.float32) / 255.0


DYNAMIC_WORLD_PALETTE = palette("lulc")


# Composites of optical images whose bands are named by colour (GID-15's
# Gaofen-2, WHU-OPT-SAR's Gaofen-1; `rsjax.data.field_layout`), tried when
# the declared band names are not there.
COLOUR_COMPOSITES = (("RGB", ("red", "green", "blue")),
                     ("NRG", ("nir", "red", "green")))


def composite_bands(name: str, label: str,
                    available: Sequence[str] | None = None
                    ) -> tuple[int, ...] | None:
  """Channel indices of composite `label` ('RGB', 'NRG') of a field, among
  `available` bands (default: the declared ones), by the declared band names
  or, for an optical field, by colour names (`COLOUR_COMPOSITES`); None if a
  band is missing or the field has no such composite."""
  f = field(name)
  candidates = [dict(f.display.composites).get(label)]
  if f.kind == "optical":
    candidates.append(dict(COLOUR_COMPOSITES).get(label))
  for wanted in candidates:
    if wanted is None:
      continue
    try:
      return band_indices(name, wanted, available)
    except KeyError:
      continue
  return None


def grey_band(name: str) -> int | None:
  """Channel index of the band a field is shown with in grey, or None."""
  grey = field(name).display.grey
  return None if grey is None else band_names(name).index(grey)


def is_device_field(dtype) -> bool:
  """Whether a field can live in a sharded jax.Array (not text, not float64).

  float64 (the affine transform) stays on the host: without jax x64 it would
  be rounded to float32, which loses metres at UTM northings.
  """
  dtype = np.dtype(dtype)
  return dtype.kind not in "SUO" and dtype != np.float64
