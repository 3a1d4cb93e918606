"""Spatially blocked train/validation/test splits, balanced over all scenes.

`rsjax.geo.tiles.assign_splits` hashes each block independently, which reaches
7:2:1 only over many blocks; a small dataset of a few dozen blocks can come out
far from it. Here every block of every scene (a square of `block_size` pixels,
keyed by (scene id, block row, block column)) is first counted (how many kept
tiles have their origin in it), then the blocks are visited in a seeded
pseudo-random order (a blake2b hash of seed and key, so the same on every
machine) and each goes to the split that is furthest below its target share.
Every split then ends within one block's tile count of its target.

As in `assign_splits`, all tiles of a block share its split, and a tile that
also covers a block of another split (possible with overlapping tiles or
blocks that are not a multiple of the tile size) is dropped, so no pixel is in
two splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from rsjax.geo.tiles import SPLITS, Tile


def _order_key(seed: int, key) -> bytes:
  return hashlib.blake2b(f"{seed}/{key}".encode(), digest_size=8).digest()


def balanced_block_splits(block_counts: Mapping[Hashable, int], *,
                          ratios: Sequence[float], seed: int,
                          ) -> dict[Hashable, str]:
  """Assigns each block a split so that split tile counts follow `ratios`.

  Args:
    block_counts: {block key: number of tiles in it}; keys need a stable
      `str()` (tuples of str and int).
    ratios: relative sizes of train, validation and test.
    seed: selects the (deterministic) order in which blocks are placed.

  Returns:
    {block key: 'train' | 'validation' | 'test'}.
  """
  ratios = np.asarray(ratios, np.float64)
  if (ratios.shape != (len(SPLITS),) or (ratios < 0).any()
      or not ratios.sum() > 0):
    raise ValueError(f"ratios must be {len(SPLITS)} non-negative numbers with "
                     f"a positive sum, got {list(ratios)}.")
  shares = ratios / ratios.sum()
  counts = np.zeros(len(SPLITS))
  result = {}
  for key in sorted(block_counts, key=lambda k: _order_key(seed, k)):
    size = block_counts[key]
    deficit = shares * (counts.sum() + size) - counts
    index = int(np.argmax(deficit))  # Ties go to the earlier split.
    counts[index] += size
    result[key] = SPLITS[index]
  return result


def blocks_of(tile: Tile, block_size: int) -> list[tuple[int, int]]:
  """The (block row, block column) of every block a tile's window touches."""
  window = tile.window
  row0, col0 = int(window.row_off), int(window.col_off)
  row1 = int(window.row_off + window.height) - 1
  col1 = int(window.col_off + window.width) - 1
  return [(r, c) for r in range(row0 // block_size, row1 // block_size + 1)
          for c in range(col0 // block_size, col1 // block_size + 1)]


def split_tiles(tiles_by_scene: Mapping[str, Sequence[Tile]], *,
                block_size: int, ratios: Sequence[float], seed: int,
                ) -> dict[str, list[tuple[str, list[Tile]]]]:
  """Splits the kept tiles of all scenes by balanced spatial blocks.

  Args:
    tiles_by_scene: {scene id: its kept tiles}.
    block_size: block side in pixels.
    ratios, seed: see `balanced_block_splits`.

  Returns:
    {split: [(scene id, tiles of that scene in the split, in input order)]},
    scenes in input order; scenes without a tile in a split are left out.
  """
  if int(block_size) <= 0:
    raise ValueError(f"block_size must be positive, got {block_size}.")
  counts: dict[tuple[str, int, int], int] = {}
  for scene_id, tiles in tiles_by_scene.items():
    for tile in tiles:
      key = (scene_id, *blocks_of(tile, block_size)[0])  # The origin's block.
      counts[key] = counts.get(key, 0) + 1
  block_split = balanced_block_splits(counts, ratios=ratios, seed=seed)
  result: dict[str, list[tuple[str, list[Tile]]]] = {s: [] for s in SPLITS}
  for scene_id, tiles in tiles_by_scene.items():
    per_split: dict[str, list[Tile]] = {s: [] for s in SPLITS}
    for tile in tiles:
      blocks = blocks_of(tile, block_size)
      split = block_split[(scene_id, *blocks[0])]
      # Blocks holding no tile origin have no split and take any neighbour.
      if all(block_split.get((scene_id, *b), split) == split for b in blocks):
        per_split[split].append(tile)
    for split, kept in per_split.items():
      if kept:
        result[split].append((scene_id, kept))
  return result
