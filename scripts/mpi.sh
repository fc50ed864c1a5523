#!/usr/bin/env bash
# Data parallel over MPI (issue 22): installs Open MPI (Debian's libopenmpi-dev
# and openmpi-bin, when missing; needs root or sudo), builds the dist tests in
# build-mpi and runs them through mpirun at 1, 2, 3 and 4 ranks, oversubscribed
# (ctest label dist: collectives, synchronized batch norm with its gradient
# check, NT-Xent, triplet and CPC negatives from all ranks, the hybrid-parallel
# instance classifier, every method on P ranks against one process). About 4
# minutes on 2 cores (building, then about 75 s of tests at 1, 2 and 4 ranks).
#   SSL_MPI_CLI=1 also builds the ssl program with MPI and runs
#   `mpirun -np 2 ssl train` (test cli/mpirun_train; several more minutes).
# Extra arguments go to ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
pkgs=(libopenmpi-dev openmpi-bin)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  echo "ssl mpi: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" > /dev/null
fi
jobs=${SSL_JOBS:-2}
examples=OFF
targets=(test_dist test_mpi)
if [ "${SSL_MPI_CLI:-0}" = 1 ]; then examples=ON; targets+=(ssl_cli); fi
start=$SECONDS
mkdir -p "$root/build-mpi"
cmake -S "$root" -B "$root/build-mpi" -DCMAKE_BUILD_TYPE=Release -DSSL_ENABLE_MPI=ON -DSSL_ENABLE_CUDA=OFF \
  -DSSL_BUILD_EXAMPLES=$examples > "$root/build-mpi/configure.log" 2>&1 \
  || { cat "$root/build-mpi/configure.log"; exit 1; }
for t in "${targets[@]}"; do cmake --build "$root/build-mpi" --target "$t" -j "$jobs"; done
echo "ssl mpi: built in $((SECONDS - start)) s"
# CI runs as root, with more ranks than cores: Open MPI refuses both unless told (the ctest entries set it too)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
cd "$root/build-mpi"
# one test at a time: the ranks of one test already fill the cores
ctest --output-on-failure -j 1 --timeout 600 -L dist "$@"
echo "ssl mpi: dist tests passed in $((SECONDS - start)) s in all"
