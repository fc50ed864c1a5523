#!/usr/bin/env bash
# arm64 (aarch64) check: cross-compiles the unit and gradcheck tests of the
# areas in SSL_ARM64_AREAS with Debian's crossbuild-essential-arm64
# (cmake/toolchain-aarch64.cmake, -march=native off) in ./build-arm64 and runs
# them under qemu-user (ctest starts each test through qemu-aarch64).
# Installs what is missing with apt-get (adds the arm64 dpkg architecture for
# zlib1g-dev:arm64); run as root or with sudo. Exits non-zero on any failure.
#   scripts/arm64.sh [extra ctest arguments]
# SSL_ARM64_AREAS (default "core ops nn head loss optim": the tensor core,
# small GEMM, thread pool, layers, heads, losses, optimizers and their
# gradchecks; .ci/run runs these) picks others. All areas except methods also
# pass; qemu makes whole-network training slow (backbone's ResNet gradcheck
# 400 s, a methods test over 12 min). SSL_JOBS (default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${SSL_JOBS:-2}
read -r -a areas <<< "${SSL_ARM64_AREAS:-core ops nn head loss optim}"
build="$root/build-arm64"
start=$SECONDS

# --- packages ----------------------------------------------------------------
# The host's header-only dependencies (Eigen, xtensor, doctest, nlohmann-json,
# stb) serve both architectures; only zlib is an arm64 library.
"$root/scripts/setup.sh"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
pkgs=(crossbuild-essential-arm64 qemu-user ninja-build zlib1g-dev:arm64)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ssl arm64: installing ${missing[*]}"
  if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
    echo "ssl arm64: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1
  fi
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then $sudo dpkg --add-architecture arm64; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "ssl arm64: packages ready ($((SECONDS - start)) s)"

# --- cross build ---------------------------------------------------------------
t0=$SECONDS
mkdir -p "$build"
# xtensor's CMake package sits in the host's multiarch directory (it is
# header-only; the x86-64 copy describes the same headers).
xtensor_dir=$(dirname "$(dpkg -L libxtensor-dev | grep -m1 '/xtensorConfig.cmake$')")
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-aarch64.cmake" -Dxtensor_DIR="$xtensor_dir" \
  -DSSL_NATIVE=OFF -DSSL_ENABLE_CUDA=OFF -DSSL_BUILD_EXAMPLES=OFF -DSSL_BUILD_BENCH=OFF \
  > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j "$jobs" --target "${areas[@]/#/test_}"
build_s=$((SECONDS - t0))
readelf -h "$build/tests/test_${areas[0]}" | grep -q "Machine: *AArch64" \
  || { echo "ssl arm64: $build/tests/test_${areas[0]} is not an aarch64 executable" >&2; exit 1; }

# --- the tests under qemu ----------------------------------------------------------
t0=$SECONDS
regex="^($(IFS='|'; echo "${areas[*]}"))/"
status=0
(cd "$build" && ctest --output-on-failure --no-tests=error -j "$jobs" --timeout 1800 -L "unit|gradcheck" -R "$regex" \
  -E "^package/|^compile_fail/|^peer/" "$@") || status=$?
run_s=$((SECONDS - t0))
echo "ssl arm64: areas ${areas[*]}: cross build ${build_s} s, tests under qemu-aarch64 ${run_s} s, total $((SECONDS - start)) s"
if [ "$status" != 0 ]; then echo "ssl arm64: FAILED" >&2; exit "$status"; fi
echo "ssl arm64: all tests passed"
