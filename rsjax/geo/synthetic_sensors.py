"""Sensor models of the synthetic world: Sentinel-2, Sentinel-1, a coarse sensor.

Each function turns the land cover and terrain of `synthetic_fields.Landscape`
into what a sensor would record. The relations (all in numpy):

- Sentinel-2 B2/B3/B4/B8 surface reflectance:
    rho_b = R_b(class) * (1 + a(class) * texture)
            * (d_b + (1 - d_b) * max(cos i, 0) / cos(theta_sun)) + noise,
  R_b a per-class spectrum (water dark in the NIR, vegetation's red edge,
  bright flat snow; crop parcels mix a green canopy and bare soil by a
  per-parcel greenness), cos i the cosine between the terrain normal and the
  sun (hillshade), d_b the diffuse skylight fraction (larger in the blue), and
  Gaussian sensor noise. Written as uint16 reflectance x 10000 (the L2A scale).
- Sentinel-1 VV/VH sigma0 (linear): the per-class backscatter at the reference
  incidence (37 deg, mid-swath IW) scaled by the empirical cos^2 law of the
  local incidence angle theta_loc (slopes facing the sensor are brighter,
  slopes facing away darker, radar shadow at the noise floor), a texture term,
  plus the noise-equivalent sigma0, times fully developed speckle: a
  Gamma(L, 1/L) multiplicative factor with L = 4.4 looks (IW GRD).
- Coarse sensor (Landsat-like for ratio 3, MODIS-like for ratio 50): the fine
  image blurred by a Gaussian PSF whose MTF at the coarse Nyquist frequency is
  0.3 (sigma = 0.494 x ratio fine pixels), then sampled at the coarse pixel
  centres.
"""

from __future__ import annotations

import numpy as np

from rsjax.geo import bands
from rsjax.geo import synthetic_fields as fields

# Surface reflectance per Dynamic World class and band (`bands.S2_BANDS`).
CLASS_REFLECTANCE = np.array([
    [0.060, 0.050, 0.030, 0.015],  # water: dark, absorbs the NIR
    [0.025, 0.050, 0.030, 0.300],  # trees
    [0.040, 0.080, 0.060, 0.330],  # grass
    [0.040, 0.060, 0.050, 0.160],  # flooded vegetation: canopy over water
    [0.035, 0.080, 0.045, 0.420],  # crops (green canopy; mixed with soil)
    [0.050, 0.080, 0.090, 0.250],  # shrub and scrub
    [0.110, 0.115, 0.125, 0.190],  # built
    [0.120, 0.160, 0.200, 0.260],  # bare
    [0.880, 0.870, 0.850, 0.720],  # snow and ice: bright, nearly flat
])
SOIL_REFLECTANCE = np.array([0.080, 0.110, 0.140, 0.220])
# Relative texture amplitude per class (built-up areas are the roughest).
CLASS_TEXTURE = np.array([0.03, 0.12, 0.06, 0.10, 0.04, 0.12, 0.30, 0.10,
                          0.03])
DIFFUSE_FRACTION = np.array([0.30, 0.22, 0.18, 0.12])
SUN_AZIMUTH_DEG, SUN_ZENITH_DEG = 150.0, 40.0  # mid-morning overpass
OPTICAL_NOISE = 0.002

# sigma0 in dB at the reference incidence, (VV, VH) per class.
CLASS_BACKSCATTER_DB = np.array([
    [-22.0, -29.0],  # water: specular, away from the sensor
    [-7.5, -13.0],   # trees: volume scattering
    [-11.0, -18.0],  # grass
    [-6.5, -16.0],   # flooded vegetation: double bounce trunk-water
    [-10.0, -17.0],  # crops
    [-9.5, -16.0],   # shrub and scrub
    [-3.0, -10.0],   # built: double bounce walls-ground
    [-12.0, -21.0],  # bare
    [-13.0, -21.0],  # snow and ice (dry)
])
SAR_TEXTURE_DB = 1.0
SAR_REFERENCE_INCIDENCE_DEG = 37.0
SAR_LOOK_FROM_AZIMUTH_DEG = 258.0  # ascending pass, right-looking: from the west
SAR_NOISE_FLOOR = 10 ** (-24.0 / 10)  # noise-equivalent sigma0, -24 dB
SAR_LOOKS = 4.4


