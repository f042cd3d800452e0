#!/usr/bin/env bash
# The kiln command reads KILN_LIMITS before anything else: a limit it lowers refuses a file
# with a message naming the limit, and a bad spec is an error naming the bad item.
# Usage: kiln_limits.sh KILN_EXE   (run from tests/malformed)
set -u
kiln="$1"
fails=0
expect() { # expect WANT_RC SUBSTRING -- command...
  local want="$1" sub="$2"
  shift 3
  local out rc
  out="$("$@" 2>&1)"
  rc=$?
  if [ "$rc" -ne "$want" ] || [[ "$out" != *"$sub"* ]]; then
    echo "FAIL: $* -> rc $rc (want $want), output: $out" >&2
    echo "  expected to contain: $sub" >&2
    fails=$((fails + 1))
  fi
}
expect 0 "aten::matmul" -- env -u KILN_LIMITS "$kiln" show valid/net.kir
expect 1 "over the limit max_nodes; raise it with KILN_LIMITS=max_nodes=N" -- \
  env KILN_LIMITS=max_nodes=1 "$kiln" show valid/net.kir
expect 1 "256 bytes is over the limit max_total_bytes = 100" -- \
  env KILN_LIMITS=max_total_bytes=100 "$kiln" show valid/net.kir
expect 1 "KILN_LIMITS: unknown limit 'max_nodez'" -- \
  env KILN_LIMITS=max_nodez=1 "$kiln" show valid/net.kir
expect 1 "KILN_LIMITS: limit max_rank = 40 is outside its range 1..32" -- \
  env KILN_LIMITS=max_rank=40 "$kiln" --version
expect 0 "aten::matmul" -- env KILN_LIMITS=" max_nodes = 10 , max_tensor_bytes=1G" \
  "$kiln" show valid/net.kir
if [ "$fails" -ne 0 ]; then
  echo "$fails kiln_limits checks failed" >&2
  exit 1
fi
echo "kiln_limits: all checks passed"
