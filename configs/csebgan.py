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

The arg picks an ablation of Table II, a baseline of Table I, the dataset
and/or the CPU demo size, comma-joined:

  python -m launch.train --config configs/csebgan.py --workdir workdir/csebgan
  python -m launch.train --config configs/csebgan.py:no_conductor --workdir ...
  python -m launch.train --config configs/csebgan.py:demo --workdir /tmp/cseb_demo
  python -m launch.train --config configs/csebgan.py:spade,gid15 \
      --config.data.data_dir=DIR --workdir workdir/csebgan_spade
  python -m launch.train --config configs/csebgan.py:pix2pixhd,gid15 \
      --config.data.data_dir=DIR --workdir workdir/csebgan_pix2pixhd

  full               the paper's method (default)
  no_sharing         every SMBlk learns its own embeddings ("w/o sharing")
  no_conductor       no conductor ("w/o C")
  frozen_conductor   conductor not updated ("frozen C"; give a pre-trained
                     segmentation workdir in config.conductor.workdir)
  conductor_no_real  the conductor never sees real images ("w/o real")
  no_discriminator   no discriminator: no adversarial / FM loss ("w/o D")
  spade              Table I's "SPADE" row (Park et al. 2019): the SPADE
                     generator of configs/spade_reference.py on the one-hot
                     mask, SPADE's objective (hinge, 10 FM, 10 VGG, no
                     conductor), TTUR Adam(0, 0.9) 1e-4 / 4e-4; the same
                     multi-scale D, data, schedule and evaluation as CSEBGAN
  pix2pixhd          Table I's "Pix2PixHD" row (Wang et al. 2018): the global
                     generator G1 (rsjax/nn/pix2pixhd.py), 3-scale PatchGAN
                     (n_layers 3, affine-free InstanceNorm, no spectral norm),
                     LSGAN + 10 FM + 10 VGG, Adam(0.5, 0.999) 2e-4 decaying
                     over the second half; same data and evaluation
                     (Both are deterministic: diversity 0, no mCSD / mOCD.)
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
BASELINES = ("spade", "pix2pixhd")
ARGS = variants.Spec("configs/csebgan.py",
                     variants.OneOf("ablation", ABLATIONS, "full"),
                     variants.OneOf("baseline", BASELINES),
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
  config.baseline = common.optional(str)     # Table I's baseline, or None
  if args.baseline is not None:
    if args.ablation != "full":
      raise ValueError(f"configs/csebgan.py: {args.ablation!r} is an ablation "
                       f"of CSEBGAN, not of the baseline {args.baseline!r}")
    apply_baseline(config, args.baseline)
  if args.dataset is not None:
    datasets.apply(config, args.dataset)
    # Sec. IV-A.2: "trained for 200 epochs" on each of the paper's datasets;
    # the trainer derives total_steps from the training split
    # (rsjax.train.training_length).
    config.epochs = 200
    config.total_steps = common.optional(int)
  if args.demo:
    apply_demo(config)
  return config


def apply_baseline(config: ml_collections.ConfigDict, baseline: str) -> None:
  """Table I's `baseline` on CSEBGAN's task: its generator and objective, no
  conductor; the data, steps, batch and evaluation stay CSEBGAN's."""
  config.baseline = baseline
  config.conductor.enabled = False
  config.loss.conductor = 0.0
  del config.optimizer["conductor"]
  # The segmentation scores need a pre-trained U-Net (the conductor is off):
  # --config.evaluation.segmenter_workdir=<a configs/unet_seg.py workdir>.
  if baseline == "spade":
    # NVlabs SPADE's defaults, as configs/spade_reference.py (with VGG).
    config.model.generator = "spade"
    config.model.generator_kwargs = ml_collections.ConfigDict(dict(
        ngf=64, num_upsamplings=5, norm="batch", spectral_norm=True,
        hidden=128, label_resize="nearest"))
    config.model.discriminator_kwargs = ml_collections.ConfigDict(dict(
        num_scales=2, ndf=64, num_layers=3, norm="instance",
        spectral_norm=True, style="spade"))
    config.loss.adversarial = "hinge"
  elif baseline == "pix2pixhd":
    # pix2pixHD's defaults: netG global (ngf 64, 4 downsamplings, 9 blocks),
    # num_D 3, n_layers_D 3 (C64/2 C128/2 C256/2 C512/1 C1/1, padding 2:
    # rsjax's style 'spade' without spectral norm), no_lsgan False,
    # lambda_feat 10 for FM and VGG, Adam(0.5, 0.999) at 2e-4, niter 100 +
    # niter_decay 100 (decay over the second half).
    config.model.generator = "pix2pixhd"
    config.model.generator_kwargs = ml_collections.ConfigDict(dict(
        ngf=64, num_downs=4, num_blocks=9))
    config.model.discriminator_kwargs = ml_collections.ConfigDict(dict(
        num_scales=3, ndf=64, num_layers=3, norm="instance",
        spectral_norm=False, style="spade"))
    config.loss.adversarial = "lsgan"
    for network in ("generator", "discriminator"):
      config.optimizer[network] = common.adam(lr=2e-4, b1=0.5, b2=0.999,
                                              decay_start=0.5)


def apply_demo(config: ml_collections.ConfigDict) -> None:
  """Few minutes on 2 CPU cores on rs_multisource/synthetic."""
  common.apply_demo(config)
  kwargs = config.model.generator_kwargs
  if config.model.generator == "senet":
    kwargs.embed_dim = 16
  elif config.model.generator == "pix2pixhd":
    kwargs.num_blocks = 3
  config.model.segmenter_kwargs.base_features = 8
  config.model.discriminator_kwargs.num_layers = 2
  # A short run needs faster rates than the paper's (same ratios).
  for network in config.optimizer:
    config.optimizer[network].lr *= 4
  config.total_steps = 150
  config.log_every = 25
  config.eval_every = 150
  config.checkpoint_every = 50
  config.num_eval_batches = 4
  config.evaluation.num_samples = 2     # not the paper's 10: a CPU demo
  config.evaluation.num_pairs = 0
