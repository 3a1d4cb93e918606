"""When a training loop stops for a pre-emption notice (SIGTERM), and how.

A scheduler that takes a machine back (a pre-empted TPU VM, SLURM's
`--signal=TERM@120`, `scancel`) sends SIGTERM first. The loop then saves a
checkpoint at the step it reached and raises `Preempted`, whose exit status
(128 + the signal: 143) tells the scheduler to requeue the run.

In one process a SIGTERM handler sets a flag that the loop reads after each
step. In a run of several processes the signal reaches them at different
steps, or only some of them, but every process must stop after the same step:
saving a checkpoint is a collective, and a process that steps on alone waits
forever in its next all-reduce. There JAX's preemption sync service (started
by `jax.distributed.initialize`) catches SIGTERM in any process, tells the
others, and `multihost_utils.reached_preemption_sync_point(step)` turns True
on every process at the same step.
"""

from __future__ import annotations

import logging
import signal
import threading

import jax
from jax.experimental import multihost_utils


class Preempted(Exception):
  """The run was stopped by a signal after saving a checkpoint at `step`.

  `exit_status` (128 + the signal: 143 for SIGTERM) is what a process should
  exit with so a scheduler takes the run for interrupted, not finished.
  """

  def __init__(self, signum: int, step: int, directory: str):
    self.signum, self.step = signum, step
    self.exit_status = 128 + signum
    super().__init__(
        f"stopped by signal {signum} at step {step}; its checkpoint is in "
        f"{directory}; run again with the same workdir to resume")


class StopOnSignal:
  """A context in which `reached(step)`, called after every step by every
  process, says whether the loop must stop there for a SIGTERM.

  One process: a SIGTERM handler (main thread only) raises the flag.
  Several: JAX's preemption sync service catches the signal (its handler
  must stay installed, so none of ours is) and names the common step.
  """

  def __init__(self):
    self.requested = False
    self.signum: int | None = None
    self._previous = None
    self._synchronized = jax.process_count() > 1

  def __enter__(self):
    if (not self._synchronized
        and threading.current_thread() is threading.main_thread()):
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    logging.warning("signal %d: saving a checkpoint and stopping", signum)
    self.requested = True
    self.signum = signum

  def reached(self, step: int) -> bool:
    """True once the loop must stop after `step` (the same step on every
    process of a multi-process run)."""
    if self._synchronized and not self.requested:
      try:
        reached = multihost_utils.reached_preemption_sync_point(step)
      except RuntimeError as error:  # jax_enable_preemption_service off
        logging.warning(
            "%s; a SIGTERM now stops only the process that gets it, and "
            "the others wait for it in their next collective", error)
        self._synchronized = False
        self.__enter__()
        return self.requested
      if reached:
        logging.warning("pre-emption notice (SIGTERM) on a process of the "
                        "run: every process saves a checkpoint at step %d "
                        "and stops", step)
        self.requested = True
        self.signum = signal.SIGTERM
    return self.requested

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
