/* recognize: turns decomposed GELU, LayerNorm, softmax and attention back into single ops.
 *
 * ONNX exporters and hand-written code spell these out in primitive ops (erf, mean, exp, two
 * matmuls); one fused op is faster, is what the backends have kernels for, and reads better.
 * Each matcher starts at the node that ends (or, for LayerNorm, begins the end of) a pattern,
 * walks the use-def chains backwards checking ops, attributes and constant values (within a
 * relative 1e-4, or the dtype's precision for Half/BFloat16), and collects the pattern's nodes.
 * A match is taken only when every intermediate value is used inside the pattern alone and the
 * new op infers exactly the type of the value it replaces; that value keeps its name. Softmax
 * is recognized in a first walk so the attention walk that follows finds aten::softmax. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../ir/op_params.h"
#include "pass.h"

/* ---- collecting a match ------------------------------------------------------------------ */

#define MAX_PATTERN 24

/* The nodes of one candidate: those that go away, and the constants they read (removed too
 * when nothing else reads them). */
typedef struct match {
  kl_ir_node *nodes[MAX_PATTERN];
  int n_nodes;
  kl_ir_node *consts[MAX_PATTERN];
  int n_consts;
} match;

static bool add_unique(kl_ir_node **list, int *n, kl_ir_node *node) {
  for (int i = 0; i < *n; i++)
    if (list[i] == node)
      return true;
  if (*n == MAX_PATTERN)
    return false;
  list[(*n)++] = node;
  return true;
}

/* The node defining v when it is an `op` node with one output, in a block; NULL otherwise. */
static kl_ir_node *def(const kl_ir_value *v, kl_op op) {
  kl_ir_node *n = v->node;
  return n && n->op == op && n->owner && n->n_outputs == 1 ? n : NULL;
}

/* def() that also records the node as part of the match. */
static kl_ir_node *take(match *m, const kl_ir_value *v, kl_op op) {
  kl_ir_node *n = def(v, op);
  return n && add_unique(m->nodes, &m->n_nodes, n) ? n : NULL;
}

/* How close a constant must be: 1e-4 relative, looser where the dtype cannot hold that. */
static double tolerance(kl_dtype dtype) {
  if (dtype == KL_F16)
    return 1e-3;
  if (dtype == KL_BF16)
    return 8e-3;
  return 1e-4;
}

/* The value of v when it is a one-element floating-point prim::Constant. */
static bool const_value(const kl_ir_value *v, double *out) {
  kl_ir_node *n = def(v, KL_OP_CONSTANT);
  const kl_ir_attr *a = n ? kl_ir_node_attr(n, "value") : NULL;
  if (!a || a->kind != KL_ATTR_TENSOR || !a->u.t || a->u.t->numel != 1 ||
      !kl_dtype_is_float(a->u.t->dtype))
    return false;
  *out = kl_dtype_load_f64(a->u.t->dtype, a->u.t->data, 0);
  return isfinite(*out);
}

/* Whether v is a constant equal to want (within tolerance); records it. */
static bool is_const(match *m, const kl_ir_value *v, double want) {
  double got;
  if (!const_value(v, &got) || fabs(got - want) > tolerance(v->type.dtype) * fabs(want))
    return false;
  return add_unique(m->consts, &m->n_consts, v->node);
}

/* For a binary node n with a constant `want` as an operand (either side when commutative,
 * else the right side): the other operand, or NULL. */
static kl_ir_value *other_than_const(match *m, const kl_ir_node *n, double want, bool commutative) {
  if (is_const(m, n->inputs[1], want))
    return n->inputs[0];
  if (commutative && is_const(m, n->inputs[0], want))
    return n->inputs[1];
  return NULL;
}

/* Every use of every matched node's output, but the last node's (the one replaced), is by a
 * matched node: the pattern can go away as a whole. */
