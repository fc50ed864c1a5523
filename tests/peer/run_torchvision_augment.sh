#!/usr/bin/env bash
# Peer check: ssl::augment's ops against torchvision on fixed parameters and
# over many random draws (tests/peer/torchvision_augment_check.py).
# Skips (exit 77) when no Python with torch and torchvision is installed:
# torchvision is a peer for checks, never a dependency
# (apt-get install python3-torchvision).
set -euo pipefail
writer=$1
here=$(cd "$(dirname "$0")" && pwd)
py=""
for cand in /usr/bin/python3 python3; do
  if command -v "$cand" >/dev/null && "$cand" -c "import torch, torchvision" 2>/dev/null; then py=$cand; break; fi
done
if [ -z "$py" ]; then
  echo "SKIP: no python3 with torch and torchvision (apt-get install python3-torchvision to run this peer check)"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$writer" "$dir"
"$py" -W ignore "$here/torchvision_augment_check.py" "$dir"
