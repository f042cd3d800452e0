/* `kiln import model.onnx -o net.kir`: reads an ONNX model through frontend/onnx and saves it
 * as a .kir file (or as text IR when the output name ends in .ir), then prints a one-line
 * summary so a script or a person sees at once what came in. Every unsupported op of the
 * model is reported by the importer together, not one per run. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "frontend/onnx/onnx.h"
#include "ir/kir.h"
#include "ir/stats.h"
#include "ir/text.h"
#include "kiln_internal.h"

static const kl_cli_option import_options[] = {
    {"output", 'o', "FILE", "where to write the model: FILE.kir (weights included) or FILE.ir "
                            "(text IR only); required"},
};

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static kl_status write_text_ir(const kl_ir_graph *g, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f)
    return kl_status_create(KL_ERR_IO, "%s: cannot create", path);
  kl_status s = kl_ir_print_file(g, f);
  if (fclose(f) != 0 && !s)
    s = kl_status_create(KL_ERR_IO, "%s: cannot write", path);
  return s;
}

static kl_status import_model(const char *in_path, const char *out_path) {
  kl_ir_graph *g = NULL;
  KL_RETURN_IF_ERROR(kl_onnx_import_file(in_path, NULL, &g));
  kl_ir_stats st;
  kl_status s = kl_ir_graph_stats(g, &st);
  if (!s)
    s = ends_with(out_path, ".ir") ? write_text_ir(g, out_path) : kl_kir_save(g, out_path);
  if (!s)
    printf("%s -> %s: %d input%s, %d output%s, %" PRId64 " nodes, %" PRId64
           " parameters (%" PRId64 " elements)\n",
           in_path, out_path, g->top->n_params, g->top->n_params == 1 ? "" : "s",
           g->top->n_returns, g->top->n_returns == 1 ? "" : "s", st.n_nodes,
           st.n_weights, st.param_elements);
  kl_ir_graph_destroy(g);
  return s;
}

static int import_run(const kl_cli_command *cmd, int argc, char **argv) {
  kl_cli_args args;
  int rc = KL_EXIT_OK;
  if (!kl_cli_parse(cmd, argc, argv, &args)) {
    rc = KL_EXIT_USAGE;
  } else if (args.help) {
    kl_cli_print_command_help(cmd, stdout);
  } else if (args.n_positionals != 1) {
    rc = args.n_positionals ? kl_cli_usage_error(cmd, "expected one ONNX file, got %d",
                                                 args.n_positionals)
                            : kl_cli_usage_error(cmd, "no ONNX file given");
  } else if (!kl_cli_value(cmd, &args, "output")) {
    rc = kl_cli_usage_error(cmd, "no output file given (-o net.kir)");
  } else {
    const char *path = args.positionals[0];
    kl_status s = import_model(path, kl_cli_value(cmd, &args, "output"));
    if (s)
      rc = kl_cli_fail(s, path);
  }
  kl_cli_args_deinit(&args);
  return rc;
}

const kl_cli_command kl_cmd_import = {
    .name = "import",
    .summary = "convert an ONNX model to a .kir file",
    .synopsis = "MODEL.onnx -o FILE.kir",
    .description =
        "Reads an ONNX model (opset 7 and later; external tensor data is read from files next\n"
        "to it, never from outside its folder) and writes it as a .kir file, or as text IR when\n"
        "FILE ends in .ir. Initializers become named parameters, Constant nodes constants, and\n"
        "every other node one or a few IR ops. Prints one line: the inputs, outputs, nodes and\n"
        "parameters of the imported graph.\n"
        "\n"
        "When the model uses ops kiln does not support, all of them are listed (op, domain,\n"
        "opset and node name) and nothing is written. Commands that take a model (show, run,\n"
        "...) also read .onnx files directly; import saves the conversion once.\n"
        "\n"
        "Exit status: 0 on success, 1 when the model cannot be read or converted, 2 on a usage\n"
        "error.",
    .options = import_options,
    .n_options = (int)(sizeof import_options / sizeof import_options[0]),
    .examples = "  kiln import resnet18.onnx -o resnet18.kir\n"
                "  kiln import model.onnx -o model.ir && less model.ir\n",
    .run = import_run,
};
