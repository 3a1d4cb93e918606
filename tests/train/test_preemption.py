"""When the training loop stops for SIGTERM (`rsjax.train.preemption`): in one
process at the next step after the signal; in several at the step JAX's
preemption sync service names, with no handler of ours replacing its own;
and, with that service off, as one process does, with a warning."""

import logging
import os
import signal

import jax
import pytest
from jax.experimental import multihost_utils

from rsjax.train import preemption


def test_one_process_stops_after_the_signal_and_restores_the_handler():
  before = signal.getsignal(signal.SIGTERM)
  with preemption.StopOnSignal() as stop:
    assert not stop.reached(1)
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.reached(2) and stop.signum == signal.SIGTERM
    assert stop.reached(3)
  assert signal.getsignal(signal.SIGTERM) == before
  stopped = preemption.Preempted(stop.signum, 2, "w/checkpoints")
  assert stopped.exit_status == 143
  assert "stopped by signal 15 at step 2" in str(stopped)


def test_several_processes_stop_at_the_step_the_sync_service_names(
    monkeypatch):
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  asked = []

  def sync_point(step):
    asked.append(step)
    return step == 3

  monkeypatch.setattr(multihost_utils, "reached_preemption_sync_point",
                      sync_point)
  before = signal.getsignal(signal.SIGTERM)
  with preemption.StopOnSignal() as stop:
    assert signal.getsignal(signal.SIGTERM) == before  # JAX's stays
    assert [stop.reached(step) for step in (1, 2, 3, 4)] == [
        False, False, True, True]
  assert asked == [1, 2, 3] and stop.signum == signal.SIGTERM


def test_without_the_sync_service_a_process_stops_alone_with_a_warning(
    monkeypatch, caplog):
  monkeypatch.setattr(jax, "process_count", lambda: 2)

  def no_service(step):
    raise RuntimeError("Preemption sync manager has not been initialized")

  monkeypatch.setattr(multihost_utils, "reached_preemption_sync_point",
                      no_service)
  before = signal.getsignal(signal.SIGTERM)
  with caplog.at_level(logging.WARNING):
    with preemption.StopOnSignal() as stop:
      assert not stop.reached(1)
      assert "stops only the process that gets it" in caplog.text
      os.kill(os.getpid(), signal.SIGTERM)
      assert stop.reached(2) and stop.signum == signal.SIGTERM
  assert signal.getsignal(signal.SIGTERM) == before
