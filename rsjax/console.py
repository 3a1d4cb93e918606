"""What a person sees on the console while rsjax works: short lines, progress
wherever they wait, and library chatter filtered.

- `setup(verbosity)` once per launcher: at verbosity 0 (the default) a line
  is `HH:MM:SS message`, and only the project's own INFO lines (from files
  under rsjax/, launch/, data_builders/, configs/, or to loggers named
  after them) and everyone's warnings
  are shown; Orbax's and clu's INFO lines (clu's metric lines included: the
  trainer prints its own progress line) go only to the files they write.
  Verbosity 1 shows every library's INFO lines in absl's format, 2 their
  DEBUG lines as well. TensorFlow's C++ INFO lines are hidden unless
  TF_CPP_MIN_LOG_LEVEL is set (launch/__init__.py sets it before any
  launcher imports TensorFlow).
- `waiting(what)`: one long wait with no count of its own, such as compiling
  a step: a line when it starts, one every `every_s` seconds while it lasts
  and one with its duration at the end.
- `Progress(what, total, unit)`: counted work (batches, tiles, scenes): a
  line at most every `every_s` seconds and one at the end, with the count
  done, the rate and the time left; `counted(items, ...)` around an
  iterable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Files whose INFO lines are the project's own at verbosity 0.
PROJECT_PACKAGES = ("rsjax", "launch", "data_builders", "configs")
PROJECT_FOLDERS = tuple(os.path.join(_ROOT, name) + os.sep
                        for name in PROJECT_PACKAGES)

log = logging.getLogger(__name__)


def duration(seconds: float) -> str:
  """'42 s', '3 min 5 s', '2 h 7 min': a duration as a person reads it."""
  seconds = max(0, int(round(seconds)))
  if seconds < 60:
    return f"{seconds} s"
  minutes, seconds = divmod(seconds, 60)
  if minutes < 60:
    return f"{minutes} min {seconds} s"
  hours, minutes = divmod(minutes, 60)
  return f"{hours} h {minutes} min"


class ProjectOrWarning(logging.Filter):
  """Passes the project's own records (logged from its files, or to its
  named loggers) and any record of level WARNING or above; drops other
  libraries' INFO and DEBUG records."""

  def filter(self, record: logging.LogRecord) -> bool:
    return (record.levelno >= logging.WARNING
            or record.pathname.startswith(PROJECT_FOLDERS)
            or record.name.split(".")[0] in PROJECT_PACKAGES)


class ShortFormatter(logging.Formatter):
  """'HH:MM:SS message', with the level named for warnings and errors."""

  def format(self, record: logging.LogRecord) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
    level = ("" if record.levelno < logging.WARNING
             else f"{record.levelname} ")
    text = f"{stamp} {level}{record.getMessage()}"
    if record.exc_info:
      text += "\n" + self.formatException(record.exc_info)
    return text


def setup(verbosity: int = 0) -> None:
  """Configures the root logger's handlers for a console run (see the
  module docstring). Idempotent: a second call replaces the first's
  settings."""
  if verbosity <= 0:
    # TensorFlow's C++ INFO lines, if it is imported after this call.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  root = logging.getLogger()
  if not root.handlers:
    root.addHandler(logging.StreamHandler())
  for handler in root.handlers:
    for old in [f for f in handler.filters if isinstance(f, ProjectOrWarning)]:
      handler.removeFilter(old)
    if verbosity <= 0:
      handler.addFilter(ProjectOrWarning())
      handler.setFormatter(ShortFormatter())
    elif isinstance(handler.formatter, ShortFormatter):
      handler.setFormatter(None)
  root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
  try:
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  except ImportError:
    return
  # absl keeps a level of its own for its logger (Orbax and clu log there).
  absl_logging.set_verbosity(absl_logging.DEBUG if verbosity >= 2
                             else absl_logging.INFO)


@contextlib.contextmanager
def waiting(what: str, *, done: str | None = None, every_s: float = 60.0,
            logger: logging.Logger = log):
  """Logs `what...` now, `what: N s so far` every `every_s` seconds while
  the body runs, and `done (in N s)` when it ends (`done` defaults to
  `what`). Yields a dict whose 'seconds' is set at the end."""
  start = time.monotonic()
  logger.info("%s ...", what)
  stopped = threading.Event()

  def heartbeat():
    while not stopped.wait(every_s):
      logger.info("%s: %s so far", what, duration(time.monotonic() - start))

  thread = threading.Thread(target=heartbeat, daemon=True,
                            name="console-heartbeat")
  thread.start()
  result = {}
  try:
    yield result
  finally:
    stopped.set()
    thread.join()
  result["seconds"] = time.monotonic() - start
  logger.info("%s in %s", done or what, duration(result["seconds"]))


class Progress:
  """Counted work: `update(done)` logs `what: done/total unit (pct), rate,
  ETA` when `every_s` seconds have passed since the last line, and always
  when `done` reaches `total`. `total` None (unknown) logs counts only.
  Used as a context, it also logs while no update comes (the first item of
  a jitted loop compiles), every `every_s` seconds."""

  def __init__(self, what: str, total: int | None, unit: str, *,
               every_s: float = 20.0, logger: logging.Logger = log,
               clock=time.monotonic):
    self.what, self.total, self.unit = what, total, unit
    self._every_s, self._log, self._clock = every_s, logger, clock
    self._start = self._last = clock()
    self.lines = 0
    self.done = 0
    self._finished = False
    self._lock = threading.Lock()
    self._stopped = threading.Event()
    self._thread = None

  def __enter__(self) -> "Progress":
    def heartbeat():
      while not self._stopped.wait(self._every_s / 4):
        self.update(self.done)
    self._thread = threading.Thread(target=heartbeat, daemon=True,
                                    name="console-progress")
    self._thread.start()
    return self

  def __exit__(self, *exc_info) -> None:
    self._stopped.set()
    if self._thread is not None:
      self._thread.join()

  def line(self, done: int) -> str:
    elapsed = self._clock() - self._start
    text = f"{self.what}: {done}"
    if self.total:
      text += f"/{self.total} {self.unit} ({100 * done / self.total:.0f} %)"
    else:
      text += f" {self.unit}"
    if done >= (self.total or float("inf")):
      return f"{text}, done in {duration(elapsed)}"
    if not done:  # the first item is often a compile
      return f"{text}, {duration(elapsed)} so far"
    if elapsed > 0:
      text += f", {done / elapsed:.2g} {self.unit}/s"
      if self.total:
        text += f", {duration(elapsed / done * (self.total - done))} left"
    return text

  def update(self, done: int) -> None:
    with self._lock:
      self.done = done
      now = self._clock()
      finished = self.total is not None and done >= self.total
      if self._finished:
        return
      if finished or now - self._last >= self._every_s:
        self._finished, self._last = finished, now
        self.lines += 1
        self._log.info("%s", self.line(done))


def counted(items: Iterable, what: str, unit: str,
            total: int | None = None, **progress_kwargs) -> Iterator:
  """Yields `items`, logging their `Progress` as they are taken."""
  with Progress(what, total, unit, **progress_kwargs) as progress:
    for done, item in enumerate(items, 1):
      yield item
      progress.update(done)
    if total is None:  # the end of an unknown count
      progress.total = progress.done
      progress.update(progress.done)
