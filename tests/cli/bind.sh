# --bind NAME=FILE.npy: graph inputs bound to values at compile time. reshape_input.onnx is
# y = relu(reshape(x, shape)) with the shape a graph input (make_reshape_onnx.py), so its
# shapes depend on the value of `shape`: it compiles only with that input bound, and the
# library then takes x alone. Its output must be what the interpreter computes from both.
. "$(dirname "$0")/lib.sh"

M="$DATA/reshape_input.onnx"
# relu([[1, -2], [3, -4], [5, -6]]) as float32, little-endian: [[1, 0], [3, 0], [5, 0]]
Y_HEX="00 00 80 3f 00 00 00 00 00 00 40 40 00 00 00 00 00 00 a0 40 00 00 00 00"

# the interpreter needs no --bind: it reads the shape at run time
run run "$M" --input "x=$DATA/x_2x3.npy" --input "shape=$DATA/shape_3x2.npy" -o "$TMP/interp.npy"
expect_rc 0
checks=$((checks + 1))
[ "$(hex_tail "$TMP/interp.npy" 24)" = "$Y_HEX" ] ||
  fail "the interpreter computes $(hex_tail "$TMP/interp.npy" 24)"

# the help of every command that takes --bind says what it does, with an example
for c in compile run bench opt; do
  run "$c" --help
  expect_rc 0
  expect_out "--bind NAME=FILE.npy"
  expect_out "replace graph input NAME by a"
  expect_out "--bind shape=shape.npy"
done

# without --bind: the error names the input whose value decides shapes and the flag to use
run compile "$M" -o "$TMP/libr.so"
expect_rc 1
expect_err_prefix "kiln: "
expect_err "the graph's shapes depend on the values of input 'shape'"
expect_err "onnx::Deferred Reshape node defining %r"
expect_err "--bind shape=FILE.npy"
checks=$((checks + 1))
[ ! -e "$TMP/libr.so" ] || fail "a failed compile left libr.so"
# -O0 runs no passes, so even a bound shape stays a deferred node: the error says so
run compile "$M" -o "$TMP/libr.so" -O0 --bind "shape=$DATA/shape_3x2.npy"
expect_rc 1
expect_err "-O0 runs no passes"
# kiln run --compiled goes through the same compile and the same error
run run "$M" --compiled --cache-dir "$TMP/cache" -i "x=$DATA/x_2x3.npy" -i "shape=$DATA/shape_3x2.npy"
expect_rc 1
expect_err "--bind shape=FILE.npy"

# bad --bind values: a wrong dtype or shape names the input, the file and both types
run compile "$M" -o "$TMP/libr.so" --bind "shape=$DATA/shape_3x2_i32.npy"
expect_rc 1
expect_err "--bind shape=$DATA/shape_3x2_i32.npy: input 'shape' is Long(2), but $DATA/shape_3x2_i32.npy is Int(2)"
run compile "$M" -o "$TMP/libr.so" --bind "shape=$DATA/shape_3x2x1.npy"
expect_rc 1
expect_err "input 'shape' is Long(2), but $DATA/shape_3x2x1.npy is Long(3)"
# an unknown name lists the model's inputs
run compile "$M" -o "$TMP/libr.so" --bind "shap=$DATA/shape_3x2.npy"
expect_rc 1
expect_err "no graph input named 'shap' to bind; the graph's inputs are x (Float(2, 3)), shape (Long(2))"
# a missing or unreadable file
run compile "$M" -o "$TMP/libr.so" --bind "shape=$TMP/missing.npy"
expect_rc 1
expect_err "--bind shape=$TMP/missing.npy: $TMP/missing.npy: cannot open"
run compile "$M" -o "$TMP/libr.so" --bind "shape=$M"
expect_rc 1
expect_err "not a .npy file"
checks=$((checks + 1))
[ ! -e "$TMP/libr.so" ] || fail "a failed compile left libr.so"
# usage errors: no NAME=FILE, an input bound twice, --bind without --compiled or on a library
run compile "$M" -o "$TMP/libr.so" --bind shape
expect_rc 2
expect_err "--bind shape: expected NAME=FILE.npy"
run compile "$M" -o "$TMP/libr.so" --bind "shape=$DATA/shape_3x2.npy" --bind "shape=$DATA/shape_6x1.npy"
expect_rc 2
expect_err "input 'shape' is bound twice"
run run "$M" --bind "shape=$DATA/shape_3x2.npy" -i "x=$DATA/x_2x3.npy"
expect_rc 2
expect_err "--bind go with --compiled"

