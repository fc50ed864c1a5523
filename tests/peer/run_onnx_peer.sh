#!/usr/bin/env bash
# Peer check: ssl's ONNX export (include/ssl/io/onnx.hpp) passes onnx's
# checker and runs in ONNX Runtime (and OpenCV's dnn module, when
# python3-opencv is installed) to ssl's features (tests/peer/onnx_runtime_check.py).
# Skips (exit 77) when no Python has numpy and onnxruntime:
# SSL_WITH_PEERS=1 scripts/setup.sh installs onnx and onnxruntime into
# .peer-venv (what CI does); SSL_ONNX_PYTHON picks another Python.
set -euo pipefail
writer=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/peer_python.sh"
peer_python "numpy, onnxruntime" \
  "SSL_WITH_PEERS=1 scripts/setup.sh installs onnx and onnxruntime into .peer-venv" \
  "${SSL_ONNX_PYTHON:-}" "$here/../../.peer-venv/bin/python"
"$writer" "$dir"
"$py" "$here/onnx_runtime_check.py" "$dir"
