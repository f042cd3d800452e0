# Helpers shared by the cli test scripts (sourced, POSIX sh). Each script is called as
#   sh SCRIPT.sh KILN DATA_DIR SOURCE_ROOT
# runs kiln with `run`, then asserts on the exit code and on lines of stdout and stderr.
# A failed assertion prints what was expected and what came out; the script exits 1 at the
# end if any failed, so one run reports every failure.

KILN=$1
DATA=$2
ROOT=$3
if [ ! -x "$KILN" ] || [ ! -d "$DATA" ]; then
  echo "usage: sh $0 KILN DATA_DIR SOURCE_ROOT" >&2
  exit 2
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cli.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
failures=0
checks=0
what=""

# run ARGS...: runs kiln ARGS; sets $rc and leaves stdout in $TMP/out, stderr in $TMP/err.
run() {
  what="kiln $*"
  "$KILN" "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
}

fail() {
  failures=$((failures + 1))
  echo "FAIL: $what: $1" >&2
  echo "--- stdout:" >&2
  head -c 2000 "$TMP/out" >&2
  echo "--- stderr:" >&2
  head -c 2000 "$TMP/err" >&2
  echo "---" >&2
}

expect_rc() {
  checks=$((checks + 1))
  [ "$rc" -eq "$1" ] || fail "exit code $rc, expected $1"
}

# expect_out TEXT / expect_err TEXT: a fixed string somewhere in stdout / stderr.
expect_out() {
  checks=$((checks + 1))
  grep -qF -- "$1" "$TMP/out" || fail "stdout lacks: $1"
}
expect_err() {
  checks=$((checks + 1))
  grep -qF -- "$1" "$TMP/err" || fail "stderr lacks: $1"
}
# expect_out_line REGEX: a whole stdout line matching an extended regex.
expect_out_line() {
  checks=$((checks + 1))
  grep -qE -- "^$1\$" "$TMP/out" || fail "no stdout line matches: ^$1\$"
}
expect_no_out() {
  checks=$((checks + 1))
  [ ! -s "$TMP/out" ] || fail "stdout should be empty"
}
expect_no_err() {
  checks=$((checks + 1))
  [ ! -s "$TMP/err" ] || fail "stderr should be empty"
}
# An error is one or more lines, the first prefixed "kiln: " (usage errors "kiln CMD: ").
expect_err_prefix() {
  checks=$((checks + 1))
  head -n 1 "$TMP/err" | grep -q -- "^$1" || fail "stderr does not start with: $1"
}

# hex_tail FILE N: the last N bytes of FILE as space-separated hex, on one line.
hex_tail() {
  tail -c "$2" "$1" | od -An -v -tx1 | tr -s ' \n' '  ' | sed 's/^ //; s/ $//'
}

finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures of $checks checks failed" >&2
    exit 1
  fi
  echo "$checks checks passed"
  exit 0
}
