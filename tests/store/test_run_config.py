"""The workdir's saved config: round trip, and a run of another system refused."""

import json

import pytest

from rsjax.store import run_config
from rsjax.train import trainer as trainer_lib
import tiny_configs


def test_save_load_round_trip(tmp_path):
  config = tiny_configs.memory_config()
  run_config.save(tmp_path, config)
  loaded = run_config.load(tmp_path)
  assert loaded.to_dict() == json.loads(config.to_json_best_effort())
  assert not list(tmp_path.glob("*.tmp"))


def test_missing_config_names_the_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="config.json"):
    run_config.load(tmp_path)


def test_trainer_refuses_a_workdir_of_another_system(tmp_path, devices):
  other = tiny_configs.memory_config()
  other.system = "segmentation"
  run_config.save(tmp_path, other)
  with pytest.raises(ValueError, match="holds a 'segmentation' run"):
    trainer_lib.Trainer(tiny_configs.memory_config(), str(tmp_path))
