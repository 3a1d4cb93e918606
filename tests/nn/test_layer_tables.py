"""Every network against its paper's layer table, with biases as built.

Each test builds the network at the paper's sizes abstractly (`layer_trace`:
`jax.eval_shape`, no compile, no init), lists its convolutions in call order
(kernel, channels in/out, stride from the spatial sizes, dilation, bias, the
normalization that takes the output and whether it is affine, dropout) and
compares the list with the table written out below from the paper; then
compares the parameter tree's size with a count summed by hand from the same
table (k*k*cin*cout, + cout for a bias, + 2*cout for an affine norm). A wrong
channel width, kernel size or stride, a missing or extra bias or norm fails.

Row: (kind, cin, cout, k, stride, dilation, bias, norm, affine, dropout);
kind C = convolution, D = transposed convolution (stride = upsampling), F =
dense. Where rsjax differs from the paper, the test for the paper's version
is an `xfail(strict=True)` marked "differs from paper, see issue 17"; it
turns into a failure when the network is fixed, so the mark goes then.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from configs import cloud_removal as cloud_removal_config
from configs import csebgan as csebgan_config
from configs import cycle_fusion as cycle_fusion_config
from configs import pix2pix as pix2pix_config
from configs import unet_seg as unet_seg_config
from layer_trace import count, rows, trace_layers
from rsjax.nn import registry
from rsjax.nn.drib import DRIBGenerator
from rsjax.nn.patchgan import PatchGAN
from rsjax.nn.resnet import ResnetGenerator
from rsjax.nn.senet import SENet
from rsjax.nn.spade import SPADEGenerator
from rsjax.nn.unet import RSUNet, UNetGenerator


def x(*shape):
  return jax.ShapeDtypeStruct(shape, jnp.float32)


def C(cin, cout, k, stride=1, *, bias, norm=None, affine=True, dropout=False,
      dilation=1):
  """A convolution row; `affine` only counts when there is a norm."""
  return ("C", cin, cout, k, stride, dilation, bias, norm,
          bool(norm) and affine, dropout)


def D(cin, cout, k, stride, *, bias, norm=None, affine=True, dropout=False):
  """A transposed convolution row (stride = upsampling factor)."""
  return ("D", cin, cout, k, stride, 1, bias, norm, bool(norm) and affine,
          dropout)


def F(cin, cout):
  """A dense layer with a bias."""
  return ("F", cin, cout, 0, 1, 1, True, None, False, False)


def hand_count(table) -> int:
  """Parameters of a table: weights, biases and affine norms' scale + shift."""
  total = 0
  for kind, cin, cout, k, _, _, bias, norm, affine, _ in table:
    total += (k * k if kind != "F" else 1) * cin * cout
    total += cout if bias else 0
    total += 2 * cout if norm and affine else 0
  return total


def assert_table(trace, table):
  got = rows(trace.layers)
  for i, (want, have) in enumerate(zip(table, got)):
    assert have == want, (i, trace.layers[i].path, have, want)
  assert len(got) == len(table), (len(got), len(table))


# --- Cloud removal (cloud_removal_two_gan_drib.txt) -------------------------
# Table 1 (filters, kernel, stride): Encoder CL(64,4,2) CBL(128,4,2)
# CBL(256,4,2) CBL(512,4,1); Decoder CBDR(256,4,1) CBDR(128,4,2) CBR(64,4,2)
# CT(3,4,2), with "symmetrical concatenations between encoder and decoder"
# (Sec. 2.1), so each decoder layer after the first sees twice the channels.
# Table 2, each of the 8 DRIBs: three branches CBR(256,1,1,1) ->
# DBR(256,3,1,r), r = 1, 2, 3, then CB(512,1,1,1) on their concatenation.
# The paper does not say whether its convolutions have biases; rsjax drops
# the bias of every convolution a BatchNorm follows (BN cancels it) and keeps
# it on CL and CT, and that is what the rows pin.


def drib_table(in_channels, out_channels=3):
  bn = dict(bias=False, norm="batch")
  encoder = [C(in_channels, 64, 4, 2, bias=True),            # CL
             C(64, 128, 4, 2, **bn), C(128, 256, 4, 2, **bn),
             C(256, 512, 4, 1, **bn)]
  drib = []
  for rate in (1, 2, 3):                                       # Table 2
    drib += [C(512, 256, 1, **bn), C(256, 256, 3, dilation=rate, **bn)]
  drib += [C(768, 512, 1, **bn)]
  decoder = [D(512, 256, 4, 1, dropout=True, **bn),            # CBDR
             D(256 + 256, 128, 4, 2, dropout=True, **bn),      # CBDR
             D(128 + 128, 64, 4, 2, **bn),                     # CBR
             D(64 + 64, out_channels, 4, 2, bias=True)]        # CT
  return encoder + 8 * drib + decoder


