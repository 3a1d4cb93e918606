"""Spatially blocked train/validation/test splits, balanced over all scenes.

`rsjax.geo.tiles.assign_splits` hashes each block independently, which reaches
7:2:1 only over many blocks; a small dataset of a few dozen blocks can come out
far from it. Here every block of every scene (a square of `block_size` pixels,
keyed by (scene id, block row, block column)) is first counted (how many kept
tiles have their origin in it), then the blocks are visited in a seeded
pseudo-random order (a blake2b hash of seed and key, so the same on every
machine) and each goes to the split that is furthest below its target share.
Every split then ends within one block's tile count of its target.

When there are at least as many blocks as splits, every split with a
positive ratio gets at least one block: a split the greedy pass left empty
takes the smallest block of the split with the most blocks.

As in `assign_splits`, all tiles of a block share its split, and a tile that
also covers a block of another split (possible with overlapping tiles or
blocks that are not a multiple of the tile size) is dropped, so no pixel is in
two splits.

Small areas: `plan_splits` tries the configured block size first and, while
a split stays empty, ever smaller blocks (halving, down to one tile step), so
that any area with at least three tiles builds into three non-empty splits;
the `SplitPlan` says which block size it took.
"""

from __future__ import annotations

import dataclasses
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
  _fill_empty_splits(result, block_counts, shares, seed)
  return result


def _fill_empty_splits(result: dict[Hashable, str],
                       block_counts: Mapping[Hashable, int],
                       shares: np.ndarray, seed: int) -> None:
  """Moves blocks into empty splits of positive share, while the split with
  the most blocks has more than one: its block with the fewest tiles (ties
  by the seeded order) goes to the empty split."""
  for split, share in zip(SPLITS, shares):
    if share <= 0 or split in result.values():
      continue
    members = {s: [k for k, v in result.items() if v == s] for s in SPLITS}
    donor = max(SPLITS, key=lambda s: len(members[s]))
    if len(members[donor]) < 2:
      return
    moved = min(members[donor],
                key=lambda k: (block_counts[k], _order_key(seed, k)))
    result[moved] = split


def blocks_of(tile: Tile, block_size: int) -> list[tuple[int, int]]:
  """The (block row, block column) of every block a tile's window touches."""
  window = tile.window
  row0, col0 = int(window.row_off), int(window.col_off)
  row1 = int(window.row_off + window.height) - 1
  col1 = int(window.col_off + window.width) - 1
  return [(r, c) for r in range(row0 // block_size, row1 // block_size + 1)
          for c in range(col0 // block_size, col1 // block_size + 1)]


@dataclasses.dataclass(frozen=True)
class SplitPlan:
  """Which tiles go to which split, by which blocks.

  Attributes:
    block_size: the block side in pixels the plan was made with.
    tiles: {split: [(scene id, its tiles in the split, in input order)]},
      scenes in input order; scenes without a tile in a split are left out.
    blocks: {(scene id, block row, block column): split} of every block
      holding a tile origin.
    block_tiles: {block key: tiles kept in it}.
    straddling: {scene id: tiles dropped because they cover blocks of two
      splits}.
  """
  block_size: int
  tiles: Mapping[str, list[tuple[str, list[Tile]]]]
  blocks: Mapping[tuple[str, int, int], str]
  block_tiles: Mapping[tuple[str, int, int], int]
  straddling: Mapping[str, int]

  @property
  def counts(self) -> dict[str, int]:
    """{split: number of tiles}."""
    return {split: sum(len(tiles) for _, tiles in self.tiles[split])
            for split in SPLITS}


def split_tiles(tiles_by_scene: Mapping[str, Sequence[Tile]], *,
                block_size: int, ratios: Sequence[float], seed: int,
                ) -> SplitPlan:
  """Splits the kept tiles of all scenes by balanced spatial blocks.

  Args:
    tiles_by_scene: {scene id: its kept tiles}.
    block_size: block side in pixels.
    ratios, seed: see `balanced_block_splits`.
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
  block_tiles = {key: 0 for key in counts}
  straddling = {}
  for scene_id, tiles in tiles_by_scene.items():
    per_split: dict[str, list[Tile]] = {s: [] for s in SPLITS}
    straddling[scene_id] = 0
    for tile in tiles:
      blocks = blocks_of(tile, block_size)
      split = block_split[(scene_id, *blocks[0])]
      # Blocks holding no tile origin have no split and take any neighbour.
      if all(block_split.get((scene_id, *b), split) == split for b in blocks):
        per_split[split].append(tile)
        block_tiles[(scene_id, *blocks[0])] += 1
      else:
        straddling[scene_id] += 1
    for split, kept in per_split.items():
      if kept:
        result[split].append((scene_id, kept))
  return SplitPlan(block_size=int(block_size), tiles=result,
                   blocks=block_split, block_tiles=block_tiles,
                   straddling=straddling)


def block_sizes(block_size: int, step: int) -> list[int]:
  """The block sizes `plan_splits` tries: `block_size`, then halves of it
  while larger than `step` (the tile stride), then `step`."""
  sizes = [int(block_size)]
  while sizes[-1] // 2 > step:
    sizes.append(sizes[-1] // 2)
  if sizes[-1] > step:
    sizes.append(int(step))
  return sizes


def plan_splits(tiles_by_scene: Mapping[str, Sequence[Tile]], *,
                block_size: int, step: int, ratios: Sequence[float],
                seed: int) -> SplitPlan:
  """The plan of the first of `block_sizes(block_size, step)` that gives
  every split of positive ratio a tile, else the last one tried."""
  for size in block_sizes(block_size, step):
    plan = split_tiles(tiles_by_scene, block_size=size, ratios=ratios,
                       seed=seed)
    if all(plan.counts[split] for split, ratio in zip(SPLITS, ratios)
           if ratio > 0):
      return plan
  return plan
