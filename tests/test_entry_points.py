"""The installed commands (pyproject.toml's [project.scripts]) and
`python -m launch.<name>`, run from folders that are not the repository root,
with nothing of it on PYTHONPATH (issue 20): each shows its own help; a
config is found by name; a tiny run trains in one folder, its config.json
names the data_dir it was given relative as an absolute path, and
`rsjax-evaluate` scores it from another folder.
"""

import json
import os
import subprocess
import sys

import pytest

import train_processes

BIN = os.path.dirname(sys.executable)
ENV = {k: v for k, v in train_processes.ENV.items() if k != "PYTHONPATH"}
TINY_CONFIGS = os.path.join(train_processes.ROOT, "tests", "tiny_configs.py")


def _run(command: str, *args, cwd, timeout=120) -> subprocess.CompletedProcess:
  """Runs the installed `command` (or `python` for this Python) in `cwd`."""
  path = sys.executable if command == "python" else os.path.join(BIN, command)
  assert os.path.exists(path), (
      f"{path} is not installed: pip install -e '.[test,tfds-cli]'")
  return subprocess.run([path, *map(str, args)], cwd=cwd, env=ENV,
                        capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("command, args, flag", [
    ("rsjax-train", ["--helpshort"], "--workdir"),
    ("rsjax-evaluate", ["--helpshort"], "--num_batches"),
    ("rsjax-infer", ["--helpshort"], "--scene"),
    ("rsjax-compile", ["--helpshort"], "--topology"),
    ("rsjax-demo", ["--help"], "--fresh"),
    ("python", ["-m", "launch.train", "--helpshort"], "--workdir"),
])
def test_each_command_shows_its_help_from_another_folder(tmp_path, command,
                                                         args, flag):
  result = _run(command, *args, cwd=tmp_path)
  assert f"  {flag}" in result.stdout, result.stdout + result.stderr
  assert "Traceback" not in result.stderr


def test_a_config_is_found_by_name_from_another_folder(tmp_path):
  """The name resolves (a wrong value of a key is what is refused)."""
  result = _run("rsjax-train", "--config", "rs_spade:demo", "--workdir", "run",
                "--config.num_eval_batches=four", cwd=tmp_path)
  assert result.returncode == 1
  assert result.stderr.startswith(
      "FATAL Flags parsing error: flag --config.num_eval_batches=four: "), (
          result.stderr)
  assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_run_trains_in_one_folder_and_is_evaluated_from_another(
    tmp_path, synthetic_tiny):
  here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
  here.mkdir()
  elsewhere.mkdir()
  data_dir = os.path.relpath(synthetic_tiny, here)
  # A config file of the user's own, beside the run: the tests' tiny RS-SPADE
  # (its programs are in the tests' compilation cache).
  (here / "my_config.py").write_text(
      "import importlib.util\n"
      f"_spec = importlib.util.spec_from_file_location('tiny_configs', "
      f"{TINY_CONFIGS!r})\n"
      "tiny_configs = importlib.util.module_from_spec(_spec)\n"
      "_spec.loader.exec_module(tiny_configs)\n\n"
      "def get_config(arg=None):\n"
      f"  config = tiny_configs.tiny_rs_spade({data_dir!r}, steps=1)\n"
      "  config.num_eval_batches = 1\n"
      "  return config\n")
  trained = _run("rsjax-train", "--config", "my_config.py", "--workdir", "run",
                 cwd=here, timeout=600)
  assert trained.returncode == 0, trained.stderr[-3000:]
  saved = json.loads((here / "run" / "config.json").read_text())
  assert saved["data"]["data_dir"] == os.path.normpath(synthetic_tiny)

  evaluated = _run("rsjax-evaluate", "--workdir", here / "run", "--num_batches",
                   1, "--nosamples", "--nocurves", cwd=elsewhere, timeout=600)
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  scores = json.loads((here / "run" / "eval" / "scores_test.json").read_text())
  assert scores
