"""The workdir's saved config: round trip, paths saved absolute, and a run of
another system refused."""

import json
import logging
import os

import pytest

from rsjax.store import run_config
from rsjax.train import trainer as trainer_lib
import tiny_configs


def test_save_load_round_trip(tmp_path):
  config = tiny_configs.memory_config()
  config.data.data_dir = str(tmp_path / "data")
  run_config.save(tmp_path, config)
  loaded = run_config.load(tmp_path)
  assert loaded.to_dict() == json.loads(config.to_json_best_effort())
  assert not list(tmp_path.glob("*.tmp"))


def test_paths_are_saved_absolute_and_uris_as_they_are(tmp_path, monkeypatch):
  """The workdir's config reads the same from any directory."""
  monkeypatch.chdir(tmp_path)
  config = tiny_configs.memory_config()
  config.data.data_dir = "tfds"
  config.data.train_arrays = "gs://bucket/arrays/"
  run_config.save("run", config)
  saved = json.loads((tmp_path / "run" / "config.json").read_text())
  assert saved["data"]["data_dir"] == os.path.join(os.getcwd(), "tfds")
  assert saved["data"]["train_arrays"] == "gs://bucket/arrays"
  assert saved["data"]["train_rows"] is None
  assert config.data.data_dir == "tfds"   # the config itself is unchanged
  monkeypatch.chdir(tmp_path / "run")
  assert run_config.load(".").data.data_dir == os.path.join(
      str(tmp_path), "tfds")


def test_a_relative_path_saved_before_is_read_as_then_with_a_warning(
    tmp_path, caplog):
  config = tiny_configs.memory_config()
  config.data.data_dir = "tfds"
  (tmp_path / "config.json").write_text(config.to_json_best_effort())
  with caplog.at_level(logging.WARNING):
    loaded = run_config.load(tmp_path)
  assert loaded.data.data_dir == "tfds"
  assert ("config.data.data_dir = 'tfds' is a relative path (saved before "
          "config.json kept absolute paths); it is read from the current "
          f"directory, {os.getcwd()}") in caplog.text


def test_missing_config_names_the_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="config.json"):
    run_config.load(tmp_path)


def test_trainer_refuses_a_workdir_of_another_system(tmp_path, devices):
  other = tiny_configs.memory_config()
  other.system = "segmentation"
  run_config.save(tmp_path, other)
  with pytest.raises(ValueError, match="holds a 'segmentation' run"):
    trainer_lib.Trainer(tiny_configs.memory_config(), str(tmp_path))
