#!/usr/bin/env bash
# Sets up, builds kiln with AddressSanitizer and UndefinedBehaviorSanitizer, runs every test
# suite, and ends with one line "N passed, N failed". Works from any directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash tools/setup.sh

build=build-test
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized
fi
ninja -C "$build"

set +e
meson test -C "$build" --print-errorlogs --num-processes 2 --timeout-multiplier 3 "$@"
set -e
logs=("$build/meson-logs/testlog.json")

# Fuzz (suite fuzz): the libFuzzer targets of tests/fuzz, built alone with clang in build-fuzz
# (nothing else is compiled there), each run for 10 s from its seeds; tools/fuzz.sh runs longer.
if command -v clang-14 >/dev/null; then
  fuzz=build-fuzz
  if [ ! -f "$fuzz/build.ninja" ]; then
    CC=clang-14 meson setup "$fuzz" -Dfuzz=enabled -Db_sanitize=address,undefined \
      -Db_lundef=false --buildtype=debugoptimized
  fi
  fuzz_targets=(tests/fuzz/fuzz_onnx tests/fuzz/fuzz_text_ir tests/fuzz/fuzz_kir tests/fuzz/fuzz_npy)
  # fuzz_compile (import, -O3, LLVM lowering) exists only where meson found LLVM 19; the
  # build file is brought up to date first, so a build folder from before it knows of it
  ninja -C "$fuzz" build.ninja >/dev/null
  if grep -q '^tests/fuzz/fuzz_compile:' <<<"$(ninja -C "$fuzz" -t targets all)"; then
    fuzz_targets+=(tests/fuzz/fuzz_compile)
  fi
  ninja -C "$fuzz" "${fuzz_targets[@]}"
  set +e
  meson test -C "$fuzz" --no-rebuild --print-errorlogs --suite fuzz
  set -e
  logs+=("$fuzz/meson-logs/testlog.json")
else
  echo "test.sh: clang-14 not found, the fuzz targets were not run" >&2
fi

# ThreadSanitizer (test concurrency): only tests/concurrency is built, in build-tsan.
tsan=build-tsan
if [ ! -f "$tsan/build.ninja" ]; then
  meson setup "$tsan" -Db_sanitize=thread -Db_lundef=false --buildtype=debugoptimized
fi
ninja -C "$tsan" tests/concurrency/test_concurrency
set +e
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
  meson test -C "$tsan" --no-rebuild --print-errorlogs concurrency
set -e
logs+=("$tsan/meson-logs/testlog.json")

# Count results from meson's machine-readable logs (the main build, fuzz, TSan); meson's own
# summary is not the verdict.
python3 - "${logs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
  with open(path) as f:
    for line in f:
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
tail = f", {skipped} skipped" if skipped else ""
print(f"{passed} passed, {failed} failed{tail}")
sys.exit(1 if failed or passed == 0 else 0)
PY
