# The CUDA backend's errors and coverage of text-IR graphs (POSIX sh):
#   sh errors.sh KILN SOURCE_ROOT
#   1. tests/cuda/kernels.ir (every kernel kind: convolutions with groups, pools, batch and layer
#      norm, softmax, reductions, cat, slice, pad, permute, gather, attention with a mask, casts,
#      broadcasting elementwise chains) compiles for sm_80 and sm_90 at -O0 and -O2;
#   2. every text-IR file the CPU backend's tests compile (tests/passes, tests/ir/roundtrip,
#      tests/cli/data) either compiles or fails with a clear error (an op or dtype the CUDA
#      target does not support, named with its value; a symbolic shape; a missing weight; a
#      parse error), never a crash, and never an NVRTC compile error (which would be a bug of
#      the generated code); at least 40 of them compile;
#   3. bad options: an unknown --target, an --arch that is no architecture, --arch without
#      --target cuda; control flow is refused naming the op and the value.
KILN=$1
ROOT=$2
NAME=cuda_errors
if [ ! -x "$KILN" ] || [ ! -d "$ROOT" ]; then
  echo "usage: sh $0 KILN SOURCE_ROOT" >&2
  exit 2
fi
. "$ROOT/tests/models/lib.sh"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cuda-err.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

for level in O0 O2; do
  for arch in sm_80 sm_90; do
    "$KILN" compile "$ROOT/tests/cuda/kernels.ir" -$level --target cuda --arch $arch \
      -o "$TMP/libk.so" --name k >"$TMP/k.log" 2>&1
    rc=$?
    check "kernels.ir -$level $arch: exit $rc" [ "$rc" -eq 0 ]
    [ "$rc" -eq 0 ] || show "$TMP/k.log"
  done
done

compiled=0
for f in "$ROOT"/tests/passes/*/*.ir "$ROOT"/tests/ir/roundtrip/*.ir "$ROOT"/tests/cli/data/*.ir; do
  "$KILN" compile "$f" --target cuda -o "$TMP/lib.so" --name m >"$TMP/f.log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    compiled=$((compiled + 1))
    continue
  fi
  check "$f: exit $rc (a crash?)" [ "$rc" -eq 1 ]
  check "$f: the generated CUDA did not compile" sh -c "! grep -q NVRTC '$TMP/f.log'"
  check "$f: unclear error" grep -q -E "does not support .* \(%.*\) yet|needs static shapes|has no value|unknown op|expected|unknown size" "$TMP/f.log"
  grep -q -E "does not support .* \(%.*\) yet|needs static shapes|has no value|unknown op|expected|unknown size" "$TMP/f.log" || show "$TMP/f.log"
done
echo "$compiled text-IR files compiled for CUDA"
check "only $compiled text-IR files compiled, expected at least 40" [ "$compiled" -ge 40 ]

"$KILN" compile "$ROOT/tests/cuda/kernels.ir" --target tpu -o "$TMP/x.so" >"$TMP/e1" 2>&1
check "--target tpu accepted" [ $? -eq 2 ]
check "--target tpu: no message" grep -q "target must be cpu or cuda" "$TMP/e1"
"$KILN" compile "$ROOT/tests/cuda/kernels.ir" --target cuda --arch sm_x -o "$TMP/x.so" >"$TMP/e2" 2>&1
check "--arch sm_x accepted" [ $? -ne 0 ]
check "--arch sm_x: no message" grep -q "not a CUDA architecture" "$TMP/e2"
check "--arch sm_x left a library" [ ! -e "$TMP/x.so" ]
"$KILN" compile "$ROOT/tests/cuda/kernels.ir" --arch sm_90 -o "$TMP/x.so" >"$TMP/e3" 2>&1
check "--arch without --target cuda accepted" [ $? -eq 2 ]
"$KILN" compile "$ROOT/tests/cli/data/if_relu_neg.ir" --target cuda -o "$TMP/x.so" >"$TMP/e4" 2>&1
check "prim::If accepted" [ $? -eq 1 ]
check "prim::If: unclear message" grep -q -- "--target cuda does not support prim::If (%y) yet" "$TMP/e4"

# an elementwise chain over 70 inputs: one kernel would take more arguments than a launch may
{
  printf 'graph('
  i=0
  while [ $i -lt 70 ]; do
    [ $i -gt 0 ] && printf ', '
    printf '%%x%d : Float(2)' $i
    i=$((i + 1))
  done
  printf '):\n  %%s0 : Float(2) = aten::add(%%x0, %%x1)\n'
  i=2
  while [ $i -lt 70 ]; do
    printf '  %%s%d : Float(2) = aten::add(%%s%d, %%x%d)\n' $((i - 1)) $((i - 2)) $i
    i=$((i + 1))
  done
  printf '  return (%%s68)\n'
} >"$TMP/wide.ir"
"$KILN" compile "$TMP/wide.ir" -O0 --target cuda -o "$TMP/x.so" >"$TMP/e5" 2>&1
check "70 operands in one kernel accepted" [ $? -eq 1 ]
check "70 operands: unclear message" grep -q "more than 64 operands" "$TMP/e5"
finish
