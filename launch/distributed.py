"""Joining a multi-process JAX run: the flags every launcher shares.

On a Cloud TPU slice or under SLURM, `--distributed` alone is enough:
`jax.distributed.initialize()` finds the coordinator, the process count and
this process's index in the cluster's environment. Anywhere else (a GPU
cluster without SLURM, several processes on one machine) name them:

  python -m launch.train ... --distributed --coordinator_address=10.0.0.1:1234 \
      --num_processes=2 --process_id=0      # and --process_id=1 on the other

Every process of the run is started with the same command but its own
--process_id; each reads only its slice of every batch (`rsjax.data.readers`)
and process 0 alone writes the workdir's files (Orbax writes checkpoints
from all processes together).
"""

from __future__ import annotations

from absl import flags, logging

_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False,
    "Join a multi-process run (jax.distributed.initialize) before anything "
    "else: TPU pod slices and SLURM are detected; elsewhere also pass "
    "--coordinator_address, --num_processes and --process_id.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None,
    "host:port of process 0's coordinator (with --distributed; default: "
    "detected, or $JAX_COORDINATOR_ADDRESS).")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Processes in the run (with --distributed; "
    "default: detected).", lower_bound=1)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index, 0 to --num_processes - 1 "
    "(with --distributed; default: detected).", lower_bound=0)




@flags.multi_flags_validator(
    ["distributed", "coordinator_address", "num_processes", "process_id"],
    message="--coordinator_address, --num_processes and --process_id only "
    "apply with --distributed")
def _process_flags_need_distributed(values) -> bool:
  return values["distributed"] or all(
      values[name] is None
      for name in ("coordinator_address", "num_processes", "process_id"))


def initialize() -> None:
  """Joins the run when --distributed is set, then logs where this process
  stands (in a multi-process run)."""
  import jax  # pylint: disable=g-import-not-at-top
  if _DISTRIBUTED.value:
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)
  if jax.process_count() > 1:  # the trainer names the devices of one process
    logging.info("process %d/%d, %d local / %d global devices",
                 jax.process_index(), jax.process_count(),
                 jax.local_device_count(), jax.device_count())
