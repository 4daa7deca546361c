#!/usr/bin/env bash
# Serves an export directory (the --export_dir of tftransfer-export) with TensorFlow Serving in
# docker: REST on :8501, gRPC on :8500, the newest version loaded and new versions picked up as
# they appear, warmed up from each version's assets.extra. Needs a docker engine.
# Usage: scripts/serve_docker.sh EXPORT_DIR [MODEL_NAME]   (MODEL_NAME defaults to the folder name)
set -euo pipefail
export_dir=$(cd "${1:?usage: scripts/serve_docker.sh EXPORT_DIR [MODEL_NAME]}" && pwd)
name=${2:-$(basename "$export_dir")}
exec docker run --rm -p 8500:8500 -p 8501:8501 -v "$export_dir:/models/$name:ro" -e MODEL_NAME="$name" tensorflow/serving
