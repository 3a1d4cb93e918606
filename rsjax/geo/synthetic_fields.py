"""The continuous world behind `rsjax.geo.synthetic`: terrain and land cover.

Every quantity here is a function of map coordinates (metres east and north of
the scene centre, in the scene's UTM CRS), not of a pixel grid. The DEM (on a
geographic 1 arc-second grid), the optical and land-cover rasters (on a 10 m
UTM grid) and the SAR raster (on a shifted 10 m grid) all sample the same
surface, so the sources agree physically wherever they overlap, as real
co-registered Sentinel-1/2, Dynamic World and Copernicus DEM data do.

- `WaveField`: a random fractal field, a sum of plane waves whose wavelengths
  halve and amplitudes shrink by `persistence` per octave (fractional Brownian
  motion), with an exact analytic gradient.
- elevation = base + relief u^3, u the field mapped to [0, 1]: the cube keeps
  lowlands flat and mountains steep.
- `Landscape`: elevation (lakes have flat surfaces), slope and the cosine of
  the incidence angle of a light or radar beam on the terrain, and land-cover
  rules in the Dynamic World classes: water in low areas below the lake level,
  flooded vegetation on wet flats next to it, snow and ice above a snow line,
  bare rock and shrubs between the tree line and the snow line, forest on
  slopes, crop parcels, grass and built-up patches in the plains. A second date
  changes a set of patches covering `change_fraction` of the scene with
  plausible transitions (clear-cut, harvest, construction, melt, flooding).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rsjax.geo import bands

CLASS_NAMES = bands.DYNAMIC_WORLD_CLASSES
WATER, TREES, GRASS, FLOODED, CROPS, SHRUB, BUILT, BARE, SNOW = range(9)

# The class a pixel becomes when it changes between dates.
CHANGED_CLASS = np.array([
    FLOODED,  # water -> flooded vegetation (falling water level)
    BARE,     # trees -> bare (clear-cut)
    CROPS,    # grass -> crops (ploughed and sown)
    WATER,    # flooded vegetation -> water (flooding)
    BARE,     # crops -> bare soil (harvest)
    BARE,     # shrub -> bare (fire)
    BARE,     # built -> bare (demolition)
    BUILT,    # bare -> built (construction)
    BARE,     # snow -> bare (melt)
], np.uint8)

RELIEF_PER_EXTENT = 0.25    # relief in metres per metre of scene extent
HEIGHT_PERSISTENCE = 0.4    # amplitude ratio between terrain octaves
_CHUNK = 1 << 15  # points evaluated at once; bounds memory to a few MB per wave


@dataclasses.dataclass(frozen=True)
class WaveField:
  """A fractal random field on the plane: sum_k a_k cos(2 pi k.x + phi_k).

  Normalised to zero mean and unit variance over random phases, so thresholds
  in units of its standard deviation mean the same for every seed.
  """
  wave_x: np.ndarray     # (K,) cycles per metre, east
  wave_y: np.ndarray     # (K,) cycles per metre, north
  phase: np.ndarray      # (K,)
  amplitude: np.ndarray  # (K,)

  @classmethod
  def random(cls, rng, *, wavelength, octaves, waves_per_octave=12,
             persistence=0.5):
    """Octave o has wavelengths around wavelength / 2^o, amplitude p^o."""
    count = octaves * waves_per_octave
    octave = np.repeat(np.arange(octaves), waves_per_octave)
    # Jitter wavelengths within the octave so the sum is not periodic.
    lengths = wavelength / 2.0 ** (octave + rng.uniform(0, 1, count))
    direction = rng.uniform(0, np.pi, count)
    amplitude = persistence ** (octave + rng.uniform(0, 1, count))
    amplitude = amplitude / np.sqrt(0.5 * np.sum(amplitude**2))
    return cls(np.cos(direction) / lengths, np.sin(direction) / lengths,
               rng.uniform(0, 2 * np.pi, count), amplitude)

  def __call__(self, x, y, *, gradient=False):
    """Values at (x, y) metres; with `gradient`, also (d/dx, d/dy) per metre.

    x and y broadcast together. A grid given as x of shape (1, cols) and y of
    shape (rows, 1) is evaluated as a product of per-row and per-column
    complex exponentials (one matrix product), much faster than point by point.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim == 2 and y.ndim == 2 and x.shape[0] == 1 and y.shape[1] == 1:
      return self._on_grid(x[0], y[:, 0], gradient)
    x, y = np.broadcast_arrays(x, y)
    flat_x, flat_y = x.ravel(), y.ravel()
    value = np.empty(flat_x.shape)
    grad_x, grad_y = np.empty(flat_x.shape), np.empty(flat_x.shape)
    for start in range(0, flat_x.size, _CHUNK):
      cx = flat_x[start:start + _CHUNK, None]
      cy = flat_y[start:start + _CHUNK, None]
      angle = 2 * np.pi * (cx * self.wave_x + cy * self.wave_y) + self.phase
      value[start:start + _CHUNK] = np.cos(angle) @ self.amplitude
      if gradient:
        slope_term = -np.sin(angle) * (2 * np.pi * self.amplitude)
        grad_x[start:start + _CHUNK] = slope_term @ self.wave_x
        grad_y[start:start + _CHUNK] = slope_term @ self.wave_y
    value = value.reshape(x.shape)
    if not gradient:
      return value
    return value, grad_x.reshape(x.shape), grad_y.reshape(x.shape)

  def _on_grid(self, x, y, gradient):
    """cos(a + b) = Re(e^ia e^ib): a (rows, K) @ (K, cols) complex product."""
    along_x = np.exp(2j * np.pi * np.outer(x, self.wave_x))            # (C, K)
    along_y = np.exp(1j * (2 * np.pi * np.outer(y, self.wave_y) + self.phase))
    value = ((along_y * self.amplitude) @ along_x.T).real
    if not gradient:
      return value
    # d/dx cos(angle) = -sin(angle) 2 pi k_x, and sin = Im(e^i angle).
    weight = -2 * np.pi * self.amplitude
    grad_x = ((along_y * (weight * self.wave_x)) @ along_x.T).imag
    grad_y = ((along_y * (weight * self.wave_y)) @ along_x.T).imag
    return value, grad_x, grad_y


