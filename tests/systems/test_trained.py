"""load_run: a trained run from its workdir, or an error naming the workdir
(never freshly initialised weights)."""

import jax
import numpy as np
import pytest

from rsjax.store import run_config
from rsjax.systems import trained
from rsjax.train import trainer
from tiny_configs import memory_config


def test_empty_workdir_is_an_error_naming_it(tmp_path):
  with pytest.raises(FileNotFoundError, match=str(tmp_path)):
    trained.load_run(tmp_path)
  missing = tmp_path / "never_trained"
  with pytest.raises(FileNotFoundError, match="never_trained"):
    trained.load_run(missing)


def test_config_without_checkpoint_is_an_error_naming_the_workdir(tmp_path):
  run_config.save(tmp_path, memory_config())
  with pytest.raises(FileNotFoundError,
                     match=f"{tmp_path}: no checkpoint in .*checkpoints"):
    trained.load_run(tmp_path)


def test_loads_the_trained_state_at_any_step(tmp_path, devices):
  config = memory_config(steps=2)
  workdir = str(tmp_path)
  trainer.train_and_evaluate(config, workdir)
  run = trained.load_run(workdir)
  assert run.step == 2 and int(run.state.step) == 2
  assert run.config.system == config.system
  assert len(jax.tree.leaves(run.state.params)[0].sharding.device_set) == 8
  earlier = trained.load_run(workdir, step=1)
  assert earlier.step == 1 and int(earlier.state.step) == 1
  moved = [not np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(jax.device_get(run.state.params)),
      jax.tree.leaves(jax.device_get(earlier.state.params)))]
  assert any(moved)
  with pytest.raises(ValueError, match=r"no checkpoint of step 7; it has "
                     r"steps \[1, 2\]"):
    trained.load_run(workdir, step=7)
  other = memory_config()
  other.system = "segmentation"
  with pytest.raises(ValueError, match="holds a 'paired_gan' run"):
    trained.load_run(workdir, config=other)
