#!/usr/bin/env bash
# The CPU benchmark: kiln's compiled artifacts against ONNX Runtime, side by side.
#
#   bash tools/bench.sh [--quick] [--models a,b] [--threads 1,2]
#
# Sets up (tools/setup.sh), builds the release build in build/, exports the benchmark models
# with PyTorch where missing (tests/models/torch/export_models.py; cached under
# build/bench-models/), then tests/bench/run_bench.py compiles each with `kiln compile -O3`
# and times kiln and ONNX Runtime in interleaved rounds at batch 1 for each thread count.
# Prints a table and writes tests/bench/results.json and tests/bench/RESULTS.md. --quick runs
# fewer rounds and iterations. Not a test: it measures, it does not judge. Works from any
# directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

all_models=mlp,resnet18,mobilenet_v2,bert,efficientnet_b0,gpt
models=$all_models
threads=1,2
quick=()
usage() {
  echo "usage: bash tools/bench.sh [--quick] [--models a,b,...] [--threads 1,2,...]" >&2
  echo "models: $all_models" >&2
  exit 2
}
while (($#)); do
  case $1 in
    --quick) quick=(--quick) ;;
    --models) (($# >= 2)) || usage; models=$2; shift ;;
    --models=*) models=${1#--models=} ;;
    --threads) (($# >= 2)) || usage; threads=$2; shift ;;
    --threads=*) threads=${1#--threads=} ;;
    -h | --help) usage ;;
    *) echo "bench.sh: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
[[ $threads =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || {
  echo "bench.sh: --threads takes positive numbers separated by commas, not '$threads'" >&2
  exit 2
}
IFS=, read -ra wanted <<<"$models"
((${#wanted[@]})) || usage
for m in "${wanted[@]}"; do
  [[ ,$all_models, == *,$m,* ]] || { echo "bench.sh: unknown model '$m' (models: $all_models)" >&2; exit 2; }
done

bash tools/setup.sh

build=build
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release
fi
ninja -C "$build" tools/kiln codegen/libkilnrt.a tests/bench/peak tests/bench/load

# Exports are stamped by export_models.py: a current one is not exported again. Without
# PyTorch it exits 77 and the missing models are reported as such in the results.
out="$build/bench-models"
mkdir -p "$out"
rc=0
/usr/bin/python3 tests/models/torch/export_models.py "$out" --models "$models" || rc=$?
if ((rc != 0 && rc != 77)); then
  echo "bench.sh: exporting the models failed (exit $rc); models not exported are reported" >&2
fi

exec "$root/.venv/bin/python" tests/bench/run_bench.py \
  --kiln "$build/tools/kiln" --peak "$build/tests/bench/peak" --load "$build/tests/bench/load" \
  --models-dir "$out" --models "$models" --threads "$threads" "${quick[@]}" \
  --json tests/bench/results.json --markdown tests/bench/RESULTS.md
