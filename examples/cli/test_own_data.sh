#!/bin/sh
# Users' own data at their own size, end to end (README "Your own images"):
#   test_own_data.sh SSL DIR [TOOL]  (DIR: ssl_test_folders' output; TOOL: ssl_test_metadata)
# 1. a labelled folder of 96 px colour images, --holdout 0.2: read at 96 x 96
#    x 3 (the images' own), the ImageNet stem, 6 images held out (2 per
#    class); `ssl eval` of its checkpoint tests on the same images (the same
#    kNN and linear-probe numbers as the run's summary), and refuses once the
#    folder holds another image (the split would not be the run's); jigsaw,
#    pirl and exemplar (tiles and patches) train and evaluate at 96 px too
# 2. grey 40 px images: 1 channel and 40 x 40 from the data, the CIFAR stem
# 3. images of mixed sizes: 32 x 32 (saying why); --image-size 48 --channels 1
# 4. an unlabelled folder trained on, evaluated on a held-out part of a
#    labelled --eval-data; `ssl eval` uses the same
set -u
SSL=$1
DIR=$2
TOOL=${3:-}
OUT=$DIR/runs
rm -rf "$OUT"
mkdir -p "$OUT"
fail() {
    echo "FAIL: $*"
    exit 1
}
tiny="--width 4 --batch 8 --epochs 1 --no-progress"
# a copy of sq96 to change (the other cli/own_data tests read DIR/sq96 meanwhile)
mkdir -p "$OUT/own"
cp -r "$DIR/sq96" "$OUT/own/sq96" || fail "copying sq96"

# 1
"$SSL" train --method simclr --data "folder:$OUT/own/sq96" --holdout 0.2 $tiny --out "$OUT/sq96" >"$OUT/sq96.log" 2>&1 ||
    { cat "$OUT/sq96.log"; fail "training on folder:sq96 --holdout 0.2"; }
cat "$OUT/sq96.log"
grep -q "sq96: 30 images in 3 classes, read at 96x96 (their own size), 3 channels (colour)" "$OUT/sq96.log" ||
    fail "the folder's size and channels are not reported"
grep -q "resnet18 width 4 (ImageNet stem), on folder:.*sq96 (24 images 3x96x96)" "$OUT/sq96.log" ||
    fail "96 px images did not train at 96 px with the ImageNet stem on the 24 images not held out"
grep -q "^evaluation    20 % of each class of --data folder:.*sq96 held out (seed 0): 6 images to test, never trained on; the other 24" "$OUT/sq96.log" ||
    fail "the summary does not state the held-out split"
knn=$(sed -n 's/^kNN top-1 *\([0-9.]*\) %.*/\1/p' "$OUT/sq96.log")
lin=$(sed -n 's/^linear top-1 *\([0-9.]*\) %.*/\1/p' "$OUT/sq96.log")
[ -n "$knn" ] && [ -n "$lin" ] || fail "no kNN / linear numbers in the summary"
"$SSL" eval --checkpoint "$OUT/sq96/last.safetensors" >"$OUT/sq96_eval.log" 2>&1 ||
    { cat "$OUT/sq96_eval.log"; fail "ssl eval of the holdout run"; }
cat "$OUT/sq96_eval.log"
grep -q "^evaluation: 20 % of each class of --data folder:.*sq96 held out (seed 0): 6 images to test" "$OUT/sq96_eval.log" ||
    fail "ssl eval does not use the run's held-out split"
grep -q "^kNN top-1 $knn %, linear probe top-1 $lin %" "$OUT/sq96_eval.log" ||
    fail "ssl eval's numbers differ from the run's summary (kNN $knn, linear $lin): not the same split"
