# kiln's command-line surface: --help, --version, help CMD, CMD --help, and usage errors
# (unknown command or option: a message naming it, a pointer at --help, exit 2).
. "$(dirname "$0")/lib.sh"

run --help
expect_rc 0
expect_out "usage: kiln COMMAND"
expect_out_line "  show +print a model as text IR.*"
expect_out_line "  run +run a model .*"
expect_out "kiln run net.kir --input x=x.npy -o y.npy"
expect_no_err

run -h
expect_rc 0
expect_out "commands:"

run --version
expect_rc 0
expect_out_line "kiln 0\.1\.0"

run help run
expect_rc 0
expect_out "usage: kiln run FILE"
expect_out "--input [NAME=]FILE"
expect_out "--output [NAME=]FILE"
expect_out "--full"
expect_out "examples:"

run run --help
expect_rc 0
expect_out "usage: kiln run FILE"

run show --help
expect_rc 0
expect_out "usage: kiln show FILE [--stats]"
expect_out "--stats"
expect_out "kiln show net.kir --stats"

run help show
expect_rc 0
expect_out "usage: kiln show FILE"

# usage errors
run
expect_rc 2
expect_err "usage: kiln COMMAND"

run frobnicate
expect_rc 2
expect_err_prefix "kiln: "
expect_err "unknown command 'frobnicate'"
expect_err "kiln --help"
expect_no_out

run help frobnicate
expect_rc 2
expect_err "unknown command 'frobnicate'"

run --frobnicate
expect_rc 2
expect_err "unknown option '--frobnicate'"

run show --frobnicate "$DATA/add_relu.ir"
expect_rc 2
expect_err "unknown option '--frobnicate'"
expect_err "kiln show --help"

run show -z "$DATA/add_relu.ir"
expect_rc 2
expect_err "unknown option '-z'"

run show --stats=yes "$DATA/add_relu.ir"
expect_rc 2
expect_err "takes no value"

run show
expect_rc 2
expect_err "no model file given"

run show "$DATA/add_relu.ir" "$DATA/add_relu.ir"
expect_rc 2
expect_err "expected one model file"

run run "$DATA/add_relu.ir" --input
expect_rc 2
expect_err "option '--input' needs a value"

run run
expect_rc 2
expect_err "no model file given"

finish
