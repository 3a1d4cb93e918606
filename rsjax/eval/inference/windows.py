"""The sliding-window grid of full-scene inference and seamless blending.

A scene of H x W pixels is covered by square windows of side T that overlap by
O pixels (stride S = T - O): window origins along an axis are 0, S, 2S, ...
and the last window is moved back to end exactly at the scene edge, so every
window lies inside the scene (a scene smaller than T gets one window at 0 that
reaches past the edge; only its part inside the scene is kept).

Overlapping predictions are blended as sum_k w_k y_k / sum_k w_k with a
separable weight w(i, j) = r(i) r(j). The 1-D ramp r is 1 in the middle of the
window and a raised cosine over the O pixels at each end,

    r(i) = sin^2(pi/2 (i + 1/2) / O)               for i < O
    r(i) = sin^2(pi/2 (T - i - 1/2) / O)           for i >= T - O,

so r is positive everywhere (a pixel seen by one window only is that window's
prediction exactly) and, for two windows S apart, the falling end of the first
and the rising end of the second add up to 1 (sin^2 + cos^2): the blend is a
smooth cross-fade that leaves no seam.

`StripAccumulator` keeps the weighted sums of a band of rows only: windows are
added strip by strip (a strip is one row of windows), and `finish_rows(r)`
returns, and forgets, every row above r once no later window can reach it. The
memory held is a few strips of the scene's width, whatever its height.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def window_origins(length: int, window: int, overlap: int) -> list[int]:
  """Origins of the windows covering [0, length) along one axis."""
  check_window(window, overlap)
  if length < 1:
    raise ValueError(f"cannot cover an axis of length {length} with windows.")
  if length <= window:
    return [0]
  stride = window - overlap
  origins = list(range(0, length - window + 1, stride))
  if origins[-1] + window < length:
    origins.append(length - window)
  return origins


def check_window(window: int, overlap: int) -> None:
  """ValueError naming --window / --overlap for sizes that cannot work."""
  if not isinstance(window, (int, np.integer)) or window < 1:
    raise ValueError(f"--window must be a positive number of pixels, got "
                     f"{window!r}.")
  if not isinstance(overlap, (int, np.integer)) or overlap < 0:
    raise ValueError(f"--overlap must be >= 0 pixels, got {overlap!r}.")
  if overlap >= window:
    raise ValueError(f"--overlap ({overlap}) must be smaller than --window "
                     f"({window}): windows would not advance.")


def ramp(window: int, overlap: int) -> np.ndarray:
  """The 1-D blending weight r (float64, positive, 1 in the middle)."""
  check_window(window, overlap)
  weight = np.ones(window)
  if overlap:
    rising = np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / overlap) ** 2
    weight[:overlap] = rising
    weight[window - overlap:] = np.minimum(weight[window - overlap:],
                                           rising[::-1])
  return weight


def blend_weights(window: int, overlap: int) -> np.ndarray:
  """The separable 2-D weight r(i) r(j), shape (window, window), float32."""
  r = ramp(window, overlap)
  return np.outer(r, r).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class WindowGrid:
  """The windows covering a height x width scene, strip by strip."""
  height: int
  width: int
  window: int
  overlap: int

  def __post_init__(self):
    check_window(self.window, self.overlap)

  @property
  def row_origins(self) -> list[int]:
    return window_origins(self.height, self.window, self.overlap)

  @property
  def col_origins(self) -> list[int]:
    return window_origins(self.width, self.window, self.overlap)

  def __len__(self) -> int:
    return len(self.row_origins) * len(self.col_origins)

  def windows(self) -> list[tuple[int, int]]:
    """(row, col) origins, strip after strip, left to right in a strip."""
    return [(row, col) for row in self.row_origins for col in self.col_origins]

  def rows_done_after(self, row: int) -> int:
    """Rows above this are final once every window of strip `row` is added."""
    origins = self.row_origins
    later = [r for r in origins if r > row]
    return later[0] if later else self.height


class StripAccumulator:
  """Weighted sums of overlapping window predictions over a band of rows.

  `add(row, col, values, valid)` adds one window's (T, T, C) prediction and its
  (T, T) validity; `finish_rows(stop)` returns (blended rows, valid rows) for
  rows [top, stop) and drops them. A pixel is valid only if every window that
  saw it found all its inputs there.
  """

  def __init__(self, grid: WindowGrid, channels: int):
    self.grid = grid
    self.channels = int(channels)
    self.weights = blend_weights(grid.window, grid.overlap)
    self.top = 0
    self._sums = np.zeros((0, grid.width, self.channels), np.float32)
    self._total = np.zeros((0, grid.width), np.float32)
    self._valid = np.ones((0, grid.width), bool)
    self.peak_rows = 0          # most rows held at once (memory bound)

  @property
  def rows_held(self) -> int:
    return self._total.shape[0]

  def _grow(self, stop: int) -> None:
    extra = min(stop, self.grid.height) - (self.top + self.rows_held)
    if extra <= 0:
      return
    width = self.grid.width
    self._sums = np.concatenate(
        [self._sums, np.zeros((extra, width, self.channels), np.float32)])
    self._total = np.concatenate([self._total,
                                  np.zeros((extra, width), np.float32)])
    self._valid = np.concatenate([self._valid, np.ones((extra, width), bool)])
    self.peak_rows = max(self.peak_rows, self.rows_held)

  def add(self, row: int, col: int, values: np.ndarray,
          valid: np.ndarray) -> None:
    if row < self.top:
      raise ValueError(f"window at row {row} added after rows up to "
                       f"{self.top} were finished.")
    size = self.grid.window
    if values.shape != (size, size, self.channels):
      raise ValueError(f"expected a ({size}, {size}, {self.channels}) window, "
                       f"got {values.shape}.")
    self._grow(row + size)
    rows = min(size, self.grid.height - row)
    cols = min(size, self.grid.width - col)
    start = row - self.top
    weights = self.weights[:rows, :cols]
    target = (slice(start, start + rows), slice(col, col + cols))
    self._sums[target] += weights[..., None] * values[:rows, :cols]
    self._total[target] += weights
    self._valid[target] &= valid[:rows, :cols]

  def finish_rows(self, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """(blended (n, W, C) float32, valid (n, W) bool) for rows [top, stop)."""
    count = max(0, min(stop, self.top + self.rows_held) - self.top)
    total = self._total[:count]
    if np.any(total <= 0):
      raise RuntimeError(f"rows {self.top}..{self.top + count} are not fully "
                         "covered by windows.")
    blended = self._sums[:count] / total[..., None]
    valid = self._valid[:count].copy()
    self._sums = self._sums[count:].copy()
    self._total = self._total[count:].copy()
    self._valid = self._valid[count:].copy()
    self.top += count
    return blended, valid
