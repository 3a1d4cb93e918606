"""Fusion study: the two-branch S2 + S1 segmenter with every fusion strategy.

Trains `configs/fusion_seg.py` once per mode on the same data and writes one
table (the fusion study of `rsjax.eval.experiments`): PA, MPA, mIoU, FWIoU on the test split,
parameters, FLOPs per image (XLA cost analysis of the inference forward) and
inference images/s on the machine it runs on (named in the table).

  python -m launch.experiment --config configs/fusion_study.py --workdir workdir/fusion_study
  python -m launch.experiment --config configs/fusion_study.py:demo \
      --workdir workdir/fusion_study_demo --config.modes="('early','concat','decision')"
"""

from __future__ import annotations

import ml_collections

from configs import fusion_seg
from configs import variants

ARGS = variants.Spec("configs/fusion_study.py", variants.Flag("demo"))


def get_config(arg: str | None = None):
  demo = ARGS.parse(arg).demo
  config = ml_collections.ConfigDict()
  config.experiment = "fusion_study"
  config.modes = fusion_seg.FUSION_MODES   # every mode, by name
  config.test_split = "test"
  config.timing_batch_size = 8     # inference images/s: batch and repeats
  config.timing_repeats = 10
  config.segmentation = fusion_seg.get_config("concat,demo" if demo
                                              else "concat")
  return config
