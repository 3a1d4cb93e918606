"""Two-branch optical (S2) + SAR (S1) LULC segmenter with one fusion strategy.

Li et al.'s review of optical+SAR fusion for semantic segmentation (Table I:
pixel-, feature- and decision-level fusion; Table II: feature fusion blocks),
the `two_branch` segmenter (rsjax.nn.fusion.TwoBranchSegmenter), with the
RS-UNet widths and training of `configs/unet_seg.py`. The arg is the fusion
mode (one of `FUSION_MODES`; the segmenter checks the name when the system is
built), optionally with 'demo':

  python -m launch.train --config configs/fusion_seg.py:gated --workdir workdir/fusion_gated
  python -m launch.train --config configs/fusion_seg.py:cross_attention,demo --workdir ...
  python -m launch.train --config configs/fusion_seg.py:gated,whu_opt_sar \
      --config.data.data_dir=DIR --workdir workdir/fusion_whu

'whu_opt_sar' or 'sen12ms' trains on that public dataset
(configs/datasets.py; see configs/unet_seg.py).

The gate of 'gated' fusion: --config.model.segmenter_kwargs.gate=complementary.
"""

from __future__ import annotations

from configs import unet_seg
from configs import variants

FUSION_MODES = ("early", "concat", "sum", "product", "channel_attention",
                "spatial_attention", "channel_spatial", "cross_attention",
                "gated", "alignment", "decision")
"""The fusion modes of the two_branch segmenter (pixel-, feature- and
decision-level), by name; configs/fusion_study.py runs them all."""
DATASETS = ("whu_opt_sar", "sen12ms")
ARGS = variants.Spec("configs/fusion_seg.py",
                     variants.OneOf("dataset", DATASETS),
                     variants.OneOf("fusion", None, "concat"),
                     variants.Flag("demo"))


def get_config(arg: str | None = None):
  args = ARGS.parse(arg)
  config = unet_seg.get_config(",".join(
      ["s2+s1"] + (["demo"] if args.demo else [])
      + ([args.dataset] if args.dataset else [])))
  config.model.segmenter = "two_branch"
  config.model.segmenter_kwargs.fusion = args.fusion
  config.model.segmenter_kwargs.gate = "interactive"   # 'gated' fusion only
  return config
