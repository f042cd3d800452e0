# kiln compile: usage errors, bad names and models, and (when the backend compiles) the files it
# writes. The compiled libraries themselves are tested end to end in tests/artifact.
. "$(dirname "$0")/lib.sh"

run compile --help
expect_rc 0
expect_out "usage: kiln compile MODEL -o LIB.so"
expect_out "--header"
expect_out "--target-triple"
expect_out "  kiln compile model.onnx -o libnet.so --header net.h"

run compile --bogus "$DATA/add_relu.ir"
expect_rc 2
expect_err_prefix "kiln compile: unknown option '--bogus'"

run compile
expect_rc 2
expect_err "no model file given"

run compile "$DATA/add_relu.ir"
expect_rc 2
expect_err "no output given"

run compile "$DATA/add_relu.ir" "$DATA/add_relu.ir" -o "$TMP/x.so"
expect_rc 2
expect_err "expected one model file, got 2"

for bad in 9net int my-net kiln_x kl_x ''; do
  run compile "$DATA/add_relu.ir" -o "$TMP/x.so" --name "$bad"
  expect_rc 2
  expect_err "--name '$bad' is not a valid model name"
done

# the default name comes from the output file; one that cannot be made into a name is refused
run compile "$DATA/add_relu.ir" -o "$TMP/.so"
expect_rc 2
expect_err "cannot make a model name from"

run compile "$DATA/add_relu.ir" -o "$TMP/x.so" -O7
expect_rc 2
expect_err "optimization level must be -O0, -O1, -O2 or -O3, not '-O7'"

run compile "$DATA/add_relu.ir" --emit-obj "$TMP/x.o" --header "$TMP/x.h"
expect_rc 2
expect_err "--header needs a library"

run compile "$TMP/missing.kir" -o "$TMP/x.so"
expect_rc 1
expect_err_prefix "kiln: "
expect_err "missing.kir"
checks=$((checks + 1))
[ ! -e "$TMP/x.so" ] || fail "a failed compile left $TMP/x.so"

run compile "$DATA/garbage.ir" -o "$TMP/x.so"
expect_rc 1
expect_err "garbage.ir"

# a target LLVM does not know
run compile "$DATA/add_relu.ir" --target-triple nonsense-cpu-none --emit-obj "$TMP/x.o"
expect_rc 1
expect_err "nonsense-cpu-none"

# a symbolic shape cannot be compiled; the error names it
run compile "$DATA/symbolic.ir" -o "$TMP/x.so"
expect_rc 1
checks=$((checks + 1))
[ ! -e "$TMP/x.so" ] || fail "a failed compile left $TMP/x.so"

# With a working backend: the library, the header and the kept object and LLVM IR.
run compile "$DATA/add_relu.ir" -o "$TMP/libmy-model.so" --header "$TMP/m.h" \
  --emit-obj "$TMP/m.o" --emit-llvm "$TMP/m.ll"
if [ "$rc" -eq 0 ]; then
  expect_no_out
  checks=$((checks + 1))
  [ -s "$TMP/libmy-model.so" ] && [ -s "$TMP/m.o" ] && [ -s "$TMP/m.ll" ] ||
    fail "missing output files"
  checks=$((checks + 1))
  grep -q "int my_model_run(my_model_ctx \*ctx, const my_model_inputs \*in, my_model_outputs \*out);" \
    "$TMP/m.h" || fail "header lacks my_model_run"
  checks=$((checks + 1))
  grep -q "^#define MY_MODEL_WORKSPACE_SIZE UINT64_C([0-9]*)$" "$TMP/m.h" ||
    fail "header lacks MY_MODEL_WORKSPACE_SIZE"
  run run "$TMP/libmy-model.so" --input "x=$DATA/x_2x2.npy" --input "y=$DATA/y_2x2.npy"
  expect_rc 0
  expect_out "%out : Float(2, 2)"
  # --time-passes reports on stderr only
  run compile "$DATA/add_relu.ir" -o "$TMP/libt.so" --time-passes
  expect_rc 0
  expect_no_out
  checks=$((checks + 1))
  [ -s "$TMP/err" ] || fail "--time-passes printed nothing"
  # not a terminal: no progress output
  run compile "$DATA/add_relu.ir" -o "$TMP/libq.so"
  expect_rc 0
  expect_no_err
  # KILN_PROFILE: the library times each step and region and prints them as its context ends
  export KILN_PROFILE=1
  run bench "$TMP/libmy-model.so" --iters 3 --warmup 1
  unset KILN_PROFILE
  expect_rc 0
  expect_err "kiln profile of my_model: 4 runs"
  expect_err "ms/run"
  expect_err "elementwise aten::add"
  KILN_PROFILE=0 run bench "$TMP/libmy-model.so" --iters 3 --warmup 1
  expect_rc 0
  expect_no_err
else
  echo "note: the backend did not compile add_relu.ir; only usage errors were checked:" >&2
  head -3 "$TMP/err" >&2
fi

# kiln run and kiln bench on files that are not libraries or models
printf 'not an elf' > "$TMP/fake.so"
run run "$TMP/fake.so" --input "$DATA/x_2x2.npy"
expect_rc 1
run bench "$TMP/missing.so"
expect_rc 1
expect_err "missing.so"
run bench "$DATA/add_relu.ir" --iters 0
expect_rc 2
expect_err "--iters must be a number"
run run "$DATA/add_relu.ir" -O2 --input "x=$DATA/x_2x2.npy"
expect_rc 2
expect_err "go with --compiled"

finish
