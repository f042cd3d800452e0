# kiln on bad input: every failure is one "kiln: " message naming the file and what was wrong,
# exit 1 (2 for usage errors), never a crash or a signal.
. "$(dirname "$0")/lib.sh"

IR="$DATA/add_relu.ir"
X="$DATA/x_2x2.npy"
Y="$DATA/y_2x2.npy"

# a missing input names the inputs the model has
run run "$IR" --input "x=$X"
expect_rc 1
expect_err_prefix "kiln: "
expect_err "missing input 'y'"
expect_err "model has inputs: x (Float(2, 2)), y (Float(2, 2))"
expect_no_out

run run "$IR"
expect_rc 1
expect_err "missing inputs 'x', 'y'"

# an unknown input name, an unnamed input for a two-input model, one input given twice
run run "$IR" --input "x=$X" --input "z=$Y"
expect_rc 1
expect_err "no input named 'z'"
expect_err "model has inputs: x (Float(2, 2)), y (Float(2, 2))"
run run "$IR" --input "$X"
expect_rc 1
expect_err "has no input name"
run run "$IR" --input "x=$X" --input "x=$X" --input "y=$Y"
expect_rc 1
expect_err "input 'x' given twice"

# an unknown output name
run run "$IR" --input "x=$X" --input "y=$Y" -o "nope=$TMP/n.npy"
expect_rc 1
expect_err "no output named 'nope'"
expect_err "model has outputs: out (Float(2, 2))"

# wrong dtype and wrong shape: the interpreter's message, prefixed
run run "$IR" --input "x=$DATA/x_2x2_i64.npy" --input "y=$Y"
expect_rc 1
expect_err_prefix "kiln: "
expect_err "Long"
run run "$IR" --input "x=$DATA/x_3x3.npy" --input "y=$Y"
expect_rc 1
expect_err_prefix "kiln: "
expect_err "3"

# a missing input file and a missing model file
run run "$IR" --input "x=$TMP/absent.npy" --input "y=$Y"
expect_rc 1
expect_err_prefix "kiln: "
expect_err "absent.npy"
run show "$TMP/absent.kir"
expect_rc 1
expect_err "kiln: $TMP/absent.kir: cannot open: No such file or directory"
run run "$TMP/absent.kir" --input "$X"
expect_rc 1
expect_err "absent.kir: cannot open"

# a directory, an empty file, text that is not IR, an unknown op, a truncated .kir
run show "$TMP"
expect_rc 1
expect_err_prefix "kiln: "
: >"$TMP/empty.ir"
run show "$TMP/empty.ir"
expect_rc 1
expect_err_prefix "kiln: "
run show "$DATA/garbage.ir"
expect_rc 1
expect_err_prefix "kiln: "
expect_err "garbage.ir"
run show "$DATA/bad_op.ir"
expect_rc 1
expect_err "no_such_op"
head -c 200 "$ROOT/tools/examples/demo.kir" >"$TMP/truncated.kir"
run show "$TMP/truncated.kir"
expect_rc 1
expect_err_prefix "kiln: "
expect_err "truncated.kir"
run run "$TMP/truncated.kir" --input "$ROOT/tools/examples/demo_input.npy"
expect_rc 1
# a .npy that is not one
run run "$IR" --input "x=$DATA/garbage.ir" --input "y=$Y"
expect_rc 1
expect_err "garbage.ir"

# an output file that cannot be written
run run "$IR" --input "x=$X" --input "y=$Y" -o "$TMP/no/such/dir/o.npy"
expect_rc 1
expect_err_prefix "kiln: "
expect_err "o.npy"

# a text IR with weights declared but none supplied cannot run: a message, not a crash
run run "$DATA/tiny_cnn.ir" --input "$DATA/x_1x3x8x8.npy"
expect_rc 1
expect_err_prefix "kiln: "

finish
