# What the model tests share (POSIX sh, sourced by check_model.sh and torch/run_torch_model.sh
# after they set NAME): counted checks that report and exit, and readers of `kiln show --stats`.

failures=0
checks=0

fail() {
  failures=$((failures + 1))
  echo "FAIL: $NAME: $1" >&2
}
show() { # show FILE: its first lines, for a failure's context
  echo "--- $1:" >&2
  head -c 4000 "$1" | cut -c1-200 >&2
  echo "---" >&2
}
check() { # check DESCRIPTION COMMAND...: counts a check, fails with DESCRIPTION unless COMMAND succeeds
  what=$1
  shift
  checks=$((checks + 1))
  "$@" || fail "$what"
}
finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures of $checks checks failed" >&2
    exit 1
  fi
  echo "$checks checks passed"
  exit 0
}

# stat_count FILE OP: the nodes of OP that `kiln show --stats` counts, sub-blocks included
stat_count() {
  awk -v op="$2" '
    /^[^ ]/ { sec = "" }
    /^nodes:/ { sec = "all" }
    /^  / && sec == "all" && $1 == op { n = $2 }
    END { print n + 0 }' "$1"
}

# top_count FILE [OP]: the top-level nodes besides prim::Param and prim::Constant, or those of
# OP at top level (the stats list them apart only when some nodes are nested)
top_count() {
  awk -v op="$2" '
    /^[^ ]/ { sec = "" }
    /^nodes:/ { sec = "all" }
    /^top level:/ { sec = "top"; besides = $5 }
    /^  / && sec == "all" { all[$1] = $2 }
    /^  / && sec == "top" { top[$1] = $2; listed = 1 }
    END {
      if (op == "") print besides + 0
      else if (listed) print top[op] + 0
      else print all[op] + 0
    }' "$1"
}

# compare_npy GOT WANT RTOL ATOL: tests/models/torch/compare.py (allclose, element by element)
# with a Python that has numpy (the venv's, else Debian's); exit 77 when there is none.
compare_npy() {
  for py in "$ROOT/.venv/bin/python" /usr/bin/python3; do
    if [ -x "$py" ] && "$py" -c "import numpy" 2>/dev/null; then
      "$py" "$ROOT/tests/models/torch/compare.py" "$1" "$2" --rtol "$3" --atol "$4"
      return $?
    fi
  done
  return 77
}

# check_compiled MODEL INPUT [REFERENCE.npy RTOL ATOL]: the model compiled as an artifact
# (`kiln compile -O3`) and run with `kiln run LIB.so` matches the interpreter (`kiln run MODEL`,
# rtol 1e-4, atol 1e-5) and, when given, REFERENCE (PyTorch's or the eager output) under RTOL
# and ATOL. A compile failure fails, unless the model keeps onnx::Deferred nodes (shapes that
# depend on input values): that is said on stdout ("not compiled: ...") and counted apart.
check_compiled() {
  cmodel=$1
  cinput=$2
  "$KILN" compile "$cmodel" -O3 -o "$TMP/lib_compiled.so" --name compiled \
    >"$TMP/compile.out" 2>"$TMP/compile.err"
  rc=$?
  if [ "$rc" -ne 0 ] && grep -q "built without LLVM" "$TMP/compile.err"; then
    echo "not compiled: this kiln was built without LLVM (no compiled path to check)"
    return 0
  fi
  if [ "$rc" -ne 0 ] && grep -q "onnx::Deferred" "$TMP/compile.err"; then
    echo "not compiled: $NAME has value-dependent shapes: $(head -c 300 "$TMP/compile.err")"
    return 0
  fi
  check "kiln compile -O3: exit code $rc, expected 0" [ "$rc" -eq 0 ]
  [ "$rc" -eq 0 ] || { show "$TMP/compile.err"; return 0; }
  "$KILN" run "$TMP/lib_compiled.so" --input "$cinput" -o "$TMP/compiled.npy" \
    >"$TMP/crun.out" 2>"$TMP/crun.err"
  rc=$?
  check "kiln run on the compiled library: exit code $rc, expected 0" [ "$rc" -eq 0 ]
  [ "$rc" -eq 0 ] || { show "$TMP/crun.err"; return 0; }
  "$KILN" run "$cmodel" --input "$cinput" -o "$TMP/interp.npy" >"$TMP/irun.out" 2>"$TMP/irun.err"
  rc=$?
  check "kiln run (interpreter): exit code $rc, expected 0" [ "$rc" -eq 0 ]
  [ "$rc" -eq 0 ] || { show "$TMP/irun.err"; return 0; }
  compare_npy "$TMP/compiled.npy" "$TMP/interp.npy" 1e-4 1e-5
  rc=$?
  if [ "$rc" -eq 77 ]; then
    echo "not compared: no Python with numpy for compare.py; checking the compiled output's size"
    check "the compiled output has another size than the interpreter's" \
      [ "$(wc -c <"$TMP/compiled.npy")" -eq "$(wc -c <"$TMP/interp.npy")" ]
    return 0
  fi
  check "the compiled library's output differs from the interpreter's (rtol 1e-4, atol 1e-5)" \
    [ "$rc" -eq 0 ]
  if [ -n "$3" ]; then
    compare_npy "$TMP/compiled.npy" "$3" "$4" "$5"
    check "the compiled library's output differs from $3 (rtol $4, atol $5)" [ $? -eq 0 ]
  fi
  echo "$NAME: compiled -O3 and run as an artifact: matches the interpreter"
}
