#!/bin/sh
# `ssl clips` and `ssl train --method motion --data clips:DIR` end to end
# (README "Learning by watching objects move"):
#   test_motion.sh SSL DIR
# 1. 40 synthetic clips of 6 frames (sprites from the synthetic set) and
#    their true masks; the same seed writes the same frames
# 2. motion trains on them (pseudo-masks, IoU against the truth printed),
#    evaluates on the synthetic set's test split; `ssl eval` of the
#    checkpoint gives the run's numbers; --resume rebuilds the same masks;
#    the bounds train on the true and on the shuffled masks
# 3. errors: a set that is not clips, a missing frame, a frame of another
#    size, --motion-masks true without --motion-truth, a truth of another
#    layout
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
"$SSL" clips --data synthetic --train-limit 200 --output "$DIR/c" --truth "$DIR/t" --clips 40 --frames 6 \
    >"$DIR/clips.log" 2>&1 || { cat "$DIR/clips.log"; fail "ssl clips"; }
cat "$DIR/clips.log"
grep -q "wrote 40 clips of 6 frames (28x28, grey; sprites from synthetic)" "$DIR/clips.log" || fail "clips summary"
[ -f "$DIR/c/000039/0005.png" ] && [ -f "$DIR/t/000039/0005.png" ] || fail "frame or mask files missing"
"$SSL" clips --data synthetic --train-limit 200 --output "$DIR/c2" --clips 2 --frames 6 >/dev/null 2>&1 || fail "ssl clips again"
cmp -s "$DIR/c/000001/0003.png" "$DIR/c2/000001/0003.png" || fail "the same seed wrote another frame"

# 2
run="--method motion --data clips:$DIR/c --motion-truth $DIR/t --eval-data synthetic --eval-limit 256 --width 4 --batch 32 --epochs 1 --hypercolumn-hidden 16 --no-progress"
"$SSL" train $run --json --out "$DIR/r" >"$DIR/r.log" 2>&1 || { cat "$DIR/r.log"; fail "training motion"; }
cat "$DIR/r.log"
grep -q "motion: pseudo-masks of 40 clips (240 frames): [0-9.]* % of the pixels moving; IoU against --motion-truth: 0\.[0-9]*" "$DIR/r.log" ||
    fail "no pseudo-mask report"
grep -q '"steps":7' "$DIR/r.log" || fail "1 epoch of 7 steps (240 / 32) expected"
knn=$(sed -n 's/.*"knn_top1":\([0-9.]*\).*/\1/p' "$DIR/r.log")
[ -n "$knn" ] || fail "no evaluation"
"$SSL" eval --checkpoint "$DIR/r/last.safetensors" --eval-limit 256 >"$DIR/e.log" 2>&1 || { cat "$DIR/e.log"; fail "ssl eval"; }
cat "$DIR/e.log"
grep -q "kNN top-1 [0-9.]* %, linear probe top-1" "$DIR/e.log" || fail "ssl eval's numbers"
"$SSL" train $run --out "$DIR/p" --max-steps 3 >/dev/null 2>&1 || fail "the run stopped at step 3"
"$SSL" train --resume --out "$DIR/p" --no-progress >"$DIR/p.log" 2>&1 || { cat "$DIR/p.log"; fail "resume"; }
grep -q "resuming from .* step 3" "$DIR/p.log" && grep -q "motion: pseudo-masks of 40 clips" "$DIR/p.log" || { cat "$DIR/p.log"; fail "resume did not rebuild the masks"; }
for m in true shuffled; do
    "$SSL" train $run --motion-masks $m --max-steps 2 --out "$DIR/b_$m" >"$DIR/b.log" 2>&1 || { cat "$DIR/b.log"; fail "--motion-masks $m"; }
    grep -q "motion: training on the .*true masks of 40 clips" "$DIR/b.log" || { cat "$DIR/b.log"; fail "--motion-masks $m report"; }
done

# 3
expect() {  # expect NAME TEXT COMMAND...: the command fails with TEXT on stderr
    name=$1 text=$2
    shift 2
    if "$@" >"$DIR/err.log" 2>&1; then fail "$name: succeeded"; fi
    grep -q "$text" "$DIR/err.log" || { cat "$DIR/err.log"; fail "$name: no '$text'"; }
}
expect "not clips" "needs clips, a set read by load_clip_folder" "$SSL" train --method motion --data synthetic --max-steps 1 --no-progress
expect "masks without truth" "needs --motion-truth DIR" "$SSL" train --method motion --data clips:$DIR/c --motion-masks true --max-steps 1 --no-progress
mkdir -p "$DIR/bad"
cp -r "$DIR/c/000000" "$DIR/c/000001" "$DIR/bad/"
rm "$DIR/bad/000001/0002.png"
expect "missing frame" "000001': frame 2 is missing" "$SSL" train --method motion --data clips:$DIR/bad --max-steps 1 --no-progress
cp "$DIR/c2/000000/0000.png" "$DIR/bad/000001/0002.png"
"$SSL" clips --data synthetic --train-limit 20 --output "$DIR/big" --clips 1 --frames 2 --size 32 >/dev/null 2>&1 || fail "ssl clips --size 32"
cp "$DIR/big/000000/0001.png" "$DIR/bad/000000/0003.png"
expect "frame size" "a clip's frames have one size" "$SSL" train --method motion --data clips:$DIR/bad --image-size 28 --max-steps 1 --no-progress
expect "truth layout" "the truth must have the data's layout" "$SSL" train --method motion --data clips:$DIR/c --motion-truth $DIR/c2 --max-steps 1 --no-progress
echo "motion: all checks passed"
