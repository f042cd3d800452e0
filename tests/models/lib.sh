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
