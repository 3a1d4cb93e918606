"""RS-SPADE: S1 + LULC + DEM (elevation, slope, aspect, hillshade) -> S2 RGBN.

The multi-source SPADE generator of Wang & Zhou (rs_spade_multisource_fusion,
Sec. 3.1, Fig. 4-5) with a PatchGAN, cGAN + L1 losses, 256x256 tiles, 4 bands,
Adam(0.5, 0.999) at 2e-4 (the paper gives no optimizer; pix2pix/SPADE values).

The arg picks the source subset of the paper's ablation (Table 2) and/or the
CPU demo size, joined by commas:

  python -m launch.train --config configs/rs_spade.py --workdir workdir/rs_spade
  python -m launch.train --config configs/rs_spade.py:lulc+s1 --workdir ...
  python -m launch.train --config configs/rs_spade.py:s1+lulc+dem,demo --workdir ...
"""

from __future__ import annotations

from configs import common

SUBSETS = ("s1", "lulc", "lulc+s1", "lulc+dem", "s1+dem", "s1+lulc+dem")


def parse_arg(arg: str | None) -> tuple[tuple[str, ...], bool]:
  """('s1', 'lulc', 'dem'), demo from 'subset[,demo]'."""
  parts = [p for p in (arg or "").split(",") if p]
  demo = "demo" in parts
  subsets = [p for p in parts if p != "demo"]
  unknown = [p for p in subsets if p not in SUBSETS]
  if unknown or len(subsets) > 1:
    raise ValueError(f"configs/rs_spade.py: unknown arg {arg!r}; use one of "
                     f"{', '.join(SUBSETS)} and/or 'demo', joined by commas")
  subset = subsets[0] if subsets else "s1+lulc+dem"
  return tuple(subset.split("+")), demo


def get_config(arg: str | None = None):
  sources, demo = parse_arg(arg)
  config = common.base_config()
  config.system = "paired_gan"
  config.inputs = sources
  config.target = "s2"
  config.model.generator = "rs_spade"
  config.model.generator_kwargs.ngf = 64
  config.model.discriminator = "patchgan"
  config.model.discriminator_kwargs.ndf = 64
  config.loss.adversarial = "vanilla"
  config.loss.l1 = 100.0
  config.data.batch_size = 8
  config.data.fields = ("s2", "s1", "lulc", "dem", "valid")
  config.total_steps = 20_000
  config.log_every = 100
  config.eval_every = 2_000
  config.checkpoint_every = 2_000
  if demo:
    common.apply_demo(config)
  return config
