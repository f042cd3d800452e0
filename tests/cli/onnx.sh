# kiln import / export and .onnx models in show and run, on tiny.onnx (made by make_onnx.py):
# y = relu(x @ W^T + b), x (2, 2), W (3, 2); with x_2x2.npy y is [[1.5, 0, 0], [3.5, 0, 0]].
. "$(dirname "$0")/lib.sh"

# import: a one-line summary and a .kir that loads and runs
run import "$DATA/tiny.onnx" -o "$TMP/tiny.kir"
expect_rc 0
expect_no_err
expect_out_line ".*tiny\.onnx -> .*tiny\.kir: 1 input, 1 output, 4 nodes, 2 parameters \(9 elements\)"
run show "$TMP/tiny.kir"
expect_rc 0
expect_out_line "graph\(%x : Float\(2, 2\)\):"
expect_out "aten::linear(%x, %fc.weight, %fc.bias)"
expect_out "aten::relu"
run run "$TMP/tiny.kir" --input "$DATA/x_2x2.npy"
expect_rc 0
expect_out_line "tensor\(\[\[1\.5000, 0\.0000, 0\.0000\],"
expect_out_line "        \[3\.5000, 0\.0000, 0\.0000\]\]\)"

# import to text IR
run import "$DATA/tiny.onnx" -o "$TMP/tiny.ir"
expect_rc 0
checks=$((checks + 1))
grep -q "aten::linear" "$TMP/tiny.ir" || fail "tiny.ir has no aten::linear"

# show, show --stats and run read .onnx directly
run show "$DATA/tiny.onnx"
expect_rc 0
expect_out "aten::linear(%x, %fc.weight, %fc.bias)"
run show --stats "$DATA/tiny.onnx"
expect_rc 0
expect_out_line "parameters: 2 tensors .*"
run run "$DATA/tiny.onnx" --input "$DATA/x_2x2.npy" -o "$TMP/y.npy"
expect_rc 0
expect_no_out
# 1.5, 0, 0, 3.5, 0, 0 as little-endian float32
checks=$((checks + 1))
[ "$(hex_tail "$TMP/y.npy" 24)" = "00 00 c0 3f 00 00 00 00 00 00 00 00 00 00 60 40 00 00 00 00 00 00 00 00" ] ||
  fail "y.npy data is $(hex_tail "$TMP/y.npy" 24)"

# export: .kir -> .onnx -> run again gives the same numbers; the default opset is 17
run export "$TMP/tiny.kir" -o "$TMP/back.onnx"
expect_rc 0
expect_no_out
expect_no_err
run run "$TMP/back.onnx" --input "$DATA/x_2x2.npy" -o "$TMP/y2.npy"
expect_rc 0
checks=$((checks + 1))
cmp -s "$TMP/y.npy" "$TMP/y2.npy" || fail "the exported model computes something else"
checks=$((checks + 1))
grep -q "kiln" "$TMP/back.onnx" || fail "back.onnx does not name its producer"
# import(export(import(tiny))) prints as import(tiny)
run show "$TMP/back.onnx"
expect_rc 0
cp "$TMP/out" "$TMP/back.txt"
run show "$TMP/tiny.kir"
checks=$((checks + 1))
cmp -s "$TMP/out" "$TMP/back.txt" || fail "export then import changed the IR"
# a text IR model exports too, and every opset in range is accepted
run export "$DATA/add_relu.ir" -o "$TMP/add_relu.onnx" --opset 13
expect_rc 0
run run "$TMP/add_relu.onnx" --input x="$DATA/x_2x2.npy" --input y="$DATA/y_2x2.npy" -o "$TMP/ar.npy"
expect_rc 0
checks=$((checks + 1))
[ "$(hex_tail "$TMP/ar.npy" 16)" = "00 00 c0 3f 00 00 00 00 00 00 60 40 00 00 00 00" ] ||
  fail "add_relu.onnx computes $(hex_tail "$TMP/ar.npy" 16)"
run export "$TMP/tiny.kir" -o "$TMP/o21.onnx" --opset=21
expect_rc 0

# errors: missing file, a file that is not ONNX, bad options
run import "$TMP/missing.onnx" -o "$TMP/m.kir"
expect_rc 1
expect_err_prefix "kiln: "
expect_err "missing.onnx"
checks=$((checks + 1))
[ ! -e "$TMP/m.kir" ] || fail "a failed import left m.kir"
printf 'this is not a protobuf message\377\377\377' >"$TMP/bad.onnx"
run import "$TMP/bad.onnx" -o "$TMP/bad.kir"
expect_rc 1
expect_err "bad.onnx"
checks=$((checks + 1))
[ ! -e "$TMP/bad.kir" ] || fail "a failed import left bad.kir"
run show "$TMP/bad.onnx"
expect_rc 1
expect_err "bad.onnx"
run run "$TMP/missing.onnx" --input "$DATA/x_2x2.npy"
expect_rc 1
expect_err "missing.onnx"
run import "$DATA/tiny.onnx"
expect_rc 2
expect_err_prefix "kiln import: no output file given"
run import -o "$TMP/x.kir"
expect_rc 2
expect_err_prefix "kiln import: no ONNX file given"
run export "$TMP/tiny.kir"
expect_rc 2
expect_err_prefix "kiln export: no output file given"
run export "$TMP/tiny.kir" -o "$TMP/x.onnx" --opset 12
expect_rc 2
expect_err_prefix "kiln export: --opset 12: kiln writes opsets 13 to 21"
run export "$TMP/tiny.kir" -o "$TMP/x.onnx" --opset 17x
expect_rc 2
run export "$TMP/missing.kir" -o "$TMP/x.onnx"
expect_rc 1
expect_err "missing.kir"
checks=$((checks + 1))
[ ! -e "$TMP/x.onnx" ] || fail "a failed export left x.onnx"
run export "$TMP/tiny.kir" -o "$TMP/no/such/dir/x.onnx"
expect_rc 1
expect_err "cannot create"

# help
run import --help
expect_rc 0
expect_out "kiln import resnet18.onnx -o resnet18.kir"
run export --help
expect_rc 0
expect_out "--opset"
run --help
expect_rc 0
expect_out "import"
expect_out "export"

finish
