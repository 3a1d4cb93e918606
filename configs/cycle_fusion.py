"""Deep residual cycle GAN fusion (Jiang, Shen & Li, TGRS 2022): t2 S2 from
t2 S1 SAR, t1 S2 and a t2 low-resolution optical image.

Two ResNet generators (7x7 C64, two stride-2 convs, 6 residual blocks, two
deconvs, 7x7 + tanh), two 70x70 PatchGANs, LSGAN, content loss 50 L1 + 100
cloud-masked L1 + 50 cycle L1, Adam 2e-4 (betas 0.5, 0.999: the paper gives
none) constant for the first half, then linear decay to 0. The paper's RGB
bands (B2, B3, B4) by default; the t2 LR image is simulated from the t2
reference by the resize branch at `resolution_ratio` (`low_res =
'dataset'` reads `s2_coarse` instead, a t2 image in rs_multisource).

The paper's three experiments (Sec. III), one variant each; the default is
the first, the resolution improvement experiment:
  modis       Sec. III-A, Tables I-II: t2 MODIS (500 m) with S2 at 10 m:
              resolution_ratio 50, patch_size 200 (the paper's 1984 patches
              of 200 x 200; 4 x 4 LR pixels a patch), clear
  s2_clouds   Sec. III-B, Tables III-IV: thick cloud removal, the LR input is
              the cloudy t2 S2 at the same 10 m: resolution_ratio 1 (resize =
              the cloud mask only), patch_size 128 (the paper's 8112 patches
              of 128 x 128), cloudy
  landsat     Sec. III-C, Tables V-VI: t2 cloudy Landsat 8 (30 m):
              resolution_ratio 3, patch_size 132 (the paper's 128 is no
              multiple of 3; 132 = 11 x lcm(3, 4), the nearest size that the
              ratio and the generator's two stride-2 convs both accept),
              cloudy
Each trains on random windows of patch_size from the dataset's tiles
(rs_multisource/synthetic by default: 256 px tiles at 10 m, s2_coarse
made at S = 3) and evaluates on their central window; any dataset with tiles
of at least patch_size px works (`config.data`; the memory source needs
`data.tile_size` >= patch_size).

The arg picks the experiment, the mode and variants, joined by commas:
  modis | s2_clouds | landsat   the experiment (default modis)
  hss | st | hsts   forward input (Y, X^), (Z, X^) or (Y, Z, X^) (default hsts)
  cloudy            thick clouds on the LR image (the dataset's cloud_mask),
                    the cloud-masked L1 term active (Tables IV, VI; on in
                    s2_clouds and landsat)
  rgbn              all four bands B2, B3, B4, B8
  aihs              Table II's "AIHS" row (Rahmani et al. 2010): the
                    classical adaptive IHS pan-sharpening of X^ with the t2
                    SAR as the PAN image (mode hss unless st is given);
                    nothing trains: `launch.train` runs the steps as a
                    counter and `launch.evaluate` scores it like the GAN
  esrcnn            Table II's "ESRCNN" row (Shao et al. 2019): the
                    SRCNN-style 9-1-5 network on (Z, X^) (mode st unless
                    hss or hsts is given), MSE to X, Adam 1e-4 (rsjax's
                    choice: the fusion paper gives no settings for it)
  sar_opt_cgan      Table IV's "SAR-opt-cGAN" row (Grohnfeldt, Schmitt &
                    Zhu 2018; use with s2_clouds): pix2pix on the stacked
                    t2 SAR and cloudy t2 S2 (mode hss), U-Net with 7
                    downsamplings (unet_128: the 128 px patches),
                    70 px PatchGAN, cGAN + 100 L1, Adam(0.5, 0.999) 2e-4
  demo              a few CPU minutes on rs_multisource/synthetic (see
                    `apply_demo`: S = 16, lr 5e-4, 300 steps, and the
                    residual on X^, `model.global_skip`, not in the paper)

  python -m launch.train --config configs/cycle_fusion.py \
      --workdir workdir/cycle_fusion
  python -m launch.train --config configs/cycle_fusion.py:s2_clouds,st \
      --workdir ...
  python -m launch.train --config configs/cycle_fusion.py:landsat,hsts \
      --workdir ...
  python -m launch.train --config configs/cycle_fusion.py:hsts,demo \
      --workdir /tmp/cf_demo
  python -m launch.train --config configs/cycle_fusion.py:modis,aihs \
      --workdir workdir/cf_aihs
  python -m launch.train --config configs/cycle_fusion.py:modis,esrcnn \
      --workdir workdir/cf_esrcnn
  python -m launch.train --config configs/cycle_fusion.py:s2_clouds,sar_opt_cgan \
      --workdir workdir/cf_sar_opt_cgan
"""

