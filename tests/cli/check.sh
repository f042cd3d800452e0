# kiln check: an optimized model that agrees exits 0; a deliberately broken pass (test-break
# turns x + y into x - y) is caught, its errors are exact, and bisection names it; usage errors
# exit 2. The numbers for add_relu.ir on x_2x2.npy and y_2x2.npy are worked out by hand:
#   x = [[1, -2], [3, -4]], y = 0.5 everywhere
#   %sum  x + y = [[1.5, -1.5], [3.5, -3.5]], broken x - y = [[0.5, -2.5], [2.5, -4.5]]
#         max abs 1, max rel 1 / 1.5 = 0.667, max ulp: 1.5f is 0x3fc00000 and 0.5f 0x3f000000,
#         0xc00000 = 12582912 apart; every one of the 4 elements is beyond tolerance
#   %out  relu: [[1.5, 0], [3.5, 0]] vs [[0.5, 0], [2.5, 0]]: 2 of 4 elements differ
. "$(dirname "$0")/lib.sh"

IR="$DATA/add_relu.ir"
X="$DATA/x_2x2.npy"
Y="$DATA/y_2x2.npy"

# -O3 on a small CNN whose weights the text file lacks: random weights, random input, agrees
run check "$DATA/tiny_cnn.ir" -O3
expect_rc 0
expect_out_line "passes: +-O3, [0-9]+ passes: infer-shapes, .*"
expect_out_line "input: +%x : Float\(1, 3, 8, 8\) from random values"
expect_out_line "weights: +4 parameters without a tensor in the file: random values"
expect_out_line "output: +%s: agrees \(max abs .*"
expect_out "result:     the optimized model agrees with the model as loaded"
expect_no_err
checks=$((checks + 1))
if grep -q "BEYOND TOLERANCE\|first bad pass" "$TMP/out"; then fail "-O3 should agree"; fi

# -O0 runs no pass: every value is compared and identical, bit for bit
run check "$DATA/tiny_cnn.ir" -O0
expect_rc 0
expect_out_line "passes: +-O0, 0 passes"
expect_out_line "  %c +aten::conv2d +0 +0 +0"
expect_out_line "  %s +aten::softmax +0 +0 +0"
expect_out_line "compared: +6 values computed in both runs \(of 6 in the reference run\), 0 beyond tolerance"

# the demo model with its own input file
run check "$ROOT/tools/examples/demo.kir" --input "$ROOT/tools/examples/demo_input.npy"
expect_rc 0
expect_out "from $ROOT/tools/examples/demo_input.npy"
expect_out "result:     the optimized model agrees"

# a broken pass is caught: exit 1 after the report, which names the pass and the node
run check "$IR" --input "x=$X" --input "y=$Y" --passes=canonicalize,test-break,dce
expect_rc 1
expect_out_line "passes: +--passes, 3 passes: canonicalize, test-break, dce"
expect_out_line "  %sum +aten::sub +1 +0.667 +12582912  BEYOND TOLERANCE \(4 elements\)"
expect_out_line "  %out +aten::relu +1 +0.667 +12582912  BEYOND TOLERANCE \(2 elements\)"
expect_out_line "output: +%out: DIFFERS \(max abs 1, max rel 0.667, max ulp 12582912, 2 of 4 elements beyond tolerance\)"
expect_out "result:     1 of 1 output differs beyond tolerance"
expect_out_line "first bad pass: test-break \(pass 2 of 3\)"
expect_out_line "first value it changed: %sum \(aten::sub\), max abs 1"
expect_no_err

# bisection over a longer list: prefixes of 2 and 3 passes agree, 4 differs
run check "$IR" --input "x=$X" --input "y=$Y" --passes=canonicalize,dce,cse,test-break,dce,cse
expect_rc 1
expect_out_line "bisect: +the first 3 passes: outputs agree"
expect_out_line "first bad pass: test-break \(pass 4 of 6\)"
# the broken pass first in the list
run check "$IR" --passes=test-break
expect_rc 1
expect_out_line "first bad pass: test-break \(pass 1 of 1\)"

# Double: the same numbers, 64-bit. 1.5 is 0x3ff8000000000000 and 0.5 0x3fe0000000000000,
# 0x18000000000000 = 6755399441055744 apart. The .npy files are written byte by byte.
printf '%s\n' 'graph(%x : Double(2, 2), %y : Double(2, 2)):' \
  '  %sum : Double(2, 2) = aten::add(%x, %y)' '  %out : Double(2, 2) = aten::relu(%sum)' \
  '  return (%out)' >"$TMP/add_relu_f64.ir"
