#!/usr/bin/env bash
# Sets up and builds kiln, then tells its story end to end and times each step:
#   1. a CNN written define-by-run in C (tools/examples/cnn.c) runs eagerly and is traced to .kir
#   2. kiln opt -O3 fuses it; kiln compile turns it into a standalone libcnn.so and cnn.h
#   3. the .so runs (kiln run drives any artifact) and gives the eager numbers
#   4. a C program built against the generated header alone runs a compiled model
#   5. kiln export writes the traced model as ONNX, which ONNX Runtime runs to the same numbers
#   6. a ResNet-18 exported by PyTorch is imported, compiled, run, and checked against PyTorch
# and prints a table of the steps and their times. Works from any directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash tools/setup.sh

build=build
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release
fi
ninja -C "$build"

kiln="$root/$build/tools/kiln"
py="$root/.venv/bin/python"
compare="$root/tests/models/torch/compare.py"
work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"

steps=()
times=()
now() { date +%s.%N; }
# step "what it shows" command...: prints a heading, runs the command, records its time.
step() {
  local what=$1
  shift
  echo
  echo "== $what"
  echo "\$ ${*/#$root\//}"
  local t0 t1
  t0=$(now)
  "$@"
  t1=$(now)
  steps+=("$what")
  times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
}

step "trace a CNN written define-by-run in C" "$root/$build/tools/examples/cnn" .
step "show the traced graph" "$kiln" show cnn.kir
step "optimize: fuse conv + bias + relu chains" "$kiln" opt cnn.kir -O3 -o cnn.opt.kir
"$kiln" show --stats cnn.opt.kir | sed -n '1,12p'
step "compile to a standalone shared library" \
  "$kiln" compile cnn.kir -O3 -o libcnn.so --header cnn.h --time-passes
echo "libcnn.so needs only:" $(readelf -d libcnn.so | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p')
step "run the .so (the same numbers as the eager run)" \
  "$kiln" run libcnn.so --input cnn_input.npy -o cnn_compiled.npy
"$py" "$compare" cnn_compiled.npy cnn_output.npy --rtol 1e-4 --atol 1e-5

# A C program that knows nothing of kiln but the generated header runs a compiled model.
step "compile the bundled demo model and a C program using its header" bash -c "
  '$kiln' compile '$root/tools/examples/demo.kir' -o libnet.so --name net --header net.h &&
  cc -O2 -o use_artifact '$root/tools/examples/use_artifact.c' -I. -L. -lnet -Wl,-rpath,'\$ORIGIN'"
step "run that C program" ./use_artifact

step "export the traced CNN to ONNX" "$kiln" export cnn.kir -o cnn.onnx
step "run the exported ONNX in ONNX Runtime" "$py" -c "
import numpy as np, onnxruntime as ort
s = ort.InferenceSession('cnn.onnx', providers=['CPUExecutionProvider'])
x = np.load('cnn_input.npy')
y = s.run(None, {s.get_inputs()[0].name: x})[0]
want = np.load('cnn_output.npy')
print('ONNX Runtime output matches kiln:', np.allclose(y, want, rtol=1e-4, atol=1e-5))"

models="$root/$build/demo-models"
if /usr/bin/python3 -c "import torch, torchvision" 2>/dev/null; then
  step "export ResNet-18 from PyTorch to ONNX (cached after the first run)" \
    /usr/bin/python3 "$root/tests/models/torch/export_models.py" "$models" --models resnet18
  step "import the PyTorch ONNX model" "$kiln" import "$models/resnet18/model.onnx" -o resnet18.kir
  step "compile ResNet-18" "$kiln" compile resnet18.kir -O3 -o libresnet18.so
  step "run ResNet-18 compiled" \
    "$kiln" run libresnet18.so --input "$models/resnet18/input.npy" -o resnet18_out.npy
  echo "kiln's compiled ResNet-18 against PyTorch's output:"
  "$py" "$compare" resnet18_out.npy "$models/resnet18/output.npy"
  step "time it through the C API" "$kiln" bench libresnet18.so \
    --input "$models/resnet18/input.npy" --iters 10
else
  echo
  echo "(skipping the PyTorch part: /usr/bin/python3 cannot import torch and torchvision)"
fi

echo
echo "== the story, step by step"
printf '%-70s %9s\n' "step" "seconds"
total=0
for i in "${!steps[@]}"; do
  printf '%-70s %9s\n' "${steps[$i]}" "${times[$i]}"
  total=$(awk -v a="$total" -v b="${times[$i]}" 'BEGIN { printf "%.3f", a + b }')
done
printf '%-70s %9s\n' "total" "$total"
