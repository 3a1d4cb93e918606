"""`python -m launch.train` as a subprocess of the tests: a config file of the
tiny pix2pix run, and the process started or run with the tests' 8 simulated
devices and compilation cache. `run_launcher` runs any other launcher the
same way."""

import os
import subprocess
import sys
import time

import jax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ENV = dict(os.environ,
           PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]),
           JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="",
           JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir,
           JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
           JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
"""A `launch.train` subprocess's environment: the tests' devices and cache."""


def config_file(tmp_path, steps, **overrides):
  """A config file whose get_config is `memory_config(steps)` with
  `overrides` set."""
  path = tmp_path / "run_config.py"
  path.write_text(
      "from tiny_configs import memory_config\n"
      "def get_config(arg=None):\n"
      f"  config = memory_config(steps={steps})\n"
      + "".join(f"  config.{k} = {v!r}\n" for k, v in overrides.items())
      + "  return config\n")
  return path


def _command(config_path, workdir, flags):
  return [sys.executable, "-m", "launch.train", f"--config={config_path}",
          f"--workdir={workdir}", *flags]


def start(config_path, workdir, *flags, **popen_kwargs) -> subprocess.Popen:
  """Starts `launch.train` on `config_path` and `workdir`."""
  return subprocess.Popen(_command(config_path, workdir, flags), cwd=ROOT,
                          env=ENV, text=True, **popen_kwargs)


def run(config_path, workdir, *flags, timeout=600
        ) -> subprocess.CompletedProcess:
  """Runs `launch.train` to its end, its stdout and stderr captured."""
  return _run(_command(config_path, workdir, flags), timeout)


def run_launcher(module, *args, timeout=600) -> subprocess.CompletedProcess:
  """Runs `python -m <module> <args>` (e.g. launch.evaluate) to its end, its
  stdout and stderr captured."""
  return _run([sys.executable, "-m", module, *map(str, args)], timeout)


def _run(command, timeout) -> subprocess.CompletedProcess:
  return subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True,
                        text=True, timeout=timeout)


def start_and_wait(config_path, workdir, *, logged_steps, timeout=300
                   ) -> subprocess.Popen:
  """Starts `launch.train` (stderr piped) and returns once its metrics.jsonl
  holds `logged_steps` training lines, or once it ends or `timeout` passes
  (the caller checks that it still runs)."""
  process = start(config_path, workdir, stdout=subprocess.DEVNULL,
                  stderr=subprocess.PIPE)
  metrics_file = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + timeout
  while process.poll() is None and time.time() < deadline:
    if (os.path.exists(metrics_file)
        and open(metrics_file).read().count("train/") >= logged_steps):
      break
    time.sleep(0.02)
  return process
