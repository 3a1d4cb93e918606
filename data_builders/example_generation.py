"""Where a builder's examples are made: in this process, or by Apache Beam.

The builders whose datasets can grow large (rs_multisource, sen1_2, sen12ms,
sen12ms_cr) describe the work of one item (a patch, a few tiles of a scene)
as one function, item -> (key, example) pairs, and hand it, with the items of
a split, to `generate`:

  plain (the default)  a generator looping over the items in this process.
  Beam                 `beam.Create(items) | beam.FlatMap(function)`, a
                       PTransform that TFDS runs on the download config's
                       runner: Beam's DirectRunner on this machine, or a
                       cluster (Dataflow, Spark, Flink).

Both paths call the same function on the same items, so their keys and
examples cannot differ; the split of the items is decided before either
starts. A build goes through Beam when its `tfds.download.DownloadConfig`
has a `beam_runner` or `beam_options` (`beam_requested`), which is what
`tfds build ... --beam_pipeline_options=runner=...` sets; without them the
build never imports Beam.

On a cluster the function and the items are pickled to the workers: the
function is a module-level function (or a `functools.partial` of one) of a
module the workers can import, e.g. `data_builders.sen12ms.
sen12ms_dataset_builder` from the installed package, and the items hold
paths every worker can read.
"""

from __future__ import annotations

import collections.abc
from collections.abc import Callable, Iterable, Iterator, Sequence

import tensorflow_datasets as tfds

# One item -> the (key, example) pairs it gives (none for a skipped item).
ItemExamples = Callable[[object], Iterable[tuple[str, dict]]]


def beam_requested(download_config: tfds.download.DownloadConfig) -> bool:
  """Whether the build was asked to run on Beam (a runner or options set)."""
  return (download_config.beam_runner is not None
          or download_config.beam_options is not None)


def generate(items: Sequence, item_examples: ItemExamples, *, beam: bool):
  """The examples of `items`: a generator, or a Beam PTransform if `beam`.

  Args:
    items: the split's work items, in a deterministic order.
    item_examples: item -> iterable of (key, example); picklable for Beam.
    beam: build a PTransform (`beam.Create(items) | beam.FlatMap`) for TFDS
      to run on its Beam pipeline instead of a generator.
  """
  if not beam:
    return _plain(items, item_examples)
  beam_lib = tfds.core.lazy_imports_lib.lazy_imports.apache_beam
  return ("Items" >> beam_lib.Create(list(items))
          | "Examples" >> beam_lib.FlatMap(item_examples))


def _plain(items: Sequence, item_examples: ItemExamples,
           ) -> Iterator[tuple[str, dict]]:
  for item in items:
    yield from item_examples(item)


def is_beam(examples) -> bool:
  """Whether `examples` (what `generate` returned) runs on Beam."""
  return not isinstance(examples, collections.abc.Iterable)
