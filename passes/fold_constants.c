/* fold-constants: evaluates, at compile time, every node whose inputs are all known tensors
 * (prim::Constant values, or prim::Param values the graph holds weights for) and replaces it
 * by a prim::Constant with the result. The node is run with its reference kernel, the same one
 * the interpreter would call, so a folded graph computes what the unfolded one computes.
 *
 * What is left alone, and why: control nodes (If, Loop, FusionGroup: their blocks are visited
 * instead); nodes with any non-static output type; results larger than opts->fold_max_bytes
 * (a broadcast of one constant to a huge shape is cheaper to compute than to store); and nodes
 * whose kernel fails (an integer division by zero stays in the graph, so the error is reported
 * where the model runs rather than making the whole optimization fail). Nodes are visited in
 * order, so a chain of constant nodes folds in a single run. */
#include <stdlib.h>

#include "../runtime/checked.h"
#include "../runtime/interp.h"
#include "pass_internal.h"

static bool is_control(kl_op op) {
  return op == KL_OP_PARAM || op == KL_OP_CONSTANT || op == KL_OP_IF || op == KL_OP_LOOP ||
         op == KL_OP_FUSION_GROUP;
}

/* Whether every output of n has a static type whose byte size is within max_bytes. */
static bool outputs_fit(const kl_ir_node *n, int64_t max_bytes) {
  for (int i = 0; i < n->n_outputs; i++) {
    const kl_ir_type *t = &n->outputs[i]->type;
    int64_t numel, bytes;
    if (!kl_ir_type_is_static(t) || !kl_ir_type_numel(t, &numel))
      return false;
    if (!kl_mul_i64(numel, (int64_t)kl_dtype_size(t->dtype), &bytes) || bytes > max_bytes)
      return false;
  }
  return true;
}

/* Runs n's kernel on its constant inputs. On success out_results (n->n_outputs entries) holds
 * new tensors; on any failure it holds none and the result is false. */
static bool evaluate(const kl_ir_graph *g, const kl_ir_node *n, kl_tensor **out_results) {
  kl_interp_kernel_fn kernel = kl_interp_kernel(n->op);
  if (!kernel)
    return false;
  kl_tensor **inputs = malloc(((size_t)n->n_inputs + 1) * sizeof *inputs);
  if (!inputs)
    kl_fatal_oom();
  bool ok = true;
  for (int i = 0; ok && i < n->n_inputs; i++) {
    inputs[i] = (kl_tensor *)kl_pass_constant_tensor(g, n->inputs[i]);
    ok = inputs[i] != NULL;
  }
  for (int i = 0; i < n->n_outputs; i++)
    out_results[i] = NULL;
  for (int i = 0; ok && i < n->n_outputs; i++) {
    int64_t shape[KL_MAX_RANK];
    const kl_ir_type *t = &n->outputs[i]->type;
    kl_status s = NULL;
    if (!kl_ir_type_shape(t, shape))
      ok = false;
    else
      s = kl_tensor_create(t->dtype, t->rank, shape, &out_results[i]);
    if (s) {
      kl_status_destroy(s);
      ok = false;
    }
  }
  if (ok) {
    kl_status s = kernel(g, n, inputs, out_results);
    if (s) {
      /* Left for the runtime to report, with the input values it actually gets. */
      kl_status_destroy(s);
      ok = false;
    }
  }
  if (!ok) {
    for (int i = 0; i < n->n_outputs; i++) {
      kl_tensor_release(out_results[i]);
      out_results[i] = NULL;
    }
  }
  free(inputs);
  return ok;
}

/* Replaces n by one constant per output, each taking over its output's name and uses. */
static void replace_by_constants(kl_ir_graph *g, kl_ir_node *n, kl_tensor **results) {
  for (int i = 0; i < n->n_outputs; i++) {
    kl_ir_value *old_value = n->outputs[i];
    const char *name = old_value->name; /* arena string: outlives the rename */
    kl_ir_value_set_name(old_value, NULL);
    kl_ir_value *folded = kl_pass_insert_constant(g, results[i], name, n);
    kl_ir_value_replace_all_uses(old_value, folded);
    kl_tensor_release(results[i]); /* the graph holds it now */
  }
  kl_ir_node_remove(n);
}

static bool all_inputs_constant(const kl_ir_graph *g, const kl_ir_node *n) {
  if (n->n_inputs == 0)
    return false;
  for (int i = 0; i < n->n_inputs; i++)
    if (!kl_pass_constant_tensor(g, n->inputs[i]))
      return false;
  return true;
}

static void fold_block(kl_ir_graph *g, kl_ir_block *b, int64_t max_bytes, bool *changed) {
  kl_ir_node *next;
  for (kl_ir_node *n = b->first; n; n = next) {
    next = n->next;
    for (int i = 0; i < n->n_blocks; i++)
      fold_block(g, n->blocks[i], max_bytes, changed);
    if (is_control(n->op) || n->n_blocks > 0 || n->n_outputs == 0)
      continue;
    if (!all_inputs_constant(g, n) || !outputs_fit(n, max_bytes))
      continue;
    kl_tensor *small[4];
    kl_tensor **results =
        n->n_outputs <= 4 ? small : malloc((size_t)n->n_outputs * sizeof *results);
    if (!results)
      kl_fatal_oom();
    if (evaluate(g, n, results)) {
      replace_by_constants(g, n, results);
      *changed = true;
    }
    if (results != small)
      free(results);
  }
}

kl_status kl_pass_fold_constants(kl_ir_graph *g, const kl_pass_options *opts, bool *out_changed) {
  kl_pass_options defaults;
  if (!opts) {
    kl_pass_options_init(&defaults);
    opts = &defaults;
  }
  bool changed = false;
  fold_block(g, g->top, opts->fold_max_bytes, &changed);
  *out_changed = changed;
  return NULL;
}
