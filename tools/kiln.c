/* The kiln command: dispatches `kiln COMMAND ...` to the subcommand in its own cmd_*.c file,
 * and holds what every subcommand shares: one option parser (so options, --help and usage
 * errors read the same in every command), error printing, and model loading.
 *
 * A new command is a kl_cli_command in its own file plus one line in `commands` below. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx/onnx.h"
#include "ir/kir.h"
#include "ir/text.h"
#include "kiln_internal.h"
#include "passes/pass.h"
#include "runtime/limits.h"

#ifndef KL_VERSION
#define KL_VERSION "unknown"
#endif

/* Every command, in the order `kiln --help` lists them. */
static const kl_cli_command *const commands[] = {
    &kl_cmd_show,
    &kl_cmd_run,
    &kl_cmd_compile,
    &kl_cmd_bench,
    &kl_cmd_opt,
    &kl_cmd_check,
    &kl_cmd_import,
    &kl_cmd_export,
    &kl_cmd_viz,
};
enum { N_COMMANDS = (int)(sizeof commands / sizeof commands[0]) };

/* ---- errors --------------------------------------------------------------------------- */

void kl_cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("kiln: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int kl_cli_usage_error(const kl_cli_command *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "kiln %s: ", cmd->name);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry 'kiln %s --help' for usage.\n", cmd->name);
  va_end(ap);
  return KL_EXIT_USAGE;
}

int kl_cli_fail(kl_status s, const char *path) {
  const char *msg = kl_status_message(s);
  size_t plen = path ? strlen(path) : 0;
  /* Parsers and loaders usually name the file themselves ("net.ir:3:7: ..."); do not say it twice. */
  if (path && !(strncmp(msg, path, plen) == 0 && msg[plen] == ':'))
    fprintf(stderr, "kiln: %s: %s\n", path, msg);
  else
    fprintf(stderr, "kiln: %s\n", msg);
  kl_status_destroy(s);
  return KL_EXIT_ERROR;
}

/* ---- option parsing ------------------------------------------------------------------- */

static void add_match(kl_cli_args *a, int option, const char *value) {
  /* argc bounds the number of matches, so the array was sized up front. */
  a->matches[a->n_matches].option = option;
  a->matches[a->n_matches].value = value;
  a->n_matches++;
}

static int find_long(const kl_cli_command *cmd, const char *name, size_t len) {
  for (int i = 0; i < cmd->n_options; i++) {
    const char *ln = cmd->options[i].long_name;
    if (ln && strlen(ln) == len && strncmp(ln, name, len) == 0)
      return i;
  }
  return -1;
}

static int find_short(const kl_cli_command *cmd, char c) {
  for (int i = 0; i < cmd->n_options; i++)
    if (cmd->options[i].short_name && cmd->options[i].short_name == c)
      return i;
  return -1;
}

static int edit_distance(const char *a, const char *b);

/* The long option of cmd nearest to the unknown name (len bytes): one edit away, or two for
 * names of five letters or more; NULL when none is that near. */
static const char *nearest_option(const kl_cli_command *cmd, const char *name, size_t len) {
  char typed[33];
  if (len >= sizeof typed)
    return NULL;
  memcpy(typed, name, len);
  typed[len] = '\0';
  const char *nearest = NULL;
  int best = INT_MAX;
  for (int i = 0; i < cmd->n_options; i++) {
    int d = cmd->options[i].long_name ? edit_distance(typed, cmd->options[i].long_name) : INT_MAX;
    if (d < best) {
      best = d;
      nearest = cmd->options[i].long_name;
    }
  }
  return best <= (len >= 5 ? 2 : 1) ? nearest : NULL;
}

bool kl_cli_parse(const kl_cli_command *cmd, int argc, char **argv, kl_cli_args *out_args) {
  memset(out_args, 0, sizeof *out_args);
  size_t n = argc > 0 ? (size_t)argc : 1;
  out_args->matches = calloc(n, sizeof *out_args->matches);
  out_args->positionals = calloc(n, sizeof *out_args->positionals);
  if (!out_args->matches || !out_args->positionals)
    kl_fatal_oom();
  bool options_done = false;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (options_done || arg[0] != '-' || arg[1] == '\0') { /* "-" alone is a positional (stdin) */
      out_args->positionals[out_args->n_positionals++] = arg;
      continue;
    }
    if (strcmp(arg, "--") == 0) {
      options_done = true;
      continue;
    }
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      out_args->help = true;
      continue;
    }
    int opt;
    const char *value = NULL;
    bool attached = false; /* the value was part of this argument */
    if (arg[1] == '-') {
      const char *name = arg + 2;
      const char *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      opt = find_long(cmd, name, len);
      if (opt < 0) {
        const char *near = nearest_option(cmd, name, len);
        if (near)
          kl_cli_usage_error(cmd, "unknown option '--%.*s' (did you mean '--%s'?)", (int)len, name,
                             near);
        else
          kl_cli_usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
        return false;
      }
      if (eq) {
        value = eq + 1;
        attached = true;
      }
    } else {
      opt = find_short(cmd, arg[1]);
      if (opt < 0) {
        kl_cli_usage_error(cmd, "unknown option '-%c'", arg[1]);
        return false;
      }
      if (arg[2] != '\0') {
        value = arg + 2;
        attached = true;
      }
    }
    const kl_cli_option *o = &cmd->options[opt];
    if (!o->value_name) {
      if (attached) {
        kl_cli_usage_error(cmd, "option '--%s' takes no value", o->long_name);
        return false;
      }
    } else if (!attached) {
      if (i + 1 >= argc) {
        kl_cli_usage_error(cmd, "option '--%s' needs a value (%s)", o->long_name, o->value_name);
        return false;
      }
      value = argv[++i];
    }
    add_match(out_args, opt, value);
  }
  return true;
}

