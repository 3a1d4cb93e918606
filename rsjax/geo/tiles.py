"""Cutting a reference grid into tiles, dropping empty ones, and splitting them.

`grid_tiles` lays tiles of `tile_size` pixels every `stride` pixels over a
grid (`rsjax.geo.align.ReferenceGrid`, or anything with `width`, `height` and
`transform`). Each `Tile` keeps its `rasterio.windows.Window` and affine
transform, so what is predicted for it can be written back georeferenced.

`read_valid_tiles` reads tiles one at a time through a caller's function (for
instance `AlignedReader.read`) and drops those whose nodata fraction exceeds a
threshold, so memory stays bounded by one tile.

`assign_splits` puts tiles into train / validation / test by square blocks of
`block_size` pixels (several tiles a side): every tile of a block gets the
block's split, so neighbouring, spatially autocorrelated tiles do not leak
across splits. A block's split is a pure function of (seed, key, block row,
block column): u = blake2b hash mapped to [0, 1), and the split is the first
one whose cumulative ratio exceeds u. It is deterministic across runs and
machines and does not change when the grid grows. Tiles that overlap a block
of another split (possible when stride < tile size) are dropped. Tile every
date of a place on the same grid with the same seed and key, so that one place
always lands in one split.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
from affine import Affine
from rasterio.windows import Window

from rsjax.geo.align import window_transform
from rsjax.geo.io import EmptyWindowError

SPLITS = ("train", "validation", "test")
DEFAULT_RATIOS = (0.7, 0.2, 0.1)


@dataclasses.dataclass(frozen=True)
class Tile:
  """One tile of a grid.

  Attributes:
    row, col: the tile's position in the tiling (0-based).
    window: its pixels in the grid.
    transform: the affine transform of its own pixel grid.
    split: 'train', 'validation' or 'test' once assigned, else None.
  """
  row: int
  col: int
  window: Window
  transform: Affine
  split: str | None = None


def _pair(name: str, value) -> tuple[int, int]:
  pair = (value, value) if np.ndim(value) == 0 else tuple(value)
  if len(pair) != 2 or not all(
      float(v) == int(v) and int(v) > 0 for v in pair):
    raise ValueError(
        f"{name} must be a positive whole number of pixels or a pair "
        f"(rows, cols), got {value!r}.")
  return int(pair[0]), int(pair[1])


def _offsets(length: int, size: int, stride: int,
             cover_edges: bool) -> list[int]:
  offsets = list(range(0, length - size + 1, stride))
  if cover_edges and offsets[-1] + size < length:
    offsets.append(length - size)
  return offsets


def grid_tiles(grid, *, tile_size=256, stride=None,
               cover_edges: bool = False) -> list[Tile]:
  """Tiles of `tile_size` pixels every `stride` pixels, row-major.

  Args:
    grid: the reference grid (`width`, `height`, `transform`).
    tile_size: tile size in pixels, a number or (rows, cols).
    stride: step between tile origins; `tile_size` (no overlap) if None.
    cover_edges: add a last row/column of tiles flush with the grid's far
      edges, so every pixel is covered (for full-scene inference). Otherwise
      the strip narrower than a tile at the far edges is left out.
  """
  rows, cols = _pair("tile_size", tile_size)
  row_stride, col_stride = _pair("stride",
                                 (rows, cols) if stride is None else stride)
  if grid.height < rows or grid.width < cols:
    raise ValueError(
        f"grid of {grid.height}x{grid.width} pixels is smaller than one tile "
        f"of {rows}x{cols}.")
  tiles = []
  for tile_row, row_off in enumerate(
      _offsets(grid.height, rows, row_stride, cover_edges)):
    for tile_col, col_off in enumerate(
        _offsets(grid.width, cols, col_stride, cover_edges)):
      window = Window(col_off, row_off, cols, rows)
      tiles.append(Tile(row=tile_row, col=tile_col, window=window,
                        transform=window_transform(window,
                                                   grid.transform)))
  return tiles


def nodata_fraction(valid_masks: np.ndarray | Iterable[np.ndarray]) -> float:
  """Fraction of pixels that are invalid in at least one of the masks."""
  if isinstance(valid_masks, np.ndarray):
    valid_masks = [valid_masks]
  all_valid = None
  for mask in valid_masks:
    mask = np.asarray(mask, dtype=bool)
    all_valid = mask if all_valid is None else all_valid & mask
  if all_valid is None:
    raise ValueError("nodata_fraction: no mask given.")
  return 1.0 - float(all_valid.mean())


def read_valid_tiles(tiles: Iterable[Tile], read: Callable[[Window], Mapping],
                     *, max_nodata_fraction: float = 0.0,
                     ) -> Iterator[tuple[Tile, Mapping]]:
  """Reads tiles one by one and yields those with enough valid pixels.

  Args:
    tiles: the tiles to read.
    read: window -> {source name: array with a `valid` mask}, e.g.
      `AlignedReader.read`; a tile on which it raises `EmptyWindowError` is
      dropped (pass `allow_empty=True` to `read` to keep empty tiles with
      `max_nodata_fraction=1`).
    max_nodata_fraction: a tile is dropped when the fraction of its pixels
      that are invalid in any source exceeds this (0: only complete tiles).

  Yields:
    (tile, what `read` returned for it).
  """
  if not 0.0 <= max_nodata_fraction <= 1.0:
    raise ValueError(
        f"max_nodata_fraction must be in [0, 1], got {max_nodata_fraction}.")
  for tile in tiles:
    try:
      arrays = read(tile.window)
    except EmptyWindowError:
      if max_nodata_fraction < 1.0:
        continue  # No valid pixel at all: over any threshold below 1.
      raise
    if nodata_fraction([a.valid for a in arrays.values()]) <= (
        max_nodata_fraction):
      yield tile, arrays


def _check_ratios(ratios: Sequence[float]) -> np.ndarray:
  ratios = np.asarray(ratios, dtype=np.float64)
  if (ratios.shape != (len(SPLITS),) or not np.isfinite(ratios).all()
      or (ratios < 0).any() or ratios.sum() <= 0):
    raise ValueError(
        f"ratios must be {len(SPLITS)} non-negative numbers for {SPLITS} with "
        f"a positive sum, got {ratios.tolist()}.")
  return np.cumsum(ratios) / ratios.sum()


def block_split(block_row: int, block_col: int, *,
                ratios: Sequence[float] = DEFAULT_RATIOS, seed: int = 0,
                key: str = "") -> str:
  """The split of one block: a hash of (seed, key, block position)."""
  cumulative = _check_ratios(ratios)
  message = f"{seed}/{key}/{block_row}/{block_col}".encode()
  digest = hashlib.blake2b(message, digest_size=8).digest()
  uniform = int.from_bytes(digest, "big") / 2**64
  index = int(np.searchsorted(cumulative, uniform, side="right"))
  return SPLITS[min(index, len(SPLITS) - 1)]


def assign_splits(tiles: Iterable[Tile], *, block_size: int = 1024,
                  ratios: Sequence[float] = DEFAULT_RATIOS, seed: int = 0,
                  key: str = "") -> list[Tile]:
  """Assigns each tile the split of its spatial block.

  Args:
    tiles: tiles of one grid.
    block_size: block side in pixels; best a multiple of the tile stride (the
      default holds 4x4 tiles of 256 pixels).
    ratios: relative sizes of train, validation and test (7:2:1 by default);
      reached approximately, by blocks, over many blocks.
    seed, key: select the assignment (key can name a region).

  Returns:
    The tiles with `split` set, minus those that overlap a block of another
    split.
  """
  block_size = _pair("block_size", block_size)[0]
  _check_ratios(ratios)
  splits: dict[tuple[int, int], str] = {}

  def split_of(block):
    if block not in splits:
      splits[block] = block_split(*block, ratios=ratios, seed=seed, key=key)
    return splits[block]

  assigned = []
  for tile in tiles:
    window = tile.window
    first_row, first_col = (int(window.row_off) // block_size,
                            int(window.col_off) // block_size)
    last_row = (int(window.row_off + window.height) - 1) // block_size
    last_col = (int(window.col_off + window.width) - 1) // block_size
    split = split_of((first_row, first_col))
    if all(split_of((r, c)) == split
           for r in range(first_row, last_row + 1)
           for c in range(first_col, last_col + 1)):
      assigned.append(dataclasses.replace(tile, split=split))
  return assigned
