"""`train_and_evaluate(config, workdir)`: the sharded training loop of every system.

  mesh (config.mesh) -> system (config.system) -> input iterators
  -> state initialised under jit with out_shardings from `jax.eval_shape`
     (parameters never land on one device first), or restored from the newest
     checkpoint in the workdir that restores (params, optimizer state, EMA,
     RNG; the data position is the step; newer damaged checkpoints are moved
     aside with a warning, `rsjax.store.checkpoint.restore_latest`)
  -> jitted train step (donated state, sharded batch) -> metrics fetched to
     the host only on logging steps -> periodic evaluation (sums and counts,
     reduced on the host) with a PNG sample grid -> Orbax checkpoints.

A dataset that is not built or holds less than one training batch stops the
run before it creates the workdir (`rsjax.data.pipeline.check_dataset`). A
run holds its workdir's lock while it runs: a second run on the same workdir
stops at once with `WorkdirLocked`, naming the first.

A non-finite training metric stops the run with the step where it first
appeared and the last good checkpoint (no checkpoint is written after it).
SIGTERM (a pre-empted VM, `scancel`) saves a checkpoint at the current step and
raises `preemption.Preempted` (launch.train exits with its status 143 = 128 +
SIGTERM, so a scheduler requeues the run); in a multi-process run every
process stops at the same step, whichever of them got the signal
(`rsjax.train.preemption`). The next run with the same workdir resumes there
and drops the lines of metrics.jsonl after the restored step, which it logs
again.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from rsjax import console
from rsjax import mesh as mesh_lib
from rsjax.data import pipeline
from rsjax.nn import mixed_precision
from rsjax.store import atomic
from rsjax.store import checkpoint as checkpoint_lib
from rsjax.store import paths
from rsjax.store import run_config
from rsjax.store import workdir_lock
from rsjax.systems import base
from rsjax.train import preemption
from rsjax.train import progress as progress_lib
from rsjax.train import samples as samples_lib
from rsjax.train import training_length
from rsjax.train import writers as writers_lib


PARAMS_FILE = "params.txt"


class NonFiniteLossError(FloatingPointError):
  """A training metric became NaN or infinite."""


def _all_finite(metrics) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(metrics)
            if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


class ConfigError(ValueError):
  """A config value a run cannot start with (a step count below 1, an
  unknown system); the message names the key."""


def check_config(config: ml_collections.ConfigDict) -> None:
  """`ConfigError` naming the key of a step count below 1, a bad
  `config.epochs` or an unknown system. With `config.epochs` set,
  `total_steps` may still be None (derived once the dataset is known,
  `resolve_training_length`)."""
  try:
    by_epochs = training_length.epochs_of(config) is not None
  except training_length.TrainingLengthError as error:
    raise ConfigError(str(error)) from None
  for key in ("total_steps", "log_every", "eval_every", "checkpoint_every"):
    value = config.get(key)
    if key == "total_steps" and by_epochs and value is None:
      continue
    if not isinstance(value, int) or value < 1:
      raise ConfigError(f"config.{key} must be a positive int, got {value!r}")
  try:
    base.check_system_name(config)
  except ValueError as error:
    raise ConfigError(str(error)) from None


def resolve_training_length(config: ml_collections.ConfigDict
                            ) -> ml_collections.ConfigDict:
  """`config` with `total_steps` derived from `config.epochs` and the size of
  its training split (`rsjax.train.training_length`); unchanged when it
  counts steps. Disagreeing epochs and total_steps raise `ConfigError`."""
  if training_length.epochs_of(config) is None:
    return config
  try:
    return training_length.resolve(
        config, pipeline.num_training_examples(config.data))
  except training_length.TrainingLengthError as error:
    raise ConfigError(str(error)) from None


def jit_steps(system: base.System, state_shardings, replicated):
  """(train_step, eval_step) of `system` as the trainer runs them, jitted
  with their shardings (`rsjax.train.aot` compiles the same two for a TPU
  topology).

  train_step(state, batch, first_bad) -> (state, metrics, first_bad) donates
  the state; `first_bad` (int32, -1 while every metric is finite) becomes the
  step of the first non-finite metric. It is traced with weight gradients
  in `config.grad_reduce_dtype` (`rsjax.nn.mixed_precision`).
  """
  def train_step(state, batch, first_bad):
    new_state, metrics = system.train_step(state, batch)
    first_bad = jnp.where((first_bad < 0) & ~_all_finite(metrics),
                          state.step, first_bad)
    return new_state, metrics, first_bad

  train_step = mixed_precision.traced_with_grad_dtype(
      train_step, system.config.get("grad_reduce_dtype", "float32"))
  return (jax.jit(train_step, donate_argnums=0,
                  out_shardings=(state_shardings, replicated, replicated)),
          jax.jit(system.eval_step, out_shardings=replicated))


class Trainer:
  """The pieces of a run, built once; `train_and_evaluate` drives them."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    check_config(config)
    self.config = config
    self.workdir = os.fspath(workdir)
    self.mesh = mesh_lib.make_mesh(config.mesh)
    self.system = base.get_system(config)
    run_config.check_system(self.workdir, config.system)
    self.replicated = mesh_lib.replicated(self.mesh)
    self.manager = checkpoint_lib.make_manager(
        self.workdir, keep=config.keep_checkpoints,
        interval=config.checkpoint_every)

  # -- state -------------------------------------------------------------
  def restore_or_init(self, example_batch):
    """(state, step): the newest checkpoint of the workdir that restores, to
    resume training from (newer damaged ones are moved aside; `RestoreError`
    if none restores), else freshly initialised weights at step 0 when there
    is no checkpoint (to load a trained run, use
    `rsjax.systems.trained.load_run`, which never initialises)."""
    rng = jax.random.PRNGKey(self.config.seed)
    abstract = jax.eval_shape(self.system.init, rng, example_batch)
    self.state_shardings = mesh_lib.state_shardings(
        abstract, self.mesh, fsdp_min_size=self.config.get("fsdp_min_size"))
    state, step = checkpoint_lib.restore_latest(self.manager, abstract,
                                                self.state_shardings)
    if state is None:
      init = jax.jit(self.system.init, out_shardings=self.state_shardings)
      state = init(rng, example_batch)
    else:
      logging.info("resumed from step %d in %s", step, self.manager.directory)
    return state, step

  def compile_steps(self):
    self.train_step, self.eval_step = jit_steps(
        self.system, self.state_shardings, self.replicated)
    self.predict = jax.jit(self.system.predict)

  # -- evaluation ----------------------------------------------------------
  def evaluate(self, state, split: str, *, samples_path: str | None = None
               ) -> dict[str, Any]:
    """Scores of the system on `split` (every example once, padding masked)."""
    return _evaluate(self.config, self.mesh, self.system, self.eval_step,
                     self.predict, state, split, samples_path)


