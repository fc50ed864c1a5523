#!/usr/bin/env bash
# Peer check: ssl's NT-Xent, BYOL and MoCo losses and gradients against
# lightly's (tests/peer/lightly_loss_check.py). Skips (exit 77) when no Python
# with lightly is found. Install it beside the system torch (the check's
# docstring says how) and point SSL_LIGHTLY_PYTHON at that Python, or let
# SSL_WITH_PEERS=1 scripts/setup.sh make .peer-venv (what CI does).
set -euo pipefail
writer=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/peer_python.sh"
peer_python "torch, lightly.loss" "see tests/peer/lightly_loss_check.py for installing lightly" \
  "${SSL_LIGHTLY_PYTHON:-}" "$here/../../.peer-venv/bin/python"
"$writer" "$dir"
"$py" -W ignore "$here/lightly_loss_check.py" "$dir/losses.safetensors"
