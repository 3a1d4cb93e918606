"""The workdir lock: taken and released, created atomically (of racing takers
exactly one wins), refused naming a live holder, taken over from a dead
process on this host or when forced, and never released for another run."""

import json
import logging
import os
import socket
import subprocess
import sys
import threading

import pytest

from rsjax.store import workdir_lock


def _write_lock(workdir, host, pid, started="2026-12-01T08:00:00+00:00"):
  path = os.path.join(workdir, workdir_lock.LOCK_NAME)
  with open(path, "w") as f:
    json.dump({"host": host, "pid": pid, "started": started}, f)
  return path


def _dead_pid() -> int:
  """The pid of a process that has exited and been reaped."""
  process = subprocess.Popen([sys.executable, "-c", "pass"])
  process.wait()
  return process.pid


def test_acquire_writes_the_holder_and_release_removes_it(tmp_path):
  workdir = tmp_path / "run"          # created by the lock
  lock = workdir_lock.for_workdir(workdir)
  lock.acquire()
  path = workdir / "LOCK"
  written = json.loads(path.read_text())
  assert written["host"] == socket.gethostname()
  assert written["pid"] == os.getpid()
  assert written["started"].endswith("+00:00")
  assert lock.holder() == workdir_lock.Holder(
      written["host"], written["pid"], written["started"])
  assert os.listdir(workdir) == ["LOCK"]          # no temporary left beside
  lock.release()
  assert os.listdir(workdir) == []
  lock.release()                                  # a second release: nothing


def test_the_lock_appears_complete(tmp_path, monkeypatch):
  """The lock's name is linked to a file already written and flushed: a
  reader sees no lock or the whole holder, never part of it."""
  link = os.link
  seen = []

  def checking_link(source, target):
    assert not os.path.exists(target)
    with open(source) as f:
      seen.append(json.load(f))
    return link(source, target)

  monkeypatch.setattr(os, "link", checking_link)
  with workdir_lock.for_workdir(tmp_path) as lock:
    lock.acquire()
    assert seen == [json.loads((tmp_path / "LOCK").read_text())]


