#!/bin/sh
# Checks the CPU benchmark's helpers on the bundled demo model (tools/examples/demo.kir), in
# seconds: peak measures a positive FMA rate and rejects bad arguments; load opens a compiled
# artifact and reports its load time and peak RSS, and names a file that is not one; flops.py
# counts the demo's convolutions and linear layers exactly; run_bench.py renders a saved run
# with a model it could not compile listed with the reason.
#   sh check_tools.sh KILN PEAK LOAD SOURCE_ROOT
# The flops.py and run_bench.py parts need the project's .venv (tools/setup.sh) and are
# skipped without it.
set -eu
kiln=$1 peak=$2 load=$3 root=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$peak" 1 0.05) || fail "peak 1 0.05 exited $?"
echo "$out" | grep -Eq '"gflops": [0-9]*[1-9][0-9]*\.' || echo "$out" | grep -Eq '"gflops": 0\.[0-9]*[1-9]' ||
  fail "peak printed no positive rate: $out"
if "$peak" 0 2>"$work/err"; then fail "peak 0 succeeded"; fi
grep -q "THREADS from 1 to 1024" "$work/err" || fail "peak 0: $(cat "$work/err")"

"$kiln" compile "$root/tools/examples/demo.kir" -O3 -o "$work/libdemo.so" >/dev/null ||
  fail "kiln compile demo.kir"
out=$("$load" "$work/libdemo.so" 2 3) || fail "load exited $?"
for key in open_ms create_ms load_ms first_run_ms peak_rss_kib workspace_bytes weights_bytes; do
  echo "$out" | grep -q "\"$key\": [0-9]" || fail "load printed no $key: $out"
done
echo "$out" | grep -q '"peak_rss_kib": 0,' && fail "load reported no resident memory: $out"
echo garbage >"$work/libbad.so"
if "$load" "$work/libbad.so" 2>"$work/err"; then fail "load accepted a text file"; fi
grep -q "libbad.so" "$work/err" || fail "load's error names no file: $(cat "$work/err")"
if "$load" "$work/libdemo.so" 0 2>/dev/null; then fail "load accepted 0 threads"; fi

py="$root/.venv/bin/python"
if ! [ -x "$py" ] || ! "$py" -c "import onnx, onnxruntime" 2>/dev/null; then
  echo "skipping the Python parts: no $py with onnx and onnxruntime (tools/setup.sh)"
  exit 0
fi
"$kiln" export "$root/tools/examples/demo.kir" -o "$work/demo.onnx" || fail "kiln export"
# conv 8x28x28x(1x3x3) + conv 16x14x14x(8x3x3) + linear 784x32 + linear 32x10 MACs, x2
out=$("$py" "$root/tests/bench/flops.py" "$work/demo.onnx") || fail "flops.py exited $?"
echo "$out" | grep -q '"flops": 615296,' || fail "flops.py: want 615296 flops, got $out"
echo "$out" | grep -q '"unknown": \[\]' || fail "flops.py left nodes uncounted: $out"

# A saved run with one good row and one model kiln could not compile.
cat >"$work/r.json" <<'JSON'
{"meta": {"date": "2026-01-01 00:00 UTC", "machine": "m", "cpu": "c", "cpus": 2, "kernel": "k",
  "onnxruntime": "1", "quick": true, "rounds": 3, "loadavg_start": [0.1, 0.1, 0.1],
  "loadavg_end": [0.1, 0.1, 0.1], "peak": {"1": {"isa": "avx2", "threads": 1, "gflops": 100.0}}},
 "results": [
  {"model": "good", "flops": 2000000000, "compile_s": 1.5, "kiln_error": null, "ort_error": null,
   "rows": [{"threads": 1, "peak_gflops": 100.0, "kiln_ms": 40.0, "ort_ms": 50.0, "ratio": 0.8,
             "kiln_gflops": 50.0, "kiln_pct_peak": 50.0, "ort_gflops": 40.0, "load_ms": 1.25,
             "peak_rss_mib": 12.5}]},
  {"model": "bad", "flops": 10, "compile_s": 0.1, "kiln_error": "kiln compile failed: no op X",
   "ort_error": null, "rows": [{"threads": 1, "peak_gflops": 100.0, "ort_ms": 1.0}]}]}
JSON
"$py" "$root/tests/bench/run_bench.py" --json "$work/r.json" --markdown "$work/R.md" \
  --render-only >"$work/table" || fail "run_bench.py --render-only exited $?"
grep -q "^good  *1  *40.000  *50.000  *0.80 " "$work/table" || fail "table: $(cat "$work/table")"
grep -q "^| bad | 1 | — | 1.000 | — |" "$work/R.md" || fail "no row for bad: $(cat "$work/R.md")"
grep -q "^- bad: kiln: kiln compile failed: no op X" "$work/R.md" || fail "reason for bad missing"
grep -q "tiny models (bad)" "$work/R.md" || fail "no note on timing tiny models through Python"
# A second render keeps what lies outside the generated section.
echo "hand-written record" >>"$work/R.md"
"$py" "$root/tests/bench/run_bench.py" --json "$work/r.json" --markdown "$work/R.md" \
  --render-only >/dev/null || fail "second render"
grep -q "hand-written record" "$work/R.md" || fail "the second render dropped the record"
[ "$(grep -c "bench:begin" "$work/R.md")" = 1 ] || fail "the second render doubled the section"
echo "ok"
