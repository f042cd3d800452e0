# kiln run: inputs bound by name or alone, outputs written as .npy (checked byte for byte) or
# printed as PyTorch prints them, summarized when large.
. "$(dirname "$0")/lib.sh"

# relu(x + y) with x = [[1, -2], [3, -4]], y = 0.5 everywhere: [[1.5, 0], [3.5, 0]]
OUT_HEX="00 00 c0 3f 00 00 00 00 00 00 60 40 00 00 00 00"

run run "$DATA/add_relu.ir" --input x="$DATA/x_2x2.npy" --input y="$DATA/y_2x2.npy" -o "$TMP/o.npy"
expect_rc 0
expect_no_out
expect_no_err
checks=$((checks + 1))
[ "$(hex_tail "$TMP/o.npy" 16)" = "$OUT_HEX" ] || fail "o.npy data is $(hex_tail "$TMP/o.npy" 16)"
checks=$((checks + 1))
[ "$(head -c 6 "$TMP/o.npy" | od -An -tx1 | tr -d ' \n')" = "934e554d5059" ] || fail "o.npy has no npy magic"

# named output, --output=, -i short form and --input= forms
run run "$DATA/add_relu.ir" -i "y=$DATA/y_2x2.npy" "--input=x=$DATA/x_2x2.npy" "--output=out=$TMP/named.npy"
expect_rc 0
checks=$((checks + 1))
[ "$(hex_tail "$TMP/named.npy" 16)" = "$OUT_HEX" ] || fail "named.npy data is $(hex_tail "$TMP/named.npy" 16)"

# the written file reads back: feed it through a one-input graph and print it
run run "$DATA/two_outputs.ir" --input "$TMP/o.npy"
expect_rc 0
expect_out_line "%pos : Float\(2, 2\)"
expect_out_line "tensor\(\[\[1\.5000, 0\.0000\],"
expect_out_line "        \[3\.5000, 0\.0000\]\]\)"
expect_out_line "%neg : Float\(2, 2\)"
expect_out_line "tensor\(\[\[-1\.5000, -0\.0000\],"

# printing whole numbers PyTorch-style ("1.") and both outputs of a two-output graph
run run "$DATA/two_outputs.ir" --input "$DATA/x_2x2.npy"
expect_rc 0
expect_out_line "tensor\(\[\[1\., 0\.\],"
expect_out_line "        \[3\., 0\.\]\]\)"
expect_out_line "tensor\(\[\[-1\.,  2\.\],"

# two outputs: pick one by name; a bare -o is refused
run run "$DATA/two_outputs.ir" --input "$DATA/x_2x2.npy" -o "neg=$TMP/neg.npy"
expect_rc 0
checks=$((checks + 1))
[ "$(hex_tail "$TMP/neg.npy" 16)" = "00 00 80 bf 00 00 00 40 00 00 40 c0 00 00 80 40" ] ||
  fail "neg.npy data is $(hex_tail "$TMP/neg.npy" 16)"
checks=$((checks + 1))
[ ! -e "$TMP/pos.npy" ] || fail "pos.npy was not asked for"
run run "$DATA/two_outputs.ir" --input "$DATA/x_2x2.npy" -o "$TMP/any.npy"
expect_rc 1
expect_err "has no output name"
expect_err "model has outputs: pos (Float(2, 2)), neg (Float(2, 2))"

# a graph with a constant, and one that branches on a Bool input
run run "$DATA/const_add.ir" --input "$DATA/x_2x2.npy"
expect_rc 0
expect_out_line "tensor\(\[\[11\., 18\.\],"
expect_out_line "        \[13\., 16\.\]\]\)"
run run "$DATA/if_relu_neg.ir" --input "c=$DATA/true.npy" --input "x=$DATA/x_2x3.npy"
expect_rc 0
expect_out_line "%y : Float\(2, 3\)"
expect_out_line "tensor\(\[\[1\., 0\., 3\.\],"
expect_out_line "        \[0\., 5\., 0\.\]\]\)"

# large outputs are summarized; --full prints everything
run run "$DATA/relu_1x2000.ir" --input "$DATA/v_1x2000.npy"
expect_rc 0
expect_out_line "%r : Float\(1, 2000\)"
expect_out_line "tensor\(\[\[125\.0000, 125\.1250, 125\.2500, +\.\.\., 374\.6250, 374\.7500, 374\.8750\]\]\)"
run run "$DATA/relu_1x2000.ir" --input "$DATA/v_1x2000.npy" --full
expect_rc 0
expect_out "250.0000"
checks=$((checks + 1))
if grep -qF "..." "$TMP/out"; then fail "--full output is summarized"; fi

# the demo model runs and prints ten probabilities; the values were computed independently
# with numpy from make_demo.c's generator and the same layers
run run "$ROOT/tools/examples/demo.kir" --input "$ROOT/tools/examples/demo_input.npy"
expect_rc 0
expect_out_line "%probs : Float\(1, 10\)"
expect_out_line "tensor\(\[\[0\.1152, 0\.0897, 0\.0872, 0\.0991, 0\.0998, 0\.0734, 0\.0903, 0\.1368, 0\.1134,"
expect_out_line "         0\.0951\]\]\)"
expect_no_err

finish
