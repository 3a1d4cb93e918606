"""What the written examples of a build hold: counts, class histograms and
value ranges, the same whether one process or Apache Beam's workers write.

A build report (rs_multisource's `build_report`, the public datasets'
`public_report`) adds each written example's `example_statistics`: the
example count, per raster field and band [band, count, min, max] of the
stored values (over the `valid` pixels where the example has that field),
and per class field the pixel count of each class. `merge_statistics` sums
them exactly and in any order. In a plain build the builder adds the
examples one by one as TFDS writes them; in a Beam build they exist only on
the workers, so `with_statistics` branches a split's PTransform: every
example is mapped to its statistics, Beam combines them with
`merge_statistics`, and one worker writes the sum as JSON into the
dataset's temporary folder (TFDS's, renamed only once the whole build
succeeds). After the pipeline, `take_split_statistics` reads a split's file
and deletes it: the numbers equal the plain build's, and a failed build
leaves no file behind that looks complete.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from rsjax.geo import units as geo_units
from rsjax.store import atomic

FILENAME = "tile_statistics-{split}.json"


def example_statistics(example: Mapping[str, np.ndarray], *,
                       band_names: Mapping[str, Sequence[str]],
                       labels: Sequence[str], num_classes: int) -> dict:
  """What one written example adds to a report, as JSON-ready data.

  Over the example's valid pixels (its `valid` field; every pixel when it
  has none): per field of `band_names` and band [band, count, min, max] of
  the stored values, and per class field in `labels` the pixel count of
  each class 0..num_classes - 1 (codes beyond widen the histogram).
  """
  statistics = {"examples": 1, "tile_ranges": {}, "classes": {}}
  valid = example.get("valid")
  for source, names in band_names.items():
    values = np.asarray(example[source])
    if values.ndim == 2:
      values = values[..., None]
    values = (values.reshape(-1, values.shape[-1]) if valid is None else
              values[np.asarray(valid).astype(bool)])  # (pixels, bands)
    ranges = geo_units.band_ranges(values.T[:, :, None], band_names=names)
    statistics["tile_ranges"][source] = [
        [r.band, r.count, r.minimum, r.maximum] for r in ranges]
    if source in labels:
      statistics["classes"][source] = np.bincount(
          values[:, 0].astype(np.int64), minlength=num_classes).tolist()
  return statistics


def merge_statistics(statistics: Iterable[Mapping[str, Mapping]]) -> dict:
  """The sum of `example_statistics` (counts added, ranges widened); new
  data, the inputs are not changed. Exact and independent of order, so
  examples counted on many Beam workers give the numbers of a plain build."""
  merged = {"examples": 0, "tile_ranges": {}, "classes": {}}
  for one in statistics:
    merged["examples"] += one.get("examples", 0)
    for source, ranges in one["tile_ranges"].items():
      into = merged["tile_ranges"].setdefault(
          source, [[band, 0, math.inf, -math.inf] for band, *_ in ranges])
      for row, (_, count, low, high) in zip(into, ranges):
        row[1] += count
        row[2] = min(row[2], low)
        row[3] = max(row[3], high)
    for source, counts in one["classes"].items():
      total = merged["classes"].get(source, [])
      width = max(len(total), len(counts))
      total = total + [0] * (width - len(total))
      counts = list(counts) + [0] * (width - len(counts))
      merged["classes"][source] = [a + b for a, b in zip(total, counts)]
  return merged


def summary_lines(classes: Mapping[str, Mapping[str, int]],
                  ranges: Mapping[str, Sequence[geo_units.BandRange]]
                  ) -> list[str]:
  """A report's console lines of class shares and stored band ranges: one
  line each, whatever the number of fields."""
  lines = []
  shares = []
  for source, counts in classes.items():
    total = sum(counts.values()) or 1
    shares.append(f"{source} " + ", ".join(
        f"{name} {count / total:.1%}" for name, count in counts.items()))
  if shares:
    lines.append("  classes: " + "; ".join(shares))
  if ranges:
    lines.append("  stored ranges: " + "; ".join(
        f"{source} " + ", ".join(f"{r.band} {r.observed()}" for r in bands)
        for source, bands in ranges.items()))
  return lines


def _path(directory: str, split: str) -> str:
  return str(epath.Path(directory) / FILENAME.format(split=split))


def _write(statistics: dict, path: str) -> None:
  atomic.write_json(path, statistics)


def with_statistics(examples, statistics_of: Callable[[dict], dict],
                    directory: str, split: str):
  """`examples` (a PTransform of (key, example)) with a branch that writes
  the split's merged statistics to `directory`; yields the examples."""
  beam = tfds.core.lazy_imports_lib.lazy_imports.apache_beam
  path = _path(directory, split)

  @beam.ptransform_fn
  def examples_and_statistics(pipeline):
    written = pipeline | "Generate" >> examples
    _ = (written
         | "Examples" >> beam.Values()
         | "Statistics" >> beam.Map(statistics_of)
         | "Merge" >> beam.CombineGlobally(merge_statistics)
         | "Write" >> beam.Map(_write, path))
    return written

  return examples_and_statistics()  # pylint: disable=no-value-for-parameter


def take_split_statistics(directory: str, split: str) -> dict:
  """The statistics file a Beam build wrote for `split`, deleted once read."""
  path = epath.Path(_path(directory, split))
  statistics = json.loads(path.read_text())
  path.unlink()
  return statistics