from __future__ import annotations

import ml_collections

from configs import common
from configs import variants

MODES = ("hss", "st", "hsts")
BASELINES = {"aihs": "hss", "esrcnn": "st", "sar_opt_cgan": "hss"}
"""Table II's comparison methods and the mode (inputs) each reads there."""
EXPERIMENTS = {
    # name: (resolution_ratio, patch_size, cloudy), see the module docstring
    "modis": (50, 200, False),       # Sec. III-A, Tables I-II
    "s2_clouds": (1, 128, True),     # Sec. III-B, Tables III-IV
    "landsat": (3, 132, True),       # Sec. III-C, Tables V-VI
}
ARGS = variants.Spec("configs/cycle_fusion.py",
                     variants.OneOf("experiment", tuple(EXPERIMENTS), "modis"),
                     variants.OneOf("mode", MODES),
                     variants.OneOf("baseline", tuple(BASELINES)),
                     variants.Flag("cloudy"), variants.Flag("rgbn"),
                     variants.Flag("demo"))


def get_config(arg: str | None = None):
  args = ARGS.parse(arg)
  config = common.base_config("cycle_fusion")
  ratio, patch_size, cloudy = EXPERIMENTS[args.experiment]
  config.experiment = args.experiment
  config.mode = args.mode or BASELINES.get(args.baseline, "hsts")
  # None: the residual cycle GAN; 'aihs' | 'esrcnn': a comparison method of
  # Table II (`rsjax.systems.cycle_fusion.baselines`), same inputs and scores.
  config.baseline = common.optional(str)
  config.baseline = args.baseline
  config.target = "s2_t2"              # X: t2 HR MS (label)
  config.sar_field = "s1_t2"           # Y: t2 HR SAR
  config.t1_field = "s2"               # Z: t1 HR MS
  config.low_res = "simulate"          # X^: 'simulate' (resize of X) | 'dataset'
  config.low_res_field = "s2_coarse"   # X^ when low_res = 'dataset'
  config.resolution_ratio = ratio      # S = LR / HR pixel size (1: same)
  config.patch_size = common.optional(int)    # None: whole tiles
  config.patch_size = patch_size              # the experiment's patches
  config.resize = ml_collections.ConfigDict(
      dict(upsample="bicubic", cloud_value=1.0))
  config.cloudy = args.cloudy or cloudy
  config.cloud_mask_field = "cloud_mask"
  config.cloud_classes = (1,)          # cloud_mask: 0 clear, 1 cloud, 2 shadow
  config.bands = (0, 1, 2, 3) if args.rgbn else (0, 1, 2)
  config.q_block_size = common.optional(int)   # None: Q over the whole band
  config.eval_baselines = True         # also score X^ and Z against X
  config.ema_decay = 0.0               # no EMA here (others are refused)

  config.model.generator = "resnet"
  config.model.generator_kwargs = ml_collections.ConfigDict(
      dict(ngf=64, num_blocks=6))
  # None, or 'low_res': X_f = clip(X^ + G_F)
  config.model.global_skip = common.optional(str)
  config.model.discriminator = "patchgan"
  config.model.discriminator_kwargs = ml_collections.ConfigDict(
      dict(ndf=64, num_layers=3))
  config.model.discriminator_sigmoid = True   # Fig. 3: "Conv + Sigmoid"
  config.loss = ml_collections.ConfigDict(
      dict(adversarial="lsgan", l1=50.0, cloud_l1=100.0, cycle=50.0))
  for network in ("generator", "discriminator"):
    config.optimizer[network] = common.adam(lr=2e-4, b1=0.5, b2=0.999,
                                            decay_start=0.5)

  fields = {"hss": ("s1_t2",), "st": ("s2",), "hsts": ("s1_t2", "s2")}[
      config.mode]
  config.data.fields = ("s2_t2",) + fields + (
      ("cloud_mask",) if config.cloudy else ())
  config.data.batch_size = 8
  # Sec. III: 150 epochs, 75 at the learning rate and 75 decaying it to 0
  # (decay_start 0.5); the trainer derives total_steps from the training
  # split (rsjax.train.training_length).
  config.epochs = 150
  config.total_steps = common.optional(int)
  config.log_every = 100
  config.eval_every = 2_000
  config.checkpoint_every = 2_000
  if args.baseline is not None:
    apply_baseline(config, args.baseline)
  if args.demo:
    apply_demo(config)
  return config


