"""RS-UNet land-cover segmentation (RS-SPADE paper Sec. 4; 5 down / 5 up).

Input S2 RGBN (the arg may add S1 with 's2+s1'), labels the 9 Dynamic World
classes, pixel-wise cross-entropy, Adam at 2e-4; scores PA, MPA, mIoU, FWIoU.
3x3 max-pooling on rs_multisource (the paper's RS-Unet, Sec. 4.2), 2x2 on the
public datasets (model.segmenter_kwargs.pool_window).
Training length: 50 epochs on rs_multisource's S2 (RS-SPADE Sec. 4.2, Fig.
9), 200 on GID-15 (CSEBGAN Sec. IV-A.3), in `config.epochs` (the trainer
derives total_steps from the training split); 10,000 steps where no paper
gives one.

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
  # pool_window 3: the RS-Unet's "pooling layers employ 3x3 kernels"
  # (RS-SPADE Sec. 4.2, p. 6) on the paper's data; the public datasets'
  # papers (CSEBGAN Sec. IV-A.3, the review) use Ronneberger's 2x2 U-Net.
  config.model.segmenter_kwargs = {
      "base_features": 32, "pool_window": 3 if args.dataset is None else 2}
  config.loss.ignore_index = -1       # < 0: none
  config.loss.class_weights = common.optional(tuple)  # one per class
  config.optimizer.segmenter = common.adam(lr=2e-4, b1=0.9, b2=0.999,
                                           decay_start=0.5)
  config.data.batch_size = 8
  config.data.fields = ("s2", "s1", "lulc", "valid")
  if args.dataset is not None:
    config.data.fields = tuple(config.inputs) + ("lulc",)
    datasets.apply(config, args.dataset)
  # Training length: the paper's epochs where it states them, converted to
  # steps for the dataset's training split (common.py, `epochs`).
  if args.dataset == "gid15":
    # CSEBGAN Sec. IV-A.3: its U-Net evaluator "train[ed] for 200 epochs".
    config.epochs = 200
    config.total_steps = common.optional(int)
  elif args.dataset is None and config.inputs == ("s2",):
    # RS-SPADE Sec. 4.2 (p. 6, Fig. 9): the U-Net's segmentations "after 50
    # epochs", the one training length the paper gives.
    config.epochs = 50
    config.total_steps = common.optional(int)
  else:
    # s2+s1 (rsjax's extension), WHU-OPT-SAR, SEN12MS: the review states no
    # training length.
    config.total_steps = 10_000
  config.log_every = 100
  config.eval_every = 1_000
  config.checkpoint_every = 1_000
  if args.demo:
    common.apply_demo(config)
    config.model.segmenter_kwargs.base_features = 8
  return config