@pytest.mark.parametrize("in_channels", [1, 6])   # Sec. 3.1: SAR; cloudy + translated
def test_drib_generator_tables_1_and_2(in_channels):
  trace = trace_layers(DRIBGenerator(out_channels=3, ngf=64),
                       x(1, 256, 256, in_channels), train=False)
  table = drib_table(in_channels)
  assert_table(trace, table)
  assert count(trace.params) == hand_count(table)
  assert trace.output.shape == (1, 256, 256, 3)


def test_drib_generator_as_the_config_builds_it():
  config = cloud_removal_config.get_config()
  for stage, in_channels in (("stage1", 2), ("stage2", 6)):
    model = registry.get_generator(config.model[stage].generator, out_channels=3,
                                   **config.model[stage].generator_kwargs)
    trace = trace_layers(model, x(1, 64, 64, in_channels), train=False)
    assert rows(trace.layers) == drib_table(in_channels), stage


# Table 1, discriminator: CBL(64,4,2) CBL(128,4,2) CBL(256,4,2) CBL(512,4,2)
# C(1,3,1). Sec. 3.1: inputs 256x256x1 + 256x256x3 (stage 1) and
# 256x256x6 + 256x256x3 (stage 2), concatenated as a conditional D.
def cloud_removal_discriminator_table(in_channels):
  bn = dict(bias=False, norm="batch")
  return [C(in_channels, 64, 4, 2, **bn), C(64, 128, 4, 2, **bn),
          C(128, 256, 4, 2, **bn), C(256, 512, 4, 2, **bn),
          C(512, 1, 3, 1, bias=True)]


def cloud_removal_discriminator(stage, in_channels):
  config = cloud_removal_config.get_config()
  model = registry.get_discriminator(config.model[stage].discriminator,
                                     **config.model[stage].discriminator_kwargs)
  return trace_layers(model, x(1, 256, 256, in_channels - 3),
                      x(1, 256, 256, 3), train=False)


@pytest.mark.parametrize("stage,in_channels", [("stage1", 4), ("stage2", 9)])
def test_cloud_removal_discriminator_table_1(stage, in_channels):
  trace = cloud_removal_discriminator(stage, in_channels)
  table = cloud_removal_discriminator_table(in_channels)
  assert_table(trace, table)
  assert count(trace.params) == hand_count(table)
  assert trace.output[1].shape == (1, 16, 16, 1)    # 16x16 patches at 256 px


# --- pix2pix (Isola et al. 2017, Sec. 6.1; the RS-SPADE paper's baseline) ---
# Generator unet_256, ngf 64: encoder C64-C128-C256-C512-C512-C512-C512-C512,
# all 4x4 stride 2, LeakyReLU 0.2, no BatchNorm on the first C64 (and, in the
# authors' code, none on the innermost); U-Net decoder CD512-CD1024-CD1024-
# C1024-C1024-C512-C256-C128 (channels after the skip concatenation), 4x4
# transposed convs stride 2 with BN, dropout 0.5 in the first three, a last
# transposed conv to the output bands and tanh. The authors' code drops the
# bias where BatchNorm follows; its parameter count for 3 -> 3 bands is
# printed as "54.414 M".
def unet_256_table(in_channels, out_channels):
  bn = dict(bias=False, norm="batch")
  widths = [64, 128, 256, 512, 512, 512, 512, 512]
  encoder = [C(in_channels, 64, 4, 2, bias=False)]
  encoder += [C(a, b, 4, 2, **bn) for a, b in zip(widths[:-2], widths[1:-1])]
  encoder += [C(512, 512, 4, 2, bias=False)]                   # innermost
  # The paper's decoder widths are what the next layer sees after the skip
  # concatenation: 512 -> 1024 (CD512) -> 1024 (CD1024) -> ... -> 128 (C128).
  ins = [512, 1024, 1024, 1024, 1024, 512, 256, 128]
  outs = [512, 512, 512, 512, 256, 128, 64]
  decoder = [D(cin, cout, 4, 2, dropout=i < 3, **bn)
             for i, (cin, cout) in enumerate(zip(ins, outs))]
  decoder.append(D(128, out_channels, 4, 2, bias=True))
  return encoder + decoder


