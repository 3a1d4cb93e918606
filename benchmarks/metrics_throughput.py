"""Image-metric throughput: rsjax (jitted, batched) next to scikit-image.

Both score the same float32 arrays; scikit-image loops over images in Python.
Prints one table of images/s and the ratio, measured side by side in one run on
this machine (named in the header). Not a test.

  python benchmarks/metrics_throughput.py --batch 16 --size 256 --bands 4
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rsjax import metrics


def _best_time(fn, repeats: int) -> float:
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  return best


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--size", type=int, default=256)
  parser.add_argument("--bands", type=int, default=4)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  shape = (args.batch, args.size, args.size, args.bands)
  target = rng.uniform(size=shape).astype(np.float32)
  pred = np.clip(target + 0.05 * rng.normal(size=shape), 0, 1).astype(np.float32)
  pred_dev, target_dev = jax.device_put(pred), jax.device_put(target)

  def ours(fn):
    return lambda: jax.block_until_ready(fn(pred_dev, target_dev, data_range=1.0))

  def skimage_psnr():
    for p, t in zip(pred, target):
      peak_signal_noise_ratio(t, p, data_range=1.0)

  def skimage_ssim():
    for p, t in zip(pred, target):
      structural_similarity(t, p, data_range=1.0, channel_axis=-1,
                            gaussian_weights=True, sigma=1.5,
                            use_sample_covariance=False)

  rows = [("psnr", ours(metrics.psnr), skimage_psnr),
          ("ssim", ours(metrics.ssim), skimage_ssim)]
  device = jax.devices()[0]
  print(f"# {platform.processor() or platform.machine()}, {jax.device_count()} "
        f"{device.platform} device(s) ({device.device_kind}); arrays {shape}")
  print(f"{'metric':8} {'rsjax img/s':>12} {'skimage img/s':>14} {'ratio':>7}")
  for name, rsjax_fn, skimage_fn in rows:
    rsjax_fn()   # compile
    ours_s = _best_time(rsjax_fn, args.repeats)
    theirs_s = _best_time(skimage_fn, args.repeats)
    print(f"{name:8} {args.batch / ours_s:12.1f} {args.batch / theirs_s:14.1f} "
          f"{theirs_s / ours_s:7.2f}")


if __name__ == "__main__":
  main()
