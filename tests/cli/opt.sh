# kiln opt: the pass list (levels, --passes), output formats (.kir, text, stdout), the
# diagnostics (--print-after-all, --time-passes go to stderr), --list-passes and errors.
. "$(dirname "$0")/lib.sh"

DUP="$DATA/opt_dup.ir"
DEMO="$ROOT/tools/examples/demo.kir"

# --passes runs exactly the named passes: cse merges the relus, dce drops the exp
run opt "$DUP" --passes=cse,dce -o -
expect_rc 0
expect_out_line "  %a : Float\(2, 2\) = aten::relu\(%x\)"
expect_out_line "  %s : Float\(2, 2\) = aten::add\(%a, %a\)"
expect_no_err
checks=$((checks + 1))
if grep -q "aten::exp\|%b " "$TMP/out"; then fail "cse,dce left %b or the dead exp"; fi

# the order matters: dce alone keeps %b (it is used), cse alone keeps the dead exp
run opt "$DUP" --passes=dce -o -
expect_rc 0
expect_out "%b : Float(2, 2) = aten::relu(%x)"
checks=$((checks + 1))
if grep -q "aten::exp" "$TMP/out"; then fail "dce kept the dead exp"; fi
run opt "$DUP" --passes=cse -o -
expect_rc 0
expect_out "aten::exp(%x)"

# -O0 runs nothing: the output is the input, byte for byte
run opt "$DUP" -O0 -o -
expect_rc 0
checks=$((checks + 1))
cmp -s "$TMP/out" "$DUP" || fail "-O0 changed the graph"

# -O1 removes dead code; -O2 (the default) merges duplicates too
run opt "$DUP" -O1 -o -
expect_rc 0
checks=$((checks + 1))
if grep -q "aten::exp" "$TMP/out"; then fail "-O1 kept the dead exp"; fi
run opt "$DUP" -o -
expect_rc 0
checks=$((checks + 1))
if grep -q "aten::exp" "$TMP/out"; then fail "-O2 kept the dead exp"; fi
checks=$((checks + 1))
[ "$(grep -c "aten::relu" "$TMP/out")" -eq 1 ] || fail "-O2 (default) did not merge the relus"

# --print-after-all: a header per pass on stderr, stdout keeps just the model
run opt "$DUP" --passes=cse,dce,dce --print-after-all -o -
expect_rc 0
expect_err "# after cse (changed)"
expect_err "# after dce (changed)"
expect_err "# after dce (unchanged)"
checks=$((checks + 1))
[ "$(grep -c "^graph(" "$TMP/err")" -eq 3 ] || fail "expected the IR three times on stderr"
checks=$((checks + 1))
[ "$(grep -c "^graph(" "$TMP/out")" -eq 1 ] || fail "stdout should hold the model once"
checks=$((checks + 1))
if grep -q "# after" "$TMP/out"; then fail "--print-after-all wrote to stdout"; fi

# --time-passes: one row per pass run, then the total
run opt "$DUP" --passes=infer-shapes,cse --time-passes --verify -o "$TMP/t.ir"
expect_rc 0
expect_err "pass"
expect_err "changed"
expect_err "total"
checks=$((checks + 1))
grep -qE "^# infer-shapes +[0-9.]+ +no$" "$TMP/err" || fail "no infer-shapes row"
checks=$((checks + 1))
grep -qE "^# cse +[0-9.]+ +yes$" "$TMP/err" || fail "no cse row saying changed"

# text output to a file reads back
run show "$TMP/t.ir"
expect_rc 0
expect_out "aten::add(%a, %a)"

# .kir output keeps the weights: the demo through -O0 prints as the demo does
run show "$DEMO"
cp "$TMP/out" "$TMP/demo.txt"
run opt "$DEMO" -O0 -o "$TMP/demo.kir"
expect_rc 0
expect_no_out
checks=$((checks + 1))
head -c 7 "$TMP/demo.kir" | grep -q "KILNIR" || fail "OUT ending in .kir is not a .kir file"
run show "$TMP/demo.kir"
expect_rc 0
checks=$((checks + 1))
cmp -s "$TMP/out" "$TMP/demo.txt" || fail "-O0 .kir round trip changed the demo"

# in place: OUT may be the .kir being read (its weights are mapped from it while writing)
cp "$TMP/demo.kir" "$TMP/inplace.kir"
run opt "$TMP/inplace.kir" -O1 -o "$TMP/inplace.kir"
expect_rc 0
run show "$TMP/inplace.kir"
expect_rc 0
expect_out 'prim::Param[name="conv1.weight"]()'

# the demo model through every level, verified after each pass
for level in 1 2 3; do
  run opt "$DEMO" -O$level --verify -o "$TMP/demo$level.kir"
  expect_rc 0
  expect_no_err
done

# --list-passes: every pass with its summary, the test-only one marked, the pipelines
run opt --list-passes
expect_rc 0
expect_out_line "  dce +remove nodes whose results are never used"
expect_out_line "  test-break +\[test only\] .*"
expect_out_line "  -O0: \(no passes\)"
expect_out_line "  -O1: infer-shapes, canonicalize, dce"
expect_out "-O2 (default): infer-shapes, canonicalize, fold-constants, dce, cse"
expect_out_line "  -O3: .*, fuse, dce"

# help
run opt --help
expect_rc 0
expect_out "usage: kiln opt MODEL -o OUT"
expect_out "-O2 pipeline runs"
expect_out "--list-passes"
expect_out "examples:"
run help opt
expect_rc 0
expect_out "--print-after-all"

# errors: an unknown pass names the known ones; usage errors exit 2
run opt "$DUP" --passes=cse,nosuch -o -
expect_rc 2
expect_err "unknown pass 'nosuch'"
expect_err "known passes: infer-shapes, canonicalize"
expect_no_out
run opt "$DUP" --passes=cse,,dce -o -
expect_rc 2
expect_err "empty pass name"
run opt "$DUP" -O4 -o -
expect_rc 2
expect_err "-O0, -O1, -O2 or -O3"
run opt "$DUP" -O1 --passes=dce -o -
expect_rc 2
expect_err "not both"
run opt "$DUP"
expect_rc 2
expect_err "no output given"
run opt -o -
expect_rc 2
expect_err "no model file given"
run opt "$TMP/missing.ir" -o -
expect_rc 1
expect_err_prefix "kiln: "
expect_err "cannot open"
run opt "$DATA/garbage.ir" -o -
expect_rc 1
expect_err_prefix "kiln: "
run opt "$DUP" --passes=dce -o "$TMP/no/such/dir/out.ir"
expect_rc 1
expect_err "cannot open for writing"

finish
