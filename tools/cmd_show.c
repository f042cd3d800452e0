/* `kiln show FILE [--stats]`: prints a model (.kir, .onnx or text IR) as text IR, or with --stats a
 * summary instead: node counts per op, inputs and outputs, parameter totals, the FLOP
 * estimate of ir/stats.c and the workspace of the memory plan. The numbers are printed plainly (no separators) so scripts can read
 * them; a human-friendly rendering follows in parentheses. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/stats.h"
#include "ir/text.h"
#include "kiln_internal.h"
#include "passes/plan_memory.h"

static const kl_cli_option show_options[] = {
    {"stats", 's', NULL, "print statistics instead of the IR: nodes per op, parameters, FLOPs"},
};

/* "662.46 KFLOP" style rendering with SI prefixes; unit may be "". */
static void format_si(double v, const char *unit, char *buf, size_t size) {
  static const char *const prefixes[] = {"", "K", "M", "G", "T", "P", "E"};
  int p = 0;
  while (v >= 1000.0 && p < 6) {
    v /= 1000.0;
    p++;
  }
  const char *sep = p > 0 || unit[0] ? " " : "";
  if (p == 0)
    snprintf(buf, size, "%.0f%s%s", v, sep, unit);
  else
    snprintf(buf, size, "%.2f%s%s%s", v, sep, prefixes[p], unit);
}

static void format_bytes(double v, char *buf, size_t size) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (v >= 1024.0 && u < 6) {
    v /= 1024.0;
    u++;
  }
  if (u == 0)
    snprintf(buf, size, "%.0f B", v);
  else
    snprintf(buf, size, "%.1f %s", v, units[u]);
}

static void print_values(const kl_ir_graph *g, const char *label, kl_ir_value *const *values,
                         int n, FILE *f) {
  fprintf(f, "%-12s%d\n", label, n);
  for (int i = 0; i < n; i++) {
    char type[256];
    kl_ir_type_format(g, &values[i]->type, type, sizeof type);
    fprintf(f, "  %%%s : %s\n", values[i]->name, type);
  }
}

/* The workspace the memory plan (passes/plan_memory.h) gives the graph as it stands: an
 * unoptimized graph plans every node's result, an optimized one only what fusion left. A graph
 * that cannot be planned (a dim without an upper bound) says why instead. */
static void print_workspace(const kl_ir_graph *g, FILE *f) {
  kl_memory_plan *plan = NULL;
  kl_status s = kl_memory_plan_create(g, &plan);
  if (s) {
    const char *why = kl_status_message(s);
    const char *prefix = "memory plan: ";
    if (strncmp(why, prefix, strlen(prefix)) == 0)
      why += strlen(prefix);
    fprintf(f, "workspace:  not planned (%s)\n", why);
    kl_status_destroy(s);
    return;
  }
  char bytes[32];
  format_bytes((double)plan->workspace_bytes, bytes, sizeof bytes);
  fprintf(f,
          "workspace:  %" PRId64 " bytes (peak live %" PRId64 ", without reuse %" PRId64
          ", in-place %d)\n",
          plan->workspace_bytes, plan->peak_bytes, plan->naive_bytes, plan->n_inplace);
  fprintf(f, "            %s for %d intermediate value%s%s\n", bytes, plan->n_planned,
          plan->n_planned == 1 ? "" : "s",
          plan->used_symbol_bounds ? ", symbolic dims at their upper bounds" : "");
  kl_memory_plan_destroy(plan);
}

/* "  aten::relu   3" lines, most frequent op first; ties in op-table order. A selection sort:
 * there are few ops. */
static void print_op_counts(const int64_t *counts, FILE *f) {
  bool shown[KL_OP_COUNT] = {false};
  for (;;) {
    int best = -1;
    for (int op = 0; op < KL_OP_COUNT; op++)
      if (!shown[op] && counts[op] > 0 && (best < 0 || counts[op] > counts[best]))
        best = op;
    if (best < 0)
      break;
    shown[best] = true;
    fprintf(f, "  %-28s %" PRId64 "\n", kl_op_get((kl_op)best)->name, counts[best]);
  }
}