static bool uses_stay_inside(const match *m, const kl_ir_node *last) {
  for (int i = 0; i < m->n_nodes; i++) {
    if (m->nodes[i] == last)
      continue;
    const kl_ir_value *v = m->nodes[i]->outputs[0];
    for (int u = 0; u < v->n_uses; u++) {
      bool inside = false;
      for (int j = 0; j < m->n_nodes && v->uses[u].user; j++)
        inside = inside || v->uses[u].user == m->nodes[j];
      if (!inside)
        return false;
    }
  }
  return true;
}

/* Replaces the output of `last` by that of `fresh` (a new node, not yet in a block): checks
 * the uses, inserts fresh before last, infers its type and requires it to equal the replaced
 * value's, then removes the pattern and its now unused constants. Returns fresh, or NULL after
 * taking fresh out again when the match does not hold. */
static kl_ir_node *replace(match *m, kl_ir_node *last, kl_ir_node *fresh) {
  kl_ir_value *old = last->outputs[0];
  kl_ir_node_insert_before(fresh, last);
  bool ok = uses_stay_inside(m, last);
  if (ok) {
    kl_status s = kl_ir_node_infer(fresh);
    ok = !s && kl_ir_type_equal(&fresh->outputs[0]->type, &old->type);
    kl_status_destroy(s);
  }
  if (!ok) {
    kl_ir_node_remove(fresh);
    return NULL;
  }
  const char *name = old->name;
  kl_ir_value_replace_all_uses(old, fresh->outputs[0]);
  /* Later nodes of the pattern use earlier ones, so removing the unused ones until none is
   * left takes them all. */
  for (bool progress = true; progress;) {
    progress = false;
    for (int i = 0; i < m->n_nodes; i++)
      if (m->nodes[i] && m->nodes[i]->outputs[0]->n_uses == 0) {
        kl_ir_node_remove(m->nodes[i]);
        m->nodes[i] = NULL;
        progress = true;
      }
  }
  for (int i = 0; i < m->n_consts; i++)
    if (m->consts[i]->outputs[0]->n_uses == 0)
      kl_ir_node_remove(m->consts[i]);
  kl_ir_value_set_name(fresh->outputs[0], name);
  return fresh;
}

/* The shortest decimal that rounds to the same float as v, for constants of float type: an
 * eps written 1e-5 in Float stays 1e-05 in the attribute, not 9.99999974737875e-06. */
static double as_written(double v, kl_dtype dtype) {
  if (dtype != KL_F32)
    return v;
  char buf[32];
  for (int digits = 1; digits <= 9; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    double back = strtod(buf, NULL);
    if ((float)back == (float)v)
      return back;
  }
  return v;
}

/* ---- softmax ------------------------------------------------------------------------------ */

/* The one dim a keepdim reduction over a value of rank reduces, or -1. */
static int single_reduced_dim(const kl_ir_node *n, int rank) {
  kl_rt_reduce_op op;
  bool mask[KL_MAX_RANK], keepdim;
  kl_status s = kl_ir_reduce_params(n, rank, &op, mask, &keepdim);
  if (s) {
    kl_status_destroy(s);
    return -1;
  }
  int dim = -1, count = 0;
  for (int d = 0; d < rank; d++)
    if (mask[d])
      dim = d, count++;
  return keepdim && count == 1 ? dim : -1;
}

/* div(e, sum(e, [d], keepdim)) with e = exp(x - amax(x, [d], keepdim)) or e = exp(x)
 *   -> aten::softmax[dim=d](x) */
