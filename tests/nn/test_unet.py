"""pix2pix U-Net generator and RS-UNet: layer tables (via eval_shape, no
compute), shapes for several channel counts and sizes, jit, bfloat16, retracing
and init determinism. Compiles use XLA's lowest optimization level for speed."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn import unet
from rsjax.nn.unet import RSUNet, UNetGenerator

from zoo_checks import fast_jit, host_variables


def _abstract_variables(model, shape):
  return jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))


def _param_count(tree):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


# ---------------------------------------------------------------- pix2pix unet_256

def test_unet256_layer_table_matches_pix2pix():
  """unet_256 at ngf=64: C64-C128-C256-C512-C512-C512-C512-C512 encoder and
  the mirrored decoder (out channels of each transposed conv), 4x4 kernels."""
  params = _abstract_variables(UNetGenerator(out_channels=3),
                               (1, 256, 256, 3))["params"]
  encoder = [64, 128, 256, 512, 512, 512, 512, 512]
  in_channels = [3] + encoder[:-1]
  for level, (c_in, c_out) in enumerate(zip(in_channels, encoder), start=1):
    assert params[f"down{level}"]["kernel"].shape == (4, 4, c_in, c_out)
    assert "bias" not in params[f"down{level}"]
  # BatchNorm everywhere but the outermost and innermost encoder levels.
  assert "down1_norm" not in params and "down8_norm" not in params
  assert all(f"down{level}_norm" in params for level in range(2, 8))
  # Decoder: up8 (innermost) sees 512 channels, the others the concatenation.
  decoder_out = {8: 512, 7: 512, 6: 512, 5: 512, 4: 256, 3: 128, 2: 64, 1: 3}
  decoder_in = {8: 512, 7: 1024, 6: 1024, 5: 1024, 4: 1024, 3: 512, 2: 256, 1: 128}
  for level, c_out in decoder_out.items():
    assert params[f"up{level}"]["kernel"].shape == (4, 4, decoder_in[level], c_out)
  assert "bias" in params["up1"] and "bias" not in params["up2"]
  # The PyTorch reference reports 54.414 M parameters for unet_256.
  assert _param_count(params) == 54_413_955


def test_unet_generator_needs_divisible_size():
  model = UNetGenerator(out_channels=3, ngf=4)
  with pytest.raises(ValueError, match="divisible by 256"):
    model.init(jax.random.key(0), jnp.zeros((1, 128, 128, 3)), train=False)


@pytest.mark.parametrize("in_channels,out_channels,size,num_downs",
                         [(3, 3, 256, 8), (13, 4, 128, 7)])
def test_unet_generator_shapes_jit_and_dropout(in_channels, out_channels, size, num_downs):
  model = UNetGenerator(out_channels=out_channels, ngf=4, num_downs=num_downs)
  x = jax.random.uniform(jax.random.key(1), (1, size, size, in_channels), minval=-1)

  variables = host_variables(model, x, train=False)

  @fast_jit
  def train_forward(variables, key):
    out, _ = model.apply(variables, x, train=True, mutable=["batch_stats"],
                         rngs={"dropout": key})
    return out

  a = train_forward(variables, jax.random.key(0))
  b = train_forward(variables, jax.random.key(1))
  assert a.shape == (1, size, size, out_channels) and a.dtype == jnp.float32
  assert np.all(np.isfinite(a)) and np.all(np.abs(a) <= 1)
  assert not np.allclose(a, b)  # different dropout masks


def test_unet_generator_bf16_close_to_f32_and_no_retrace():
  x = jax.random.uniform(jax.random.key(2), (2, 32, 32, 5), minval=-1)
  f32 = UNetGenerator(out_channels=2, ngf=8, num_downs=5)
  bf16 = f32.clone(dtype=jnp.bfloat16)
  abstract = jax.eval_shape(lambda: bf16.init(jax.random.key(0), x, train=False))
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(abstract))

  @fast_jit
  @chex.assert_max_traces(n=1)
  def forward(variables, key, x):
    outputs = []
    for model in (f32, bf16):
      out, _ = model.apply(variables, x, train=True, mutable=["batch_stats"],
                           rngs={"dropout": key})
      outputs.append(out)
    return outputs

  variables = host_variables(f32, x, train=False)
  want, got = forward(variables, jax.random.key(0), x)
  forward(variables, jax.random.key(1), x + 0.1)  # same shapes: no retrace
  assert got.dtype == jnp.float32 and np.all(np.isfinite(got))
  np.testing.assert_allclose(got, want, atol=0.1 * float(np.std(want)) + 0.02)


def test_unet_generator_deterministic_init():
  model = UNetGenerator(out_channels=3, ngf=4, num_downs=5)
  init = fast_jit(lambda key: model.init(key, jnp.zeros((1, 32, 32, 3)), train=False))
  first, second, other = init(jax.random.key(7)), init(jax.random.key(7)), init(
      jax.random.key(8))
  chex.assert_trees_all_equal(first, second)
  assert not np.allclose(first["params"]["down1"]["kernel"],
                         other["params"]["down1"]["kernel"])


# ---------------------------------------------------------------- RS-UNet

def test_rsunet_has_five_down_and_five_up_stages():
  params = _abstract_variables(RSUNet(num_classes=9, base_features=32),
                               (1, 256, 256, 4))["params"]
  encoder, decoder = params["encoder"], params["decoder"]
  assert sorted(encoder) == ["down1", "down2", "down3", "down4", "down5", "stem"]
  assert sorted(decoder) == ["up1", "up2", "up3", "up4", "up5"]
  widths = [32, 64, 128, 256, 512, 1024]
  assert encoder["stem"]["conv1"]["kernel"].shape == (3, 3, 4, 32)
  for level in range(1, 6):
    block = encoder[f"down{level}"]
    assert block["conv1"]["kernel"].shape == (3, 3, widths[level - 1], widths[level])
    assert block["conv2"]["kernel"].shape == (3, 3, widths[level], widths[level])
  for step in range(1, 6):
    level = 5 - step
    stage = decoder[f"up{step}"]
    assert stage["upsample"]["kernel"].shape == (2, 2, widths[level + 1], widths[level])
    assert stage["block"]["conv1"]["kernel"].shape == (3, 3, 2 * widths[level], widths[level])
  assert params["classifier"]["kernel"].shape == (1, 1, 32, 9)


def test_rsunet_stage_resolutions():
  model = RSUNet(num_classes=3, base_features=4)
  out = jax.eval_shape(lambda: model.init_with_output(
      jax.random.key(0), jnp.zeros((1, 128, 128, 2)), train=False,
      capture_intermediates=True))
  stages = out[1]["intermediates"]["encoder"]["__call__"][0]
  assert [s.shape[1] for s in stages] == [128, 64, 32, 16, 8, 4]
  assert out[0].shape == (1, 128, 128, 3)


@pytest.mark.parametrize("in_channels,num_classes,size,multipliers,check_bf16", [
    (4, 9, 64, (1, 2, 4, 8, 16, 32), True),
    (1, 2, 32, (1, 2), False)])  # shallow: a second channel count, cheaply
def test_rsunet_shapes_jit_bf16(in_channels, num_classes, size, multipliers, check_bf16):
  model = RSUNet(num_classes=num_classes, base_features=4,
                 channel_multipliers=multipliers)
  x = jax.random.normal(jax.random.key(0), (2, size, size, in_channels))

  @fast_jit
  def logits(variables):
    f32, _ = model.apply(variables, x, train=True, mutable=["batch_stats"])
    if not check_bf16:
      return f32, f32
    bf16, _ = model.clone(dtype=jnp.bfloat16).apply(
        variables, x, train=True, mutable=["batch_stats"])
    return f32, bf16

  f32, bf16 = logits(host_variables(model, x, train=False))
  assert f32.shape == (2, size, size, num_classes) == bf16.shape
  assert bf16.dtype == jnp.float32 and np.all(np.isfinite(bf16))
  # 22 bfloat16 convolutions: close in norm, no element far off.
  assert np.linalg.norm(bf16 - f32) < 0.05 * np.linalg.norm(f32)
  np.testing.assert_allclose(bf16, f32, atol=0.5 * float(np.std(f32)))


def _numpy_max_pool(x, window):
  """Stride-2 max pool written from the definition: output (i, j) is the
  maximum of input rows and columns 2i .. 2i+1 (window 2) or 2i-1 .. 2i+1,
  clipped to the image (window 3: one pixel past the edge counts as absent)."""
  n, h, w, c = x.shape
  out = np.empty((n, h // 2, w // 2, c), x.dtype)
  lo = 0 if window == 2 else 1
  for i in range(h // 2):
    for j in range(w // 2):
      rows = slice(max(2 * i - lo, 0), 2 * i + 2)
      cols = slice(max(2 * j - lo, 0), 2 * j + 2)
      out[:, i, j] = x[:, rows, cols].max(axis=(1, 2))
  return out


@pytest.mark.parametrize("window", [2, 3])
def test_halving_max_pool_is_the_papers_pool(window):
  """window 3: RS-SPADE Sec. 4.2's 3x3 pooling; window 2: Ronneberger's.
  Maxima are copies of inputs, so the comparison is exact."""
  x = np.random.default_rng(window).normal(size=(2, 8, 6, 3)).astype(
      np.float32)
  pooled = np.asarray(unet.halving_max_pool(jnp.asarray(x), window))
  assert pooled.shape == (2, 4, 3, 3)
  np.testing.assert_array_equal(pooled, _numpy_max_pool(x, window))


def test_3x3_pool_sees_the_neighbouring_row_the_2x2_pool_does_not():
  """A single peak at row 1 reaches output row 1 only through the 3x3
  window (rows 1..3), never through the 2x2 one (rows 2..3)."""
  x = np.zeros((1, 4, 4, 1), np.float32)
  x[0, 1, 0, 0] = 1.0
  assert np.asarray(unet.halving_max_pool(jnp.asarray(x), 3))[0, 1, 0, 0] == 1
  assert np.asarray(unet.halving_max_pool(jnp.asarray(x), 2))[0, 1, 0, 0] == 0
  with pytest.raises(ValueError, match="pool_window"):
    unet.halving_max_pool(jnp.asarray(x), 4)


def test_rsunet_pool_window_3_is_used_and_adds_no_parameters():
  x = jax.random.normal(jax.random.key(1), (1, 32, 32, 4))
  models = {w: RSUNet(num_classes=3, base_features=2,
                      channel_multipliers=(1, 2, 4), pool_window=w)
            for w in (2, 3)}
  variables = host_variables(models[2], x, train=False)
  assert jax.tree.structure(variables) == jax.tree.structure(
      host_variables(models[3], x, train=False))
  out2, out3 = (models[w].apply(variables, x, train=False) for w in (2, 3))
  assert out2.shape == out3.shape == (1, 32, 32, 3)
  assert not np.allclose(out2, out3)


def test_rsunet_rejects_indivisible_size():
  with pytest.raises(ValueError, match="divisible by 32"):
    RSUNet(num_classes=3, base_features=4).init(
        jax.random.key(0), jnp.zeros((1, 48, 48, 3)), train=False)
