"""Build a dataset of this repository's builders if it is not built yet.

  from data_builders import prepare
  prepare.prepare("rs_multisource/synthetic", data_dir="workdir/tensorflow_datasets")

The same as `tfds build data_builders/<name> --config <config> --data_dir ...
--file_format array_record`, from Python: ArrayRecord files give the input
pipeline O(1) random access (exact, instant resume). TFDS writes into a
temporary directory and renames it when complete, so an interrupted build is
simply redone.
"""

from __future__ import annotations

import importlib

BUILDERS = ("rs_multisource", "sen1_2", "sen12ms", "sen12ms_cr", "gid15",
            "whu_opt_sar")


def prepare(name: str, *, data_dir: str, file_format: str = "array_record"):
  """Builds `name` ('builder/config') into `data_dir` unless it exists."""
  builder_name = name.split("/")[0].split(":")[0]
  if builder_name not in BUILDERS:
    raise ValueError(f"unknown dataset {name!r}; this repository's builders: "
                     f"{', '.join(BUILDERS)}")
  # Importing the builder module registers it with TFDS.
  importlib.import_module(
      f"data_builders.{builder_name}.{builder_name}_dataset_builder")
  from rsjax.data import pipeline  # pylint: disable=g-import-not-at-top
  tfds = pipeline.import_tfds()
  builder = tfds.builder(name, data_dir=data_dir, file_format=file_format)
  builder.download_and_prepare()
  return builder
