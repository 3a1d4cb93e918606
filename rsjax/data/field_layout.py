"""What each field of a built dataset holds: its bands, their units, its classes.

The field declaration (`rsjax.data.fields`) names each field's role (`s2` the
optical image, `s1` the SAR, `lulc` the class map, ...) and its default
content: Sentinel-2 B2, B3, B4, B8 reflectance, Sentinel-1 VV, VH in dB,
Dynamic World classes. A published dataset often holds something else in the
same role: SEN1-2's optical image is 8-bit B4, B3, B2 and its SAR 8-bit VV;
SEN12MS's is 13 bands; GID-15's is Gaofen-2 8-bit blue, green, red, NIR with 15
classes. A `FieldLayout` says what one field of one dataset holds:

  bands    band names in channel order (one name for a (T, T) raster)
  units    one per band: 'reflectance', 'dB', `DN8` (8-bit digital numbers,
           as the papers normalize them: [0, 255] onto [-1, 1]), 'metres', ...
  classes  what the values 0, 1, ... of a categorical field mean

Builders whose fields differ from the declaration store their layouts in the
dataset's metadata (`to_metadata`, under `METADATA_KEY`); `from_metadata`
reads them back, with the declaration for every field a dataset does not
describe (rs_multisource writes the declared layouts and needs no metadata).

`config.data.bands` ({field: band names}) picks bands by name from whatever a
dataset holds (`select`, an error naming the missing bands and the config
key). Without it a field's declared bands are picked by name, so a 13-band
SEN12MS `s2` gives B2, B3, B4, B8; a dataset that lacks a declared band needs
the key. The bands a run uses (`run_bands`) are what its networks are built
for, so they come from the config alone, before any data is read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from rsjax.data import fields as fields_lib

METADATA_KEY = "field_layouts"
DN8 = "digital number (8-bit)"
BANDS_KEY = "config.data.bands"


class MissingBands(KeyError):
  """A run asks for bands a dataset does not hold; the message says which."""

  def __str__(self) -> str:
    return str(self.args[0])  # a sentence, not a key to quote


class DatasetMismatch(ValueError):
  """What a dataset holds cannot feed the run (units, class count)."""


@dataclasses.dataclass(frozen=True)
class FieldLayout:
  """What one field of a dataset holds (see the module docstring)."""
  bands: tuple[str, ...]
  units: tuple[str, ...]
  classes: tuple[str, ...] = ()

  def __post_init__(self):
    if not self.bands or len(self.units) != len(self.bands):
      raise ValueError(f"a field layout needs one unit per band, got bands "
                       f"{self.bands} and units {self.units}.")


def declared(name: str) -> FieldLayout:
  """The layout the field declaration gives `name`."""
  f = fields_lib.field(name)
  if not f.spatial:
    raise ValueError(f"field {name!r} is metadata: it has no layout.")
  return FieldLayout(f.bands, f.units, f.classes)


def layout(name: str, *, bands: Sequence[str] | None = None,
           units: str | Sequence[str] | None = None,
           classes: Sequence[str] | None = None) -> FieldLayout:
  """The declared layout of `name` with what a dataset holds instead: its
  `bands`, its `units` (one for all bands or one per band), its `classes`."""
  base = declared(name)
  bands = tuple(bands) if bands is not None else base.bands
  if units is None:
    units = base.units if bands == base.bands else None
    if units is None:
      by_band = dict(zip(base.bands, base.units))
      missing = [b for b in bands if b not in by_band]
      if missing:
        raise ValueError(f"field {name!r}: give the units of band(s) "
                         f"{missing}, which the declaration does not have.")
      units = tuple(by_band[b] for b in bands)
  elif isinstance(units, str):
    units = (units,) * len(bands)
  classes = tuple(classes) if classes is not None else base.classes
  return FieldLayout(bands, tuple(units), classes)


def to_metadata(layouts: Mapping[str, FieldLayout]) -> dict[str, Any]:
  """{METADATA_KEY: {field: {bands, units, classes}}}, JSON-able, for a
  builder's `tfds.core.MetadataDict`."""
  return {METADATA_KEY: {
      name: {"bands": list(l.bands), "units": list(l.units),
             "classes": list(l.classes)} for name, l in layouts.items()}}


