#!/usr/bin/env bash
# Runs one libFuzzer target for a while: run_fuzz.sh TARGET_EXE SECONDS WORKDIR SEED_DIR...
# New inputs go to WORKDIR/corpus (kept between runs), a crashing input to WORKDIR/crash-*;
# the seed folders (the test files and regress/<target>, every input that ever crashed) are
# read, never written, and each seed is run before fuzzing starts. The last line printed is
# "fuzz <target>: <seconds> s, <runs> runs, <crashes> crashes" for tools/fuzz.sh to collect.
set -uo pipefail
exe="$1"; seconds="$2"; work="$3"; shift 3
name="$(basename "$exe")"
mkdir -p "$work/corpus"
seeds=()
for d in "$@"; do
  [ -d "$d" ] && seeds+=("$d")
done
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
log="$work/$name.log"
"$exe" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "${seeds[@]}" >"$log" 2>&1
rc=$?
runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
# "Done N runs in S second(s)" when it ran to the end; after a crash, the seconds asked for
ran="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)"
tail -n 30 "$log"
crashes=0
[ "$rc" -ne 0 ] && crashes=1
echo "fuzz $name: ${ran:-$seconds} s, ${runs:-0} runs, $crashes crashes"
exit "$rc"
