"""The report of an rs_multisource build: what was read, kept, dropped, split.

The builder fills a `BuildReport` while it works (the tiles' classes and
ranges from each written example's statistics: added one by one in a
plain build, combined by Beam's workers in a Beam build,
`data_builders.example_statistics`; the same numbers either way) and, once every split is
written, stores it as `build_report.json` in the dataset's version folder
(`<data_dir>/rs_multisource/<config>/<version>/`, written with
`rsjax.store.atomic` inside TFDS's temporary folder, so it appears with the
dataset or not at all) and logs its `text()` on the console:

  scenes       per scene: its grid (the common extent of its sources on the
               S2 lattice) and the edge strips no tile covers, tiles in the
               grid, kept, dropped per reason ('nodata': more than
               max_nodata_fraction of pixels without data; 'split_border':
               covers blocks of two splits), each block's split and tile
               count, and why a scene yields nothing (a file without a valid
               pixel, every tile dropped).
  splits       tiles per split, their shares against the configured ratios,
               and the block size used (smaller than configured when a split
               would otherwise be empty).
  classes      per land-cover source, the pixel count of each class over the
               valid pixels of the written tiles.
  file_ranges  per source and band, the range of the files' valid values in
               the files' units (what the units check judged).
  tile_ranges  per source and band, the range of the stored values over the
               valid pixels of the written tiles (physical units).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence

import numpy as np

from data_builders import example_statistics
from rsjax.geo import units as geo_units
from rsjax.geo.tiles import SPLITS
from rsjax.store import atomic

from . import splits as splits_lib

FILENAME = "build_report.json"
# Scenes listed one per line in the text; the rest only in the JSON.
TEXT_SCENES = 8
# Drop reasons of tiles, in report order.
DROP_REASONS = ("nodata", "split_border")


@dataclasses.dataclass
class SceneReport:
  """What became of one scene."""
  scene_id: str
  grid: tuple[int, int] = (0, 0)    # (rows, cols) of its reference grid
  # Rows at the bottom and columns at the right of the grid that no tile
  # covers (narrower than a tile).
  uncovered_edge: tuple[int, int] = (0, 0)
  tiles: int = 0                    # tiles in the grid
  dropped: dict[str, int] = dataclasses.field(default_factory=dict)
  kept: int = 0
  splits: dict[str, int] = dataclasses.field(default_factory=dict)
  blocks: list[dict] = dataclasses.field(default_factory=list)
  empty_reason: str = ""            # why it yields nothing ('' if it does)


def _merge(total: dict[str, list[geo_units.BandRange]], source: str,
           ranges: Sequence[geo_units.BandRange]) -> None:
  """Accumulates band ranges of one source (min, max and counts)."""
  if source not in total:
    total[source] = [geo_units.BandRange(r.band) for r in ranges]
  for into, band in zip(total[source], ranges):
    into.count += band.count
    into.minimum = min(into.minimum, band.minimum)
    into.maximum = max(into.maximum, band.maximum)


@dataclasses.dataclass
class BuildReport:
  """The report of one build; see the module docstring."""
  config: str
  tile_size: int
  ratios: tuple[float, float, float]
  units: Mapping[str, str]                  # {source: unit in its files}
  band_names: Mapping[str, Sequence[str]]   # {source: stored bands}
  labels: Sequence[str]                     # the land-cover sources
  class_names: Sequence[str]
  scenes: dict[str, SceneReport] = dataclasses.field(default_factory=dict)
  block_size: int = 0
  configured_block_size: int = 0
  file_ranges: dict[str, list[geo_units.BandRange]] = dataclasses.field(
      default_factory=dict)
  tile_ranges: dict[str, list[geo_units.BandRange]] = dataclasses.field(
      default_factory=dict)
  classes: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

  def scene(self, scene_id: str) -> SceneReport:
    return self.scenes.setdefault(scene_id, SceneReport(scene_id))

  def add_file_ranges(self, ranges: Mapping[str, Sequence[
      geo_units.BandRange]]) -> None:
    for source, band_ranges in ranges.items():
      _merge(self.file_ranges, source, band_ranges)

  def add_plan(self, plan: splits_lib.SplitPlan,
               configured_block_size: int) -> None:
    """Records the splits of every scene's tiles and blocks."""
    self.block_size = plan.block_size
    self.configured_block_size = int(configured_block_size)
    for (scene_id, row, col), split in sorted(plan.blocks.items()):
      self.scene(scene_id).blocks.append(
          {"block": [row, col], "split": split,
           "tiles": plan.block_tiles[(scene_id, row, col)]})
    for scene_id, straddling in plan.straddling.items():
      report = self.scene(scene_id)
      report.dropped["split_border"] = straddling
      report.kept -= straddling
    for split in SPLITS:
      for scene_id, tiles in plan.tiles[split]:
        self.scene(scene_id).splits[split] = len(tiles)
    for report in self.scenes.values():
      if not report.kept:
        report.empty_reason = self.why_no_tiles(report)

  def why_no_tiles(self, report: SceneReport) -> str:
    """Why a scene yields no tile ('' if it does)."""
    if report.empty_reason or report.kept:
      return report.empty_reason
    if not report.tiles:
      return (f"its grid of {report.grid[0]} x {report.grid[1]} px holds no "
              f"tile of {self.tile_size} px")
    reasons = ", ".join(f"{count} {reason}" for reason, count in
                        report.dropped.items() if count)
    return (f"all {report.tiles} tile(s) of {self.tile_size} px dropped "
            f"({reasons})")

  def statistics_function(self):
    """example -> its `example_statistics` under this report's bands and
    classes (picklable, for Beam's workers)."""
    return functools.partial(
        example_statistics.example_statistics, band_names={k: tuple(v) for k, v in
                                     self.band_names.items()},
        labels=tuple(self.labels), num_classes=len(self.class_names))

  def add_example(self, example: Mapping[str, np.ndarray]) -> None:
    """Adds a written example's classes and value ranges (valid pixels)."""
    self.add_statistics(self.statistics_function()(example))

  def add_statistics(self, statistics: Mapping[str, Mapping]) -> None:
    """Adds the `example_statistics` of written tiles (or their sum)."""
    for source, ranges in statistics["tile_ranges"].items():
      _merge(self.tile_ranges, source, [
          geo_units.BandRange(band, count=count, minimum=low, maximum=high)
          for band, count, low, high in ranges])
    for source, counts in statistics["classes"].items():
      self.classes[source] = (self.classes.get(source, 0)
                              + np.asarray(counts, np.int64))

  @property
  def split_counts(self) -> dict[str, int]:
    return {split: sum(r.splits.get(split, 0) for r in self.scenes.values())
            for split in SPLITS}

  def as_dict(self) -> dict:
    counts = self.split_counts
    total = sum(counts.values())
    target = np.asarray(self.ratios, float) / sum(self.ratios)
    dropped = {reason: sum(r.dropped.get(reason, 0)
                           for r in self.scenes.values())
               for reason in DROP_REASONS}
    return {
        "config": self.config,
        "tile_size": self.tile_size,
        "units": dict(self.units),
        "scenes_read": len(self.scenes),
        "tiles": {"in_grids": sum(r.tiles for r in self.scenes.values()),
                  "kept": total, "dropped": dropped},
        "splits": {
            "tiles": counts,
            "shares": {s: (counts[s] / total if total else 0.0)
                       for s in SPLITS},
            "target_shares": dict(zip(SPLITS, target.tolist())),
            "block_size": self.block_size,
            "configured_block_size": self.configured_block_size,
        },
        "scenes_without_tiles": {r.scene_id: r.empty_reason
                                 for r in self.scenes.values()
                                 if r.empty_reason},
        "classes": {source: dict(zip(self.class_names, counts.tolist()))
                    for source, counts in self.classes.items()},
        "file_ranges": {source: [r.as_dict() for r in ranges]
                        for source, ranges in self.file_ranges.items()},
        "tile_ranges": {source: [r.as_dict() for r in ranges]
                        for source, ranges in self.tile_ranges.items()},
        "scenes": [dataclasses.asdict(r) for r in self.scenes.values()],
    }

  def text(self, path: str | None = None) -> str:
    """The short report printed at the end of a build (naming the JSON file
    at `path`, when given): five lines and one per scene without tiles."""
    report = self.as_dict()
    tiles, splits = report["tiles"], report["splits"]
    lines = [
        f"build report of rs_multisource/{self.config}"
        + (f" ({path})" if path else "") + ": "
        f"{report['scenes_read']} scene(s) read, "
        f"{len(report['scenes_without_tiles'])} without tiles; tiles of "
        f"{self.tile_size} px: {tiles['in_grids']} in the grids, "
        f"{tiles['kept']} kept, dropped: " + ", ".join(
            f"{reason} {count}" for reason, count in tiles["dropped"].items()),
        "  splits: " + ", ".join(
            f"{s} {splits['tiles'][s]} ({splits['shares'][s]:.0%})"
            for s in SPLITS) + " against "
        + ":".join(f"{r:g}" for r in self.ratios)
        + f", blocks of {self.block_size} px"
        + ("" if self.block_size == self.configured_block_size else
           f" (shrunk from {self.configured_block_size} px so that every "
           "split has a tile)"),
    ]
    for scene_id, reason in report["scenes_without_tiles"].items():
      lines.append(f"  no tile from {scene_id}: {reason}")
    kept = [scene for scene in self.scenes.values() if scene.kept]
    if kept:  # one line: the console of a build stays short
      shown = ", ".join(
          f"{scene.scene_id} " + "/".join(str(scene.splits.get(s, 0))
                                          for s in SPLITS)
          for scene in kept[:TEXT_SCENES])
      more = (f", ... {len(kept) - TEXT_SCENES} more in {FILENAME}"
              if len(kept) > TEXT_SCENES else "")
      lines.append(f"  tiles per scene ({'/'.join(SPLITS)}): {shown}{more}")
    lines += example_statistics.summary_lines(report["classes"],
                                              self.tile_ranges)
    return "\n".join(lines)

  def write(self, directory: str | os.PathLike) -> str:
    """Writes `build_report.json` into `directory`; returns its path."""
    return atomic.write_json(os.path.join(os.fspath(directory), FILENAME),
                             self.as_dict())