def evaluate(run, split: str, *, samples_path: str | None = None
             ) -> dict[str, Any]:
  """Scores of a loaded run (`rsjax.systems.trained.Run`) on `split`, with a
  PNG sample grid of its first batch at `samples_path` if given."""
  replicated = mesh_lib.replicated(run.mesh)
  return _evaluate(run.config, run.mesh, run.system,
                   jax.jit(run.system.eval_step, out_shardings=replicated),
                   jax.jit(run.system.predict), run.state, split,
                   samples_path)


def _evaluate(config, mesh, system, eval_step, predict, state, split: str,
              samples_path: str | None) -> dict[str, Any]:
  iterator = pipeline.create_iterator(config.data, mesh, train=False,
                                      split=split)
  total = iterator.num_batches
  if config.num_eval_batches is not None:
    total = min(total or config.num_eval_batches, config.num_eval_batches)
  sums = None
  try:
    with console.Progress(f"evaluating on {split}", total,
                          "batches") as progress:
      for index, batch in enumerate(iterator):
        if total is not None and index >= total:
          break
        batch_sums = eval_step(state, batch)
        sums = batch_sums if sums is None else jax.tree.map(
            jnp.add, sums, batch_sums)
        if index == 0 and samples_path:
          # Every process runs the jitted predict (a multi-host collective);
          # only process 0 draws its rows.
          prediction = predict(state, batch)
          if jax.process_index() == 0:
            host_batch = jax.tree.map(local_rows, dict(batch))
            samples_lib.save_grid(samples_path, system.panels(
                host_batch, local_rows(prediction)))
        jax.block_until_ready(sums)
        progress.update(index + 1)
  finally:
    iterator.close()
  if sums is None:
    raise ValueError(f"evaluation split {split!r} of "
                     f"{config.data.name} gave no batch")
  return system.finalize_eval(jax.device_get(sums))


def local_rows(x) -> np.ndarray:
  """This process's rows of a batch-sharded array (all rows on one host)."""
  if not isinstance(x, jax.Array) or x.is_fully_addressable:
    return np.asarray(x)
  shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
  unique = {s.index[0].start: np.asarray(s.data) for s in shards}
  return np.concatenate([unique[k] for k in sorted(unique)])


