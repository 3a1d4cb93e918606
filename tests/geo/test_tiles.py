"""Grid tiling, nodata filtering and spatially blocked splits."""

from __future__ import annotations

import collections
import types

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from rsjax.geo import tiles
from rsjax.geo.align import ReferenceGrid


def make_grid(height, width, res=10.0):
  return ReferenceGrid(crs=CRS.from_epsg(32633),
                       transform=Affine(res, 0, 500000.0, 0, -res, 5000000.0),
                       width=width, height=height)


def test_tiles_keep_window_and_transform():
  grid = make_grid(100, 130)
  result = tiles.grid_tiles(grid, tile_size=32)
  assert len(result) == 3 * 4  # The strips narrower than a tile are left out.
  tile = result[5]
  assert (tile.row, tile.col) == (1, 1)
  assert tile.window == Window(32, 32, 32, 32)
  assert tile.transform == Affine(10.0, 0, 500320.0, 0, -10.0, 4999680.0)
  assert tile.split is None


def test_stride_and_cover_edges():
  grid = make_grid(100, 100)
  overlapping = tiles.grid_tiles(grid, tile_size=40, stride=20)
  assert [t.window.col_off for t in overlapping[:4]] == [0, 20, 40, 60]
  assert len(overlapping) == 16
  covering = tiles.grid_tiles(grid, tile_size=(40, 30), cover_edges=True)
  covered = np.zeros(grid.shape, bool)
  for tile in covering:
    window = tile.window
    covered[window.row_off:window.row_off + window.height,
            window.col_off:window.col_off + window.width] = True
    assert window.row_off + window.height <= 100
    assert window.col_off + window.width <= 100
  assert covered.all()


def _expected_origins(length, size, stride, cover_edges):
  """Tile origins along one axis, by enumeration: every multiple of `stride`
  whose tile fits; with `cover_edges`, plus a tile flush with the far edge
  when some pixel is still uncovered."""
  origins = [o for o in range(length) if o % stride == 0 and o + size <= length]
  covered = set()
  for o in origins:
    covered.update(range(o, o + size))
  if cover_edges and len(covered) < length:
    origins.append(length - size)
  return origins


@pytest.mark.parametrize("cover_edges", [False, True])
def test_tile_windows_equal_an_enumeration(cover_edges):
  """Non-square tiles and strides over grids from exactly one tile up, with
  and without a remainder strip; tile sizes from 1 pixel."""
  for height, width, size, stride in [
      (8, 8, (8, 8), None), (9, 8, (8, 8), None), (8, 9, (8, 8), None),
      (20, 31, (6, 4), None), (20, 31, (6, 4), (5, 3)), (13, 7, (3, 7), 2),
      (5, 4, 1, None), (16, 17, 8, 4)]:
    grid = make_grid(height, width)
    got = tiles.grid_tiles(grid, tile_size=size, stride=stride,
                           cover_edges=cover_edges)
    rows, cols = (size, size) if np.ndim(size) == 0 else size
    row_stride, col_stride = ((rows, cols) if stride is None else
                              (stride, stride) if np.ndim(stride) == 0
                              else stride)
    want = [Window(c, r, cols, rows)
            for r in _expected_origins(height, rows, row_stride, cover_edges)
            for c in _expected_origins(width, cols, col_stride, cover_edges)]
    assert [t.window for t in got] == want, (height, width, size, stride)


def test_default_tiles_are_256_pixels():
  got = tiles.grid_tiles(make_grid(600, 520))
  assert [t.window for t in got] == [Window(c, r, 256, 256)
                                     for r in (0, 256) for c in (0, 256)]


def test_bad_tiling_arguments():
  for height, width in ((10, 16), (16, 10)):    # too small on one axis only
    with pytest.raises(ValueError, match=f"{height}x{width} pixels is smaller "
                       "than one tile of 16x16"):
      tiles.grid_tiles(make_grid(height, width), tile_size=16)
  with pytest.raises(ValueError, match=r"^tile_size must be a positive"):
    tiles.grid_tiles(make_grid(10, 10), tile_size=(4, 4, 4))
  with pytest.raises(ValueError, match=r"^stride must be a positive"):
    tiles.grid_tiles(make_grid(10, 10), tile_size=4, stride=(2, 0))
  with pytest.raises(ValueError, match="smaller than one tile"):
    tiles.grid_tiles(make_grid(10, 10), tile_size=16)
  with pytest.raises(ValueError, match="tile_size"):
    tiles.grid_tiles(make_grid(10, 10), tile_size=0)
  with pytest.raises(ValueError, match="stride"):
    tiles.grid_tiles(make_grid(10, 10), tile_size=4, stride=2.5)


