"""The smallest configs that still run every part of the training loop.

Tests that share a config share its compiled programs through the persistent
compilation cache (tests/conftest.py), so keep these identical across tests.
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
  config.total_steps = steps
  config.log_every = 1
  config.eval_every = 1000
  config.checkpoint_every = 1
  config.keep_checkpoints = 10
  config.num_eval_batches = 1
  return config


def memory_config(steps=3):
  """pix2pix on random 32-pixel tiles: the quickest system to compile."""
  config = _tiny(rs_spade.get_config("s1+lulc+dem"), steps)
  config.model.generator = "unet"
  config.model.generator_kwargs = {"ngf": 2, "num_downs": 5}
  config.data.source = "memory"
  config.data.tile_size = 32
  config.data.memory_examples = 32
  return config
