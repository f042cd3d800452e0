# Runs one define-by-run example and checks what it wrote (POSIX sh):
#   sh run_example.sh EXAMPLE KILN NAME
# 1. EXAMPLE OUTDIR exits 0 with nothing on stderr (so no LeakSanitizer or UBSan report in a
#    sanitizer build), prints its eager output and "trace check: ok", and writes NAME.kir,
#    NAME_input.npy and NAME_output.npy;
# 2. run again with no argument in another directory, it writes the same bytes (fixed seed);
# 3. `KILN run NAME.kir --input NAME_input.npy -o out.npy` gives the eager output exactly:
#    both files are written by kl_npy_write, so equal data means equal files.
EXAMPLE=$1
KILN=$2
NAME=$3
if [ ! -x "$EXAMPLE" ] || [ ! -x "$KILN" ] || [ -z "$NAME" ]; then
  echo "usage: sh $0 EXAMPLE KILN NAME" >&2
  exit 2
fi
case $EXAMPLE in /*) ;; *) EXAMPLE=$(pwd)/$EXAMPLE ;; esac # the second run changes directory
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-example.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
failures=0
checks=0

fail() {
  failures=$((failures + 1))
  echo "FAIL: $NAME: $1" >&2
}
# show FILE: its first lines, for a failure's context.
show() {
  echo "--- $1:" >&2
  head -c 3000 "$1" >&2
  echo "---" >&2
}
check() { # check DESCRIPTION COMMAND...: counts a check, fails with DESCRIPTION unless COMMAND succeeds
  what=$1
  shift
  checks=$((checks + 1))
  "$@" || fail "$what"
}

mkdir "$TMP/a" "$TMP/b" "$TMP/c"
"$EXAMPLE" "$TMP/a" >"$TMP/stdout" 2>"$TMP/stderr"
rc=$?
check "exit code $rc, expected 0" [ "$rc" -eq 0 ]
check "stderr is not empty (sanitizer report or error)" [ ! -s "$TMP/stderr" ]
check "stdout lacks the eager output" grep -q "^tensor(\[" "$TMP/stdout"
check "stdout lacks 'trace check: ok'" grep -qx "trace check: ok" "$TMP/stdout"
for f in "$NAME.kir" "${NAME}_input.npy" "${NAME}_output.npy"; do
  check "$f was not written" [ -s "$TMP/a/$f" ]
done
[ "$failures" -eq 0 ] || { show "$TMP/stdout"; show "$TMP/stderr"; }

# The default output directory is the current one; the same seed gives the same files.
(cd "$TMP/b" && "$EXAMPLE" >/dev/null 2>"$TMP/stderr_b")
rc=$?
check "second run (no OUTDIR): exit code $rc, expected 0" [ "$rc" -eq 0 ]
for f in "$NAME.kir" "${NAME}_input.npy" "${NAME}_output.npy"; do
  check "$f differs between two runs" cmp -s "$TMP/a/$f" "$TMP/b/$f"
done

"$KILN" run "$TMP/a/$NAME.kir" --input "$TMP/a/${NAME}_input.npy" -o "$TMP/c/out.npy" \
  >"$TMP/stdout_run" 2>"$TMP/stderr_run"
rc=$?
check "kiln run: exit code $rc, expected 0" [ "$rc" -eq 0 ]
check "kiln run: stderr is not empty" [ ! -s "$TMP/stderr_run" ]
check "kiln run output differs from the eager output" cmp "$TMP/c/out.npy" "$TMP/a/${NAME}_output.npy"
[ "$rc" -eq 0 ] || show "$TMP/stderr_run"

if [ "$failures" -ne 0 ]; then
  echo "$failures of $checks checks failed" >&2
  exit 1
fi
echo "$checks checks passed"
exit 0
