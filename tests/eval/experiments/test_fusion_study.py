"""The fusion study at tiny size: two modes (pixel- and decision-level), one table."""

from __future__ import annotations

import csv
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tiny_configs
from configs import fusion_seg, fusion_study
from rsjax.eval.experiments import fusion_study as study
from rsjax.nn.fusion import TwoBranchSegmenter
from rsjax.systems import base


def tiny_study_config(modes=("early", "decision")):
  config = fusion_study.get_config()
  config.modes = modes
  config.timing_batch_size = 8
  config.timing_repeats = 2
  tiny_configs.tiny_segmentation(config.segmentation, examples=16,
                                 eval_every=2)
  return config


def _param_count(fusion):
  model = TwoBranchSegmenter(9, fusion, base_features=2,
                             channel_multipliers=(1, 2))
  params = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 32, 32, 4)), jnp.zeros((1, 32, 32, 2)),
      train=False))["params"]
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def test_fusion_study_table(tmp_path):
  document = study.run_fusion_study(tiny_study_config(), str(tmp_path))
  with open(tmp_path / "fusion_study.csv") as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == list(study.COLUMNS)
  assert [(r["mode"], r["level"]) for r in rows] == [
      ("early", "pixel"), ("decision", "decision")]
  by_mode = {r["mode"]: r for r in document["rows"]}
  for mode, row in by_mode.items():
    assert row["params"] == _param_count(mode)
    for key in ("pa", "mpa", "miou", "fwiou"):
      assert 0.0 <= row[key] <= 1.0
    assert row["images_per_s"] > 0
  # Decision-level fusion runs two full U-Nets, pixel-level one.
  assert (by_mode["decision"]["gflops_per_image"]
          > 1.5 * by_mode["early"]["gflops_per_image"] > 0)
  with open(tmp_path / "fusion_study.md") as f:
    text = f.read()
  assert "| mode | level | pa |" in text and study.machine() in text
  for mode in by_mode:
    assert os.path.exists(tmp_path / "runs" / mode / "test_scores.json")


def test_config_errors_before_any_output(tmp_path):
  with pytest.raises(ValueError, match="config.modes: unknown fusion 'fancy'"):
    study.run_fusion_study(tiny_study_config(("early", "fancy")), str(tmp_path))
  config = tiny_study_config()
  config.segmentation.model.segmenter = "rs_unet"
  with pytest.raises(ValueError, match="two_branch"):
    study.run_fusion_study(config, str(tmp_path))
  assert not os.listdir(tmp_path)
  # The config takes any fusion name; the segmenter checks it.
  with pytest.raises(ValueError, match="unknown fusion 'fancy'; valid"):
    base.get_system(fusion_seg.get_config("fancy"))
  assert fusion_seg.get_config("gated,demo").model.segmenter_kwargs.fusion == "gated"
