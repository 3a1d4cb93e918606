#!/usr/bin/env bash
# Train an rsjax config on a multi-node GPU cluster with SLURM: one process per
# GPU; jax.distributed.initialize() reads the SLURM environment.
#
#   sbatch --nodes=2 --gpus-per-node=8 launch/gpu_slurm.sh configs/rs_spade.py /shared/workdirs/rs_spade [flags...]
#
# Install first on the shared filesystem: python3 -m venv .venv && .venv/bin/pip install -e '.[cuda]'
#SBATCH --job-name=rsjax
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=8
#SBATCH --signal=TERM@120
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: sbatch [options] $0 CONFIG WORKDIR [flags...]" >&2
  exit 2
fi
config=$1 workdir=$2
shift 2
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
# SLURM sends SIGTERM to every task 120 s before the time limit; each process
# then saves a checkpoint and exits with status 143, and resubmitting the same
# command resumes from the workdir. The processes stop after the same step even
# when the signal reaches them between different steps (JAX's preemption sync
# service; rsjax/train/preemption.py).
srun --kill-on-bad-exit=1 .venv/bin/python -m launch.train \
  --config "$config" --workdir "$workdir" --distributed "$@"
