#!/usr/bin/env bash
# Peer check: ssl's VGG-BN (torchvision's vgg*_bn features, strict names),
# ResNet v2 and RevNet reproduce PyTorch's forward in eval and train mode
# (tests/peer/torch_backbone_check.py). Skips (exit 77) without a Python that
# has torch and torchvision; SSL_TORCH_PYTHON picks one.
set -euo pipefail
writer=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/peer_python.sh"
peer_python "torch, torchvision" "apt-get install python3-torchvision, or set SSL_TORCH_PYTHON" \
  "${SSL_TORCH_PYTHON:-}" "$here/../../.peer-venv/bin/python"
"$writer" "$dir"
"$py" "$here/torch_backbone_check.py" "$dir"
