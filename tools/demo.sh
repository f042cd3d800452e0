#!/usr/bin/env bash
# Sets up and builds kiln, then shows and runs the bundled demo model. Works from any directory.
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
model=tools/examples/demo.kir
input=tools/examples/demo_input.npy

echo
echo "== kiln show --stats $model"
"$kiln" show --stats "$model"
echo
echo "== kiln run $model --input $input"
"$kiln" run "$model" --input "$input"
