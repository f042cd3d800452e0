/* `kiln export net.kir -o net.onnx [--opset N]`: writes a model as ONNX for other tools (ONNX
 * Runtime, Netron, TensorRT). The opset is checked before anything is loaded, and an op with
 * no ONNX form at that opset is an error naming the op and its node; no partial file is left. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "frontend/onnx/onnx.h"
#include "kiln_internal.h"

static const kl_cli_option export_options[] = {
    {"output", 'o', "FILE", "the ONNX file to write; required"},
    {"opset", 0, "N", "the ONNX opset to target, 13 to 21 (default 17)"},
};

/* --opset: a plain number in the range kiln writes. */
static bool parse_opset(const char *text, int *out) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (!*text || *end || errno || v < 13 || v > 21)
    return false;
  *out = (int)v;
  return true;
}

static int export_run(const kl_cli_command *cmd, int argc, char **argv) {
  kl_cli_args args;
  int rc = KL_EXIT_OK;
  int opset = 0; /* the exporter's default */
  const char *opset_text = NULL;
  if (!kl_cli_parse(cmd, argc, argv, &args)) {
    rc = KL_EXIT_USAGE;
  } else if (args.help) {
    kl_cli_print_command_help(cmd, stdout);
  } else if (args.n_positionals != 1) {
    rc = args.n_positionals ? kl_cli_usage_error(cmd, "expected one model file, got %d",
                                                 args.n_positionals)
                            : kl_cli_usage_error(cmd, "no model file given");
  } else if (!kl_cli_value(cmd, &args, "output")) {
    rc = kl_cli_usage_error(cmd, "no output file given (-o net.onnx)");
  } else if ((opset_text = kl_cli_value(cmd, &args, "opset")) && !parse_opset(opset_text, &opset)) {
    rc = kl_cli_usage_error(cmd, "--opset %s: kiln writes opsets 13 to 21", opset_text);
  } else {
    const char *path = args.positionals[0], *out = kl_cli_value(cmd, &args, "output");
    kl_ir_graph *g = NULL;
    kl_status s = kl_cli_load_graph(path, &g);
    if (s)
      rc = kl_cli_fail(s, path);
    else if ((s = kl_onnx_export_file(g, out, opset)))
      rc = kl_cli_fail(s, NULL); /* the exporter names the file it writes */
    kl_ir_graph_destroy(g);
  }
  kl_cli_args_deinit(&args);
  return rc;
}

const kl_cli_command kl_cmd_export = {
    .name = "export",
    .summary = "write a model as ONNX",
    .synopsis = "FILE -o MODEL.onnx [--opset N]",
    .description =
        "Loads FILE (a .kir model, a text IR file or an ONNX model) and writes it as an ONNX\n"
        "model: graph inputs and outputs with their types (symbolic dims as dim_param),\n"
        "parameters as initializers, constants as Constant nodes, every value's type as\n"
        "value_info, fusion groups inlined, prim::If and prim::Loop as If and Loop. Ops with no\n"
        "single ONNX counterpart at the opset are written as the formula they stand for (gelu\n"
        "before opset 20, layer_norm before 17, scaled_dot_product_attention always).\n"
        "\n"
        "An op that cannot be written at the opset is an error naming the op and its node.\n"
        "\n"
        "Exit status: 0 on success, 1 when the model cannot be loaded or written, 2 on a usage\n"
        "error.",
    .options = export_options,
    .n_options = (int)(sizeof export_options / sizeof export_options[0]),
    .examples = "  kiln export net.kir -o net.onnx\n"
                "  kiln export net.kir -o net.onnx --opset 20\n"
                "  kiln export model.ir -o model.onnx && python3 -m onnx.checker model.onnx\n",
    .run = export_run,
};
