"""RS-SPADE: S1 + LULC + DEM (elevation, slope, aspect, hillshade) -> S2 RGBN.

The multi-source SPADE generator of Wang & Zhou (rs_spade_multisource_fusion,
Sec. 3.1, Fig. 4-5) with a PatchGAN, cGAN + L1 losses, 256x256 tiles, 4 bands,
Adam(0.5, 0.999) at 2e-4 (the paper gives no optimizer; pix2pix/SPADE values).

The arg picks the source subset of the paper's ablation (Table 2) and/or the
CPU demo size, joined by commas:

  python -m launch.train --config configs/rs_spade.py --workdir workdir/rs_spade
  python -m launch.train --config configs/rs_spade.py:lulc+s1 --workdir ...
  python -m launch.train --config configs/rs_spade.py:s1+lulc+dem,demo --workdir ...
  python -m launch.train --config configs/rs_spade.py:sen12ms \
      --config.data.data_dir=DIR --workdir ...

'sen12ms' trains on SEN12MS (configs/datasets.py; built with `tfds build
data_builders/sen12ms --data_dir=DIR`): it has no DEM, so `dem` leaves the
sources (the default becomes lulc+s1), and its IGBP classes make
num_classes 18.

The keys of a `paired_gan` system (the pix2pix-style GAN) beside the
shared ones of configs/common.py: inputs, target, model.{generator,
discriminator}{,_kwargs}, loss.{adversarial, l1, ssim, feature_matching,
report_ssim (SSIM of the fake in the train metrics at ssim weight 0 too;
off: it costs 6-10 % of a pix2pix step and evaluation reports SSIM)},
optimizer.{generator, discriminator} and ema_decay. configs/pix2pix.py and
configs/spade_reference.py start from this config.
"""

from __future__ import annotations

import ml_collections

from configs import common
from configs import datasets
from configs import variants

SUBSETS = ("s1", "lulc", "lulc+s1", "lulc+dem", "s1+dem", "s1+lulc+dem")
DATASETS = ("sen12ms",)
ARGS = variants.Spec("configs/rs_spade.py",
                     variants.OneOf("sources", SUBSETS, "s1+lulc+dem"),
                     variants.OneOf("dataset", DATASETS),
                     variants.Flag("demo"))


def paper_config(sources: tuple[str, ...]) -> ml_collections.ConfigDict:
  """RS-SPADE at the paper's size on `sources` (no demo shrinking)."""
  config = common.base_config("paired_gan")
  config.inputs = tuple(sources)
  config.target = "s2"
  config.model.generator = "rs_spade"
  # fused_modulation: each modulation's convolutions computed in fewer,
  # wider ones, the same function and parameters (rsjax/nn/fused_convs.py);
  # False runs the paper's layers one by one; None fuses on TPU only.
  config.model.generator_kwargs = ml_collections.ConfigDict(
      dict(ngf=64, fused_modulation=common.optional(bool)))
  config.model.discriminator = "patchgan"
  # space_to_depth: stride-2 convolutions of few-channel inputs computed on
  # the 2x2 pixel-unshuffled input, the same function and parameters
  # (rsjax/nn/space_to_depth.py); slower on a v5e by the compiler's estimate.
  config.model.discriminator_kwargs = ml_collections.ConfigDict(
      dict(ndf=64, space_to_depth=False))
  config.loss.adversarial = "vanilla"
  config.loss.l1 = 100.0
  config.loss.ssim = 0.0
  config.loss.feature_matching = 0.0
  config.loss.report_ssim = False
  for network in ("generator", "discriminator"):
    config.optimizer[network] = common.adam(lr=2e-4, b1=0.5, b2=0.999,
                                            decay_start=0.5)
  config.ema_decay = 0.0              # 0: no generator EMA
  config.data.batch_size = 8
  config.data.fields = ("s2", "s1", "lulc", "dem", "valid")
  # Steps, not `epochs`: the paper gives no training length for the GAN
  # (Sec. 3.2 states the 7:2:1 split, bands and metrics only).
  config.total_steps = 20_000
  config.log_every = 100
  config.eval_every = 2_000
  config.checkpoint_every = 2_000
  return config


def sources_of(args) -> tuple[str, ...]:
  """The parsed sources, without those the chosen dataset lacks."""
  sources = tuple(args.sources.split("+"))
  if args.dataset is None:
    return sources
  held = datasets.DATASETS[args.dataset].fields
  return tuple(s for s in sources if s in held)


def use_dataset(config, args) -> None:
  """Points `config` at the dataset of the arg, if it names one."""
  if args.dataset is not None:
    config.data.fields = tuple(config.inputs) + (config.target, "valid")
    datasets.apply(config, args.dataset)


def get_config(arg: str | None = None):
  args = ARGS.parse(arg)
  config = paper_config(sources_of(args))
  use_dataset(config, args)
  if args.demo:
    common.apply_demo(config)
  return config
