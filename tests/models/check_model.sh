# Whole models through -O3 (POSIX sh):
#   sh check_model.sh KILN NAME SOURCE_ROOT [EXAMPLE]
# With EXAMPLE (a define-by-run example program) the model is what it traces, NAME.kir with
# NAME_input.npy; without it, tools/examples/NAME.kir with NAME_input.npy from the tree.
# 1. `kiln check -O3` agrees on the model's own input and on a random one, rtol 1e-4 and
#    atol 1e-5, and no value that survives optimization differs beyond that either;
# 2. `kiln opt -O3` fused: `kiln show --stats` counts prim::FusionGroup nodes, the optimized
#    graph has fewer top-level nodes that compute (Params and Constants aside), and each model
#    loses what fusion should absorb (for ResNet-18: every batch norm is folded and every ReLU
#    and residual add sits inside a group; only the three downsample convs stand alone);
# 3. the memory plan of both graphs is printed, and fusion leaves fewer bytes of intermediates;
# 4. `kiln compile -O3` builds the model as a shared library, and `kiln run LIB.so` on the
#    model's input matches the interpreter (rtol 1e-4, atol 1e-5) and, for a traced example, its
#    eager output too (check_compiled in lib.sh).
KILN=$1
NAME=$2
ROOT=$3
EXAMPLE=$4
if [ ! -x "$KILN" ] || [ -z "$NAME" ] || [ ! -d "$ROOT" ]; then
  echo "usage: sh $0 KILN NAME SOURCE_ROOT [EXAMPLE]" >&2
  exit 2
fi
. "$ROOT/tests/models/lib.sh"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-model.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

# ---- the model ----
if [ -n "$EXAMPLE" ]; then
  "$EXAMPLE" "$TMP" >"$TMP/example.out" 2>"$TMP/example.err"
  rc=$?
  check "$EXAMPLE: exit code $rc, expected 0" [ "$rc" -eq 0 ]
  [ "$rc" -eq 0 ] || { show "$TMP/example.err"; finish; }
  MODEL=$TMP/$NAME.kir
  INPUT=$TMP/${NAME}_input.npy
else
  MODEL=$ROOT/tools/examples/$NAME.kir
  INPUT=$ROOT/tools/examples/${NAME}_input.npy
fi
check "$MODEL is missing" [ -s "$MODEL" ]
check "$INPUT is missing" [ -s "$INPUT" ]

# ---- 1. -O3 agrees ----
check_agrees() { # check_agrees LABEL ARGS...: kiln check MODEL ARGS agrees, value by value
  label=$1
  shift
  "$KILN" check "$MODEL" -O3 --rtol 1e-4 --atol 1e-5 "$@" >"$TMP/check.out" 2>"$TMP/check.err"
  rc=$?
  check "kiln check ($label): exit code $rc, expected 0" [ "$rc" -eq 0 ]
  check "kiln check ($label): stderr is not empty" [ ! -s "$TMP/check.err" ]
  check "kiln check ($label): no verdict that the outputs agree" \
    grep -q "^result: *the optimized model agrees" "$TMP/check.out"
  check "kiln check ($label): a surviving value differs" \
    sh -c "! grep -q 'BEYOND TOLERANCE\|SHAPE DIFFERS' '$TMP/check.out'"
  check "kiln check ($label): compared no value" \
    sh -c "! grep -q '^compared: *0 values' '$TMP/check.out'"
  if [ "$rc" -ne 0 ]; then show "$TMP/check.out"; show "$TMP/check.err"; fi
}
check_agrees "model input" --input "$INPUT"
check_agrees "random input, seed 1" --seed 1

# ---- 2. -O3 fuses ----
"$KILN" opt "$MODEL" -O3 -o "$TMP/opt.kir" >"$TMP/opt.out" 2>"$TMP/opt.err"
rc=$?
check "kiln opt -O3: exit code $rc, expected 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || { show "$TMP/opt.err"; finish; }
"$KILN" show --stats "$MODEL" >"$TMP/before.stats" 2>&1
check "kiln show --stats (before) failed" [ $? -eq 0 ]
"$KILN" show --stats "$TMP/opt.kir" >"$TMP/after.stats" 2>&1
check "kiln show --stats (after) failed" [ $? -eq 0 ]

