"""The training loop on 8 simulated devices: end to end on the synthetic
dataset, exact resume, SIGTERM (exit status 143, the workdir's lock
released), metrics logged once across a resume, non-finite losses and config
errors. The workdir lock is tests/train/test_trainer_lock.py."""

import json
import os
import re
import signal
import threading
import time

import jax
import numpy as np
import pytest

from rsjax.systems import base
from rsjax.systems import trained
from rsjax.train import preemption
from rsjax.train import trainer
from rsjax.train import writers
from tiny_configs import memory_config, tiny_rs_spade
import run_results
import tensorboard_events
import train_processes


def _params(workdir, config):
  """The newest checkpoint's params, restored on the host."""
  run = trained.load_run(workdir, config=config)
  state, step = run.state, run.step
  return step, jax.tree.map(np.asarray, jax.device_get(
      (state.params, state.opt_state, state.batch_stats, state.rng)))


@pytest.mark.slow
def test_end_to_end_on_the_synthetic_dataset(tmp_path, synthetic_tiny, devices):
  config = tiny_rs_spade(synthetic_tiny)
  config.eval_every = 2
  scores = trainer.train_and_evaluate(config, str(tmp_path))
  assert set(scores) == {"psnr", "ssim", "sam"}
  assert all(np.isfinite(v) for v in scores.values())
  lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  logged = [l for l in lines if "train/g_loss" in l]
  assert [l["step"] for l in logged] == [1, 2]
  assert any("validation/psnr" in l for l in lines)
  assert (tmp_path / "samples" / "step_000002.png").exists()
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  # The parameter table goes to params.txt, one section per network.
  params = (tmp_path / trainer.PARAMS_FILE).read_text()
  for network in ("generator", "discriminator"):
    assert re.search(rf"^{network} \([\d,]+ parameters\)$", params, re.M)
  # TensorBoard: the sample grid as an image and the scores as text at the
  # evaluation step, the whole config (nested keys too) as hparams.
  tags = tensorboard_events.tags(tmp_path)
  assert {"validation/samples", "validation/scores"} <= tags[2]
  assert "data.batch_size" in tags["hparams"]



def test_resume_after_a_process_restart_is_exact(tmp_path, devices):
  """6 steps straight == 3 steps, then a new `launch.train` process for 3."""
  straight = memory_config(steps=6)
  trainer.train_and_evaluate(straight, str(tmp_path / "straight"))
  resumed = str(tmp_path / "resumed")
  trainer.train_and_evaluate(memory_config(steps=6), resumed, stop_after=3)
  assert sorted(os.listdir(tmp_path / "resumed" / "checkpoints")) == ["1", "2", "3"]
  config_file = train_processes.config_file(tmp_path, 6)
  result = train_processes.run(config_file, resumed)
  assert result.returncode == 0, result.stderr[-3000:]
  step_a, a = _params(str(tmp_path / "straight"), straight)
  step_b, b = _params(resumed, straight)
  assert step_a == step_b == 6
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7),
               a, b)


def _checkpoints(workdir):
  return sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))
                if s.isdigit())


