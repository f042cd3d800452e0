# Help text: every command that `kiln --help` lists answers `kiln CMD --help` and `kiln help
# CMD` with exit 0, its usage line, its options and examples; a mistyped command or option
# name gets the nearest one suggested.
. "$(dirname "$0")/lib.sh"

run --help
expect_rc 0
expect_out "commands:"
# the command names: the first word of each line of the "commands:" section
commands=$(awk '/^commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }' "$TMP/out")
checks=$((checks + 1))
[ -n "$commands" ] || fail "kiln --help lists no commands"
for expected in show run opt check import export viz; do
  checks=$((checks + 1))
  echo "$commands" | grep -qx "$expected" || fail "kiln --help does not list '$expected'"
done

for cmd in $commands; do
  run "$cmd" --help
  expect_rc 0
  expect_no_err
  expect_out "usage: kiln $cmd "
  expect_out "options:"
  expect_out "  -h, --help"
  expect_out "examples:"
  # at least one example line that runs this very command
  checks=$((checks + 1))
  awk '/^examples:/ { on = 1; next } on' "$TMP/out" | grep -q "^  kiln $cmd\( \|$\)" ||
    fail "no example of 'kiln $cmd'"
  cp "$TMP/out" "$TMP/help_flag"
  run help "$cmd"
  expect_rc 0
  checks=$((checks + 1))
  cmp -s "$TMP/out" "$TMP/help_flag" || fail "'kiln help $cmd' differs from 'kiln $cmd --help'"
  run "$cmd" -h
  expect_rc 0
  expect_out "usage: kiln $cmd "
done

# a mistyped command: the nearest one is suggested; nothing when none is near
run shwo net.kir
expect_rc 2
expect_err_prefix "kiln: unknown command 'shwo'"
expect_err "Did you mean 'kiln show'?"
run exprot
expect_rc 2
expect_err "Did you mean 'kiln export'?"
run help vis
expect_rc 2
expect_err "Did you mean 'kiln viz'?"
run frobnicate
expect_rc 2
expect_err "unknown command 'frobnicate'"
expect_err "Try 'kiln --help'"
checks=$((checks + 1))
grep -q "Did you mean" "$TMP/err" && fail "no command is near 'frobnicate'"

# a mistyped long option: the nearest option of that command is suggested
run run "$DATA/add_relu.ir" --inptu "x=$DATA/x_2x2.npy"
expect_rc 2
expect_err_prefix "kiln run: unknown option '--inptu' (did you mean '--input'?)"
expect_err "Try 'kiln run --help'"
run viz "$DATA/add_relu.ir" --no-param -o -
expect_rc 2
expect_err "(did you mean '--no-params'?)"
run show "$DATA/add_relu.ir" --zzzzzz
expect_rc 2
expect_err "unknown option '--zzzzzz'"
checks=$((checks + 1))
grep -q "did you mean" "$TMP/err" && fail "no option is near '--zzzzzz'"

finish
