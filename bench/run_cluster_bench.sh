#!/usr/bin/env bash
# Builds bench_cluster (Release, -DSSL_BUILD_BENCH=ON, in $BUILD_DIR or build-bench/), then runs,
# back to back on the same data and the same number of threads:
#   k-means  100k x 128 features, k = 1000, 20 iterations: ssl::cluster::kmeans vs
#            faiss.Kmeans(d, k, niter=20, seed=1234) (no subsampling: n <= 256 k)
#   kNN      60k x 512 train features, 10k queries, k = 200, T = 0.1:
#            ssl::eval::knn_evaluate vs faiss.IndexFlatIP search + the same vote in numpy
# bench_cluster generates the data from fixed seeds and writes it to $DATA_DIR (default
# $BUILD_DIR/cluster_bench_data, ~280 MB) for bench/peer/faiss_cluster.py to read. Prints
#   task | ours s | faiss s | speed-up (faiss/ours) | ours cpu s | faiss cpu s | ours q | faiss q | rel. diff
# q = final k-means objective sum |x - c|^2 (both computed the same way, in double, for the final
# centroids) or kNN top-1; rel. diff = (ours - faiss) / faiss. Takes 1-3 minutes with faiss on
# OpenBLAS; much longer with Debian's reference BLAS (see below).
#
#   bench/run_cluster_bench.sh [--threads 2] [--what all|kmeans|knn] [--no-build]
#                              [--python /usr/bin/python3] [--faiss-blas DIR]
#
# Which BLAS faiss gets matters: Debian's python3-faiss links libblas.so.3, which is the
# slow reference BLAS unless an optimized one is installed. --faiss-blas DIR (or $FAISS_BLAS_DIR)
# puts DIR first on faiss's LD_LIBRARY_PATH, e.g. an OpenBLAS unpacked without installing it:
#   apt-get download libopenblas0-openmp && dpkg -x libopenblas0-openmp_*.deb /tmp/openblas
#   bench/run_cluster_bench.sh --faiss-blas /tmp/openblas/usr/lib/x86_64-linux-gnu/openblas-openmp
# The faiss part is skipped, with a message, when python3-faiss is not installed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
data="${DATA_DIR:-$build/cluster_bench_data}"
python=/usr/bin/python3
threads=2
what=all
do_build=1
faiss_blas="${FAISS_BLAS_DIR:-}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --what) what="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --faiss-blas) faiss_blas="$2"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

if [[ $do_build == 1 ]]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSSL_BUILD_BENCH=ON >/dev/null
  cmake --build "$build" -j2 --target bench_cluster >/dev/null
fi

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $threads threads"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"

ours_out="$("$build/bench/bench_cluster" --data "$data" --what "$what" --threads "$threads" 2>&1)"
echo "$ours_out" | grep -E '^(KMEANS|KNN)' || { echo "$ours_out"; exit 1; }

faiss_out=""
if ! "$python" -c 'import faiss' >/dev/null 2>&1; then
  echo "# faiss skipped: python3-faiss is not installed for $python (apt-get install python3-faiss)"
else
  if [[ -n "$faiss_blas" ]]; then
    echo "# faiss BLAS: $faiss_blas (LD_LIBRARY_PATH)"
    faiss_env=(env "LD_LIBRARY_PATH=$faiss_blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  else
    blas="$(readlink -f /lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)"
    echo "# faiss BLAS: system libblas.so.3 -> ${blas:-?}"
    if [[ "$blas" == */blas/libblas.so.3* ]]; then
      echo "# WARNING: that is the reference BLAS: faiss's GEMMs run 5-20x slower than with OpenBLAS;"
      echo "#          see --faiss-blas in the header of this script for a fair comparison"
    fi
    faiss_env=(env)
  fi
  faiss_out="$("${faiss_env[@]}" "$python" "$here/peer/faiss_cluster.py" --data "$data" --what "$what" \
               --threads "$threads" 2>&1)" || true
  echo "$faiss_out" | grep -E '^(FAISS|#)' || echo "$faiss_out"
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

field() {  # field KEY LINE
  sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<"$2"
}
ratio() {  # ratio A B -> B / A
  if [[ -n "$1" && -n "$2" ]]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", b / a }'; else echo n/a; fi
}
reldiff() {  # (A - B) / B
  if [[ -n "$1" && -n "$2" ]]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f%%", 100 * (a - b) / b }'; else echo n/a; fi
}
echo
printf '%-28s | %8s | %8s | %21s | %10s | %11s | %14s | %14s | %9s\n' task "ours s" "faiss s" "speed-up (faiss/ours)" \
  "ours cpu s" "faiss cpu s" "ours q" "faiss q" "rel. diff"
printf '%s\n' "-----------------------------+----------+----------+-----------------------+------------+-------------+----------------+----------------+----------"
row() {  # row LABEL OURS_LINE FAISS_LINE QUALITY_KEY
  local o f oc fc oq fq
  o="$(field seconds "$2")"; f="$(field seconds "$3")"
  oc="$(field cpu_seconds "$2")"; fc="$(field cpu_seconds "$3")"
  oq="$(field "$4" "$2")"; fq="$(field "$4" "$3")"
  printf '%-28s | %8s | %8s | %21s | %10s | %11s | %14s | %14s | %9s\n' "$1" "${o:-n/a}" "${f:-n/a}" "$(ratio "$o" "$f")" \
    "${oc:-n/a}" "${fc:-n/a}" "${oq:-n/a}" "${fq:-n/a}" "$(reldiff "$oq" "$fq")"
}
if [[ "$what" == all || "$what" == kmeans ]]; then
  row "k-means 100k x 128, k=1000" "$(grep '^KMEANS' <<<"$ours_out" || true)" "$(grep '^FAISS_KMEANS' <<<"$faiss_out" || true)" objective
fi
if [[ "$what" == all || "$what" == knn ]]; then
  fk="$(grep '^FAISS_KNN' <<<"$faiss_out" || true)"
  row "kNN 60k x 512, 10k q, k=200" "$(grep '^KNN' <<<"$ours_out" || true)" "$fk" top1
  if [[ -n "$fk" ]]; then
    echo "# kNN: faiss s = normalize + add + search + numpy vote; search alone took $(field search_seconds "$fk") s;"
    echo "#      predictions equal to ours for a fraction $(field agree "$fk") of the queries"
  fi
fi
echo "# wall seconds of one call each; cpu s = process CPU time (all threads), the less load-sensitive view."
echo "# With the load above ~0.5 other work shares the $(nproc) cores and the wall times are inflated."
