"""The smallest configs that still run every part of the training loop.

Tests that share a config share its compiled programs through the persistent
compilation cache (tests/conftest.py), so keep these identical across tests.
`tiny_segmentation` shrinks the segmentation runs of the experiments
(augmentation, fusion study) the same way.
"""

from configs import rs_spade


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
