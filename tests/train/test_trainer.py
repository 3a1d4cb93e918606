"""The training loop on 8 simulated devices: end to end on the synthetic
dataset, exact resume, SIGTERM, non-finite losses and config errors."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

from rsjax.systems import base
from rsjax.systems import trained
from rsjax.train import trainer
from tiny_configs import memory_config, tiny_rs_spade

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


def test_resume_after_a_process_restart_is_exact(tmp_path, devices):
  """6 steps straight == 3 steps, then a new `launch.train` process for 3."""
  straight = memory_config(steps=6)
  trainer.train_and_evaluate(straight, str(tmp_path / "straight"))
  resumed = str(tmp_path / "resumed")
  trainer.train_and_evaluate(memory_config(steps=6), resumed, stop_after=3)
  assert sorted(os.listdir(tmp_path / "resumed" / "checkpoints")) == ["1", "2", "3"]
  config_file = tmp_path / "restart_config.py"
  config_file.write_text(
      "from tiny_configs import memory_config\n"
      "def get_config(arg=None):\n  return memory_config(steps=6)\n")
  env = dict(os.environ,
             PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]),
             JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="",
             JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  result = subprocess.run(
      [sys.executable, "-m", "launch.train", f"--config={config_file}",
       f"--workdir={resumed}"], cwd=ROOT, env=env, capture_output=True,
      text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  step_a, a = _params(str(tmp_path / "straight"), straight)
  step_b, b = _params(resumed, straight)
  assert step_a == step_b == 6
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7),
               a, b)


def test_sigterm_saves_a_checkpoint_and_returns(tmp_path, devices):
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
  trainer.train_and_evaluate(config, str(tmp_path))
  thread.join()
  saved = [int(s) for s in os.listdir(tmp_path / "checkpoints") if s.isdigit()]
  assert len(saved) == 1 and 2 <= saved[0] < 10_000


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


@pytest.mark.parametrize("change,match", [
    (lambda c: setattr(c, "system", "nope"), "config.system: unknown system"),
    (lambda c: setattr(c.model, "generator", "nope"), "unknown generator 'nope'"),
    (lambda c: setattr(c.data, "batch_size", 12), "batch_size=12 .*8 devices"),
    (lambda c: setattr(c, "inputs", ("s1", "radar")), "radar"),
    (lambda c: setattr(c.data, "tile_size", 48), "divisible by 32"),
    (lambda c: setattr(c, "total_steps", 0), "config.total_steps"),
])
def test_bad_configs_fail_at_start_with_the_key(tmp_path, change, match, devices):
  config = memory_config()
  change(config)
  with pytest.raises((ValueError, KeyError), match=match):
    trainer.train_and_evaluate(config, str(tmp_path))
