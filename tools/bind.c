/* --bind NAME=FILE.npy, shared by the commands that compile or optimize a model (compile,
 * run --compiled, bench, opt): graph input NAME becomes a constant holding the file's tensor
 * before the passes run (kl_pass_bind_input), the way an ahead-of-time compiler specializes a
 * model for values known when it is built. A model whose shapes depend on input values (an
 * ONNX Reshape whose shape is a graph input) becomes static that way, and the compiled library
 * has one input fewer per --bind.
 *
 * Also here: the error for a graph that is still not static after its passes because of such
 * values. It names the inputs whose values decide shapes (kl_onnx_shape_inputs) and says how
 * to bind them, since "value %r has a symbolic shape" alone does not tell a user what to do. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx/onnx.h"
#include "kiln_internal.h"
#include "passes/pass.h"
#include "runtime/npy.h"

int kl_cli_collect_binds(const kl_cli_command *cmd, const kl_cli_args *args,
                         kl_cli_bind **out_binds, int *out_n) {
  *out_binds = NULL;
  *out_n = 0;
  int n = 0;
  for (int i = 0; i < args->n_matches; i++)
    n += kl_cli_is(cmd, &args->matches[i], "bind");
  if (n == 0)
    return KL_EXIT_OK;
  kl_cli_bind *binds = calloc((size_t)n, sizeof *binds);
  if (!binds)
    kl_fatal_oom();
  int got = 0;
  for (int i = 0; i < args->n_matches; i++) {
    const kl_cli_match *m = &args->matches[i];
    if (!kl_cli_is(cmd, m, "bind"))
      continue;
    const char *eq = strchr(m->value, '=');
    if (!eq || eq == m->value || !eq[1]) {
      kl_cli_binds_free(binds, got);
      return kl_cli_usage_error(cmd, "--bind %s: expected NAME=FILE.npy (a graph input's name, "
                                "'=', then a .npy file holding its value)", m->value);
    }
    size_t len = (size_t)(eq - m->value);
    for (int k = 0; k < got; k++)
      if (strlen(binds[k].name) == len && strncmp(binds[k].name, m->value, len) == 0) {
        int rc = kl_cli_usage_error(cmd, "input '%s' is bound twice (--bind %s=%s and --bind %s)",
                                    binds[k].name, binds[k].name, binds[k].path, m->value);
        kl_cli_binds_free(binds, got);
        return rc;
      }
    binds[got].name = malloc(len + 1);
    if (!binds[got].name)
      kl_fatal_oom();
    memcpy(binds[got].name, m->value, len);
    binds[got].name[len] = '\0';
    binds[got].path = eq + 1;
    got++;
  }
  *out_binds = binds;
  *out_n = got;
  return KL_EXIT_OK;
}

void kl_cli_binds_free(kl_cli_bind *binds, int n) {
  for (int i = 0; i < n; i++)
    free(binds[i].name);
  free(binds);
}

int kl_cli_find_bind(const kl_cli_bind *binds, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(binds[i].name, name) == 0)
      return i;
  return -1;
}

kl_status kl_cli_apply_binds(kl_ir_graph *g, const kl_cli_bind *binds, int n) {
  for (int i = 0; i < n; i++) {
    kl_tensor *value = NULL;
    kl_status s = kl_npy_read(binds[i].path, &value);
    if (!s)
      s = kl_pass_bind_input(g, binds[i].name, value, binds[i].path);
    kl_tensor_release(value);
    if (s)
      return kl_status_annotate(s, "--bind %s=%s", binds[i].name, binds[i].path);
  }
  return NULL;
}

/* ---- a graph that is not static because of input values -------------------------------- */

/* The first onnx::Deferred node of b or its sub-blocks; *count gets how many there are. */
static kl_ir_node *find_deferred(kl_ir_block *b, int *count) {
  kl_ir_node *first = NULL;
  for (kl_ir_node *n = b->first; n; n = n->next) {
    for (int k = 0; k < n->n_blocks; k++) {
      kl_ir_node *inner = find_deferred(n->blocks[k], count);
      if (!first)
        first = inner;
    }
    if (n->op == KL_OP_ONNX_DEFERRED) {
      ++*count;
      if (!first)
        first = n;
    }
  }
  return first;
}

/* Appends printf-style text to a malloc'd string. */
static void append(char **s, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char **s, size_t *len, size_t *cap, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*s + *len, *cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0)
      return;
    if ((size_t)n < *cap - *len) {
      *len += (size_t)n;
      return;
    }
    *cap = 2 * (*cap + (size_t)n);
    *s = realloc(*s, *cap);
    if (!*s)
      kl_fatal_oom();
  }
}

kl_status kl_cli_explain_value_dependent(kl_ir_graph *g, int level) {
  int count = 0;
  kl_ir_node *first = find_deferred(g->top, &count);
  if (!first)
    return NULL;
  char where[400];
  const char *op_type = kl_ir_node_string(first, "op_type", "?");
  if (count == 1)
    snprintf(where, sizeof where, "an onnx::Deferred %s node defining %%%s", op_type,
             first->outputs[0]->name);
  else
    snprintf(where, sizeof where, "%d onnx::Deferred nodes, the first a %s defining %%%s", count,
             op_type, first->outputs[0]->name);
  int n_params = g->top->n_params;
  bool *shape_inputs = calloc((size_t)n_params + 1, sizeof *shape_inputs);
  if (!shape_inputs)
    kl_fatal_oom();
  int found = kl_onnx_shape_inputs(g, shape_inputs);
  size_t len = 0, cap = 256;
  char *msg = malloc(cap);
  if (!msg)
    kl_fatal_oom();
  msg[0] = '\0';
  if (found > 0) {
    append(&msg, &len, &cap, "the graph's shapes depend on the values of input%s ",
           found == 1 ? "" : "s");
    int listed = 0;
    for (int i = 0; i < n_params; i++)
      if (shape_inputs[i])
        append(&msg, &len, &cap, "%s'%s'", listed++ ? ", " : "", g->top->params[i]->name);
    append(&msg, &len, &cap, " (read as values by %s); kiln compile needs static shapes: "
           "bind %s at compile time with", where, found == 1 ? "it" : "them");
    for (int i = 0; i < n_params; i++)
      if (shape_inputs[i])
        append(&msg, &len, &cap, " --bind %s=FILE.npy", g->top->params[i]->name);
    append(&msg, &len, &cap, " (a .npy file holding the value; the library then has one input "
           "fewer per --bind)%s",
           level == 0 ? ", and at -O1 or higher (canonicalize expands such nodes; -O0 runs no "
                        "passes)" : "");
  } else if (level == 0) {
    append(&msg, &len, &cap, "the graph keeps %s: -O0 runs no passes, and it is canonicalize "
           "(-O1 and higher) that expands such a node into static ops once the values it reads "
           "are constants", where);
  } else {
    /* Nothing left to bind: the expander says what it still lacks (a static shape, or an
     * op kiln does not support with these values). */
    kl_ir_expand_fn expand = kl_ir_expander(KL_OP_ONNX_DEFERRED);
    kl_status why = expand ? expand(first) : NULL;
    append(&msg, &len, &cap, "the graph keeps %s whose output shapes are known only at run "
           "time%s%s%s; kiln compile needs static shapes", where,
           why ? " (" : "", why ? kl_status_message(why) : "", why ? ")" : "");
    kl_status_destroy(why);
  }
  free(shape_inputs);
  kl_status s = kl_status_create(KL_ERR_UNSUPPORTED, "%s", msg);
  free(msg);
  return s;
}