# plan_bytes FILE FIELD: a number from the stats' workspace line (1: workspace, 2: peak live,
# 3: without reuse)
plan_bytes() {
  sed -n 's/^workspace: *\([0-9]*\) bytes (peak live \([0-9]*\), without reuse \([0-9]*\).*/\1 \2 \3/p' "$1" |
    awk -v f="$2" '{ print $f }'
}

groups=$(stat_count "$TMP/after.stats" prim::FusionGroup)
top_groups=$(top_count "$TMP/after.stats" prim::FusionGroup)
before_nodes=$(top_count "$TMP/before.stats")
after_nodes=$(top_count "$TMP/after.stats")
echo "$NAME: $before_nodes top-level nodes before -O3, $after_nodes after, $groups fusion groups"
check "no prim::FusionGroup after -O3" [ "$groups" -gt 0 ]
check "the stats count $groups groups, the top level has $top_groups" [ "$groups" -eq "$top_groups" ]
check "-O3 left $after_nodes top-level nodes of $before_nodes" [ "$after_nodes" -lt "$before_nodes" ]
check "the input had fusion groups already" [ "$(stat_count "$TMP/before.stats" prim::FusionGroup)" -eq 0 ]

# ---- 3. the memory plan ----
grep "^workspace:" "$TMP/before.stats" "$TMP/after.stats" | sed "s|^$TMP/|$NAME |"
ws_before=$(plan_bytes "$TMP/before.stats" 3)
ws_after=$(plan_bytes "$TMP/after.stats" 3)
check "no workspace line before -O3" [ -n "$ws_before" ]
check "no workspace line after -O3" [ -n "$ws_after" ]
if [ -n "$ws_before" ] && [ -n "$ws_after" ]; then
  check "fusion left $ws_after bytes of intermediates, not fewer than $ws_before" \
    [ "$ws_after" -lt "$ws_before" ]
  check "the workspace after -O3 exceeds one buffer per value" \
    [ "$(plan_bytes "$TMP/after.stats" 1)" -le "$ws_after" ]
fi

# ---- 4. compiled as an artifact ----
if [ -n "$EXAMPLE" ]; then
  check_compiled "$MODEL" "$INPUT" "$TMP/${NAME}_output.npy" 1e-4 1e-5
else
  check_compiled "$MODEL" "$INPUT"
fi

# ---- what each model must lose ----
absent() { # absent OP: no top-level OP after -O3
  n=$(top_count "$TMP/after.stats" "$1")
  check "$n top-level $1 left after -O3" [ "$n" -eq 0 ]
}
present_before() { # present_before OP: the model had OP to begin with (so absent means something)
  n=$(top_count "$TMP/before.stats" "$1")
  check "the model has no $1 to begin with" [ "$n" -gt 0 ]
}
case $NAME in
resnet18)
  for op in aten::batch_norm aten::relu aten::add; do
    present_before "$op"
    absent "$op"
  done
  check "ResNet-18 has 20 batch norms" [ "$(stat_count "$TMP/before.stats" aten::batch_norm)" -eq 20 ]
  check "a batch norm survived in a group" [ "$(stat_count "$TMP/after.stats" aten::batch_norm)" -eq 0 ]
  convs=$(top_count "$TMP/after.stats" aten::conv2d)
  check "$convs convs stand alone; only the 3 downsample convs should" [ "$convs" -le 3 ]
  check "fewer than 17 groups ($groups): a conv chain was not fused" [ "$groups" -ge 17 ]
  ;;
cnn | demo)
  for op in aten::batch_norm aten::relu; do
    present_before "$op"
    absent "$op"
  done
  ;;
mlp)
  present_before aten::relu
  absent aten::relu
  ;;
transformer)
  present_before aten::gelu
  absent aten::gelu
  ;;
esac

[ "$failures" -eq 0 ] || { show "$TMP/before.stats"; show "$TMP/after.stats"; }
finish
