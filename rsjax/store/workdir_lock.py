"""One training run per workdir: an exclusive lock file, `<workdir>/LOCK`.

A second run on a workdir that a live run holds (a scheduler requeueing a job
that is still running) would write over the first one's checkpoints and
metrics, so it stops at once with `WorkdirLocked`, which names the holder
(host, pid, start time) and the lock file. The lock file holds that holder as
JSON, with a token that tells two locks of one pid and second apart. It is
written completely under a temporary name and then hard-linked to `LOCK`,
which fails if `LOCK` exists: creating it is atomic, and a reader never sees
a half-written lock.

A lock left by a process that is gone (SIGKILL, a crashed machine) is stale.
On the host it names, a dead pid proves it stale and it is taken over with a
warning. A lock of another host cannot be checked from here: it is taken over
only when asked (`force=True`, `launch.train --force_unlock`), also with a
warning naming the old holder. A run releases only its own lock: if another
run forced it away, that run's lock stays.

`WorkdirLock` is the interface the trainer uses (`acquire`, `release`, a
context manager); `for_workdir` returns a `FileLock` for a local or shared
filesystem, an `ObjectLock` for a workdir on object storage (`gs://...`).
An object store has neither hard links nor an atomic create that
`etils.epath` exposes, so `ObjectLock` writes its lock object and reads it
back after `SETTLE_SECONDS`: of two runs that wrote at nearly the same time,
the one whose write landed last holds the lock and the other stops with
`WorkdirLocked`. Two writes further apart than that never race.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime
import json
import logging
import os
import socket
import time
import uuid

from rsjax.store import paths

LOCK_NAME = "LOCK"

_ATTEMPTS = 3
"""Tries to create the lock after moving a stale or forced one away: another
run may create its own in between."""


@dataclasses.dataclass(frozen=True)
class Holder:
  """The run that holds a lock."""
  host: str
  pid: int
  started: str  # ISO 8601, UTC

  @classmethod
  def this_process(cls) -> Holder:
    started = datetime.datetime.now(datetime.timezone.utc)
    return cls(socket.gethostname(), os.getpid(),
               started.isoformat(timespec="seconds"))

  def describe(self) -> str:
    return f"pid {self.pid} on host {self.host}, started {self.started}"

  def is_dead_here(self) -> bool:
    """Whether this host is the holder's and its pid is not running."""
    if self.host != socket.gethostname() or self.pid <= 0:
      return False
    try:
      os.kill(self.pid, 0)
    except ProcessLookupError:
      return True
    except PermissionError:  # alive, another user's
      return False
    return False


class WorkdirLocked(RuntimeError):
  """The workdir is locked by another run (or by an unreadable lock file)."""

  def __init__(self, path: str, holder: str):
    self.path = path
    super().__init__(
        f"{os.path.dirname(path)} is locked by another training run: "
        f"{holder} (lock file {path}). Wait for that run to end, or, if it is "
        f"certainly not running (e.g. it was on another host that is gone), "
        f"take the lock over with --force_unlock (launch.train) or "
        f"force_unlock=True (train_and_evaluate)")


class WorkdirLock(abc.ABC):
  """An exclusive lock of a workdir, held from `acquire` to `release`."""

  @abc.abstractmethod
  def acquire(self, *, force: bool = False) -> None:
    """Takes the lock, or raises `WorkdirLocked` naming its holder; `force`
    takes it over from any holder (with a warning naming it)."""

  @abc.abstractmethod
  def release(self) -> None:
    """Gives the lock up, if this object still holds it."""

  def __enter__(self) -> WorkdirLock:
    return self

  def __exit__(self, *exc_info) -> None:
    self.release()


