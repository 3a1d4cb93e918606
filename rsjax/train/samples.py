"""Sample grids: one PNG with a row per example and a column per panel.

Panels come from the system (`System.panels`, `rsjax.systems.base.Panel`):
(B, H, W, 3) images in [0, 1] of the real examples of a batch (the systems
leave padding rows out), each with a title naming the field, the bands and
the stretch. Plain arrays work too and are titled by their key. Each column
carries its title, wrapped to the column; under the grid come the swatches of
every legend (land-cover classes by name) and the panels' notes (the dB range
of SAR's grey, how composites are stretched). Tiles narrower than `MIN_TILE`
pixels are enlarged by an integer factor (nearest neighbour), so that titles
fit and pixels stay visible at the demo's small tiles. The PNG is written to
a temporary name and renamed, so a half-written file never looks complete.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rsjax.store import atomic
from rsjax.systems import base

MIN_TILE = 128
_GAP = 4
_MARGIN = 6
_FOOTER_WIDTH = 480     # narrow grids get this much room for legend and notes
_TEXT = (0, 0, 0)
_SWATCH_EDGE = (128, 128, 128)
_FRAME = (190, 190, 190)   # around each tile, so white or black tiles show
_BREAKS = re.compile(r" +(?!%)")   # spaces, but '2-98 %' stays on one line
_NO_ROWS = "No examples to show: every row of the batch is padding."


def _font(size: int) -> ImageFont.ImageFont:
  try:
    return ImageFont.load_default(size=size)
  except TypeError:                     # Pillow < 10.1: one small bitmap font
    return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
  """`text` broken at spaces into lines at most `width` pixels wide (a
  longer word gets a line of its own)."""
  lines = []
  for word in filter(None, _BREAKS.split(text.strip())):
    joined = f"{lines[-1]} {word}" if lines else word
    if lines and draw.textlength(joined, font=font) <= width:
      lines[-1] = joined
    else:
      lines.append(word)
  return lines or [""]


def _colour(rgb) -> tuple[int, int, int]:
  return tuple(int(round(min(max(c, 0.0), 1.0) * 255)) for c in rgb)


def _legend_layout(draw, legend, font, size: int, width: int):
  """[(x, y, label, colour)] of the swatches flowed into lines of `width`
  pixels, and the height they take."""
  placed, x, y = [], 0, 0
  step = size + 6
  for label, rgb in legend:
    item = size + 4 + int(draw.textlength(label, font=font)) + 14
    if x and x + item > width:
      x, y = 0, y + step
    placed.append((x, y, label, rgb))
    x += item
  return placed, (y + step if placed else 0)


def grid(panels: Mapping[str, base.Panel | np.ndarray],
         max_rows: int = 4) -> np.ndarray:
  """The panels as one (height, width, 3) uint8 image: titles, then up to
  `max_rows` rows of tiles, then legend and notes."""
  columns = base.grid_columns(panels, max_rows)
  rows, height, width = columns[0].image.shape[:3]
  scale = max(1, -(-MIN_TILE // max(1, min(height, width))))
  tile_h, tile_w = height * scale, width * scale
  size = max(11, min(16, tile_w // 16))
  font = _font(size)
  line = size + 4
  legend = base.grid_legend(columns)
  notes = base.grid_notes(columns) + (() if rows else (_NO_ROWS,))

  scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
  grid_width = len(columns) * (tile_w + _GAP) - _GAP
  inner = max(grid_width, _FOOTER_WIDTH if legend or notes else 0)
  titles = [_wrap(scratch, p.title, font, tile_w - 6) for p in columns]
  title_height = max(len(t) for t in titles) * line + _GAP
  swatches, legend_height = _legend_layout(scratch, legend, font, size, inner)
  note_lines = [l for n in notes for l in _wrap(scratch, n, font, inner)]
  footer = legend_height + len(note_lines) * line
  top = _MARGIN + title_height
  bottom = top + rows * (tile_h + _GAP) + (_GAP if footer else 0)

  canvas = np.full((bottom + footer + _MARGIN, inner + 2 * _MARGIN, 3), 255,
                   np.uint8)
  for column, panel in enumerate(columns):
    left = _MARGIN + column * (tile_w + _GAP)
    tiles = np.round(panel.image * 255).astype(np.uint8)
    tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    for row in range(rows):
      y = top + row * (tile_h + _GAP)
      canvas[y:y + tile_h, left:left + tile_w] = tiles[row]

  image = Image.fromarray(canvas)
  draw = ImageDraw.Draw(image)
  for column in range(len(columns)):
    left = _MARGIN + column * (tile_w + _GAP)
    for row in range(rows):
      y = top + row * (tile_h + _GAP)
      draw.rectangle((left - 1, y - 1, left + tile_w, y + tile_h),
                     outline=_FRAME)
  for column, lines in enumerate(titles):
    left = _MARGIN + column * (tile_w + _GAP) + 1
    for index, text in enumerate(lines):
      draw.text((left, _MARGIN + index * line), text, fill=_TEXT, font=font)
  for x, y, label, rgb in swatches:
    x, y = _MARGIN + x, bottom + y
    draw.rectangle((x, y + 1, x + size, y + size + 1), fill=_colour(rgb),
                   outline=_SWATCH_EDGE)
    draw.text((x + size + 4, y), label, fill=_TEXT, font=font)
  for index, text in enumerate(note_lines):
    draw.text((_MARGIN, bottom + legend_height + index * line), text,
              fill=_TEXT, font=font)
  return np.asarray(image)


def save_grid(path: str, panels: Mapping[str, base.Panel | np.ndarray],
              max_rows: int = 4) -> str:
  """Writes `grid(panels, max_rows)` as a PNG at `path`; returns the path."""
  with atomic.atomic_path(path, suffix=".png") as temporary:
    Image.fromarray(grid(panels, max_rows)).save(temporary)
  return path
