"""rsjax.train.samples: sample grids with column titles, a land-cover legend,
scale notes, enlarged small tiles and no padding rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from configs import rs_spade
from rsjax.systems import base
from rsjax.systems import inputs
from rsjax.train import samples

RED = np.array([255, 0, 0], np.uint8)


def _red(rows, tile):
  """A plain panel of pure red tiles, to find the tiles in a grid."""
  image = np.zeros((rows, tile, tile, 3), np.float32)
  image[..., 0] = 1.0
  return image


def _tile_box(canvas):
  """(top, bottom, left, right) of the red pixels of a grid."""
  rows, cols = np.nonzero(np.all(canvas == RED, axis=-1))
  return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


def _colours(region) -> set[tuple[int, int, int]]:
  return {tuple(c) for c in region.reshape(-1, 3)}


def _batch(rows=4, tile=32, seed=0):
  rng = np.random.default_rng(seed)
  return {"s1": rng.uniform(-1, 1, (rows, tile, tile, 2)).astype(np.float32),
          "lulc": rng.integers(0, 9, (rows, tile, tile)).astype(np.uint8),
          "dem": rng.uniform(-1, 1, (rows, tile, tile, 4)).astype(np.float32),
          "s2": rng.uniform(-1, 1, (rows, tile, tile, 4)).astype(np.float32)}


def test_titles_are_drawn_above_each_column():
  titled = {"marker": base.Panel(_red(2, 32), "marker red"),
            "s2": inputs.field_panels("s2", _batch()["s2"][:2], 9)["s2 RGB"]}
  canvas = samples.grid(titled)
  assert canvas.dtype == np.uint8 and canvas.ndim == 3
  top, _, left, right = _tile_box(canvas)
  for column in (slice(left, right), slice(right, None)):
    assert np.any(canvas[:top - 1, column] < 128), "no title above a column"
  untitled = {k: dataclasses.replace(base.as_panel(k, v), title="")
              for k, v in titled.items()}
  blank = samples.grid(untitled)
  top, *_ = _tile_box(blank)
  assert np.all(blank[:top - 1] == 255)       # the row above is the frame


def test_land_cover_legend_shows_every_palette_colour_below_the_grid():
  batch = _batch()
  panels = {"marker": _red(4, 32)}
  panels.update(inputs.field_panels("lulc", batch["lulc"], 9))
  canvas = samples.grid(panels)
  _, bottom, _, _ = _tile_box(canvas)
  footer = _colours(canvas[bottom:])
  palette = np.round(inputs.DYNAMIC_WORLD_PALETTE * 255).astype(np.uint8)
  for colour in palette:
    assert tuple(colour) in footer, f"legend lacks the colour {colour}"
  sar = inputs.field_panels("s1", batch["s1"], 9)["s1"]
  no_legend = samples.grid({"marker": _red(4, 32), "s1": sar})
  _, bottom, _, _ = _tile_box(no_legend)
  assert not _colours(no_legend[bottom:]) & {tuple(c) for c in palette}


def test_notes_are_written_below_the_grid():
  sar = inputs.field_panels("s1", _batch()["s1"], 9)["s1"]
  assert "-25 dB" in sar.note
  with_note = samples.grid({"marker": _red(4, 32), "s1": sar})
  without = samples.grid({"marker": _red(4, 32),
                          "s1": dataclasses.replace(sar, note="")})
  assert with_note.shape[0] > without.shape[0]
  _, bottom, _, _ = _tile_box(with_note)
  assert np.any(with_note[bottom:] < 128)


def test_padding_rows_are_not_drawn():
  system = base.get_system(rs_spade.get_config("s1+lulc+dem"))
  batch = _batch(rows=4)

  def drawn(mask=None, rows=4):
    part = {k: v[:rows] for k, v in batch.items()}
    if mask is not None:
      part["mask"] = np.asarray(mask, np.float32)
    return samples.grid(system.panels(part, part["s2"]), max_rows=4)

  full, two, one = drawn(), drawn([1, 1, 0, 0]), drawn([1, 0, 0, 0])
  row = two.shape[0] - one.shape[0]
  assert row > 32 and full.shape[0] - two.shape[0] == 2 * row
  np.testing.assert_array_equal(two, drawn(rows=2))
  empty = drawn([0, 0, 0, 0])
  assert empty.shape[0] < one.shape[0] - row // 2


def test_small_tiles_are_enlarged_and_large_ones_kept():
  small = samples.grid({"marker": _red(1, 16)})
  top, bottom, left, right = _tile_box(small)
  assert (bottom - top, right - left) == (128, 128)
  large = samples.grid({"marker": _red(1, 256)})
  top, bottom, left, right = _tile_box(large)
  assert (bottom - top, right - left) == (256, 256)


def test_plain_arrays_and_shape_errors():
  canvas = samples.grid({"a": np.zeros((6, 8, 8, 3)),
                         "b": np.ones((6, 8, 8, 3))}, max_rows=2)
  assert canvas.shape[1] > 2 * 128
  with pytest.raises(ValueError, match="panel 'b' has shape"):
    samples.grid({"a": np.zeros((2, 8, 8, 3)), "b": np.zeros((2, 8, 8))})
  with pytest.raises(ValueError, match="no panels"):
    samples.grid({})


def test_save_grid_writes_the_grid_as_png(tmp_path):
  panels = inputs.field_panels("lulc", _batch()["lulc"], 9)
  path = samples.save_grid(str(tmp_path / "grid.png"), panels)
  assert path == str(tmp_path / "grid.png")
  np.testing.assert_array_equal(np.asarray(Image.open(path)),
                                samples.grid(panels))
  assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
