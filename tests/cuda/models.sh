# The CUDA backend on whole models, without a GPU (POSIX sh):
#   sh models.sh KILN SOURCE_ROOT RUNNER EXAMPLE...
# EXAMPLE: the define-by-run example programs (tools/examples: mlp, cnn, transformer, resnet18),
# each tracing its model into a temporary folder; the demo model comes from the tree. For every
# model, at -O2 (and ResNet-18 and the transformer at -O3 too, where fusion groups appear), and
# for sm_80 and sm_90:
#   1. `kiln compile --target cuda --arch ARCH` succeeds: every kernel compiled with NVRTC to PTX
#      and a cubin, and the host part linked;
#   2. the library needs no CUDA library at link time (readelf -d: no cudart, nvrtc or libcuda)
#      and exports the typed API with NAME_run_device and kiln_model_NAME; the header declares
#      NAME_run_device;
#   3. with no GPU here (no nvidia-smi), `kiln run LIB.so` fails with a non-zero exit and the
#      no-device message, and the runner sees create return KL_ARTIFACT_ERR_NO_DEVICE with a
#      message. With a GPU, step 3 is skipped (tests/cuda/run_on_device.sh compares results).
KILN=$1
ROOT=$2
RUNNER=$3
shift 3
NAME=cuda_models
if [ ! -x "$KILN" ] || [ ! -d "$ROOT" ] || [ ! -x "$RUNNER" ]; then
  echo "usage: sh $0 KILN SOURCE_ROOT RUNNER EXAMPLE..." >&2
  exit 2
fi
. "$ROOT/tests/models/lib.sh"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cuda.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

have_gpu=0
command -v nvidia-smi >/dev/null 2>&1 && have_gpu=1

models=""
for ex in "$@"; do
  m=$(basename "$ex")
  "$ex" "$TMP" >"$TMP/$m.example.out" 2>&1
  check "$m: the example program failed" [ -f "$TMP/$m.kir" ]
  [ -f "$TMP/$m.kir" ] && models="$models $m"
done
cp "$ROOT/tools/examples/demo.kir" "$ROOT/tools/examples/demo_input.npy" "$TMP/"
models="$models demo"

compile_one() { # compile_one MODEL LEVEL ARCH
  m=$1 level=$2 arch=$3
  lib=$TMP/lib${m}_$level$arch.so
  name=${m}_$level$arch
  "$KILN" compile "$TMP/$m.kir" -$level --target cuda --arch "$arch" -o "$lib" --name "$name" \
    --header "$TMP/$name.h" >"$TMP/$name.log" 2>&1
  rc=$?
  check "$m -$level $arch: kiln compile --target cuda exited $rc" [ "$rc" -eq 0 ]
  if [ "$rc" -ne 0 ]; then
    show "$TMP/$name.log"
    return
  fi
  readelf -d "$lib" >"$TMP/$name.dyn" 2>&1
  check "$m -$level $arch: readelf -d failed" grep -q NEEDED "$TMP/$name.dyn"
  check "$m -$level $arch: the library needs a CUDA library" \
    sh -c "! grep NEEDED '$TMP/$name.dyn' | grep -q -i -E 'cudart|nvrtc|libcuda'"
  nm -D --defined-only "$lib" >"$TMP/$name.syms" 2>&1
  for s in kiln_model_$name ${name}_create ${name}_create_with ${name}_run ${name}_run_device \
           ${name}_set_threads ${name}_destroy ${name}_error_message ${name}_status_message; do
    check "$m -$level $arch: $s is not exported" grep -q " $s\$" "$TMP/$name.syms"
  done
  n_syms=$(wc -l <"$TMP/$name.syms")
  check "$m -$level $arch: $n_syms exported symbols, expected 9" [ "$n_syms" -eq 9 ]
  check "$m -$level $arch: the header lacks ${name}_run_device" \
    grep -q "int ${name}_run_device(" "$TMP/$name.h"
  if [ "$have_gpu" -eq 0 ]; then
    input=$("$KILN" show "$TMP/$m.kir" | head -n 1 | sed 's/^graph(%\([A-Za-z0-9_.]*\).*/\1/')
    "$KILN" run "$lib" --input "$input=$TMP/${m}_input.npy" -o "$TMP/$name.out.npy" \
      >"$TMP/$name.run" 2>&1
    rc=$?
    check "$m -$level $arch: kiln run without a GPU exited $rc, expected non-zero" [ "$rc" -ne 0 ]
    check "$m -$level $arch: kiln run did not say there is no device" \
      grep -q "no usable CUDA device" "$TMP/$name.run"
    [ "$rc" -ne 0 ] || show "$TMP/$name.run"
    "$RUNNER" "$lib" "$name" --expect-no-device >"$TMP/$name.runner" 2>&1
    rc=$?
    check "$m -$level $arch: create did not fail cleanly with NO_DEVICE" [ "$rc" -eq 0 ]
    [ "$rc" -eq 0 ] || show "$TMP/$name.runner"
  fi
}

for m in $models; do
  for arch in sm_80 sm_90; do
    compile_one "$m" O2 "$arch"
    case $m in resnet18|transformer) compile_one "$m" O3 "$arch" ;; esac
  done
done
[ "$have_gpu" -eq 0 ] && echo "no GPU here: the no-device path was checked; GPU results come from run_on_device.sh"
finish
