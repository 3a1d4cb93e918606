"""pix2pix baseline (Isola et al. 2017): S1 (+ optional LULC, DEM) -> S2 RGBN.

unet_256 generator, 70x70 PatchGAN, cGAN (BCE) + 100 L1, Adam(0.5, 0.999) at
2e-4, decay over the second half. The baseline of RS-SPADE's Table 1: the arg
takes the same source subsets as configs/rs_spade.py, and 'demo'; the keys
are RS-SPADE's (`rs_spade.paper_config`) with the U-Net generator.

  python -m launch.train --config configs/pix2pix.py:s1+lulc+dem --workdir workdir/pix2pix
  python -m launch.train --config configs/pix2pix.py:sen12ms \
      --config.data.data_dir=DIR --workdir workdir/pix2pix_sen12ms
"""

from __future__ import annotations

from configs import common
from configs import rs_spade

ARGS = rs_spade.ARGS.renamed("configs/pix2pix.py")


def get_config(arg: str | None = None):
  args = ARGS.parse(arg)
  config = rs_spade.paper_config(rs_spade.sources_of(args))
  rs_spade.use_dataset(config, args)
  config.model.generator = "unet"
  config.model.generator_kwargs = {"ngf": 64, "space_to_depth": False}
  if args.demo:
    common.apply_demo(config)
  return config
