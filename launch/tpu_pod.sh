#!/usr/bin/env bash
# Train an rsjax config on every worker of a Cloud TPU VM pod slice.
#
#   launch/tpu_pod.sh TPU_NAME ZONE configs/rs_spade.py gs://BUCKET/rs_spade [extra flags]
#
# The repo is copied to every worker, installed there, and the same command runs
# on all workers at once; jax.distributed.initialize() finds the slice by itself.
# The dataset must be readable by every worker (e.g. --config.data.data_dir=gs://...).
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 TPU_NAME ZONE CONFIG WORKDIR [flags...]" >&2
  exit 2
fi
tpu=$1 zone=$2 config=$3 workdir=$4
shift 4
repo=$(cd "$(dirname "$0")/.." && pwd)

gcloud compute tpus tpu-vm scp --recurse --zone "$zone" --worker=all \
  "$repo" "$tpu":~/rsjax
gcloud compute tpus tpu-vm ssh "$tpu" --zone "$zone" --worker=all --command "
  set -e
  cd ~/rsjax
  python3 -m venv .venv
  .venv/bin/pip install -q -e '.[tpu]'
  .venv/bin/python -m launch.train --config $config --workdir $workdir --distributed $*
"