def test_unet_256_pix2pix():
  trace = trace_layers(UNetGenerator(out_channels=3, ngf=64),
                       x(1, 256, 256, 3), train=False)
  table = unet_256_table(3, 3)
  assert_table(trace, table)
  assert count(trace.params) == hand_count(table)
  assert round(hand_count(table) / 1e6, 3) == 54.414


def test_unet_256_as_the_pix2pix_config_builds_it():
  config = pix2pix_config.get_config()
  model = registry.get_generator(config.model.generator, out_channels=4,
                                 **config.model.generator_kwargs)
  trace = trace_layers(model, x(1, 256, 256, 9), train=False)
  assert rows(trace.layers) == unet_256_table(9, 4)


# Discriminator 70x70: C64-C128-C256-C512 (4x4; stride 2, 2, 2, then 1 in the
# authors' code, which makes the 70-pixel field) and a 4x4 conv to 1, no
# BatchNorm on C64; 2.769 M parameters for 3 + 3 input bands.
def patchgan_70_table(in_channels):
  bn = dict(bias=False, norm="batch")
  return [C(in_channels, 64, 4, 2, bias=True), C(64, 128, 4, 2, **bn),
          C(128, 256, 4, 2, **bn), C(256, 512, 4, 1, **bn),
          C(512, 1, 4, 1, bias=True)]


def test_patchgan_70_pix2pix():
  # 286x286 -> 35x35 logits (the spatial size gives the strides; 256 would
  # make 31 -> 30 look like a stride of 31/30 with PyTorch's padding 1).
  trace = trace_layers(PatchGAN(ndf=64), x(1, 288, 288, 3), x(1, 288, 288, 3),
                       train=False)
  table = patchgan_70_table(6)
  assert_table(trace, table)
  assert count(trace.params) == hand_count(table)
  assert round(hand_count(table) / 1e6, 3) == 2.769


# --- Deep residual cycle GAN (residual_cycle_gan_sts_fusion.txt, Sec. II-B) -
# Generator (Fig. 2): extraction Conv(64, 7x7xInC, s1)+BN+ReLU; encoding
# Conv(128, 3x3x64, s2)+BN+ReLU, Conv(256, 3x3x128, s2)+BN+ReLU; 6 residual
# blocks [Conv(256, 3x3x256)+BN+ReLU, Conv(256, 3x3x256)+BN, add]; decoding
# DeConv(128, 3x3x256, s2)+BN+ReLU, DeConv(64, 3x3x128, s2)+BN+ReLU;
# compression Conv(OutC, 7x7x64)+Tanh. The paper is silent on biases; rsjax
# drops them where BN follows.
def residual_generator_table(in_channels, out_channels):
  bn = dict(bias=False, norm="batch")
  return ([C(in_channels, 64, 7, 1, **bn), C(64, 128, 3, 2, **bn),
           C(128, 256, 3, 2, **bn)]
          + 6 * [C(256, 256, 3, 1, **bn), C(256, 256, 3, 1, **bn)]
          + [D(256, 128, 3, 2, **bn), D(128, 64, 3, 2, **bn),
             C(64, out_channels, 7, 1, bias=True)])


@pytest.mark.parametrize("in_channels,out_channels", [(10, 4), (4, 6)])
def test_residual_generator_fig_2(in_channels, out_channels):
  config = cycle_fusion_config.get_config()
  model = registry.get_generator(config.model.generator,
                                 out_channels=out_channels,
                                 **config.model.generator_kwargs)
  trace = trace_layers(model, x(1, 256, 256, in_channels), train=False)
  table = residual_generator_table(in_channels, out_channels)
  assert_table(trace, table)
  assert count(trace.params) == hand_count(table)


# A conv bias before an InstanceNorm, which subtracts the per-channel mean,
# would be cancelled; the paper's network uses BN (above), another norm must
# not bring the cancelled biases back.
def test_residual_generator_instance_norm_has_no_cancelled_bias():
  trace = trace_layers(ResnetGenerator(out_channels=4, norm="instance"),
                       x(1, 64, 64, 10), train=False)
  assert [layer.path for layer in trace.layers
          if layer.norm and layer.bias] == []


# Discriminator (Fig. 3, text): one Conv+LeakyReLU, three Conv+BN+LeakyReLU,
# one Conv+Sigmoid, all 4x4, strides 2, 2, 2, 1, 1; PatchGAN [41] widths.
@pytest.mark.parametrize("in_channels", [4, 10])
def test_residual_cycle_discriminator_fig_3(in_channels):
  config = cycle_fusion_config.get_config()
  model = registry.get_discriminator(config.model.discriminator,
                                     **config.model.discriminator_kwargs)
  trace = trace_layers(model, None, x(1, 288, 288, in_channels), train=False)
  table = patchgan_70_table(in_channels)
  assert_table(trace, table)
  assert count(trace.params) == hand_count(table)
  assert config.model.discriminator_sigmoid


