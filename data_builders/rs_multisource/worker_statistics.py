"""The build report's tile numbers when Apache Beam's workers write the tiles.

In a plain build the builder adds each written example to its report
(`BuildReport.add_example`). In a Beam build the examples exist only on the
workers, so `with_statistics` branches a split's PTransform: every example
is mapped to its `build_report.tile_statistics` (the function the plain build
uses), Beam combines them with `build_report.merge_statistics` (exact and
independent of order) and one worker writes the sum as JSON into the
dataset's temporary folder (TFDS's, renamed only once the whole build
succeeds). After the pipeline, `collect` reads each split's file into the
report and deletes it: the report equals the plain build's, and a failed
build leaves no file behind that looks complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import tensorflow_datasets as tfds
from etils import epath

from rsjax.store import atomic

from . import build_report as build_report_lib

FILENAME = "tile_statistics-{split}.json"


def _path(directory: str, split: str) -> str:
  return str(epath.Path(directory) / FILENAME.format(split=split))


def _write(statistics: dict, path: str) -> None:
  atomic.write_json(path, statistics)


def with_statistics(examples, statistics_of: Callable[[dict], dict],
                    directory: str, split: str):
  """`examples` (a PTransform of (key, example)) with a branch that writes
  the split's merged tile statistics to `directory`; yields the examples."""
  beam = tfds.core.lazy_imports_lib.lazy_imports.apache_beam
  path = _path(directory, split)

  @beam.ptransform_fn
  def examples_and_statistics(pipeline):
    written = pipeline | "Generate" >> examples
    _ = (written
         | "Examples" >> beam.Values()
         | "TileStatistics" >> beam.Map(statistics_of)
         | "Merge" >> beam.CombineGlobally(build_report_lib.merge_statistics)
         | "Write" >> beam.Map(_write, path))
    return written

  return examples_and_statistics()  # pylint: disable=no-value-for-parameter


def collect(report: build_report_lib.BuildReport, directory: str,
            splits: Sequence[str]) -> None:
  """Adds the statistics files of `splits` to `report` and deletes them."""
  for split in splits:
    path = epath.Path(_path(directory, split))
    report.add_statistics(json.loads(path.read_text()))
    path.unlink()
