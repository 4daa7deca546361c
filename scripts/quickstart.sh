#!/usr/bin/env bash
# Offline quickstart (no network, a few minutes on 2 CPU cores): pretrain a MobileNet on one
# synthetic task, transfer it to another with 10 labels per class, train the same network on
# those labels from scratch, and compare. Usage: scripts/quickstart.sh [WORKDIR]
set -euo pipefail
workdir=${1:-/tmp/tftransfer_quickstart}
repo=$(cd "$(dirname "$0")/.." && pwd)
config="$repo/configs/quickstart.py"

echo "== 1/3 pretrain on textures_source (10 classes, 600 labels each) -> $workdir/source"
python -m tftransfer.train --config="$config:source" --workdir="$workdir/source"
echo "== 2/3 transfer to textures_target (5 new classes, 10 labels each) -> $workdir/transfer"
python -m tftransfer.train --config="$config:transfer" --workdir="$workdir/transfer" \
  --config.model.weights="$workdir/source/backbone.weights.h5"
echo "== 3/3 same labels, same network, from scratch -> $workdir/scratch"
python -m tftransfer.train --config="$config:scratch" --workdir="$workdir/scratch"
python "$repo/scripts/compare_runs.py" "$workdir/source" "$workdir/transfer" "$workdir/scratch"
