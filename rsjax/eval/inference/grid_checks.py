"""Whether a scene's grid is one a trained generator can be run on.

A generator learned its filters on tiles of one pixel size (10 m for the
rs_multisource and SEN12MS tiles), on a conformal metric grid (UTM: the
ground distance of a pixel is within 0.1 % of its nominal size). Full-scene
inference reads a scene on a grid of its own (`--crs`, `--resolution`), and
refuses, before anything is restored or read, a grid on which the generator
would see a landscape of another scale. Each refusal is a `GridError`
naming the CRS or resolution, the number found and the flag to change:

1. **Metric CRS** (`check_metric_crs`). The grid's CRS must be projected in
   metres: `--resolution` is a pixel size in CRS units meant as metres, and
   the DEM's slope and hillshade divide elevation differences in metres by
   it. A geographic CRS would make 10-degree pixels, one in US feet
   3-metre pixels.
2. **Scale distortion** (`check_scale_distortion`). On a projected grid a
   pixel of nominal size r covers r / h metres north-south and r / k
   east-west on the ground, h and k being the meridional and parallel scale
   factors of the projection at that place (`pyproj.Proj.get_factors`).
   They are sampled on a `SCALE_SAMPLES` x `SCALE_SAMPLES` lattice over the
   grid's extent, and each must lie in [1 / `MAX_SCALE_FACTOR`,
   `MAX_SCALE_FACTOR`] = [0.952, 1.05]. Checking h and k one by one, not
   only their ratio, is what catches a conformal projection used far from
   its true-scale line: there h = k, the shapes are right, and only the size
   is wrong (south polar stereographic EPSG:3031, true scale at 71 deg S,
   has h = k = 7.1 at 47 deg N; Web Mercator EPSG:3857 has 1 / cos(lat) =
   1.46 there). 5 % is a distortion a 10 m generator does not notice
   (pixels of 9.5 to 10.5 m on the ground, slopes within 5 %) and still
   admits every projection where it is made to be used (pyproj's factors):
   UTM in its zone (k <= 1.001) and a zone's width beyond it (1.012 at the
   equator), EPSG:3031 from its pole (0.973) to 60 deg S (1.043), the
   equal-area EPSG:3035 up to 3900 km from its centre 52 N 10 E, Web
   Mercator within 17.5 deg of the equator. The error names the scene's UTM
   zone (or the polar UPS CRS beyond UTM's 84 deg N / 80 deg S) to use.
3. **Resolution** (`check_resolution`). Where the run knows the pixel size of
   its tiles (`rsjax.eval.inference.training_grid`), the grid's pixel size
   must lie within a factor `MAX_RESOLUTION_RATIO` = 2 of it, per axis.
   Runs are trained without scale augmentation (dihedral flips only), so
   objects and textures of another size are outside what the generator
   learned; one octave admits running a 10 m run on 20 m products
   (Sentinel-2's 20 m bands) or on 5 m resampled images, and refuses 40 m,
   60 m or 1 m pixels. `allow_resolution_mismatch` turns the refusal into a
   warning. A run that knows no grid (random in-memory tiles, a dataset
   without `transform`, one not found) is not checked, with a warning.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pyproj
import rasterio.warp
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from rasterio.crs import CRS

from rsjax.eval.inference import training_grid as training_grid_lib
from rsjax.geo import align, io

MAX_SCALE_FACTOR = 1.05
SCALE_SAMPLES = 9
MAX_RESOLUTION_RATIO = 2.0
RESOLUTION_FLAG = "--resolution"
ALLOW_MISMATCH_FLAG = "--allow_resolution_mismatch"
# Universal Polar Stereographic, where UTM (80 deg S .. 84 deg N) ends.
UPS_NORTH, UPS_SOUTH = "EPSG:32661", "EPSG:32761"


class GridError(ValueError):
  """The grid asked for would show the generator a landscape of another
  scale; the message names the CRS or resolution and the flag to change."""


def centre_lonlat(crs, bounds) -> tuple[float, float]:
  """(longitude, latitude) of the centre of `bounds` given in `crs`."""
  west, south, east, north = rasterio.warp.transform_bounds(
      CRS.from_user_input(crs), CRS.from_epsg(4326), *bounds, densify_pts=21)
  return (west + east) / 2, (south + north) / 2


def raster_centre(path) -> tuple[float, float]:
  """(longitude, latitude) of the centre of a raster file."""
  with io.open_raster(path) as dataset:
    return centre_lonlat(dataset.crs, dataset.bounds)


def suggested_crs(lon: float, lat: float) -> str:
  """The CRS to use at a place, as advice: its WGS 84 UTM zone (pyproj's
  database; scale within 0.1 % of true), or UPS beyond UTM's reach."""
  zones = query_utm_crs_info(
      datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat))
  if zones:
    return (f"the scene's UTM zone, --crs {zones[0].auth_name}:"
            f"{zones[0].code}, whose scale is within 0.1 % of true")
  return (f"the polar UPS CRS, --crs {UPS_NORTH if lat > 0 else UPS_SOUTH}, "
          "UTM's continuation beyond 84 N / 80 S")


def _named(crs) -> str:
  crs = CRS.from_user_input(crs)
  epsg = crs.to_epsg()
  return f"EPSG:{epsg}" if epsg else crs.to_string()


