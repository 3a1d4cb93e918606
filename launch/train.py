"""Trains an experiment config: `rsjax.train.trainer.train_and_evaluate`.

  python -m launch.train --config configs/rs_spade.py:demo --workdir workdir/rs_spade
  python -m launch.train --config configs/pix2pix.py --workdir gs://bucket/pix2pix \
      --config.data.batch_size=64 --distributed
  rsjax-train --config rs_spade:demo --workdir ~/runs/rs_spade

Installed (`pip install -e .`), `rsjax-train` is the same command, and both
work from any directory: --config is a config file path, or one of this
project's configs by name (`rs_spade:demo`; `configs/rs_spade.py:demo` is
found in the installed package too when the current directory has no such
file; launch/config_files.py). The workdir's config.json keeps the data_dir
as an absolute path (or its URI), for launch.evaluate and launch.infer.

Re-running with the same --workdir resumes from its newest checkpoint that
restores; newer damaged ones are moved to <workdir>/checkpoints_damaged/ with
a warning (none restoring stops the run naming each step). A run locks its
workdir (<workdir>/LOCK): a second run on it while the first is alive exits
with status 1 at once, naming the first (host, pid, start time). A lock left
by a dead process on the same host is taken over with a warning;
--force_unlock takes over any lock (e.g. of a run on a host that is gone).
SIGTERM (pre-emption, `scancel`) saves a checkpoint and exits with status 143
(128 + SIGTERM) instead of 0, so a scheduler requeues the run rather than
taking it for finished. On a pod or multi-node cluster pass --distributed on
every process (see launch/tpu_pod.sh and launch/gpu_slurm.sh; elsewhere with
--coordinator_address, --num_processes and --process_id, launch/distributed.py);
a SIGTERM to any of them stops all after the same step. --workdir may be on
object storage (gs://bucket/run).

Mistakes end in a short message and status 1, before the workdir is created
(`launch.user_errors`): an unknown --config.<key> names the key and the
closest valid keys; a dataset that is not built names the dataset and
data_dir and prints the command that builds it; a training split smaller
than one batch names the split, its size and the batch size; a step count
below 1 or an unknown system names the config key.
"""

from __future__ import annotations

from absl import flags, logging
from ml_collections import config_flags

from launch import commands, distributed, user_errors

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/rs_spade.py:demo, "
    "or a config by name, e.g. rs_spade:demo (launch/config_files.py).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, logs, samples.",
                               required=True)
_FORCE_UNLOCK = flags.DEFINE_bool(
    "force_unlock", False,
    "Take the workdir's lock over from any holder (warns naming it). Only "
    "when that run is certainly not running: two runs on one workdir write "
    "over each other.")


def main(argv):
  del argv
  distributed.initialize()
  from rsjax.store import workdir_lock  # pylint: disable=g-import-not-at-top
  from rsjax.train import preemption, trainer  # pylint: disable=g-import-not-at-top
  try:
    scores = trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value,
                                        force_unlock=_FORCE_UNLOCK.value)
  except (workdir_lock.WorkdirLocked, trainer.ConfigError) as refused:
    logging.error("%s", refused)
    return 1
  except preemption.Preempted as stopped:
    logging.warning("%s", stopped)
    return stopped.exit_status  # app.run exits with it: 143 for SIGTERM
  del scores  # the trainer has logged them
  logging.info("done: %s", _WORKDIR.value)
  return 0


def cli():
  """The `rsjax-train` command: `python -m launch.train` as installed."""
  commands.as_main(__name__)
  flags.mark_flags_as_required(["config"])
  user_errors.run(main)


if __name__ == "__main__":
  cli()
