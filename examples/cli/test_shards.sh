#!/bin/sh
# `ssl shards` and `ssl train --data shards:DIR` end to end (README "Data
# larger than memory"):
#   test_shards.sh SSL DIR
# 1. the synthetic set (4096 images) written as shards of 1000: 5 shards,
#    the last of 96, and a manifest
# 2. rotnet trains from them (4096 images streamed, the first 512 in memory
#    for the kNN / linear probe against --eval-data synthetic's test split);
#    stopped inside its first epoch and resumed, it ends where a run straight
#    through ends (the same loss at the last step; --shuffle-buffer is given
#    again: it is not stored in the checkpoint)
# 3. errors: a shard directory without a manifest, a truncated shard (named),
#    a method that needs the whole set in memory, --holdout, --train-limit,
#    writing into a directory that is not empty
set -u
SSL=$1
DIR=$2
rm -rf "$DIR"
mkdir -p "$DIR"
fail() {
    echo "FAIL: $*"
    exit 1
}
# 1
"$SSL" shards --data synthetic --output "$DIR/s" --samples-per-shard 1000 >"$DIR/shards.log" 2>&1 ||
    { cat "$DIR/shards.log"; fail "ssl shards --data synthetic"; }
cat "$DIR/shards.log"
grep -q "wrote 4096 images (1x28x28, 10 classes) in 5 shards of up to 1000" "$DIR/shards.log" || fail "shards summary"
[ -f "$DIR/s/manifest.json" ] && [ -f "$DIR/s/shard-000004.tar" ] || fail "manifest or shard files missing"
grep -q '"samples": 96' "$DIR/s/manifest.json" || fail "the last shard's count is not in the manifest"

# 2
run="--method rotnet --data shards:$DIR/s --eval-data synthetic --eval-limit 512 --width 4 --batch 64 --epochs 2 --shuffle-buffer 300 --no-progress"
"$SSL" train $run --json --out "$DIR/full" >"$DIR/full.log" 2>&1 || { cat "$DIR/full.log"; fail "training on shards"; }
cat "$DIR/full.log"
grep -q '"steps":128' "$DIR/full.log" || fail "2 epochs of 64 steps (4096 / 64) expected"
grep -q '"knn_top1":[0-9]' "$DIR/full.log" || fail "no evaluation"
"$SSL" train $run --out "$DIR/part" --max-steps 40 >"$DIR/part.log" 2>&1 || { cat "$DIR/part.log"; fail "the run stopped at step 40"; }
cat "$DIR/part.log"
grep -q "shards:$DIR/s: 4096 images in 5 shards, streamed from disk (the first 512 held in memory" "$DIR/part.log" ||
    fail "the streaming note"
grep -q "on shards:$DIR/s (4096 images 1x28x28)" "$DIR/part.log" || fail "the training line does not count the shards' images"
"$SSL" train --resume --out "$DIR/part" --shuffle-buffer 300 --no-progress --json >"$DIR/resumed.log" 2>&1 ||
    { cat "$DIR/resumed.log"; fail "resuming from shards"; }
full_loss=$(sed -n 's/.*"last_loss":\([-0-9.e]*\).*/\1/p' "$DIR/full.log")
resumed_loss=$(sed -n 's/.*"last_loss":\([-0-9.e]*\).*/\1/p' "$DIR/resumed.log")
[ -n "$full_loss" ] && [ "$full_loss" = "$resumed_loss" ] ||
    fail "resumed mid-epoch, the run ends at loss $resumed_loss, straight through at $full_loss"
grep -q '"steps":88' "$DIR/resumed.log" || fail "the resumed run did not do the 88 steps left"

# 3
expect() {  # expect MESSAGE ARGS...: the command fails with exit status 2 and MESSAGE
    msg=$1
    shift
    "$SSL" "$@" >"$DIR/err.log" 2>&1
    rc=$?
    [ $rc -eq 2 ] || { cat "$DIR/err.log"; fail "exit status $rc, not 2, for: $*"; }
    grep -qF -e "$msg" "$DIR/err.log" || { cat "$DIR/err.log"; fail "no '$msg' for: $*"; }
    echo "refused as expected: $msg"
}
tiny="--method rotnet --width 4 --batch 64 --epochs 1 --no-progress"
mkdir -p "$DIR/empty"
expect "manifest.json': missing" train $tiny --data "shards:$DIR/empty" --out "$DIR/e1"
cp -r "$DIR/s" "$DIR/cut"
head -c 3000 "$DIR/s/shard-000000.tar" >"$DIR/cut/shard-000000.tar"
expect "tar '$DIR/cut/shard-000000.tar': at byte" train $tiny --data "shards:$DIR/cut" --eval-limit 2000 --out "$DIR/e2"
expect "needs the whole training set in memory" train --method instdisc --width 4 --batch 64 --epochs 1 --no-progress --data "shards:$DIR/s" --eval-limit 256 --out "$DIR/e3"
expect "--holdout with --data shards:" train $tiny --data "shards:$DIR/s" --holdout 0.2 --out "$DIR/e4"
expect "--train-limit does not apply to --data shards:" train $tiny --data "shards:$DIR/s" --train-limit 100 --out "$DIR/e5"
expect "is not empty" shards --data synthetic --output "$DIR/s"
echo "shards: all checks passed"
