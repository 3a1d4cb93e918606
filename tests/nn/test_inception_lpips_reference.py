"""rsjax's FID Inception-v3 and learned LPIPS against the PyTorch references
(pytorch-fid, lpips) with the same random weights.

`reference_weights.py` builds seeded numpy weights in PyTorch's state_dict
layout; rsjax's converters turn them into `.npz` files and the JAX networks
run on the same seeded images. The reference outputs were computed by
`make_reference_fixtures.py` (PyTorch; not an rsjax dependency) and committed
as fixtures/fid_lpips_reference.npz (~22 KB): pool3 features of 3 images,
pytorch-fid's Frechet distance, LPIPS (AlexNet, VGG16) of 3 pairs with the
per-layer terms.

Tolerances: both sides compute in float32 (XLA at HIGHEST precision). The
Inception has 94 convolutions with sums over up to 3 x 3 x 2048 products, each
rounding at ~6e-8 relative; summation order differs (XLA vs oneDNN), so the
error grows roughly with sqrt(products) per layer and linearly over depth:
on this CPU the pool3 features differ by 4e-7 of their scale; 1e-4 leaves
room for other backends' summation orders (GPU convolution algorithms at
HIGHEST precision) while a wrong pooling, padding or BatchNorm epsilon moves
them by far more (measured: counting the padding in the pool branches, as
torchvision's Inception does, moves them by 4e-2 of their scale).
LPIPS is a mean of squared differences of unit vectors: 2e-7 relative seen,
1e-4 allowed as well.
The Frechet distance of two rank-1 covariances, where pytorch-fid's scipy
sqrtm is accurate to ~1e-6 relative (checked against the closed form
|mu_a - mu_b|^2 + |u|^2 + |v|^2 - 2 |u.v|); rsjax sums f and f f^T in float32
(they add up over batches and devices), then subtracts n mu mu^T in float64:
~3e-5 relative from that cancellation, so 1e-4.
"""

import functools
import os
import sys

import jax
import numpy as np
import pytest

from rsjax.metrics import generative as gen
from rsjax.nn import inception, inception_convert, lpips, lpips_convert

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_weights as rw  # noqa: E402  pylint: disable=wrong-import-position

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                       "fid_lpips_reference.npz")
_BN_TORCH = {"scale": "bn.weight", "bias": "bn.bias", "mean": "bn.running_mean",
             "var": "bn.running_var"}


@pytest.fixture(scope="module")
def reference():
  with np.load(FIXTURE) as archive:
    return {key: archive[key] for key in archive.files}


def inception_state_dict():
  """The FID Inception's state_dict keys and torch shapes, derived from the
  JAX network's parameters, filled by `reference_weights`."""
  shapes = {}
  for key, shape in inception.param_shapes().items():
    block, leaf = key.rsplit("/", 1)
    block = block.replace("/", ".")
    if leaf == "kernel":
      kh, kw, c_in, c_out = shape
      shapes[f"{block}.conv.weight"] = (c_out, c_in, kh, kw)
    else:
      shapes[f"{block}.{_BN_TORCH[leaf]}"] = shape
  state = rw.state_dict(shapes)
  state["fc.weight"] = np.zeros((1008, 2048), np.float32)   # ignored
  state["Conv2d_1a_3x3.bn.num_batches_tracked"] = np.zeros((), np.int64)
  return state


def test_fid_inception_matches_pytorch_fid(reference, tmp_path):
  path = str(tmp_path / "fid_inception.npz")
  inception_convert.main([_save_state(inception_state_dict(), tmp_path), path])
  module, variables = inception.load_fid_inception(path, input_range=(0.0, 1.0))
  name, shape = rw.INCEPTION_IMAGES
  pool3 = np.asarray(jax.jit(module.apply)(variables, rw.images(name, shape)))
  expected = reference["inception_pool3"]
  assert pool3.shape == expected.shape == (3, inception.FEATURES)
  scale = float(np.abs(expected).max())
  np.testing.assert_allclose(pool3, expected, rtol=1e-4, atol=1e-4 * scale)

  # FID as CSEBGAN's evaluation computes it (sums -> Frechet), on the
  # reference features, against pytorch-fid's calculate_frechet_distance.
  fid = gen.frechet_distance_from_sums(gen.feature_sums(expected[:2]),
                                       gen.feature_sums(expected[1:]))
  np.testing.assert_allclose(fid, float(reference["inception_fid_01_12"]),
                             rtol=1e-4)


def _save_state(state, tmp_path, name="state_dict.npz"):
  path = str(tmp_path / name)
  np.savez(path, **state)
  return path


def lpips_state_dicts(net):
  """(trunk state_dict 'features.i.*', lin state_dict 'lin{k}.model.1.weight'):
  the two files a user has (torchvision trunk, lpips package weights)."""
  trunk = {}
  for index, (kh, kw, c_in, c_out) in lpips.conv_shapes(net).items():
    trunk[f"features.{index}.weight"] = (c_out, c_in, kh, kw)
    trunk[f"features.{index}.bias"] = (c_out,)
  lins = {f"lin{k}.model.1.weight": (1, c, 1, 1)
          for k, c in enumerate(lpips.channels(net))}
  return rw.state_dict(trunk), rw.state_dict(lins)


@pytest.mark.parametrize("net", lpips.NETS)
def test_lpips_matches_lpips_package(reference, tmp_path, net):
  trunk, lins = lpips_state_dicts(net)
  path = str(tmp_path / f"lpips_{net}.npz")
  lpips_convert.main([_save_state(lins, tmp_path, "lin.npz"),
                      _save_state(trunk, tmp_path, "trunk.npz"), path])
  module, variables = lpips.load_lpips(path, input_range=(0.0, 1.0))
  assert module.net == net
  (name_a, shape_a), (name_b, shape_b) = rw.LPIPS_IMAGES
  a, b = rw.images(name_a, shape_a), rw.images(name_b, shape_b)

  @functools.partial(jax.jit)
  def run(variables, a, b):
    fa = module.apply(variables, a, method="features")
    fb = module.apply(variables, b, method="features")
    weights = module.apply(variables, method="channel_weights")
    layers = [gen.region_mean_distance([m]) for m in
              gen.distance_maps(fa, fb, weights)]
    return module.apply(variables, a, b), layers

  total, layers = run(variables, a, b)
  expected = reference[f"lpips_{net}"]
  np.testing.assert_allclose(total, expected, rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(np.stack(layers), reference[f"lpips_{net}_layers"],
                             rtol=1e-4, atol=1e-7)
  assert np.all(np.asarray(total) > 0)

  # One whole lpips.LPIPS state_dict ('net.slice{s}.{i}.*', 'lin{k}...')
  # converts to the same file.
  whole = {f"net.slice1.{k[len('features.'):]}": v for k, v in trunk.items()}
  whole.update({f"{k}": v for k, v in lins.items()})
  whole["scaling_layer.shift"] = np.zeros((1, 3, 1, 1), np.float32)
  again = str(tmp_path / "again.npz")
  lpips_convert.convert([whole], again)
  _, variables_again = lpips.load_lpips(again)
  jax.tree.map(np.testing.assert_array_equal, variables_again, variables)
