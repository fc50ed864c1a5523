#!/usr/bin/env bash
# The main job: builds the `ssl` program and trains SimCLR (ResNet-18, width
# 16) on Fashion-MNIST on the CPU, then prints kNN and linear-probe accuracy
# next to a random-init encoder's. About 3 minutes on 2 cores after the build
# (2026-12-06, AVX-512 machine, defaults since issue 18: Winograd F(2x2), the
# projector's output batch norm): 3 epochs on 20000 training images (409
# images/s); evaluation uses 10000 labelled train images and the 10000 test
# images (measured: kNN 75.1 % vs 71.4 % at random init, linear probe 82.3 %
# vs 78.2 %). Extra arguments go to `ssl train` (e.g. --epochs 5
# --train-limit 0 --eval-limit 0 for the full recipe).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" ssl_cli
exec "$root/build/examples/ssl" train --method simclr --data fashion-mnist --epochs 3 --train-limit 20000 \
  --eval-limit 10000 --baseline --out "$root/runs/simclr" "$@"
