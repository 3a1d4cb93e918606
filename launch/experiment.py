"""Runs an experiment config: several training runs and one result table.

  python -m launch.experiment --config configs/augment.py:demo --workdir workdir/augment \
      --config.generator_workdir=workdir/demo
  python -m launch.experiment --config configs/fusion_study.py:demo \
      --workdir workdir/fusion_study

`config.experiment` picks the runner: 'augmentation'
(`rsjax.eval.experiments.augmentation.run_augmentation`) or 'fusion_study'
(`rsjax.eval.experiments.fusion_study.run_fusion_study`). Re-running with the same
--workdir resumes: finished runs are kept, unfinished ones resume from their
checkpoints. Compiled programs are cached in <workdir>/compilation_cache
unless JAX_COMPILATION_CACHE_DIR names another cache. The workdir may be on
object storage (`gs://BUCKET/augment`): every table, plot, rows file and
sub-run is written there; the augmentation experiment's generated arrays
stay in a local folder (`config.generated_dir`, by default one under TMPDIR
named after the workdir).
An unknown --config.<key> or a dataset that is not built stops it with a
short message and status 1 (`launch.user_errors`, as launch.train).
"""

from __future__ import annotations

from absl import flags, logging
from ml_collections import config_flags

from launch import user_errors
from rsjax.store import paths

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config, e.g. configs/augment.py:demo.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Runs, tables and plots.",
                               required=True)

RUNNERS = {
    "augmentation": "rsjax.eval.experiments.augmentation:run_augmentation",
    "fusion_study": "rsjax.eval.experiments.fusion_study:run_fusion_study",
}


def main(argv):
  del argv
  import importlib  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  kind = _CONFIG.value.get("experiment")
  if kind not in RUNNERS:
    raise ValueError(f"config.experiment: unknown experiment {kind!r}; valid: "
                     f"{', '.join(RUNNERS)}")
  paths.check_reachable(_WORKDIR.value)
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir",
                      paths.join(_WORKDIR.value, "compilation_cache"))
  from rsjax.train import preemption, trainer  # pylint: disable=g-import-not-at-top
  module, _, function = RUNNERS[kind].partition(":")
  try:
    result = getattr(importlib.import_module(module), function)(
        _CONFIG.value, _WORKDIR.value)
  except preemption.Preempted as stopped:
    logging.warning("%s", stopped)
    return stopped.exit_status  # app.run exits with it: 143 for SIGTERM
  logging.info("%s: %s", kind, result.get("rows"))
  return 0


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  user_errors.run(main)
