"""Writes the dummy data of the public-dataset builders, in each real layout.

    python -m data_builders.make_public_dummy_data            # all builders
    python -m data_builders.make_public_dummy_data gid15      # one

Each builder's `dummy_data/` folder gets a few patches or scenes named and
nested exactly as the published dataset is (see each builder's docstring), with
the published band counts and data types. Patches keep their real 256x256 size
(the features' declared shape); large scenes (GID, WHU-OPT-SAR) are cut down
to a few 256 tiles. Tests that train on a dataset ask for more: `extra_scenes`
more patch scenes (winter, one patch each) or taller scenes (`height`). Pixels are deterministic and constant in 32x32 blocks,
written as one deflate block per file, so each file is a few KB.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image

ROOT = Path(__file__).resolve().parent
P = 256


def _field(height, width, bands, seed, low, high, dtype, block=32):
  """(bands, height, width) values in [low, high], constant in square blocks.

  Piecewise-constant so that the compressed dummy files stay tiny.
  """
  rng = np.random.default_rng(seed)
  coarse = rng.uniform(low, high, (bands, -(-height // block),
                                   -(-width // block)))
  fine = np.kron(coarse, np.ones((1, block, block)))[:, :height, :width]
  return fine.astype(dtype)


def _blocks(height, width, values, seed, block=64):
  """A (height, width) map of `values` in square blocks (a label image)."""
  rng = np.random.default_rng(seed)
  grid = rng.choice(np.asarray(values), size=(-(-height // block),
                                              -(-width // block)))
  return np.kron(grid, np.ones((block, block), grid.dtype))[:height, :width]


def _tif(path, data, *, georeferenced=True, seed=0):
  path.parent.mkdir(parents=True, exist_ok=True)
  bands, height, width = data.shape
  profile = dict(driver="GTiff", width=width, height=height, count=bands,
                 dtype=data.dtype.name, compress="deflate",
                 predictor=3 if data.dtype.kind == "f" else 2, tiled=True,
                 blockxsize=min(512, -(-width // 16) * 16),
                 blockysize=min(512, -(-height // 16) * 16))
  if georeferenced:
    x0, y0 = 500000 + 2560 * seed, 5300000 - 2560 * seed
    profile.update(crs="EPSG:32632", transform=Affine(10, 0, x0, 0, -10, y0))
  with rasterio.open(path, "w", **profile) as f:
    f.write(data)


def _png(path, array):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(array).save(path, optimize=True)


def _patch_name(season, modality, scene, patch, ext):
  return f"{modality}_{scene}/{season}_{modality}_{scene}_p{patch}.{ext}"


def _extra(patches, extra_scenes: int, first_scene: int):
  """`patches` and `extra_scenes` winter scenes of one patch each."""
  return patches + [("ROIs2017_winter", first_scene + i, 1)
                    for i in range(extra_scenes)]


def sen1_2(out: Path, extra_scenes: int = 0):
  """Four scenes in three seasons (winter left out), one or two patches each."""
  patches = _extra([("ROIs1158_spring", 1, 1), ("ROIs1158_spring", 1, 2),
                    ("ROIs1158_spring", 5, 1), ("ROIs1868_summer", 2, 3),
                    ("ROIs1970_fall", 7, 1), ("ROIs1970_fall", 7, 2)],
                   extra_scenes, 100)
  for seed, (season, scene, k) in enumerate(patches):
    s1 = _field(P, P, 1, seed, 0, 255, np.uint8)[0]
    s2 = np.moveaxis(_field(P, P, 3, 100 + seed, 0, 255, np.uint8), 0, -1)
    _png(out / season / _patch_name(season, "s1", scene, k, "png"), s1)
    _png(out / season / _patch_name(season, "s2", scene, k, "png"), s2)


def _s1_s2(seed, s2_bands=13):
  s1 = _field(P, P, 2, seed, -25.0, 0.0, np.float32)
  s2 = _field(P, P, s2_bands, 50 + seed, 0, 6000, np.uint16)
  return s1, s2


def sen12ms(out: Path, extra_scenes: int = 0):
  """Season-folder layout; spring scene 15 is an official hold-out scene."""
  patches = _extra([("ROIs1158_spring", 1, 30), ("ROIs1158_spring", 1, 31),
                    ("ROIs1158_spring", 15, 2), ("ROIs1868_summer", 3, 7),
                    ("ROIs2017_winter", 4, 100)], extra_scenes, 200)
  igbp = [1, 4, 5, 8, 10, 12, 13, 16, 17]
  for seed, (season, scene, k) in enumerate(patches):
    s1, s2 = _s1_s2(seed)
    lc = np.stack([_blocks(P, P, igbp, seed), _blocks(P, P, [1, 11, 21], seed),
                   _blocks(P, P, [2, 10, 25], seed),
                   _blocks(P, P, [1, 22, 40], seed)]).astype(np.uint16)
    for modality, data in (("s1", s1), ("s2", s2), ("lc", lc)):
      _tif(out / season / _patch_name(season, modality, scene, k, "tif"), data,
           seed=seed)


def sen12ms_cr(out: Path, extra_scenes: int = 0):
  """One folder per season and modality, as the SEN12MS-CR archives unpack."""
  patches = _extra([("ROIs1158_spring", 1, 30), ("ROIs1158_spring", 2, 5),
                    ("ROIs1868_summer", 6, 1), ("ROIs1868_summer", 6, 2)],
                   extra_scenes, 200)
  for seed, (season, scene, k) in enumerate(patches):
    s1, s2 = _s1_s2(seed)
    cloud = _field(P, P, 1, 200 + seed, 0, 1, np.float32)[0] ** 2
    cloudy = (s2 * (1 - cloud) + 8000 * cloud).astype(np.uint16)
    for modality, data in (("s1", s1), ("s2", s2), ("s2_cloudy", cloudy)):
      _tif(out / f"{season}_{modality}" /
           _patch_name(season, modality, scene, k, "tif"), data, seed=seed)


GID_IMAGES = ("GF2_PMS1__L1A0000647767-MSS1", "GF2_PMS1__L1A0001064454-MSS1",
              "GF2_PMS1__L1A0001348919-MSS1", "GF2_PMS2__L1A0000607681-MSS2",
              "GF2_PMS2__L1A0000635115-MSS2", "GF2_PMS2__L1A0000658637-MSS2")


def gid15(out: Path, height: int = 520):
  """Six `height`x300 scenes (2 tiles of 256 each at the default height);
  one tile is mostly unknown."""
  from data_builders.gid15.gid15_dataset_builder import PALETTE
  root = out / "Fine_Land-cover_Classification_15classes"
  width = 300
  for seed, name in enumerate(GID_IMAGES):
    nirrgb = _field(height, width, 4, 300 + seed, 0, 255, np.uint8)
    _tif(root / "image_NirRGB" / f"{name}.tif", nirrgb, georeferenced=False)
    _tif(root / "image_RGB" / f"{name}.tif", nirrgb[1:],
         georeferenced=False)
    classes = _blocks(height, width, range(1, 16), seed)
    if seed == 0:
      classes[:230, :] = 0  # the first tile is > 80% unknown: dropped.
    label = np.asarray(PALETTE, np.uint8)[classes]
    _tif(root / "label_15classes" / f"{name}_label.tif",
         np.moveaxis(label, -1, 0), georeferenced=False)


WHU_IMAGES = ("NH49E001013", "NH49E004021", "NH50E003001",  # official train
              "NH49E001014", "NH50E007002")  # official test


def whu_opt_sar(out: Path, height: int = 300):
  """Five `height`x520 scenes (2 tiles of 256 each at the default height)
  from both official lists."""
  width = 520
  for seed, name in enumerate(WHU_IMAGES):
    _tif(out / "optical" / f"{name}.tif",
         _field(height, width, 4, 400 + seed, 0, 255, np.uint8), seed=seed)
    _tif(out / "sar" / f"{name}.tif",
         _field(height, width, 1, 500 + seed, 0, 255, np.uint8), seed=seed)
    _tif(out / "lbl" / f"{name}.tif",
         _blocks(height, width, np.arange(0, 80, 10, dtype=np.uint8),
                 seed)[None], seed=seed)


MAKERS = {"sen1_2": sen1_2, "sen12ms": sen12ms, "sen12ms_cr": sen12ms_cr,
          "gid15": gid15, "whu_opt_sar": whu_opt_sar}


def main(names):
  for name in names or MAKERS:
    out = ROOT / name / "dummy_data"
    shutil.rmtree(out, ignore_errors=True)
    MAKERS[name](out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{name}: {size / 1024:.0f} KiB in {out}")


if __name__ == "__main__":
  main(sys.argv[1:])
