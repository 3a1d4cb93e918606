"""The fusion paper's three experiments (Jiang, Shen & Li, TGRS 2022, Sec. III)
as config variants: their resolution ratios and patch sizes from the paper's
numbers, the patch windows, each variant training two steps, and the dataset's
LR image being of the t2 date."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from scipy import ndimage

import tiny_configs
from configs import cycle_fusion as cycle_fusion_config
from rsjax.systems import base
from rsjax.systems.cycle_fusion import patches
from rsjax.train import trainer
from rsjax.train import training_length
from system_checks import KEY

# Independent of the config: the paper's sensors and patch sizes.
S2_M, MODIS_M, LANDSAT_M = 10, 500, 30      # Sec. III-A, III-C
PAPER = {
    # Table I: 1984 patches of 200 x 200; MODIS over S2.
    "modis": dict(ratio=MODIS_M // S2_M, patch=200, cloudy=False),
    # Table III: same-resolution S2, 8112 patches of 128 x 128, clouds.
    "s2_clouds": dict(ratio=S2_M // S2_M, patch=128, cloudy=True),
    # Table V: Landsat 8 over S2, 6336 patches of 128 x 128, clouds.
    "landsat": dict(ratio=LANDSAT_M // S2_M, patch=128, cloudy=True),
}
RESNET_DOWNSAMPLING = 2 * 2        # Fig. 2: two stride-2 convolutions


def _nearest_valid(size, ratio):
  """The multiple of both S and the generator's 4 closest to `size` (the
  larger one on a tie), by search."""
  return min((n for n in range(1, 4 * size) if n % ratio == 0
              and n % RESNET_DOWNSAMPLING == 0),
             key=lambda n: (abs(n - size), -n))


@pytest.mark.parametrize("experiment", list(PAPER))
def test_variant_has_the_papers_ratio_patch_and_clouds(experiment):
  config = cycle_fusion_config.get_config(experiment)
  paper = PAPER[experiment]
  assert config.resolution_ratio == paper["ratio"]
  assert config.patch_size == _nearest_valid(paper["patch"], paper["ratio"])
  assert config.cloudy == paper["cloudy"]
  assert config.mode == "hsts" and config.bands == (0, 1, 2)   # RGB


def test_papers_patch_sizes_where_they_fit_and_landsats_nearest():
  """200 and 128 px are multiples of their S and of 4; the Landsat 128 px is
  not a multiple of 3 and becomes 132 = 11 x 12."""
  assert cycle_fusion_config.get_config("modis").patch_size == 200
  assert cycle_fusion_config.get_config("s2_clouds").patch_size == 128
  assert cycle_fusion_config.get_config("landsat").patch_size == 132
  assert 200 // 50 == 4                   # 4 x 4 MODIS pixels a patch


def test_default_is_the_resolution_improvement_experiment():
  default = cycle_fusion_config.get_config()
  modis = cycle_fusion_config.get_config("modis")
  assert default.to_dict() == modis.to_dict()
  assert default.experiment == "modis"
  # The demo keeps its measured S = 16 on whole tiles; the others keep theirs.
  assert cycle_fusion_config.get_config("demo").resolution_ratio == 16
  assert cycle_fusion_config.get_config("demo").patch_size is None
  landsat_demo = cycle_fusion_config.get_config("landsat,demo")
  assert (landsat_demo.resolution_ratio, landsat_demo.patch_size) == (3, 132)


@pytest.mark.parametrize("patch,ratio,message", [
    (128, 3, r"config.patch_size=128 must be a multiple of "
     r"config.resolution_ratio=3 .* and of 4 \(config.model.generator "
     r"'resnet''s downsampling\), i.e. of 12: nearest valid sizes 120 or 132"),
    (256, 50, r"config.patch_size=256 .* config.resolution_ratio=50 .* of 100: "
     r"nearest valid sizes 200 or 300"),
    (130, 1, r"config.patch_size=130 .* of 4: nearest valid sizes 128 or 132"),
    (0, 1, "config.patch_size must be None"),
])
def test_bad_patch_size_names_the_keys(patch, ratio, message):
  with pytest.raises(ValueError, match=message):
    base.get_system(_config(patch_size=patch, resolution_ratio=ratio))


def _config(**overrides):
  config = tiny_configs.memory_cycle_fusion_experiment("modis")
  config.update_from_flattened_dict(overrides)
  return config


def _coordinate_batch(tile, batch=2):
  """Fields whose values are their pixel's (row, col): a window's corner is
  its first value."""
  rows, cols = np.meshgrid(np.arange(tile), np.arange(tile), indexing="ij")
  image = np.broadcast_to(np.stack([rows, cols, rows], -1),
                          (batch, tile, tile, 3)).astype(np.float32)
  return {"s2_t2": image, "cloud_mask": image[..., 0].astype(np.int32),
          "mask": np.ones(batch, np.float32)}


@pytest.mark.parametrize("tile,patch,ratio", [(250, 200, 50), (150, 132, 3),
                                              (160, 128, 1)])
def test_windows_start_on_the_lr_grid(tile, patch, ratio):
  batch = _coordinate_batch(tile)
  corners = set()
  cut = jax.jit(lambda b, k: patches.random(b, patch, ratio, "s2_t2", k))
  for seed in range(40):
    out = cut(batch, jax.random.PRNGKey(seed))
    image = np.asarray(out["s2_t2"])
    assert image.shape == (2, patch, patch, 3)
    top, left = int(image[0, 0, 0, 0]), int(image[0, 0, 0, 1])
    np.testing.assert_array_equal(image[..., 0], top + np.arange(patch)[:, None]
                                  + 0 * image[..., 1])
    np.testing.assert_array_equal(np.asarray(out["cloud_mask"]),
                                  image[..., 0].astype(np.int32))
    np.testing.assert_array_equal(out["mask"], batch["mask"])
    corners.add((top, left))
  positions = (tile - patch) // ratio + 1
  assert all(t % ratio == 0 and l % ratio == 0 and t <= tile - patch
             and l <= tile - patch for t, l in corners)
  # 40 draws over positions^2 equally likely corners (<= 49 here): many.
  assert len(corners) >= min(10, positions**2)
  central = patches.central(batch, patch, ratio, "s2_t2")["s2_t2"]
  offset = (tile - patch) // 2 // ratio * ratio
  assert central[0, 0, 0, 0] == central[0, 0, 0, 1] == offset


def test_patch_larger_than_the_tiles_fails_at_init():
  system = base.get_system(_config())
  image = _coordinate_batch(100)["s2_t2"]
  batch = {"s2_t2": image, "s2": image, "s1_t2": image[..., :2]}
  with pytest.raises(ValueError, match=r"config.patch_size=200 is larger "
                     r"than the 100x100 tiles"):
    system.inputs.check_batch(batch, system.size_multiple, system.patch_size)


def test_s2_clouds_low_res_is_the_cloudy_t2_image():
  """Ratio 1 (Sec. III-B): X^ is the t2 target itself with the cloud pixels
  (cloud_mask class 1) set to the cloud value; clear pixels are exact."""
  system = base.get_system(tiny_configs.memory_cycle_fusion_experiment(
      "s2_clouds"))
  rng = np.random.default_rng(0)
  batch = {"s2_t2": rng.uniform(-1, 1, (2, 16, 16, 4)).astype(np.float32),
           "s2": rng.uniform(-1, 1, (2, 16, 16, 4)).astype(np.float32),
           "s1_t2": rng.uniform(-1, 1, (2, 16, 16, 2)).astype(np.float32),
           "cloud_mask": rng.integers(0, 3, (2, 16, 16)).astype(np.uint8)}
  low = np.asarray(system.inputs.observations(batch)["lowres"])
  cloud = batch["cloud_mask"] == 1
  np.testing.assert_array_equal(low[~cloud], batch["s2_t2"][..., :3][~cloud])
  np.testing.assert_array_equal(low[cloud], np.float32(1.0))


@pytest.mark.parametrize("experiment", list(PAPER))
def test_each_experiment_trains_two_steps(experiment, tmp_path):
  """Its variant, tiny networks, random tiles larger than its patches:
  two steps on random windows, then evaluation on the central window."""
  config = tiny_configs.memory_cycle_fusion_experiment(experiment, steps=2)
  config.eval_every = 2
  scores = trainer.train_and_evaluate(config, str(tmp_path))
  assert {"sam", "ergas", "q", "psnr", "ssim", "lowres_psnr"} <= set(scores)
  assert all(np.isfinite(v) for v in scores.values())
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
      "1", "2"]
  # predict gives the central patch of the dataset's tiles.
  system = base.get_system(config)
  tile, patch = tiny_configs.CYCLE_FUSION_TILES[experiment], config.patch_size
  batch = {name: jax.ShapeDtypeStruct((2, tile, tile) + shape, dtype)
           for name, shape, dtype in (
               ("s2_t2", (4,), np.float32), ("s2", (4,), np.float32),
               ("s1_t2", (2,), np.float32), ("cloud_mask", (), np.uint8))}
  state = jax.eval_shape(system.init, KEY, batch)
  prediction = jax.eval_shape(system.predict, state, batch)
  assert prediction.shape == (2, patch, patch, 3)


def test_dataset_low_res_image_is_of_the_t2_date(synthetic_tiny):
  """low_res = 'dataset' reads s2_coarse, which must be the t2 image as in
  the paper (Sec. II: X~ is the LR image at t2): where the land cover changed
  between the dates, s2_coarse is far closer to s2_t2 than to s2."""
  source = tfds.data_source("rs_multisource/synthetic_tiny",
                            data_dir=synthetic_tiny, split="train")
  close_t1, close_t2, pixels = [], [], 0
  for example in source:
    # Inside changed patches (2 px from their edge), where the coarse
    # sensor's PSF (sigma 0.494 x 3 px) mixes in little unchanged land.
    changed = ndimage.binary_erosion(example["lulc"] != example["lulc_t2"],
                                     np.ones((5, 5)))
    coarse = example["s2_coarse"][changed]
    pixels += int(changed.sum())
    close_t1.append(np.abs(coarse - example["s2"][changed]).sum())
    close_t2.append(np.abs(coarse - example["s2_t2"][changed]).sum())
  # Measured 0.24 with s2_coarse of t2; a t1 coarse image swaps the roles
  # (about 4), so 0.5 separates the dates with room on both sides.
  assert pixels >= 100
  assert sum(close_t2) < 0.5 * sum(close_t1)
  config = cycle_fusion_config.get_config("landsat")
  config.low_res = "dataset"
  config.data.fields = tuple(config.data.fields) + ("s2_coarse",)
  assert base.get_system(training_length.stand_in(config)).inputs.fields[
      "lowres"] == "s2_coarse"
