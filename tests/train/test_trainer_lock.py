"""A training run locks its workdir: a second run on it stops at once naming
the first (in-process and as two `launch.train` processes, the first of
which then finishes unharmed), the lock is held while the run works and
released however it ends, `force_unlock` takes a lock over, and readers of a
trained run (`load_run`) take no lock and ignore one."""

import json
import logging
import os
import signal
import socket
import time

import pytest

import run_results
import train_processes
from rsjax.data import pipeline
from rsjax.store import workdir_lock
from rsjax.systems import trained
from rsjax.train import trainer
from tiny_configs import memory_config

_OTHER_HOST_LOCK = {"host": "elsewhere.example", "pid": 4242,
                    "started": "2026-12-01T08:00:00+00:00"}
"""A lock of a run on another host (which this host cannot check)."""


def _lock_path(workdir) -> str:
  return os.path.join(workdir, workdir_lock.LOCK_NAME)


def _lock_for_another_host(workdir) -> str:
  os.makedirs(workdir, exist_ok=True)
  with open(_lock_path(workdir), "w") as f:
    json.dump(_OTHER_HOST_LOCK, f)
  return _lock_path(workdir)


def test_a_locked_workdir_stops_the_run_before_it_builds_anything(
    tmp_path, monkeypatch):
  def must_not_run(*args, **kwargs):
    raise AssertionError("built a trainer or a dataset on a locked workdir")

  monkeypatch.setattr(trainer, "Trainer", must_not_run)
  monkeypatch.setattr(pipeline, "create_iterator", must_not_run)
  path = _lock_for_another_host(tmp_path)
  with pytest.raises(workdir_lock.WorkdirLocked,
                     match=r"pid 4242 on host elsewhere\.example, started "
                     r"2026-12-01T08:00:00\+00:00 \(lock file .*LOCK\)"):
    trainer.train_and_evaluate(memory_config(), str(tmp_path))
  assert os.listdir(tmp_path) == ["LOCK"]
  with open(path) as f:
    assert json.load(f) == _OTHER_HOST_LOCK


def test_the_run_holds_the_lock_and_releases_it_on_an_error(
    tmp_path, monkeypatch):
  held_by = []

  def failing_trainer(config, workdir):
    del config
    held_by.append(workdir_lock.for_workdir(workdir).holder())
    raise RuntimeError("the run failed")

  monkeypatch.setattr(trainer, "Trainer", failing_trainer)
  with pytest.raises(RuntimeError, match="the run failed"):
    trainer.train_and_evaluate(memory_config(), str(tmp_path))
  [holder] = held_by
  assert (holder.host, holder.pid) == (socket.gethostname(), os.getpid())
  assert os.listdir(tmp_path) == []


def test_force_unlock_takes_over_and_readers_ignore_the_lock(
    tmp_path, caplog, devices):
  workdir = str(tmp_path)
  _lock_for_another_host(workdir)
  with caplog.at_level(logging.WARNING):
    trainer.train_and_evaluate(memory_config(steps=6), workdir, stop_after=1,
                               force_unlock=True)
  assert ("took over the lock of pid 4242 on host elsewhere.example"
          in caplog.text)
  assert not os.path.exists(_lock_path(workdir))   # released at the end
  # A lock held by a training does not stop a reader of the trained run.
  path = _lock_for_another_host(workdir)
  run = trained.load_run(workdir)
  assert run.step == 1
  with open(path) as f:
    assert json.load(f) == _OTHER_HOST_LOCK


def test_a_second_launch_train_on_a_workdir_exits_naming_the_first(
    tmp_path, devices):
  """Two `launch.train` processes on one workdir (a scheduler requeueing a
  job that still runs). The first is paused (SIGSTOP) once it trains, so it
  is certainly alive while the second starts, whatever the machine's speed;
  the second must exit non-zero naming it and write nothing; resumed, the
  first finishes with every checkpoint and metric of its run."""
  workdir = str(tmp_path / "run")
  steps, every = 30, 5
  config_file = train_processes.config_file(
      tmp_path, steps, checkpoint_every=every)
  metrics_file = os.path.join(workdir, "metrics.jsonl")
  first = train_processes.start_and_wait(config_file, workdir,
                                         logged_steps=1)
  try:
    first.send_signal(signal.SIGSTOP)
    assert first.poll() is None, first.stderr.read()[-3000:]
    with open(metrics_file) as f:
      assert f.read().count("train/") < steps   # paused before its end
    before = run_results.files(workdir)
    assert "LOCK" in before

    started = time.time()
    second = train_processes.run(config_file, workdir)
    seconds = time.time() - started
    assert second.returncode == 1, second.stderr[-3000:]
    assert (f"is locked by another training run: pid {first.pid} on host "
            f"{socket.gethostname()}, started ") in second.stderr
    assert f"(lock file {_lock_path(workdir)})" in second.stderr
    assert "--force_unlock" in second.stderr
    assert run_results.files(workdir) == before   # the second wrote nothing
    print(f"the second launch.train exited after {seconds:.1f} s")

    first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=300)
  finally:
    if first.poll() is None:
      first.send_signal(signal.SIGCONT)
      first.kill()
  assert first.returncode == 0, stderr[-3000:]
  assert sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))
                ) == list(range(every, steps + 1, every))
  assert [line["step"] for line in run_results.train_lines(workdir)] == list(
      range(1, steps + 1))
  assert not os.path.exists(_lock_path(workdir))