def apply_baseline(config: ml_collections.ConfigDict, baseline: str) -> None:
  """Table II's / IV's comparison method `baseline`: one network
  ('generator') for ESRCNN, a G/D pair for SAR-opt-cGAN, none for AIHS; the
  cycle GAN's networks and losses are dropped."""
  config.model = ml_collections.ConfigDict(dict(generator=baseline))
  config.loss = ml_collections.ConfigDict()
  config.optimizer = ml_collections.ConfigDict()
  if baseline == "esrcnn":
    config.optimizer.generator = common.adam(lr=1e-4, b1=0.9, b2=0.999,
                                             decay_start=1.0)
  elif baseline == "sar_opt_cgan":   # pix2pix's settings (Isola et al. 2017)
    config.model.generator = "unet"
    config.model.generator_kwargs = ml_collections.ConfigDict(dict(
        ngf=64, num_downs=7))
    config.model.discriminator = "patchgan"
    config.model.discriminator_kwargs = ml_collections.ConfigDict(dict(
        ndf=64, num_layers=3))
    config.loss = ml_collections.ConfigDict(dict(adversarial="vanilla",
                                                 l1=100.0))
    for network in ("generator", "discriminator"):
      config.optimizer[network] = common.adam(lr=2e-4, b1=0.5, b2=0.999,
                                              decay_start=0.5)


def apply_demo(config: ml_collections.ConfigDict) -> None:
  """`common.apply_demo` (ngf = ndf = 8, batch 4) plus what a few CPU minutes
  need here: 3 residual blocks, 300 steps at 2.5x the paper's learning rate
  (5e-4), the raw PatchGAN map in the MSE (LSGAN / CycleGAN; a sigmoid's
  saturation slows short runs), and for `modis` a resolution gap S = 16 on
  whole 256 px tiles (towards the paper's S = 50, which needs its 200 px
  patches; `s2_clouds,demo` and `landsat,demo` keep their S and patches):
  at S = 4 the bicubic LR image alone scores 33.7 dB PSNR on the synthetic validation tiles, beyond what minutes
  of training reach.

  A deviation from the paper, for the demo only: `model.global_skip =
  'low_res'`, the forward generator learns the residual on the upsampled LR
  image, X_f = clip(X^ + G_F(Y, Z, X^), -1, 1), its last layer starting at
  zero (so X_f = X^ at step 0). Without it (the paper's generator, 200 steps
  at lr 2e-3) the demo reached PSNR 27.6 dB, SSIM 0.767, Q 0.694, ERGAS 3.68,
  SAM 7.1 deg: better than the t1 image, worse than the bicubic LR image;
  with it at lr 2e-3 and 200 steps it only matched the LR image (28.8 dB).

  Measured once (hsts, validation split, 300 steps, ~12 min on 2 CPU cores
  shared with another job): PSNR 30.9 dB, SSIM 0.817, Q 0.875, ERGAS 2.40,
  SAM 5.5 deg; baselines: the bicubic LR image 28.8 / 0.776 / 0.767 / 3.11 /
  5.0, the t1 image 26.4 / 0.852 / 0.592 / 4.11 / 5.4. It beats the LR
  image on PSNR, SSIM, Q and ERGAS (not SAM), t1 on PSNR, Q and ERGAS
  (SAM 5.45 vs 5.42 deg and SSIM not)."""
  common.apply_demo(config)
  if config.experiment == "modis":  # the other experiments keep S and P
    config.resolution_ratio = 16
    config.patch_size = None  # whole 256 px tiles, as measured below
  config.total_steps = 300
  config.eval_every = 300
  if config.baseline is not None:   # Table II's methods: their own settings
    return
  config.model.generator_kwargs.num_blocks = 3
  for network in ("generator", "discriminator"):
    config.optimizer[network].lr = 5e-4
  config.model.discriminator_sigmoid = False
  config.model.global_skip = "low_res"
