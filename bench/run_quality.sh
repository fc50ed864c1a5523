#!/usr/bin/env bash
# Quality comparison on Fashion-MNIST: our `ssl train` against the PyTorch peer
# (bench/peer/torch_ssl.py) with the same recipe, method by method, back to
# back on this machine. Both train ResNet-18 (CIFAR stem) at width 16 on 60k
# images, batch 256, seed 0, on the CPU with the same number of threads, then
# report kNN (k 200, T 0.1) and linear-probe top-1 on the 10k test images, and
# the wall time of training. Prints a markdown table:
#   method | ours kNN | ours linear | ours train s | torch kNN | torch linear | torch train s | wall-time ratio
# (wall-time ratio = torch train s / ours train s: above 1, ours trains faster),
# and a second table with our random-init baselines (--baseline).
#
# How long: the full default run (3 methods x 5 epochs x 2 implementations on
# 2 cores) takes a few hours. Our SimCLR epoch is ~4 minutes here (~20 min for
# 5 epochs); BYOL adds the target network's forwards (~1.3x SimCLR), RotNet
# pushes 4 x 256 images per step (~2x SimCLR); each of our runs also embeds
# 70k images twice (random init and trained) and fits two probes (a few
# minutes). PyTorch is in the same range (its training step was 0.78-1.06x of
# ours in bench/run_host_bench.sh). Expect ~3-4 hours for everything, so run it
# on an otherwise idle machine, e.g. under nohup, and keep the log.
#
# Methods without a PyTorch peer (instdisc-softmax pirl exemplar deepcluster
# sela deepercluster instance-cls cpc s4l) run ours only; SSL_QUALITY_NO_PEER=1 skips the peer for all.
# cpc trains at its own recipe's batch (64, Adam) for the same epochs: --batch does not apply to it.
# s4l runs at its default labelled fraction (10 % of the labels); colorization
# and split_brain need colour images and are not run here.
# The peer's instdisc mirrors ours (m 4096, T 0.1, lambda 30, Z until filled);
# its log also has head_knn_top1 (kNN on the 128-d head embedding) and Z.
#
#   bench/run_quality.sh [--methods "simclr byol rotnet"] [--epochs 5] [--threads 2] [--seed 0]
#                        [--train-limit N] [--eval-limit N] [--data DIR] [--python /usr/bin/python3] [--no-build]
#
# --data DIR: another data set in Fashion-MNIST's file layout (both sides read
# it; e.g. the sparse-stroke sets of bench/data/make_glyphs.py). The short
# budget of bench/README.md is --epochs 3 --train-limit 8000 --eval-limit 8000
# (93 steps).
#
# SSL_BIN=PATH runs that program instead of build/examples/ssl (copy it there
# first when you keep building while the comparison runs).
# Smoke test (a couple of minutes): --epochs 1 --train-limit 512 --eval-limit 1000 --threads 1 --no-build
# Logs: runs/quality/<method>.ours.log and runs/quality/<method>.torch.log; our
# checkpoints in runs/quality/<method>/ (under runs/quality/<data dir name>/ with
# --data, and seed<N>/ below that for a seed other than 0).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build"
python=/usr/bin/python3
methods="simclr byol rotnet"
epochs=5
threads=2
seed=0
batch=256
width=16
train_limit=0
eval_limit=0
data=""
do_build=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --methods) methods="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --train-limit) train_limit="$2"; shift 2 ;;
    --eval-limit) eval_limit="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
all_methods="simclr byol rotnet moco instdisc instdisc-softmax jigsaw pirl exemplar deepcluster sela deepercluster instance-cls cpc s4l"
peer_methods=" simclr byol moco rotnet instdisc jigsaw "  # the PyTorch peer implements these; the others get n/a in its columns
for m in $methods; do
  case " $all_methods " in *" $m "*) ;; *) echo "unknown method $m ($all_methods)" >&2; exit 2 ;; esac
done

