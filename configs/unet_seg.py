"""RS-UNet land-cover segmentation (RS-SPADE paper Sec. 4; 5 down / 5 up).

Input S2 RGBN (the arg may add S1 with 's2+s1'), labels the 9 Dynamic World
classes, pixel-wise cross-entropy, Adam at 2e-4; scores PA, MPA, mIoU, FWIoU.

  python -m launch.train --config configs/unet_seg.py --workdir workdir/unet_seg
  python -m launch.train --config configs/unet_seg.py:s2+s1,demo --workdir ...
"""

from __future__ import annotations

from configs import common

INPUTS = ("s2", "s2+s1")


def get_config(arg: str | None = None):
  parts = [p for p in (arg or "").split(",") if p]
  demo = "demo" in parts
  inputs = [p for p in parts if p != "demo"] or ["s2"]
  if len(inputs) > 1 or inputs[0] not in INPUTS:
    raise ValueError(f"configs/unet_seg.py: unknown arg {arg!r}; use one of "
                     f"{', '.join(INPUTS)} and/or 'demo'")
  config = common.base_config()
  config.system = "segmentation"
  config.inputs = tuple(inputs[0].split("+"))
  config.model.segmenter = "rs_unet"
  config.model.segmenter_kwargs.base_features = 32
  config.optimizer.segmenter.b1 = 0.9
  config.data.batch_size = 8
  config.data.fields = ("s2", "s1", "lulc", "valid")
  config.total_steps = 10_000
  config.log_every = 100
  config.eval_every = 1_000
  config.checkpoint_every = 1_000
  if demo:
    common.apply_demo(config)
    config.model.segmenter_kwargs.base_features = 8
  return config