printf '\223NUMPY\001\000v\000{\047descr\047: \047<f8\047, \047fortran_order\047: False, \047shape\047: (2, 2), }                                                          \012\000\000\000\000\000\000\360?\000\000\000\000\000\000\000\300\000\000\000\000\000\000\010@\000\000\000\000\000\000\020\300' >"$TMP/x_f64.npy"
printf '\223NUMPY\001\000v\000{\047descr\047: \047<f8\047, \047fortran_order\047: False, \047shape\047: (2, 2), }                                                          \012\000\000\000\000\000\000\340?\000\000\000\000\000\000\340?\000\000\000\000\000\000\340?\000\000\000\000\000\000\340?' >"$TMP/y_f64.npy"
run check "$TMP/add_relu_f64.ir" --input "x=$TMP/x_f64.npy" --input "y=$TMP/y_f64.npy" --passes=test-break
expect_rc 1
expect_out_line "  %sum +aten::sub +1 +0.667 +6755399441055744  BEYOND TOLERANCE \(4 elements\)"
expect_out_line "first bad pass: test-break \(pass 1 of 1\)"
run check "$TMP/add_relu_f64.ir" --input "x=$TMP/x_f64.npy" --input "y=$TMP/y_f64.npy" -O3
expect_rc 0
expect_out_line "  %out +[a-z:_A-Z]+ +0 +0 +0"

# tolerances apply: an error of 1 is within atol 1.5, so the outputs agree
run check "$IR" --input "x=$X" --input "y=$Y" --passes=test-break --atol 1.5
expect_rc 0
expect_out_line "output: +%out: agrees .*"
# ... and within rtol 1 of values at least 1 away from 0 (the relu's zeros agree exactly)
run check "$IR" --input "x=$X" --input "y=$Y" --passes=test-break --rtol 1 --atol 0
expect_rc 0

# seeds: the same seed gives the same report, another seed other random inputs
run check "$IR" --passes=test-break --seed 7
cp "$TMP/out" "$TMP/seed7"
run check "$IR" --passes=test-break --seed 7
checks=$((checks + 1))
cmp -s "$TMP/out" "$TMP/seed7" || fail "the same seed gave another report"
run check "$IR" --passes=test-break --seed 8
checks=$((checks + 1))
if cmp -s "$TMP/out" "$TMP/seed7"; then fail "seeds 7 and 8 gave the same report"; fi

# a graph with two outputs: both are compared as values and judged as outputs
run check "$DATA/two_outputs.ir" --passes=dce
expect_rc 0
expect_out_line "compared: +2 values computed in both runs \(of 2 in the reference run\), 0 beyond tolerance"
expect_out_line "output: +%pos: agrees .*"
expect_out_line "output: +%neg: agrees .*"

# usage errors: exit 2
run check
expect_rc 2
expect_err "no model file given"
run check "$IR" "$IR"
expect_rc 2
run check "$IR" -O3 --passes=dce
expect_rc 2
expect_err "give -O or --passes, not both"
run check "$IR" -O7
expect_rc 2
expect_err "-O7: the levels are 0, 1, 2 and 3"
run check "$IR" --passes=dce,nope
expect_rc 2
expect_err "unknown pass 'nope'"
run check "$IR" --rtol abc
expect_rc 2
expect_err "--rtol abc"
run check "$IR" --atol -1
expect_rc 2
run check "$IR" --seed -3
expect_rc 2
run check "$IR" --bogus
expect_rc 2

# bad input: exit 1 with a message naming what was wrong
run check "$DATA/no_such_file.ir"
expect_rc 1
expect_err_prefix "kiln: "
expect_err "no_such_file.ir"
run check "$IR" --input "z=$X"
expect_rc 1
expect_err "no input named 'z'"
run check "$IR" --input "$X"
expect_rc 1
expect_err "has no input name"
run check "$IR" --input "x=$DATA/x_2x3.npy"
expect_rc 1
expect_err "x"
expect_err_prefix "kiln: "

# help
run check --help
expect_rc 0
expect_out "usage: kiln check FILE"
expect_out "Exit status: 0 when every output agrees"

finish