# --- Segmentation U-Net (rs_spade_multisource_fusion.txt, Sec. 4) -----------
# RS-Unet: input 4 x 256 x 256, 5 down-sampling and 5 up-sampling layers,
# 3x3 convolutions and pooling, softmax over 9 classes at the last layer; U-Net
# (Ronneberger et al.) blocks: two 3x3 convs per level, widths doubling per
# down level, 2x2 up-convolutions halving them, skips concatenated, a 1x1
# classifier. The paper gives no widths: rsjax's base 32 (configs/unet_seg.py)
# and its BatchNorm after each conv (no bias there) are pinned as built.
def rs_unet_table(in_channels, num_classes, base=32):
  bn = dict(bias=False, norm="batch")
  widths = [base * 2**i for i in range(6)]
  table = [C(in_channels, widths[0], 3, **bn), C(widths[0], widths[0], 3, **bn)]
  for a, b in zip(widths[:-1], widths[1:]):
    table += [C(a, b, 3, **bn), C(b, b, 3, **bn)]
  for a, b in zip(reversed(widths[1:]), reversed(widths[:-1])):
    table += [D(a, b, 2, 2, bias=True), C(2 * b, b, 3, **bn), C(b, b, 3, **bn)]
  return table + [C(widths[0], num_classes, 1, bias=True)]


def test_rs_unet_section_4():
  config = unet_seg_config.get_config()
  model = registry.get_segmenter(config.model.segmenter, num_classes=9,
                                 **config.model.segmenter_kwargs)
  trace = trace_layers(model, x(1, 256, 256, 4), train=False)
  table = rs_unet_table(4, 9)
  assert_table(trace, table)
  assert count(trace.params) == hand_count(table)
  assert len(trace.pools) == 5 and trace.output.shape == (1, 256, 256, 9)
  # 5 downsamplings by pooling: the convs after each pool see half the size;
  # "pooling layers employ 3x3 kernels" (Sec. 4.2): 3x3 windows, stride 2.
  assert [p[1] for p in trace.pools] == [(2, 2)] * 5
  assert [p[0] for p in trace.pools] == [(3, 3)] * 5


# "Convolution layers and pooling layers employ 3x3 kernels" (Sec. 4.2):
# RSUNet's pool_window 3, which configs/unet_seg.py sets on the paper's data
# (test_rs_unet_section_4); the module's default stays Ronneberger's 2x2
# (CSEBGAN's U-Net, runs trained before the key existed).
def test_rs_unet_pooling_kernel_3x3():
  trace = trace_layers(RSUNet(num_classes=9, pool_window=3),
                       x(1, 256, 256, 4), train=False)
  assert [p[0] for p in trace.pools] == [(3, 3)] * 5
  trace = trace_layers(RSUNet(num_classes=9), x(1, 256, 256, 4), train=False)
  assert [p[0] for p in trace.pools] == [(2, 2)] * 5


# CSEBGAN's conductor ("traditional encoder-decoder", Sec. III-B) is the same
# RS-UNet on the generated RGBN image, with K classes.
def test_csebgan_conductor_is_rs_unet():
  config = csebgan_config.get_config()
  model = registry.get_segmenter(config.model.segmenter, num_classes=15,
                                 **config.model.segmenter_kwargs)
  trace = trace_layers(model, x(1, 256, 256, 4), train=False)
  assert rows(trace.layers) == rs_unet_table(4, 15)


# --- SPADE body: RS-SPADE (Sec. 3.1, Fig. 4-5) and CSEBGAN's SENet ---------
# Both build on SPADE's generator (Park et al. 2019, Appendix, Fig. 12-13):
# 3x3 conv of the downsampled condition to 16*ngf, ResBlk(1024), up,
# ResBlk(1024) x 2, then up + ResBlk(512, 256, 128, 64), 3x3 conv, tanh. A
# ResBlk is [mod -> LReLU -> 3x3 conv(min(cin, cout))] -> [mod -> LReLU ->
# 3x3 conv(cout)] with biases, plus, when the width changes, a shortcut
# [mod -> 1x1 conv without bias]. RS-SPADE: the modulation parameters "are
# applied following each Batch Normalization" (Sec. 3.1), so every BN in the
# body is parameter-free and followed by a modulation; each source has its
# own embedding (Fig. 5). CSEBGAN (Eq. 2-5): BN, then X^ * Gamma + B where
# Gamma, B come from per-SMBlk two-layer MLPs of the shared Semantic
# Embeddings (2 x K x D shift and log-scale, Eq. 1).
BODY = [("head_0", 1024, 1024), ("middle_0", 1024, 1024),
        ("middle_1", 1024, 1024), ("up_0", 1024, 512), ("up_1", 512, 256),
        ("up_2", 256, 128), ("up_3", 128, 64)]