def _race(make_lock, takers):
  """(won, refused): the locks of `takers` threads that acquire at once."""
  barrier = threading.Barrier(takers)
  won, refused = [], []

  def take():
    lock = make_lock()
    barrier.wait()
    try:
      lock.acquire()
      won.append(lock)
    except workdir_lock.WorkdirLocked:
      refused.append(lock)

  threads = [threading.Thread(target=take) for _ in range(takers)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  return won, refused


def test_of_racing_takers_exactly_one_wins(tmp_path):
  takers = 8
  won, refused = _race(lambda: workdir_lock.for_workdir(tmp_path), takers)
  assert (len(won), len(refused)) == (1, takers - 1)
  assert os.listdir(tmp_path) == ["LOCK"]
  won[0].release()


def test_a_live_holder_is_refused_and_named(tmp_path):
  """The holder here is this test's own process (alive, on this host)."""
  path = _write_lock(tmp_path, socket.gethostname(), os.getpid())
  before = open(path).read()
  with pytest.raises(workdir_lock.WorkdirLocked) as locked:
    workdir_lock.for_workdir(tmp_path).acquire()
  message = str(locked.value)
  assert f"pid {os.getpid()} on host {socket.gethostname()}" in message
  assert "started 2026-12-01T08:00:00+00:00" in message
  assert f"lock file {path}" in message
  assert "--force_unlock" in message and "force_unlock=True" in message
  assert open(path).read() == before
  assert os.listdir(tmp_path) == ["LOCK"]


def test_a_lock_of_another_host_is_refused_even_with_a_dead_pid(tmp_path):
  """From here a pid of another host cannot be checked."""
  _write_lock(tmp_path, "elsewhere.example", _dead_pid())
  with pytest.raises(workdir_lock.WorkdirLocked,
                     match=r"on host elsewhere\.example"):
    workdir_lock.for_workdir(tmp_path).acquire()


def test_a_stale_lock_on_this_host_is_taken_over_with_a_warning(
    tmp_path, caplog):
  dead = _dead_pid()
  _write_lock(tmp_path, socket.gethostname(), dead)
  lock = workdir_lock.for_workdir(tmp_path)
  with caplog.at_level(logging.WARNING):
    lock.acquire()
  assert f"took over the lock of pid {dead} on host" in caplog.text
  assert "stale" in caplog.text
  assert lock.holder().pid == os.getpid()
  assert os.listdir(tmp_path) == ["LOCK"]
  lock.release()
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("content", [
    json.dumps({"host": "elsewhere.example", "pid": 4242,
                "started": "2026-12-01T08:00:00+00:00"}),
    "{not json",
])
def test_force_takes_over_any_lock_with_a_warning(tmp_path, caplog, content):
  (tmp_path / "LOCK").write_text(content)
  lock = workdir_lock.for_workdir(tmp_path)
  if content.startswith("{not"):
    with pytest.raises(workdir_lock.WorkdirLocked, match=r"an unreadable "
                       r"lock file \(content '\{not json'\)"):
      lock.acquire()
  with caplog.at_level(logging.WARNING):
    lock.acquire(force=True)
  assert "took over the lock of" in caplog.text and "forced" in caplog.text
  if not content.startswith("{not"):
    assert "pid 4242 on host elsewhere.example" in caplog.text
  assert lock.holder().pid == os.getpid()
  lock.release()
  assert os.listdir(tmp_path) == []


def test_release_leaves_the_lock_of_a_run_that_forced_it_away(
    tmp_path, caplog):
  first = workdir_lock.for_workdir(tmp_path)
  first.acquire()
  second = workdir_lock.for_workdir(tmp_path)
  second.acquire(force=True)
  taken = (tmp_path / "LOCK").read_text()
  with caplog.at_level(logging.WARNING):
    first.release()
  assert "another run took this run's lock over" in caplog.text
  assert (tmp_path / "LOCK").read_text() == taken
  second.release()
  assert os.listdir(tmp_path) == []


def test_the_context_releases_on_an_exception(tmp_path):
  with pytest.raises(ZeroDivisionError):
    with workdir_lock.for_workdir(tmp_path) as lock:
      lock.acquire()
      assert (tmp_path / "LOCK").exists()
      1 / 0  # pylint: disable=pointless-statement
  assert os.listdir(tmp_path) == []


# -- ObjectLock: the lock of a workdir on object storage (gs://...), which has
# no atomic create. It runs on any epath, so a local folder stands in here;
# tests/train/test_remote_workdir.py takes it on an emulated GCS bucket.

@pytest.fixture
def quick_settle(monkeypatch):
  monkeypatch.setattr(workdir_lock, "SETTLE_SECONDS", 0.3)


def test_a_remote_workdir_gets_an_object_lock():
  assert isinstance(workdir_lock.for_workdir("gs://bucket/run"),
                    workdir_lock.ObjectLock)
  assert workdir_lock.ObjectLock("gs://bucket/run/").path == (
      "gs://bucket/run/LOCK")
  assert isinstance(workdir_lock.for_workdir("run"), workdir_lock.FileLock)


def test_an_object_lock_is_held_refused_and_released(tmp_path, quick_settle):
  lock = workdir_lock.ObjectLock(tmp_path)
  lock.acquire()
  written = json.loads((tmp_path / "LOCK").read_text())
  assert (written["host"], written["pid"]) == (socket.gethostname(),
                                               os.getpid())
  with pytest.raises(workdir_lock.WorkdirLocked,
                     match=f"pid {os.getpid()} on host"):
    workdir_lock.ObjectLock(tmp_path).acquire()
  lock.release()
  assert os.listdir(tmp_path) == []
  with workdir_lock.ObjectLock(tmp_path) as again:
    again.acquire()


def test_an_object_lock_takes_over_a_dead_or_forced_holder(
    tmp_path, quick_settle, caplog):
  _write_lock(tmp_path, socket.gethostname(), _dead_pid())
  with caplog.at_level(logging.WARNING):
    workdir_lock.ObjectLock(tmp_path).acquire()
  assert "stale: its process is gone" in caplog.text
  with pytest.raises(workdir_lock.WorkdirLocked):
    workdir_lock.ObjectLock(tmp_path).acquire()
  forced = workdir_lock.ObjectLock(tmp_path)
  forced.acquire(force=True)
  assert json.loads((tmp_path / "LOCK").read_text())["pid"] == os.getpid()
  assert "forced with force_unlock" in caplog.text


def test_of_racing_object_lock_takers_exactly_one_wins(tmp_path,
                                                       quick_settle):
  """All write within the settle time: the last write holds the lock and
  every other taker reads it back and is refused."""
  takers = 4
  won, refused = _race(lambda: workdir_lock.ObjectLock(tmp_path), takers)
  assert (len(won), len(refused)) == (1, takers - 1)
  won[0].release()
  assert os.listdir(tmp_path) == []
