"""launch/tpu_pod.sh and launch/gpu_slurm.sh (issue 22), run with the cluster
commands (gcloud, srun) replaced by stand-ins that record their arguments:
each script asks for what a pod needs (the repository copied to every
worker, the `tpu` extra installed there, the same `launch.train` on every
worker or task with --distributed and the user's flags), and the command a
worker would run is valid: it parses as shell, and its `launch.train` flags
and config parse (an unknown flag or config key fails here as on the pod).
"""

import json
import os
import shlex
import stat
import subprocess
import sys

import train_processes

ROOT = train_processes.ROOT

# Records its arguments as one JSON line in $STAND_IN_LOG and succeeds.
_STAND_IN = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["STAND_IN_LOG"], "a") as log:
  log.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
"""


def _run_script(tmp_path, script, *args, env=None):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir(exist_ok=True)
  for name in ("gcloud", "srun"):
    stand_in = bin_dir / name
    stand_in.write_text(_STAND_IN)
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
  log = tmp_path / "calls.jsonl"
  result = subprocess.run(
      ["bash", os.path.join(ROOT, "launch", script), *args], cwd=tmp_path,
      env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}",
               STAND_IN_LOG=str(log), **(env or {})),
      capture_output=True, text=True, timeout=60)
  assert result.returncode == 0, result.stderr
  return [json.loads(line) for line in log.read_text().splitlines()]


def _parse_train_flags(argv) -> subprocess.CompletedProcess:
  """Parses `python -m launch.train ARGV`'s flags (config file included)
  from the repository root, as the worker runs it from its copy."""
  check = ("import sys; from absl import flags; from launch import train; "
           "flags.FLAGS(['launch.train'] + sys.argv[1:]); print('parsed')")
  return subprocess.run([sys.executable, "-c", check, *argv], cwd=ROOT,
                        env=train_processes.ENV, capture_output=True,
                        text=True, timeout=120)


def _assert_train_flags_parse(argv):
  result = _parse_train_flags(argv)
  assert result.stdout.strip() == "parsed", result.stderr[-2000:]


def _after_module(words, module="launch.train"):
  index = words.index(module)
  assert words[index - 1] == "-m"
  return words[index + 1:]


def test_tpu_pod_copies_installs_and_trains_on_every_worker(tmp_path):
  calls = _run_script(tmp_path, "tpu_pod.sh", "my-tpu", "us-central2-b",
                      "configs/pix2pix.py:demo", "gs://bucket/pix2pix",
                      "--config.total_steps=7")
  assert [c[:5] for c in calls] == [
      ["gcloud", "compute", "tpus", "tpu-vm", "scp"],
      ["gcloud", "compute", "tpus", "tpu-vm", "ssh"]]
  scp, ssh = calls
  assert "--worker=all" in scp and "--worker=all" in ssh
  assert scp[-2:] == [ROOT, "my-tpu:~/rsjax"]
  assert ssh[5] == "my-tpu" and ssh[ssh.index("--zone") + 1] == "us-central2-b"
  command = ssh[ssh.index("--command") + 1]
  assert subprocess.run(["bash", "-n", "-c", command]).returncode == 0
  lines = [shlex.split(l) for l in command.splitlines() if l.strip()]
  assert ["cd", "~/rsjax"] in lines
  install = next(l for l in lines if "install" in l)
  assert ".[tpu]" in install and "-e" in install
  train = next(l for l in lines if "launch.train" in l)
  flags = _after_module(train)
  assert flags == ["--config", "configs/pix2pix.py:demo", "--workdir",
                   "gs://bucket/pix2pix", "--distributed",
                   "--config.total_steps=7"]
  _assert_train_flags_parse(flags)


def test_gpu_slurm_runs_launch_train_in_every_task(tmp_path):
  calls = _run_script(tmp_path, "gpu_slurm.sh", "configs/rs_spade.py:demo",
                      "/shared/rs_spade", "--config.data.batch_size=16",
                      env={"SLURM_SUBMIT_DIR": ROOT})
  [srun] = calls
  assert srun[0] == "srun" and "--kill-on-bad-exit=1" in srun
  assert srun[srun.index("-m") - 1] == ".venv/bin/python"
  flags = _after_module(srun)
  assert flags == ["--config", "configs/rs_spade.py:demo", "--workdir",
                   "/shared/rs_spade", "--distributed",
                   "--config.data.batch_size=16"]
  _assert_train_flags_parse(flags)


def test_a_misspelt_flag_fails_the_check():
  """The check above can fail: what the pod would refuse, it refuses."""
  result = _parse_train_flags(["--config", "configs/pix2pix.py:demo",
                               "--workdir", "w", "--distributd"])
  assert result.returncode != 0 and "distributd" in result.stderr
