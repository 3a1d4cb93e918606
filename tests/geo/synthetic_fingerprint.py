"""A fingerprint of the embedded synthetic world, so that it changes only on purpose.

The demo's numbers, the learning tests' margins and the papers' tables rerun
offline are all measured on the scenes `rsjax.geo.synthetic.make_scene`
writes, so those scenes are a dataset, like a public one with a checksum. The
physical tests in `test_synthetic.py` check what the world must be (land cover
follows the terrain, SAR follows the incidence angle, ...); this fingerprint
checks that it is still the same world: every file's georeferencing, band
descriptions, tags and layout (tiling, compression), and per band the mean
of each block of a 4 x 4 grid (class counts per block for class rasters), for
four scenes: one with every option (second date, coarse image, clouds) and
three whose sides sit at and across the 256 px where files become tiled.

After a deliberate change to the world, rewrite the stored fingerprint with

    python -m tests.geo.synthetic_fingerprint

and say in the commit message why the world changed.
"""

from __future__ import annotations

import json
import pathlib
import re
import tempfile

import numpy as np
import rasterio

from rsjax.geo import synthetic

STORED = pathlib.Path(__file__).with_name("synthetic_fingerprint.json")
SCENES = {
    "all_options": dict(seed=3, size=128, change_fraction=0.2, coarse_ratio=4,
                        cloud_coverage=0.3),
    # Sides at and across the 256 px where files become tiled.
    "large": dict(seed=5, size=(320, 256)),
    "wide": dict(seed=6, size=(256, 320)),
    "strip": dict(seed=7, size=(288, 64)),
}
BLOCKS = 4
CLASS_RASTERS = ("lulc", "lulc_t2", "cloud_mask")


def _block_means(band: np.ndarray) -> list[float]:
  rows, cols = band.shape
  return [float(band[r * rows // BLOCKS:(r + 1) * rows // BLOCKS,
                     c * cols // BLOCKS:(c + 1) * cols // BLOCKS]
                .astype(np.float64).mean())
          for r in range(BLOCKS) for c in range(BLOCKS)]


def _block_counts(band: np.ndarray) -> list[list[int]]:
  """Per block, the pixel count of each class 0..max (nodata 255 last)."""
  rows, cols = band.shape
  size = int(band[band != 255].max(initial=0)) + 1
  return [np.bincount(np.where(block == 255, size, block).ravel(),
                      minlength=size + 1).tolist()
          for block in (band[r * rows // BLOCKS:(r + 1) * rows // BLOCKS,
                             c * cols // BLOCKS:(c + 1) * cols // BLOCKS]
                        for r in range(BLOCKS) for c in range(BLOCKS))]


def file_fingerprint(name: str, path) -> dict:
  with rasterio.open(path) as src:
    data = src.read()
    fingerprint = {
        "crs": src.crs.to_string(), "transform": list(src.transform)[:6],
        "shape": list(data.shape), "dtype": str(data.dtype),
        "nodata": src.nodata, "descriptions": list(src.descriptions),
        "tags": {key: value for key, value in src.tags().items()
                 if key != "AREA_OR_POINT"},
        "layout": {key: src.profile.get(key) for key in (
            "tiled", "blockxsize", "blockysize", "compress", "interleave")}}
  if name in CLASS_RASTERS:
    fingerprint["block_counts"] = [_block_counts(band) for band in data]
  else:
    fingerprint["block_means"] = [_block_means(band) for band in data]
  return fingerprint


def scene_fingerprint(scene: synthetic.SyntheticScene) -> dict:
  return {
      "crs": scene.crs, "shape": list(scene.shape),
      "resolution_m": scene.resolution_m,
      "transform": list(scene.transform)[:6],
      "sar_transform": list(scene.sar_transform)[:6],
      "dem_transform": list(scene.dem_transform)[:6],
      "dem_shape": list(scene.dem_shape),
      "lake_level_m": scene.lake_level_m, "snow_line_m": scene.snow_line_m,
      "class_fractions": list(scene.class_fractions),
      "changed_fraction": scene.changed_fraction,
      "cloud_coverage": scene.cloud_coverage,
      "files": {name: file_fingerprint(name, path)
                for name, path in sorted(scene.paths.items())}}


def world_fingerprint(out_dir) -> dict:
  out_dir = pathlib.Path(out_dir)
  return {key: scene_fingerprint(synthetic.make_scene(out_dir=out_dir / key,
                                                      **kwargs))
          for key, kwargs in SCENES.items()}


def main():
  with tempfile.TemporaryDirectory() as tmp:
    fingerprint = world_fingerprint(tmp)
  text = json.dumps(fingerprint, indent=1)
  # One line per list of numbers or strings.
  text = re.sub(r"\[\s*([^\[\]{}]*?)\s*\]",
                lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]",
                text)
  STORED.write_text(text + "\n")
  print(f"wrote {STORED}")


if __name__ == "__main__":
  main()
