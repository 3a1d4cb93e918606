"""The fixed "resize" branch of the deep residual cycle GAN (fusion paper).

Jiang, Shen & Li, "Deep-learning-based spatio-temporal-spectral integrated
fusion of heterogeneous remote sensing images" (TGRS 2022), Eq. 1 and 3: the
low-resolution (LR) observation is the high-resolution (HR) image blurred and
downsampled by the resolution ratio S (X~ = A X), and the network's input is
its bicubic upsampling X^ onto the HR grid. The backward part regenerates
that input from the fusion result with the same, parameter-free operator,

  resize(X) = U(D(B(X)))            (+ the cloud mask, thick-cloud case)

  B, D  blur + decimation by S in one separable matrix per axis: a Gaussian
        point-spread function of sigma = 0.494 S (the Gaussian whose MTF at
        the LR Nyquist frequency is 0.3, a usual sensor model; the paper gives
        no PSF), sampled at the LR pixel centres (S - 1) / 2 + k S and
        renormalised at the borders. This is the synthetic world's coarse
        sensor (`rsjax.geo.synthetic_sensors.coarse_sensor_matrix`), so a
        simulated LR image and the dataset's `s2_coarse` share one model.
  U     upsampling by S onto the HR grid with `jax.image.resize`: 'bicubic'
        (Keys a = -0.5, the paper's choice) or 'bilinear'; half-pixel centres,
        weights renormalised over in-bounds samples at the borders.
  cloud the thick-cloud case ("blurring and resampling and adding the cloud
        mask"): pixels of the binary HR cloud mask M are set to
        `cloud_value` (normalized units; 1.0 = reflectance 1, a saturated
        cloud), so the observed cloudy X^ and the regenerated X^* hide the
        same pixels.

S = 1 is the thick-cloud-removal experiment (Sec. III-B, Tables III-IV): the
"LR" image is the cloudy t2 Sentinel-2 image at the HR image's own 10 m
resolution, synthesized "by adding a cloud mask to the observed t2 cloudless
Sentinel-2 MS image"; resize is then the identity followed by the cloud mask
(no blur: B, D and U are all the identity at S = 1).

Images are (N, H, W, C) with H and W multiples of S (`check_ratio`).
Everything is jit-compatible and differentiable (the cycle loss trains the
forward generator through it); the matrices are numpy constants built from
static shapes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rsjax.geo.synthetic_sensors import coarse_sensor_matrix

UPSAMPLING = {"bicubic": "cubic", "bilinear": "linear"}


def check_ratio(ratio, height: int | None = None, width: int | None = None,
                key: str = "config.resolution_ratio") -> int:
  """`ratio` as an int >= 1 (dividing the tile size if given), or a ValueError.

  1 is the paper's same-resolution thick-cloud removal (Sec. III-B); 3 its
  Landsat 8 (30 m, Sec. III-C) and 50 its MODIS (500 m, Sec. III-A) images
  against Sentinel-2's 10 m."""
  if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) \
      or ratio < 1:
    raise ValueError(f"{key} must be an int >= 1 (HR pixels per LR pixel; 1: "
                     f"the same resolution, thick-cloud removal), got "
                     f"{ratio!r}")
  if height is not None and (height % ratio or width % ratio):
    raise ValueError(f"{key}={ratio} does not divide the tile size "
                     f"{height}x{width}: the LR grid must tile the HR grid "
                     f"exactly (choose a ratio dividing {height} and {width}, "
                     f"or another tile size)")
  return int(ratio)


def check_upsampling(method: str, key: str = "config.resize.upsample") -> str:
  if method not in UPSAMPLING:
    raise ValueError(f"{key}: unknown upsampling {method!r}; valid: "
                     f"{', '.join(UPSAMPLING)}")
  return method


def downsample(image, ratio: int) -> jax.Array:
  """Blur + decimate (N, H, W, C) -> (N, H/S, W/S, C), float32 (the image
  itself at S = 1)."""
  image = jnp.asarray(image, jnp.float32)
  _, height, width, _ = image.shape
  if check_ratio(ratio, height, width, key="downsample ratio") == 1:
    return image
  rows = jnp.asarray(coarse_sensor_matrix(height, ratio), jnp.float32)
  cols = jnp.asarray(coarse_sensor_matrix(width, ratio), jnp.float32)
  return jnp.einsum("ih,nhwc,jw->nijc", rows, image, cols,
                    precision=jax.lax.Precision.HIGHEST)


def upsample(image, ratio: int, method: str = "bicubic") -> jax.Array:
  """(N, h, w, C) -> (N, h S, w S, C) by bicubic or bilinear interpolation
  (the image itself at S = 1)."""
  image = jnp.asarray(image, jnp.float32)
  check_upsampling(method, "method")
  if check_ratio(ratio, key="upsample ratio") == 1:
    return image
  batch, height, width, channels = image.shape
  return jax.image.resize(image, (batch, height * ratio, width * ratio, channels),
                          method=UPSAMPLING[check_upsampling(method, "method")],
                          antialias=False)


def cloud_fill(image, cloud_mask, cloud_value: float = 1.0) -> jax.Array:
  """`image` with the pixels of the binary (N, H, W) mask set to cloud_value."""
  mask = jnp.asarray(cloud_mask)
  if mask.ndim == image.ndim - 1:
    mask = mask[..., None]
  return jnp.where(mask.astype(bool), jnp.asarray(cloud_value, image.dtype),
                   image)


def resize(image, ratio: int, *, method: str = "bicubic", cloud_mask=None,
           cloud_value: float = 1.0) -> jax.Array:
  """The resize branch: HR (N, H, W, C) -> upsampled LR view, same shape.

  With `cloud_mask` (binary, (N, H, W) on the HR grid) the cloudy pixels are
  filled with `cloud_value` after resampling.
  """
  low = upsample(downsample(image, ratio), ratio, method)
  if cloud_mask is not None:
    low = cloud_fill(low, cloud_mask, cloud_value)
  return low
