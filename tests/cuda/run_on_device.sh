#!/bin/bash
# CUDA artifacts against the CPU on a GPU machine.
#
#   bash tests/cuda/run_on_device.sh prepare DIR KILN RUNNER_SOURCE_ROOT EXAMPLE...
#       (here, where kiln, NVRTC and LLVM are) builds into DIR, for every test model (the
#       define-by-run examples EXAMPLE..., the demo model, tests/cuda/kernels.ir with random
#       inputs): lib<model>_sm_80.so and lib<model>_sm_90.so (--target cuda), the inputs
#       in<i>.npy and the CPU reference outputs expected<i>.npy (`kiln run`, the interpreter),
#       the runner's source (tests/cuda/runner.c with runtime/artifact.h) and device.sh.
#   bash DIR/device.sh
#       (on the GPU machine: needs only cc, libc and the driver) builds the runner and runs
#       every artifact, comparing with rtol 1e-4 and atol 1e-4 (strict FP32) and timing 50 runs;
#       sm_90 artifacts load their cubin on an sm_90 GPU, sm_80 ones the PTX (JIT). It prints one
#       line per output and exits non-zero if any disagrees. With $OUT set it also writes
#       $OUT/results.txt.
#   bash tests/cuda/run_on_device.sh check KILN RUNNER EXAMPLE...
#       (the cuda_gpu test) exits 77 (skip) without nvidia-smi; with a GPU it prepares into a
#       temporary folder and runs device.sh there.
#
# With the `device` tool: prepare into a folder of the working tree that git does not ignore
# (say tests/cuda/device_run, left untracked), then run `bash tests/cuda/device_run/device.sh`.
set -u
mode=${1:-}
shift || true

prepare() {
  local dir=$1 kiln=$2 root=$3
  shift 3
  mkdir -p "$dir/src/tests/cuda" "$dir/src/runtime" "$dir/models" || return 1
  cp "$root/tests/cuda/runner.c" "$dir/src/tests/cuda/" || return 1
  cp "$root/runtime/artifact.h" "$dir/src/runtime/" || return 1
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cuda-prep.XXXXXX") || return 1
  local models=""
  for ex in "$@"; do
    "$ex" "$work" >/dev/null 2>&1 || { echo "prepare: $ex failed" >&2; return 1; }
    models="$models $(basename "$ex")"
  done
  cp "$root/tools/examples/demo.kir" "$root/tools/examples/demo_input.npy" "$work/"
  models="$models demo"
  local m
  for m in $models; do
    local md=$dir/models/$m
    mkdir -p "$md"
    local input
    input=$("$kiln" show "$work/$m.kir" | head -n 1 | sed 's/^graph(%\([A-Za-z0-9_.]*\).*/\1/')
    cp "$work/${m}_input.npy" "$md/in0.npy"
    "$kiln" run "$work/$m.kir" --input "$input=$md/in0.npy" -o "$md/expected0.npy" ||
      { echo "prepare: kiln run $m failed" >&2; return 1; }
    echo "$m" >"$md/name"
  done
  # kernels.ir: random inputs (numpy), reference outputs from the interpreter
  local kd=$dir/models/kernels
  mkdir -p "$kd"
  python3 - "$kiln" "$root/tests/cuda/kernels.ir" "$kd" <<'PY' || { echo "prepare: kernels.ir inputs failed" >&2; return 1; }
import re, subprocess, sys
import numpy as np
kiln, ir, out = sys.argv[1:4]
head = open(ir).readline()
rng = np.random.default_rng(7)
types = {"Float": np.float32, "Bool": np.bool_, "Long": np.int64, "Int": np.int32}
args = []
for i, (name, ty, dims) in enumerate(re.findall(r"%(\w+) : (\w+)\(([^)]*)\)", head)):
    shape = [int(d) for d in dims.split(",") if d.strip()]
    if ty == "Float":
        a = rng.standard_normal(shape).astype(np.float32)
        if name == "rv":
            a = np.abs(a) + 0.5
    elif ty == "Bool":
        a = rng.random(shape) < 0.7
        if name == "mask":
            a[:, 0] = True
    else:
        a = rng.integers(0, 10, shape).astype(types[ty])
    path = "%s/in%d.npy" % (out, i)
    np.save(path, a)
    args += ["--input", "%s=%s" % (name, path)]
rets = re.search(r"return \(([^)]*)\)", open(ir).read()).group(1)
for i, r in enumerate(x.strip().lstrip("%") for x in rets.split(",")):
    args += ["-o", "%s=%s/expected%d.npy" % (r, out, i)]
subprocess.run([kiln, "run", ir] + args, check=True)
PY
  cp "$root/tests/cuda/kernels.ir" "$work/kernels.kir"
  echo kernels >"$kd/name"
  models="$models kernels"
  for m in $models; do
    for arch in sm_80 sm_90; do
      local src=$work/$m.kir
      [ "$m" = kernels ] && src=$root/tests/cuda/kernels.ir
      "$kiln" compile "$src" --target cuda --arch $arch -o "$dir/models/$m/lib${m}_$arch.so" \
        --name "${m}_$arch" || { echo "prepare: compiling $m for $arch failed" >&2; return 1; }
    done
  done
  rm -rf "$work"
  cat >"$dir/device.sh" <<'DEV'
#!/bin/bash
# Runs every CUDA artifact of this folder and compares it with the CPU (see run_on_device.sh).
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${OUT:-}" ] && exec > >(tee "$OUT/results.txt") 2>&1
cc -O2 -o "$here/runner" "$here/src/tests/cuda/runner.c" -ldl -lm || exit 1
nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader 2>&1 | head -n 1
date -u
fail=0
for md in "$here"/models/*/; do
  m=$(cat "$md/name")
  for arch in sm_80 sm_90; do
    "$here/runner" "$md/lib${m}_$arch.so" "${m}_$arch" "$md" --iters 50 || fail=1
  done
done
echo "device.sh: $([ $fail -eq 0 ] && echo all outputs agree || echo SOME OUTPUTS DISAGREE)"
exit $fail
DEV
  chmod +x "$dir/device.sh"
  echo "prepared $dir:$models"
}

case $mode in
prepare)
  [ $# -ge 3 ] || { echo "usage: bash $0 prepare DIR KILN SOURCE_ROOT EXAMPLE..." >&2; exit 2; }
  prepare "$@"
  ;;
check)
  [ $# -ge 2 ] || { echo "usage: bash $0 check KILN RUNNER EXAMPLE..." >&2; exit 2; }
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "no nvidia-smi: no GPU here, skipping the device comparison"
    exit 77
  fi
  kiln=$1
  shift 2
  root=$(cd "$(dirname "$0")/../.." && pwd)
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cuda-dev.XXXXXX") || exit 1
  trap 'rm -rf "$tmp"' EXIT
  prepare "$tmp" "$kiln" "$root" "$@" || exit 1
  bash "$tmp/device.sh"
  ;;
*)
  echo "usage: bash $0 prepare DIR KILN SOURCE_ROOT EXAMPLE... | check KILN RUNNER EXAMPLE..." >&2
  exit 2
  ;;
esac