static kl_ir_node *match_softmax(kl_ir_graph *g, kl_ir_node *div) {
  match m = {0};
  if (div->op != KL_OP_DIV || !add_unique(m.nodes, &m.n_nodes, div))
    return NULL;
  kl_ir_node *exp = take(&m, div->inputs[0], KL_OP_EXP);
  kl_ir_node *sum = take(&m, div->inputs[1], KL_OP_SUM);
  if (!exp || !sum || sum->inputs[0] != exp->outputs[0])
    return NULL;
  int rank = exp->outputs[0]->type.rank;
  int dim = single_reduced_dim(sum, rank);
  if (dim < 0)
    return NULL;
  kl_ir_value *x = exp->inputs[0];
  /* The max subtraction, when it is there, is part of the pattern; a sub that is not one
   * is simply x. */
  kl_ir_node *sub = def(x, KL_OP_SUB);
  kl_ir_node *amax = sub ? def(sub->inputs[1], KL_OP_AMAX) : NULL;
  if (amax && amax->inputs[0] == sub->inputs[0] && single_reduced_dim(amax, rank) == dim) {
    add_unique(m.nodes, &m.n_nodes, sub);
    add_unique(m.nodes, &m.n_nodes, amax);
    x = sub->inputs[0];
  }
  kl_ir_node *softmax = kl_ir_node_create(g, KL_OP_SOFTMAX, &x, 1, 1);
  const kl_ir_attr *written = kl_ir_node_attr(sum, "dim");
  kl_ir_node_set_int(softmax, "dim", written && written->n == 1 ? written->u.is[0] : dim);
  return replace(&m, div, softmax);
}

/* ---- GELU --------------------------------------------------------------------------------- */

/* x, x*x*x in any grouping, or pow(x, 3): the x, or NULL. */
static kl_ir_value *match_cube(match *m, const kl_ir_value *v) {
  kl_ir_node *pow = def(v, KL_OP_POW);
  if (pow) {
    add_unique(m->nodes, &m->n_nodes, pow);
    return is_const(m, pow->inputs[1], 3.0) ? pow->inputs[0] : NULL;
  }
  kl_ir_node *outer = take(m, v, KL_OP_MUL);
  if (!outer)
    return NULL;
  for (int side = 0; side < 2; side++) {
    kl_ir_value *x = outer->inputs[side];
    kl_ir_node *inner = def(outer->inputs[1 - side], KL_OP_MUL);
    if (inner && inner->inputs[0] == x && inner->inputs[1] == x) {
      add_unique(m->nodes, &m->n_nodes, inner);
      return x;
    }
  }
  return NULL;
}

/* The argument of erf in the exact form: x / sqrt(2) or x * (1 / sqrt(2)); the x, or NULL. */
static kl_ir_value *match_erf_arg(match *m, const kl_ir_value *v) {
  kl_ir_node *div = take(m, v, KL_OP_DIV);
  if (div)
    return other_than_const(m, div, sqrt(2.0), false);
  kl_ir_node *mul = take(m, v, KL_OP_MUL);
  return mul ? other_than_const(m, mul, sqrt(0.5), true) : NULL;
}

/* The argument of tanh in the approximation: sqrt(2/pi) * (x + 0.044715 * x^3); the x. */
static kl_ir_value *match_tanh_arg(match *m, const kl_ir_value *v) {
  kl_ir_node *scale = take(m, v, KL_OP_MUL);
  kl_ir_value *inner = scale ? other_than_const(m, scale, sqrt(2.0 / M_PI), true) : NULL;
  kl_ir_node *add = inner ? take(m, inner, KL_OP_ADD) : NULL;
  if (!add)
    return NULL;
  for (int side = 0; side < 2; side++) {
    kl_ir_value *x = add->inputs[side];
    kl_ir_node *cubic = def(add->inputs[1 - side], KL_OP_MUL);
    match attempt = *m;
    if (!cubic || !add_unique(attempt.nodes, &attempt.n_nodes, cubic))
      continue;
    kl_ir_value *cube = other_than_const(&attempt, cubic, 0.044715, true);
    if (cube && match_cube(&attempt, cube) == x) {
      *m = attempt;
      return x;
    }
  }
  return NULL;
}

/* mul(mul(a, b), c) in any grouping and order, with x, 0.5 and 1 + f(...) as a, b, c, where f
 * is erf (exact GELU) or tanh (the approximation) of an argument built from the same x. */
