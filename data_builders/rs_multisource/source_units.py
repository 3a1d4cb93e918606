"""The units of each source of an rs_multisource config, checked per scene.

Before any tile is read, every file of every scene is scanned once and each
band is checked against the units the config declares for it
(`rsjax.geo.units`): optical sources in `s2_units` ('dn' or 'reflectance'),
SAR in `s1_units` ('linear' or 'db'), land cover as codes of the Dynamic World
table (or the keys of `class_map`), the cloud mask as 0/1/2, the DEM in
metres. A file that does not fit stops the build with a
`rsjax.geo.units.UnitsError` naming the file, the band, the observed range and
the setting that would accept it. A file without any valid pixel passes; the
scene is then reported as yielding no tile (`empty_sources`).
"""

from __future__ import annotations

from collections.abc import Mapping

from rsjax.geo import units as geo_units

from . import scenes as scenes_lib


def declared_units(source: str, *, s2_units: str, s1_units: str) -> str:
  """The unit name a config declares for one source."""
  return geo_units.source_units(source, s2_units=s2_units, s1_units=s1_units)


def check_scene(scene: scenes_lib.Scene, *, s2_units: str, s1_units: str,
                class_map: Mapping[int, int] | None = None,
                ) -> dict[str, list[geo_units.BandRange]]:
  """{source: `BandRange` per band} of a scene's files, each checked.

  Raises:
    rsjax.geo.units.UnitsError: the first band whose values its declared
      units cannot hold.
  """
  return geo_units.check_sources(scene.paths, s2_units=s2_units,
                                 s1_units=s1_units, class_map=class_map)


def empty_sources(scene: scenes_lib.Scene,
                  ranges: Mapping[str, list[geo_units.BandRange]]) -> str:
  """'' when every source has data, else why the scene yields nothing, e.g.
  'no valid pixel in .../s2.tif (bands B2, B3, B4, B8: all nodata)'."""
  reasons = []
  for source, band_ranges in ranges.items():
    empty = [band.band for band in band_ranges if not band.count]
    if empty:
      reasons.append(f"no valid pixel in {scene.paths[source]} (band"
                     f"{'s' if len(empty) > 1 else ''} {', '.join(empty)}: "
                     "all nodata)")
  return "; ".join(reasons)
