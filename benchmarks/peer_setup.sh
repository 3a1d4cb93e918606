#!/usr/bin/env bash
# Sets up the PyTorch original (NVlabs/SPADE) beside rsjax for
# benchmarks/peer_spade_step.py. Nothing here is committed: peers/ is ignored.
#
#   bash benchmarks/peer_setup.sh /path/to/SPADE [cpu|gpu]
#
# Given a checkout of https://github.com/NVlabs/SPADE (any recent commit; the
# comparison in BENCHMARKS.md used fecacc9), it
#   1. copies models/ options/ util/ data/ trainers/ into peers/SPADE,
#   2. makes a venv peers/venv with torch, torchvision, dill and pillow from
#      PyPI ('cpu' tries PyTorch's CPU wheel index first, which is much
#      smaller; on a GPU machine whose Python already has torch, use
#      PEER_PYTHON=python3 to skip the venv),
#   3. replaces the `sync_batchnorm` submodule (not vendored in the repo) by
#      plain nn.BatchNorm2d and nn.DataParallel (one device),
#   4. lets `conv_img` output `--output_nc` channels instead of a hard-coded 3
#      (rsjax predicts the 4 S2 bands; at --output_nc 3 it is the original).
set -euo pipefail

src=${1:?usage: peer_setup.sh /path/to/SPADE [cpu|gpu]}
kind=${2:-cpu}
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/peers/SPADE"

mkdir -p "$root/peers"
rm -rf "$dest"
mkdir -p "$dest"
for part in models options util data trainers LICENSE.md; do
  cp -r "$src/$part" "$dest/"
done

mkdir -p "$dest/models/networks/sync_batchnorm"
cat > "$dest/models/networks/sync_batchnorm/__init__.py" <<'EOF'
# Stand-in for vacancy/Synchronized-BatchNorm-PyTorch on one device.
import torch.nn as nn
SynchronizedBatchNorm2d = nn.BatchNorm2d
DataParallelWithCallback = nn.DataParallel
EOF

sed -i 's/self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)/self.conv_img = nn.Conv2d(final_nc, opt.output_nc, 3, padding=1)/' \
  "$dest/models/networks/generator.py"
grep -q "opt.output_nc, 3, padding=1" "$dest/models/networks/generator.py" \
  || { echo "conv_img patch did not apply" >&2; exit 1; }

if [[ -z "${PEER_PYTHON:-}" ]]; then
  python3 -m venv "$root/peers/venv"
  pip="$root/peers/venv/bin/pip"
  if [[ "$kind" == cpu ]]; then
    "$pip" install torch torchvision --index-url https://download.pytorch.org/whl/cpu \
      || "$pip" install torch torchvision
  else
    "$pip" install torch torchvision
  fi
  "$pip" install dill pillow numpy
  echo "peer python: $root/peers/venv/bin/python"
fi