static kl_ir_node *match_gelu(kl_ir_graph *g, kl_ir_node *last) {
  if (last->op != KL_OP_MUL)
    return NULL;
  for (int split = 0; split < 2; split++) {
    kl_ir_node *inner = def(last->inputs[split], KL_OP_MUL);
    if (!inner)
      continue;
    kl_ir_value *leaves[3] = {inner->inputs[0], inner->inputs[1], last->inputs[1 - split]};
    for (int h = 0; h < 3; h++) {     /* the leaf 1 + f(...) */
      for (int c = 0; c < 3; c++) {   /* the leaf 0.5 */
        if (c == h)
          continue;
        match m = {0};
        add_unique(m.nodes, &m.n_nodes, last);
        add_unique(m.nodes, &m.n_nodes, inner);
        kl_ir_value *x = leaves[3 - h - c];
        kl_ir_node *one_plus = take(&m, leaves[h], KL_OP_ADD);
        kl_ir_value *f = one_plus ? other_than_const(&m, one_plus, 1.0, true) : NULL;
        if (!f || !is_const(&m, leaves[c], 0.5))
          continue;
        kl_ir_node *erf = take(&m, f, KL_OP_ERF), *tanh = erf ? NULL : take(&m, f, KL_OP_TANH);
        kl_ir_value *arg = NULL;
        if (erf)
          arg = match_erf_arg(&m, erf->inputs[0]);
        else if (tanh)
          arg = match_tanh_arg(&m, tanh->inputs[0]);
        if (!arg || arg != x)
          continue;
        kl_ir_node *gelu = kl_ir_node_create(g, KL_OP_GELU, &x, 1, 1);
        if (tanh)
          kl_ir_node_set_string(gelu, "approximate", "tanh");
        return replace(&m, last, gelu);
      }
    }
  }
  return NULL;
}

/* ---- LayerNorm ---------------------------------------------------------------------------- */

/* For a keepdim mean over the trailing dims of x (rank dims, all of them static), how many
 * trailing dims it reduces; 0 when it is no such mean. */
static int trailing_mean_dims(const kl_ir_node *mean, const kl_ir_type *x) {
  kl_rt_reduce_op op;
  bool mask[KL_MAX_RANK], keepdim;
  kl_status s = kl_ir_reduce_params(mean, x->rank, &op, mask, &keepdim);
  if (s) {
    kl_status_destroy(s);
    return 0;
  }
  int k = 0;
  while (k < x->rank && mask[x->rank - 1 - k])
    k++;
  for (int d = 0; d < x->rank - k; d++)
    if (mask[d])
      return 0;
  for (int d = x->rank - k; d < x->rank; d++)
    if (!kl_ir_dim_is_static(x->dims[d]))
      return 0;
  return keepdim ? k : 0;
}

/* Whether v is x - mean(x) for this x and this mean value. */
static bool is_centered(match *m, const kl_ir_value *v, const kl_ir_value *x,
                        const kl_ir_value *mean) {
  kl_ir_node *sub = take(m, v, KL_OP_SUB);
  return sub && sub->inputs[0] == x && sub->inputs[1] == mean;
}

/* Whether p has exactly the normalized shape (a weight or bias the op can take). */
static bool is_affine_param(const kl_ir_value *p, const kl_ir_type *x, int k) {
  if (p->type.dtype != x->dtype || p->type.rank != k)
    return false;
  for (int i = 0; i < k; i++)
    if (!kl_ir_dim_equal(p->type.dims[i], x->dims[x->rank - k + i]))
      return false;
  return true;
}

/* The one node using v, when v has exactly one use and it is by a node of op in v's own block
 * (so the walk of that block meets it next); NULL otherwise. */
static kl_ir_node *single_user(const kl_ir_value *v, kl_op op) {
  if (v->n_uses != 1 || !v->uses[0].user || v->uses[0].user->op != op ||
      v->uses[0].user->owner != v->node->owner)
    return NULL;
  return v->uses[0].user;
}

/* d = x - mean(x); var = mean(d^2 or d*d); d / sqrt(var + eps) or d * rsqrt(var + eps), the
 * means over the trailing static dims with keepdim; then optionally * gamma, and + beta after
 * that, both of the normalized shape -> aten::layer_norm[normalized_shape, eps](x, gamma?,
 * beta?). Starts at the normalizing div or mul and extends forward to the affine ops. */
