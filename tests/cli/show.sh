# kiln show: text IR in, text IR out (a fixed point); .kir files recognized by their contents,
# whatever their names; --stats with exact numbers for a tiny graph.
. "$(dirname "$0")/lib.sh"

# text IR
run show "$DATA/add_relu.ir"
expect_rc 0
expect_out_line "graph\(%x : Float\(2, 2\), %y : Float\(2, 2\)\):"
expect_out_line "  %sum : Float\(2, 2\) = aten::add\(%x, %y\)"
expect_out_line "  return \(%out\)"
expect_no_err
cp "$TMP/out" "$TMP/printed.ir"
run show "$TMP/printed.ir"
expect_rc 0
checks=$((checks + 1))
cmp -s "$TMP/out" "$TMP/printed.ir" || fail "printing the printed IR changed it"

# a text file named .kir is still text
cp "$DATA/add_relu.ir" "$TMP/text.kir"
run show "$TMP/text.kir"
expect_rc 0
expect_out "aten::relu(%sum)"

# a .kir file, and the same bytes under another name
DEMO="$ROOT/tools/examples/demo.kir"
run show "$DEMO"
expect_rc 0
expect_out_line "graph\(%image : Float\(1, 1, 28, 28\)\):"
expect_out 'prim::Param[name="conv1.weight"]()'
expect_out "aten::conv2d"
expect_out "aten::softmax"
expect_no_err
cp "$DEMO" "$TMP/model.bin"
run show "$TMP/model.bin"
expect_rc 0
expect_out "aten::batch_norm"

# --stats on a tiny CNN whose numbers are worked out by hand:
#   conv 3->4 3x3 on 8x8: out 1*4*6*6 = 144, 2*144*(3*3*3) + 144 (bias) = 7920
#   relu: 144;  max_pool 2x2 -> (1,4,3,3): 36*4 = 144;  flatten: 0
#   linear 36->5: 2*5*36 + 5 = 365;  softmax: 5*5 = 25;  total 8598
#   params: 108 + 4 + 180 + 5 = 297 elements, 1188 bytes, 4 tensors
run show --stats "$DATA/tiny_cnn.ir"
expect_rc 0
expect_out_line "flops: +8598 .*"
expect_out_line "nodes: +10"
expect_out_line "  prim::Param +4"
expect_out_line "  aten::conv2d +1"
expect_out_line "  aten::softmax +1"
expect_out_line "parameters: +4 tensors .*"
expect_out_line "elements: +297 .*"
expect_out_line "bytes: +1188 .*"
expect_out_line "inputs: +1"
expect_out_line "  %x : Float\(1, 3, 8, 8\)"
checks=$((checks + 1))
if grep -q "partial" "$TMP/out"; then fail "a static graph's estimate is not partial"; fi
checks=$((checks + 1))
if grep -q "aten::conv2d\[" "$TMP/out"; then fail "--stats should print statistics, not IR"; fi

# -s is --stats
run show -s "$DATA/tiny_cnn.ir"
expect_rc 0
expect_out_line "flops: +8598 .*"

# symbolic shapes: only the static relu (4 elements) is counted, and the estimate says so
run show --stats "$DATA/symbolic.ir"
expect_rc 0
expect_out_line "flops: +4 .*"
expect_out "partial: 2 node(s)"
expect_out_line "  %x : Float\(N, 8\)"

# sub-blocks count: both branches of a prim::If (6 + 6 elements)
run show --stats "$DATA/if_relu_neg.ir"
expect_rc 0
expect_out_line "nodes: +3"
expect_out_line "  prim::If +1"
expect_out_line "  aten::neg +1"
expect_out_line "flops: +12 .*"

# constants count as parameters: Float(2) = 2 elements, 8 bytes; the add is 4 FLOPs
run show --stats "$DATA/const_add.ir"
expect_rc 0
expect_out_line "parameters: +1 tensor \(0 weights, 1 constants\)"
expect_out_line "elements: +2 .*"
expect_out_line "bytes: +8 .*"
expect_out_line "flops: +4 .*"

# the demo model
run show --stats "$DEMO"
expect_rc 0
expect_out_line "  aten::conv2d +2"
expect_out_line "  aten::batch_norm +2"
expect_out_line "  aten::linear +2"
expect_out_line "parameters: +16 tensors \(16 weights, 0 constants\)"
expect_out_line "elements: +26794 .*"

finish
