"""Each paper's system trains on its public dataset: a fixture in the published
layout is built with the dataset's builder, trained two steps with the config
variant that names the dataset (configs/datasets.py) and scored by
`rsjax.eval.report.evaluate`.

The fixtures are the builders' dummy data with enough patches or tiles for a
training split of one batch (8); networks are shrunk as in tests/tiny_configs,
at the datasets' own 256-pixel tiles.
"""

from __future__ import annotations

import json
import math
import os

import pytest
import tensorflow_datasets as tfds

from configs import (cloud_removal, csebgan, fusion_seg, pix2pix, rs_spade,
                     unet_seg)
from data_builders import make_public_dummy_data as dummy
from data_builders.gid15 import gid15_dataset_builder
from data_builders.sen1_2 import sen1_2_dataset_builder
from data_builders.sen12ms import sen12ms_dataset_builder
from data_builders.sen12ms_cr import sen12ms_cr_dataset_builder
from data_builders.whu_opt_sar import whu_opt_sar_dataset_builder
from rsjax.data import field_layout, pipeline
from rsjax.eval.report import evaluate as evaluate_lib
from rsjax.train import trainer

pytestmark = pytest.mark.slow

# builder module, builder config, fixture writer keyword for a train split of
# at least one batch of 8.
BUILDS = {
    "sen1_2": (sen1_2_dataset_builder, "default", {"extra_scenes": 8}),
    "sen12ms": (sen12ms_dataset_builder, "all", {"extra_scenes": 8}),
    "sen12ms_cr": (sen12ms_cr_dataset_builder, "all", {"extra_scenes": 8}),
    "gid15": (gid15_dataset_builder, "rgb", {"height": 780}),
    "whu_opt_sar": (whu_opt_sar_dataset_builder, "default", {"height": 520}),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """{dataset: data_dir}, each dataset built once for the module."""
  cache = {}

  def build(name):
    if name not in cache:
      module, config, fixture = BUILDS[name]
      root = tmp_path_factory.mktemp(name)
      manual_dir, data_dir = root / "manual", root / "tfds"
      dummy.MAKERS[name](manual_dir, **fixture)
      builder = module.Builder(config=config, data_dir=str(data_dir))
      builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
          manual_dir=str(manual_dir)))
      cache[name] = str(data_dir)
    return cache[name]
  return build


def _short(config, data_dir):
  config.data.data_dir = data_dir
  config.data.batch_size = config.data.eval_batch_size = 8
  config.epochs = None   # a paper's epochs (unet_seg:gid15) would disagree
  config.total_steps = 2
  config.log_every = 1
  config.eval_every = 2
  config.checkpoint_every = 2
  config.num_eval_batches = 1
  return config


def _paired(module, arg):
  config = module.get_config(arg)
  if config.model.generator == "rs_spade":
    config.model.generator_kwargs = {"ngf": 2, "num_upsamplings": 4,
                                     "hidden": 4, "embed_features": 2}
  else:
    config.model.generator_kwargs = {"ngf": 2, "num_downs": 8}
  config.model.discriminator_kwargs = {"ndf": 4, "num_layers": 2}
  return config


def _segmentation(module, arg):
  config = module.get_config(arg)
  config.model.segmenter_kwargs.base_features = 2
  config.model.segmenter_kwargs.channel_multipliers = (1, 2)
  return config


def _cloud_removal(arg):
  config = cloud_removal.get_config(arg)
  if arg == "sen1_2":  # 'paper' needs 23,890 pairs; the fixture builds 'default'
    config.data.name = "sen1_2"
  for stage in ("stage1", "stage2"):
    config.model[stage].generator_kwargs = dict(ngf=2, num_blocks=1)
    config.model[stage].discriminator_kwargs = dict(ndf=4)
  config.train_crop = 64
  return config


def _csebgan(arg):
  config = csebgan.get_config(arg)
  config.model.generator_kwargs.update(dict(
      ngf=2, num_upsamplings=5, embed_dim=4, mlp_hidden=4))
  config.model.discriminator_kwargs.update(dict(ndf=4, num_layers=2))
  config.model.segmenter_kwargs = dict(base_features=4,
                                       channel_multipliers=(1, 2))
  return config


RUNS = {
    "cloud_removal:sen1_2": ("sen1_2", lambda: _cloud_removal("sen1_2")),
    "cloud_removal:sen12ms_cr": ("sen12ms_cr",
                                 lambda: _cloud_removal("sen12ms_cr")),
    "csebgan:gid15": ("gid15", lambda: _csebgan("gid15")),
    "rs_spade:sen12ms": ("sen12ms", lambda: _paired(rs_spade, "sen12ms")),
    "pix2pix:sen12ms": ("sen12ms", lambda: _paired(pix2pix, "sen12ms")),
    "unet_seg:gid15": ("gid15", lambda: _segmentation(unet_seg, "gid15")),
    "fusion_seg:whu_opt_sar": (
        "whu_opt_sar", lambda: _segmentation(fusion_seg, "gated,whu_opt_sar")),
}


# The scores each system's table leads with; per-class ones may be NaN for
# classes a one-batch split does not hold.
HEADLINE = {"segmentation": ("pixel_accuracy", "miou", "fwiou"),
            "paired_gan": ("psnr", "ssim"), "cloud_removal": ("psnr", "ssim"),
            "csebgan": ("miou",)}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_a_paper_system_trains_and_evaluates_on_its_dataset(
    devices, built, tmp_path, run):
  dataset, make_config = RUNS[run]
  config = _short(make_config(), built(dataset))
  layouts = pipeline.dataset_layouts(config.data)
  for name, held in layouts.items():  # what the networks are built for
    if held.units[0] != "class index":
      assert held.bands == field_layout.run_bands(config.data.bands, name)
  workdir = str(tmp_path / "run")
  trainer.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    lines = [json.loads(line) for line in f]
  assert max(line.get("step", 0) for line in lines) == 2
  report = evaluate_lib.evaluate([workdir], split="validation",
                                 output_dir=str(tmp_path / "report"),
                                 num_batches=1, samples=False, curves=False)
  (result,) = report.results
  for key in HEADLINE[config.system]:
    assert math.isfinite(result.scores[key]), (key, result.scores)


def test_sen12ms_s2_bands_are_picked_by_name_from_all_thirteen(devices, built):
  config = _short(_paired(rs_spade, "sen12ms"), built("sen12ms"))
  layout = pipeline.dataset_layouts(config.data)["s2"]
  assert layout.bands == ("B2", "B3", "B4", "B8")
  assert layout.units == ("reflectance",) * 4
  config.data.bands = {"s2": ("B2", "B3", "B4", "B8", "B13")}
  with pytest.raises(field_layout.MissingBands, match="B13"):
    pipeline.check_dataset(config.data)


def test_too_few_classes_for_a_dataset_stops_before_the_workdir(
    devices, built, tmp_path):
  config = _short(_segmentation(unet_seg, "gid15"), built("gid15"))
  config.num_classes = 9
  workdir = tmp_path / "run"
  with pytest.raises(field_layout.DatasetMismatch,
                     match="16 classes.*num_classes=9"):
    trainer.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()