def check_metric_crs(crs, *, flag: str, lonlat: tuple[float, float]) -> None:
  """GridError unless `crs` is projected with metre units.

  `flag` says where the CRS came from (e.g. '--crs EPSG:4326', or the
  scene's CRS); `lonlat` is the scene's centre, for the suggested UTM zone.
  """
  crs = CRS.from_user_input(crs)
  if crs.is_projected:
    unit, metres_per_unit = crs.linear_units_factor
    if metres_per_unit == 1.0:
      return
    units = f"projected in {unit} ({metres_per_unit:g} m)"
  elif crs.is_geographic:
    units = "geographic (units: degrees)"
  else:
    units = "not a map projection"
  raise GridError(
      f"{flag}: the grid CRS {_named(crs)} is {units}, but "
      f"{RESOLUTION_FLAG} is a pixel size in metres (and the DEM's slope "
      f"is computed in metres); pass a projected CRS in metres, e.g. "
      f"{suggested_crs(*lonlat)}.")


def scale_factors(grid: align.ReferenceGrid
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """(longitude, latitude, meridional h, parallel k) on a lattice of points
  over the grid's extent (flattened; NaN where the projection is undefined)."""
  projection = pyproj.Proj(pyproj.CRS.from_wkt(grid.crs.to_wkt()))
  left, bottom, right, top = grid.bounds
  xs, ys = np.meshgrid(np.linspace(left, right, SCALE_SAMPLES),
                       np.linspace(bottom, top, SCALE_SAMPLES))
  lon, lat = projection(xs.ravel(), ys.ravel(), inverse=True, errcheck=False)
  lon, lat = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
  factors = projection.get_factors(lon, lat, errcheck=False)
  meridional = np.asarray(factors.meridional_scale, np.float64)
  parallel = np.asarray(factors.parallel_scale, np.float64)
  return lon, lat, meridional, parallel


def check_scale_distortion(grid: align.ReferenceGrid, *, flag: str) -> None:
  """GridError if the projection's scale over the grid leaves the tolerance
  (see the module docstring), naming the CRS, the factor and a better CRS."""
  lon, lat, meridional, parallel = scale_factors(grid)
  centre = centre_lonlat(grid.crs, grid.bounds)
  advice = f"pass {suggested_crs(*centre)}"
  factors = np.stack([meridional, parallel])
  if not np.isfinite(factors).all() or (factors <= 0).any():
    raise GridError(
        f"{flag}: the grid CRS {_named(grid.crs)} is undefined over part of "
        f"the scene (around longitude {centre[0]:.2f}, latitude "
        f"{centre[1]:.2f}); {advice}.")
  distortion = np.abs(np.log(factors))
  axis, point = np.unravel_index(np.argmax(distortion), distortion.shape)
  worst = factors[axis, point]
  if distortion[axis, point] <= math.log(MAX_SCALE_FACTOR):
    return
  direction = ("meridional (north-south)", "parallel (east-west)")[axis]
  pixel = grid.res[1] if axis == 0 else grid.res[0]
  raise GridError(
      f"{flag}: the grid CRS {_named(grid.crs)} distorts this scene: its "
      f"{direction} scale factor is {worst:.3g} at longitude "
      f"{lon[point]:.2f}, latitude {lat[point]:.2f}, so a {pixel:g} m "
      f"pixel covers {pixel / worst:.3g} m of ground (allowed: a factor "
      f"within {1 / MAX_SCALE_FACTOR:.3g} .. {MAX_SCALE_FACTOR:g} of true "
      f"scale); {advice}.")


def check_resolution(grid: align.ReferenceGrid,
                     trained: training_grid_lib.TrainingGrid, *,
                     allow_mismatch: bool = False) -> None:
  """GridError if the grid's pixel size is not within `MAX_RESOLUTION_RATIO`
  of the run's training pixels (a warning with `allow_mismatch`, or when the
  run's training grid is unknown)."""
  if trained.resolution is None:
    logging.warning("the pixel size the run was trained on is unknown (%s); "
                    "the scene is read at %g m without checking it.",
                    trained.source, grid.res[0])
    return
  ratios = [res / trained.resolution for res in grid.res]
  worst = max(ratios, key=lambda ratio: abs(math.log(ratio)))
  if abs(math.log(worst)) <= math.log(MAX_RESOLUTION_RATIO):
    return
  pixels = "x".join(f"{res:g}" for res in dict.fromkeys(grid.res))
  message = (
      f"{RESOLUTION_FLAG} {pixels} m is {worst:.3g} x the "
      f"{trained.resolution:g} m pixels the run was trained on "
      f"({trained.source}); allowed: a factor within "
      f"{1 / MAX_RESOLUTION_RATIO:g} .. {MAX_RESOLUTION_RATIO:g}, since the "
      "generator never saw objects and textures at another scale")
  if allow_mismatch:
    logging.warning("%s; running anyway (%s).", message, ALLOW_MISMATCH_FLAG)
    return
  raise GridError(f"{message}. Pass {RESOLUTION_FLAG} "
                  f"{trained.resolution:g} (the default), or "
                  f"{ALLOW_MISMATCH_FLAG} to run at {pixels} m anyway.")


def check_grid(grid: align.ReferenceGrid,
               trained: training_grid_lib.TrainingGrid, *, crs_flag: str,
               allow_resolution_mismatch: bool = False) -> None:
  """All three checks of the module docstring, in order; `crs_flag` says
  where the grid's CRS came from, for the messages."""
  check_metric_crs(grid.crs, flag=crs_flag,
                   lonlat=centre_lonlat(grid.crs, grid.bounds))
  check_scale_distortion(grid, flag=crs_flag)
  check_resolution(grid, trained, allow_mismatch=allow_resolution_mismatch)
