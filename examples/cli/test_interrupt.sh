#!/bin/sh
# cli test: Ctrl-C (SIGINT) during `ssl train`, then a second one right after.
#   test_interrupt.sh SSL OUT
# The run must stop at once with exit status 130, skip the end-of-run
# evaluation (and say so), leave a last.safetensors that ssl export reads,
# and leave no temporary file behind.
ssl=$1
out=$2
rm -rf "$out" "$out.log"
mkdir -p "$out"
"$ssl" train --method rotnet --width 4 --data synthetic --batch 32 --epochs 100000 --train-limit 64 \
  --out "$out" --no-progress --json > "$out.log" 2>&1 &
pid=$!
# wait until training is under way (metrics.csv has a header and two steps)
i=0
while [ "$(cat "$out/metrics.csv" 2>/dev/null | wc -l)" -lt 3 ]; do
  i=$((i + 1))
  if [ $i -gt 600 ]; then echo "FAIL: no training step after 60 s"; kill $pid; exit 1; fi
  sleep 0.1
done
kill -INT $pid
sleep 0.02
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
cat "$out.log"
fail() { echo "FAIL: $*"; exit 1; }
[ $rc -eq 130 ] || fail "exit status $rc, expected 130"
grep -q "the end-of-run evaluation is skipped" "$out.log" || fail "no word of the skipped evaluation"
grep -q '"knn_top1":null' "$out.log" || fail "the run was evaluated"
[ ! -e "$out/backbone.safetensors" ] || fail "backbone.safetensors written by an interrupted run"
leftover=$(ls -a "$out" | grep '\.tmp')
[ -z "$leftover" ] || fail "temporary files left: $leftover"
"$ssl" export --checkpoint "$out/last.safetensors" --output "$out/exported.safetensors" || fail "last.safetensors unreadable"
echo "PASS: interrupted run stopped, checkpoint readable"
