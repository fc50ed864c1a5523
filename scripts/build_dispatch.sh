#!/usr/bin/env bash
# The packaging layout of README "One binary for every x86-64 CPU": the ssl
# program built once per x86-64 level (ssl-x86-64, ssl-x86-64-v3,
# ssl-x86-64-v4) plus `ssl`, the launcher that runs the one this CPU supports;
# nothing depends on the build machine (SSL_NATIVE off). Then a smoke test:
# the launcher's list, a tiny training run forced to each level this CPU has,
# and the tests of label cpu_levels (with qemu-x86_64: older CPUs emulated).
#   scripts/build_dispatch.sh [BUILD_DIR]        (default ./build-dispatch)
# SSL_CPU_LEVELS (default "x86-64;x86-64-v3;x86-64-v4"), SSL_JOBS (2).
# Install the result with `cmake --install BUILD_DIR --prefix PREFIX`:
# PREFIX/bin/ssl and PREFIX/libexec/ssl/ssl-<level>.
# Takes about three times the build of one ssl program (README). Not part of
# .ci/run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-dispatch}
levels=${SSL_CPU_LEVELS:-x86-64;x86-64-v3;x86-64-v4}
SSL_WITH_QEMU=1 "$root/scripts/setup.sh"
start=$SECONDS
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSSL_NATIVE=OFF -DSSL_CPU_LEVELS="$levels" \
  -DSSL_BUILD_TESTS=ON > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
# ssl_cli is the launcher; it depends on the program of every level
cmake --build "$build" --target ssl_cli -j "${SSL_JOBS:-2}"
echo "built in $((SECONDS - start)) s"
ssl=$build/examples/ssl
SSL_CPU_LEVEL=list "$ssl"
cpu=$(SSL_CPU_LEVEL=list "$ssl" | sed -n 's/^this CPU: *//p')
IFS=';' read -r -a wanted <<< "$levels"
for level in "${wanted[@]}"; do
  if [[ " $cpu " != *" $level "* ]]; then
    echo "== $level: this CPU lacks it (the cpu_levels tests check it is refused)"
    continue
  fi
  echo "== $level"
  t=$SECONDS
  SSL_CPU_LEVEL=$level "$ssl" train --data synthetic --width 4 --batch 32 --epochs 1 --train-limit 64 --eval-limit 128 \
    --no-progress --out "$build/smoke_$level"
  echo "($((SECONDS - t)) s)"
done
(cd "$build" && ctest -L cpu_levels --output-on-failure)
