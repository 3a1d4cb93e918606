"""rsjax.train.training_length: a paper's epochs as the trainer's steps."""

import json
import os

import ml_collections
import pytest

from configs import unet_seg
from rsjax.data import pipeline
from rsjax.store import checkpoint as checkpoint_lib
from rsjax.train import trainer
from rsjax.train import training_length
from tests import tiny_configs


def _config(epochs, total_steps, batch_size=8):
  config = ml_collections.ConfigDict()
  config.epochs = ml_collections.FieldReference(epochs, field_type=int)
  config.total_steps = ml_collections.FieldReference(total_steps,
                                                     field_type=int)
  config.data = ml_collections.ConfigDict({"batch_size": batch_size})
  return config


def test_rs_spade_unet_length_by_hand():
  """RS-SPADE Sec. 4.2: 1558 real training pairs; 50 epochs (Fig. 9). By
  hand: 1558 = 8 x 194 + 6, so an epoch is 194 full batches of 8 (the last
  6 examples wait for the next shuffle) and 50 epochs are 50 x 194 = 9700
  steps. The Mix set, 3116 = 8 x 389 + 4, gives 50 x 389 = 19450."""
  assert training_length.resolve(_config(50, None), 1558).total_steps == 9700
  assert training_length.resolve(_config(50, None), 3116).total_steps == 19450
  # CSEBGAN Sec. IV-A.2, 200 epochs; 100 examples at batch 32 = 3 batches.
  assert training_length.resolve(_config(200, None, 32), 100
                                 ).total_steps == 600


def test_resolve_leaves_the_given_config_and_step_configs_alone():
  config = _config(50, None)
  resolved = training_length.resolve(config, 1558)
  assert config.total_steps is None and resolved.epochs == 50
  for epochs in (None, 0):
    steps = _config(epochs, 123)
    assert training_length.resolve(steps, 1558) is steps


def test_agreeing_epochs_and_steps_pass_and_disagreeing_ones_raise():
  assert training_length.resolve(_config(50, 9700), 1558).total_steps == 9700
  with pytest.raises(training_length.TrainingLengthError) as raised:
    training_length.resolve(_config(50, 10_000), 1558)
  message = str(raised.value)
  for text in ("config.epochs=50", "config.total_steps=10000", "1558",
               "9700 steps", "--config.epochs=0"):
    assert text in message


@pytest.mark.parametrize("epochs", [-1, True, 2.5])
def test_bad_epochs_are_refused(epochs):
  config = ml_collections.ConfigDict({"epochs": epochs})
  with pytest.raises(training_length.TrainingLengthError, match="epochs"):
    training_length.epochs_of(config)


def test_a_split_smaller_than_a_batch_is_refused():
  with pytest.raises(training_length.TrainingLengthError, match="no batch"):
    training_length.resolve(_config(1, None, 16), 15)


def test_paper_configs_give_the_papers_epochs():
  """The epoch counts of the configs are the papers' (the comments cite the
  sections); step-counted variants keep total_steps."""
  assert unet_seg.get_config().epochs == 50          # RS-SPADE Sec. 4.2
  assert unet_seg.get_config().total_steps is None
  assert unet_seg.get_config("gid15").epochs == 200  # CSEBGAN Sec. IV-A.3
  assert unet_seg.get_config("s2+s1").epochs is None
  assert unet_seg.get_config("demo").epochs is None


def test_trainer_trains_the_epochs_of_the_split(devices, tmp_path):
  """2 epochs of 24 memory tiles in batches of 8 are 6 steps, which is what
  the reader counts as two epochs (`steps_per_epoch`); the workdir's
  config.json holds the derived count."""
  config = tiny_configs.memory_segmentation(steps=1)
  config.total_steps = None
  config.epochs = 2
  config.checkpoint_every = config.eval_every = 100
  assert pipeline.num_training_examples(config.data) == 24
  iterator = pipeline.create_iterator(config.data, _mesh())
  assert 2 * iterator.steps_per_epoch == 6
  iterator.close()
  workdir = str(tmp_path / "run")
  trainer.train_and_evaluate(config, workdir)
  assert checkpoint_lib.steps(workdir)[-1] == 6
  with open(os.path.join(workdir, "config.json")) as f:
    saved = json.load(f)
  assert saved["total_steps"] == 6 and saved["epochs"] == 2


def test_disagreeing_lengths_stop_the_trainer_before_the_workdir(
    devices, tmp_path):
  config = tiny_configs.memory_segmentation(steps=5)
  config.epochs = 2                   # 6 steps, not 5
  workdir = tmp_path / "run"
  with pytest.raises(trainer.ConfigError, match="disagree"):
    trainer.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


def _mesh():
  import jax
  return jax.make_mesh((8, 1), ("data", "fsdp"))


def test_stand_in_only_fills_an_unresolved_length():
  """What builds networks without a dataset (launch.compile, config checks)
  gets a placeholder count only where epochs still await the dataset."""
  waiting = _config(50, None)
  assert training_length.stand_in(waiting).total_steps == 1
  assert waiting.total_steps is None
  for config in (_config(None, 123), _config(50, 9700)):
    assert training_length.stand_in(config) is config


def test_check_config_takes_epochs_instead_of_total_steps():
  config = tiny_configs.memory_segmentation(steps=3)
  config.total_steps = None
  with pytest.raises(trainer.ConfigError, match="total_steps"):
    trainer.check_config(config)
  config.epochs = 2
  trainer.check_config(config)