# with --bind the model compiles; the library has one input, x, and matches the interpreter
run compile "$M" -o "$TMP/libr.so" --header "$TMP/r.h" --bind "shape=$DATA/shape_3x2.npy"
if [ "$rc" -eq 0 ]; then
  expect_no_out
  checks=$((checks + 1))
  grep -q "const float \*x;" "$TMP/r.h" && ! grep -q "shape;" "$TMP/r.h" ||
    fail "the header's inputs are not x alone: $(grep -n ';' "$TMP/r.h" | head -20)"
  run run "$TMP/libr.so" --input "$DATA/x_2x3.npy" -o "$TMP/compiled.npy"
  expect_rc 0
  checks=$((checks + 1))
  cmp -s "$TMP/interp.npy" "$TMP/compiled.npy" ||
    fail "the library computes $(hex_tail "$TMP/compiled.npy" 24), the interpreter $Y_HEX"
  run run "$TMP/libr.so" --input "x=$DATA/x_2x3.npy" --input "shape=$DATA/shape_3x2.npy"
  expect_rc 1
  expect_err "no input named 'shape'"

  # kiln run --compiled and kiln bench share the compile (and the cache), with the same flag
  cp "$DATA/shape_3x2.npy" "$TMP/s.npy"
  run run "$M" --compiled -v --cache-dir "$TMP/cache" --bind "shape=$TMP/s.npy" \
    -i "x=$DATA/x_2x3.npy" -o "$TMP/cached.npy"
  expect_rc 0
  expect_err "kiln: compiled $TMP/cache/"
  checks=$((checks + 1))
  cmp -s "$TMP/interp.npy" "$TMP/cached.npy" || fail "run --compiled --bind computes another y"
  run run "$M" --compiled -v --cache-dir "$TMP/cache" --bind "shape=$TMP/s.npy" -i "x=$DATA/x_2x3.npy"
  expect_rc 0
  expect_err "compiled (cached)"
  expect_out "%y : Float(3, 2)"
  # the cache key covers the bound value: another value in the same file is another library
  cp "$DATA/shape_6x1.npy" "$TMP/s.npy"
  run run "$M" --compiled -v --cache-dir "$TMP/cache" --bind "shape=$TMP/s.npy" -i "x=$DATA/x_2x3.npy"
  expect_rc 0
  expect_out "%y : Float(6, 1)"
  checks=$((checks + 1))
  ! grep -q "(cached)" "$TMP/err" || fail "a changed bound value came from the cache"
  # a bound input takes no --input
  run run "$M" --compiled --cache-dir "$TMP/cache" --bind "shape=$TMP/s.npy" \
    -i "x=$DATA/x_2x3.npy" -i "shape=$DATA/shape_3x2.npy"
  expect_rc 1
  expect_err "input 'shape' is bound at compile time (--bind shape=$TMP/s.npy)"
  run bench "$M" --cache-dir "$TMP/cache" --bind "shape=$TMP/s.npy" --iters 2 --warmup 0
  expect_rc 0
  expect_out "median"
  run bench "$TMP/libr.so" --bind "shape=$DATA/shape_3x2.npy" --iters 2
  expect_rc 2
  expect_err "already a compiled library"
else
  echo "note: the backend did not compile $M with --bind; only the errors were checked:" >&2
  head -3 "$TMP/err" >&2
fi

# kiln opt --bind writes the static graph: one input, a plain reshape
run opt "$M" --bind "shape=$DATA/shape_3x2.npy" -o -
expect_rc 0
expect_out_line "graph\(%x : Float\(2, 3\)\):"
expect_out "aten::reshape[shape=[3, 2]](%x)"
expect_out "%y : Float(3, 2) = aten::relu"

finish
