"""Converter errors of the FID Inception and LPIPS weights: each names what is
missing and where it comes from; a .pth without PyTorch says how to proceed."""

import os
import sys

import numpy as np
import pytest

from rsjax.nn import inception, inception_convert, lpips, lpips_convert

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_inception_lpips_reference import (  # noqa: E402  pylint: disable=wrong-import-position
    inception_state_dict, lpips_state_dicts)


def test_inception_converter_errors(tmp_path, monkeypatch):
  state = inception_state_dict()
  flat = inception_convert.from_state_dict(state)
  assert set(flat) == set(inception.param_shapes())    # fc / counters ignored
  assert flat["Mixed_6b/branch7x7_2/kernel"].shape == (1, 7, 128, 128)
  broken = dict(state)
  del broken["Mixed_7c.branch_pool.bn.running_var"]
  with pytest.raises(ValueError, match="Mixed_7c/branch_pool/var"):
    inception_convert.from_state_dict(broken)
  broken = dict(state)
  broken["Conv2d_1a_3x3.conv.weight"] = np.zeros((32, 3, 5, 5), np.float32)
  with pytest.raises(ValueError, match="Conv2d_1a_3x3/kernel.*expected"):
    inception_convert.from_state_dict(broken)
  prefixed = {f"module.{k}": v for k, v in state.items()}
  assert set(inception_convert.from_state_dict(prefixed)) == set(flat)
  monkeypatch.setitem(sys.modules, "torch", None)       # as if PyTorch were absent
  with pytest.raises(ImportError, match="needs PyTorch"):
    inception_convert.convert(str(tmp_path / "pt_inception.pth"),
                              str(tmp_path / "out.npz"))
  with pytest.raises(ValueError, match="unknown checkpoint type"):
    inception_convert.convert(str(tmp_path / "inception.ckpt"),
                              str(tmp_path / "out.npz"))
  flat.pop("Mixed_5b/branch1x1/mean")
  with pytest.raises(KeyError, match="Mixed_5b/branch1x1/mean"):
    inception.params_from_flat(flat)


def test_lpips_converter_errors():
  trunk, lins = lpips_state_dicts("alex")
  with pytest.raises(ValueError, match="lin0/weight.*weights/v0.1"):
    lpips_convert.from_state_dicts([trunk])
  with pytest.raises(ValueError, match="no LPIPS trunk weights"):
    lpips_convert.from_state_dicts([lins])
  odd = dict(trunk, **{"features.0.weight": np.zeros((64, 3, 7, 7), np.float32)})
  with pytest.raises(ValueError, match="neither AlexNet"):
    lpips_convert.from_state_dicts([odd, lins])
  vgg_trunk, _ = lpips_state_dicts("vgg")
  with pytest.raises(ValueError, match=r"LPIPS \(vgg\): lin1/weight has shape"):
    lpips_convert.from_state_dicts([vgg_trunk, lins])   # AlexNet's lin layers
  net, flat = lpips_convert.from_state_dicts([trunk, lins])
  assert net == "alex" and flat["conv0/kernel"].shape == (11, 11, 3, 64)
  with pytest.raises(ValueError, match="unknown LPIPS net"):
    lpips.LPIPS(net="squeeze").init(
        __import__("jax").random.key(0), np.zeros((1, 64, 64, 3)),
        np.zeros((1, 64, 64, 3)))
