"""Sample grids: one PNG with a row per example and a column per panel.

Panels come from the system (`System.panels`): inputs as grey or palette
images, prediction and target as RGB/NRG composites, all (B, H, W, 3) floats
in [0, 1]. The PNG is written to a temporary name and renamed, so a half-written
file never looks complete.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageDraw

from rsjax.store import atomic

_LABEL_HEIGHT = 14
_GAP = 2


def grid(panels: Mapping[str, np.ndarray], max_rows: int = 4) -> np.ndarray:
  """(rows * H + labels, columns * W, 3) uint8 image of the panels."""
  if not panels:
    raise ValueError("no panels to draw")
  names = list(panels)
  first = np.asarray(panels[names[0]])
  rows = min(max_rows, first.shape[0])
  height, width = first.shape[1:3]
  canvas = np.full((_LABEL_HEIGHT + rows * (height + _GAP),
                    len(names) * (width + _GAP), 3), 255, np.uint8)
  for column, name in enumerate(names):
    images = np.asarray(panels[name], np.float32)
    if images.shape[1:] != (height, width, 3):
      raise ValueError(f"panel {name!r} has shape {images.shape}; every panel "
                       f"must be (B, {height}, {width}, 3)")
    for row in range(rows):
      top = _LABEL_HEIGHT + row * (height + _GAP)
      left = column * (width + _GAP)
      canvas[top:top + height, left:left + width] = np.round(
          np.clip(images[row], 0, 1) * 255).astype(np.uint8)
  image = Image.fromarray(canvas)
  draw = ImageDraw.Draw(image)
  for column, name in enumerate(names):
    draw.text((column * (width + _GAP) + 2, 1), name, fill=(0, 0, 0))
  return np.asarray(image)


def save_grid(path: str, panels: Mapping[str, np.ndarray],
              max_rows: int = 4) -> str:
  with atomic.atomic_path(path, suffix=".png") as temporary:
    Image.fromarray(grid(panels, max_rows)).save(temporary)
  return path