def optical_reflectance(landscape, surface, cover, rng, *, date=0):
  """Sentinel-2 B2/B3/B4/B8 surface reflectance, float (H, W, 4)."""
  spectrum = CLASS_REFLECTANCE[cover]
  # A crop parcel is a green canopy over bare soil; its greenness (growth
  # stage) is one random number per parcel and date.
  greenness = landscape.parcel_uniform(
      surface.x, surface.y, salt_offset=1 + date)[..., None]
  crop = greenness * spectrum + (1 - greenness) * SOIL_REFLECTANCE
  spectrum = np.where((cover == fields.CROPS)[..., None], crop, spectrum)
  texture = 1.0 + CLASS_TEXTURE[cover] * surface.texture
  cos_i = fields.cos_incidence(surface.grad_x, surface.grad_y,
                               azimuth=SUN_AZIMUTH_DEG, zenith=SUN_ZENITH_DEG)
  direct = np.maximum(cos_i, 0.0) / np.cos(np.deg2rad(SUN_ZENITH_DEG))
  illumination = DIFFUSE_FRACTION + (1 - DIFFUSE_FRACTION) * direct[..., None]
  reflectance = spectrum * np.clip(texture, 0.3, None)[..., None] * illumination
  reflectance += rng.normal(0.0, OPTICAL_NOISE, reflectance.shape)
  return np.clip(reflectance, 1e-4, None)


def to_uint16_reflectance(reflectance):
  """Reflectance -> Sentinel-2 L2A digital numbers (x 10000, 0 is nodata)."""
  dn = np.round(reflectance * float(bands.S2_DN_PER_REFLECTANCE))
  return np.clip(dn, 1, 65535).astype(np.uint16)


def sar_sigma0(surface, cover, rng):
  """Sentinel-1 VV/VH sigma0 (linear power), float (H, W, 2)."""
  reference = 10.0 ** (CLASS_BACKSCATTER_DB[cover] / 10.0)
  texture_db = SAR_TEXTURE_DB * surface.texture
  cos_local = fields.cos_incidence(
      surface.grad_x, surface.grad_y, azimuth=SAR_LOOK_FROM_AZIMUTH_DEG,
      zenith=SAR_REFERENCE_INCIDENCE_DEG)
  angular = np.where(
      cos_local > 0,
      (cos_local / np.cos(np.deg2rad(SAR_REFERENCE_INCIDENCE_DEG))) ** 2, 0.0)
  sigma0 = reference * (10.0 ** (texture_db / 10.0) * angular)[..., None]
  speckle = rng.gamma(SAR_LOOKS, 1.0 / SAR_LOOKS, sigma0.shape)
  return (sigma0 + SAR_NOISE_FLOOR) * speckle


def coarse_sensor_matrix(size, ratio):
  """(size // ratio, size) weights: Gaussian PSF, sampled at coarse centres."""
  sigma = 0.494 * ratio
  centres = np.arange(size // ratio) * ratio + (ratio - 1) / 2.0
  offsets = np.arange(size)[None, :] - centres[:, None]
  weights = np.exp(-0.5 * (offsets / sigma) ** 2)
  weights[np.abs(offsets) > 4 * sigma + 1] = 0.0
  return weights / weights.sum(axis=1, keepdims=True)


def coarse_image(image, ratio):
  """A coarse sensor's view of image (H, W, C): blur + downsample by ratio."""
  height, width, _ = image.shape
  rows = coarse_sensor_matrix(height, ratio)
  cols = coarse_sensor_matrix(width, ratio)
  return np.einsum("ih,hwc,jw->ijc", rows, image, cols, optimize=True)
