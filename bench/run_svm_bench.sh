#!/usr/bin/env bash
# Times ssl::eval's linear SVM against scikit-learn's LinearSVC on the same
# features (bench_svm generates them from a fixed seed and writes them to
# $DATA_DIR for bench/peer/sklearn_svm.py), back to back:
#   fit  one cost (default 0.1): one-vs-rest, 10 classes
#   cv   the 3-fold CV over the grid 1e-3 .. 1e2 (six costs) on the same folds
# Both: rows L2-normalized, squared hinge, L2 penalty with the intercept
# feature, tol 1e-4, at most 1000 passes. Prints
#   task | ssl s (threads) | ssl cpu s | sklearn s | sklearn cpu s | ratio (sklearn / ssl, wall) | ssl q | sklearn q
# (q: train top-1 of the fit, best CV top-1 and its cost). The CPU-seconds columns
# are what to compare on a shared machine. LinearSVC is single-threaded.
#
#   bench/run_svm_bench.sh [--threads 2] [--n 10000] [--d 512] [--cost 0.1] [--what all|fit|cv] [--no-build]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
data="${DATA_DIR:-$build/svm_bench_data}"
python=/usr/bin/python3
threads=2 n=10000 d=512 cost=0.1 what=all build_it=1
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --d) d=$2; shift 2 ;;
    --cost) cost=$2; shift 2 ;;
    --what) what=$2; shift 2 ;;
    --no-build) build_it=0; shift ;;
    *) echo "run_svm_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$build_it" = 1 ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSSL_BUILD_BENCH=ON >/dev/null
  cmake --build "$build" --target bench_svm -j 2 >/dev/null
fi
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(grep -o 'avx512f\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
ours=$("$build/bench/bench_svm" --data "$data" --threads "$threads" --n "$n" --d "$d" --cost "$cost" --what "$what")
echo "$ours"
if ! "$python" -c "import sklearn" 2>/dev/null; then
  echo "scikit-learn is not installed for $python: the comparison is skipped"
  exit 0
fi
peer=$("$python" -W ignore "$here/peer/sklearn_svm.py" "$data" "$n" "$d" "$cost" "$what")
echo "$peer"
field() { sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p"; }
echo
echo "task | ssl s ($threads threads) | ssl cpu s | sklearn s | sklearn cpu s | ratio sklearn/ssl (wall) | ssl q | sklearn q"
for task in SVM_FIT SVM_CV; do
  a=$(echo "$ours" | grep "^$task ") || continue
  b=$(echo "$peer" | grep "^$task ") || continue
  as=$(echo "$a" | field seconds); ac=$(echo "$a" | field cpu_seconds)
  bs=$(echo "$b" | field seconds); bc=$(echo "$b" | field cpu_seconds)
  if [ "$task" = SVM_FIT ]; then
    aq="top1 $(echo "$a" | field train_top1), $(echo "$a" | field passes) passes"
    bq="top1 $(echo "$b" | field train_top1), $(echo "$b" | field passes) passes"
  else
    aq="C $(echo "$a" | field best_cost) ($(echo "$a" | field cv_top1))"
    bq="C $(echo "$b" | field best_cost) ($(echo "$b" | field cv_top1))"
  fi
  ratio=$(awk -v x="$bs" -v y="$as" 'BEGIN { printf "%.2f", x / y }')
  echo "$task | $as | $ac | $bs | $bc | $ratio | $aq | $bq"
done