cp "$OUT/own/sq96/h/0.png" "$OUT/own/sq96/h/extra.png"
"$SSL" eval --checkpoint "$OUT/sq96/last.safetensors" >"$OUT/sq96_changed.log" 2>&1 && fail "eval of a changed folder ran"
rm -f "$OUT/own/sq96/h/extra.png"
cat "$OUT/sq96_changed.log"
grep -q "ssl: error: --holdout 0.2: --data folder:.*sq96 holds 31 images, 30 when the run split it" "$OUT/sq96_changed.log" ||
    fail "eval of a changed folder does not say why it refuses"
# another --eval-data on ssl eval: the test set, the run's images the probe's train set (the
# run's --holdout split --data, so it is not applied to the other set)
"$SSL" eval --checkpoint "$OUT/sq96/last.safetensors" --eval-data "folder:$DIR/sq96_eval" >"$OUT/sq96_other_eval.log" 2>&1 ||
    { cat "$OUT/sq96_other_eval.log"; fail "ssl eval --eval-data"; }
grep -q "^evaluation: --eval-data folder:.*sq96_eval to test, --data folder:.*sq96's labelled images for the kNN / linear probe" \
    "$OUT/sq96_other_eval.log" || { cat "$OUT/sq96_other_eval.log"; fail "ssl eval --eval-data: not what it says"; }
# --holdout on ssl eval replaces the run's (0: none)
"$SSL" eval --checkpoint "$OUT/sq96/last.safetensors" --holdout 0 >"$OUT/sq96_no_holdout.log" 2>&1 ||
    { cat "$OUT/sq96_no_holdout.log"; fail "ssl eval --holdout 0"; }
grep -q "^evaluation: none: --data folder:.*sq96 has no test split" "$OUT/sq96_no_holdout.log" ||
    { cat "$OUT/sq96_no_holdout.log"; fail "ssl eval --holdout 0 still held out"; }
# resuming with an --eval-data would change what --holdout splits: refused
"$SSL" train --out "$OUT/sq96" --resume --epochs 2 --eval-data "folder:$DIR/sq96_eval" --no-progress >"$OUT/sq96_resume_eval.log" 2>&1 &&
    fail "resume of a --holdout run with another --eval-data ran"
grep -q "ssl: error: --resume: --eval-data folder:.*sq96_eval on the command line, (none) in '.*last.safetensors'" "$OUT/sq96_resume_eval.log" ||
    { cat "$OUT/sq96_resume_eval.log"; fail "resume with another --eval-data: no clear message"; }
# resuming at another --image-size is refused, naming both sizes
"$SSL" train --out "$OUT/sq96" --resume --epochs 2 --image-size 64 --no-progress >"$OUT/sq96_resume.log" 2>&1 &&
    fail "resume at another --image-size ran"
grep -q "ssl: error: --resume: --image-size 64 on the command line, 96 in '.*last.safetensors'" "$OUT/sq96_resume.log" ||
    { cat "$OUT/sq96_resume.log"; fail "resume at another --image-size: no clear message"; }

# a checkpoint from before size, channels and the split were recorded still
# loads: its folder is read at 32 x 32 x 3, as every folder was then
if [ -n "$TOOL" ]; then
    cp "$OUT/sq96/last.safetensors" "$OUT/old_record.safetensors"
    for key in image_size channels eval_data holdout holdout_from; do
        "$TOOL" "$OUT/old_record.safetensors" "$OUT/old_record.safetensors" ssl.config remove /train/$key ||
            fail "ssl_test_metadata remove /train/$key"
    done
    "$SSL" eval --checkpoint "$OUT/old_record.safetensors" >"$OUT/old_record.log" 2>&1 ||
        { cat "$OUT/old_record.log"; fail "ssl eval of a checkpoint without the new record keys"; }
    grep -q "^evaluation: none: --data folder:.*sq96 has no test split" "$OUT/old_record.log" ||
        { cat "$OUT/old_record.log"; fail "old record: not read as before"; }
fi

