"""Scores trained workdirs on a split: `rsjax.eval.report.evaluate.evaluate`.

  python -m launch.evaluate --workdir workdir/rs_spade --split test
  python -m launch.evaluate --workdir workdir/rs_spade --workdir workdir/pix2pix \
      --label RS-SPADE --label pix2pix --output workdir/comparison
  rsjax-evaluate --workdir ~/runs/rs_spade --split test

Each workdir's newest checkpoint (or --step) is restored with the config it
was trained with (<workdir>/config.json; --config replaces it with a config of
the same system) and scored on --split. All workdirs go into one table laid
out like the paper's (scores_<split>.md / .csv / .json), with a sample grid
per run and the runs' training curves, in --output (default <workdir>/eval
for one workdir, <parent>/comparison for several). An unknown
--config.<key> or a dataset that is not built stops it with a short message
and status 1 (`launch.user_errors`, as launch.train).

`rsjax-evaluate` is the installed command (any directory). A workdir's
config.json names its data_dir as an absolute path (or a URI); one written
before that kept the data_dir as given, read from the current directory (a
warning says so; --data_dir overrides it).
"""

from __future__ import annotations

from absl import flags, logging
from ml_collections import config_flags

from launch import commands, distributed, user_errors

_WORKDIR = flags.DEFINE_multi_string(
    "workdir", None, "Trained workdir (repeat to compare several).",
    required=True)
_LABEL = flags.DEFINE_multi_string(
    "label", None, "Row label per --workdir, in order (default: basenames).")
_SPLIT = flags.DEFINE_string("split", "test", "Dataset split to score.")
_OUTPUT = flags.DEFINE_string("output", None, "Directory for the report.")
_STEP = flags.DEFINE_integer("step", None,
                             "Checkpoint step (default: the newest).")
_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Optional config file replacing each workdir's "
    "config.json (same system), e.g. configs/rs_spade.py:demo or rs_spade:demo "
    "(launch/config_files.py).",
    lock_config=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "Override config.data.data_dir.")
_NUM_BATCHES = flags.DEFINE_integer(
    "num_batches", None, "Score only the first N batches (default: all).")
_SAMPLES = flags.DEFINE_bool("samples", True, "Write a sample grid per run.")
_CURVES = flags.DEFINE_bool("curves", True, "Write the training curves.")


def main(argv):
  del argv
  distributed.initialize()
  from rsjax.eval.report import evaluate  # pylint: disable=g-import-not-at-top
  report = evaluate.evaluate(
      _WORKDIR.value, split=_SPLIT.value, output_dir=_OUTPUT.value,
      labels=_LABEL.value, step=_STEP.value, config=_CONFIG.value,
      data_dir=_DATA_DIR.value, num_batches=_NUM_BATCHES.value,
      samples=_SAMPLES.value, curves=_CURVES.value)
  for result in report.results:
    logging.info("%s (step %d): %s", result.run.label, result.run.step,
                 result.scores)
  for name, path in report.files.items():
    print(f"{name}: {path}")


def cli():
  """The `rsjax-evaluate` command: `python -m launch.evaluate` as installed."""
  commands.as_main(__name__)
  user_errors.run(main)


if __name__ == "__main__":
  cli()
