"""CSEBGAN: land-cover mask -> S2 RGBN with Semantic Embeddings and a conductor.

Wang, Chen, Zou, Shi (csebgan_semantic_embedding, Sec. III-IV): SENet
generator, multi-scale PatchGAN (spectral + instance norm, as SPADE's), RS-UNet
conductor trained jointly; hinge + 10 feature matching + 10 VGG perceptual +
1 conductor CE; TTUR Adam(0, 0.9) at 1e-4 (G) / 4e-4 (D) / 1e-4 (C), linear
decay to 0 over the second half; 256x256 tiles.

The perceptual term needs VGG19 weights the user has (no download):
`python -m rsjax.nn.vgg_convert vgg19-dcbb9e9d.pth vgg19.npz`, then
`--config.vgg_weights=vgg19.npz` (without it the term is off, with a warning).
`--config.evaluation.segmenter_workdir=<a configs/unet_seg.py workdir>` scores
generated images with that pre-trained U-Net instead of the conductor.

The arg picks an ablation of Table II and/or the CPU demo size, comma-joined:

  python -m launch.train --config configs/csebgan.py --workdir workdir/csebgan
  python -m launch.train --config configs/csebgan.py:no_conductor --workdir ...
  python -m launch.train --config configs/csebgan.py:demo --workdir /tmp/cseb_demo

  full               the paper's method (default)
  no_sharing         every SMBlk learns its own embeddings ("w/o sharing")
  no_conductor       no conductor ("w/o C")
  frozen_conductor   conductor not updated ("frozen C"; give a pre-trained
                     segmentation workdir in config.conductor.workdir)
  conductor_no_real  the conductor never sees real images ("w/o real")
  no_discriminator   no discriminator: no adversarial / FM loss ("w/o D")
  gid15              train on GID-15, the paper's dataset (configs/datasets.py;
                     `tfds build data_builders/gid15 --data_dir=DIR`, then
                     --config.data.data_dir=DIR): Gaofen-2 RGB, 16 classes
"""

from __future__ import annotations

import ml_collections

from configs import common
from configs import datasets
from configs import variants

ABLATIONS = ("full", "no_sharing", "no_conductor", "frozen_conductor",
             "conductor_no_real", "no_discriminator")
ARGS = variants.Spec("configs/csebgan.py",
                     variants.OneOf("ablation", ABLATIONS, "full"),
                     variants.OneOf("dataset", ("gid15",)),
                     variants.Flag("demo"))


def apply_ablation(config: ml_collections.ConfigDict, ablation: str) -> None:
  if ablation == "no_sharing":
    config.model.generator_kwargs.share_embeddings = False
  elif ablation == "no_conductor":
    config.conductor.enabled = False
  elif ablation == "frozen_conductor":
    config.conductor.trainable = False
  elif ablation == "conductor_no_real":
    config.conductor.real_images = False
  elif ablation == "no_discriminator":
    config.model.discriminator = common.optional(str)
  config.ablation = ablation


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = ARGS.parse(arg)
  config = common.base_config("csebgan")
  config.inputs = ("lulc",)
  config.target = "s2"
  config.data.fields = ("s2", "lulc", "valid")
  config.model.generator = "senet"
  config.model.generator_kwargs = ml_collections.ConfigDict(dict(
      ngf=64, num_upsamplings=5, embed_dim=64, mlp_hidden=128,
      spectral_norm=True, share_embeddings=True))
  config.model.discriminator = "multiscale_patchgan"
  config.model.discriminator_kwargs = ml_collections.ConfigDict(dict(
      num_scales=2, ndf=64, num_layers=3, norm="instance", spectral_norm=True))
  config.model.segmenter = "rs_unet"          # the conductor
  config.model.segmenter_kwargs = ml_collections.ConfigDict(dict(
      base_features=32))

  config.loss.adversarial = "hinge"
  config.loss.feature_matching = 10.0
  config.loss.perceptual = 10.0
  config.loss.conductor = 1.0
  config.vgg_weights = common.optional(str)   # a VGG19 .npz
  config.conductor = ml_collections.ConfigDict(dict(
      enabled=True, trainable=True, real_images=True,
      workdir=common.optional(str)))          # pre-trained segmentation run
  # The paper's protocol (Sec. IV-A 3-4): 10 images per mask, LPIPS over 10
  # random pairs per mask (num_pairs 0: all pairs); FID on pytorch-fid's
  # Inception-v3 and learned LPIPS from weights the user converts:
  #   python -m rsjax.nn.inception_convert pt_inception-2015-12-05-6726825d.pth fid_inception.npz
  #   python -m rsjax.nn.lpips_convert alex.pth alexnet-owt-7be5be79.pth lpips_alex.npz
  # Without them FID / diversity / mCSD / mOCD are computed on VGG19 features
  # (config.vgg_weights) and reported as vgg_fid, vgg_diversity, ...
  config.evaluation = ml_collections.ConfigDict(dict(
      num_samples=10, num_pairs=10, semantic_diversity=True,
      inception_weights=common.optional(str),   # rsjax.nn.inception_convert
      lpips_weights=common.optional(str),       # rsjax.nn.lpips_convert
      segmenter_workdir=common.optional(str)))  # U-Net scoring generated images

  for network, lr in (("generator", 1e-4), ("discriminator", 4e-4),
                      ("conductor", 1e-4)):
    config.optimizer[network] = common.adam(lr=lr, b1=0.0, b2=0.9,
                                            decay_start=0.5)
  config.data.batch_size = 8
  config.total_steps = 40_000
  config.log_every = 100
  config.eval_every = 4_000
  config.checkpoint_every = 2_000
  apply_ablation(config, args.ablation)
  if args.dataset is not None:
    datasets.apply(config, args.dataset)
  if args.demo:
    apply_demo(config)
  return config


def apply_demo(config: ml_collections.ConfigDict) -> None:
  """Few minutes on 2 CPU cores on rs_multisource/synthetic."""
  common.apply_demo(config)
  kwargs = config.model.generator_kwargs
  kwargs.embed_dim = 16
  config.model.segmenter_kwargs.base_features = 8
  config.model.discriminator_kwargs.num_layers = 2
  # A short run needs faster rates than the paper's (same 1:4:1 TTUR ratio).
  for network, lr in (("generator", 4e-4), ("discriminator", 1.6e-3),
                      ("conductor", 4e-4)):
    config.optimizer[network].lr = lr
  config.total_steps = 150
  config.log_every = 25
  config.eval_every = 150
  config.checkpoint_every = 50
  config.num_eval_batches = 4
  config.evaluation.num_samples = 2     # not the paper's 10: a CPU demo
  config.evaluation.num_pairs = 0