class FileLock(WorkdirLock):
  """The lock as the file `<workdir>/LOCK` (created atomically, see above)."""

  def __init__(self, workdir: str | os.PathLike):
    self.path = os.path.join(os.path.abspath(os.fspath(workdir)), LOCK_NAME)
    self._text: str | None = None  # what this object wrote, while it holds

  def acquire(self, *, force: bool = False) -> None:
    if self._text is not None:
      raise RuntimeError(f"{self.path}: this lock is already held")
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    text = _new_lock_text()
    for _ in range(_ATTEMPTS):
      if self._create(text):
        self._text = text
        return
      found = self._read()
      if found is None:  # released meanwhile
        continue
      reason = _takeover_reason(self.path, found, force)
      if self._remove_if_unchanged(found):
        logging.warning("%s: took over the lock of %s (%s)", self.path,
                        _describe(found), reason)
    raise WorkdirLocked(self.path, f"other runs, which took it each of the "
                        f"{_ATTEMPTS} times this one tried")

  def release(self) -> None:
    if self._text is None:
      return
    text, self._text = self._text, None
    found = self._read()
    if found == text:
      os.remove(self.path)
      return
    logging.warning(
        "%s: left as it is; another run took this run's lock over: %s",
        self.path, _describe(found) if found is not None
        else "it has released it since")

  def holder(self) -> Holder | None:
    """Who holds the lock now (None: nobody, or an unreadable lock file)."""
    found = self._read()
    return _parse(found) if found is not None else None

  def _create(self, text: str) -> bool:
    """Writes `text` beside the lock and links it to the lock's name; False
    if a lock exists."""
    temporary = self._beside("partial")
    with open(temporary, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    try:
      os.link(temporary, self.path)
      return True
    except FileExistsError:
      return False
    finally:
      os.remove(temporary)

  def _beside(self, kind: str) -> str:
    """A name beside the lock that no other run or thread uses."""
    return os.path.join(
        os.path.dirname(self.path), f".{LOCK_NAME}.{kind}-"
        f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")

  def _read(self) -> str | None:
    try:
      with open(self.path) as f:
        return f.read()
    except FileNotFoundError:
      return None

  def _remove_if_unchanged(self, expected: str) -> bool:
    """Removes the lock if it still holds `expected`. Moved aside first
    (atomic), so of two runs taking over the same stale lock only one removes
    it; the other, having moved the winner's new lock, puts it back."""
    aside = self._beside("taken")
    try:
      os.rename(self.path, aside)
    except FileNotFoundError:
      return False
    try:
      with open(aside) as f:
        if f.read() == expected:
          return True
      try:
        os.link(aside, self.path)
      except FileExistsError:
        pass
      return False
    finally:
      os.remove(aside)


SETTLE_SECONDS = 2.0
"""How long `ObjectLock` waits between writing its lock object and reading it
back (longer than an upload of a few hundred bytes takes)."""


class ObjectLock(WorkdirLock):
  """The lock as the object `<workdir>/LOCK` on object storage: written,
  then read back after SETTLE_SECONDS to see which of racing runs holds it."""

  def __init__(self, workdir: str | os.PathLike):
    self.path = paths.join(workdir, LOCK_NAME)
    self._text: str | None = None

  def acquire(self, *, force: bool = False) -> None:
    if self._text is not None:
      raise RuntimeError(f"{self.path}: this lock is already held")
    text = _new_lock_text()
    found = self._read()
    if found is not None:
      reason = _takeover_reason(self.path, found, force)
      logging.warning("%s: took over the lock of %s (%s)", self.path,
                      _describe(found), reason)
    paths.of(self.path).write_text(text)
    time.sleep(SETTLE_SECONDS)
    found = self._read()
    if found != text:
      raise WorkdirLocked(self.path, _describe(found) if found is not None
                          else "a run that took the lock and released it")
    self._text = text

  def release(self) -> None:
    if self._text is None:
      return
    text, self._text = self._text, None
    if self._read() == text:
      paths.of(self.path).unlink()
      return
    logging.warning("%s: left as it is; another run took this run's lock "
                    "over", self.path)

  def _read(self) -> str | None:
    file = paths.of(self.path)
    return file.read_text() if file.exists() else None


def _new_lock_text() -> str:
  """This process as the holder, with a token that tells this lock from
  another of the same pid and second."""
  return json.dumps(dict(dataclasses.asdict(Holder.this_process()),
                         token=uuid.uuid4().hex))


def _takeover_reason(path: str, found: str, force: bool) -> str:
  """Why the lock holding `found` may be taken over, or `WorkdirLocked`."""
  holder = _parse(found)
  if force:
    return "forced with force_unlock"
  if holder is not None and holder.is_dead_here():
    return "stale: its process is gone"
  raise WorkdirLocked(path, _describe(found))


def _parse(text: str) -> Holder | None:
  try:
    fields = json.loads(text)
    return Holder(str(fields["host"]), int(fields["pid"]),
                  str(fields["started"]))
  except (ValueError, TypeError, KeyError):
    return None


def _describe(text: str) -> str:
  holder = _parse(text)
  if holder is None:
    return f"an unreadable lock file (content {text[:200]!r})"
  return holder.describe()


def for_workdir(workdir: str | os.PathLike) -> WorkdirLock:
  """The lock of `workdir`: an object on object storage, else a file."""
  if paths.is_remote(workdir):
    return ObjectLock(workdir)
  return FileLock(workdir)