def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path, devices):
  """`launch.train` sent SIGTERM saves, exits 143 (not 0, which a scheduler
  takes for finished); its checkpoint restores, and the rerun resumes there
  and exits 0 when it finishes."""
  workdir = str(tmp_path / "run")
  config_file = train_processes.config_file(tmp_path, 10_000,
                                            checkpoint_every=10_000)
  process = train_processes.start_and_wait(config_file, workdir,
                                           logged_steps=2)
  try:
    assert process.poll() is None, process.stderr.read()[-3000:]
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
  finally:
    if process.poll() is None:
      process.kill()
  assert process.returncode == 143, stderr[-3000:]
  assert "stopped by signal 15" in stderr
  assert not os.path.exists(os.path.join(workdir, "LOCK"))   # released
  [stopped_at] = _checkpoints(workdir)
  assert 2 <= stopped_at < 10_000
  config = memory_config(steps=10_000)
  step, _ = _params(workdir, config)
  assert step == stopped_at
  assert [l["step"] for l in run_results.train_lines(workdir)] == list(
      range(1, stopped_at + 1))

  # The requeued run (here shortened to one more step) resumes and exits 0.
  result = train_processes.run(config_file, workdir,
                               f"--config.total_steps={stopped_at + 1}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert _checkpoints(workdir) == [stopped_at, stopped_at + 1]
  assert f"resumed from step {stopped_at}" in result.stderr


def test_sigterm_in_process_raises_preempted_after_saving(tmp_path, devices):
  config = memory_config(steps=10_000)
  config.checkpoint_every = 10_000
  metrics_file = tmp_path / "metrics.jsonl"

  def send_sigterm_after_two_steps():
    deadline = time.time() + 300
    while time.time() < deadline:
      if metrics_file.exists() and metrics_file.read_text().count("train/") >= 2:
        os.kill(os.getpid(), signal.SIGTERM)
        return
      time.sleep(0.05)

  thread = threading.Thread(target=send_sigterm_after_two_steps, daemon=True)
  thread.start()
  with pytest.raises(preemption.Preempted, match="stopped by signal 15") as stopped:
    trainer.train_and_evaluate(config, str(tmp_path))
  thread.join()
  assert stopped.value.exit_status == 143
  assert not (tmp_path / "LOCK").exists()   # released
  assert _checkpoints(tmp_path) == [stopped.value.step]
  assert 2 <= stopped.value.step < 10_000


def test_a_resumed_run_logs_each_step_once(tmp_path, devices):
  """Steps a killed run logged after its last checkpoint are dropped when
  the next run resumes: that run logs them again, with its own values."""
  straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
  trainer.train_and_evaluate(memory_config(steps=6), straight)
  trainer.train_and_evaluate(memory_config(steps=6), killed, stop_after=3)
  assert _checkpoints(killed) == [1, 2, 3]
  # What a run killed after checkpoint 3 leaves: steps 4 and 5 logged (here
  # with values no run computes), step 6's line cut short mid-write.
  with open(os.path.join(killed, "metrics.jsonl"), "a") as f:
    for step in (4, 5):
      f.write(json.dumps({"step": step, "train/g_loss": -1.0}) + "\n")
    f.write('{"step": 6, "train/g_lo')
  trainer.train_and_evaluate(memory_config(steps=6), killed)
  assert [l["step"] for l in run_results.train_lines(killed)] == [
      1, 2, 3, 4, 5, 6]
  assert run_results.train_lines(killed) == run_results.train_lines(straight)
  with open(os.path.join(killed, "metrics.jsonl")) as f:
    lines = [json.loads(line) for line in f]     # every line is JSON again
  assert sum("hparams" in l for l in lines) == 1


def test_drop_metrics_after_keeps_steps_up_to_the_restored_one(tmp_path):
  path = tmp_path / "metrics.jsonl"
  rows = [{"hparams": {"seed": "0"}}] + [
      {"step": s, "train/loss": float(s)} for s in (1, 2, 3, 4)] + [
      {"step": 2, "validation/psnr": 20.0}]
  text = "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 5, "tr'
  path.write_text(text)
  assert writers.drop_metrics_after(str(tmp_path), 2) == 3  # 3, 4, cut line
  assert [json.loads(l) for l in path.read_text().splitlines()] == [
      rows[0], rows[1], rows[2], rows[5]]
  assert writers.drop_metrics_after(str(tmp_path), 2) == 0
  # A run from scratch (no checkpoint) writes its own hparams and steps.
  assert writers.drop_metrics_after(str(tmp_path), 0) == 4
  assert path.read_text() == ""
  assert writers.drop_metrics_after(str(tmp_path / "none"), 3) == 0


def test_a_remote_metrics_file_is_uploaded_at_intervals_and_on_flush(
    tmp_path, monkeypatch):
  """An object store cannot append, so a remote metrics.jsonl is uploaded
  whole: not at every line, but once `upload_every_s` has passed since the
  last upload, and on flush/close. The local file stands in for the remote
  object (the writer takes every path for remote here); the clock is a
  counter the test moves."""
  monkeypatch.setattr(writers.paths, "is_remote", lambda path: True)
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 1, "train/loss": 1.0}\n')  # a resumed run's
  now = [0.0]
  writer = writers.JsonLinesWriter(str(path), upload_every_s=60.0,
                                   clock=lambda: now[0])

  def steps():
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]

  writer.write_scalars(2, {"train/loss": 2.0})
  now[0] = 59.0
  writer.write_scalars(3, {"train/loss": 3.0})
  assert steps() == [1]                  # nothing uploaded within a minute
  now[0] = 60.0
  writer.write_scalars(4, {"train/loss": 4.0})
  assert steps() == [1, 2, 3, 4]         # the minute passed: all of it
  now[0] = 61.0
  writer.write_scalars(5, {"train/loss": 5.0})
  assert steps() == [1, 2, 3, 4]
  writer.flush()
  assert steps() == [1, 2, 3, 4, 5]
  writer.write_scalars(6, {"train/loss": 6.0})
  writer.close()
  assert steps() == [1, 2, 3, 4, 5, 6]


class _NaNAfter:
  """Wraps a system so its loss turns NaN from a given update on."""

  def __init__(self, system, bad_step):
    self._system, self._bad_step = system, bad_step

  def __getattr__(self, name):
    return getattr(self._system, name)

  def train_step(self, state, batch):
    new_state, metrics = self._system.train_step(state, batch)
    poison = jax.numpy.where(state.step >= self._bad_step, jax.numpy.nan, 0.0)
    metrics = dict(metrics, g_loss=metrics["g_loss"] + poison)
    return new_state, metrics


def test_non_finite_loss_names_the_step_and_last_good_checkpoint(
    tmp_path, monkeypatch, devices):
  get_system = base.get_system
  monkeypatch.setattr(base, "get_system",
                      lambda config: _NaNAfter(get_system(config), bad_step=2))
  config = memory_config(steps=6)
  with pytest.raises(trainer.NonFiniteLossError,
                     match=r"at step 3 .*last good checkpoint: step 2"):
    trainer.train_and_evaluate(config, str(tmp_path))
  saved = sorted(int(s) for s in os.listdir(tmp_path / "checkpoints") if s.isdigit())
  assert saved == [1, 2]
