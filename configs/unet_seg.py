"""RS-UNet land-cover segmentation (RS-SPADE paper Sec. 4; 5 down / 5 up).

Input S2 RGBN (the arg may add S1 with 's2+s1'), labels the 9 Dynamic World
classes, pixel-wise cross-entropy, Adam at 2e-4; scores PA, MPA, mIoU, FWIoU.

  python -m launch.train --config configs/unet_seg.py --workdir workdir/unet_seg
  python -m launch.train --config configs/unet_seg.py:s2+s1,demo --workdir ...
  python -m launch.train --config configs/unet_seg.py:gid15 \
      --config.data.data_dir=DIR --workdir workdir/unet_gid15

A dataset name ('gid15', 'whu_opt_sar', 'sen12ms'; configs/datasets.py)
trains on that public dataset: its bands, its classes (num_classes), and
its unknown / background class ignored.

The keys of a `segmentation` system beside the
shared ones of configs/common.py: inputs, model.segmenter{,_kwargs},
loss.{ignore_index, class_weights} and optimizer.segmenter.
configs/fusion_seg.py starts from this config.
"""

from __future__ import annotations

from configs import common
from configs import datasets
from configs import variants

INPUTS = ("s2", "s2+s1")
DATASETS = ("gid15", "whu_opt_sar", "sen12ms")
ARGS = variants.Spec("configs/unet_seg.py",
                     variants.OneOf("inputs", INPUTS, "s2"),
                     variants.OneOf("dataset", DATASETS),
                     variants.Flag("demo"))


def get_config(arg: str | None = None):
  args = ARGS.parse(arg)
  config = common.base_config("segmentation")
  config.inputs = tuple(args.inputs.split("+"))
  config.model.segmenter = "rs_unet"
  config.model.segmenter_kwargs = {"base_features": 32}
  config.loss.ignore_index = -1       # < 0: none
  config.loss.class_weights = common.optional(tuple)  # one per class
  config.optimizer.segmenter = common.adam(lr=2e-4, b1=0.9, b2=0.999,
                                           decay_start=0.5)
  config.data.batch_size = 8
  config.data.fields = ("s2", "s1", "lulc", "valid")
  if args.dataset is not None:
    config.data.fields = tuple(config.inputs) + ("lulc",)
    datasets.apply(config, args.dataset)
  config.total_steps = 10_000
  config.log_every = 100
  config.eval_every = 1_000
  config.checkpoint_every = 1_000
  if args.demo:
    common.apply_demo(config)
    config.model.segmenter_kwargs.base_features = 8
  return config
