#!/usr/bin/env bash
# Configures and builds ssl (Release) in ./build with 2 parallel jobs.
#   scripts/build.sh [targets...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release > "$root/build.configure.log" 2>&1 \
  || { cat "$root/build.configure.log"; exit 1; }
if [ $# -gt 0 ]; then
  for t in "$@"; do cmake --build "$root/build" --target "$t" -j "${SSL_JOBS:-2}"; done
else
  cmake --build "$root/build" -j "${SSL_JOBS:-2}"
fi