def spade_body_table(stem_in, out_channels, modulation):
  """Rows of the generator body; `modulation(c)` gives a modulation's rows."""
  table = [C(stem_in, 1024, 3, bias=True, norm="batch", affine=False)]
  for _, cin, cout in BODY:
    middle = min(cin, cout)
    if cin != cout:
      table += modulation(cin) + [C(cin, cout, 1, bias=False)]
    table += modulation(cin) + [C(cin, middle, 3, bias=True, norm="batch",
                                  affine=False)]
    table += modulation(middle) + [C(middle, cout, 3, bias=True)]
  return table + [C(64, out_channels, 3, bias=True)]


def spade_modulation(sources, embed=64, hidden=128):
  """RS-SPADE modulation: an embedding conv per source, a fusing conv, gamma
  and beta convs (3x3, biases)."""
  def rows_for(channels):
    return ([C(c, embed, 3, bias=True) for c in sources.values()]
            + [C(embed * len(sources), hidden, 3, bias=True),
               C(hidden, channels, 3, bias=True),
               C(hidden, channels, 3, bias=True)])
  return rows_for


RS_SPADE_SOURCES = {"lulc": 9, "sar": 2, "dem": 4}


def test_rs_spade_generator_body_and_modulation():
  """The paper's layers one by one (`fused_modulation=False`); the fused
  form computes the same with the same parameters (test_fused_convs.py)."""
  model = SPADEGenerator(out_channels=4, conditioning="multi_source", ngf=64,
                         spectral_norm=False, fused_modulation=False)
  condition = {name: x(1, 256, 256, c) for name, c in RS_SPADE_SOURCES.items()}
  trace = trace_layers(model, condition, train=False)
  table = spade_body_table(15, 4, spade_modulation(RS_SPADE_SOURCES))
  assert_table(trace, table)
  assert count(trace.params) == hand_count(table)
  # Every modulation normalizes with a BN of its own, parameter-free (batch
  # statistics only): 2 per block + 1 per shortcut = 18.
  params = trace.params["decoder"]
  stats = trace.variables["batch_stats"]["decoder"]
  mods = [(name, mod) for name, _, _ in BODY for mod in params[name]
          if mod.startswith("norm_")]
  assert len(mods) == 2 * len(BODY) + 4
  for name, mod in mods:
    assert set(stats[name][mod]["param_free_norm"]["batch_norm"]) == {"mean", "var"}
    assert "param_free_norm" not in params[name][mod]
    assert set(params[name][mod]) == {
        "embed_lulc", "embed_sar", "embed_dem", "fuse", "gamma", "beta"}


def senet_modulation(embed_dim=64, mlp_hidden=128):
  """CSEBGAN SMBlk (Eq. 2-5): parameter-free BN, and two-layer MLPs
  f_gamma, f_beta (D -> hidden -> C, biases) of the shared embeddings."""
  def rows_for(channels):
    return 2 * [F(embed_dim, mlp_hidden), F(mlp_hidden, channels)]
  return rows_for


def test_csebgan_senet_body_smblk_and_embeddings():
  config = csebgan_config.get_config()
  kwargs = config.model.generator_kwargs
  classes, dim = 15, kwargs.embed_dim
  model = registry.get_generator(config.model.generator, out_channels=4,
                                 num_classes=classes, **kwargs)
  trace = trace_layers(model, x(1, 256, 256, classes), x(1, 2, classes, dim),
                       train=False)
  table = spade_body_table(classes, 4, senet_modulation(dim, kwargs.mlp_hidden))
  assert_table(trace, table)
  # Eq. 1: one shift b and one log-scale s per class for gamma and for beta,
  # shared by every SMBlk.
  embeddings = 2 * (2 * classes * dim)
  assert count(trace.params) == hand_count(table) + embeddings
  params = trace.params["decoder"]
  for name, _, _ in BODY:
    for mod in [m for m in params[name] if m.startswith("norm_")]:
      assert set(params[name][mod]) == {"gamma_fc1", "gamma_fc2", "beta_fc1",
                                        "beta_fc2"}
