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
expect_out_line "top level: +10 nodes, 6 besides prim::Param and prim::Constant"
expect_out_line "  prim::Param +4"
expect_out_line "  aten::conv2d +1"
expect_out_line "  aten::softmax +1"
expect_out_line "parameters: +4 tensors .*"
expect_out_line "elements: +297 .*"
expect_out_line "bytes: +1188 .*"
expect_out_line "inputs: +1"
expect_out_line "  %x : Float\(1, 3, 8, 8\)"
# the memory plan: %c (576 bytes) at 0, the relu in place over it, %p (144, in 192) at 576
# while %r lives, %f (144) at 0 once %r is gone, %l (20, in 64) at 192; %s is the output
expect_out_line "workspace: +768 bytes \(peak live 768, without reuse 1600, in-place 1\)"
expect_out_line " +768 B for 5 intermediate values"
checks=$((checks + 1))
if grep -q "partial" "$TMP/out"; then fail "a static graph's estimate is not partial"; fi
checks=$((checks + 1))
if grep -q "aten::conv2d\[" "$TMP/out"; then fail "--stats should print statistics, not IR"; fi

# -s is --stats
run show -s "$DATA/tiny_cnn.ir"
expect_rc 0
expect_out_line "flops: +8598 .*"
checks=$((checks + 1))
[ "$(grep -c "^  aten::conv2d " "$TMP/out")" -eq 1 ] || fail "no sub-blocks: one list of ops"

# symbolic shapes: only the static relu (4 elements) is counted, and the estimate says so
run show --stats "$DATA/symbolic.ir"
expect_rc 0
expect_out_line "flops: +4 .*"
expect_out "partial: 2 node(s)"
expect_out_line "  %x : Float\(N, 8\)"
# %h : Float(N, 4) is planned with N at its bound 64: 1024 bytes
expect_out_line "workspace: +1024 bytes \(peak live 1024, without reuse 1024, in-place 0\)"
expect_out_line " +1.0 KiB for 1 intermediate value, symbolic dims at their upper bounds"
# a dim without an upper bound cannot be planned: the line says why, the rest still prints
printf '%s\n' 'graph<N=1..>(%x : Float(N, 4)):' \
  '  %h : Float(N, 4) = aten::softmax[dim=1](%x)' \
  '  %o : Float(N, 4) = aten::relu(%h)' '  return (%o)' >"$TMP/unbounded.ir"
run show --stats "$TMP/unbounded.ir"
expect_rc 0
expect_out_line "workspace: +not planned \(%h has dim 0 = N, which has no upper bound .*\)"
expect_out_line "flops: +0 .*"

# sub-blocks count: both branches of a prim::If (6 + 6 elements)
run show --stats "$DATA/if_relu_neg.ir"
expect_rc 0
expect_out_line "nodes: +3"
expect_out_line "  prim::If +1"
# the top level is the If alone, listed by op because it differs from the whole graph
expect_out_line "top level: +1 node, 1 besides prim::Param and prim::Constant"
checks=$((checks + 1))
[ "$(grep -c "^  prim::If " "$TMP/out")" -eq 2 ] || fail "prim::If should be listed twice"
checks=$((checks + 1))
[ "$(grep -c "^  aten::neg " "$TMP/out")" -eq 1 ] || fail "aten::neg is not at top level"
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
