"""The build report of a public dataset: what was found, written and skipped.

Every build of a public-dataset builder (`public_common.ManualBuilder`:
SEN1-2, SEN12MS, SEN12MS-CR, GID-15, WHU-OPT-SAR) writes `build_report.json`
into the dataset's version folder (inside TFDS's temporary folder, so it
appears with the dataset or not at all) and logs a short summary:

  items     per split, the items (patches, scenes) found in manual_dir and
            the groups (scenes) they belong to.
  examples  per split, the examples written; for patch datasets, items minus
            examples are the patches skipped for non-finite or nodata
            pixels (each is named in the log as it is skipped); for scene
            datasets, examples are tiles.
  classes   per class field (`lulc`, `cloud_mask`), the pixel count of each
            class, by the names the dataset records.
  ranges    per raster field and band, the range of the stored values.

The numbers come from each written example (`example_statistics`), the same
in a plain and a Beam build.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import numpy as np

from data_builders import example_statistics
from rsjax.data import field_layout
from rsjax.data import fields as fields_lib
from rsjax.geo import units as geo_units
from rsjax.store import atomic
from rsjax.store import paths

FILENAME = "build_report.json"
CLASS_KINDS = ("categorical", "mask")


@dataclasses.dataclass
class PublicReport:
  """The report of one public-dataset build; see the module docstring."""
  dataset: str
  layouts: Mapping[str, field_layout.FieldLayout]   # the raster fields
  items: dict[str, int] = dataclasses.field(default_factory=dict)
  groups: dict[str, int] = dataclasses.field(default_factory=dict)
  examples: dict[str, int] = dataclasses.field(default_factory=dict)
  ranges: dict[str, list[geo_units.BandRange]] = dataclasses.field(
      default_factory=dict)
  classes: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

  @property
  def labels(self) -> tuple[str, ...]:
    return tuple(name for name in self.layouts
                 if fields_lib.field(name).kind in CLASS_KINDS)

  def statistics_function(self):
    """example -> its `example_statistics` (picklable, for Beam)."""
    width = max([len(self.layouts[n].classes) for n in self.labels] or [0])
    return functools.partial(
        example_statistics.example_statistics,
        band_names={name: tuple(layout.bands)
                    for name, layout in self.layouts.items()},
        labels=self.labels, num_classes=width)

  def add_statistics(self, split: str, statistics: Mapping) -> None:
    """Adds written examples' statistics (or their sum) of `split`."""
    self.examples[split] = (self.examples.get(split, 0)
                            + statistics.get("examples", 0))
    for source, rows in statistics["tile_ranges"].items():
      if source not in self.ranges:
        self.ranges[source] = [geo_units.BandRange(band) for band, *_ in rows]
      for into, (_, count, low, high) in zip(self.ranges[source], rows):
        into.count += count
        into.minimum = min(into.minimum, low)
        into.maximum = max(into.maximum, high)
    for source, counts in statistics["classes"].items():
      counts = np.asarray(counts, np.int64)
      total = self.classes.get(source, np.zeros(0, np.int64))
      width = max(len(total), len(counts))
      self.classes[source] = (np.pad(total, (0, width - len(total)))
                              + np.pad(counts, (0, width - len(counts))))

  def reported(self, split: str, examples):
    """Yields `examples` ((key, example) pairs), adding each to `split`."""
    statistics_of = self.statistics_function()
    for key, example in examples:
      self.add_statistics(split, statistics_of(example))
      yield key, example

  def class_counts(self, source: str) -> dict[str, int]:
    names = self.layouts[source].classes
    counts = self.classes.get(source, ())
    return {(names[i] if i < len(names) else f"code {i}"): int(c)
            for i, c in enumerate(counts) if c}

  def as_dict(self) -> dict:
    return {
        "dataset": self.dataset,
        "items": dict(self.items), "groups": dict(self.groups),
        "examples": dict(self.examples),
        "not_written": {split: self.items[split] - self.examples.get(split, 0)
                        for split in self.items},
        "classes": {source: self.class_counts(source)
                    for source in self.classes},
        "ranges": {source: [{"band": r.band, "count": r.count,
                             "min": r.minimum, "max": r.maximum}
                            for r in ranges]
                   for source, ranges in self.ranges.items()},
    }

  def text(self, path: str | None = None) -> str:
    """The short summary printed at the end of a build (naming the JSON
    file at `path`, when given)."""
    report = self.as_dict()
    splits = list(self.items)
    lines = [
        f"build report of {self.dataset}"
        + (f" ({path})" if path else "") + ": "
        + ", ".join(f"{s} {self.items[s]} item(s) of {self.groups[s]} "
                    f"group(s)" for s in splits),
        "  examples written: " + ", ".join(
            f"{s} {report['examples'].get(s, 0)}"
            + (f" ({report['not_written'][s]} item(s) gave none)"
               if report["not_written"][s] > 0 else "") for s in splits),
    ]
    lines += example_statistics.summary_lines(report["classes"], self.ranges)
    return "\n".join(lines)

  def write(self, directory: str) -> str:
    """Writes `build_report.json` into `directory`; returns its path."""
    path = paths.join(directory, FILENAME)
    atomic.write_json(path, self.as_dict())
    return path


def new_report(dataset: str, metadata, feature_names: Sequence[str]
               ) -> PublicReport:
  """An empty report of the raster fields among `feature_names`, with the
  bands and classes the dataset's metadata records."""
  names = [n for n in feature_names
           if n in fields_lib.FIELDS and fields_lib.field(n).spatial]
  return PublicReport(dataset,
                      field_layout.from_metadata(metadata, names))