def test_read_valid_tiles_drops_tiles_over_the_nodata_threshold():
  grid = make_grid(64, 64)
  valid = np.ones(grid.shape, bool)
  valid[:16, :16] = False  # Tile (0, 0) of 32 px: 25% nodata.
  valid[40, 40] = False    # Tile (1, 1): 1 pixel of 1024.
  reads = []

  def read(window):
    reads.append(window)
    rows, cols = window.toslices()
    return {"s2": types.SimpleNamespace(valid=valid[rows, cols]),
            "dem": types.SimpleNamespace(valid=np.ones((32, 32), bool))}

  all_tiles = tiles.grid_tiles(grid, tile_size=32)
  kept = [t for t, _ in tiles.read_valid_tiles(all_tiles, read)]
  assert [(t.row, t.col) for t in kept] == [(0, 1), (1, 0)]
  assert len(reads) == 4
  kept = [t for t, _ in tiles.read_valid_tiles(
      all_tiles, read, max_nodata_fraction=0.01)]
  assert [(t.row, t.col) for t in kept] == [(0, 1), (1, 0), (1, 1)]
  assert tiles.nodata_fraction([valid[:32, :32], np.ones((32, 32))]) == 0.25


def test_tiles_never_cross_splits_within_a_block():
  grid = make_grid(2048, 2048)
  all_tiles = tiles.grid_tiles(grid, tile_size=64)
  assigned = tiles.assign_splits(all_tiles, block_size=256, seed=3)
  assert len(assigned) == len(all_tiles)  # No overlap, nothing dropped.
  by_block = collections.defaultdict(set)
  for tile in assigned:
    block = (tile.window.row_off // 256, tile.window.col_off // 256)
    by_block[block].add(tile.split)
  assert len(by_block) == 64
  assert all(len(splits) == 1 for splits in by_block.values())
  assert {s for splits in by_block.values() for s in splits} == set(
      tiles.SPLITS)


def test_overlapping_tiles_between_splits_are_dropped():
  grid = make_grid(1024, 1024)
  all_tiles = tiles.grid_tiles(grid, tile_size=64, stride=32)
  assigned = tiles.assign_splits(all_tiles, block_size=128, seed=0)
  assert 0 < len(assigned) < len(all_tiles)
  footprint = {split: np.zeros(grid.shape, bool) for split in tiles.SPLITS}
  for tile in assigned:
    rows, cols = tile.window.toslices()
    footprint[tile.split][rows, cols] = True
  train, validation, test = (footprint[s] for s in tiles.SPLITS)
  assert not (train & validation).any()
  assert not (train & test).any()
  assert not (validation & test).any()


def test_split_ratios_over_many_blocks():
  counts = collections.Counter(
      tiles.block_split(row, col, seed=11)
      for row in range(100) for col in range(100))
  fractions = [counts[split] / 10000 for split in tiles.SPLITS]
  np.testing.assert_allclose(fractions, [0.7, 0.2, 0.1], atol=0.02)
  counts = collections.Counter(
      tiles.block_split(row, 0, ratios=(1, 1, 0)) for row in range(2000))
  assert counts["test"] == 0
  assert abs(counts["train"] - 1000) < 100


def test_splits_are_deterministic_and_depend_on_seed():
  all_tiles = tiles.grid_tiles(make_grid(1024, 1024), tile_size=64)
  first = [t.split for t in tiles.assign_splits(all_tiles, block_size=128)]
  again = [t.split for t in tiles.assign_splits(all_tiles, block_size=128)]
  other = [t.split for t in tiles.assign_splits(all_tiles, block_size=128,
                                                seed=1)]
  assert first == again
  assert first != other
  # A bigger grid keeps the splits of the blocks it shares.
  bigger = tiles.assign_splits(
      tiles.grid_tiles(make_grid(1536, 1536), tile_size=64), block_size=128)
  shared = {(t.row, t.col): t.split for t in bigger}
  assert first == [shared[(t.row, t.col)] for t in all_tiles]


def test_bad_ratios_raise():
  with pytest.raises(ValueError, match="ratios"):
    tiles.block_split(0, 0, ratios=(0.7, 0.3))
  with pytest.raises(ValueError, match="ratios"):
    tiles.assign_splits([], ratios=(1, -1, 1))


# The split of a block as the module docstring defines it, written out here:
# u = blake2b(b"{seed}/{key}/{row}/{col}", 8 bytes) read big-endian / 2**64,
# and the split is the first one whose cumulative ratio exceeds u.
def documented_split(row, col, ratios=(0.7, 0.2, 0.1), seed=0, key=""):
  import hashlib
  digest = hashlib.blake2b(f"{seed}/{key}/{row}/{col}".encode(),
                           digest_size=8).digest()
  u = int.from_bytes(digest, "big") / 2**64
  total = sum(ratios)
  cumulative = 0.0
  for split, ratio in zip(tiles.SPLITS, ratios):
    cumulative += ratio
    if cumulative / total > u:
      return split
  raise AssertionError("u >= 1 cannot happen")


def test_block_split_is_the_documented_hash():
  positions = [(r, c) for r in range(12) for c in range(12)]
  # Defaults: seed 0, empty key, 7:2:1.
  assert [tiles.block_split(r, c) for r, c in positions] == [
      documented_split(r, c) for r, c in positions]
  assert [tiles.block_split(r, c, ratios=(1, 2, 5), seed=7, key="north")
          for r, c in positions] == [
              documented_split(r, c, (1, 2, 5), 7, "north")
              for r, c in positions]


def test_assign_splits_defaults_to_blocks_of_1024_pixels():
  # 256-px tiles of a 2048-px grid: the default blocks hold 4x4 tiles, and
  # each tile gets the documented split of the block holding its origin.
  all_tiles = tiles.grid_tiles(make_grid(2048, 2048), tile_size=256)
  assigned = tiles.assign_splits(all_tiles)
  assert len(assigned) == 64
  assert [t.split for t in assigned] == [
      documented_split(t.window.row_off // 1024, t.window.col_off // 1024)
      for t in assigned]
  # A seed whose four blocks are not all of one split, so that a tile placed
  # in the wrong block shows.
  seed = next(s for s in range(100) if len(
      {documented_split(r, c, seed=s) for r in (0, 1) for c in (0, 1)}) > 1)
  assigned = tiles.assign_splits(all_tiles, seed=seed)
  assert len(assigned) == 64
  assert [t.split for t in assigned] == [
      documented_split(t.window.row_off // 1024, t.window.col_off // 1024,
                       seed=seed) for t in assigned]


def test_assign_splits_uses_the_given_ratios_seed_and_key():
  all_tiles = tiles.grid_tiles(make_grid(1024, 1024), tile_size=64)
  assigned = tiles.assign_splits(all_tiles, block_size=128,
                                 ratios=(0.2, 0.3, 0.5), seed=5, key="east")
  assert len(assigned) == len(all_tiles)
  assert [t.split for t in assigned] == [
      documented_split(t.window.row_off // 128, t.window.col_off // 128,
                       (0.2, 0.3, 0.5), 5, "east") for t in assigned]


def test_a_tile_one_pixel_into_a_block_of_another_split_is_dropped():
  # Blocks of 128 px. A tile whose last row (or column) is pixel 128 reaches
  # block 1 by one pixel; it is kept only when that block has its split.
  seed = next(s for s in range(100)
              if documented_split(0, 0, seed=s) != documented_split(1, 0,
                                                                    seed=s)
              and documented_split(0, 0, seed=s) != documented_split(0, 1,
                                                                     seed=s))
  identity = Affine.identity()
  tall = tiles.Tile(0, 0, Window(0, 0, 128, 129), identity)
  wide = tiles.Tile(0, 1, Window(0, 0, 129, 128), identity)
  inside = tiles.Tile(0, 2, Window(0, 0, 128, 128), identity)
  kept = tiles.assign_splits([tall, wide, inside], block_size=128, seed=seed)
  assert [(t.col, t.split) for t in kept] == [
      (2, documented_split(0, 0, seed=seed))]


def test_zero_ratios_and_bad_block_size_raise():
  with pytest.raises(ValueError, match="ratios"):
    tiles.block_split(0, 0, ratios=(0, 0, 0))
  with pytest.raises(ValueError, match="^block_size must be a positive"):
    tiles.assign_splits([], block_size=0)


def test_nodata_fraction_of_one_mask_and_of_none():
  valid = np.ones((4, 5), bool)
  valid[0, :3] = False  # 3 of 20 pixels.
  assert tiles.nodata_fraction(valid) == pytest.approx(3 / 20, abs=1e-15)
  with pytest.raises(ValueError, match=r"^nodata_fraction: no mask given\.$"):
    tiles.nodata_fraction([])


def test_max_nodata_fraction_of_one_keeps_every_readable_tile():
  from rsjax.geo.io import EmptyWindowError
  grid = make_grid(64, 64)
  valid = np.zeros(grid.shape, bool)
  valid[40, 40] = True  # Tiles 0-2 hold no valid pixel, tile 3 one.

  def read(window):
    rows, cols = window.toslices()
    return {"s2": types.SimpleNamespace(valid=valid[rows, cols])}

  all_tiles = tiles.grid_tiles(grid, tile_size=32)
  kept = [t for t, _ in tiles.read_valid_tiles(all_tiles, read,
                                               max_nodata_fraction=1.0)]
  assert len(kept) == 4
  # A tile `read` cannot return (no valid pixel, allow_empty not given) is
  # an error at 1.0, where an empty tile is not over the threshold; below 1
  # it is dropped.
  def empty_read(window):
    raise EmptyWindowError("empty")

  with pytest.raises(EmptyWindowError):
    list(tiles.read_valid_tiles(all_tiles, empty_read,
                                max_nodata_fraction=1.0))
  assert list(tiles.read_valid_tiles(all_tiles, empty_read,
                                     max_nodata_fraction=0.99)) == []
  for bad in (-0.1, 1.5):
    with pytest.raises(ValueError, match="max_nodata_fraction"):
      list(tiles.read_valid_tiles(all_tiles, read, max_nodata_fraction=bad))
