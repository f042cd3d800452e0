# The CUDA artifact's host runtime (runtime/cuda_rt.c) against a fake driver (POSIX sh):
#   sh fake_driver.sh KILN SOURCE_ROOT RUNNER FAKE_LIB
# FAKE_LIB is tests/cuda/fake_cuda.c built as a shared library; it is linked as libcuda.so.1
# into a folder only the runner's library path holds. The transformer-like
# kernels.ir artifact (sm_80) is created and run through every entry point; then each failure
# the runtime must turn into a clean status: no GPU (cuInit fails), no devices, a device index
# out of range, a GPU too old for the PTX (sm_75), failing launches.
KILN=$1
ROOT=$2
RUNNER=$3
FAKE=$4
NAME=cuda_fake_driver
. "$ROOT/tests/models/lib.sh"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cuda-fake.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/driver"
case $FAKE in /*) ;; *) FAKE=$(pwd)/$FAKE ;; esac
ln -s "$FAKE" "$TMP/driver/libcuda.so.1"
FAKE=$TMP/driver
"$KILN" compile "$ROOT/tests/cuda/kernels.ir" --target cuda --arch sm_80 -o "$TMP/libk.so" \
  --name k >"$TMP/c.log" 2>&1
check "compiling kernels.ir failed" [ $? -eq 0 ]

run() { # run LOG ENV... -- ARGS...: the runner with the fake driver
  log=$1
  shift
  env LD_LIBRARY_PATH="$FAKE" "$@" >"$TMP/$log" 2>&1
}
expect() { # expect DESCRIPTION LOG ENV... RUNNER-ARGS
  what=$1 log=$2
  shift 2
  run "$log" "$@"
  rc=$?
  check "$what (exit $rc)" [ "$rc" -eq 0 ]
  [ "$rc" -eq 0 ] || show "$TMP/$log"
}
expect "a run on the fake sm_80 device (cubin)" ok KILN_FAKE_CUDA=ok \
  "$RUNNER" "$TMP/libk.so" k --expect-run-ok
expect "a run on the fake sm_80 device (PTX fallback)" ptx KILN_FAKE_CUDA=ok \
  KILN_FAKE_CUDA_NO_CUBIN=1 "$RUNNER" "$TMP/libk.so" k --expect-run-ok
expect "a run on the fake sm_90 device (PTX JIT)" sm90 KILN_FAKE_CUDA=ok KILN_FAKE_CUDA_ARCH=90 \
  "$RUNNER" "$TMP/libk.so" k --expect-run-ok
expect "cuInit failing is not NO_DEVICE" noinit KILN_FAKE_CUDA=noinit \
  "$RUNNER" "$TMP/libk.so" k --expect-no-device
check "cuInit failure: no message" grep -q "cuInit failed" "$TMP/noinit"
expect "no devices is not NO_DEVICE" nodev KILN_FAKE_CUDA=nodevice \
  "$RUNNER" "$TMP/libk.so" k --expect-no-device
check "no devices: no message" grep -q "no CUDA device found" "$TMP/nodev"
expect "device 3 of 1 is not NO_DEVICE" range KILN_FAKE_CUDA=ok \
  "$RUNNER" "$TMP/libk.so" k --expect-no-device --device 3
check "device out of range: no message" grep -q "out of range" "$TMP/range"
expect "an sm_75 GPU is not NO_DEVICE" old KILN_FAKE_CUDA=ok KILN_FAKE_CUDA_ARCH=75 \
  "$RUNNER" "$TMP/libk.so" k --expect-no-device
check "sm_75: no message" grep -q "cannot load the model's kernels" "$TMP/old"
expect "failing launches are not a RUNTIME error" lf KILN_FAKE_CUDA=launchfail \
  "$RUNNER" "$TMP/libk.so" k --expect-launch-fail
check "failing launch: the node is not named" grep -q "aten::" "$TMP/lf"
finish
