"""Writes tests/nn/fixtures/fid_lpips_reference.npz: outputs of the PyTorch
reference implementations (pytorch-fid's FID Inception-v3, the `lpips`
package's LPIPS with AlexNet and VGG16 trunks) on seeded random weights and
images from `reference_weights.py`; `test_inception_lpips_reference.py`
converts the same numpy weights with rsjax's converters and compares.

Needs PyTorch, torchvision, pytorch-fid and lpips, which rsjax does not
install; use a separate git-ignored venv (nothing is downloaded: the networks
are built without pretrained weights, then loaded with the numpy ones):

  python3 -m venv peers/torch-venv
  peers/torch-venv/bin/pip install torch torchvision pytorch-fid lpips
  peers/torch-venv/bin/python tests/nn/make_reference_fixtures.py

Rerun it when `reference_weights.py` changes (then commit the new fixture).
"""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_weights as rw  # noqa: E402  pylint: disable=wrong-import-position

from pytorch_fid import fid_score  # noqa: E402
from pytorch_fid import inception as fid_inception  # noqa: E402
import lpips  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                   "fid_lpips_reference.npz")


def _load_numpy(module: torch.nn.Module, rename=lambda key: key) -> None:
  """Every float entry of `module`'s state_dict from `reference_weights`."""
  state = module.state_dict()
  for key, value in state.items():
    if key.endswith("num_batches_tracked") or key.startswith("scaling_layer."):
      continue
    state[key] = torch.from_numpy(rw.tensor(rename(key), tuple(value.shape)))
  module.load_state_dict(state, strict=True)


def fid_inception_random() -> torch.nn.Module:
  """pytorch_fid.inception.fid_inception_v3() without its download: the same
  torchvision Inception-v3 with the FID blocks, numpy weights loaded."""
  net = fid_inception._inception_v3(num_classes=1008, aux_logits=False,  # pylint: disable=protected-access
                                    weights=None)
  net.Mixed_5b = fid_inception.FIDInceptionA(192, pool_features=32)
  net.Mixed_5c = fid_inception.FIDInceptionA(256, pool_features=64)
  net.Mixed_5d = fid_inception.FIDInceptionA(288, pool_features=64)
  net.Mixed_6b = fid_inception.FIDInceptionC(768, channels_7x7=128)
  net.Mixed_6c = fid_inception.FIDInceptionC(768, channels_7x7=160)
  net.Mixed_6d = fid_inception.FIDInceptionC(768, channels_7x7=160)
  net.Mixed_6e = fid_inception.FIDInceptionC(768, channels_7x7=192)
  net.Mixed_7b = fid_inception.FIDInceptionE_1(1280)
  net.Mixed_7c = fid_inception.FIDInceptionE_2(2048)
  _load_numpy(net)
  return net


def nchw(images: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def main() -> None:
  torch.use_deterministic_algorithms(True)
  out = {}
  # FID Inception: pytorch-fid's InceptionV3 wrapper (resize to 299,
  # 2x - 1, blocks 0-3, pool3) around the random FID network.
  fid_inception.fid_inception_v3 = fid_inception_random
  model = fid_inception.InceptionV3([3], resize_input=True,
                                    normalize_input=True).eval()
  name, shape = rw.INCEPTION_IMAGES
  with torch.no_grad():
    pool3 = model(nchw(rw.images(name, shape)))[0][:, :, 0, 0].numpy()
  out["inception_pool3"] = pool3.astype(np.float32)
  # pytorch-fid's Frechet distance of images {0, 1} vs {1, 2} (mean and
  # np.cov as fid_score.calculate_activation_statistics does).
  stats = [(f.mean(0), np.cov(f, rowvar=False))
           for f in (pool3[:2].astype(np.float64), pool3[1:].astype(np.float64))]
  out["inception_fid_01_12"] = np.float64(
      fid_score.calculate_frechet_distance(*stats[0], *stats[1]))

  (name_a, shape_a), (name_b, shape_b) = rw.LPIPS_IMAGES
  a = 2 * nchw(rw.images(name_a, shape_a)) - 1      # lpips takes [-1, 1]
  b = 2 * nchw(rw.images(name_b, shape_b)) - 1
  for net in ("alex", "vgg"):
    metric = lpips.LPIPS(pretrained=False, net=net, pnet_rand=True,
                         verbose=False).eval()
    # 'lins.k.*' is the same parameter as 'lin{k}.*' (a ModuleList of them):
    # one name, one value.
    _load_numpy(metric, lambda key: re.sub(r"^lins\.(\d)\.", r"lin\1.", re.sub(
        r"^net\.slice\d\.", "features.", key)))
    with torch.no_grad():
      total, layers = metric(a, b, retPerLayer=True)
    out[f"lpips_{net}"] = total.reshape(-1).numpy().astype(np.float32)
    out[f"lpips_{net}_layers"] = np.stack(
        [layer.reshape(-1).numpy() for layer in layers]).astype(np.float32)
  out["versions"] = np.asarray("; ".join(
      f"{package} {metadata.version(package)}"
      for package in ("torch", "torchvision", "pytorch-fid", "lpips", "scipy")))
  os.makedirs(os.path.dirname(OUT), exist_ok=True)
  np.savez_compressed(OUT, **out)
  print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
  for key, value in out.items():
    print(key, np.asarray(value).shape, np.asarray(value).ravel()[:4])


if __name__ == "__main__":
  main()
