"""Build a dataset of this repository's builders if it is not built yet.

  from data_builders import prepare
  prepare.prepare("rs_multisource/synthetic", data_dir="workdir/tensorflow_datasets")

  python -m data_builders.prepare rs_multisource/synthetic \
      --data_dir workdir/tensorflow_datasets
  python -m data_builders.prepare rs_multisource/geotiff \
      --data_dir workdir/tensorflow_datasets --manual_dir /path/to/scenes

The same as `tfds build data_builders/<name> --config <config> --data_dir ...
--file_format array_record` (from the repository root; from elsewhere
`tfds build <name>/<config> --imports
data_builders.<name>.<name>_dataset_builder ...`), from Python: ArrayRecord
files give the input pipeline O(1) random access (exact, instant resume).
Each stage is logged (`rsjax.console`; `--verbosity 1` for TFDS's lines). TFDS writes into a
temporary directory and renames it when complete, so an interrupted build is
simply redone. `build_command` writes the command out for a dataset: the
launchers print it when a run finds its dataset not built.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys

from rsjax import console

BUILDERS = ("rs_multisource", "sen1_2", "sen12ms", "sen12ms_cr", "gid15",
            "whu_opt_sar")
# The builder configs that make their data offline; every other config of
# these builders reads files the user put into a manual_dir.
GENERATED = ("rs_multisource/synthetic", "rs_multisource/synthetic_tiny")
MANUAL_DIR = "<your data: see the builder's MANUAL_DOWNLOAD_INSTRUCTIONS>"


def _python() -> str:
  """This Python as the user would type it (relative inside the cwd)."""
  relative = os.path.relpath(sys.executable)
  return sys.executable if relative.startswith("..") else relative


def build_command(name: str, data_dir: str | None) -> str:
  """The command that builds dataset `name` ('builder/config') into
  `data_dir` (None: TFDS's default), from any directory once the package is
  installed: this module's for this repository's builders, `tfds build` for
  TFDS's catalogue."""
  builder, _, config = name.split(":")[0].partition("/")
  if builder in BUILDERS:
    words = [_python(), "-m", "data_builders.prepare", name]
  else:
    words = ["tfds", "build", builder] + (["--config", config] if config
                                          else [])
  if data_dir:
    words += ["--data_dir", data_dir]
  if builder in BUILDERS and f"{builder}/{config}" not in GENERATED:
    words += ["--manual_dir", MANUAL_DIR]
  elif builder not in BUILDERS:
    words += ["--file_format", "array_record"]
  return " ".join(w if w == MANUAL_DIR else shlex.quote(w) for w in words)


def prepare(name: str, *, data_dir: str | None,
            file_format: str = "array_record", manual_dir: str | None = None):
  """Builds `name` ('builder/config') into `data_dir` (None: TFDS's default)
  unless it exists, reading `manual_dir` where the builder needs one."""
  builder_name = name.split("/")[0].split(":")[0]
  if builder_name not in BUILDERS:
    raise ValueError(f"unknown dataset {name!r}; this repository's builders: "
                     f"{', '.join(BUILDERS)}")
  # Importing the builder module registers it with TFDS.
  importlib.import_module(
      f"data_builders.{builder_name}.{builder_name}_dataset_builder")
  from rsjax.data import pipeline  # pylint: disable=g-import-not-at-top
  tfds = pipeline.import_tfds()
  # The builders log their own progress (rsjax.console); TFDS's bars would
  # print a line per update where the output is not a terminal.
  tfds.disable_progress_bar()
  builder = tfds.builder(name, data_dir=data_dir, file_format=file_format)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir))
  return builder


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("name", help="builder/config, e.g. "
                      "rs_multisource/synthetic")
  parser.add_argument("--data_dir", default=None,
                      help="TFDS data dir (default: TFDS's)")
  parser.add_argument("--manual_dir", default=None,
                      help="the downloaded data or scene folders, for the "
                      "builders that read them")
  parser.add_argument("--file_format", default="array_record")
  parser.add_argument("--verbosity", type=int, default=0,
                      help="1: every library's log lines, 2: also debug")
  args = parser.parse_args(argv)
  console.setup(args.verbosity)
  builder = prepare(args.name, data_dir=args.data_dir,
                    file_format=args.file_format, manual_dir=args.manual_dir)
  print(f"{args.name}: built in {builder.data_dir}")


if __name__ == "__main__":
  main()
