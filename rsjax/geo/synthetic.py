"""An embedded synthetic world: a multi-source scene written as real GeoTIFFs.

`make_scene(seed, out_dir)` writes what the papers' datasets hold for one area
(the RS-SPADE multi-source dataset: Sentinel-1, Sentinel-2, Dynamic World
LULC, Copernicus DEM; the cloud-removal paper's cloudy/clear pairs; the fusion
paper's coarse and fine images at two dates), so every pipeline runs offline.
All sources sample one continuous world (`synthetic_fields.Landscape`, in
metres of the scene's UTM CRS), so they agree physically wherever they
overlap. Which relation produces each file:

- `dem.tif`: float32 elevation in EPSG:4326 at 1 arc-second (the Copernicus
  DEM's grid), covering the optical and SAR extents plus a margin. A fractal
  sum of plane waves, squared so lowlands are flat; lakes have a flat surface.
- `lulc.tif`: uint8 Dynamic World class (0 water, 1 trees, 2 grass,
  3 flooded_vegetation, 4 crops, 5 shrub_and_scrub, 6 built, 7 bare,
  8 snow_and_ice; nodata 255) on the optical grid, from terrain rules: water
  below the lake level, snow above the snow line, bare rock and shrubs above
  the tree line, forest on slopes, crop parcels, grass and built-up patches in
  the plains, flooded vegetation on wet flats by the lakes.
- `s2.tif`: Sentinel-2 B2, B3, B4, B8 (uint16 reflectance x 10000, nodata 0,
  10 m, UTM): per-class spectra x texture x terrain illumination (hillshade of
  the true surface for the sun at azimuth 150, zenith 40 deg) + noise; see
  `synthetic_sensors`.
- `s1.tif`: Sentinel-1 VV, VH sigma0 (float32 linear power, nodata 0, 10 m, on
  an origin shifted by `sar_offset_px`): per-class backscatter x cos^2 of the
  local incidence angle x texture, plus the noise floor, x Gamma speckle.
- with `change_fraction > 0`: `lulc_t2.tif`, `s2_t2.tif`, `s1_t2.tif`, a second
  date where patches covering about that fraction changed class.
- with `coarse_ratio`: `s2_coarse.tif`, the optical image blurred by a
  Gaussian PSF and downsampled by the ratio (3: Landsat-like, 50: MODIS-like).
  With a second date it views the second date's reflectance (`s2_t2`): in the
  fusion paper (Jiang, Shen & Li, TGRS 2022, Sec. II and Tables I, V) the LR
  image is the one of the target date t2 (MODIS or Landsat 8 at t2) and the
  HR image of t1 the auxiliary one; without a second date it views `s2`.
- with `cloud_coverage`: `s2_cloudy.tif`, the optical image under synthetic
  clouds and their shadows (`rsjax.geo.clouds`), and `cloud_mask.tif` (uint8:
  0 clear, 1 cloud, 2 cloud shadow).
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_bounds

from rsjax.geo import bands as geo_bands
from rsjax.geo import clouds
from rsjax.geo import synthetic_fields as fields
from rsjax.geo import synthetic_sensors as sensors
from rsjax.store import atomic

CLASS_NAMES = fields.CLASS_NAMES
LULC_NODATA = 255
DEM_NODATA = -9999.0
ARC_SECOND = 1.0 / 3600.0
CLOUD_MASK_VALUES = {name: value for value, name in
                     enumerate(geo_bands.CLOUD_MASK_CLASSES)}


@dataclasses.dataclass(frozen=True)
class SyntheticScene:
  """Paths and metadata of a scene written by `make_scene`."""
  paths: dict[str, pathlib.Path]   # source name -> GeoTIFF
  crs: str                         # optical / LULC / SAR CRS
  transform: Affine                # optical / LULC grid
  shape: tuple[int, int]           # optical grid (rows, cols)
  resolution_m: float
  sar_transform: Affine
  dem_transform: Affine            # EPSG:4326, degrees
  dem_shape: tuple[int, int]
  lake_level_m: float
  snow_line_m: float
  class_fractions: tuple[float, ...]       # date-1 LULC, per class
  changed_fraction: float | None = None    # measured, date 1 vs date 2
  cloud_coverage: float | None = None      # measured cloud-mask fraction


def make_scene(seed, out_dir, *, size=512, resolution_m=10.0,
               crs="EPSG:32633", center=(500_000.0, 5_190_000.0),
               sar_offset_px=(3.5, 2.25), dem_margin_m=300.0,
               change_fraction=0.0, coarse_ratio=None, cloud_coverage=None,
               cloud_height_m=200.0, water_fraction=0.08, snow_fraction=0.06,
               built_fraction=0.06) -> SyntheticScene:
  """Writes a coherent S1 / S2 / LULC / DEM scene to `out_dir`.

  Args:
    seed: integer; the same seed and arguments give the same files.
    out_dir: folder (created if missing).
    size: optical grid size, an int or (rows, cols), in pixels.
    resolution_m: optical, LULC and SAR pixel size in metres.
    crs: a projected (UTM) CRS for the optical, LULC and SAR rasters.
    center: scene centre in `crs` coordinates.
    sar_offset_px: (east, south) shift of the SAR grid's origin in pixels.
    dem_margin_m: how far the DEM extends beyond the optical and SAR extents.
    change_fraction: fraction of land cover that changes at a second date; 0
      writes no second date.
    coarse_ratio: if set, also write a coarse image downsampled by this ratio
      (of the second date's optical image when there is one).
    cloud_coverage: if set, also write a cloudy copy with this cloud fraction.
    cloud_height_m: cloud height above ground; sets the shadow's offset.
    water_fraction, snow_fraction, built_fraction: approximate area fractions
      of lakes, snow and built-up land.
  """
  rows, cols = (size, size) if np.isscalar(size) else tuple(size)
  if rows < 16 or cols < 16:
    raise ValueError(f"make_scene: size must be at least 16 pixels, got {size}")
  if not 0.0 <= change_fraction < 1.0:
    raise ValueError(
        f"make_scene: change_fraction must be in [0, 1), got {change_fraction}")
  if cloud_coverage is not None and not 0.0 <= cloud_coverage <= 1.0:
    raise ValueError(
        f"make_scene: cloud_coverage must be in [0, 1], got {cloud_coverage}")
  crs = CRS.from_user_input(crs)
  if not crs.is_projected:
    raise ValueError(f"make_scene: crs must be projected (UTM), got {crs}")
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  # One independent stream per component: an option never changes the others.
  world_rng, s2_rng, s1_rng, s2_t2_rng, s1_t2_rng = (
      np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5))

  west = center[0] - cols * resolution_m / 2
  north = center[1] + rows * resolution_m / 2
  s2_transform = _north_up(west, north, resolution_m)
  sar_transform = _north_up(west + sar_offset_px[0] * resolution_m,
                            north - sar_offset_px[1] * resolution_m,
                            resolution_m)
  x, y = _pixel_centres(s2_transform, rows, cols, center)
  stride = max(1, min(rows, cols) // 128)
  landscape = fields.Landscape(
      world_rng, extent_m=max(rows, cols) * resolution_m,
      calibration_xy=(x[::stride, ::stride], y[::stride, ::stride]),
      water_fraction=water_fraction, snow_fraction=snow_fraction,
      built_fraction=built_fraction, change_fraction=max(change_fraction, 1e-3))

  paths = {}
  write = _writer(out_dir, paths, crs)
  surface = landscape.sample(x, y)
  cover = landscape.land_cover(surface)
  write("lulc", cover[None], s2_transform, LULC_NODATA, ("lulc",),
        {"classes": ",".join(CLASS_NAMES), "source": "synthetic Dynamic World"})
  reflectance = sensors.optical_reflectance(landscape, surface, cover,
                                            s2_rng)
  _write_optical(write, "s2", reflectance, s2_transform)

  sar_x, sar_y = _pixel_centres(sar_transform, rows, cols, center)
  sar_surface = landscape.sample(sar_x, sar_y)
  sar_cover = landscape.land_cover(sar_surface)
  _write_sar(write, "s1", sensors.sar_sigma0(sar_surface, sar_cover, s1_rng),
             sar_transform)

  dem_transform, dem_shape = _write_dem(
      write, landscape, crs, center, (s2_transform, sar_transform),
      (rows, cols), dem_margin_m)

  changed_fraction = None
  latest = reflectance      # the last date's reflectance, seen by s2_coarse
  if change_fraction > 0:
    cover_t2 = landscape.land_cover(surface, date=1)
    changed_fraction = float(np.mean(cover_t2 != cover))
    write("lulc_t2", cover_t2[None], s2_transform, LULC_NODATA, ("lulc",),
          {"classes": ",".join(CLASS_NAMES), "date": "2"})
    latest = sensors.optical_reflectance(landscape, surface, cover_t2,
                                         s2_t2_rng, date=1)
    _write_optical(write, "s2_t2", latest, s2_transform)
    sar_cover_t2 = landscape.land_cover(sar_surface, date=1)
    _write_sar(write, "s1_t2", sensors.sar_sigma0(
        sar_surface, sar_cover_t2, s1_t2_rng), sar_transform)

  if coarse_ratio is not None:
    ratio = int(coarse_ratio)
    if ratio < 2 or ratio > min(rows, cols):
      raise ValueError(f"make_scene: coarse_ratio must be in [2, "
                       f"{min(rows, cols)}] for this size, got {coarse_ratio}")
    coarse_transform = s2_transform @ Affine.scale(ratio)
    _write_optical(write, "s2_coarse", sensors.coarse_image(latest, ratio),
                   coarse_transform, {"coarse_ratio": str(ratio)})

  coverage = None
  if cloud_coverage is not None:
    cloudy, mask = _cloudy_copy(seed, reflectance, cloud_coverage,
                                cloud_height_m, resolution_m)
    coverage = float(np.mean(mask == CLOUD_MASK_VALUES["cloud"]))
    _write_optical(write, "s2_cloudy", cloudy, s2_transform)
    write("cloud_mask", mask[None], s2_transform, LULC_NODATA, ("cloud_mask",),
          {"values": "0 clear, 1 cloud, 2 shadow"})

  return SyntheticScene(
      paths=paths, crs=crs.to_string(), transform=s2_transform,
      shape=(rows, cols), resolution_m=float(resolution_m),
      sar_transform=sar_transform, dem_transform=dem_transform,
      dem_shape=dem_shape, lake_level_m=landscape.lake_level_m,
      snow_line_m=landscape.snow_line_m,
      class_fractions=tuple(float(np.mean(cover == k)) for k in range(9)),
      changed_fraction=changed_fraction, cloud_coverage=coverage)


def _north_up(west, north, pixel_size):
  """A north-up affine transform with square pixels."""
  return Affine(pixel_size, 0.0, west, 0.0, -pixel_size, north)


def _pixel_centres(transform, rows, cols, center):
  """Pixel-centre coordinates relative to the scene centre.

  x has shape (1, cols) and y (rows, 1): they broadcast to the grid, and the
  fields evaluate such separable grids fast.
  """
  xs = transform.c + (np.arange(cols) + 0.5) * transform.a - center[0]
  ys = transform.f + (np.arange(rows) + 0.5) * transform.e - center[1]
  return xs[None, :], ys[:, None]


def _writer(out_dir, paths, crs):
  """A writer bound to the output folder, the path registry and the CRS."""

  def write(name, bands, transform, nodata, descriptions, tags, band_crs=None):
    path = out_dir / f"{name}.tif"
    count, height, width = bands.shape
    profile = {
        "driver": "GTiff", "height": height, "width": width, "count": count,
        "dtype": bands.dtype.name, "crs": band_crs or crs,
        "transform": transform, "nodata": nodata, "compress": "deflate"}
    if height >= 256 and width >= 256:
      profile.update(tiled=True, blockxsize=256, blockysize=256)
    with atomic.atomic_path(path, suffix=".tif") as partial, rasterio.open(
        partial, "w", **profile) as dst:
      dst.write(bands)
      for band, description in enumerate(descriptions, start=1):
        dst.set_band_description(band, description)
      dst.update_tags(**tags)
    paths[name] = path

  return write


def _write_optical(write, name, reflectance, transform, extra_tags=None):
  tags = {"scale_factor": "0.0001", "quantity": "surface reflectance",
          "sensor": "synthetic Sentinel-2 MSI", **(extra_tags or {})}
  write(name, np.moveaxis(sensors.to_uint16_reflectance(reflectance), -1, 0),
        transform, 0, geo_bands.S2_BANDS, tags)


def _write_sar(write, name, sigma0, transform):
  tags = {"quantity": "sigma0, linear power", "sensor": "synthetic Sentinel-1 IW"}
  write(name, np.moveaxis(sigma0.astype(np.float32), -1, 0), transform, 0.0,
        geo_bands.S1_BANDS, tags)


def _write_dem(write, landscape, crs, center, transforms, shape, margin_m):
  """Samples the terrain on a 1 arc-second EPSG:4326 grid covering all grids."""
  rows, cols = shape
  corners_x, corners_y = [], []
  for transform in transforms:
    for c, r in ((0, 0), (cols, 0), (0, rows), (cols, rows)):
      corners_x.append((transform @ (c, r))[0])
      corners_y.append((transform @ (c, r))[1])
  bounds = (min(corners_x) - margin_m, min(corners_y) - margin_m,
            max(corners_x) + margin_m, max(corners_y) + margin_m)
  west, south, east, north = transform_bounds(crs, "EPSG:4326", *bounds,
                                              densify_pts=21)
  west = np.floor(west / ARC_SECOND) * ARC_SECOND
  north = np.ceil(north / ARC_SECOND) * ARC_SECOND
  width = int(np.ceil((east - west) / ARC_SECOND))
  height = int(np.ceil((north - south) / ARC_SECOND))
  dem_transform = _north_up(west, north, ARC_SECOND)
  col_idx, row_idx = np.meshgrid(np.arange(width) + 0.5,
                                 np.arange(height) + 0.5)
  lon = west + col_idx * ARC_SECOND
  lat = north - row_idx * ARC_SECOND
  xs, ys = warp_transform("EPSG:4326", crs, lon.ravel(), lat.ravel())
  x = np.asarray(xs).reshape(lon.shape) - center[0]
  y = np.asarray(ys).reshape(lat.shape) - center[1]
  elevation = landscape.elevation(x, y).astype(np.float32)
  write("dem", elevation[None], dem_transform, DEM_NODATA, ("elevation",),
        {"units": "metre", "source": "synthetic Copernicus DEM GLO-30"},
        band_crs="EPSG:4326")
  return dem_transform, (height, width)


def _cloudy_copy(seed, reflectance, coverage, cloud_height_m, resolution_m):
  """Clouds and shadows over the optical image; returns (image, mask)."""
  distance_px = (cloud_height_m * np.tan(np.deg2rad(sensors.SUN_ZENITH_DEG))
                 / resolution_m)
  away_from_sun = np.deg2rad(sensors.SUN_AZIMUTH_DEG + 180.0)
  offset = (-distance_px * np.cos(away_from_sun),  # rows grow southwards
            distance_px * np.sin(away_from_sun))
  key = jax.random.fold_in(jax.random.key(seed), 0xC10D)
  result = clouds.add_clouds(key, reflectance.astype(np.float32),
                             coverage=coverage, shadow_offset=offset)
  mask = np.zeros(reflectance.shape[:2], np.uint8)
  mask[np.asarray(result.shadow_mask)] = CLOUD_MASK_VALUES["shadow"]
  mask[np.asarray(result.cloud_mask)] = CLOUD_MASK_VALUES["cloud"]
  return np.asarray(result.image, np.float64), mask
