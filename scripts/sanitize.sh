#!/usr/bin/env bash
# The sanitizer passes (.ci/run runs them after scripts/test.sh):
#   1. AddressSanitizer + UndefinedBehaviorSanitizer (gcc, -O1 -g, any finding
#      fails) over the unit and gradcheck tests of the areas in SSL_ASAN_AREAS,
#      built in ./build-asan;
#   2. ThreadSanitizer over the thread pool and loader tests, in ./build-tsan;
#   3. a short run of each libFuzzer harness (scripts/fuzz.sh, SSL_FUZZ_RUNS
#      executions each, default 20000), in ./build-fuzz.
#   scripts/sanitize.sh [asan] [tsan] [fuzz]     (no argument: all passes)
# SSL_ASAN_AREAS defaults to the areas with readers, data, I/O, ops, losses,
# heads, layers and optimizers (see README "Sanitizers" for what is left out).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
SSL_WITH_SANITIZERS=1 "$root/scripts/setup.sh"
jobs=${SSL_JOBS:-2}
passes=("$@")
[ ${#passes[@]} -gt 0 ] || passes=(asan tsan fuzz)
want() { local p; for p in "${passes[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

# configure DIR FLAGS [CMAKE ARGS...]: a sanitizer build of the tests only (no examples), -O1 -g,
# assertions on (no NDEBUG); Ninja, which builds several targets (one unity
# translation unit per test area) side by side, where make builds them in turn.
configure() {
  local dir=$1 flags=$2
  shift 2
  mkdir -p "$dir"
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g" \
    -DCMAKE_CXX_FLAGS="$flags -fno-omit-frame-pointer" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
    -DSSL_BUILD_EXAMPLES=OFF -DSSL_ENABLE_CUDA=OFF "$@" > "$dir/configure.log" 2>&1 \
    || { cat "$dir/configure.log"; exit 1; }
}

if want asan; then
  start=$SECONDS
  read -r -a areas <<< "${SSL_ASAN_AREAS:-core ops nn head loss data optim io}"
  # Built for x86-64-v3 (AVX2 + FMA), not -march=native, on an x86-64 CPU
  # that has it: the kernels' non-AVX-512 code (native-width vectors, other
  # register blocks) is then tested on every CI machine, while scripts/test.sh
  # tests the AVX-512 code where the machine has AVX-512.
  isa=()
  if [ "$(uname -m)" = x86_64 ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    isa=(-march=x86-64-v3)
  fi
  configure "$root/build-asan" "-fsanitize=address,undefined -fno-sanitize-recover=all ${isa[*]}" -DSSL_NATIVE=OFF
  echo "ssl sanitize: asan build for ${isa[*]:-the default target}"
  cmake --build "$root/build-asan" -j "$jobs" --target "${areas[@]/#/test_}"
  regex="^($(IFS='|'; echo "${areas[*]}"))/"
  (cd "$root/build-asan" &&
    SSL_POISON_ALLOCATIONS=1 \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j "$jobs" --timeout 900 -L "unit|gradcheck" -R "$regex" -E "^package/|^compile_fail/")
  echo "ssl sanitize: asan+ubsan pass (${areas[*]}) took $((SECONDS - start)) s"
fi

if want tsan; then
  start=$SECONDS
  configure "$root/build-tsan" "-fsanitize=thread"
  cmake --build "$root/build-tsan" -j "$jobs" --target test_core test_data
  (cd "$root/build-tsan" &&
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --output-on-failure -j "$jobs" --timeout 900 -R "^(core/test_thread_pool|data/test_loader)$")
  echo "ssl sanitize: tsan pass (thread pool, loader) took $((SECONDS - start)) s"
fi

if want fuzz; then
  start=$SECONDS
  SSL_FUZZ_RUNS=${SSL_FUZZ_RUNS:-20000} "$root/scripts/fuzz.sh"
  echo "ssl sanitize: fuzz pass took $((SECONDS - start)) s"
fi
