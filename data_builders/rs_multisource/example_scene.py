"""Writes example scene folders, to see the layout the `geotiff` config reads.

    python -m data_builders.rs_multisource.example_scene OUT_DIR [--scenes 2]
        [--size 600] [--clouds 0.3] [--second_date 0.1]

Each folder `OUT_DIR/scene_<k>/` holds the GeoTIFFs a scene folder of your own
holds, in the same units and grids as Earth Engine exports (S2 DN in UTM, S1
linear sigma0 on a shifted grid, Dynamic World labels, a DEM in EPSG:4326 with
a margin), made by the synthetic world (`rsjax.geo.synthetic.make_scene`).
Inspect them with `gdalinfo`, or build them as your own data would be:

    tfds build data_builders/rs_multisource --config geotiff \\
        --manual_dir OUT_DIR --data_dir DIR

docs/data.md says how to export such folders for an area of your own.
"""

from __future__ import annotations

import argparse
import os
import sys

from rsjax.geo import synthetic

SCENE_SPACING_M = 50_000.0  # scenes side by side, never overlapping


def write_example_scenes(out_dir: str, *, scenes: int = 2, size: int = 600,
                         clouds: float | None = None,
                         second_date: float = 0.0) -> list[str]:
  """Writes `scenes` folders of `size` x `size` pixels; their paths."""
  folders = []
  for index in range(scenes):
    folder = os.path.join(out_dir, f"scene_{index}")
    synthetic.make_scene(
        index, folder, size=size,
        center=(500_000.0 + SCENE_SPACING_M * index, 5_190_000.0),
        cloud_coverage=clouds, change_fraction=second_date)
    folders.append(folder)
  return folders


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("out_dir")
  parser.add_argument("--scenes", type=int, default=2)
  parser.add_argument("--size", type=int, default=600,
                      help="pixels a side at 10 m (600: 6 x 6 km)")
  parser.add_argument("--clouds", type=float, default=None,
                      help="also write s2_cloudy.tif and cloud_mask.tif with "
                      "this cloud fraction")
  parser.add_argument("--second_date", type=float, default=0.0,
                      help="also write a second date whose land cover "
                      "changes by this fraction")
  args = parser.parse_args(argv)
  for folder in write_example_scenes(
      args.out_dir, scenes=args.scenes, size=args.size, clouds=args.clouds,
      second_date=args.second_date):
    names = sorted(os.listdir(folder))
    print(f"{folder}: {', '.join(names)}")


if __name__ == "__main__":
  main(sys.argv[1:])
