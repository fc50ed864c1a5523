#!/usr/bin/env bash
# Builds everything and runs the whole test suite (ctest). Extra arguments go
# to ctest, e.g. scripts/test.sh -L gradcheck
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
cd "$root/build"
ctest --output-on-failure -j "${SSL_JOBS:-2}" --timeout 600 "$@"
