#!/usr/bin/env bash
# Peer check: ssl::augment's ops against torchvision on fixed parameters and
# over many random draws (tests/peer/torchvision_augment_check.py).
# Skips (exit 77) when no Python with torch and torchvision is installed.
set -euo pipefail
writer=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/peer_python.sh"
peer_python "torch, torchvision" "apt-get install python3-torchvision to run this peer check"
"$writer" "$dir"
"$py" -W ignore "$here/torchvision_augment_check.py" "$dir"
