"""The training loop's console line: step, speed, time left and the step's
losses, at logging steps (at most about 10 lines a run: `console_every`).

The speed is measured from the end of the first step this run takes (the
step is compiled before it) to the current step, so the time left is known
after the first few steps instead of after a warm-up. Between logging
steps a line still comes when `every_s` seconds have passed without one, so
a slow step never leaves a person without news.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from rsjax import console

log = logging.getLogger(__name__)

# Metrics that say nothing to a person reading the console (they stay in
# metrics.jsonl and TensorBoard).
_HIDDEN = ("loss_is_finite",)


def _short(value: float) -> str:
  return f"{value:.4g}"


def console_every(total_steps: int, log_every: int, max_lines: int = 10
                  ) -> int:
  """The steps between console lines: a multiple of `log_every` that gives
  at most `max_lines` lines over `total_steps` (metrics.jsonl and
  TensorBoard still get every logging step)."""
  logging_steps = -(-total_steps // log_every)
  return log_every * -(-logging_steps // max_lines)


class TrainProgress:
  """`step_done(step, scalars)` after every step; logs the line when
  `scalars` are given (a console step), or when `every_s` seconds passed
  since the last line."""

  def __init__(self, total_steps: int, *, every_s: float = 60.0,
               logger: logging.Logger = log, clock=time.monotonic):
    self.total_steps = total_steps
    self._every_s, self._log, self._clock = every_s, logger, clock
    self._first_step = self._first_time = None
    self._last_line = clock()

  def line(self, step: int, scalars: Mapping[str, float] | None) -> str:
    text = (f"step {step}/{self.total_steps} "
            f"({100 * step / self.total_steps:.0f} %)")
    if self._first_step is not None and step > self._first_step:
      seconds = self._clock() - self._first_time
      rate = (step - self._first_step) / seconds
      text += f", {rate:.3g} steps/s"
      if step < self.total_steps:
        text += f", {console.duration((self.total_steps - step) / rate)} left"
    if scalars:
      shown = {k.split("/", 1)[-1]: v for k, v in scalars.items()}
      text += "  " + " ".join(f"{k} {_short(v)}" for k, v in shown.items()
                              if k not in _HIDDEN)
    return text

  def step_done(self, step: int,
                scalars: Mapping[str, float] | None = None) -> None:
    now = self._clock()
    if self._first_step is None:
      self._first_step, self._first_time = step, now
    if scalars is not None or now - self._last_line >= self._every_s:
      self._last_line = now
      self._log.info("%s", self.line(step, scalars))
