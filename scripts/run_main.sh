#!/usr/bin/env bash
# The main job: builds the `ssl` program and trains SimCLR (ResNet-18, width
# 16) on Fashion-MNIST on the CPU, then prints kNN and linear-probe accuracy
# next to a random-init encoder's. A few minutes on 2 cores: 1 epoch on 20000
# training images; evaluation uses 10000 labelled train images and the 10000
# test images. Extra arguments go to `ssl train` (e.g. --epochs 5
# --train-limit 0 --eval-limit 0 for the full recipe).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" ssl_cli
exec "$root/build/examples/ssl" train --method simclr --data fashion-mnist --epochs 1 --train-limit 20000 \
  --eval-limit 10000 --baseline --out "$root/runs/simclr" "$@"
