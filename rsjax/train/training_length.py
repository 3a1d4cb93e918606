"""Training length in epochs, as the papers state it, turned into steps.

The papers give how long they train in epochs: CSEBGAN 200 (Sec. IV-A.2, its
U-Net evaluator 200 as well, Sec. IV-A.3), the residual cycle GAN 150 (75 at
the learning rate, 75 decaying it, Sec. III), RS-SPADE's U-Net 50 (Sec. 4.2,
Fig. 9); rsjax's trainer counts steps. `config.epochs` says the length in
epochs: once the dataset is known the trainer derives `config.total_steps`
from it (`resolve`), so the schedules (`decay_start` x total_steps), the
progress lines and the saved `config.json` all see the derived count.

One epoch is one pass over the training split in global batches of
`config.data.batch_size`. The readers drop each epoch's last partial batch
(their `steps_per_epoch` is floor(N / B) when training), so

    total_steps = epochs * floor(N / B)

with N the training split's examples (`pipeline.num_training_examples`: the
TFDS split, the memory source's examples, or the rows of
`config.data.train_arrays`). An epoch count too small for one step is
refused.

`config.epochs` None (or 0, which the command line can set where it cannot
set None) trains `config.total_steps`. A config that gives both must agree:
`total_steps` set beside `epochs` to another count than the derived one is
an error naming both values, so neither silently wins.
"""

from __future__ import annotations

import ml_collections


class TrainingLengthError(ValueError):
  """`config.epochs` and `config.total_steps` disagree, or neither gives a
  positive length; the message names the keys and the derived count."""


def epochs_of(config: ml_collections.ConfigDict) -> int | None:
  """`config.epochs` as a positive int, or None where the run counts steps
  (no key, None or 0)."""
  epochs = config.get("epochs")
  if epochs is None or epochs == 0:
    return None
  if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
    raise TrainingLengthError(
        f"config.epochs must be a positive int (or None / 0 to train "
        f"config.total_steps), got {epochs!r}")
  return epochs


def steps_for_epochs(epochs: int, num_examples: int, global_batch: int
                     ) -> int:
  """Steps of `epochs` passes over `num_examples` in batches of
  `global_batch`, each pass dropping its last partial batch."""
  if num_examples < global_batch:
    raise TrainingLengthError(
        f"config.epochs={epochs}: the training split's {num_examples} "
        f"examples make no batch of {global_batch}")
  return epochs * (num_examples // global_batch)


def resolve(config: ml_collections.ConfigDict, num_examples: int
            ) -> ml_collections.ConfigDict:
  """`config` with `total_steps` derived from `epochs` for a training split
  of `num_examples` (a copy; `config` itself is left as it is). A config
  without epochs comes back unchanged; one whose `total_steps` is set to
  another count than the derived one raises `TrainingLengthError`."""
  epochs = epochs_of(config)
  if epochs is None:
    return config
  batch = int(config.data.batch_size)
  derived = steps_for_epochs(epochs, num_examples, batch)
  given = config.get("total_steps")
  if given is not None and given != derived:
    raise TrainingLengthError(
        f"config.epochs={epochs} and config.total_steps={given} disagree: "
        f"{epochs} epochs of {num_examples} training examples in batches of "
        f"{batch} are {derived} steps. Give one of them: leave total_steps "
        f"unset, or train by steps with --config.epochs=0")
  resolved = config.copy_and_resolve_references()
  resolved.total_steps = derived
  return resolved


def stand_in(config: ml_collections.ConfigDict, steps: int = 1
             ) -> ml_collections.ConfigDict:
  """`config` with a placeholder `total_steps` where it is still derived
  from epochs, for what builds the networks without a dataset (ahead-of-time
  compilation, config checks): the count only sets the learning-rate
  schedule's breakpoints, not a shape, a FLOP or a byte of the program."""
  if epochs_of(config) is None or config.get("total_steps") is not None:
    return config
  resolved = config.copy_and_resolve_references()
  resolved.total_steps = steps
  return resolved
