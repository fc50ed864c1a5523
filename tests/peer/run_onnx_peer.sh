#!/usr/bin/env bash
# Peer check: ssl's ONNX export (include/ssl/io/onnx.hpp) passes onnx's
# checker and runs in ONNX Runtime (and OpenCV's dnn module, when
# python3-opencv is installed) to ssl's features (tests/peer/onnx_runtime_check.py).
# Skips (exit 77) when no Python has numpy and onnxruntime or cv2:
# SSL_WITH_PEERS=1 scripts/setup.sh installs onnx and onnxruntime into
# .peer-venv (what CI does); SSL_ONNX_PYTHON picks another Python.
set -euo pipefail
writer=$1
here=$(cd "$(dirname "$0")" && pwd)
py=""
for cand in "${SSL_ONNX_PYTHON:-}" "$here/../../.peer-venv/bin/python" /usr/bin/python3 python3; do
  [ -n "$cand" ] || continue
  if command -v "$cand" >/dev/null && "$cand" -c "import numpy, importlib.util as u, sys
sys.exit(0 if u.find_spec('onnxruntime') or u.find_spec('cv2') else 1)" 2>/dev/null; then py=$cand; break; fi
done
if [ -z "$py" ]; then
  echo "SKIP: no python3 with numpy and onnxruntime or cv2 (SSL_WITH_PEERS=1 scripts/setup.sh installs onnxruntime into .peer-venv; or apt-get install python3-opencv)"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$writer" "$dir"
"$py" "$here/onnx_runtime_check.py" "$dir"
