/* Epilogues fused into a convolution's store: in a fusion group, the elementwise nodes right
 * after an f32 conv2d that add a residual and apply an activation (relu, relu6, hardtanh,
 * clamp, silu, or sigmoid times its own input) become part of the conv2d step (its parameter
 * block's act, lo, hi and residual; runtime/steps.h), which applies them to each block of
 * output while it is still in cache, instead of a region making another pass over the tensor.
 *
 * A node is taken only when the value it consumes has no other use (so no one else sees the
 * value the conv step no longer writes), the residual has the conv output's exact type and
 * comes from before the conv, and every value of the chain has the output's type: the chain's
 * last value is what the step writes. */
#include <math.h>

#include "../../ir/op_params.h"
#include "llvm_internal.h"

/* v's only use is by node user (not a block return, not a second use). */
static bool only_use(const kl_ir_value *v, const kl_ir_node *user) {
  return v->n_uses == 1 && v->uses[0].user == user;
}

/* v is the only value of the single-output node n and has type t. */
static bool makes(const kl_ir_node *n, const kl_ir_type *t) {
  return n->n_outputs == 1 && kl_ir_type_equal(&n->outputs[0]->type, t);
}

/* An activation node on cur (nodes[*j], maybe nodes[*j + 1] too): fills e and advances *j. */
static bool match_activation(const kl_ir_node *const *nodes, int n, int *j,
                             const kl_ir_value *cur, kl_llvm_conv_epilogue *e) {
  if (*j >= n)
    return false;
  const kl_ir_node *a = nodes[*j];
  if (a->n_inputs != 1 || a->inputs[0] != cur || !makes(a, &cur->type))
    return false;
  switch (a->op) {
  case KL_OP_RELU:
  case KL_OP_RELU6:
  case KL_OP_HARDTANH:
  case KL_OP_CLAMP: {
    kl_rt_unary_op op;
    double lo, hi;
    kl_status s = kl_ir_unary_params(a, &op, &lo, &hi);
    if (s) {
      kl_status_destroy(s);
      return false;
    }
    if (!only_use(cur, a))
      return false;
    e->act = KL_SGEMM_ACT_CLAMP;
    e->lo = op == KL_UNARY_RELU ? 0.0f : (float)lo;
    e->hi = op == KL_UNARY_RELU ? INFINITY : (float)hi;
    if (op == KL_UNARY_CLAMP && ((double)e->lo != lo || (double)e->hi != hi))
      return false; /* a bound float cannot hold exactly would compare differently */
    e->final = a->outputs[0];
    *j += 1;
    return true;
  }
  case KL_OP_SILU:
    if (!only_use(cur, a))
      return false;
    e->act = KL_SGEMM_ACT_SILU;
    e->final = a->outputs[0];
    *j += 1;
    return true;
  case KL_OP_SIGMOID: { /* x * sigmoid(x), in either order */
    if (*j + 1 >= n || cur->n_uses != 2)
      return false;
    const kl_ir_node *m = nodes[*j + 1];
    const kl_ir_value *sg = a->outputs[0];
    bool pair = m->op == KL_OP_MUL && m->n_inputs == 2 &&
                ((m->inputs[0] == cur && m->inputs[1] == sg) ||
                 (m->inputs[0] == sg && m->inputs[1] == cur));
    if (!pair || !only_use(sg, m) || !makes(m, &cur->type))
      return false;
    for (int u = 0; u < cur->n_uses; u++)
      if (cur->uses[u].user != a && cur->uses[u].user != m)
        return false;
    e->act = KL_SGEMM_ACT_SILU;
    e->final = m->outputs[0];
    *j += 2;
    return true;
  }
  default: return false;
  }
}

bool kl_llvm_match_conv_epilogue(const kl_ir_node *const *nodes, int n, int i,
                                 kl_llvm_conv_epilogue *out) {
  const kl_ir_node *conv = nodes[i];
  kl_llvm_conv_epilogue e = {.act = KL_SGEMM_ACT_NONE};
  if (conv->op != KL_OP_CONV2D || conv->n_outputs != 1 || conv->n_blocks)
    return false;
  const kl_ir_value *cur = conv->outputs[0];
  if (cur->type.dtype != KL_F32 || cur->type.rank != 4)
    return false;
  int j = i + 1;
  if (j < n && nodes[j]->op == KL_OP_ADD && nodes[j]->n_inputs == 2 &&
      makes(nodes[j], &cur->type) && only_use(cur, nodes[j])) {
    const kl_ir_node *add = nodes[j];
    const kl_ir_value *r = add->inputs[0] == cur ? add->inputs[1] : add->inputs[0];
    bool before = !r->node || r->node->owner != conv->owner; /* a parameter of the body */
    for (int k = 0; k < i && !before; k++)
      before = nodes[k] == r->node;
    if (r != cur && (add->inputs[0] == cur || add->inputs[1] == cur) && before &&
        kl_ir_type_equal(&r->type, &cur->type)) {
      e.residual = r;
      e.final = cur = add->outputs[0];
      j++;
    }
  }
  match_activation(nodes, n, &j, cur, &e);
  if (!e.final)
    return false;
  e.n_nodes = j - i - 1;
  *out = e;
  return true;
}
