"""Augmentation experiment: U-Net on real ("True") vs real + generated ("Mix").

RS-SPADE paper Sec. 4 / Table 3 and CSEBGAN Table III (training subsets of
1/4, 1/2, 3/4 and all of the training split). The generator is a trained
paired_gan workdir (e.g. RS-SPADE); the segmenter is `configs/unet_seg.py`.
See `rsjax.eval.experiments`.

  python -m launch.experiment --config configs/augment.py --workdir workdir/augment \
      --config.generator_workdir=workdir/rs_spade
  python -m launch.experiment --config configs/augment.py:demo \
      --workdir workdir/augment_demo --config.generator_workdir=workdir/demo

Args (comma-separated): 'demo' (demo-size U-Net and steps), 'full' (the whole
training split only, no subsets), 'k=<n>' (n generated images per mask).
"""

from __future__ import annotations

import ml_collections

from configs import unet_seg
from configs import variants

ARGS = variants.Spec("configs/augment.py", variants.Flag("demo"),
                     variants.Flag("full"),
                     variants.Key("k", default=1, parse=int))


def get_config(arg: str | None = None):
  args = ARGS.parse(arg)
  config = ml_collections.ConfigDict()
  config.experiment = "augmentation"
  config.generator_workdir = ""         # required: a trained paired_gan workdir
  config.generated_per_mask = args.k    # k generated images per training mask
  config.generation_batch_size = 8
  # Local folder of the generated arrays (memory-mapped); "" = <workdir>/
  # generated, or a folder under TMPDIR for a workdir on object storage.
  config.generated_dir = ""
  config.fractions = (1.0,) if args.full else (0.25, 0.5, 0.75, 1.0)
  config.subset_seed = 0
  config.test_split = "test"
  config.segmentation = unet_seg.get_config("demo" if args.demo else None)
  config.segmentation.eval_split = "validation"   # the mIoU-vs-step curve
  # Both arms train the same number of steps (CSEBGAN Sec. IV-A.5: "the same
  # iterations both under the augmentation and non-augmentation settings");
  # the 50 epochs of RS-SPADE's U-Net (Sec. 4.2) would give Mix, twice the
  # examples, twice the steps of True. The experiment compares each run's
  # last checkpoint with total_steps, so it counts steps.
  config.segmentation.epochs = None
  config.segmentation.total_steps = 10_000
  if args.demo:
    config.segmentation.total_steps = 200
    config.segmentation.eval_every = 25
    config.segmentation.log_every = 25
    config.segmentation.checkpoint_every = 100
  else:
    config.segmentation.eval_every = 500
  return config
