"""Alignment of rasters in different CRSs, resolutions and extents."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
import rasterio.io
import rasterio.warp
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from rsjax.geo import align, io, tiles

LANDMARK_LONLAT = (15.3, 45.2)  # In UTM zone 33N (EPSG:32633).


def write_raster(path, data, *, crs, transform, nodata=None, **options):
  data = np.asarray(data)
  if data.ndim == 2:
    data = data[None]
  with rasterio.open(path, "w", driver="GTiff", width=data.shape[2],
                     height=data.shape[1], count=data.shape[0],
                     dtype=data.dtype.name, crs=crs, transform=transform,
                     nodata=nodata, **options) as dataset:
    dataset.write(data)
  return str(path)


def landmark_in(crs):
  xs, ys = rasterio.warp.transform("EPSG:4326", crs, [LANDMARK_LONLAT[0]],
                                   [LANDMARK_LONLAT[1]])
  return xs[0], ys[0]


def centred_transform(x, y, res, pixel):
  """A north-up transform whose pixel (pixel, pixel) is centred on (x, y)."""
  xres, yres = (res, res) if np.ndim(res) == 0 else res
  return Affine(xres, 0, x - (pixel + 0.5) * xres, 0, -yres,
                y + (pixel + 0.5) * yres)


@pytest.fixture
def scene(tmp_path):
  """S2 (UTM 33, 10 m), S1 (UTM 33, 20 m, shifted), LULC (UTM 34, rotated),
  DEM (EPSG:4326, 1 arc-second); each marks the landmark."""
  x, y = landmark_in("EPSG:32633")
  s2 = np.full((4, 120, 120), 1000, np.uint16)
  s2_transform = Affine(10, 0, math.floor(x / 10) * 10 - 600, 0, -10,
                        math.floor(y / 10) * 10 + 610)
  s2[:, 60, 60] = 5000  # The pixel that contains the landmark.
  s1 = np.full((2, 64, 64), 0.01, np.float32)
  s1[:, 30, 30] = 1.0
  x34, y34 = landmark_in("EPSG:32634")
  rng = np.random.default_rng(0)
  lulc = rng.integers(1, 4, size=(100, 100)).astype(np.uint8)
  lulc[49:52, 49:52] = 8
  arcsec = 1 / 3600
  dem = np.full((160, 160), 200.0, np.float32)
  dem[80, 80] = 400.0
  return {
      "s2": write_raster(tmp_path / "s2.tif", s2, crs="EPSG:32633",
                         transform=s2_transform),
      "s1": write_raster(tmp_path / "s1.tif", s1, crs="EPSG:32633",
                         transform=centred_transform(x, y, 20, 30)),
      "lulc": write_raster(tmp_path / "lulc.tif", lulc, crs="EPSG:32634",
                           transform=centred_transform(x34, y34, 10, 50),
                           nodata=0),
      "dem": write_raster(tmp_path / "dem.tif", dem, crs="EPSG:4326",
                          transform=centred_transform(*LANDMARK_LONLAT,
                                                      arcsec, 80)),
  }


def test_landmark_lands_on_the_same_pixel_in_every_source(scene):
  sources = [align.Source(scene["s2"], name="s2"),
             align.Source(scene["s1"], name="s1", expected_bands=2),
             align.Source(scene["lulc"], name="lulc", categorical=True),
             align.Source(scene["dem"], name="dem", resampling=Resampling.cubic)]
  grid = align.reference_grid(sources)
  assert grid.crs.to_epsg() == 32633 and grid.res == (10.0, 10.0)
  with rasterio.open(scene["s2"]) as s2:  # Snapped onto the S2 lattice.
    assert (grid.transform.c - s2.transform.c) % 10 == 0
    assert (grid.transform.f - s2.transform.f) % 10 == 0
  col, row = ~grid.transform @ landmark_in("EPSG:32633")
  expected = np.array([math.floor(row), math.floor(col)])
  with align.AlignedReader(sources, grid) as reader:
    arrays = reader.read()
  for name in ("s2", "s1", "dem"):
    image = arrays[name].data[0]
    found = np.unravel_index(np.argmax(image), image.shape)
    assert np.abs(np.array(found) - expected).max() <= 1, (name, found)
  assert tuple(np.unravel_index(np.argmax(arrays["s2"].data[0]),
                                grid.shape)) == tuple(expected)
  patch = np.argwhere(arrays["lulc"].data[0] == 8).mean(axis=0)
  assert np.abs(patch - expected).max() <= 1.0, patch
  assert arrays["lulc"].data.dtype == np.uint8
  assert arrays["s2"].data.dtype == np.float32
  assert arrays["s1"].data.shape == (2,) + grid.shape


@pytest.mark.parametrize("method", [Resampling.nearest, Resampling.mode],
                         ids=["nearest", "mode"])
def test_categorical_values_are_never_interpolated(tmp_path, method):
  rng = np.random.default_rng(1)
  classes = np.array([0, 2, 3, 5, 9, 11, 200], np.uint8)
  lulc = classes[rng.integers(0, len(classes), size=(90, 110))]
  x, y = landmark_in("EPSG:3035")
  path = write_raster(tmp_path / "lulc.tif", lulc, crs="EPSG:3035",
                      transform=centred_transform(x, y, 30, 45), nodata=0)
  x, y = landmark_in("EPSG:32633")
  for resolution in (10.0, 45.0):
    grid = align.ReferenceGrid(
        crs=rasterio.crs.CRS.from_epsg(32633),
        transform=centred_transform(x, y, resolution, 20), width=40,
        height=40)
    aligned = align.read_aligned(
        align.Source(path, categorical=True, resampling=method), grid)
    values = set(np.unique(aligned.data[0][aligned.valid]).tolist())
    assert values <= {2, 3, 5, 9, 11, 200}
    assert len(values) >= 5
    if resolution < 30:  # Each output pixel sees one source pixel.
      assert not aligned.valid.all()  # Where the source had nodata (0).


@pytest.mark.parametrize("categorical, methods", [
    (False, align.CONTINUOUS_RESAMPLING), (True, align.CATEGORICAL_RESAMPLING)])
def test_every_allowed_resampling_is_the_one_used(tmp_path, categorical,
                                                  methods):
  source = align.Source(tmp_path / "x.tif", categorical=categorical)
  assert source.method == (Resampling.nearest if categorical
                           else Resampling.bilinear)
  for method in methods:       # nearest (== 0) included
    assert align.Source(tmp_path / "x.tif", categorical=categorical,
                        resampling=method).method is method


def test_nearest_on_continuous_data_does_not_interpolate(tmp_path):
  """A 0 / 100 checkerboard read on a grid offset by half a pixel: nearest
  keeps the source values, bilinear mixes them."""
  x, y = landmark_in("EPSG:32633")
  board = (np.indices((40, 40)).sum(0) % 2 * 100).astype(np.float32)
  path = write_raster(tmp_path / "s2.tif", board, crs="EPSG:32633",
                      transform=centred_transform(x, y, 20, 20))
  grid = align.ReferenceGrid(
      crs=rasterio.crs.CRS.from_epsg(32633),
      transform=centred_transform(x + 5, y - 5, 10, 20), width=40, height=40)
  values = {}
  for method in (Resampling.nearest, Resampling.bilinear):
    aligned = align.read_aligned(align.Source(path, resampling=method), grid)
    values[method] = set(np.unique(aligned.data[0][aligned.valid]).tolist())
  assert values[Resampling.nearest] == {0.0, 100.0}
  assert values[Resampling.bilinear] - {0.0, 100.0}


def test_interpolating_categorical_data_is_refused(tmp_path):
  with pytest.raises(ValueError, match=r"lulc.tif.*'bilinear'.*categorical"):
    align.Source(tmp_path / "lulc.tif", categorical=True,
                 resampling=Resampling.bilinear)


def test_nodata_is_a_mask_never_mixed_into_values(tmp_path):
  data = np.full((40, 40), 300.0, np.float32)
  data[10:20, 10:20] = -9999.0
  data[25:30, 25:30] = np.nan
  transform = Affine(20, 0, 500000, 0, -20, 5000000)
  path = write_raster(tmp_path / "dem.tif", data, crs="EPSG:32633",
                      transform=transform, nodata=-9999.0)
  grid = align.reference_grid([path], resolution=10.0)
  aligned = align.read_aligned(align.Source(path), grid)
  assert grid.shape == (80, 80)
  np.testing.assert_array_equal(aligned.data[0][aligned.valid], 300.0)
  assert not aligned.valid[22:38, 22:38].any()
  assert not aligned.valid[52:58, 52:58].any()
  assert aligned.valid[:15].all()
  np.testing.assert_array_equal(aligned.data[0][~aligned.valid], 0.0)


def test_errors_name_the_files(tmp_path):
  data = np.ones((10, 10), np.float32)
  near = write_raster(tmp_path / "near.tif", data, crs="EPSG:32633",
                      transform=Affine(10, 0, 500000, 0, -10, 5000000))
  far = write_raster(tmp_path / "far.tif", data, crs="EPSG:32633",
                     transform=Affine(10, 0, 600000, 0, -10, 5000000))
  with pytest.raises(io.RasterError, match=r"do not overlap.*near.tif.*far"):
    align.reference_grid([near, far])
  geographic = write_raster(tmp_path / "geo.tif", data, crs="EPSG:4326",
                            transform=Affine(0.01, 0, 15, 0, -0.01, 45))
  sliver = write_raster(tmp_path / "sliver.tif", data, crs="EPSG:32633",
                        transform=Affine(10, 0, 500095, 0, -10, 5000000))
  with pytest.raises(io.RasterError, match=r"the common extent of .*near.tif, "
                     r".*sliver.tif is smaller than one 10.0x10.0 pixel\.$"):
    align.reference_grid([near, sliver], bounds=None)
  with pytest.raises(io.RasterError, match=r"geo.tif.*geographic; pass a "
                     r"projected `crs` \(e\.g\. the UTM zone\) for metric "
                     r"pixels\.$"):
    align.reference_grid([geographic])
  with pytest.raises(FileNotFoundError, match="gone.tif"):
    align.reference_grid([near, tmp_path / "gone.tif"])
  with pytest.raises(io.RasterError, match=r"near.tif: has 1 band"):
    align.reference_grid([align.Source(near, expected_bands=4)])
  # A grid window that only covers `far`'s extent holds nothing of `near`.
  grid = align.reference_grid([near], bounds=(500000, 4999900, 600100,
                                              5000000))
  with pytest.raises(io.EmptyWindowError, match=r"near.tif.*no valid pixel"):
    align.read_aligned(near, grid, Window(10000, 0, 10, 10))
  empty = align.read_aligned(near, grid, Window(10000, 0, 10, 10),
                             allow_empty=True)
  assert not empty.valid.any()


def test_windows_stitch_to_the_full_alignment(scene):
  grid = align.reference_grid([scene["s2"], scene["dem"]], resolution=15.0)
  source = align.Source(scene["dem"])
  full = align.read_aligned(source, grid)
  stitched = np.zeros_like(full.data)
  for tile in tiles.grid_tiles(grid, tile_size=16, cover_edges=True):
    part = align.read_aligned(source, grid, tile.window, allow_empty=True)
    rows, cols = tile.window.toslices()
    stitched[:, rows, cols] = part.data
  np.testing.assert_allclose(stitched, full.data, atol=0.5)


def test_large_scene_is_read_with_memory_bounded_by_the_window(
    tmp_path, monkeypatch):
  size, tile_size = 3000, 256
  rows = np.arange(size, dtype=np.uint16)[:, None]
  data = ((rows + np.arange(size, dtype=np.uint16)) % 251).astype(np.uint8)
  data[:, -600:] = 255  # A nodata strip: its tiles are dropped.
  data[:520, 2048:] = 255  # Tile (0, 4) is all nodata: read raises, dropped.
  path = write_raster(tmp_path / "big.tif", data, crs="EPSG:32633",
                      transform=Affine(10, 0, 500000, 0, -10, 5000000),
                      nodata=255, tiled=True, blockxsize=256, blockysize=256,
                      compress="deflate")
  read_shapes = []
  original_read = rasterio.io.DatasetReader.read

  def spy(self, *args, **kwargs):
    array = original_read(self, *args, **kwargs)
    read_shapes.append(array.shape[-2:])
    return array

  monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
  grid = align.reference_grid([path], resolution=20.0)
  assert grid.shape == (1500, 1500)
  all_tiles = tiles.grid_tiles(grid, tile_size=tile_size)
  with align.AlignedReader([align.Source(path, name="big")], grid) as reader:
    kept = list(tiles.read_valid_tiles(
        all_tiles, reader.read))
    assert len(read_shapes) == len(all_tiles) == 25
    with pytest.raises(io.EmptyWindowError, match="big.tif"):
      reader.read(all_tiles[4].window)
  assert len(kept) == 20  # The last column of tiles reaches the nodata strip.
  # Each read covers one tile (2 source pixels per grid pixel) plus a margin.
  bound = 2 * tile_size + 8
  assert max(max(shape) for shape in read_shapes) <= bound
  assert sum(h * w for h, w in read_shapes) < 1.1 * size * size
  tile, arrays = kept[6]
  assert arrays["big"].data.shape == (1, tile_size, tile_size)
  assert arrays["big"].valid.all()


def test_grid_of_a_raster_and_its_profile_round_trip(tmp_path):
  # A 7 x 5 (rows x cols) raster: the grid read back has its CRS, transform
  # and size, and a GeoTIFF written with the grid's profile lands on it.
  transform = Affine(20, 0, 400020, 0, -30, 5000090)
  path = write_raster(tmp_path / "ref.tif", np.zeros((7, 5), np.uint8),
                      crs="EPSG:32632", transform=transform)
  grid = align.ReferenceGrid.from_raster(path)
  assert grid == align.ReferenceGrid(crs=rasterio.crs.CRS.from_epsg(32632),
                                     transform=transform, width=5, height=7)
  profile = grid.profile(count=2, dtype="float32", nodata=-1.0)
  assert profile == dict(driver="GTiff", crs=grid.crs, transform=transform,
                         width=5, height=7, count=2, dtype="float32",
                         nodata=-1.0)
  data = np.arange(70, dtype=np.float32).reshape(2, 7, 5)
  out = tmp_path / "out.tif"
  with rasterio.open(out, "w", **profile) as dataset:
    dataset.write(data)
  with rasterio.open(out) as dataset:
    assert dataset.driver == "GTiff"
    assert dataset.crs.to_epsg() == 32632
    assert dataset.transform == transform
    assert (dataset.count, dataset.height, dataset.width) == (2, 7, 5)
    assert dataset.dtypes == ("float32", "float32")
    assert dataset.nodata == -1.0
    np.testing.assert_array_equal(dataset.read(), data)


def test_reader_checks_band_counts_names_and_reads_the_window(tmp_path):
  data = np.arange(100, dtype=np.float32).reshape(10, 10)
  path = write_raster(tmp_path / "one.tif", data, crs="EPSG:32633",
                      transform=Affine(10, 0, 500000, 0, -10, 5000000))
  with pytest.raises(io.RasterError, match=r"one.tif: has 1 band"):
    align.read_aligned(align.Source(path, expected_bands=3),
                       align.ReferenceGrid.from_raster(path))
  with pytest.raises(io.RasterError, match=r"one.tif: has 1 band"):
    align.AlignedReader([align.Source(path, expected_bands=3)],
                        align.ReferenceGrid.from_raster(path))
  with pytest.raises(ValueError, match="unique"):
    align.AlignedReader([path, align.Source(path, name="one")],
                        align.ReferenceGrid.from_raster(path))
  # The source's own grid: a window reads its pixels unchanged.
  grid = align.ReferenceGrid.from_raster(path)
  wider = align.reference_grid([path], bounds=(500000, 4999900, 500200,
                                               5000000))
  with align.AlignedReader([align.Source(path, name="a")], grid) as reader:
    part = reader.read(Window(2, 3, 4, 5))["a"]
    np.testing.assert_array_equal(part.data[0], data[3:8, 2:6])
    assert part.valid.all()
  with align.AlignedReader([align.Source(path, name="a")], wider) as reader:
    # Columns 10-19 of `wider` lie east of the raster: nothing valid there.
    with pytest.raises(io.EmptyWindowError, match="one.tif"):
      reader.read(Window(12, 0, 4, 4))
    empty = reader.read(Window(12, 0, 4, 4), allow_empty=True)["a"]
    assert empty.data.shape == (1, 4, 4) and not empty.valid.any()
    reader.close()  # Closing early is allowed; leaving the block closes again.


# -- gaps found by mutation testing (TESTING.md) ----------------------------

def _utm_raster(tmp_path, name="one.tif", bands=1, size=10, res=10.0,
                origin=(500000.0, 5000000.0)):
  data = (np.arange(bands * size * size, dtype=np.float32)
          .reshape(bands, size, size) + 1)
  path = write_raster(tmp_path / name, data, crs="EPSG:32633",
                      transform=Affine(res, 0, origin[0], 0, -res, origin[1]))
  return path, data


@pytest.mark.parametrize("resolution", [
    0, -10, math.inf, math.nan, (10, 0), (10, -5), (10, 10, 10), (0.0,)])
def test_a_resolution_that_is_not_a_positive_size_or_pair_is_refused(
    tmp_path, resolution):
  path, _ = _utm_raster(tmp_path)
  with pytest.raises(ValueError, match="resolution must be a positive pixel "
                     r"size or a pair \(xres, yres\), got"):
    align.reference_grid([path], resolution=resolution)


def test_resolutions_below_one_and_unequal_pairs_are_kept(tmp_path):
  path, _ = _utm_raster(tmp_path)          # 100 m x 100 m at 10 m
  fine = align.reference_grid([path], resolution=0.5)
  assert fine.res == (0.5, 0.5) and fine.shape == (200, 200)
  pair = align.reference_grid([path], resolution=(10, 20))
  assert pair.res == (10, 20) and pair.shape == (5, 10)


def test_the_grid_keeps_the_first_rasters_lattice_or_multiples_of_the_pixel(
    tmp_path):
  # The raster's lattice is offset from the multiples of 10 m by 3 and 7 m.
  path, _ = _utm_raster(tmp_path, origin=(500003.0, 5000007.0))
  same_crs = align.reference_grid([path])
  assert (same_crs.transform.c, same_crs.transform.f) == (500003.0,
                                                          5000007.0)
  assert same_crs.shape == (10, 10)
  # In another CRS the grid snaps inwards onto multiples of the pixel size.
  other = align.reference_grid([path], crs="EPSG:3857", resolution=10)
  assert other.transform.c % 10 == 0 and other.transform.f % 10 == 0


def test_snapping_forgives_float_noise_only(tmp_path):
  assert align._snap(100.0 + 1e-9, 0.0, 10.0, math.ceil) == 100.0
  assert align._snap(100.0 - 1e-9, 0.0, 10.0, math.floor) == 100.0
  # A tenth of a pixel is no noise: snapped inwards.
  assert align._snap(101.0, 0.0, 10.0, math.ceil) == 110.0
  assert align._snap(-101.0, 0.0, 10.0, math.floor) == -110.0
  # Exactly at the tolerance (1e-6 pixels) it is not snapped to the lattice.
  edge = 100.0 + align._SNAP_TOLERANCE * 10.0
  assert align._snap(edge, 0.0, 10.0, math.ceil) == 110.0


@pytest.mark.parametrize("bounds", [
    (500000, 4999900, 500000, 5000000),        # zero width
    (500000, 5000000, 500100, 5000000),        # zero height
    (500000, 4999900, 500005, 5000000),        # half a pixel wide
    (500000, 4999995, 500100, 5000000)])       # half a pixel high
def test_a_grid_smaller_than_a_pixel_is_refused(tmp_path, bounds):
  path, _ = _utm_raster(tmp_path)
  with pytest.raises(io.RasterError, match=r"one.tif is smaller than one "
                     r"10.0x10.0 pixel"):
    align.reference_grid([path], bounds=bounds)


def test_a_one_pixel_grid_is_kept(tmp_path):
  path, _ = _utm_raster(tmp_path)
  grid = align.reference_grid([path], bounds=(500020, 4999950, 500030,
                                              4999960))
  assert grid.shape == (1, 1)


def test_rasters_that_only_touch_do_not_overlap(tmp_path):
  west, _ = _utm_raster(tmp_path, "west.tif")
  east, _ = _utm_raster(tmp_path, "east.tif", origin=(500100.0, 5000000.0))
  south, _ = _utm_raster(tmp_path, "south.tif", origin=(500000.0, 4999900.0))
  for other in (east, south):
    with pytest.raises(io.RasterError,
                       match=r"do not overlap: .*west.tif, .*\.tif \(in "):
      align.reference_grid([west, other])
  # The message names the rasters up to the first that leaves no overlap.
  with pytest.raises(io.RasterError) as refused:
    align.reference_grid([west, east, south])
  assert "east.tif" in str(refused.value)
  assert "south.tif" not in str(refused.value)


def test_only_the_selected_bands_are_read_in_their_order(tmp_path):
  path, data = _utm_raster(tmp_path, bands=3)
  grid = align.ReferenceGrid.from_raster(path)
  picked = align.read_aligned(align.Source(path, bands=(3, 1)), grid)
  assert picked.data.shape == (2, 10, 10)
  np.testing.assert_array_equal(picked.data, data[[2, 0]])
  with pytest.raises(io.RasterError, match="one.tif"):
    align.read_aligned(align.Source(path, bands=(4,)), grid)


def test_a_grid_needs_a_source():
  with pytest.raises(ValueError,
                     match=r"^reference_grid: at least one source is needed\.$"):
    align.reference_grid([])


@pytest.mark.parametrize("method", [Resampling.bilinear, Resampling.cubic,
                                    Resampling.average, Resampling.nearest])
def test_windows_of_a_6x_downsampling_stitch_to_the_full_alignment(
    tmp_path, method):
  """A 60 m grid over a 10 m raster of noise: each grid pixel's kernel spans
  6 source pixels per unit of radius, so a window's source block needs that
  margin; one pixel short, the edge pixels of every window change by a
  good fraction of the noise's spread (std 100)."""
  rng = np.random.default_rng(6)
  data = rng.normal(1000, 100, (1, 240, 240)).astype(np.float32)
  path = write_raster(tmp_path / "fine.tif", data, crs="EPSG:32633",
                      transform=Affine(10, 0, 500000, 0, -10, 5002400))
  grid = align.reference_grid([path], resolution=60.0)
  assert grid.shape == (40, 40)
  source = align.Source(path, resampling=method)
  full = align.read_aligned(source, grid)
  stitched = np.zeros_like(full.data)
  for tile in tiles.grid_tiles(grid, tile_size=8, cover_edges=True):
    part = align.read_aligned(source, grid, tile.window)
    rows, cols = tile.window.toslices()
    stitched[:, rows, cols] = part.data
  # The same kernel on the same source pixels: equal to float32 rounding of
  # values ~1000 (6e-5), summed over up to 144 weights.
  np.testing.assert_allclose(stitched, full.data, rtol=0, atol=1e-2)