static kl_ir_node *match_layer_norm(kl_ir_graph *g, kl_ir_node *norm) {
  match m = {0};
  if (norm->op != KL_OP_DIV && norm->op != KL_OP_MUL)
    return NULL;
  add_unique(m.nodes, &m.n_nodes, norm);
  /* the denominator: sqrt(var + eps) divided by, or rsqrt(var + eps) multiplied with */
  kl_ir_value *centered = NULL, *var_eps = NULL;
  if (norm->op == KL_OP_DIV) {
    kl_ir_node *sqrt = take(&m, norm->inputs[1], KL_OP_SQRT);
    centered = norm->inputs[0];
    var_eps = sqrt ? sqrt->inputs[0] : NULL;
  } else {
    for (int side = 0; side < 2 && !var_eps; side++) {
      kl_ir_node *rsqrt = def(norm->inputs[side], KL_OP_RSQRT);
      if (rsqrt && add_unique(m.nodes, &m.n_nodes, rsqrt)) {
        centered = norm->inputs[1 - side];
        var_eps = rsqrt->inputs[0];
      }
    }
  }
  kl_ir_node *add_eps = var_eps ? take(&m, var_eps, KL_OP_ADD) : NULL;
  if (!add_eps)
    return NULL;
  kl_ir_value *var = NULL;
  double eps = 0.0;
  for (int side = 0; side < 2 && !var; side++)
    if (const_value(add_eps->inputs[1 - side], &eps) && eps >= 0.0 &&
        add_unique(m.consts, &m.n_consts, add_eps->inputs[1 - side]->node))
      var = add_eps->inputs[side];
  kl_ir_node *var_mean = var ? take(&m, var, KL_OP_MEAN) : NULL;
  kl_ir_node *sub = def(centered, KL_OP_SUB);
  if (!var_mean || !sub)
    return NULL;
  kl_ir_value *x = sub->inputs[0], *mean = sub->inputs[1];
  kl_ir_node *x_mean = take(&m, mean, KL_OP_MEAN);
  int k = x_mean && x_mean->inputs[0] == x ? trailing_mean_dims(x_mean, &x->type) : 0;
  if (k == 0 || trailing_mean_dims(var_mean, &x->type) != k || !is_centered(&m, centered, x, mean))
    return NULL;
  /* the variance: mean of pow(d, 2) or d * d, where d may be the same sub or a copy of it */
  kl_ir_value *squared = var_mean->inputs[0];
  kl_ir_node *pow = take(&m, squared, KL_OP_POW), *mul = pow ? NULL : take(&m, squared, KL_OP_MUL);
  bool squares =
      (pow && is_const(&m, pow->inputs[1], 2.0) && is_centered(&m, pow->inputs[0], x, mean)) ||
      (mul && mul->inputs[0] == mul->inputs[1] && is_centered(&m, mul->inputs[0], x, mean));
  if (!squares)
    return NULL;
  /* the affine part, taken only when the normalized value feeds nothing else */
  kl_ir_node *last = norm;
  kl_ir_value *inputs[3] = {x, NULL, NULL};
  int n_inputs = 1;
  kl_ir_node *scale = single_user(norm->outputs[0], KL_OP_MUL);
  if (scale) {
    kl_ir_value *gamma = scale->inputs[scale->inputs[0] == norm->outputs[0] ? 1 : 0];
    if (gamma != norm->outputs[0] && is_affine_param(gamma, &x->type, k)) {
      add_unique(m.nodes, &m.n_nodes, scale);
      inputs[n_inputs++] = gamma;
      last = scale;
      kl_ir_node *shift = single_user(scale->outputs[0], KL_OP_ADD);
      kl_ir_value *beta = shift ? shift->inputs[shift->inputs[0] == scale->outputs[0] ? 1 : 0]
                                : NULL;
      if (beta && beta != scale->outputs[0] && is_affine_param(beta, &x->type, k)) {
        add_unique(m.nodes, &m.n_nodes, shift);
        inputs[n_inputs++] = beta;
        last = shift;
      }
    }
  }
  int64_t shape[KL_MAX_RANK];
  for (int i = 0; i < k; i++)
    shape[i] = x->type.dims[x->type.rank - k + i].size;
  kl_ir_node *ln = kl_ir_node_create(g, KL_OP_LAYER_NORM, inputs, n_inputs, 1);
  kl_ir_node_set_ints(ln, "normalized_shape", shape, k);
  kl_ir_node_set_float(ln, "eps", as_written(eps, add_eps->outputs[0]->type.dtype));
  return replace(&m, last, ln);
}

