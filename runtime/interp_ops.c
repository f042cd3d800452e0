/* The interpreter's kernel adapters, now one generic adapter: describe the node's operands as
 * kl_step_operands, encode the node's parameter block (runtime/interp_encode.c: attributes
 * through ir/op_params.h, as the compilers do at compile time) and run its step
 * (runtime/steps.h) on the calling thread. The interpreter and compiled artifacts thus run the
 * same encoder and the same step for every op. Ops of kernel "control" (Param, Constant, If,
 * Loop, FusionGroup) keep an adapter that refuses: the interpreter runs those itself. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "interp_encode.h"

/* Kernels whose messages do not say which op they serve: their errors get the op's name. */
static bool names_op(const char *kernel) {
  static const char *const unnamed[] = {"gather", "scatter", "resize", "grid_sample"};
  for (size_t i = 0; i < sizeof unnamed / sizeof unnamed[0]; i++)
    if (strcmp(kernel, unnamed[i]) == 0)
      return false;
  return true;
}

static void describe(kl_tensor *const *ts, int n, kl_step_operand *ops) {
  for (int i = 0; i < n; i++) {
    if (!ts[i]) {
      ops[i] = (kl_step_operand){.dtype = KL_F32, .rank = -1, .shape = NULL};
      continue;
    }
    ops[i] = (kl_step_operand){.dtype = ts[i]->dtype, .rank = ts[i]->rank, .shape = ts[i]->shape};
  }
}

static kl_status run_step(const kl_ir_graph *g, const kl_ir_node *node, kl_tensor *const *in,
                          kl_tensor *const *out) {
  (void)g;
  enum { SMALL = 8 };
  kl_step_operand small_in[SMALL], small_out[SMALL];
  kl_step_operand *ops_in = node->n_inputs <= SMALL
                                ? small_in
                                : malloc((size_t)node->n_inputs * sizeof *ops_in);
  kl_step_operand *ops_out = node->n_outputs <= SMALL
                                 ? small_out
                                 : malloc((size_t)node->n_outputs * sizeof *ops_out);
  if (!ops_in || !ops_out)
    kl_fatal_oom();
  describe(in, node->n_inputs, ops_in);
  describe(out, node->n_outputs, ops_out);
  _Alignas(max_align_t) unsigned char params[KL_STEP_PARAMS_MAX];
  const kl_step_info *step = NULL;
  kl_status s = kl_step_encode(node, ops_in, node->n_inputs, ops_out, node->n_outputs, &step,
                               params);
  if (!s) {
    kl_step_env env = {.pool = NULL};
    s = step->fn(&env, params, in, node->n_inputs, out, node->n_outputs);
    if (s && !names_op(step->kernel))
      s = kl_status_annotate(s, "%s", kl_ir_node_op_name(node));
  }
  if (ops_in != small_in)
    free(ops_in);
  if (ops_out != small_out)
    free(ops_out);
  return s;
}

static kl_status run_control(const kl_ir_graph *g, const kl_ir_node *node, kl_tensor *const *in,
                             kl_tensor *const *out) {
  (void)g, (void)in, (void)out;
  return kl_status_create(KL_ERR_INTERNAL,
                          "%s has no kernel: the interpreter runs its blocks itself",
                          kl_ir_node_op_name(node));
}

static const char *const kernel_of[KL_OP_COUNT] = {
#define KL_OP(id, name, imin, imax, omin, omax, blocks, cat, attrs, shape, kernel)                 \
  [KL_OP_##id] = #kernel,
#include "../ir/ops.def"
#undef KL_OP
};

kl_interp_kernel_fn kl_interp_kernel(kl_op op) {
  if ((unsigned)op >= KL_OP_COUNT)
    return NULL;
  return strcmp(kernel_of[op], "control") == 0 ? run_control : run_step;
}
