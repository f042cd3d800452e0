# Reading `kiln show --stats` output in the model tests (POSIX sh, sourced by check_model.sh
# and torch/run_torch_model.sh).

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