static kl_status print_stats(const kl_ir_graph *g, const char *path, FILE *f) {
  kl_ir_stats st;
  KL_RETURN_IF_ERROR(kl_ir_graph_stats(g, &st));
  fprintf(f, "model:      %s\n", path);
  print_values(g, "inputs:", g->top->params, g->top->n_params, f);
  print_values(g, "outputs:", g->top->returns, g->top->n_returns, f);

  fprintf(f, "nodes:      %" PRId64 "\n", st.n_nodes);
  print_op_counts(st.op_counts, f);

  /* What runs at top level: after fusion, the nodes the groups left outside. The list is
   * printed only when it differs from the one above, i.e. when there are sub-blocks. */
  int64_t top_counts[KL_OP_COUNT] = {0}, n_top = 0;
  for (const kl_ir_node *n = g->top->first; n; n = n->next, n_top++)
    top_counts[n->op]++;
  fprintf(f, "top level:  %" PRId64 " node%s, %" PRId64 " besides prim::Param and prim::Constant\n",
          n_top, n_top == 1 ? "" : "s", n_top - top_counts[KL_OP_PARAM] - top_counts[KL_OP_CONSTANT]);
  if (n_top != st.n_nodes)
    print_op_counts(top_counts, f);

  char elems[32], bytes[32];
  format_si((double)st.param_elements, "", elems, sizeof elems);
  format_bytes((double)st.param_bytes, bytes, sizeof bytes);
  int64_t n_tensors = st.n_weights + st.n_constants;
  fprintf(f, "parameters: %" PRId64 " tensor%s (%" PRId64 " weights, %" PRId64 " constants)\n",
          n_tensors, n_tensors == 1 ? "" : "s", st.n_weights, st.n_constants);
  fprintf(f, "elements:   %" PRId64 " (%s)\n", st.param_elements, elems);
  fprintf(f, "bytes:      %" PRId64 " (%s)\n", st.param_bytes, bytes);

  char flops[32];
  format_si((double)st.flops, "FLOP", flops, sizeof flops);
  fprintf(f, "flops:      %" PRId64 " (%s per run, a multiply-add counts 2)\n", st.flops,
          flops);
  if (st.flops_partial)
    fprintf(f, "note:       the FLOP estimate is partial: %" PRId64
               " node(s) have symbolic shapes and are not counted%s\n",
            st.n_partial_nodes,
            st.op_counts[KL_OP_LOOP] ? "; loop bodies are counted for one trip" : "");
  print_workspace(g, f);
  return NULL;
}

static int show_run(const kl_cli_command *cmd, int argc, char **argv) {
  kl_cli_args args;
  int rc = KL_EXIT_OK;
  if (!kl_cli_parse(cmd, argc, argv, &args)) {
    rc = KL_EXIT_USAGE;
  } else if (args.help) {
    kl_cli_print_command_help(cmd, stdout);
  } else if (args.n_positionals == 0) {
    rc = kl_cli_usage_error(cmd, "no model file given");
  } else if (args.n_positionals > 1) {
    rc = kl_cli_usage_error(cmd, "expected one model file, got %d", args.n_positionals);
  } else {
    const char *path = args.positionals[0];
    kl_ir_graph *g = NULL;
    kl_status s = kl_cli_load_graph(path, &g);
    if (!s)
      s = kl_cli_flag(cmd, &args, "stats") ? print_stats(g, path, stdout)
                                           : kl_ir_print_file(g, stdout);
    if (s)
      rc = kl_cli_fail(s, path);
    kl_ir_graph_destroy(g);
  }
  kl_cli_args_deinit(&args);
  return rc;
}

const kl_cli_command kl_cmd_show = {
    .name = "show",
    .summary = "print a model as text IR, or its statistics (--stats)",
    .synopsis = "FILE [--stats]",
    .description =
        "Loads FILE, a .kir model (recognized by its contents, whatever its name), an ONNX model\n"
        "(by its .onnx extension) or a text IR file, and prints its text IR to stdout.\n"
        "\n"
        "With --stats it prints, instead of the IR, the model's inputs and outputs, the number\n"
        "of nodes of each op (nodes inside sub-blocks included), the number at top level (by op\n"
        "too when some nodes are in sub-blocks, such as fusion group bodies), the parameter\n"
        "tensors with their total elements and bytes (weights and constants), and an estimate\n"
        "of the FLOPs of one run from the static shapes (a multiply-add counts as 2 FLOPs; data\n"
        "movement counts 0). Nodes with symbolic shapes are left out and the estimate is marked\n"
        "partial. The last lines give the workspace the memory plan needs for the intermediate values\n"
        "(graph outputs and weights not included): its size with buffers reused after their\n"
        "last use, the largest total alive at once, the size with one buffer per value, and how\n"
        "many elementwise nodes write over their input. Symbolic dims count at their upper bound.\n"
        "\n"
        "Exit status: 0 on success, 1 when the model cannot be loaded or printed, 2 on a usage\n"
        "error.",
    .options = show_options,
    .n_options = (int)(sizeof show_options / sizeof show_options[0]),
    .examples = "  kiln show net.kir\n"
                "  kiln show net.kir --stats\n"
                "  kiln show model.ir | less\n"
                "  kiln show model.onnx > model.ir                (ONNX as text IR)\n",
    .run = show_run,
};
