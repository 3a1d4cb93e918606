"""A Beam build equals the plain build, example for example (issue 16).

Each builder that can build on Apache Beam (rs_multisource's geotiff config,
sen1_2, sen12ms, sen12ms_cr) builds its dummy data twice, into two data
dirs: plainly, and with Beam's DirectRunner in this process (the runner set
in the download config, as `tfds build --beam_pipeline_options=...` does).
The two must hold the same splits with the same examples under the same
keys (each example's identity fields, which are its key), every feature
bitwise equal, and the same metadata and split sizes; rs_multisource's
build reports must be equal too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

import apache_beam as beam
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_builders import example_statistics
from data_builders.rs_multisource import build_report
from data_builders.rs_multisource import rs_multisource_dataset_builder as rsms
from data_builders.sen12ms import sen12ms_dataset_builder as sen12ms
from data_builders.sen12ms_cr import sen12ms_cr_dataset_builder as sen12ms_cr
from data_builders.sen1_2 import sen1_2_dataset_builder as sen1_2

HERE = pathlib.Path(__file__).resolve().parent
GEOTIFF_TEST = dataclasses.replace(rsms.GEOTIFF, name="geotiff_test",
                                   tile_size=32, block_size=32)


class CountingDirectRunner(beam.runners.DirectRunner):
  """Beam's DirectRunner, counting the pipelines it runs."""
  pipelines = 0

  def run_pipeline(self, pipeline, options):
    type(self).pipelines += 1
    return super().run_pipeline(pipeline, options)


def _patch_key(example) -> str:
  return example["id"].decode()


def _tile_key(example) -> str:
  return (f"{example['scene_id'].decode()}/{int(example['tile_row']):04d}_"
          f"{int(example['tile_col']):04d}")


# (builder class, config, dummy manual_dir, an example's key)
CASES = {
    "rs_multisource_geotiff": (rsms.Builder, GEOTIFF_TEST,
                               HERE / "rs_multisource" / "dummy_data",
                               _tile_key),
    "sen1_2": (sen1_2.Builder, None, HERE / "sen1_2" / "dummy_data",
               _patch_key),
    "sen12ms": (sen12ms.Builder, "rgbn", HERE / "sen12ms" / "dummy_data",
                _patch_key),
    "sen12ms_cr": (sen12ms_cr.Builder, "all",
                   HERE / "sen12ms_cr" / "dummy_data", _patch_key),
}


def _build(case, data_dir, *, runner=None):
  builder_class, config, manual_dir, _ = CASES[case]
  kwargs = {} if config is None else {"config": config}
  builder = builder_class(data_dir=str(data_dir), **kwargs)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          manual_dir=str(manual_dir), beam_runner=runner,
          # Beam's options without pytest's command line.
          beam_options=(None if runner is None else
                        beam.options.pipeline_options.PipelineOptions([]))),
      file_format="array_record")
  return builder


def _examples(builder, split, key_of) -> dict:
  examples = {}
  for example in builder.as_data_source(split=split):
    key = key_of(example)
    assert key not in examples, key
    examples[key] = example
  return examples


def _assert_bitwise_equal(plain, beamed, where):
  assert plain.keys() == beamed.keys(), where
  for name in plain:
    a, b = np.asarray(plain[name]), np.asarray(beamed[name])
    assert (a.dtype, a.shape) == (b.dtype, b.shape), (where, name)
    assert a.tobytes() == b.tobytes(), (where, name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_beam_build_equals_plain_build(case, tmp_path):
  plain = _build(case, tmp_path / "plain")
  before = CountingDirectRunner.pipelines
  beamed = _build(case, tmp_path / "beam", runner=CountingDirectRunner())
  assert CountingDirectRunner.pipelines == before + 1  # built on Beam
  assert plain.info.metadata == beamed.info.metadata
  assert (plain.info.features.to_json_content()
          == beamed.info.features.to_json_content())
  assert set(plain.info.splits) == set(beamed.info.splits)
  key_of = CASES[case][3]
  for split in plain.info.splits:
    assert (plain.info.splits[split].num_examples
            == beamed.info.splits[split].num_examples > 0), split
    assert (plain.info.splits[split].num_bytes
            == beamed.info.splits[split].num_bytes), split
    plain_examples = _examples(plain, split, key_of)
    beam_examples = _examples(beamed, split, key_of)
    assert plain_examples.keys() == beam_examples.keys(), split
    for key, example in plain_examples.items():
      _assert_bitwise_equal(example, beam_examples[key], (split, key))
  reports = [json.loads(pathlib.Path(builder.data_dir, build_report.FILENAME)
                        .read_text()) for builder in (plain, beamed)]
  assert reports[0] == reports[1]
  if case.startswith("rs_multisource"):
    assert reports[0]["classes"]["lulc"] and reports[0]["tile_ranges"]["s2"]
  else:  # public_report: examples per split and the stored ranges
    assert reports[0]["examples"] == {
        split: plain.info.splits[split].num_examples
        for split in plain.info.splits}
    assert reports[0]["ranges"]["s2"]
  assert not [name for name in os.listdir(beamed.data_dir)
              if name.startswith(example_statistics.FILENAME.split("{")[0])]