/* ---- attention ---------------------------------------------------------------------------- */

/* Whether t swaps the last two dims of its input and nothing else. */
static bool swaps_last_two(const kl_ir_node *t) {
  int rank = t->inputs[0]->type.rank, perm[KL_MAX_RANK];
  if (rank < 2)
    return false;
  kl_status s = kl_ir_permute_params(t, rank, perm);
  if (s) {
    kl_status_destroy(s);
    return false;
  }
  for (int d = 0; d < rank - 2; d++)
    if (perm[d] != d)
      return false;
  return perm[rank - 2] == rank - 1 && perm[rank - 1] == rank - 2;
}

/* The scaled product q @ k^T * s, q @ k^T / (1/s) or q @ k^T (s = 1) at v: the matmul node,
 * with the scale in *out_scale; NULL when v is none of these. */
static kl_ir_node *match_scaled_product(match *m, const kl_ir_value *v, double *out_scale) {
  *out_scale = 1.0;
  kl_ir_node *product = take(m, v, KL_OP_MATMUL);
  if (product)
    return product;
  kl_ir_node *scaled = take(m, v, KL_OP_MUL);
  if (!scaled)
    scaled = take(m, v, KL_OP_DIV);
  /* a mul has its constant on either side, a div on the right */
  for (int side = scaled && scaled->op == KL_OP_DIV; scaled && side < 2; side++) {
    double c;
    kl_ir_value *k = scaled->inputs[side];
    if (!def(scaled->inputs[1 - side], KL_OP_MATMUL) || !const_value(k, &c) || c == 0.0 ||
        !add_unique(m->consts, &m->n_consts, k->node))
      continue;
    c = as_written(c, k->type.dtype);
    *out_scale = scaled->op == KL_OP_DIV ? 1.0 / c : c;
    return take(m, scaled->inputs[1 - side], KL_OP_MATMUL);
  }
  return NULL;
}

/* matmul(softmax[dim=-1](matmul(q, k^T) * s [+ mask]), v), the scale also as / (1/s) or left
 * out (s = 1), k^T a transpose or permute of k's last two dims
 *   -> aten::scaled_dot_product_attention[scale=s](q, k, v, mask?) */
