#!/usr/bin/env bash
# The libFuzzer harnesses of fuzz/ (one per reader: IDX, IDX gzip, CIFAR,
# images, safetensors, the config JSON of checkpoint metadata, the tar reader of shards): builds them
# with clang++-14 (-fsanitize=fuzzer,address,undefined) in ./build-fuzz,
# writes the seed corpora into build-fuzz/corpus/<harness>/ and runs each
# harness on its corpus (which grows). Any crash, leak, timeout, memory over
# 2 GiB or sanitizer finding fails the script; the input lands in
# build-fuzz/crashes/.
#   scripts/fuzz.sh [HARNESS...]              each for SSL_FUZZ_RUNS executions (default 20000)
#   SSL_FUZZ_TIME=300 scripts/fuzz.sh image    for 300 seconds instead
#   SSL_FUZZ_TIMEOUT=60 ...                    seconds one input may take (default 10; libFuzzer
#                                               counts wall time, so raise it on a loaded machine)
# Harnesses: idx idx_gzip cifar image safetensors config_json tar (default: all).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
SSL_WITH_SANITIZERS=1 "$root/scripts/setup.sh"
build="$root/build-fuzz"
mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 -DSSL_FUZZ=ON \
  -DSSL_BUILD_TESTS=OFF -DSSL_BUILD_EXAMPLES=OFF -DSSL_ENABLE_CUDA=OFF > "$build/configure.log" 2>&1 \
  || { cat "$build/configure.log"; exit 1; }
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(idx idx_gzip cifar image safetensors config_json tar)
cmake --build "$build" -j "${SSL_JOBS:-2}" --target fuzz_make_seeds "${harnesses[@]/#/fuzz_}"
"$build/fuzz/fuzz_make_seeds" "$build/corpus"
mkdir -p "$build/crashes"
declare -A max_len=([idx]=4096 [idx_gzip]=4096 [cifar]=8192 [image]=16384 [safetensors]=4096 [config_json]=8192 [tar]=8192)
for h in "${harnesses[@]}"; do
  if [ -n "${SSL_FUZZ_TIME:-}" ]; then limit=(-max_total_time="$SSL_FUZZ_TIME"); else limit=(-runs="${SSL_FUZZ_RUNS:-20000}"); fi
  echo "ssl fuzz: $h (${limit[*]})"
  start=$SECONDS
  "$build/fuzz/fuzz_$h" "${limit[@]}" -rss_limit_mb=2048 -max_len="${max_len[$h]}" -timeout="${SSL_FUZZ_TIMEOUT:-10}" -print_final_stats=1 \
    -artifact_prefix="$build/crashes/$h-" "$build/corpus/$h" 2> "$build/$h.log" \
    || { tail -n 60 "$build/$h.log"; echo "ssl fuzz: $h failed (log: $build/$h.log)" >&2; exit 1; }
  grep -E "^#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "$build/$h.log" || true
  echo "ssl fuzz: $h took $((SECONDS - start)) s"
done