void kl_cli_args_deinit(kl_cli_args *args) {
  free(args->matches);
  free(args->positionals);
  memset(args, 0, sizeof *args);
}

bool kl_cli_is(const kl_cli_command *cmd, const kl_cli_match *m, const char *long_name) {
  return strcmp(cmd->options[m->option].long_name, long_name) == 0;
}

bool kl_cli_flag(const kl_cli_command *cmd, const kl_cli_args *args, const char *long_name) {
  for (int i = 0; i < args->n_matches; i++)
    if (kl_cli_is(cmd, &args->matches[i], long_name))
      return true;
  return false;
}

const char *kl_cli_value(const kl_cli_command *cmd, const kl_cli_args *args,
                         const char *long_name) {
  const char *value = NULL;
  for (int i = 0; i < args->n_matches; i++)
    if (kl_cli_is(cmd, &args->matches[i], long_name))
      value = args->matches[i].value;
  return value;
}

/* ---- help ----------------------------------------------------------------------------- */

/* Prints text word-wrapped to 80 columns, continuation lines indented by indent; the first
 * line starts at column `column`. */
static void print_wrapped(FILE *f, const char *text, int column, int indent) {
  const char *p = text;
  while (*p) {
    size_t word = strcspn(p, " ");
    if (column > indent && column + 1 + (int)word > 80) {
      fprintf(f, "\n%*s", indent, "");
      column = indent;
    } else if (column > indent) {
      fputc(' ', f);
      column++;
    }
    fwrite(p, 1, word, f);
    column += (int)word;
    p += word;
    while (*p == ' ')
      p++;
  }
  fputc('\n', f);
}

void kl_cli_print_command_help(const kl_cli_command *cmd, FILE *f) {
  enum { LEFT = 28 }; /* width of the option column, indent included */
  fprintf(f, "usage: kiln %s %s\n\n%s\n", cmd->name, cmd->synopsis, cmd->description);
  fprintf(f, "\noptions:\n");
  for (int i = 0; i < cmd->n_options; i++) {
    const kl_cli_option *o = &cmd->options[i];
    char left[96];
    int len = snprintf(left, sizeof left, "  %s%c%s--%s%s%s", o->short_name ? "-" : " ",
                       o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ",
                       o->long_name, o->value_name ? " " : "", o->value_name ? o->value_name : "");
    fputs(left, f);
    if (len + 1 > LEFT) { /* a long option name: its help goes on the next line */
      fprintf(f, "\n%*s", LEFT, "");
    } else {
      fprintf(f, "%*s", LEFT - len, "");
    }
    print_wrapped(f, o->help, LEFT, LEFT);
  }
  fprintf(f, "  -h, --help%*s", LEFT - 12, "");
  print_wrapped(f, "show this help", LEFT, LEFT);
  fprintf(f, "\nexamples:\n%s", cmd->examples);
}

static void print_main_help(FILE *f) {
  fprintf(f,
          "kiln %s: an ahead-of-time model compiler and IR toolchain\n"
          "\n"
          "usage: kiln COMMAND [OPTIONS] [ARGS]\n"
          "       kiln help COMMAND      every option of one command, with examples\n"
          "\n"
          "commands:\n",
          KL_VERSION);
  for (int i = 0; i < N_COMMANDS; i++)
    fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(f, "\n"
             "options:\n"
             "  -h, --help   show this help\n"
             "  --version    print the version\n"
             "\n"
             "examples:\n"
             "  kiln show net.kir --stats\n"
             "  kiln run net.kir --input x=x.npy -o y.npy\n"
             "  kiln opt net.kir -O3 -o net.opt.kir\n"
             "  kiln compile model.onnx -o libnet.so --header net.h\n"
             "  kiln viz net.kir -O3 -o net.svg\n");
}

static const kl_cli_command *find_command(const char *name) {
  for (int i = 0; i < N_COMMANDS; i++)
    if (strcmp(commands[i]->name, name) == 0)
      return commands[i];
  return NULL;
}

/* The edit distance between a and b (insertions, deletions, substitutions and swaps of two
 * neighbouring letters each count 1), or INT_MAX when either is too long to be a typo. */
static int edit_distance(const char *a, const char *b) {
  enum { MAX = 32 };
  size_t n = strlen(a), m = strlen(b);
  if (n > MAX || m > MAX)
    return INT_MAX;
  int d[MAX + 1][MAX + 1];
  for (size_t i = 0; i <= n; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    for (size_t j = 1; j <= m; j++) {
      int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < best)
        best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best)
        best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  }
  return d[n][m];
}

