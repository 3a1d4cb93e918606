"""The quick-start job (`make demo`).

Until the training engine lands, the main job scores what exists: it makes a
small multispectral image, degrades it (blur, noise, a thick cloud over part of
it), and writes the papers' image metrics overall, inside and outside the
cloud, plus segmentation scores of a noisy label map, to
`<workdir>/metrics.json`. The training issue replaces the body with
`rsjax.train.trainer.train_and_evaluate` on the embedded synthetic dataset;
the command stays `make demo`.

  python -m launch.demo --workdir workdir/demo
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib

import numpy as np

from rsjax import metrics


def _scene(rng: np.random.Generator, size: int = 128, bands: int = 4):
  """Smooth random reflectances in [0.02, 0.6] for `bands` bands."""
  freq = np.fft.fftfreq(size)
  falloff = 1.0 / np.maximum(np.hypot(*np.meshgrid(freq, freq)), 1.0 / size) ** 2
  layers = []
  for _ in range(bands):
    noise = np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) * falloff).real
    layers.append((noise - noise.min()) / np.ptp(noise))
  return (0.02 + 0.58 * np.stack(layers, -1))[None].astype(np.float32)


def run(workdir: pathlib.Path, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  target = _scene(rng)
  blurred = (target + np.roll(target, 1, 1) + np.roll(target, 1, 2)) / 3
  pred = np.clip(blurred + rng.normal(0, 0.01, target.shape), 0, 1)
  cloud = np.zeros(target.shape[:3], bool)
  cloud[:, 20:70, 30:90] = True
  pred[cloud] = 0.8                                   # a thick, flat cloud
  scores = {}
  for area, mask in (("all", None), ("cloudy", cloud), ("clear", ~cloud)):
    scores[area] = {
        "psnr": metrics.psnr(pred, target, data_range=1.0, mask=mask),
        "ssim": metrics.ssim(pred, target, data_range=1.0, mask=mask),
        "sam_deg": metrics.sam(pred, target, mask=mask, degrees=True),
        "ergas": metrics.ergas(pred, target, ratio=1.0, mask=mask),
    }
  scores["all"]["q"] = metrics.q_index(pred, target, block_size=8)
  labels = (target[..., 0] * 6).astype(np.int32)
  noisy = np.where(rng.uniform(size=labels.shape) < 0.8, labels,
                   rng.integers(0, 4, labels.shape)).astype(np.int32)
  seg = metrics.segmentation_scores(
      metrics.confusion_matrix(noisy, labels, num_classes=4))
  scores["segmentation"] = {k: v for k, v in seg.items()}
  as_json = {area: {k: np.asarray(v).tolist() for k, v in values.items()}
             for area, values in scores.items()}
  workdir.mkdir(parents=True, exist_ok=True)
  tmp = workdir / "metrics.json.tmp"
  tmp.write_text(json.dumps(as_json, indent=2))
  os.replace(tmp, workdir / "metrics.json")
  return as_json


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, type=pathlib.Path)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  result = run(args.workdir, args.seed)
  for area in ("all", "cloudy", "clear"):
    row = "  ".join(f"{k} {np.asarray(v).ravel()[0]:8.4f}"
                    for k, v in result[area].items())
    print(f"{area:>7}: {row}")
  seg = result["segmentation"]
  print(f"    seg: PA {seg['pixel_accuracy']:.4f}  mIoU {seg['miou']:.4f}  "
        f"FWIoU {seg['fwiou']:.4f}")
  print(f"wrote {args.workdir / 'metrics.json'}")


if __name__ == "__main__":
  main()
