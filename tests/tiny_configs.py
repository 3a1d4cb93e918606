"""The smallest configs that still run every part of the training loop.

Tests that share a config share its compiled programs through the persistent
compilation cache (tests/conftest.py), so keep these identical across tests.
`tiny_segmentation` shrinks the segmentation runs of the experiments
(augmentation, fusion study) the same way.
"""

from configs import augment
from configs import cloud_removal
from configs import csebgan
from configs import cycle_fusion
from configs import fusion_seg
from configs import rs_spade
from configs import unet_seg


def tiny_rs_spade(data_dir, steps=2):
  """RS-SPADE at the smallest size on rs_multisource/synthetic_tiny."""
  config = _tiny(rs_spade.get_config("s1+lulc+dem"), steps)
  config.data.data_dir = data_dir
  config.data.name = "rs_multisource/synthetic_tiny"
  config.num_eval_batches = None
  return config


def _tiny(config, steps=3):
  """Smallest sizes that still run every part of the loop."""
  config.model.generator_kwargs = {"ngf": 2, "num_upsamplings": 4}
  config.model.discriminator_kwargs = {"ndf": 4, "num_layers": 2}
  config.data.batch_size = 8
  config.data.eval_batch_size = 8
  config.keep_checkpoints = 10
  return _short_run(config, steps, eval_every=1000, checkpoint_every=1)


def _short_run(config, steps, *, eval_every, checkpoint_every):
  """`steps` steps, each logged; evaluation on one batch."""
  config.epochs = None  # a paper length in epochs would disagree with steps
  config.total_steps = steps
  config.log_every = 1
  config.eval_every = eval_every
  config.checkpoint_every = checkpoint_every
  config.num_eval_batches = 1
  return config


def _memory_tiles(data, examples):
  """`examples` random 32-pixel tiles made in memory instead of a dataset."""
  data.source = "memory"
  data.tile_size = 32
  data.memory_examples = examples


def memory_config(steps=3):
  """pix2pix on random 32-pixel tiles: the quickest system to compile."""
  config = _tiny(rs_spade.get_config("s1+lulc+dem"), steps)
  config.model.generator = "unet"
  config.model.generator_kwargs = {"ngf": 2, "num_downs": 5}
  _memory_tiles(config.data, 32)
  return config


def tiny_segmentation(seg, *, examples, eval_every):
  """Shrinks segmentation config `seg` in place: 2 steps on `examples`
  random 32-pixel tiles, a U-Net of 2 base features and 2 levels."""
  _memory_tiles(seg.data, examples)
  seg.data.batch_size = 8
  seg.data.eval_batch_size = 8
  seg.model.segmenter_kwargs.base_features = 2
  seg.model.segmenter_kwargs.channel_multipliers = (1, 2)
  return _short_run(seg, 2, eval_every=eval_every, checkpoint_every=2)


# -- one tiny memory-source run per system (tests/train/test_resume_every_system.py)
#
# Each builder gives `steps` steps on random 32-pixel tiles, every step logged
# and checkpointed; `seed` is both the model seed (init, step RNG) and the
# data seed (the random tiles, their order, the augmentation). The seed does
# not change a compiled program's shapes, so all seeds of a builder share them.

def _memory_run(config, steps, seed, examples=24):
  """`config` on `examples` random tiles (3 steps an epoch at batch 8)."""
  _memory_tiles(config.data, examples)
  config.data.batch_size = config.data.eval_batch_size = 8
  config.seed = config.data.seed = seed
  config.keep_checkpoints = 10
  return _short_run(config, steps, eval_every=1000, checkpoint_every=1)


def memory_pix2pix_ema(steps=4, seed=0):
  """`memory_config`'s pix2pix with a generator EMA (decay 0.5)."""
  config = memory_config(steps)
  config.ema_decay = 0.5
  return _memory_run(config, steps, seed)