/* Names the unknown command and suggests the nearest known one when it is near enough to be
 * what was meant: one edit away, or two for names of five letters or more. */
static int unknown_command(const char *name) {
  fprintf(stderr, "kiln: unknown command '%s'\n", name);
  const char *nearest = NULL;
  int best = INT_MAX;
  for (int i = 0; i < N_COMMANDS; i++) {
    int d = edit_distance(name, commands[i]->name);
    if (d < best) {
      best = d;
      nearest = commands[i]->name;
    }
  }
  if (nearest && best <= (strlen(name) >= 5 ? 2 : 1))
    fprintf(stderr, "Did you mean 'kiln %s'?\n", nearest);
  fprintf(stderr, "Try 'kiln --help' for the list of commands.\n");
  return KL_EXIT_USAGE;
}

/* ---- loading models ------------------------------------------------------------------- */

kl_status kl_cli_load_graph(const char *path, kl_ir_graph **out_graph) {
  *out_graph = NULL;
  /* ONNX has no magic bytes: its extension names it. */
  if (kl_onnx_is_onnx_path(path))
    return kl_onnx_import_file(path, NULL, out_graph);
  FILE *f = fopen(path, "rb");
  if (!f)
    return kl_status_create(KL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  unsigned char head[16];
  size_t got = fread(head, 1, sizeof head, f);
  int read_errno = ferror(f) ? errno : 0;
  fclose(f);
  if (read_errno)
    return kl_status_create(KL_ERR_IO, "%s: cannot read: %s", path, strerror(read_errno));
  if (kl_kir_is_kir(head, got))
    return kl_kir_load(path, out_graph);
  return kl_ir_parse_file(path, out_graph);
}

/* ---- main ----------------------------------------------------------------------------- */

/* ---- passes from -O or --passes ------------------------------------------------------- */

int kl_cli_choose_passes(const kl_cli_command *cmd, const char *level_arg, const char *list,
                         int default_level, const kl_pass_info ***out_passes, int *out_n) {
  if (list) {
    kl_status s = kl_pass_parse_list(list, out_passes, out_n);
    if (s) {
      fprintf(stderr, "kiln %s: %s\nTry 'kiln opt --list-passes'.\n", cmd->name,
              kl_status_message(s));
      kl_status_destroy(s);
      return KL_EXIT_USAGE;
    }
    return KL_EXIT_OK;
  }
  int level = default_level;
  if (level_arg) {
    if (strlen(level_arg) != 1 || level_arg[0] < '0' || level_arg[0] > '3')
      return kl_cli_usage_error(
          cmd, "optimization level must be -O0, -O1, -O2 or -O3, not '-O%s'", level_arg);
    level = level_arg[0] - '0';
  }
  const char *const *names = kl_pass_pipeline(level);
  int n = 0;
  while (names[n])
    n++;
  const kl_pass_info **passes = calloc((size_t)n + 1, sizeof *passes);
  if (!passes)
    kl_fatal_oom();
  for (int i = 0; i < n; i++)
    passes[i] = kl_pass_find(names[i]);
  *out_passes = passes;
  *out_n = n;
  return KL_EXIT_OK;
}

int main(int argc, char **argv) {
  /* `kiln show big.kir | head` must end with a write error and exit 1, not die of SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  kl_onnx_register_expanders(); /* onnx::Deferred nodes in .kir and text IR run and optimize */
  kl_status limits = kl_limits_from_env(); /* KILN_LIMITS="max_nodes=1000,..." */
  if (limits)
    return kl_cli_fail(limits, NULL);
  if (argc < 2) {
    print_main_help(stderr);
    return KL_EXIT_USAGE;
  }
  const char *first = argv[1];
  if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
    print_main_help(stdout);
    return KL_EXIT_OK;
  }
  if (strcmp(first, "--version") == 0) {
    printf("kiln %s\n", KL_VERSION);
    return KL_EXIT_OK;
  }
  if (strcmp(first, "help") == 0) {
    if (argc < 3) {
      print_main_help(stdout);
      return KL_EXIT_OK;
    }
    const kl_cli_command *cmd = find_command(argv[2]);
    if (!cmd)
      return unknown_command(argv[2]);
    kl_cli_print_command_help(cmd, stdout);
    return KL_EXIT_OK;
  }
  if (first[0] == '-') {
    fprintf(stderr, "kiln: unknown option '%s'\nTry 'kiln --help' for usage.\n", first);
    return KL_EXIT_USAGE;
  }
  const kl_cli_command *cmd = find_command(first);
  if (!cmd)
    return unknown_command(first);
  int rc = cmd->run(cmd, argc - 2, argv + 2);
  /* A failed write to stdout (a full disk, a closed pipe) is an error, not a success. */
  if (fflush(stdout) != 0 || ferror(stdout)) {
    if (rc == KL_EXIT_OK)
      kl_cli_error("error writing output: %s", strerror(errno));
    return rc == KL_EXIT_OK ? KL_EXIT_ERROR : rc;
  }
  return rc;
}
