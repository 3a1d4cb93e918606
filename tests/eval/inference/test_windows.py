"""The sliding-window grid and blending of full-scene inference
(rsjax.eval.inference.windows): coverage, the cross-fade weights, exact blending of
agreeing windows, seam-free blending of disagreeing ones, bounded memory."""

import numpy as np
import pytest

from rsjax.eval.inference import windows


@pytest.mark.parametrize("length,window,overlap,expected", [
    (256, 64, 16, [0, 48, 96, 144, 192]),
    (250, 64, 16, [0, 48, 96, 144, 186]),      # last one moved back
    (64, 64, 16, [0]),
    (40, 64, 16, [0]),                          # smaller than one window
    (128, 64, 0, [0, 64]),
])
def test_window_origins_cover_the_axis(length, window, overlap, expected):
  origins = windows.window_origins(length, window, overlap)
  assert origins == expected
  covered = np.zeros(length, bool)
  for start in origins:
    covered[start:start + window] = True
  assert covered.all()
  if length >= window:
    assert origins[-1] + window == length


@pytest.mark.parametrize("window,overlap", [(64, 64), (64, 100), (0, 0),
                                            (64, -1)])
def test_bad_window_or_overlap_is_refused(window, overlap):
  with pytest.raises(ValueError, match="--overlap|--window"):
    windows.check_window(window, overlap)


@pytest.mark.parametrize("window,overlap", [(64, 16), (32, 8), (16, 1),
                                            (64, 32)])
def test_ramp_is_positive_and_cross_fades_to_one(window, overlap):
  r = windows.ramp(window, overlap)
  assert np.all(r > 0) and r.max() <= 1.0
  assert (r == 1.0).sum() == max(window - 2 * overlap, 0)
  np.testing.assert_allclose(r, r[::-1])
  stride = window - overlap
  # The falling end of one window + the rising end of the next = 1.
  np.testing.assert_allclose(r[stride:] + r[:overlap], 1.0, atol=1e-12)
  np.testing.assert_array_equal(windows.ramp(window, 0), 1.0)


def _run(grid, predict):
  """Blends predict(row, col) -> (T, T, C) over every window of grid."""
  acc = windows.StripAccumulator(grid, channels=2)
  rows, valids = [], []
  last_col = grid.col_origins[-1]
  for row, col in grid.windows():
    acc.add(row, col, predict(row, col),
            np.ones((grid.window, grid.window), bool))
    if col == last_col:
      blended, valid = acc.finish_rows(grid.rows_done_after(row))
      rows.append(blended)
      valids.append(valid)
  return np.concatenate(rows), np.concatenate(valids), acc


def _image(height, width):
  r, c = np.mgrid[:height + 64, :width + 64].astype(np.float32)
  return np.stack([np.sin(r / 7) + c / 50, np.cos(c / 5) * r / 90], -1)


def test_agreeing_windows_blend_to_the_image_exactly():
  grid = windows.WindowGrid(height=150, width=110, window=32, overlap=12)
  image = _image(150, 110)
  out, valid, _ = _run(grid, lambda r, c: image[r:r + 32, c:c + 32])
  assert out.shape == (150, 110, 2) and valid.all()
  np.testing.assert_allclose(out, image[:150, :110], rtol=1e-5, atol=1e-5)


def test_window_past_a_small_scene_is_cropped():
  grid = windows.WindowGrid(height=20, width=50, window=32, overlap=8)
  image = _image(20, 50)
  out, _, _ = _run(grid, lambda r, c: image[r:r + 32, c:c + 32])
  np.testing.assert_allclose(out, image[:20, :50], rtol=1e-5, atol=1e-5)


def test_disagreeing_windows_leave_no_seam():
  """Each window is off by its own constant: without overlap the borders
  jump by the full offset, with the cross-fade the largest step between
  neighbouring pixels is a small fraction of it."""
  offsets = {}

  def predict(row, col):
    offset = offsets.setdefault((row, col), len(offsets) % 2)  # 0, 1, 0, ...
    return np.full((32, 32, 2), offset, np.float32)

  def largest_step(overlap):
    offsets.clear()
    grid = windows.WindowGrid(height=96, width=200, window=32, overlap=overlap)
    out, _, _ = _run(grid, predict)
    return max(np.abs(np.diff(out, axis=0)).max(),
               np.abs(np.diff(out, axis=1)).max())

  assert largest_step(0) == pytest.approx(1.0)
  assert largest_step(16) < 0.12     # about pi / (2 * 16)


def test_memory_held_does_not_grow_with_the_scene_height():
  peaks = []
  for height in (64, 640):
    grid = windows.WindowGrid(height=height, width=64, window=32, overlap=8)
    *_, acc = _run(grid, lambda r, c: np.zeros((32, 32, 2), np.float32))
    peaks.append(acc.peak_rows)
  assert peaks[0] == peaks[1] == 32