def hash_uniform(cell_x, cell_y, salt):
  """A uniform number in [0, 1) per integer cell: a stateless 64-bit hash."""
  h = (np.asarray(cell_x, np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
       ^ np.asarray(cell_y, np.int64).astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
       ^ np.uint64(salt))
  h = (h ^ (h >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
  h = (h ^ (h >> np.uint64(29))) * np.uint64(0x94D049BB133111EB)
  h = h ^ (h >> np.uint64(32))
  return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def cos_incidence(grad_x, grad_y, *, azimuth, zenith):
  """Cosine of the angle between the surface normal and a beam's direction.

  The beam comes from `azimuth` degrees (clockwise from north) at `zenith`
  degrees from vertical; the surface normal of z(x, y) is (-dz/dx, -dz/dy, 1)
  normalised. This is the Lambertian illumination (hillshade) for the sun and
  the cosine of the local incidence angle for a radar looking from `azimuth`.
  """
  az, zen = np.deg2rad(azimuth), np.deg2rad(zenith)
  beam = (np.sin(zen) * np.sin(az), np.sin(zen) * np.cos(az), np.cos(zen))
  dot = -grad_x * beam[0] - grad_y * beam[1] + beam[2]
  return dot / np.sqrt(1.0 + grad_x**2 + grad_y**2)


@dataclasses.dataclass(frozen=True)
class Surface:
  """The world sampled at a set of points (arrays broadcast to one shape)."""
  x: np.ndarray              # metres east of the scene centre
  y: np.ndarray              # metres north of the scene centre
  raw_elevation: np.ndarray  # metres, before lakes are filled (`elevation`
                             # fills them)
  grad_x: np.ndarray         # dz/dx, metres per metre
  grad_y: np.ndarray
  slope: np.ndarray          # degrees
  moisture: np.ndarray       # unit-variance fields driving the land cover
  urban: np.ndarray
  change: np.ndarray
  texture: np.ndarray        # fine texture shared by the optical and SAR


class Landscape:
  """Terrain and land cover of one synthetic scene, a function of (x, y).

  Thresholds (lake level, snow line, tree line, built-up and change patches)
  are quantiles over `calibration_xy`, points spread over the scene, so the
  requested fractions hold for every seed and scene size. The terrain keeps
  its shape whatever the scene size: wavelengths and relief scale with the
  extent.
  """

  def __init__(self, rng, *, extent_m, calibration_xy, base_elevation_m=200.0,
               relief_m=None, water_fraction=0.08, snow_fraction=0.06,
               alpine_fraction=0.08, built_fraction=0.06,
               change_fraction=0.1, forest_slope_deg=20.0):
    relief_m = RELIEF_PER_EXTENT * extent_m if relief_m is None else relief_m
    self.base_elevation_m, self.relief_m = base_elevation_m, relief_m
    self.forest_slope_deg = forest_slope_deg
    octaves = max(3, int(np.log2(extent_m / 40.0)))
    self.height_field = WaveField.random(
        rng, wavelength=extent_m, octaves=octaves,
        persistence=HEIGHT_PERSISTENCE)
    self.moisture = WaveField.random(rng, wavelength=extent_m / 2, octaves=3)
    self.urban = WaveField.random(rng, wavelength=extent_m / 3, octaves=3)
    self.change = WaveField.random(rng, wavelength=extent_m / 6, octaves=3)
    self.texture = WaveField.random(rng, wavelength=160.0, octaves=3,
                                    persistence=0.7)
    self.parcel_angle = rng.uniform(0, np.pi / 2)
    self.parcel_salt = int(rng.integers(1 << 62))

    cal_x, cal_y = calibration_xy
    raw = self._raw_elevation(cal_x, cal_y)[0]
    self.lake_level_m = float(np.quantile(raw, water_fraction))
    self.snow_line_m = float(np.quantile(raw, 1.0 - snow_fraction))
    self.tree_line_m = float(
        np.quantile(raw, 1.0 - snow_fraction - alpine_fraction))
    self.urban_threshold = float(
        np.quantile(self.urban(cal_x, cal_y), 1.0 - built_fraction))
    self.change_threshold = float(
        np.quantile(self.change(cal_x, cal_y), 1.0 - change_fraction))

  def _raw_elevation(self, x, y):
    value, gx, gy = self.height_field(x, y, gradient=True)
    # u in [0, 1]; elevation = base + relief u^3 flattens the lowlands.
    u = np.clip(0.5 + value / 5.0, 0.0, 1.0)
    inside = (u > 0.0) & (u < 1.0)
    scale = np.where(inside, self.relief_m * 3.0 * u**2 / 5.0, 0.0)
    return self.base_elevation_m + self.relief_m * u**3, gx * scale, gy * scale

  def elevation(self, x, y):
    """Elevation in metres (lakes filled to a flat surface)."""
    return np.maximum(self._raw_elevation(x, y)[0], self.lake_level_m)

  def sample(self, x, y) -> Surface:
    """Everything the sensors and the land-cover rules need at (x, y)."""
    raw, grad_x, grad_y = self._raw_elevation(x, y)
    lake = raw < self.lake_level_m
    grad_x, grad_y = np.where(lake, 0.0, grad_x), np.where(lake, 0.0, grad_y)
    slope = np.rad2deg(np.arctan(np.hypot(grad_x, grad_y)))
    return Surface(
        x=x, y=y, raw_elevation=raw, grad_x=grad_x,
        grad_y=grad_y, slope=slope, moisture=self.moisture(x, y),
        urban=self.urban(x, y), change=self.change(x, y),
        texture=self.texture(x, y))

  def land_cover(self, surface: Surface, *, date=0):
    """Dynamic World class (uint8) of every point of `surface`, date 0 or 1."""
    if date not in (0, 1):
      raise ValueError(f"land_cover: date must be 0 or 1, got {date!r}")
    raw, slope, wet = surface.raw_elevation, surface.slope, surface.moisture
    parcel = np.broadcast_to(self.parcel_uniform(surface.x, surface.y),
                             raw.shape)
    hillside = 0.5 * self.forest_slope_deg
    cover = np.full(raw.shape, GRASS, np.uint8)
    plains = slope < hillside
    cover[plains & (parcel < 0.55)] = CROPS
    cover[plains & (wet < -1.0)] = SHRUB
    cover[(slope >= hillside) & (wet < -0.3)] = SHRUB
    cover[(slope >= self.forest_slope_deg) | ((slope >= hillside) & (wet > 0.8))
          ] = TREES
    cover[plains & (surface.urban > self.urban_threshold)] = BUILT
    near_lake = raw < self.lake_level_m + 0.02 * self.relief_m
    cover[near_lake & (slope < 4.0) & (wet > 0.0)] = FLOODED
    alpine = raw > self.tree_line_m
    cover[alpine] = np.where(slope[alpine] > 25.0, BARE, SHRUB)
    cover[raw > self.snow_line_m] = SNOW
    cover[raw < self.lake_level_m] = WATER
    if date:
      changed = surface.change > self.change_threshold
      cover = np.where(changed, CHANGED_CLASS[cover], cover).astype(np.uint8)
    return cover

  def parcel_uniform(self, x, y, salt_offset=0):
    """One uniform number per field parcel (rotated brick grid of 200x120 m)."""
    cos_a, sin_a = np.cos(self.parcel_angle), np.sin(self.parcel_angle)
    along = x * cos_a + y * sin_a
    across = -x * sin_a + y * cos_a
    row = np.floor(across / 120.0)
    col = np.floor(along / 200.0 + 0.5 * (row % 2))
    return hash_uniform(col, row, self.parcel_salt + salt_offset)
