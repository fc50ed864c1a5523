#!/bin/sh
# The ssl program on CPUs of each x86-64 level (README: One binary for every
# x86-64 CPU).
#   test_cpu_levels.sh SSL DIR run LEVEL   SSL_CPU_LEVEL=LEVEL: a tiny training run by ssl-LEVEL when this
#                                          CPU has LEVEL, else refused naming the CPU's levels
#   test_cpu_levels.sh SSL DIR missing     the launcher alone: the program it would run is missing (127)
#   test_cpu_levels.sh SSL DIR qemu        on emulated older CPUs (qemu-x86_64; 77 = skipped without it):
#                                          the launcher's choice, the programs' message instead of SIGILL,
#                                          and a run of ssl-x86-64 on a plain x86-64 CPU
#   test_cpu_levels.sh SSL DIR gate        (one program, no launcher) on a plain x86-64 CPU (qemu): it
#                                          runs, or says which instructions the CPU lacks; never SIGILL
# SSL is the launcher (or the one program); DIR a scratch folder.
set -u
ssl=$1 dir=$2 mode=$3
bin=$(dirname "$ssl")
mkdir -p "$dir"
tiny="--data synthetic --width 4 --batch 32 --epochs 1 --train-limit 64 --eval-limit 128 --no-progress"
fail() { echo "FAIL: $*"; exit 1; }
# expect STATUS REGEX COMMAND...: the command exits with STATUS (or any non-zero for "nonzero")
# and its output (stdout and stderr) matches REGEX
expect() {
  want=$1 regex=$2; shift 2
  out=$("$@" 2>&1); rc=$?
  echo "\$ $*  -> exit $rc"; echo "$out" | grep -v "TCG doesn't support" | tail -n 12
  case $want in
    nonzero) [ $rc -ne 0 ] && [ $rc -lt 128 ] || fail "exit $rc, wanted an error (not a signal)" ;;
    *) [ $rc -eq "$want" ] || fail "exit $rc, wanted $want" ;;
  esac
  # the output as one line: a pattern may span lines
  echo "$out" | tr '\n' ' ' | grep -Eq -- "$regex" || fail "output does not match: $regex"
}
has_level() { echo " $1 " | grep -q " $2 "; }

case $mode in
  run)
    level=$4
    if has_level "$(SSL_CPU_LEVEL=list "$ssl" | sed -n 's/^this CPU: *//p')" "$level"; then
      # shellcheck disable=SC2086
      expect 0 "instruction set: $level .*kNN top-1" env SSL_CPU_LEVEL="$level" "$ssl" train $tiny --out "$dir/run_$level"
    else
      expect 2 "SSL_CPU_LEVEL=$level: this CPU lacks it \(it supports x86-64" env SSL_CPU_LEVEL="$level" "$ssl" train $tiny
    fi ;;
  missing)
    rm -rf "$dir/alone" && mkdir -p "$dir/alone" && cp "$ssl" "$dir/alone/" || fail "cannot copy $ssl"
    expect 127 "error: the ssl program for x86-64[^ ]* is missing or not executable \(looked for $dir/alone/ssl-x86-64" "$dir/alone/$(basename "$ssl")" train $tiny ;;
  qemu|gate)
    command -v qemu-x86_64 > /dev/null || { echo "SKIP: no qemu-x86_64 (apt-get install qemu-user)"; exit 77; }
    if [ "$mode" = gate ]; then
      # a baseline build runs (and refuses the bad --data), a build for more says what the CPU lacks
      expect nonzero "is not one of|ssl: error: ssl was compiled for instructions this CPU lacks: [a-z0-9.]+ \(it was built for .*this CPU is x86-64\)\. Rebuild it with -march=x86-64 " \
        qemu-x86_64 -cpu qemu64 "$ssl" train --data mnist
      exit 0
    fi
    built=$(SSL_CPU_LEVEL=list "$ssl" | sed -n 's/^built: *//p')
    # the launcher on emulated CPUs: plain x86-64 (qemu64), x86-64-v2 (Nehalem), x86-64-v3 (Haswell)
    for cpu in qemu64:x86-64 Nehalem:x86-64-v2 Haswell-v4:x86-64-v3; do
      model=${cpu%%:*} level=${cpu#*:}
      expect 0 "this CPU: [a-z0-9 -]*$level chosen: " env SSL_CPU_LEVEL=list qemu-x86_64 -cpu "$model" "$ssl"
      if ! has_level "$built" x86-64-v4; then continue; fi
      expect 2 "SSL_CPU_LEVEL=x86-64-v4: this CPU lacks it \(it supports [^)]*$level\)" \
        env SSL_CPU_LEVEL=x86-64-v4 qemu-x86_64 -cpu "$model" "$ssl" train --data synthetic
    done
    # a program for more than the CPU has: the message, not SIGILL
    if has_level "$built" x86-64-v4; then
      expect 2 "ssl: error: ssl was compiled for instructions this CPU lacks: avx512f \(it was built for x86-64-v4.*this CPU is x86-64-v3\)\. Rebuild it with -march=x86-64-v3" \
        qemu-x86_64 -cpu Haswell-v4 "$bin/ssl-x86-64-v4" train --data synthetic
    fi
    if has_level "$built" x86-64-v3; then
      expect 2 "ssl: error: ssl was compiled for instructions this CPU lacks: avx2 \(it was built for x86-64-v3.*this CPU is x86-64\)" \
        qemu-x86_64 -cpu qemu64 "$bin/ssl-x86-64-v3" train --data synthetic
    fi
    # the baseline program trains on a plain x86-64 CPU (emulated: slow, so smaller still)
    if has_level "$built" x86-64; then
      expect 0 "kNN top-1 +[0-9.]+ %" qemu-x86_64 -cpu qemu64 "$bin/ssl-x86-64" train --data synthetic --width 4 --batch 32 \
        --epochs 1 --train-limit 32 --eval-limit 64 --no-progress --out "$dir/qemu_x86-64"
    fi ;;
  *) fail "unknown mode $mode" ;;
esac
echo PASS
