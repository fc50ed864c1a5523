#!/usr/bin/env bash
# Builds the benchmarks (build-bench/, Release, -DSSL_BUILD_BENCH=ON), then runs
# our ResNet-18 training step (bench_step) and the PyTorch peer
# (peer/torch_step.py) alternately on this machine: per round and per config,
# ours then PyTorch, so slow drift of the machine (shared caches and memory
# bandwidth on a VM move both programs by 10-40% within minutes) hits both
# alike. Prints, per config,
#   ours ms/step | PyTorch ms/step | speed-up (PyTorch / ours) | range over rounds | best / best
# where the step times are the medians over rounds of each round's median step
# time, "range" the lowest and highest per-round ratio and "best / best" the
# ratio of the fastest single steps (the least disturbed one of each).
# About 2 minutes per round on 2 cores.
#
#   bench/run_host_bench.sh [--rounds N] [--steps N] [--warmup N] [--configs "w16_n256 w64_n128"]
#                           [--python /usr/bin/python3] [--no-build]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build-bench"
python=/usr/bin/python3
steps=""
warmup=3
rounds=3
configs="w16_n256 w64_n128"
do_build=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --configs) configs="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive integer, got '$rounds'" >&2; exit 2; }

if [[ $do_build == 1 ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSSL_BUILD_BENCH=ON >/dev/null
  cmake --build "$build" -j2 --target bench_step >/dev/null
fi

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"

ours_args=(--warmup="$warmup")
torch_args=(--warmup "$warmup")
if [[ -n "$steps" ]]; then ours_args+=(--steps="$steps"); torch_args+=(--steps "$steps"); fi

field() {  # field KEY LINE
  sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"
}
results=""  # lines: config ours_median torch_median ours_min torch_min ours_cpu torch_cpu
for ((r = 1; r <= rounds; ++r)); do
  for cfg in $configs; do
    ol="$("$build/bench/bench_step" --config="$cfg" "${ours_args[@]}" 2>&1 | grep -E "^STEP config=$cfg " || true)"
    tl="$("$python" "$here/peer/torch_step.py" --config "$cfg" "${torch_args[@]}" 2>&1 | grep -E "^TORCH config=$cfg " || true)"
    [[ -n "$ol" ]] || { echo "bench_step printed no STEP line for $cfg" >&2; exit 1; }
    [[ -n "$tl" ]] || { echo "peer/torch_step.py printed no TORCH line for $cfg (is $python's torch installed?)" >&2; exit 1; }
    echo "# round $r: $ol"
    echo "# round $r: $tl"
    results+="$cfg $(field median_ms "$ol") $(field median_ms "$tl") $(field min_ms "$ol") $(field min_ms "$tl") $(field cpu_ms "$ol") $(field cpu_ms "$tl")"$'\n'
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-10s | %12s | %15s | %23s | %17s | %11s | %12s | %15s\n' config "ours ms/step" "PyTorch ms/step" \
  "speed-up (PyTorch/ours)" "range over rounds" "best / best" "ours cpu ms" "PyTorch cpu ms"
printf '%-10s-+-%12s-+-%15s-+-%23s-+-%17s-+-%11s-+-%12s-+-%15s\n' ---------- ------------ --------------- \
  ----------------------- ----------------- ----------- ------------ ---------------
for cfg in $configs; do
  awk -v cfg="$cfg" '
    function median(a, n,   i, j, t) {  # sorts a[1..n]
      for (i = 2; i <= n; ++i) for (j = i; j > 1 && a[j - 1] > a[j]; --j) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    $1 == cfg {
      ++n; o[n] = $2; t[n] = $3; q = $3 / $2
      if (n == 1 || q < lo) lo = q
      if (n == 1 || q > hi) hi = q
      if (n == 1 || $4 < omin) omin = $4
      if (n == 1 || $5 < tmin) tmin = $5
      oc[n] = $6; tc[n] = $7
    }
    END {
      if (!n) exit
      om = median(o, n); tm = median(t, n)
      printf "%-10s | %12.1f | %15.1f | %22.2fx | %7.2fx - %5.2fx | %10.2fx | %12.1f | %15.1f\n",
        cfg, om, tm, tm / om, lo, hi, tmin / omin, median(oc, n), median(tc, n)
    }' <<<"$results"
done
echo "# $rounds round(s), each: ours then PyTorch per config. ms/step: median over rounds of the per-round"
echo "# median step; cpu ms: process CPU time per step (all threads). With the load above ~0.5 before the"
echo "# run, both programs share the 2 cores with other work and the wall times are inflated."
