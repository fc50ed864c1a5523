#!/usr/bin/env bash
# Peer check: checkpoints written by ssl load into a PyTorch ResNet-18 with
# torchvision's module names (strict), and PyTorch reproduces ssl's forward.
# Skips (exit 77) when no Python with torch is installed: torch is a peer for
# checks and benchmarks, never a dependency.
set -euo pipefail
writer=$1
here=$(cd "$(dirname "$0")" && pwd)
py=""
for cand in /usr/bin/python3 python3; do
  if command -v "$cand" >/dev/null && "$cand" -c "import torch" 2>/dev/null; then py=$cand; break; fi
done
if [ -z "$py" ]; then
  echo "SKIP: no python3 with torch (apt-get install python3-torch to run this peer check)"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$writer" "$dir"
"$py" "$here/torch_load_check.py" "$dir/cifar.safetensors" "$dir/cifar_io.safetensors"
"$py" "$here/torch_load_check.py" "$dir/imagenet.safetensors" "$dir/imagenet_io.safetensors"
