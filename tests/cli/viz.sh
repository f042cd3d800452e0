# kiln viz: the dot text names the ops, labels edges with types, draws fusion groups as
# clusters and collapses or hides the weights; names from the model are escaped; .svg and .png
# go through Graphviz's dot (checked only where dot is installed); without dot the error says
# what to do.
. "$(dirname "$0")/lib.sh"

CNN="$DATA/tiny_cnn.ir"
DEMO="$ROOT/tools/examples/demo.kir"

# the .dot of a small model: every op, typed edges, inputs, outputs and one params node
run viz "$CNN" -o "$TMP/cnn.dot"
expect_rc 0
expect_no_out
expect_no_err
cp "$TMP/cnn.dot" "$TMP/out"
expect_out "digraph kiln {"
for op in aten::conv2d aten::relu aten::max_pool2d aten::flatten aten::linear aten::softmax; do
  expect_out "[label=\"$op\\n%"
done
expect_out "in0 [shape=ellipse"
expect_out "label=\"input %x\\nFloat(1, 3, 8, 8)\""
expect_out "label=\"output %s\""
expect_out "[label=\"Float(1, 4, 6, 6)\"]"
expect_out "[label=\"Float(1, 36)\"]"
expect_out "label=\"params\\n4 weights\\n297 elements\""
expect_out "params -> "
checks=$((checks + 1))
grep -q "cluster" "$TMP/out" && fail "-O0 should draw no fusion group"
checks=$((checks + 1))
[ "$(grep -c -- ' -> ' "$TMP/out")" -eq 11 ] || fail "expected 11 edges (7 values, 4 weights)"

# -O3 to stdout: the conv and relu sit inside the fusion group's cluster
run viz "$CNN" -O3 -o -
expect_rc 0
expect_out "subgraph cluster_"
expect_out "label=\"prim::FusionGroup_0\";"
checks=$((checks + 1))
awk '/subgraph cluster_/ { inside = 1 } inside && /^  }$/ { inside = 0 }
     inside && /aten::conv2d/ { conv = 1 } inside && /aten::relu/ { relu = 1 }
     END { exit !(conv && relu) }' "$TMP/out" || fail "conv2d and relu are not in the cluster"
checks=$((checks + 1))
awk '/subgraph cluster_/ { inside = 1 } inside && /^  }$/ { inside = 0 }
     inside && /aten::max_pool2d/ { bad = 1 } END { exit bad }' "$TMP/out" ||
  fail "max_pool2d should be outside the cluster"

# --no-params: no params node, the count in the title
run viz "$CNN" --no-params -o -
expect_rc 0
expect_out "label=\"tiny_cnn.ir\\n4 weights not drawn\";"
checks=$((checks + 1))
grep -q "params" "$TMP/out" && fail "--no-params still draws params"

# constants count with the params; If bodies are said to be left out; two outputs
run viz "$DATA/const_add.ir" -o -
expect_rc 0
expect_out "label=\"params\\n1 constant\\n2 elements\""
run viz "$DATA/if_relu_neg.ir" -o -
expect_rc 0
expect_out "[label=\"prim::If\\n%y\\n(2 sub-blocks not drawn)\""
run viz "$DATA/two_outputs.ir" -o -
expect_rc 0
expect_out "label=\"output %pos\""
expect_out "label=\"output %neg\""

# names from the model are escaped: quotes, backslashes, '&', control bytes, bad UTF-8
printf '%s\n' 'graph(%"a \"q\" \\ & <b>" : Float(2, 2)):' \
  '  %"r\ty\xff" : Float(2, 2) = aten::relu(%"a \"q\" \\ & <b>")' \
  '  return (%"r\ty\xff")' >"$TMP/odd.ir"
run viz "$TMP/odd.ir" -o "$TMP/odd.dot"
expect_rc 0
cp "$TMP/odd.dot" "$TMP/out"
expect_out 'label="input %a \"q\" \\ &amp; <b>\nFloat(2, 2)"'
expect_out 'label="output %r?y?"'

# usage errors and a missing model
run viz "$CNN"
expect_rc 2
expect_err "no output given"
run viz "$CNN" -o "$TMP/g.jpg"
expect_rc 2
expect_err "cannot tell the format of '$TMP/g.jpg'"
run viz "$CNN" -O5 -o -
expect_rc 2
expect_err "-O0, -O1, -O2 or -O3"
run viz "$CNN" -O2 --passes=dce -o -
expect_rc 2
run viz "$TMP/absent.kir" -o -
expect_rc 1
expect_err "absent.kir: cannot open"

# without Graphviz's dot on PATH: a clear error for .svg, .dot still works (kiln is called by
# its absolute path, as the test harness gives it)
what="PATH=/nonexistent kiln viz demo.kir -o x.svg"
env PATH=/nonexistent "$KILN" viz "$DEMO" -o "$TMP/x.svg" >"$TMP/out" 2>"$TMP/err"
rc=$?
expect_rc 1
expect_err "Graphviz's dot was not found; install graphviz"
expect_err "or write .dot"
checks=$((checks + 1))
[ ! -e "$TMP/x.svg" ] || fail "x.svg should not exist"
env PATH=/nonexistent "$KILN" viz "$DEMO" -o "$TMP/x.dot" >"$TMP/out" 2>"$TMP/err"
rc=$?
expect_rc 0

if ! command -v dot >/dev/null 2>&1; then
  echo "Graphviz's dot is not installed: .svg and .png not checked"
  finish
fi

# the SVG of the demo model holds the names of its ops and its fusion groups
run viz "$DEMO" -O3 -o "$TMP/demo.svg"
expect_rc 0
expect_no_err
cp "$TMP/demo.svg" "$TMP/out"
expect_out "<svg"
for op in aten::conv2d aten::relu aten::max_pool2d aten::flatten aten::linear aten::softmax \
  prim::FusionGroup_0 "input %image"; do
  expect_out ">$op</text>"
done
run viz "$DEMO" -o "$TMP/demo.png"
expect_rc 0
checks=$((checks + 1))
[ "$(head -c 4 "$TMP/demo.png" | od -An -tx1 | tr -d ' \n')" = "89504e47" ] ||
  fail "demo.png is not a PNG"
# escaped names are valid dot: dot reads them back
what="dot -Tsvg odd.dot"
dot -Tsvg "$TMP/odd.dot" >"$TMP/out" 2>"$TMP/err"
rc=$?
expect_rc 0
expect_out "input %a &quot;q&quot; \\ &amp; &lt;b&gt;"
# dot's own failure (a folder that does not exist) is reported with its exit status
run viz "$CNN" -o "$TMP/no/such/folder/g.svg"
expect_rc 1
expect_err "Graphviz's dot failed (exit status"

finish