def from_metadata(metadata: Mapping[str, Any] | None,
                  names: Sequence[str]) -> dict[str, FieldLayout]:
  """{field: layout} of the raster fields among `names`: the dataset's
  stored layout where its metadata has one, the declaration otherwise."""
  stored = dict((metadata or {}).get(METADATA_KEY) or {})
  result = {}
  for name in names:
    if not fields_lib.field(name).spatial:
      continue
    entry = stored.get(name)
    result[name] = declared(name) if entry is None else FieldLayout(
        tuple(entry["bands"]), tuple(entry["units"]),
        tuple(entry.get("classes") or ()))
  return result


def run_bands(bands_config: Mapping[str, Sequence[str]] | None,
              name: str) -> tuple[str, ...]:
  """The bands of field `name` a run uses: `config.data.bands[name]`, or the
  declared ones."""
  chosen = dict(bands_config or {}).get(name)
  if chosen is None:
    return fields_lib.band_names(name)
  if isinstance(chosen, str):
    chosen = (chosen,)
  chosen = tuple(chosen)
  if not chosen or len(set(chosen)) != len(chosen):
    raise ValueError(f"{BANDS_KEY}[{name!r}] must name distinct bands, got "
                     f"{list(chosen)}.")
  return chosen


def check_bands_config(bands_config, fields: Sequence[str]) -> None:
  """Raises for `config.data.bands` keys that are not raster fields of the
  run, and for a band set on a field without a channel axis."""
  for name in dict(bands_config or {}):
    if name not in fields:
      raise KeyError(f"{BANDS_KEY} names field {name!r}, which is not in "
                     f"config.data.fields {list(fields)}.")
    f = fields_lib.field(name)
    if not (f.spatial and f.channel_axis):
      raise ValueError(f"{BANDS_KEY}[{name!r}]: field {name!r} has no "
                       "channel axis to select bands from.")
    run_bands(bands_config, name)


def select(name: str, stored: FieldLayout, wanted: Sequence[str],
           dataset: str = "the dataset") -> tuple[tuple[int, ...],
                                                  FieldLayout]:
  """(channel indices, layout) of the `wanted` bands of a field stored as
  `stored`; `MissingBands` naming the missing bands, what the dataset has and
  the config key that picks others."""
  missing = [b for b in wanted if b not in stored.bands]
  if missing:
    raise MissingBands(
        f"field {name!r} of {dataset} has bands {list(stored.bands)}, not "
        f"{missing}; pick bands it has with "
        f"--config.data.bands=\"{{'{name}': {tuple(stored.bands)!r}}}\" (a "
        "subset, in the order the networks should see them).")
  indices = tuple(stored.bands.index(b) for b in wanted)
  return indices, FieldLayout(tuple(wanted),
                              tuple(stored.units[i] for i in indices),
                              stored.classes)


def run_layouts(stored: Mapping[str, FieldLayout], bands_config,
                dataset: str = "the dataset"
                ) -> tuple[dict[str, tuple[int, ...] | None],
                           dict[str, FieldLayout]]:
  """({field: channel indices, or None to keep all}, {field: layout}) of a
  run reading fields stored as `stored` with `config.data.bands`."""
  indices, layouts = {}, {}
  for name, held in stored.items():
    f = fields_lib.field(name)
    if not f.channel_axis:
      indices[name], layouts[name] = None, held
      continue
    wanted = run_bands(bands_config, name)
    chosen, layouts[name] = select(name, held, wanted, dataset)
    indices[name] = None if chosen == tuple(range(len(held.bands))) \
        else chosen
  return indices, layouts