if [[ $do_build == 1 ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$threads" --target ssl_cli >/dev/null
fi
ssl="${SSL_BIN:-$build/examples/ssl}"  # SSL_BIN: a copy of the program, so a rebuild during the run cannot touch it
[[ -x "$ssl" ]] || { echo "no $ssl (build it, or drop --no-build)" >&2; exit 1; }

outdir="$root/runs/quality"
mkdir -p "$outdir"
limits=()
[[ "$train_limit" != 0 ]] && limits+=(--train-limit "$train_limit")
[[ "$eval_limit" != 0 ]] && limits+=(--eval-limit "$eval_limit")
ours_data=(--data fashion-mnist)
peer_data=()
if [[ -n "$data" ]]; then
  ours_data=(--data "fashion-mnist:$data")
  peer_data=(--data "$data")
  outdir="$outdir/$(basename "$data")"
fi
[[ "$seed" != 0 ]] && outdir="$outdir/seed$seed"
mkdir -p "$outdir"

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# data: ${data:-fashion-mnist}; methods: $methods; epochs $epochs, batch $batch, width $width, seed $seed, $threads threads${limits[*]:+, ${limits[*]}}"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A ours torch_line
for m in $methods; do
  echo "# $m: ours ($(date -u +%H:%M))" >&2
  rc=0
  batch_args=(--batch "$batch")
  [[ $m == cpc ]] && batch_args=()
  "$ssl" train --method "$m" "${ours_data[@]}" --width "$width" "${batch_args[@]}" --epochs "$epochs" \
    --seed "$seed" --threads "$threads" --no-progress --json --baseline --out "$outdir/$m" "${limits[@]}" \
    >"$outdir/$m.ours.log" 2>&1 || rc=$?
  [[ $rc == 0 ]] || echo "# $m: ours exited with $rc (see $outdir/$m.ours.log)" >&2
  ours[$m]="$(grep '^{' "$outdir/$m.ours.log" | tail -n1 || true)"
  if [[ "$peer_methods" != *" $m "* || "${SSL_QUALITY_NO_PEER:-0}" == 1 ]]; then
    torch_line[$m]=""
    continue
  fi
  echo "# $m: torch ($(date -u +%H:%M))" >&2
  rc=0
  "$python" "$here/peer/torch_ssl.py" --method "$m" --epochs "$epochs" --batch "$batch" --width "$width" \
    --threads "$threads" --seed "$seed" "${limits[@]}" "${peer_data[@]}" >"$outdir/$m.torch.log" 2>&1 || rc=$?
  [[ $rc == 0 ]] || echo "# $m: torch exited with $rc (see $outdir/$m.torch.log)" >&2
  torch_line[$m]="$(grep '^TORCH_QUALITY ' "$outdir/$m.torch.log" | tail -n1 || true)"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

json_field() {  # json_field KEY JSON -> value with 2 decimals, or n/a
  "$python" -c '
import json, sys
try:
    v = json.loads(sys.argv[2]).get(sys.argv[1])
except ValueError:
    v = None
print("n/a" if v is None else "%.2f" % v)' "$1" "$2"
}
kv_field() {  # kv_field KEY LINE
  local v
  v="$(sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2")"
  echo "${v:-n/a}"
}
ratio() {  # ratio TORCH OURS
  if [[ "$1" == n/a || "$2" == n/a ]]; then echo n/a; else awk -v t="$1" -v o="$2" 'BEGIN { printf "%.2fx", t / o }'; fi
}

echo
echo "| method | ours kNN | ours linear | ours train s | torch kNN | torch linear | torch train s | wall-time ratio (torch / ours) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for m in $methods; do
  o="${ours[$m]}"
  t="${torch_line[$m]}"
  ok="$(json_field knn_top1 "$o")"; ol="$(json_field linear_top1 "$o")"; os="$(json_field train_seconds "$o")"
  tk="$(kv_field knn_top1 "$t")"; tl="$(kv_field linear_top1 "$t")"; ts="$(kv_field train_seconds "$t")"
  echo "| $m | $ok | $ol | $os | $tk | $tl | $ts | $(ratio "$ts" "$os") |"
done
echo
echo "Random-init encoder (ours, --baseline; same architecture and initialization scheme, no training):"
echo
echo "| method | kNN | linear |"
echo "|---|---:|---:|"
for m in $methods; do
  o="${ours[$m]}"
  echo "| $m | $(json_field random_init_knn_top1 "$o") | $(json_field random_init_linear_top1 "$o") |"
done
