#!/usr/bin/env bash
# Peer check: the issue-20 layers (bilinear upsampling, layer norm, masked
# convolution, dropout) against PyTorch (tests/peer/torch_nn_layers_check.py).
# Skips (exit 77) when no Python with torch is installed.
set -euo pipefail
writer=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/peer_python.sh"
peer_python "torch" "apt-get install python3-torch to run this peer check"
"$writer" "$dir"
"$py" -W ignore "$here/torch_nn_layers_check.py" "$dir/layers.safetensors"
