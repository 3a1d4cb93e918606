"""rsjax.console and the trainer's progress line, on a clock the test moves."""

import logging
import os
import re
import time

import pytest

from rsjax import console
from rsjax.train import progress as progress_lib


class Clock:

  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


@pytest.fixture
def records():
  """The messages logged to a fresh logger, and that logger."""
  logger = logging.getLogger(f"test_console.{time.monotonic_ns()}")
  logger.setLevel(logging.INFO)
  logger.propagate = False
  seen = []

  class Keep(logging.Handler):
    def emit(self, record):
      seen.append(record.getMessage())

  logger.addHandler(Keep())
  return seen, logger


@pytest.mark.parametrize("seconds, text", [
    (0, "0 s"), (42.4, "42 s"), (59.6, "1 min 0 s"), (185, "3 min 5 s"),
    (7620, "2 h 7 min")])
def test_duration(seconds, text):
  assert console.duration(seconds) == text


def test_progress_logs_every_interval_and_once_at_the_end(records):
  seen, logger = records
  clock = Clock()
  progress = console.Progress("evaluating on test", 10, "batches",
                              every_s=10, logger=logger, clock=clock)
  for done in range(1, 11):
    clock.now += 4  # a batch every 4 s: a line every third batch
    progress.update(done)
  progress.update(10)  # the end is logged once
  assert seen == [
      "evaluating on test: 3/10 batches (30 %), 0.25 batches/s, 28 s left",
      "evaluating on test: 6/10 batches (60 %), 0.25 batches/s, 16 s left",
      "evaluating on test: 9/10 batches (90 %), 0.25 batches/s, 4 s left",
      "evaluating on test: 10/10 batches (100 %), done in 40 s"]


def test_progress_heartbeat_logs_while_no_update_comes(records):
  seen, logger = records
  with console.Progress("tiles", 4, "tiles", every_s=0.2,
                        logger=logger) as progress:
    time.sleep(0.7)  # the first item compiles: no update for a while
    progress.update(4)
  assert seen[0] == "tiles: 0/4 tiles (0 %), 0 s so far"
  assert seen[-1].startswith("tiles: 4/4 tiles (100 %), done in")
  assert 2 <= len(seen) <= 6


def test_waiting_logs_start_heartbeat_and_duration(records):
  seen, logger = records
  with console.waiting("compiling", done="compiled", every_s=0.2,
                       logger=logger) as result:
    time.sleep(0.5)
  assert seen[0] == "compiling ..."
  assert seen[1] == "compiling: 0 s so far"
  assert re.fullmatch(r"compiled in [01] s", seen[-1])
  assert 0.5 <= result["seconds"] < 5


def test_train_progress_speed_from_the_first_step_and_lines(records):
  seen, logger = records
  clock = Clock()
  progress = progress_lib.TrainProgress(100, every_s=60, logger=logger,
                                        clock=clock)
  progress.step_done(1)  # no scalars, no minute passed: no line
  for step in range(2, 21):
    clock.now += 0.5  # 2 steps/s after the first step
    progress.step_done(step, {"train/g_loss": 1.23456, "train/loss_is_finite":
                              1.0} if step % 10 == 0 else None)
  assert seen == ["step 10/100 (10 %), 2 steps/s, 45 s left  g_loss 1.235",
                  "step 20/100 (20 %), 2 steps/s, 40 s left  g_loss 1.235"]
  clock.now += 61  # a slow step: a line without scalars
  progress.step_done(21)
  assert seen[-1] == "step 21/100 (21 %), 0.284 steps/s, 4 min 38 s left"


def _record(pathname, level=logging.INFO):
  return logging.LogRecord("x", level, pathname, 1, "message", None, None)


def test_filter_keeps_the_projects_lines_and_everyones_warnings():
  keep = console.ProjectOrWarning()
  project = os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), "rsjax", "train", "trainer.py")
  library = "/site-packages/orbax/checkpoint/manager.py"
  assert keep.filter(_record(project))
  assert not keep.filter(_record(library))
  assert keep.filter(_record(library, logging.WARNING))


def test_setup_formats_short_lines_and_filters_libraries(capfd):
  root = logging.getLogger()
  handlers, level = list(root.handlers), root.level
  root.handlers = []
  try:
    console.setup(0)
    logging.getLogger("rsjax.anything").info("from the project")
    root.handle(_record("/site-packages/orbax/x.py"))
    console.setup(1)
    root.handle(_record("/site-packages/orbax/x.py"))
  finally:
    root.handlers, root.level = handlers, level
  err = capfd.readouterr().err.splitlines()
  assert len(err) == 2
  assert err[0].endswith(" from the project") and err[0][2] == ":"
  assert err[1] == "message"  # verbosity 1: the library's line, unfiltered


def test_counted_yields_every_item_and_ends_an_unknown_count(records):
  seen, logger = records
  assert list(console.counted(iter("abc"), "writing train", "examples",
                              logger=logger)) == ["a", "b", "c"]
  assert seen[-1].startswith("writing train: 3/3 examples (100 %), done in")


@pytest.mark.parametrize("total, log_every, every", [
    (150, 25, 25),      # the demo: 6 lines
    (400, 25, 50),      # 16 logging steps: every second one, 8 lines
    (20000, 50, 2000),  # a paper run: 10 lines
    (30, 5, 5), (7, 5, 5)])
def test_console_every_keeps_a_run_to_about_10_lines(total, log_every, every):
  assert progress_lib.console_every(total, log_every) == every
  assert total / every <= 10
