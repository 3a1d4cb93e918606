"""Writes dummy_data/: two tiny scene folders for the geotiff config's tests.

Each folder holds real GeoTIFFs in the manual_dir layout (s2.tif, s1.tif,
lulc.tif, dem.tif; S2 in UTM, DEM in EPSG:4326, SAR on a shifted grid) from
`rsjax.geo.synthetic.make_scene`. scene_b gets a 20x20-pixel nodata hole in
its S2 top-left corner, so the tile there must be dropped by the nodata
filter. Run from the repository root:

  python data_builders/rs_multisource/make_dummy_data.py
"""

from __future__ import annotations

import os
import pathlib
import shutil

import numpy as np
import rasterio
from rasterio.windows import Window

from rsjax.geo import synthetic

DUMMY_DIR = pathlib.Path(__file__).resolve().parent / "dummy_data"
SCENE_SIZE = 112
HOLE = 20  # pixels of S2 nodata in scene_b's top-left corner


def main() -> None:
  shutil.rmtree(DUMMY_DIR, ignore_errors=True)
  for index, name in enumerate(("scene_a", "scene_b")):
    scene = synthetic.make_scene(
        100 + index, DUMMY_DIR / name, size=SCENE_SIZE,
        center=(500_000.0 + 5_000.0 * index, 5_190_000.0))
    if name == "scene_b":
      with rasterio.open(scene.paths["s2"], "r+") as dataset:
        dataset.write(np.zeros((dataset.count, HOLE, HOLE), np.uint16),
                      window=Window(0, 0, HOLE, HOLE))
  for path in sorted(DUMMY_DIR.rglob("*")):
    if path.is_file():
      print(f"{os.path.getsize(path):8d}  {path.relative_to(DUMMY_DIR)}")


if __name__ == "__main__":
  main()