# the methods whose views are tiles or patches of the image, at 96 px
for m in jigsaw pirl exemplar; do
    case $m in pirl) extra="--negatives 8" ;; exemplar) extra="--surrogate-classes 10" ;; *) extra="" ;; esac
    "$SSL" train --method $m --data "folder:$DIR/sq96" --holdout 0.2 $tiny --max-steps 1 --json $extra \
        --out "$OUT/sq96_$m" >"$OUT/sq96_$m.log" 2>&1 || { cat "$OUT/sq96_$m.log"; fail "--method $m at 96 px"; }
    grep -q '"knn_top1":[0-9]' "$OUT/sq96_$m.log" || { cat "$OUT/sq96_$m.log"; fail "--method $m at 96 px: no evaluation"; }
done

# 2
"$SSL" train --method rotnet --data "folder:$DIR/grey40" $tiny --out "$OUT/grey40" >"$OUT/grey40.log" 2>&1 ||
    { cat "$OUT/grey40.log"; fail "training on folder:grey40"; }
grep -q "grey40: 12 images in 2 classes, read at 40x40 (their own size), 1 channel (every image is grey)" "$OUT/grey40.log" ||
    { cat "$OUT/grey40.log"; fail "grey 40 px images: size and channels not taken from the data"; }
grep -q "(CIFAR stem), on folder:.*grey40 (12 images 1x40x40)" "$OUT/grey40.log" || fail "grey40: not the CIFAR stem"
grep -q "^evaluation    none: --data folder:.*grey40 has no test split (give --eval-data SPEC, or --holdout F)" "$OUT/grey40.log" ||
    fail "grey40: the summary does not say there is no evaluation and how to get one"

# 3
"$SSL" train --method rotnet --data "folder:$DIR/mixed" $tiny --max-steps 1 --out "$OUT/mixed" >"$OUT/mixed.log" 2>&1 ||
    { cat "$OUT/mixed.log"; fail "training on folder:mixed"; }
grep -q "mixed: 12 images, unlabelled, read at 32x32 (their sizes differ, from 20x24 to 53x46 (width x height); --image-size N chooses another side), 3 channels (colour)" "$OUT/mixed.log" ||
    { cat "$OUT/mixed.log"; fail "mixed sizes: no note"; }
"$SSL" train --method rotnet --data "folder:$DIR/mixed" --image-size 48 --channels 1 $tiny --max-steps 1 --json \
    --out "$OUT/mixed48" >"$OUT/mixed48.log" 2>&1 || { cat "$OUT/mixed48.log"; fail "--image-size 48 --channels 1"; }
grep -q '"channels":1,.*"image_size":48' "$OUT/mixed48.log" || { cat "$OUT/mixed48.log"; fail "--image-size 48 --channels 1 not used"; }

# 4
"$SSL" train --method rotnet --data "folder:$DIR/unlabelled96" --eval-data "folder:$DIR/sq96_eval" --holdout 0.25 \
    $tiny --out "$OUT/u96" >"$OUT/u96.log" 2>&1 || { cat "$OUT/u96.log"; fail "--eval-data with --holdout"; }
cat "$OUT/u96.log"
grep -q "^evaluation    --eval-data folder:.*sq96_eval, 25 % of each class held out (seed 0): 3 images to test, the other 9 for the kNN / linear probe" "$OUT/u96.log" ||
    fail "--eval-data --holdout: the summary does not say so"
knn=$(sed -n 's/^kNN top-1 *\([0-9.]*\) %.*/\1/p' "$OUT/u96.log")
"$SSL" eval --checkpoint "$OUT/u96/backbone.safetensors" >"$OUT/u96_eval.log" 2>&1 ||
    { cat "$OUT/u96_eval.log"; fail "ssl eval of the --eval-data run"; }
grep -q "^kNN top-1 $knn %" "$OUT/u96_eval.log" || { cat "$OUT/u96_eval.log"; fail "ssl eval does not use the run's --eval-data split"; }
echo "own data: all checks passed"
