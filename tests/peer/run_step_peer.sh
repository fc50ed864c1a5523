#!/usr/bin/env bash
# Differential harness (issue 24): peer_step_dump takes two training steps of
# SimCLR, BYOL, RotNet and MoCo v2 and writes what it did; step_check.py
# redoes them in PyTorch from the same weights and views. Skips (exit 77) when
# no Python with torch is installed: torch is a peer, never a dependency.
set -euo pipefail
dump=$1
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
"$dump" "$dir" 2
"$py" "$here/step_check.py" "$dir" simclr byol rotnet
