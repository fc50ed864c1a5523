#!/usr/bin/env bash
# Builds the benchmarks (build-bench/, Release, -DSSL_BUILD_BENCH=ON), then runs
# our ResNet-18 training step (bench_step) and the PyTorch peer
# (peer/torch_step.py) back to back on this machine, and prints
#   config | ours ms/step | PyTorch ms/step | speed-up (PyTorch / ours)
# (medians over the timed steps). Takes about 3-6 minutes on 2 cores.
#
#   bench/run_host_bench.sh [--steps N] [--warmup N] [--python /usr/bin/python3] [--no-build]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build-bench"
python=/usr/bin/python3
steps=""
warmup=3
do_build=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

if [[ $do_build == 1 ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSSL_BUILD_BENCH=ON >/dev/null
  cmake --build "$build" -j2 --target bench_step >/dev/null
fi

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"

ours_args=(--warmup="$warmup")
torch_args=(--warmup "$warmup")
if [[ -n "$steps" ]]; then ours_args+=(--steps="$steps"); torch_args+=(--steps "$steps"); fi

ours_out="$("$build/bench/bench_step" "${ours_args[@]}" --benchmark_format=console 2>&1)"
echo "$ours_out" | grep -E '^(STEP|POOL)'
torch_out="$("$python" "$here/peer/torch_step.py" "${torch_args[@]}" 2>&1)"
echo "$torch_out" | grep -E '^(TORCH|#)'
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

field() {  # field KEY LINE
  sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"
}
echo
printf '%-10s | %12s | %15s | %23s | %12s | %15s\n' config "ours ms/step" "PyTorch ms/step" "speed-up (PyTorch/ours)" "ours cpu ms" "PyTorch cpu ms"
printf '%-10s-+-%12s-+-%15s-+-%23s-+-%12s-+-%15s\n' ---------- ------------ --------------- ----------------------- ------------ ---------------
for cfg in w16_n256 w64_n128; do
  ol="$(grep "^STEP config=$cfg " <<<"$ours_out" || true)"
  tl="$(grep "^TORCH config=$cfg " <<<"$torch_out" || true)"
  o="$(field median_ms "$ol")"
  t="$(field median_ms "$tl")"
  if [[ -n "$o" && -n "$t" ]]; then
    r="$(awk -v o="$o" -v t="$t" 'BEGIN { printf "%.2fx", t / o }')"
  else
    r="n/a"
  fi
  oc="$(field cpu_ms "$ol")"
  tc="$(field cpu_ms "$tl")"
  printf '%-10s | %12s | %15s | %23s | %12s | %15s\n' "$cfg" "${o:-n/a}" "${t:-n/a}" "$r" "${oc:-n/a}" "${tc:-n/a}"
done
echo "# medians over the timed steps; cpu ms = process CPU time per step (all threads). With the load"
echo "# above ~0.5, both programs share the 2 cores with other work and the wall times are inflated."