static kl_ir_node *match_attention(kl_ir_graph *g, kl_ir_node *last) {
  match m = {0};
  if (last->op != KL_OP_MATMUL || !add_unique(m.nodes, &m.n_nodes, last))
    return NULL;
  kl_ir_value *v = last->inputs[1];
  kl_ir_node *softmax = take(&m, last->inputs[0], KL_OP_SOFTMAX);
  if (!softmax)
    return NULL;
  int rank = softmax->inputs[0]->type.rank, dim;
  kl_status s = kl_ir_normalize_dim(softmax, kl_ir_node_int(softmax, "dim", 0), rank, &dim);
  if (s || rank < 2 || dim != rank - 1 || v->type.rank < 2) {
    kl_status_destroy(s);
    return NULL;
  }
  /* the scores, or scores + mask with the mask on either side */
  double scale = 1.0;
  kl_ir_value *scores = softmax->inputs[0], *mask = NULL;
  kl_ir_node *qk = match_scaled_product(&m, scores, &scale);
  kl_ir_node *plus = qk ? NULL : def(scores, KL_OP_ADD);
  for (int side = 0; plus && side < 2 && !qk; side++) {
    match attempt = m;
    add_unique(attempt.nodes, &attempt.n_nodes, plus);
    qk = match_scaled_product(&attempt, plus->inputs[side], &scale);
    if (qk && plus->inputs[1 - side] != plus->inputs[side]) {
      m = attempt;
      mask = plus->inputs[1 - side];
    } else {
      qk = NULL;
    }
  }
  if (!qk)
    return NULL;
  kl_ir_value *q = qk->inputs[0];
  kl_ir_node *kt = take(&m, qk->inputs[1], KL_OP_TRANSPOSE);
  if (!kt)
    kt = take(&m, qk->inputs[1], KL_OP_PERMUTE);
  if (!kt || q->type.rank < 2)
    return NULL;
  kl_ir_value *k = kt->inputs[0];
  kl_ir_node *unpermute = NULL;
  if (!swaps_last_two(kt)) {
    /* Exporters fold the head split and k^T into one permute ([0, 2, 3, 1] on (B, S, H, D));
     * k is then the same permute with its last two entries swapped. */
    int rank = k->type.rank, perm[KL_MAX_RANK];
    kl_status ps = rank >= 2 ? kl_ir_permute_params(kt, rank, perm) : NULL;
    if (rank < 2 || ps) {
      kl_status_destroy(ps);
      return NULL;
    }
    int64_t dims[KL_MAX_RANK];
    for (int d = 0; d < rank; d++)
      dims[d] = perm[d < rank - 2 ? d : 2 * rank - 3 - d];
    unpermute = kl_ir_node_create(g, KL_OP_PERMUTE, &k, 1, 1);
    kl_ir_node_set_ints(unpermute, "dims", dims, rank);
    kl_ir_node_insert_before(unpermute, last);
    kl_status is = kl_ir_node_infer(unpermute);
    if (is) {
      kl_status_destroy(is);
      kl_ir_node_remove(unpermute);
      return NULL;
    }
    k = unpermute->outputs[0];
  }
  kl_ir_value *inputs[4] = {q, k, v, mask};
  kl_ir_node *attention = kl_ir_node_create(g, KL_OP_ATTENTION, inputs, mask ? 4 : 3, 1);
  kl_ir_node_set_float(attention, "scale", scale);
  kl_ir_node *fresh = replace(&m, last, attention);
  if (!fresh && unpermute)
    kl_ir_node_remove(unpermute);
  return fresh;
}

/* ---- the walk ----------------------------------------------------------------------------- */

typedef kl_ir_node *(*matcher_fn)(kl_ir_graph *g, kl_ir_node *n);

/* Tries the matchers at every node of b and its sub-blocks, in order. A match removes nodes
 * before the new one and, for LayerNorm, the affine ops just after it, so the walk goes on
 * from the node that follows the new op. */
static void walk(kl_ir_graph *g, kl_ir_block *b, const matcher_fn *matchers, int n_matchers,
                 bool *changed) {
  kl_ir_node *next;
  for (kl_ir_node *n = b->first; n; n = next) {
    next = n->next;
    for (int i = 0; i < n->n_blocks; i++)
      walk(g, n->blocks[i], matchers, n_matchers, changed);
    for (int i = 0; i < n_matchers; i++) {
      kl_ir_node *fresh = matchers[i](g, n);
      if (fresh) {
        *changed = true;
        next = fresh->next;
        break;
      }
    }
  }
}

kl_status kl_pass_recognize(kl_ir_graph *g, const kl_pass_options *opts, bool *out_changed) {
  (void)opts;
  static const matcher_fn elementwise[] = {match_softmax, match_gelu, match_layer_norm};
  static const matcher_fn products[] = {match_attention};
  bool changed = false;
  walk(g, g->top, elementwise, 3, &changed);
  walk(g, g->top, products, 1, &changed);
  *out_changed = changed;
  return NULL;
}
