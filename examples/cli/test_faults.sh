#!/bin/sh
# Faults a run must survive (README "Reliability", issue 19), against the ssl program:
#   kill   kill -9 at 8 moments of a training run that writes a checkpoint
#          every epoch (every ~0.05 s: some kills land inside a checkpoint
#          write); after each, the last.safetensors left (if any) must load
#          (ssl export reads and validates it), and the run resumes from it;
#          at the end the resumed run finishes and no temporary file is left.
#   full   a disk that fills up (a 7 MB tmpfs: the first epoch's checkpoints
#          fit, the second epoch's do not): an error naming the file and "No
#          space left on device", exit status 2, no temporary file left, and
#          the first epoch's last.safetensors intact. Needs root (mount);
#          skipped with a message otherwise.
#   test_faults.sh SSL_BINARY WORK_DIR
set -u
ssl=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
run_args="--data synthetic --width 4 --batch 32 --train-limit 256 --eval-limit 128 --no-progress"

# --- kill -9 ---
out="$work/k9"
delays="0.3 0.7 0.45 1.1 0.55 0.9 0.35 1.3"  # seconds after start (the build machine's speed varies: several)
i=0
for d in $delays; do
  i=$((i + 1))
  if [ -f "$out/last.safetensors" ]; then
    "$ssl" train --out "$out" --resume --epochs 60 --no-progress > "$work/k9_$i.log" 2>&1 &
  else
    rm -rf "$out"
    "$ssl" train $run_args --epochs 60 --out "$out" > "$work/k9_$i.log" 2>&1 &
  fi
  pid=$!
  sleep "$d"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [ -f "$out/last.safetensors" ]; then
    "$ssl" export --checkpoint "$out/last.safetensors" --output "$work/k9_export_$i.safetensors" > "$work/k9_export_$i.log" 2>&1 ||
      { cat "$work/k9_export_$i.log"; fail "kill $i (after ${d} s): last.safetensors does not load"; }
    echo "kill $i after ${d} s: last.safetensors loads ($(ls "$out" | grep -c '\.tmp\.') temporary files left by the kill)"
  else
    echo "kill $i after ${d} s: killed before the first checkpoint"
  fi
done
if [ ! -f "$out/last.safetensors" ]; then  # a machine so loaded that no kill came after a checkpoint: once more, later
  rm -rf "$out"
  "$ssl" train $run_args --epochs 60 --out "$out" > "$work/k9_late.log" 2>&1 &
  pid=$!
  sleep 5
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
fi
[ -f "$out/last.safetensors" ] || fail "no checkpoint after 5 s of training: nothing to resume"
"$ssl" train --out "$out" --resume --epochs 60 --no-progress > "$work/k9_final.log" 2>&1 ||
  { tail -5 "$work/k9_final.log"; fail "the resumed run did not finish"; }
grep -q "kNN top-1" "$work/k9_final.log" || fail "the resumed run printed no evaluation"
left=$(ls "$out" | grep '\.tmp\.' || true)
[ -z "$left" ] || fail "temporary files left after the resumed run: $left"
echo "kill: 8 kills, every checkpoint left loaded, the resumed run finished, no temporary file left"

# --- disk full ---
small="$work/small"
mkdir -p "$small"
if [ "$(id -u)" != 0 ] || ! mount -t tmpfs -o size=7m tmpfs "$small" 2>/dev/null; then
  echo "full: skipped (mounting a small tmpfs needs root)"
  exit 0
fi
"$ssl" train $run_args --epochs 3 --out "$small/run" > "$work/full.log" 2>&1
rc=$?
left=$(ls "$small/run" | grep '\.tmp\.' || true)
cp "$small/run/last.safetensors" "$work/full_last.safetensors" 2>/dev/null
umount "$small"
[ "$rc" = 2 ] || { cat "$work/full.log"; fail "disk full: exit status $rc, expected 2"; }
grep -q "No space left on device" "$work/full.log" || { cat "$work/full.log"; fail "disk full: no message saying so"; }
[ -z "$left" ] || fail "disk full: temporary files left: $left"
[ -f "$work/full_last.safetensors" ] || fail "disk full: the first epoch's last.safetensors is gone"
"$ssl" export --checkpoint "$work/full_last.safetensors" --output "$work/full_export.safetensors" > "$work/full_export.log" 2>&1 ||
  { cat "$work/full_export.log"; fail "disk full: the first epoch's last.safetensors does not load"; }
echo "full: $(grep 'error' "$work/full.log" | head -1)"
echo "full: exit status 2, no temporary file, the first epoch's checkpoint intact"