def memory_rs_spade(steps=4, seed=0):
  """`tiny_rs_spade`'s RS-SPADE (S1 + land cover + DEM, multi-source SPADE
  generator of ngf 2 from 2 x 2 up, 2-layer PatchGAN) on random 32-pixel
  tiles instead of a built dataset."""
  config = _tiny(rs_spade.get_config("s1+lulc+dem"), steps)
  return _memory_run(config, steps, seed)


def memory_segmentation(steps=4, seed=0, fusion=None):
  """RS-UNet (or, with `fusion`, the two-branch segmenter of that fusion
  mode) of 2 base features and 2 levels, S2 (+ S1) in."""
  if fusion is None:
    config = unet_seg.get_config("s2")
  else:
    config = fusion_seg.get_config(fusion)
  config.model.segmenter_kwargs.base_features = 2
  config.model.segmenter_kwargs.channel_multipliers = (1, 2)
  return _memory_run(config, steps, seed)


def memory_cloud_removal(steps=4, seed=0):
  """Both DRIB stages of ngf 2 and 1 block, Table 1 PatchGANs of ndf 4,
  synthetic clouds; stage 1 trains the first steps - 1 steps, stage 2 the
  last."""
  config = cloud_removal.get_config()
  for stage in ("stage1", "stage2"):
    config.model[stage].generator_kwargs = dict(ngf=2, num_blocks=1)
    config.model[stage].discriminator_kwargs = dict(ndf=4)
  config.stage1_fraction = (steps - 1) / steps   # rounded: steps - 1 steps
  return _memory_run(config, steps, seed)


def memory_csebgan(steps=4, seed=0):
  """The full CSEBGAN (conductor trained; no VGG weights, so no perceptual
  term) at the sizes of tests/systems/csebgan's tiny_config, but with the
  paper's spectral norm (its power-iteration vectors are batch_stats)."""
  config = csebgan.get_config("full")
  config.model.generator_kwargs.update(dict(
      ngf=2, num_upsamplings=1, embed_dim=4, mlp_hidden=4))
  config.model.discriminator_kwargs.update(dict(ndf=4, num_layers=2))
  config.model.segmenter_kwargs = dict(base_features=4, channel_multipliers=(1, 2))
  return _memory_run(config, steps, seed)


def memory_cycle_fusion(steps=4, seed=0):
  """Cycle fusion 'hsts,cloudy' with ResNet generators of ngf 2 and 1 block
  and 2-layer PatchGANs, at S = 4 on whole 32-pixel tiles."""
  config = cycle_fusion.get_config("hsts,cloudy")
  config.resolution_ratio = 4
  config.patch_size = None
  _tiny_cycle_fusion_networks(config)
  return _memory_run(config, steps, seed)


CYCLE_FUSION_TILES = {"modis": 250, "s2_clouds": 160, "landsat": 150}
"""Memory tiles per paper experiment: larger than its patch (200, 128, 132),
so a window is cut, and a multiple of its S (50, 1, 3)."""


def memory_cycle_fusion_experiment(experiment, steps=2, seed=0):
  """A paper experiment's variant (its S, patch size and clouds unchanged)
  with the tiny networks, on 8 random tiles of CYCLE_FUSION_TILES px (one
  batch)."""
  config = cycle_fusion.get_config(experiment)
  _tiny_cycle_fusion_networks(config)
  config = _memory_run(config, steps, seed, examples=8)
  config.data.tile_size = CYCLE_FUSION_TILES[experiment]
  return config


def _tiny_cycle_fusion_networks(config):
  config.model.generator_kwargs = dict(ngf=2, num_blocks=1)
  config.model.discriminator_kwargs = dict(ndf=4, num_layers=2)


def tiny_augment(generator_workdir, fractions=(0.5, 1.0)):
  """The augmentation experiment at tiny size: a U-Net on 32 random tiles,
  validated at every step (for the curves)."""
  config = augment.get_config()
  config.generator_workdir = generator_workdir
  config.fractions = fractions
  tiny_segmentation(config.segmentation, examples=32, eval_every=1)
  return config