def _scalars(prefix: str, scores) -> dict[str, float]:
  return {f"{prefix}{k}": float(v) for k, v in scores.items()
          if np.ndim(v) == 0}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after: int | None = None,
                       force_unlock: bool = False) -> dict[str, Any]:
  """Trains `config.system` to `config.total_steps`, resuming from `workdir`.

  First the config's step counts and system name and the dataset are
  checked (`pipeline.check_dataset`), and a length in `config.epochs` becomes
  `config.total_steps` for the dataset's training split
  (`resolve_training_length`; the run's config.json holds the derived
  count): a step count below 1, epochs that disagree with total_steps, an
  unknown
  system, a dataset that is not built, lacks a split or holds less than one
  training batch raises before the workdir is created. A config refused
  later (an unknown network or input, a batch the mesh cannot split) leaves
  no workdir either: the folders this run made and left empty are removed.
  The run then holds the workdir's lock (`rsjax.store.workdir_lock`) from
  its start to its end, however it ends: while another live run holds it,
  this one raises `WorkdirLocked` naming that run, before it builds
  anything. A stale lock of a dead process on this host is taken over with
  a warning; `force_unlock` takes over any lock. In a multi-process run only process 0
  takes the lock (coordinating hosts is issue 22).

  `stop_after` ends this run (with a checkpoint) once that step is reached,
  as a pre-emption would; schedules still follow `config.total_steps`.
  Returns the last evaluation scores (on `config.eval_split`); raises
  `Preempted` once its checkpoint is saved if SIGTERM stopped the run.
  """
  # Before the lock, which creates the workdir: a bad step count, an unknown
  # system or a dataset that is not built or too small stops the run with
  # nothing made.
  check_config(config)
  pipeline.check_dataset(config.data, eval_split=config.eval_split,
                         num_classes=config.get("num_classes"))
  config = resolve_training_length(config)
  check_config(config)
  paths.check_reachable(workdir)
  if jax.process_index() != 0:
    return _train_and_evaluate(config, workdir, stop_after)
  made = [folder for folder in (paths.of(workdir),
                                 paths.of(workdir) / "checkpoints")
          if not folder.exists()]
  try:
    with workdir_lock.for_workdir(workdir) as lock:
      lock.acquire(force=force_unlock)
      return _train_and_evaluate(config, workdir, stop_after)
  except BaseException:
    _remove_if_empty(reversed(made))
    raise


def _remove_if_empty(folders) -> None:
  """Removes each of `folders` that is empty (never a file)."""
  for folder in folders:
    try:
      if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    except OSError:  # removed meanwhile, or not allowed
      pass


def _train_and_evaluate(config, workdir, stop_after):
  trainer = Trainer(config, workdir)
  # Made once a state is restored or initialised: a resume that finds no
  # checkpoint that restores leaves no new events file behind.
  writer = None
  latest = trainer.manager.latest_step() or 0
  logging.info(
      "%s on %s: %d steps of batch %d, %s, on %d %s device(s) %s; "
      "workdir %s", config.system, config.data.name, config.total_steps,
      config.data.batch_size, config.dtype, jax.device_count(),
      jax.devices()[0].platform, dict(trainer.mesh.shape), trainer.workdir)
  train_iter = pipeline.create_iterator(config.data, trainer.mesh, train=True,
                                        start_step=latest)
  scores: dict[str, Any] = {}
  stop = preemption.StopOnSignal()
  try:
    with console.waiting("reading the first batch and "
                         + ("restoring the newest checkpoint" if latest
                            else "initialising the networks"),
                         done="state ready"):
      first_batch = next(train_iter)
      state, step = trainer.restore_or_init(first_batch)
    if step != latest:
      # The newest checkpoint did not restore and an older one did: the data
      # resumes at that step, so its first batch is the batch of that step.
      train_iter.close()
      train_iter = pipeline.create_iterator(config.data, trainer.mesh,
                                            train=True, start_step=step)
      first_batch = next(train_iter)
    writer = writers_lib.create_writer(trainer.workdir)
    writers_lib.drop_metrics_after(trainer.workdir, step)
    trainer.compile_steps()
    run_config.save(trainer.workdir, config)
    if step == 0:
      _write_parameters(state, trainer.workdir)
      writer.write_hparams(_flat_config(config))
    # Placed as train_step returns it, so the first step runs the same
    # program as the others (no retrace, no second compile).
    first_bad = jax.device_put(jnp.array(-1, jnp.int32), trainer.replicated)
    batch = first_batch
    with console.waiting("compiling the train step",
                         done="compiled the train step"):
      # Fills jit's cache: the loop's first call runs this executable.
      trainer.train_step.lower(state, batch, first_bad).compile()
    progress = progress_lib.TrainProgress(config.total_steps)
    console_every = progress_lib.console_every(config.total_steps,
                                               config.log_every)
    with stop:
      while step < config.total_steps:
        state, metrics, first_bad = trainer.train_step(state, batch, first_bad)
        step += 1
        last = step == config.total_steps
        if stop.reached(step) or (stop_after is not None
                                  and step >= stop_after):
          stop.requested = True
        if step % config.log_every == 0 or last or stop.requested:
          _raise_if_bad(first_bad, trainer)
          scalars = _scalars("train/", jax.device_get(metrics))
          writer.write_scalars(step, scalars)
        progress.step_done(step, scalars if (
            step % console_every == 0 or last or stop.requested) else None)
        if step % config.checkpoint_every == 0 or last or stop.requested:
          _raise_if_bad(first_bad, trainer)
          checkpoint_lib.save(trainer.manager, step, state,
                              force=last or stop.requested)
          writer.flush()  # the metrics of the steps this checkpoint holds
        if stop.requested:
          logging.warning("stopped at step %d", step)
          break
        if step % config.eval_every == 0 or last:
          samples_path = os.path.join(trainer.workdir, "samples",
                                      f"step_{step:06d}.png")
          scores = trainer.evaluate(state, config.eval_split,
                                    samples_path=samples_path)
          writer.write_scalars(step, _scalars(f"{config.eval_split}/", scores))
          _write_evaluation(writer, step, config.eval_split, scores,
                            samples_path)
        if not last:
          batch = next(train_iter)
  finally:
    train_iter.close()
    trainer.manager.wait_until_finished()
    if writer is not None:
      writer.flush()
  if stop.signum is not None:
    raise preemption.Preempted(stop.signum, step, trainer.manager.directory)
  return scores


