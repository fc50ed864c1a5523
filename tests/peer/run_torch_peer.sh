#!/usr/bin/env bash
# Peer check: checkpoints written by ssl load into a PyTorch ResNet-18 with
# torchvision's module names (strict), and PyTorch reproduces ssl's forward.
# Skips (exit 77) when no Python with torch is installed: torch is a peer for
# checks and benchmarks, never a dependency.
set -euo pipefail
writer=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/peer_python.sh"
peer_python torch "apt-get install python3-torch to run this peer check"
"$writer" "$dir"
"$py" "$here/torch_load_check.py" "$dir/cifar.safetensors" "$dir/cifar_io.safetensors"
"$py" "$here/torch_load_check.py" "$dir/imagenet.safetensors" "$dir/imagenet_io.safetensors"
