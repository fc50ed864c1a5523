#!/usr/bin/env bash
# `mpirun -np 2 ssl train` (cli/dist.hpp): trains data parallel, rank 0 alone
# prints the summary and writes the run; its first loss equals the one-process
# run's; a run saved on 2 ranks resumes on 1 or 4 and continues the same run; a global batch the ranks
# cannot share is refused with a sentence; the instance classifier split over the ranks checkpoints and resumes
# on other rank counts.
# Usage: test_mpirun.sh SSL_PROGRAM MPIEXEC WORK_DIR [mpiexec flags...]
set -euo pipefail
ssl=$1 mpiexec=$2 work=$3
shift 3
# as root (CI), and more ranks than cores: Open MPI refuses both unless told
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
rm -rf "$work"
mkdir -p "$work"
args=(train --method simclr --data synthetic --width 4 --batch 32 --epochs 1 --train-limit 128 --eval-limit 256
      --threads 1 --no-progress --json)
"$ssl" "${args[@]}" --out "$work/one" > "$work/one.json"
"$mpiexec" -n 2 "$@" "$ssl" "${args[@]}" --out "$work/two" > "$work/two.json"
first() { sed -n 's/.*"first_loss":\([-0-9.e+]*\).*/\1/p' "$1"; }
one=$(first "$work/one.json") two=$(first "$work/two.json")
echo "first loss: one process $one, 2 ranks $two"
[ "$(grep -c '"method":"simclr"' "$work/two.json")" = 1 ] || { echo "expected one JSON summary (rank 0's)"; cat "$work/two.json"; exit 1; }
awk -v a="$one" -v b="$two" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4 * (1 + (a < 0 ? -a : a))) }' \
  || { echo "the first loss differs: $one vs $two"; exit 1; }
for f in last.safetensors backbone.safetensors metrics.csv; do
  [ -f "$work/two/$f" ] || { echo "rank 0 did not write $f"; exit 1; }
done
# a run saved on 2 ranks mid-epoch (step 3 of 4 per epoch) resumes on 1 and on 4: the next step's loss is the
# uninterrupted 2-rank run's (the replicated state is rank-independent; the batch is the global one)
"$mpiexec" -n 2 "$@" "$ssl" "${args[@]}" --epochs 2 --out "$work/straight" > /dev/null
step4() { awk -F, '$2 == 4 { print $3 }' "$1/metrics.csv" | tail -1; }
want=$(step4 "$work/straight")
mpi_flags=("$@")
# resume_on P DIR WANT LABEL TOL: DIR holds a 2-rank run stopped after step 3; resumed on P ranks for step 4,
# its loss must be WANT (the uninterrupted run's step 4) to TOL relative
resume_on() {
  local p=$1 dir=$2 want=$3 label=$4 tol=$5 got
  "$mpiexec" -n "$p" "${mpi_flags[@]}" "$ssl" train --resume --max-steps 4 --threads 1 --no-progress --out "$dir" \
    > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
  got=$(step4 "$dir")
  echo "$label: step 4 after resuming a 2-rank run on $p: $got (uninterrupted: $want)"
  awk -v a="$want" -v b="$got" -v t="$tol" \
    'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b != "" && d <= t * (1 + (a < 0 ? -a : a))) }' \
    || { echo "resuming $label on $p ranks changed the run: $got vs $want"; exit 1; }
}
for p in 1 4; do
  "$mpiexec" -n 2 "$@" "$ssl" "${args[@]}" --epochs 2 --max-steps 3 --out "$work/resume$p" > /dev/null
  resume_on $p "$work/resume$p" "$want" simclr 1e-4
done
# the instance classifier split over the ranks (hybrid parallel): each rank writes its shards beside rank 0's
# checkpoint; a 2-rank run stopped mid-epoch resumes on 1 and on 4 ranks and continues the same run; ssl eval
# reads the split checkpoint
iargs=(train --method instance-cls --data synthetic --width 4 --batch 32 --epochs 2 --train-limit 128
       --eval-limit 256 --threads 1 --no-progress)
"$mpiexec" -n 2 "$@" "$ssl" "${iargs[@]}" --out "$work/inst-straight" > /dev/null
want=$(step4 "$work/inst-straight")
for p in 1 4; do
  "$mpiexec" -n 2 "$@" "$ssl" "${iargs[@]}" --max-steps 3 --out "$work/inst$p" > /dev/null
  ls "$work/inst$p"/shards/step_000000003/loss.classifier.shard_000.safetensors > /dev/null \
    || { echo "no shard files beside the 2-rank instance-cls checkpoint"; ls -R "$work/inst$p"; exit 1; }
  resume_on $p "$work/inst$p" "$want" instance-cls 1e-3
done
"$ssl" eval --checkpoint "$work/inst-straight/last.safetensors" --eval-limit 256 > "$work/inst-eval.log" 2>&1 \
  || { cat "$work/inst-eval.log"; exit 1; }
grep -q "kNN top-1" "$work/inst-eval.log" || { cat "$work/inst-eval.log"; exit 1; }
# 30 images per step cannot be shared by 4 ranks
if "$mpiexec" -n 4 "$@" "$ssl" train --method rotnet --data synthetic --width 4 --batch 30 --epochs 1 \
     --train-limit 64 --threads 1 --no-progress --out "$work/bad" > "$work/bad.log" 2>&1; then
  echo "a batch of 30 on 4 ranks was accepted"; exit 1
fi
grep -q "global batch 30 is not divisible by the 4 ranks" "$work/bad.log" || { cat "$work/bad.log"; exit 1; }
# without --threads, 2 ranks on this machine share its cores (hardware / 2 each, at least 1)
"$mpiexec" -n 2 "$@" "$ssl" train --method rotnet --data synthetic --width 4 --batch 32 --epochs 1 --train-limit 64 \
  --eval-limit 64 --no-progress --out "$work/threads" > "$work/threads.log" 2>&1 || { cat "$work/threads.log"; exit 1; }
want=$(( $(nproc) / 2 )); [ "$want" -ge 1 ] || want=1
grep -q ", $want threads\$" "$work/threads.log" || { echo "expected $want threads per rank"; cat "$work/threads.log"; exit 1; }
echo "mpirun ssl train: ok"
