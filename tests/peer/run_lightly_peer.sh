#!/usr/bin/env bash
# Peer check: ssl's NT-Xent, BYOL and MoCo losses and gradients against
# lightly's (tests/peer/lightly_loss_check.py). Skips (exit 77) when no Python
# with lightly is found: lightly is a peer for checks, never a dependency.
# Install it beside the system torch (the check's docstring says how):
#   /usr/bin/python3 -m venv --system-site-packages VENV && VENV/bin/pip install --no-deps lightly
# and point SSL_LIGHTLY_PYTHON at VENV/bin/python.
set -euo pipefail
writer=$1
here=$(cd "$(dirname "$0")" && pwd)
py=""
for cand in "${SSL_LIGHTLY_PYTHON:-}" /usr/bin/python3 python3 /work/lightly-venv/bin/python; do
  [ -n "$cand" ] || continue
  if command -v "$cand" >/dev/null && "$cand" -c "import torch, lightly.loss" 2>/dev/null; then py=$cand; break; fi
done
if [ -z "$py" ]; then
  echo "SKIP: no python3 with torch and lightly (see tests/peer/lightly_loss_check.py for installing lightly)"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$writer" "$dir"
"$py" -W ignore "$here/lightly_loss_check.py" "$dir/losses.safetensors"
