#!/usr/bin/env bash
# Sets up and builds kiln, then shows what it does: two models written define-by-run in C
# (tools/examples/mlp.c and cnn.c) run eagerly, are traced to .kir files, shown as text IR and
# run again from the file; then the bundled demo model is shown and run. Works from any directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash tools/setup.sh

build=build
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release
fi
ninja -C "$build"

kiln="$build/tools/kiln"
work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Each example prints its eager output, writes NAME.kir with its input and output as .npy,
# and checks the trace on a second input.
for name in mlp cnn; do
  echo
  echo "== $name: eager run, trace, trace check (tools/examples/$name.c)"
  "$build/tools/examples/$name" "$work"
  echo
  echo "== kiln show $name.kir"
  "$kiln" show "$work/$name.kir"
  echo
  echo "== kiln run $name.kir --input ${name}_input.npy (the same numbers as the eager run)"
  "$kiln" run "$work/$name.kir" --input "$work/${name}_input.npy"
done

model=tools/examples/demo.kir
input=tools/examples/demo_input.npy

echo
echo "== kiln show --stats $model"
"$kiln" show --stats "$model"
echo
echo "== kiln run $model --input $input"
"$kiln" run "$model" --input "$input"
