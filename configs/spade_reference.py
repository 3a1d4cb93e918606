"""SPADE as NVlabs/SPADE ships it, for timing rsjax beside the PyTorch original.

The architecture and training defaults of NVlabs/SPADE (Park et al. 2019,
`train.py` with its default options, `--no_vgg_loss`), on land cover -> S2:

  G: SPADEGenerator, ngf 64, norm_G 'spectralspadesyncbatch3x3' (spectral norm
     on the residual blocks' convs, parameter-free BatchNorm, 3x3 SPADE convs
     with 128 hidden channels; one device, so plain BatchNorm),
     num_upsampling_layers 'normal' (5), the one-hot label map as input (no
     VAE, no instance edge map).
  D: multiscale, num_D 2, n_layers_D 4 (our `num_layers=3` counts the stride-2
     convs: C64/2, C128/2, C256/2, C512/1, C1/1), norm_D 'spectralinstance'
     (spectral norm and affine-free InstanceNorm on the normalized convs only,
     no bias before a norm).
  Loss: hinge + 10 x feature matching, no VGG, no L1. NVlabs sums the L1 over
     the 4 feature maps of a scale and averages the scales; `rsjax.losses`
     averages all 8 maps, so lambda_feat 10 is `loss.feature_matching = 40`.
  Optimizer: TTUR (NVlabs default): Adam(0, 0.9), G 1e-4, D 4e-4, constant.
  Batch 2.

The arg, comma-separated: '128' for 128x128 tiles (memory source: the
synthetic dataset's tiles are 256), 'memory' for random in-memory batches (no
TensorFlow). The output has the 4 S2 bands; NVlabs hard-codes 3 in `conv_img`,
which `benchmarks/peer_setup.sh` turns into `--output_nc` for the comparison.

  python -m launch.train --config configs/spade_reference.py --workdir workdir/spade_ref
  python benchmarks/train_step.py --config configs/spade_reference.py:128,memory --batch 2 --tile 128
  python benchmarks/spade_side_by_side.py --tile 128 --batch 2 --threads 2
"""

from __future__ import annotations

from configs import common
from configs import rs_spade
from configs import variants

ARGS = variants.Spec("configs/spade_reference.py", variants.Flag("128"),
                     variants.Flag("memory"))
NGF = 64
NDF = 64
LABEL_CLASSES = 9                     # Dynamic World LULC
FEATURE_MAPS_PER_SCALE = 4            # n_layers_D 4: 4 intermediate outputs


def get_config(arg: str | None = None):
  args = ARGS.parse(arg)
  config = rs_spade.paper_config(("lulc",))   # one-hot by the system
  config.model.generator = "spade"
  config.model.generator_kwargs = {
      "ngf": NGF, "num_upsamplings": 5, "norm": "batch",
      "spectral_norm": True, "hidden": 128, "label_resize": "nearest",
      "fused_modulation": common.optional(bool)}
  config.model.discriminator = "multiscale_patchgan"
  config.model.discriminator_kwargs = {
      "num_scales": 2, "ndf": NDF, "num_layers": 3, "norm": "instance",
      "spectral_norm": True, "style": "spade"}
  config.loss.adversarial = "hinge"
  config.loss.l1 = 0.0
  config.loss.ssim = 0.0
  config.loss.feature_matching = 10.0 * FEATURE_MAPS_PER_SCALE
  for network, lr in (("generator", 1e-4), ("discriminator", 4e-4)):
    config.optimizer[network] = common.adam(lr=lr, b1=0.0, b2=0.9,
                                            decay_start=1.0)
  config.data.batch_size = 2
  config.data.eval_batch_size = 2
  config.data.fields = ("s2", "lulc", "valid")
  config.total_steps = 20_000
  config.log_every = 100
  config.eval_every = 2_000
  config.checkpoint_every = 2_000
  if args["128"] or args.memory:
    config.data.source = "memory"
    config.data.memory_examples = 16
  if args["128"]:
    config.data.tile_size = 128
  return config
