/* `kiln opt MODEL -o OUT [-O0..-O3 | --passes=a,b,c] ...`: runs passes over a model and writes
 * the result, as .kir when OUT ends in ".kir" and as text IR otherwise ("-o -" is stdout).
 *
 * This is the pass manager's command line: the level flags and --passes pick the list, the
 * other flags map one to one onto kl_pass_options. Diagnostics (--print-after-all and
 * --time-passes) go to stderr so that `-o -` output stays a clean model on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/kir.h"
#include "ir/text.h"
#include "kiln_internal.h"
#include "passes/pass.h"

static const kl_cli_option opt_options[] = {
    {"output", 'o', "OUT",
     "where to write the result: a .kir file, a text IR file, or - for stdout"},
    {"level", 'O', "N", "run the -O0..-O3 pipeline (default -O2); see --list-passes"},
    {"passes", 'p', "A,B,C", "run exactly these passes, in this order, instead of a level"},
    {"print-after-all", 0, NULL,
     "print '# after PASS (changed|unchanged)' and the IR after each pass, to stderr"},
    {"time-passes", 0, NULL,
     "print a table of pass, milliseconds and changed to stderr at the end"},
    {"verify", 0, NULL, "run the verifier after every pass; a failure names the pass"},
    {"list-passes", 0, NULL, "list every pass with its summary and the -O pipelines, then exit"},
    KL_CLI_BIND_OPTION,
};

static void list_passes(FILE *f) {
  fprintf(f, "passes:\n");
  for (int i = 0; i < kl_pass_count(); i++) {
    const kl_pass_info *p = kl_pass_at(i);
    fprintf(f, "  %-18s %s%s\n", p->name, p->test_only ? "[test only] " : "", p->summary);
  }
  fprintf(f, "\npipelines:\n");
  for (int level = 0; level <= 3; level++) {
    const char *const *names = kl_pass_pipeline(level);
    fprintf(f, "  -O%d%s:", level, level == 2 ? " (default)" : "");
    if (!names[0])
      fprintf(f, " (no passes)");
    for (int i = 0; names[i]; i++)
      fprintf(f, "%s%s", i == 0 ? " " : ", ", names[i]);
    fputc('\n', f);
  }
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static kl_status write_output(const kl_ir_graph *g, const char *out) {
  if (strcmp(out, "-") == 0)
    return kl_ir_print_file(g, stdout);
  if (ends_with(out, ".kir"))
    return kl_kir_save(g, out);
  FILE *f = fopen(out, "w");
  if (!f)
    return kl_status_create(KL_ERR_IO, "%s: cannot open for writing", out);
  kl_status s = kl_ir_print_file(g, f);
  if (fclose(f) != 0 && !s)
    s = kl_status_create(KL_ERR_IO, "%s: cannot write", out);
  return s;
}


static int opt_run(const kl_cli_command *cmd, int argc, char **argv) {
  kl_cli_args args;
  int rc = KL_EXIT_OK;
  const kl_pass_info **passes = NULL;
  int n_passes = 0;
  kl_ir_graph *g = NULL;
  kl_cli_bind *binds = NULL;
  int n_binds = 0;
  if (!kl_cli_parse(cmd, argc, argv, &args)) {
    rc = KL_EXIT_USAGE;
    goto done;
  }
  if (args.help) {
    kl_cli_print_command_help(cmd, stdout);
    goto done;
  }
  if (kl_cli_flag(cmd, &args, "list-passes")) {
    list_passes(stdout);
    goto done;
  }
  const char *out = kl_cli_value(cmd, &args, "output");
  const char *level = kl_cli_value(cmd, &args, "level");
  const char *list = kl_cli_value(cmd, &args, "passes");
  if (args.n_positionals == 0) {
    rc = kl_cli_usage_error(cmd, "no model file given");
  } else if (args.n_positionals > 1) {
    rc = kl_cli_usage_error(cmd, "expected one model file, got %d", args.n_positionals);
  } else if (!out) {
    rc = kl_cli_usage_error(cmd, "no output given (-o OUT, or -o - for stdout)");
  } else if (level && list) {
    rc = kl_cli_usage_error(cmd, "give either -O%s or --passes, not both", level);
  } else {
    rc = kl_cli_choose_passes(cmd, level, list, 2, &passes, &n_passes);
  }
  if (rc == KL_EXIT_OK)
    rc = kl_cli_collect_binds(cmd, &args, &binds, &n_binds);
  if (rc != KL_EXIT_OK)
    goto done;

  const char *path = args.positionals[0];
  kl_status s = kl_cli_load_graph(path, &g);
  if (s) {
    rc = kl_cli_fail(s, path);
    goto done;
  }
  kl_pass_options opts;
  kl_pass_options_init(&opts);
  opts.verify_each = kl_cli_flag(cmd, &args, "verify");
  opts.print_after_all = kl_cli_flag(cmd, &args, "print-after-all") ? stderr : NULL;
  opts.time_passes = kl_cli_flag(cmd, &args, "time-passes") ? stderr : NULL;
  s = kl_cli_apply_binds(g, binds, n_binds);
  if (!s)
    s = kl_pass_run(g, passes, n_passes, &opts);
  if (!s)
    s = write_output(g, out);
  if (s)
    rc = kl_cli_fail(s, path);
done:
  kl_cli_binds_free(binds, n_binds);
  free(passes);
  kl_ir_graph_destroy(g);
  kl_cli_args_deinit(&args);
  return rc;
}

const kl_cli_command kl_cmd_opt = {
    .name = "opt",
    .summary = "run optimization passes over a model (-O0..-O3 or --passes)",
    .synopsis = "MODEL -o OUT [-O0..-O3 | --passes=A,B,C] [--verify] [--print-after-all] "
                "[--time-passes] [--bind NAME=FILE.npy ...] [--list-passes]",
    .description =
        "Loads MODEL (a .kir, .onnx or text IR file), runs optimization passes over it and\n"
        "writes the result to OUT: a .kir file when OUT ends in .kir (weights included),\n"
        "text IR otherwise, and text IR on stdout for '-o -'.\n"
        "\n"
        "Without -O or --passes the -O2 pipeline runs. -O0 runs nothing (a format conversion);\n"
        "-O1 infers shapes, canonicalizes and removes dead code; -O2 adds constant folding,\n"
        "common subexpression elimination, batch-norm folding and pattern recognition; -O3\n"
        "adds fusion into prim::FusionGroup nodes. --list-passes shows every pass and the\n"
        "exact lists. --passes runs the named passes in the given order, each as often as\n"
        "named; an unknown name is an error listing the known ones.\n"
        "\n"
        "--print-after-all and --time-passes write to stderr, so '-o -' stays a clean model.\n"
        "Value names survive the passes where the values do, so the output can be compared\n"
        "with the input by name.\n"
        "\n"
        "--bind NAME=FILE.npy replaces graph input NAME by a constant holding the .npy's tensor\n"
        "before the passes, as `kiln compile --bind` does: OUT has that input no more, and a\n"
        "model whose shapes depended on its value comes out static (at -O1 and higher).",
    .options = opt_options,
    .n_options = (int)(sizeof opt_options / sizeof opt_options[0]),
    .examples = "  kiln opt net.kir -o net.opt.kir\n"
                "  kiln opt net.kir -O3 -o net.fused.kir\n"
                "  kiln opt net.kir -O0 -o net.ir                  (convert .kir to text IR)\n"
                "  kiln opt model.ir --passes=canonicalize,dce -o -\n"
                "  kiln opt net.kir -o - --print-after-all 2>trace.txt >/dev/null\n"
                "  kiln opt net.kir -o net.opt.kir --verify --time-passes\n"
                "  kiln opt reshape.onnx --bind shape=shape.npy -o reshape.kir\n"
                "  kiln opt --list-passes\n",
    .run = opt_run,
};
