/* What the kiln command's files share: the command table entry each subcommand provides, the
 * option parser every subcommand uses (so `--help`, `--opt=VALUE`, `-o VALUE` and error messages
 * behave the same everywhere) and model loading by content. The tensor printer they use lives in
 * runtime/tensor_print.h.
 *
 * Exit codes: KL_EXIT_OK on success, KL_EXIT_ERROR when the work failed (bad model, bad input,
 * I/O), KL_EXIT_USAGE when the command line itself was wrong. Never anything >= 128. */
#ifndef KL_TOOLS_KILN_INTERNAL_H
#define KL_TOOLS_KILN_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>

#include "ir/ir.h"
#include "runtime/status.h"
#include "runtime/tensor.h"
#include "runtime/tensor_print.h"

enum { KL_EXIT_OK = 0, KL_EXIT_ERROR = 1, KL_EXIT_USAGE = 2 };

/* ---- options (kiln.c) ----------------------------------------------------------------- */

/* One option of a command. value_name NULL means a flag that takes no value. */
typedef struct kl_cli_option {
  const char *long_name;  /* "input" for --input */
  char short_name;        /* 'i' for -i, or 0 */
  const char *value_name; /* "NAME=FILE" as shown in help, or NULL for a flag */
  const char *help;       /* one line */
} kl_cli_option;

struct kl_cli_command;

/* A subcommand: its help text and its entry point. run receives the arguments after the
 * command name and returns an exit code; it prints its own errors with kl_cli_error. */
typedef struct kl_cli_command {
  const char *name;
  const char *summary;     /* one line for `kiln --help` */
  const char *synopsis;    /* "FILE [--stats]" (after "kiln NAME ") */
  const char *description; /* a paragraph for `kiln help NAME`; may hold newlines */
  const kl_cli_option *options;
  int n_options;
  const char *examples; /* lines of example invocations */
  int (*run)(const struct kl_cli_command *cmd, int argc, char **argv);
} kl_cli_command;

/* One parsed option occurrence, in command-line order. */
typedef struct kl_cli_match {
  int option;        /* index into cmd->options */
  const char *value; /* NULL for a flag */
} kl_cli_match;

typedef struct kl_cli_args {
  kl_cli_match *matches;
  int n_matches;
  const char **positionals;
  int n_positionals;
  bool help; /* --help or -h was given */
} kl_cli_args;

/* Parses argv (the arguments after the command name) against cmd's options. Accepts --name,
 * --name VALUE, --name=VALUE, -x, -x VALUE, -xVALUE, and "--" ending the options. On a usage
 * error prints a message naming the option and pointing at --help, and returns false. The
 * caller frees out_args with kl_cli_args_deinit, on success and on failure. */
bool kl_cli_parse(const kl_cli_command *cmd, int argc, char **argv, kl_cli_args *out_args);
void kl_cli_args_deinit(kl_cli_args *args);
/* True if the flag option long_name was given; the last value of a valued option or NULL. */
bool kl_cli_flag(const kl_cli_command *cmd, const kl_cli_args *args, const char *long_name);
const char *kl_cli_value(const kl_cli_command *cmd, const kl_cli_args *args,
                         const char *long_name);
/* True when match m is an occurrence of long_name. */
bool kl_cli_is(const kl_cli_command *cmd, const kl_cli_match *m, const char *long_name);

/* Prints a command's complete usage (synopsis, description, options, examples) to f. */
void kl_cli_print_command_help(const kl_cli_command *cmd, FILE *f);

/* "kiln: <message>" on stderr. */
void kl_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error about cmd: "kiln CMD: <message>" plus a pointer at `kiln CMD --help`; returns
 * KL_EXIT_USAGE so a command can `return kl_cli_usage_error(...)`. */
int kl_cli_usage_error(const kl_cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints s as "kiln: <path>: <message>" (the path only when the message does not already start
 * with it), destroys s and returns KL_EXIT_ERROR. path may be NULL. */
int kl_cli_fail(kl_status s, const char *path);

/* Loads a model: an ONNX model (by its .onnx extension), a .kir file (recognized by its magic
 * bytes, whatever its name) or a text IR file. The graph is the caller's. */
kl_status kl_cli_load_graph(const char *path, kl_ir_graph **out_graph);

/* ---- --bind NAME=FILE.npy (bind.c) --------------------------------------------------- */

/* One --bind: graph input name becomes a constant holding the tensor in the .npy file at
 * path, before the passes run (kl_pass_bind_input). name is malloc'd; path is argv's. */
typedef struct kl_cli_bind {
  char *name;
  const char *path;
} kl_cli_bind;

/* The option row of --bind, the same in every command that takes it. */
#define KL_CLI_BIND_OPTION                                                                      \
  {"bind", 0, "NAME=FILE.npy",                                                                 \
   "replace graph input NAME by a constant holding the .npy's tensor (of the input's dtype "    \
   "and shape) before the passes, so shapes that depend on its value become static; the "      \
   "result has that input no more (repeatable)"}

/* Collects every --bind of args, in order, into *out_binds (free with kl_cli_binds_free). A
 * malformed one (no NAME=FILE) or an input bound twice is a usage error, printed here. */
int kl_cli_collect_binds(const kl_cli_command *cmd, const kl_cli_args *args,
                         kl_cli_bind **out_binds, int *out_n);
void kl_cli_binds_free(kl_cli_bind *binds, int n);
/* The index of the bind of input name, or -1. */
int kl_cli_find_bind(const kl_cli_bind *binds, int n, const char *name);
/* Reads each bind's file and binds the input; an error starts with "--bind NAME=FILE". */
kl_status kl_cli_apply_binds(kl_ir_graph *g, const kl_cli_bind *binds, int n);
/* The error for a graph (optimized at level) that still holds onnx::Deferred nodes, so its
 * shapes are not static: names the inputs whose values decide them and the --bind that makes
 * them constants (or what else is missing); NULL when there are no such nodes. Probes the
 * nodes, so g is for throwing away afterwards. */
kl_status kl_cli_explain_value_dependent(kl_ir_graph *g, int level);

/* ---- the commands (cmd_*.c) ----------------------------------------------------------- */

extern const kl_cli_command kl_cmd_show;
extern const kl_cli_command kl_cmd_run;
extern const kl_cli_command kl_cmd_compile;
extern const kl_cli_command kl_cmd_bench;
extern const kl_cli_command kl_cmd_opt;
extern const kl_cli_command kl_cmd_check;
extern const kl_cli_command kl_cmd_import;
extern const kl_cli_command kl_cmd_export;
extern const kl_cli_command kl_cmd_viz;

/* ---- passes (kiln.c) ---------------------------------------------------------------------- */

struct kl_pass_info;
/* The passes a command runs: --passes LIST (parsed) or else the -O level (level_arg "0".."3",
 * or default_level when NULL). Prints usage errors itself and returns KL_EXIT_USAGE; on
 * success *out_passes (calloc'd, freed by the caller) holds *out_n passes. The caller reports
 * -O and --passes given together. */
int kl_cli_choose_passes(const kl_cli_command *cmd, const char *level_arg, const char *list,
                         int default_level, const struct kl_pass_info ***out_passes, int *out_n);

#endif
