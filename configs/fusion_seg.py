"""Two-branch optical (S2) + SAR (S1) LULC segmenter with one fusion strategy.

Li et al.'s review of optical+SAR fusion for semantic segmentation (Table I:
pixel-, feature- and decision-level fusion; Table II: feature fusion blocks),
`rsjax.nn.fusion.TwoBranchSegmenter`, with the RS-UNet widths and training
of `configs/unet_seg.py`. The arg is the fusion mode (one of
`rsjax.nn.fusion.FUSION_MODES`), optionally with 'demo':

  python -m launch.train --config configs/fusion_seg.py:gated --workdir workdir/fusion_gated
  python -m launch.train --config configs/fusion_seg.py:cross_attention,demo --workdir ...

The gate of 'gated' fusion: --config.model.segmenter_kwargs.gate=complementary.
"""

from __future__ import annotations

from configs import unet_seg
from rsjax.nn.fusion import FUSION_MODES


def get_config(arg: str | None = None):
  parts = [p for p in (arg or "").split(",") if p]
  demo = "demo" in parts
  modes = [p for p in parts if p != "demo"] or ["concat"]
  if len(modes) > 1 or modes[0] not in FUSION_MODES:
    raise ValueError(f"configs/fusion_seg.py: unknown arg {arg!r}; use one "
                     f"fusion mode of {', '.join(FUSION_MODES)} and/or 'demo'")
  config = unet_seg.get_config("s2+s1,demo" if demo else "s2+s1")
  config.model.segmenter = "two_branch"
  config.model.segmenter_kwargs.fusion = modes[0]
  return config
