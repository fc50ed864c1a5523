#!/usr/bin/env bash
# The main job: builds ssl and trains a ResNet-18 backbone on synthetic images,
# printing the loss as it falls and the held-out accuracy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" train_backbone
exec "$root/build/examples/train_backbone" "$@"
