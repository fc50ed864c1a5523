#!/usr/bin/env bash
# Differential harness (issue 24): peer_step_dump takes two training steps of
# SimCLR, BYOL, RotNet, MoCo v2 and Jigsaw and writes what it did; step_check.py
# redoes them in PyTorch from the same weights and views. Skips (exit 77)
# without a Python with torch: torch is a peer, never a dependency.
set -euo pipefail
dump=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/peer_python.sh"
peer_python torch "apt-get install python3-torch to run this peer check"
"$dump" "$dir" --steps 2
"$py" "$here/step_check.py" "$dir" simclr byol rotnet moco jigsaw
