"""The experiments' shared fixture: a tiny trained generator."""

import pytest

import tiny_configs
from rsjax.train import trainer as trainer_lib


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory):
  """A 2-step pix2pix generator (s1 + lulc + dem -> s2 on random 32-pixel
  tiles, 2 downsamplings) standing in for RS-SPADE."""
  workdir = str(tmp_path_factory.mktemp("generator"))
  config = tiny_configs.memory_config(steps=2)
  config.model.generator_kwargs = {"ngf": 2, "num_downs": 2}
  config.model.discriminator_kwargs = {"ndf": 2, "num_layers": 1}
  trainer_lib.train_and_evaluate(config, workdir)
  return workdir
