"""The units each source raster is declared in, and the check at the door.

A dataset builder states in which units each source file holds its values
(Sentinel-2 digital numbers or reflectance, Sentinel-1 dB or linear power,
land-cover class codes, elevation in metres) and checks every band of every
file against that declaration before it writes anything. A file that cannot
hold what is declared stops the build with a `UnitsError` that names the
file, the band, the observed range, why it does not fit and the
builder-config setting that would accept it (e.g. `s2_units='reflectance'`).

A declaration (`Units`) is a plausible value range plus the rules that tell
one unit from its neighbour, per source kind (`rsjax.geo.scene.SourceSpec`):

  optical  'dn'           whole numbers 0..65535, brightest value > 1
           'reflectance'  -0.1..6.5535
  sar      'db'           float, -60..+30, some value below 0
           'linear'       float, -0.1..1000 (= +30 dB)
  labels   'classes'      whole numbers, codes of the class table (Dynamic
                          World 0..8), or the keys of a `class_map`
  cloud_mask 'classes'    whole numbers 0..2
  dem      'metres'       -500..9000

The API:

  declared(kind, units)       the `Units` of a source kind.
  band_ranges(values, ...)    `BandRange` per band of an array: valid count,
                              min, max, whether any value has a fraction, and
                              a histogram of whole values (codes).
  scan_file(path, ...)        the same for a whole GeoTIFF, read in strips.
  check_ranges(ranges, ...)   raises `UnitsError` for the first band that
                              the declaration does not accept.
  check_range(values, ...)    band_ranges + check_ranges on an array.
  check_file(path, ...)       scan_file + check_ranges on a file.
  check_sources(paths, ...)   check_file on every file of a scene, each in
                              the units a builder config or inference
                              declares for its source.

The checks take `kind` (a source kind above) for sources that are not scene
sources (a public dataset's), a `Units` of their own (`class_codes(names)`
for another class table), and `setting`, the name of the config key that
chooses the units, for the message (`UnitsOptions` where units are chosen otherwise, e.g. by
inference's flags). The units check is run by builders and by full-scene
inference before they read a scene: the scene reader (`rsjax.geo.scene`)
itself reads what it is told.

A band without a valid pixel passes the check (it has no value to judge);
its `BandRange.count` is 0, and the caller reports the file as empty.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from rasterio.windows import Window

from rsjax.geo import bands, io
from rsjax.geo import scene as scene_lib

# A histogram of codes is kept while a band has at most this many distinct
# whole values: every class table here is far smaller, and a band with more
# is not a class raster (and fails its check on the codes it has).
MAX_CODES = 1024
# Rows read at a time by `scan_file` (a strip of a 10980-pixel-wide,
# 4-band uint16 Sentinel-2 tile is then 90 MB).
ROWS_PER_READ = 1024


class UnitsError(scene_lib.SceneError):
  """A source file holds values its declared units cannot have.

  Attributes:
    path, source, band: the file, the source name and the band (name).
    observed: (min, max) of the band's valid values.
    setting: the builder-config setting that would accept the file, e.g.
      "s2_units='reflectance'", or None when no setting does.
  """

  def __init__(self, message: str, *, path: str, source: str, band: str,
               observed: tuple[float, float], setting: str | None):
    super().__init__(message, [message])
    self.path, self.source, self.band = path, source, band
    self.observed, self.setting = observed, setting


@dataclasses.dataclass(frozen=True)
class Units:
  """What values a source file may hold in one unit.

  Attributes:
    name: the unit's name in a builder config ('dn', 'db', 'classes', ...).
    description: what the values are, for messages.
    low, high: every valid value lies in [low, high].
    whole: every valid value is a whole number (DN, class codes).
    floating: the raster's dtype is a float (an integer raster cannot hold
      calibrated backscatter).
    max_above: a band's largest value exceeds this.
    min_below: a band's smallest value is below this.
    classes: the class names, for class codes 0..len-1 (None otherwise).
  """
  name: str
  description: str
  low: float
  high: float
  whole: bool = False
  floating: bool = False
  max_above: float | None = None
  min_below: float | None = None
  classes: tuple[str, ...] | None = None


def class_codes(classes: Sequence[str]) -> Units:
  """The units of a raster of codes 0..len(classes)-1 of a class table."""
  return Units("classes", f"class codes 0..{len(classes) - 1}", 0.0,
               float(len(classes) - 1), whole=True, classes=tuple(classes))


# Sentinel-2 L1C / L2A digital numbers (`bands.S2_DN_PER_REFLECTANCE` per unit
# reflectance) are stored as uint16 with 0 as nodata. Bright clouds and snow
# reach a reflectance of about 1.5 (15000 DN; L2A's BOA_ADD_OFFSET of
# processing baseline 04.00 adds 1000), and ESA marks saturated pixels with
# 65535 = 2**16 - 1, the largest uint16. So any DN up to 65535 can occur in a
# real file, and nothing above it can: a larger value (in a float or 32-bit
# raster) is not a Sentinel-2 DN, e.g. DN x 10 or radiance. DN are whole
# numbers; a band whose brightest value is at most 1 DN (1e-4 reflectance,
# darker than deep clear water's ~50 DN in the NIR) is a reflectance or a
# mask, not DN.
S2_DN_MAX = 2**16 - 1
S2_DN = Units("dn", "Sentinel-2 digital numbers (reflectance x 10000)",
              0.0, float(S2_DN_MAX), whole=True, max_above=1.0)
# The same physical range in reflectance (65535 / 10000); the offset of
# baseline 04.00, once removed, can leave -1000 / 10000 = -0.1.
S2_REFLECTANCE = Units(
    "reflectance", "Sentinel-2 reflectance (0..1)", -0.1,
    S2_DN_MAX / bands.S2_DN_PER_REFLECTANCE)
# Sentinel-1 GRD sigma0 in dB. The smallest non-zero GRD value is one
# amplitude DN over a calibration constant of ~500-700 in IW: sigma0 =
# 1 / 600**2 = -55.6 dB, so -60 dB holds every value a file can have; the
# brightest returns (ships, corner reflectors, double bounce in cities)
# reach +25..+30 dB at 10 m. An 8-bit display stretch (0..255) exceeds +30.
# A real surface scatters below 0 dB (sigma0 < 1) almost everywhere, so a
# band without a single negative dB value is linear power (>= 0), not dB.
S1_DB = Units("db", "Sentinel-1 sigma0 in dB", -60.0, 30.0, floating=True,
              min_below=0.0)
# Linear sigma0: +30 dB is 1000. Thermal-noise removal can leave small
# negative values, at most about the noise-equivalent sigma0 of IW/EW
# (-22..-25 dB, 0.003..0.006); -0.1 bounds them with room, while dB values
# of any real scene go far below it.
S1_LINEAR = Units("linear", "Sentinel-1 sigma0 in linear power", -0.1, 1000.0,
                  floating=True)
# Elevation: the Dead Sea shore (-430 m) to Everest (8849 m), with room for
# geoid/ellipsoid differences (< 110 m). A common nodata value left unset
# (-32768, -9999) or a DEM in decimetres falls outside.
ELEVATION_METRES = Units("metres", "elevation in metres", -500.0, 9000.0)

DECLARED: Mapping[str, Mapping[str, Units]] = {
    "optical": {"dn": S2_DN, "reflectance": S2_REFLECTANCE},
    "sar": {"db": S1_DB, "linear": S1_LINEAR},
    "labels": {"classes": class_codes(bands.DYNAMIC_WORLD_CLASSES)},
    "cloud_mask": {"classes": class_codes(bands.CLOUD_MASK_CLASSES)},
    "dem": {"metres": ELEVATION_METRES},
}
# The builder-config setting that chooses the units of a source kind.
SETTINGS: Mapping[str, str] = {"optical": "s2_units", "sar": "s1_units"}


@dataclasses.dataclass(frozen=True)
class UnitsOptions:
  """How the program reading source files is told their units, for messages.

  Attributes:
    names: {source kind: the option's name}, e.g. {'optical': 's2_units'}.
    values: {source kind: {unit name: the option as a user writes it}},
      e.g. {'optical': {'reflectance': "s2_units='reflectance'"}}.
    verb, where: the fix reads "{verb} {value} {where}".
  """
  names: Mapping[str, str]
  values: Mapping[str, Mapping[str, str]]
  verb: str = "set"
  where: str = "in the builder config"

  @classmethod
  def of_builder(cls, names: Mapping[str, str] = SETTINGS) -> UnitsOptions:
    """A builder config's keys: `names[kind]='unit'`."""
    return cls(names, {kind: {unit: f"{name}={unit!r}"
                              for unit in DECLARED[kind]}
                       for kind, name in names.items()})


def declared(kind: str, units: str) -> Units:
  """The declared `Units` of a source kind ('optical', 'sar', ...)."""
  if kind not in DECLARED:
    raise ValueError(f"no units are declared for source kind {kind!r}; "
                     f"kinds: {sorted(DECLARED)}.")
  if units not in DECLARED[kind]:
    setting = SETTINGS.get(kind, "units")
    raise ValueError(f"{setting} must be one of {sorted(DECLARED[kind])} for "
                     f"{kind} sources, got {units!r}.")
  return DECLARED[kind][units]


@dataclasses.dataclass
class BandRange:
  """What the valid pixels of one band hold; `add` accumulates strips.

  Attributes:
    band: the band's name.
    count: how many valid values.
    minimum, maximum: their range (inf, -inf while count is 0).
    fraction_example: one valid value that is not a whole number, or None.
    codes: {whole value: count} while at most `MAX_CODES` distinct values
      and no fractions were seen, else None (only kept when asked for).
  """
  band: str
  count: int = 0
  minimum: float = math.inf
  maximum: float = -math.inf
  fraction_example: float | None = None
  codes: dict[int, int] | None = None

  def add(self, values: np.ndarray) -> None:
    """Adds the valid values of a strip (any shape, no NaN)."""
    values = np.asarray(values).ravel()
    if not values.size:
      return
    self.count += values.size
    self.minimum = min(self.minimum, float(values.min()))
    self.maximum = max(self.maximum, float(values.max()))
    if np.issubdtype(values.dtype, np.floating) and (
        self.fraction_example is None):
      fractional = values != np.floor(values)
      if fractional.any():
        self.fraction_example = float(values[np.argmax(fractional)])
    if self.codes is None:
      return
    if self.fraction_example is not None:
      self.codes = None
      return
    found, counts = np.unique(values, return_counts=True)
    for code, number in zip(found.tolist(), counts.tolist()):
      self.codes[int(code)] = self.codes.get(int(code), 0) + int(number)
    if len(self.codes) > MAX_CODES:
      self.codes = None

  def observed(self) -> str:
    """'0.0012..0.8763' (or 'no valid value')."""
    if not self.count:
      return "no valid value"
    return f"{self.minimum:.6g}..{self.maximum:.6g}"

  def as_dict(self) -> dict:
    """A JSON-ready summary (codes as {"code": count})."""
    result = {"band": self.band, "count": self.count}
    if self.count:
      result.update(min=self.minimum, max=self.maximum)
    if self.codes is not None:
      result["codes"] = {str(k): v for k, v in sorted(self.codes.items())}
    return result


def band_ranges(values: np.ndarray, *, band_names: Sequence[str],
                valid: np.ndarray | None = None,
                codes: bool = False) -> list[BandRange]:
  """A `BandRange` per band of `values`.

  Args:
    values: (bands, rows, cols), or (rows, cols) for one band.
    band_names: one name per band.
    valid: (rows, cols) or (bands, rows, cols) bool, True where a value is
      data; by default every finite value.
    codes: keep a histogram of whole values (for class rasters).
  """
  values = np.asarray(values)
  if values.ndim == 2:
    values = values[None]
  if values.shape[0] != len(band_names):
    raise ValueError(f"{values.shape[0]} band(s) of values for band names "
                     f"{list(band_names)}.")
  if valid is None:
    valid = np.ones(values.shape, bool)
  valid = np.broadcast_to(np.asarray(valid, bool), values.shape)
  if np.issubdtype(values.dtype, np.floating):
    valid = valid & np.isfinite(values)
  ranges = [BandRange(name, codes={} if codes else None)
            for name in band_names]
  for index, band_range in enumerate(ranges):
    band_range.add(values[index][valid[index]])
  return ranges


def scan_file(path: str | os.PathLike, *, band_names: Sequence[str],
              codes: bool = False) -> tuple[list[BandRange], str]:
  """(`BandRange` per band, dtype) of a GeoTIFF's valid pixels (GDAL's mask
  and finite values, as `rsjax.geo.io.read_window` reads them), read in
  strips of `ROWS_PER_READ` rows."""
  path = os.fspath(path)
  with io.open_raster(path, expected_bands=len(band_names)) as dataset:
    ranges = [BandRange(name, codes={} if codes else None)
              for name in band_names]
    for row in range(0, dataset.height, ROWS_PER_READ):
      window = Window(0, row, dataset.width,
                      min(ROWS_PER_READ, dataset.height - row))
      read = io.read_window(dataset, window)
      for index, band_range in enumerate(ranges):
        band_range.add(read.data[index][read.band_valid[index]])
    return ranges, dataset.dtypes[0]


def _problem(band: BandRange, units: Units, dtype: str,
             class_map: Mapping[int, int] | None) -> str | None:
  """Why `band` cannot hold `units` (None if it can)."""
  if not band.count:
    return None
  if units.floating and not np.issubdtype(np.dtype(dtype), np.floating):
    return (f"the raster is {dtype}, but {units.description} is a "
            "floating-point quantity (an integer raster holds uncalibrated "
            "or display-stretched values)")
  if units.whole and band.fraction_example is not None:
    return (f"values with a fraction (e.g. {band.fraction_example:.6g}) are "
            f"not {units.description}, which are whole numbers"
            + (" (labels resampled bilinearly, or class probabilities?)"
               if units.classes is not None else ""))
  if units.classes is not None:
    if band.codes is None:  # More distinct values than any class table.
      return (f"more than {MAX_CODES} distinct values are not "
              f"{units.description}")
    if class_map is not None:
      unknown = sorted(set(band.codes) - set(class_map))
      if unknown:
        return (f"codes {unknown} are not keys of class_map (which maps "
                f"{sorted(class_map)})")
      return None
    unknown = sorted(code for code in band.codes
                     if not units.low <= code <= units.high)
    if unknown:
      return (f"codes {unknown} are not in the class table of "
              f"{len(units.classes)} classes (0..{int(units.high)}: "
              f"{', '.join(units.classes)}); the largest code, "
              f"{max(band.codes)}, needs more classes than that")
    return None
  if band.minimum < units.low or band.maximum > units.high:
    return (f"values of {units.description} lie in "
            f"{units.low:g}..{units.high:g}")
  if units.max_above is not None and not band.maximum > units.max_above:
    return (f"its largest value is at most {units.max_above:g}, too dark "
            f"for {units.description} of any real surface")
  if units.min_below is not None and not band.minimum < units.min_below:
    return (f"no value is below {units.min_below:g}, where almost every "
            f"pixel of {units.description} lies")
  return None


def _accepting(kind: str | None, ranges: Sequence[BandRange], dtype: str,
               rejected: str) -> list[str]:
  """The other units of `kind` under which every band passes."""
  if kind not in SETTINGS:
    return []
  return [name for name, other in DECLARED[kind].items()
          if name != rejected and all(
              _problem(band, other, dtype, None) is None for band in ranges)]


def check_ranges(ranges: Sequence[BandRange], *, source: str,
                 units: str | Units, path: str | os.PathLike, dtype: str,
                 kind: str | None = None,
                 class_map: Mapping[int, int] | None = None,
                 setting: str | None = None,
                 options: UnitsOptions | None = None) -> None:
  """Raises a `UnitsError` for the first band `units` cannot hold.

  Args:
    ranges: what each band holds (`band_ranges`, `scan_file`).
    source: the source's name, e.g. 's2_t2' (for the message; its kind
      comes from `rsjax.geo.scene.SOURCE_SPECS` unless `kind` is given).
    units: a unit name declared for the kind (`DECLARED`) or a `Units`.
    path: the file the values come from.
    dtype: the file's (or array's) dtype.
    kind: the source kind when `source` is not a scene source.
    class_map: for class codes: {file code: class}; the file's codes must
      then be its keys (the classes are checked where the map is made).
    setting: the name of the builder-config key that chooses this source's
      units, for the message; `SETTINGS[kind]` by default (rs_multisource's
      's2_units' / 's1_units').
    options: how units are chosen where the file is read, when not by a
      builder config's key (inference's command-line flags); overrides
      `setting`.
  """
  path = os.fspath(path)
  if kind is None and source in scene_lib.SOURCE_SPECS:
    kind = scene_lib.SOURCE_SPECS[source].kind
  if isinstance(units, str):
    if kind is None:
      raise ValueError(f"source {source!r} is not a scene source: give its "
                       "kind, or a Units declaration.")
    units = declared(kind, units)
  for index, band in enumerate(ranges):
    problem = _problem(band, units, dtype, class_map)
    if problem is None:
      continue
    if options is None:
      options = UnitsOptions.of_builder(
          {kind: setting} if setting and kind in SETTINGS else SETTINGS)
    setting_name = options.names.get(kind)
    accepting = _accepting(kind, ranges, dtype, units.name)
    if accepting:
      accepted_by = options.values[kind][accepting[0]]
      fix = (f"{options.verb} {accepted_by} {options.where} if the file "
             f"holds {DECLARED[kind][accepting[0]].description}")
    else:
      accepted_by = None
      if units.classes is not None and band.fraction_example is not None:
        fix = ("write whole class codes into the file (resample labels with "
               "nearest neighbour)")
      elif units.classes is not None:
        fix = ("give a class_map {file code: class 0.." f"{int(units.high)}}}"
               " in the builder config (e.g. {10: 1, 20: 5, ...} for ESA "
               "WorldCover), or write the classes into the file")
      else:
        fix = (f"convert the file to {units.description}"
               + (f" (no {setting_name} accepts it)" if setting_name else ""))
    message = (
        f"{path}: band {index + 1} ({band.band}) of source {source!r} holds "
        f"{band.observed()} ({dtype}), declared as {units.description} "
        f"({units.name!r}): {problem}. To read it, {fix}.")
    raise UnitsError(message, path=path, source=source, band=band.band,
                     observed=(band.minimum, band.maximum),
                     setting=accepted_by)


def check_range(values: np.ndarray, *, source: str, units: str | Units,
                path: str | os.PathLike, band_names: Sequence[str],
                valid: np.ndarray | None = None, kind: str | None = None,
                class_map: Mapping[int, int] | None = None,
                setting: str | None = None) -> list[BandRange]:
  """Checks an array read from `path` against its declared units.

  `values` is (bands, rows, cols) or (rows, cols) in the file's own units
  and dtype (before any scaling); `valid` marks data (default: finite
  values). Returns the `BandRange` per band; raises `UnitsError` (see
  `check_ranges`).
  """
  ranges = band_ranges(values, band_names=band_names, valid=valid,
                       codes=_is_classes(units, kind, source))
  check_ranges(ranges, source=source, units=units, path=path,
               dtype=str(np.asarray(values).dtype), kind=kind,
               class_map=class_map, setting=setting)
  return ranges


def check_file(path: str | os.PathLike, *, source: str, units: str | Units,
               kind: str | None = None,
               band_names: Sequence[str] | None = None,
               class_map: Mapping[int, int] | None = None,
               setting: str | None = None,
               options: UnitsOptions | None = None) -> list[BandRange]:
  """Checks every valid pixel of a GeoTIFF against its declared units.

  `band_names` default to the scene source's (`SOURCE_SPECS`). Returns the
  `BandRange` per band; raises `UnitsError` (see `check_ranges`).
  """
  if band_names is None:
    band_names = scene_lib.SOURCE_SPECS[source].band_names
  ranges, dtype = scan_file(path, band_names=band_names,
                            codes=_is_classes(units, kind, source))
  check_ranges(ranges, source=source, units=units, path=path, dtype=dtype,
               kind=kind, class_map=class_map, setting=setting,
               options=options)
  return ranges


def source_units(source: str, *, s2_units: str, s1_units: str) -> str:
  """The unit name declared for a scene source: optical sources in
  `s2_units`, SAR in `s1_units`, the others in their kind's one unit."""
  kind = scene_lib.SOURCE_SPECS[source].kind
  return {"optical": s2_units, "sar": s1_units}.get(
      kind, next(iter(DECLARED[kind])))


def check_sources(paths: Mapping[str, str | os.PathLike], *, s2_units: str,
                  s1_units: str, class_map: Mapping[int, int] | None = None,
                  options: UnitsOptions | None = None,
                  ) -> dict[str, list[BandRange]]:
  """{source: `BandRange` per band} of a scene's files, each checked.

  `paths` maps scene source names (`rsjax.geo.scene.SOURCE_SPECS`) to their
  files, as `scene.find_sources` gives them; each file is read whole, in
  strips, and checked against `source_units`; `class_map` applies to land
  cover. A dataset build and full-scene inference both check a scene so
  before reading a tile of it.

  Raises:
    UnitsError: the first band whose values its declared units cannot hold.
  """
  ranges = {}
  for source, path in paths.items():
    kind = scene_lib.SOURCE_SPECS[source].kind
    ranges[source] = check_file(
        path, source=source,
        units=source_units(source, s2_units=s2_units, s1_units=s1_units),
        class_map=class_map if kind == "labels" else None, options=options)
  return ranges


def _is_classes(units: str | Units, kind: str | None, source: str) -> bool:
  if isinstance(units, Units):
    return units.classes is not None
  if kind is None and source in scene_lib.SOURCE_SPECS:
    kind = scene_lib.SOURCE_SPECS[source].kind
  return units == "classes" or kind in ("labels", "cloud_mask")
