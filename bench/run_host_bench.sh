#!/usr/bin/env bash
# Builds the benchmarks (build-bench/, Release, -DSSL_BUILD_BENCH=ON), then runs
# our ResNet-18 training step (bench_step) and the PyTorch peers
# (peer/torch_step.py, one per --python interpreter) alternately on this
# machine: per round and per config, ours then each peer, so slow drift of the
# machine (shared caches and memory bandwidth on a VM move the programs by
# 10-40% within minutes) hits all alike. Prints, per config and peer,
#   ours ms/step | peer ms/step | speed-up (peer / ours) | range over rounds | best / best | cpu ms
# where the step times are the medians over rounds of each round's median step
# time, "range" the lowest and highest per-round ratio and "best / best" the
# ratio of the fastest single steps (the least disturbed one of each); then
# the speed-up against the faster peer. About 2 minutes per round and peer.
#
#   bench/run_host_bench.sh [--rounds N] [--steps N] [--warmup N] [--configs "w16_n256 w64_n128"]
#                           [--python /usr/bin/python3 [--python VENV/bin/python ...]] [--avx2] [--no-build]
#
# --python may be given several times (Debian's torch 1.13 and a current 2.x
# in a venv: issue 18 holds the targets against the faster). --avx2 measures
# the AVX2 + FMA path on any x86-64 machine with them: ours built with
# -march=x86-64-v3 (build-bench-avx2/), PyTorch held to AVX2 with
# ATEN_CPU_CAPABILITY=avx2 and DNNL_MAX_CPU_ISA=AVX2.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build-bench"
pythons=()
avx2=0
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
    --python) pythons+=("$2"); shift 2 ;;
    --avx2) avx2=1; shift ;;
    --no-build) do_build=0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive integer, got '$rounds'" >&2; exit 2; }
[[ ${#pythons[@]} -gt 0 ]] || pythons=(/usr/bin/python3)
cmake_isa=()
peer_env=()
if [[ $avx2 == 1 ]]; then
  grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo || { echo "--avx2: this CPU has no AVX2 + FMA" >&2; exit 2; }
  build="$root/build-bench-avx2"
  cmake_isa=(-DSSL_NATIVE=OFF -DCMAKE_CXX_FLAGS=-march=x86-64-v3)
  peer_env=(ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2)
fi

if [[ $do_build == 1 ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSSL_BUILD_BENCH=ON "${cmake_isa[@]}" >/dev/null
  cmake --build "$build" -j2 --target bench_step >/dev/null
fi

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "$(grep -o -w 'avx512f\|avx2\|fma' /proc/cpuinfo | sort -u | xargs)"
if [[ $avx2 == 1 ]]; then echo "# AVX2 path: ours -march=x86-64-v3, PyTorch with ${peer_env[*]}"; else echo "# ours -march=native"; fi
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"

ours_args=(--warmup="$warmup")
torch_args=(--warmup "$warmup")
if [[ -n "$steps" ]]; then ours_args+=(--steps="$steps"); torch_args+=(--steps "$steps"); fi

field() {  # field KEY LINE
  sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"
}
results=""  # lines: config peer ours_median peer_median ours_min peer_min ours_cpu peer_cpu
for ((r = 1; r <= rounds; ++r)); do
  for cfg in $configs; do
    ol="$("$build/bench/bench_step" --config="$cfg" "${ours_args[@]}" 2>&1 | grep -E "^STEP config=$cfg " || true)"
    [[ -n "$ol" ]] || { echo "bench_step printed no STEP line for $cfg" >&2; exit 1; }
    echo "# round $r: $ol"
    for ((p = 0; p < ${#pythons[@]}; ++p)); do
      py=${pythons[$p]}
      tl="$(env "${peer_env[@]}" "$py" "$here/peer/torch_step.py" --config "$cfg" "${torch_args[@]}" 2>&1 |
        grep -E "^(TORCH config=$cfg |# torch )" | tr '\n' ' ' || true)"
      [[ "$tl" == *TORCH* ]] || { echo "peer/torch_step.py printed no TORCH line for $cfg (is $py's torch installed?)" >&2; exit 1; }
      echo "# round $r: peer $p: $tl"
      version=$(sed -n 's/.*# torch \([^,]*\),.*/\1/p' <<<"$tl")
      results+="$cfg torch-$version $(field median_ms "$ol") $(field median_ms "$tl") $(field min_ms "$ol") $(field min_ms "$tl") $(field cpu_ms "$ol") $(field cpu_ms "$tl")"$'\n'
    done
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-10s | %-22s | %12s | %12s | %8s | %17s | %11s | %11s | %11s\n' config peer "ours ms/step" "peer ms/step" \
  "speed-up" "range over rounds" "best / best" "ours cpu ms" "peer cpu ms"
printf '%s\n' "-----------|------------------------|--------------|--------------|----------|-------------------|-------------|-------------|------------"
awk '
  function median(a, n,   i, j, t) {  # sorts a[1..n]
    for (i = 2; i <= n; ++i) for (j = i; j > 1 && a[j - 1] > a[j]; --j) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  NF == 8 {
    k = $1 SUBSEP $2
    if (!(k in n)) { keys[++nk] = k; cfgs[$1] = 1 }
    i = ++n[k]; o[k, i] = $3; t[k, i] = $4; q = $4 / $3
    if (i == 1 || q < lo[k]) lo[k] = q
    if (i == 1 || q > hi[k]) hi[k] = q
    if (i == 1 || $5 < omin[k]) omin[k] = $5
    if (i == 1 || $6 < tmin[k]) tmin[k] = $6
    oc[k, i] = $7; tc[k, i] = $8
  }
  END {
    for (x = 1; x <= nk; ++x) {
      k = keys[x]; split(k, part, SUBSEP); m = n[k]
      for (i = 1; i <= m; ++i) { a1[i] = o[k, i]; a2[i] = t[k, i]; a3[i] = oc[k, i]; a4[i] = tc[k, i] }
      om = median(a1, m); tm = median(a2, m)
      printf "%-10s | %-22s | %12.1f | %12.1f | %7.2fx | %7.2fx - %5.2fx | %10.2fx | %11.1f | %11.1f\n",
        part[1], part[2], om, tm, tm / om, lo[k], hi[k], tmin[k] / omin[k], median(a3, m), median(a4, m)
      if (!(part[1] in best) || tm < best[part[1]]) { best[part[1]] = tm; bestpeer[part[1]] = part[2]; ours[part[1]] = om }
    }
    print ""
    for (c in best)
      printf "# %s: against the faster peer (%s): %.2fx\n", c, bestpeer[c], best[c] / ours[c]
  }' <<<"$results"
echo "# $rounds round(s), each: ours then every peer per config. ms/step: median over rounds of the per-round"
echo "# median step; cpu ms: process CPU time per step (all threads). With the load above ~0.5 before the"
echo "# run, the programs share the 2 cores with other work and the wall times are inflated."
