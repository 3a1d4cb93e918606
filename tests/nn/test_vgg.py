"""VGG19 feature extractor and its checkpoint converter, with random weights
(no network): torchvision state_dict -> .npz -> load gives the same params and
features as params built directly; Keras .h5 layout; band selection; bf16."""

import functools
import sys
import zipfile

import chex
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rsjax.nn import vgg, vgg_convert

FAST_COMPILE = {"xla_backend_optimization_level": 0,
                "xla_llvm_disable_expensive_passes": True}
fast_jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)

TORCH_INDEX = {name: index for index, name in vgg_convert.TORCHVISION_FEATURE_INDEX.items()}


@pytest.fixture(scope="module")
def direct_params():
  """Random Flax-layout VGG19 params (He-scaled, so activations stay O(1))."""
  rng = np.random.default_rng(0)
  params, in_channels = {}, 3
  for name, channels in vgg.USED_CONV_LAYERS:
    scale = np.sqrt(2.0 / (9 * in_channels))
    params[name] = {
        "kernel": (scale * rng.standard_normal((3, 3, in_channels, channels))
                   ).astype(np.float32),
        "bias": (0.01 * rng.standard_normal(channels)).astype(np.float32)}
    in_channels = channels
  return params


def _torchvision_state_dict(params):
  state = {"classifier.0.weight": np.zeros((2, 3), np.float32)}
  for name, layer in params.items():
    index = TORCH_INDEX[name]
    state[f"features.{index}.weight"] = np.transpose(layer["kernel"], (3, 2, 0, 1))
    state[f"features.{index}.bias"] = layer["bias"]
  return state


def test_torchvision_round_trip_same_params_and_features(direct_params, tmp_path):
  path = str(tmp_path / "vgg19.npz")
  vgg_convert.convert(_torchvision_state_dict(direct_params), path)
  module, variables = vgg.load_vgg19(path)
  assert module.preprocessing == "imagenet"
  chex.assert_trees_all_equal(variables["params"], direct_params)

  images = jax.random.uniform(jax.random.key(0), (2, 32, 48, 3), minval=-1)
  extract = fast_jit(chex.assert_max_traces(lambda v, x: module.apply(v, x), n=1))
  loaded = extract(variables, images)
  direct = extract({"params": direct_params}, images)  # same shapes: no retrace
  chex.assert_trees_all_equal(loaded, direct)
  expected = {"relu1_1": (32, 48, 64), "relu2_1": (16, 24, 128), "relu3_1": (8, 12, 256),
              "relu4_1": (4, 6, 512), "relu5_1": (2, 3, 512)}
  assert {k: v.shape[1:] for k, v in loaded.items()} == expected
  assert all(np.all(np.isfinite(v)) and np.all(v >= 0) for v in loaded.values())

  # The same weights written from a .npz of the state_dict arrays.
  state_path = str(tmp_path / "state_dict.npz")
  np.savez(state_path, **_torchvision_state_dict(direct_params))
  vgg_convert.main([state_path, str(tmp_path / "again.npz")])
  _, again = vgg.load_vgg19(str(tmp_path / "again.npz"))
  chex.assert_trees_all_equal(again, variables)


def test_keras_h5_round_trip(direct_params, tmp_path):
  """Keras stores `block{b}_conv{c}/block{b}_conv{c}/kernel:0` HWIO datasets."""
  h5_path = str(tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
  with h5py.File(h5_path, "w") as h5:
    for name, layer in direct_params.items():
      block, conv = name[4:].split("_")
      group = h5.create_group(f"block{block}_conv{conv}/block{block}_conv{conv}")
      group["kernel:0"] = layer["kernel"]
      group["bias:0"] = layer["bias"]
    h5.create_group("block1_pool")
  path = str(tmp_path / "keras.npz")
  vgg_convert.convert(h5_path, path)
  module, variables = vgg.load_vgg19(path, rgb_bands=(2, 1, 0))
  assert module.preprocessing == "caffe" and module.rgb_bands == (2, 1, 0)
  chex.assert_trees_all_equal(variables["params"], direct_params)

  # A Keras 3 .keras archive: a zip holding model.weights.h5.
  archive_path = str(tmp_path / "vgg19.keras")
  with zipfile.ZipFile(archive_path, "w") as archive:
    archive.write(h5_path, "model.weights.h5")
  vgg_convert.convert(archive_path, path)
  chex.assert_trees_all_equal(vgg.load_vgg19(path)[1]["params"], direct_params)


def test_converter_errors(direct_params, tmp_path, monkeypatch):
  state = _torchvision_state_dict(direct_params)
  del state["features.28.weight"]
  with pytest.raises(ValueError, match="conv5_1/kernel"):
    vgg_convert.from_torchvision_state_dict(state)
  monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were absent
  with pytest.raises(ImportError, match="needs PyTorch"):
    vgg_convert.convert(str(tmp_path / "vgg19.pth"), str(tmp_path / "out.npz"))
  with pytest.raises(ValueError, match="unknown VGG19 checkpoint type"):
    vgg_convert.convert(str(tmp_path / "vgg19.ckpt"), str(tmp_path / "out.npz"))
  bad = {f"{n}/{k}": v for n, layer in direct_params.items() for k, v in layer.items()}
  bad["conv2_1/kernel"] = bad["conv2_1/kernel"][..., :3]
  with pytest.raises(ValueError, match="conv2_1/kernel.*expected"):
    vgg.params_from_flat(bad)


def test_band_selection_normalization_and_bf16(direct_params):
  """rgb_bands picks (red, green, blue) from a multispectral stack; one band is
  repeated; input_range maps to [0, 1] before ImageNet normalization."""
  rgb = jax.random.uniform(jax.random.key(1), (1, 32, 32, 3), minval=-1)
  stack = jnp.concatenate([rgb[..., ::-1], jnp.zeros((1, 32, 32, 2))], -1)  # B,G,R,N,x
  picked = vgg.VGG19(rgb_bands=(2, 1, 0)).to_rgb(stack)
  np.testing.assert_allclose(picked, (rgb + 1) / 2, atol=1e-6)
  gray = vgg.VGG19(input_range=(0.0, 1.0)).to_rgb(rgb[..., :1])
  np.testing.assert_allclose(gray, jnp.repeat(rgb[..., :1], 3, -1), atol=1e-6)
  normalized = vgg.VGG19().normalize(jnp.ones((1, 1, 1, 3)) * jnp.array(vgg.IMAGENET_MEAN))
  np.testing.assert_allclose(normalized, 0, atol=1e-6)
  caffe_rgb = jnp.array(vgg.CAFFE_BGR_MEAN[::-1]) / 255.0  # Keras weights: BGR, 0-255
  caffe = vgg.VGG19(preprocessing="caffe").normalize(jnp.ones((1, 1, 1, 3)) * caffe_rgb)
  np.testing.assert_allclose(caffe, 0, atol=1e-4)
  with pytest.raises(ValueError, match="rgb_bands"):
    vgg.VGG19().to_rgb(stack)

  variables = {"params": direct_params}
  both = fast_jit(lambda variables, x: (
      vgg.VGG19().apply(variables, x),
      vgg.VGG19(dtype=jnp.bfloat16).apply(variables, x)))
  f32, bf16 = both(variables, rgb)
  for name in vgg.FEATURE_LAYERS:
    assert bf16[name].dtype == jnp.bfloat16
    got = np.asarray(bf16[name], np.float32)
    assert np.all(np.isfinite(got))
    scale = float(np.abs(f32[name]).max())
    np.testing.assert_allclose(got, f32[name], atol=0.05 * scale)
