#!/usr/bin/env bash
# The long fuzz run: builds the libFuzzer targets of tests/fuzz (clang, in build-fuzz), runs
# each for SECONDS (default 600) from its seeds and the corpus of earlier runs, and writes
# tests/fuzz/RESULTS.md (target, seconds, runs, crashes). A crashing input is left in
# build-fuzz/tests/fuzz/work_<target>/crash-*: fix the bug, then copy the input to
# tests/fuzz/regress/<target>/ so every later run (and tools/test.sh) replays it.
# Usage: tools/fuzz.sh [SECONDS] [TARGET...]   (targets: onnx text_ir kir npy compile)
# compile (import, -O3, LLVM lowering) needs LLVM 19; it also starts from the ONNX backend node
# tests' models when the venv has the onnx package (copied once into build-fuzz, one file each).
# KILN_FUZZ_BUILD names another build folder (default build-fuzz).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${1:-600}"
shift || true
targets=("$@")
all_targets=(onnx text_ir kir npy compile)
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

build="${KILN_FUZZ_BUILD:-build-fuzz}"
if [ ! -f "$build/build.ninja" ]; then
  CC=clang-14 meson setup "$build" -Dfuzz=enabled -Db_sanitize=address,undefined \
    -Db_lundef=false --buildtype=debugoptimized
fi
ninja -C "$build" build.ninja >/dev/null # a build folder older than a target learns of it
if ! grep -q '^tests/fuzz/fuzz_compile:' <<<"$(ninja -C "$build" -t targets all)"; then
  # no LLVM 19 where meson looked: fuzz_compile was not configured
  kept=()
  for t in "${targets[@]}"; do
    if [ "$t" = compile ]; then
      echo "fuzz.sh: no LLVM 19 in $build, fuzz_compile skipped" >&2
    else
      kept+=("$t")
    fi
  done
  targets=("${kept[@]}")
  [ ${#targets[@]} -eq 0 ] && exit 1
fi
ninja -C "$build" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}")

declare -A seeds=(
  [onnx]="tests/onnx/malformed tests/onnx/fixtures"
  [text_ir]="tests/ir/roundtrip tests/ir/errors"
  [kir]="tests/malformed/kir tests/malformed/valid"
  [npy]="tests/malformed/npy tests/malformed/valid"
  [compile]="tests/onnx/malformed tests/onnx/fixtures tests/cli/data tests/fuzz/seeds/compile"
)
node_models=(.venv/lib/python3*/site-packages/onnx/backend/test/data/node/*/model.onnx)
node_seeds="$build/tests/fuzz/seeds_compile_node"
if [[ " ${targets[*]} " == *" compile "* ]] && [ -f "${node_models[0]}" ]; then
  if [ ! -d "$node_seeds" ]; then
    rm -rf "$node_seeds.tmp"
    mkdir -p "$node_seeds.tmp"
    for m in "${node_models[@]}"; do
      cp "$m" "$node_seeds.tmp/$(basename "$(dirname "$m")").onnx"
    done
    mv "$node_seeds.tmp" "$node_seeds"
  fi
  seeds[compile]+=" $node_seeds"
fi
rows=()
status=0
for t in "${targets[@]}"; do
  work="$build/tests/fuzz/work_$t"
  set +e
  # shellcheck disable=SC2086
  line="$(tests/fuzz/run_fuzz.sh "$build/tests/fuzz/fuzz_$t" "$seconds" "$work" \
    "tests/fuzz/regress/$t" ${seeds[$t]} | tail -n 1)"
  rc=$?
  set -e
  echo "$line"
  [ "$rc" -ne 0 ] && status=1
  runs="$(sed -n 's/.* s, \([0-9]*\) runs,.*/\1/p' <<<"$line")"
  crashes="$(sed -n 's/.* runs, \([0-9]*\) crashes.*/\1/p' <<<"$line")"
  ran="$(sed -n 's/^fuzz [^:]*: \([0-9]*\) s,.*/\1/p' <<<"$line")"
  rows+=("| fuzz_$t | ${ran:-$seconds} | ${runs:-?} | ${crashes:-?} | $(date -u '+%Y-%m-%d %H:%M') |")
done
# targets not run this time keep their row from the last record
results=tests/fuzz/RESULTS.md
for t in "${all_targets[@]}"; do
  if [[ " ${targets[*]} " != *" $t "* ]] && [ -f "$results" ]; then
    old="$(grep "^| fuzz_$t |" "$results" || true)"
    [ -n "$old" ] && rows+=("$old")
  fi
done

{
  echo "# Fuzz results"
  echo
  echo "Written by \`tools/fuzz.sh\` (clang-14 libFuzzer with ASan and UBSan, the limits of"
  echo "tests/fuzz/fuzz_common.h, $(nproc) cores shared with other work); one row per target,"
  echo "from its latest run. A crash stops a target's run early."
  echo
  echo "| target | seconds | runs | crashes | run at (UTC) |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Crashes found and fixed are listed in tests/fuzz/regress/README.md; their inputs are kept"
  echo "there and replayed by every run."
} > "$results.tmp"
mv "$results.tmp" "$results"
echo "wrote $results"
exit "$status"