def scores_markdown(scores: dict[str, Any]) -> str:
  """A Markdown table of the scalar scores (TensorBoard's text tab)."""
  rows = [f"| {name} | {float(value):.4g} |" for name, value in scores.items()
          if np.ndim(value) == 0]
  return "\n".join(["| score | value |", "|---|---|", *rows])


def _write_evaluation(writer, step: int, split: str, scores: dict[str, Any],
                      samples_path: str) -> None:
  """The evaluation's sample grid (as written to `samples_path`) and score
  table to TensorBoard, on process 0."""
  logging.info("%s at step %d: %s", split, step, ", ".join(
      f"{k} {float(v):.4g}" for k, v in scores.items() if np.ndim(v) == 0))
  if jax.process_index() != 0:
    return
  writer.write_texts(step, {f"{split}/scores": scores_markdown(scores)})
  if paths.of(samples_path).exists():
    with paths.of(samples_path).open("rb") as file:
      image = np.asarray(Image.open(file).convert("RGB"))
    writer.write_images(step, {f"{split}/samples": image[None]})


def _raise_if_bad(first_bad, trainer: Trainer) -> None:
  bad_step = int(first_bad)
  if bad_step >= 0:
    trainer.manager.wait_until_finished()
    last_good = trainer.manager.latest_step()
    where = (f"step {last_good} in {trainer.manager.directory}"
             if last_good is not None else "none (no checkpoint was written)")
    raise NonFiniteLossError(
        f"non-finite training loss at step {bad_step + 1} (the update from "
        f"step {bad_step}); last good checkpoint: {where}")


def _write_parameters(state, workdir: str) -> None:
  """Logs each network's parameter count, and writes the table of every
  parameter (clu's overview: name, shape, size, mean, std) to
  `<workdir>/params.txt` (process 0)."""
  counts = {name: sum(int(np.size(x)) for x in jax.tree.leaves(params))
            for name, params in state.params.items()}
  logging.info("parameters: %s (table: %s)", ", ".join(
      f"{name} {count / 1e6:.3f} M" for name, count in counts.items()),
               paths.join(workdir, PARAMS_FILE))
  if jax.process_index() != 0:
    return
  from clu import parameter_overview  # pylint: disable=g-import-not-at-top
  tables = [f"{name} ({counts[name]:,} parameters)\n"
            + parameter_overview.get_parameter_overview(params)
            for name, params in state.params.items()]
  atomic.write_text(paths.join(workdir, PARAMS_FILE), "\n\n".join(tables)
                    + "\n")


def _flat_config(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config as TensorBoard hparams: dotted keys, scalar values (other
  values as text)."""
  flat = {}

  def walk(node, prefix):
    for key, value in node.items():
      if isinstance(value, (dict, ml_collections.ConfigDict)):
        walk(value, f"{prefix}{key}.")
      else:
        flat[f"{prefix}{key}"] = (value if isinstance(value, (bool, int, float,
                                                              str))
                                  else str(value))
  walk(config.to_dict(), "")
  return flat
