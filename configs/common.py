"""Defaults shared by every experiment config (ml_collections).

Each experiment file calls `base_config()` and overrides what its paper says.
Keys:
  system            name in rsjax.systems.base.SYSTEMS
  seed              model init and step RNG
  dtype             compute dtype ('float32' | 'bfloat16'); params are float32
  mesh              ((axis name, size), ...); -1 = remaining devices
  data              rsjax.data.pipeline config (dataset, batch sizes, fields)
  model             generator / discriminator / segmenter names + kwargs
  inputs, target    which batch fields a generator reads and predicts
  loss              loss weights and kinds
  optimizer         per network: lr, b1, b2, decay_start
  total_steps, log_every, eval_every, checkpoint_every, keep_checkpoints,
  num_eval_batches (None = the whole split), eval_split
"""

from __future__ import annotations

import ml_collections

from rsjax.data import pipeline

SYNTHETIC_DATASET = "rs_multisource/synthetic"
DEMO_DATA_DIR = "workdir/tensorflow_datasets"


def base_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.system = "paired_gan"
  config.seed = 0
  config.dtype = "float32"
  config.mesh = (("data", -1), ("fsdp", 1))

  config.data = pipeline.default_config()
  config.data.name = SYNTHETIC_DATASET
  config.data.data_dir = DEMO_DATA_DIR
  config.data.batch_size = 8
  config.data.fields = ("s2", "s1", "lulc", "dem", "valid")

  config.model = ml_collections.ConfigDict()
  config.model.generator = "unet"
  config.model.generator_kwargs = ml_collections.ConfigDict()
  config.model.discriminator = "patchgan"
  config.model.discriminator_kwargs = ml_collections.ConfigDict()
  config.model.segmenter = "rs_unet"
  config.model.segmenter_kwargs = ml_collections.ConfigDict()

  config.inputs = ("s1",)
  config.target = "s2"
  config.num_classes = 9              # Dynamic World LULC

  config.loss = ml_collections.ConfigDict()
  config.loss.adversarial = "vanilla"
  config.loss.l1 = 100.0
  config.loss.ssim = 0.0
  config.loss.feature_matching = 0.0
  config.loss.ignore_index = -1       # < 0: none
  config.loss.class_weights = None

  config.optimizer = ml_collections.ConfigDict()
  for network in ("generator", "discriminator", "segmenter"):
    config.optimizer[network] = ml_collections.ConfigDict(
        dict(lr=2e-4, b1=0.5, b2=0.999, decay_start=0.5))
  config.ema_decay = 0.0              # 0: no generator EMA

  config.total_steps = 1000
  config.log_every = 50
  config.eval_every = 500
  config.checkpoint_every = 500
  config.keep_checkpoints = 3
  config.num_eval_batches = None
  config.eval_split = "validation"
  return config


def apply_demo(config: ml_collections.ConfigDict) -> None:
  """Shrinks a paper-sized config to a few minutes on 2 CPU cores."""
  for key in ("generator_kwargs", "discriminator_kwargs"):
    kwargs = config.model[key]
    for width in ("ngf", "ndf"):
      if width in kwargs:
        kwargs[width] = 8
  if config.model.generator in ("rs_spade", "spade", "senet"):
    # The modulation MLPs run at every resolution: the main CPU cost.
    hidden = "mlp_hidden" if config.model.generator == "senet" else "hidden"
    config.model.generator_kwargs[hidden] = 16
    if config.model.generator == "rs_spade":
      config.model.generator_kwargs.embed_features = 8
  config.data.batch_size = 4
  config.data.eval_batch_size = 8
  config.total_steps = 150
  config.log_every = 25
  config.eval_every = 150
  config.checkpoint_every = 50
  config.keep_checkpoints = 2
