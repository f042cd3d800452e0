#!/bin/sh
# Runs the conformance harness on the ONNX backend node tests shipped by the onnx package in
# the source tree's .venv (tools/setup.sh installs it):
#   sh run_conformance.sh CONFORMANCE SOURCE_ROOT [--floor-from REPORT.md] [harness options]
# Exits 77 (meson: skipped) when there is no such package, so the suite needs neither the
# network nor Python where the venv is absent. --floor-from passes --min-pass: the pass count
# on the summary line of the committed report less a margin of 5, so a regression fails.
conformance=$1
root=$2
shift 2
floor=
if [ "$1" = "--floor-from" ]; then
  passed=$(sed -n 's/^[0-9][0-9]* cases: \([0-9][0-9]*\) passed.*/\1/p' "$2" | head -n 1)
  if [ -z "$passed" ]; then
    echo "run_conformance: no summary line in $2" >&2
    exit 1
  fi
  floor=$((passed > 5 ? passed - 5 : 0))
  shift 2
fi
node_dir=
for d in "$root"/.venv/lib/python3*/site-packages/onnx/backend/test/data/node; do
  [ -d "$d" ] && node_dir=$d
done
if [ -z "$node_dir" ]; then
  echo "skipped: no onnx package in $root/.venv (run tools/setup.sh) to take the node tests from"
  exit 77
fi
if [ -n "$floor" ]; then
  exec "$conformance" "$node_dir" --min-pass "$floor" "$@"
fi
exec "$conformance" "$node_dir" "$@"
