/* Shape functions for structure (prim::Param, Constant, If, Loop, FusionGroup) and data
 * movement (reshape, flatten, squeeze, unsqueeze, transpose, permute, expand, cat, split,
 * slice, constant_pad_nd, embedding, index_select, onnx::Gather).
 *
 * Data movement keeps a symbolic dim only where the output dim is exactly that input dim;
 * arithmetic on a symbol (cat of N and 3, reshape's -1 over several symbols) gives unknown.
 * Control flow reads the types of its blocks' parameters and returns, which must already be
 * inferred; branches or iterations that disagree on a dim make it unknown. */
#include <stdio.h>
#include <string.h>

#include "../runtime/checked.h"
#include "op_params.h"
#include "shape_internal.h"

static kl_ir_dim dim_unknown(void) {
  kl_ir_dim d = {0, KL_DIM_UNKNOWN};
  return d;
}

/* Equal dims keep, else unknown: the join of two possible types of one value. */
static kl_ir_dim dim_join(kl_ir_dim a, kl_ir_dim b) {
  return kl_ir_dim_equal(a, b) ? a : dim_unknown();
}

/* "[2, -1, 5]" for messages. */
static kl_shape_str fmt_ints(const int64_t *v, int n) {
  kl_shape_str r;
  size_t len = (size_t)snprintf(r.s, sizeof r.s, "[");
  for (int i = 0; i < n && len < sizeof r.s; i++)
    len += (size_t)snprintf(r.s + len, sizeof r.s - len, "%s%lld", i ? ", " : "",
                            (long long)v[i]);
  if (len < sizeof r.s)
    snprintf(r.s + len, sizeof r.s - len, "]");
  return r;
}

static kl_status require_ints(const kl_ir_node *node, const char *name,
                              const kl_ir_attr **out) {
  const kl_ir_attr *a = kl_ir_node_attr(node, name);
  if (!a || a->kind != KL_ATTR_INTS)
    return kl_shape_error(node, "attribute %s (ints) is missing", name);
  *out = a;
  return NULL;
}

static kl_status require_int(const kl_ir_node *node, const char *name, int64_t *out) {
  const kl_ir_attr *a = kl_ir_node_attr(node, name);
  if (!a || a->kind != KL_ATTR_INT)
    return kl_shape_error(node, "attribute %s (int) is missing", name);
  *out = a->u.i;
  return NULL;
}

/* An optional int attribute; present with another kind is an error. */
static kl_status optional_int(const kl_ir_node *node, const char *name, int64_t dflt,
                              int64_t *out) {
  const kl_ir_attr *a = kl_ir_node_attr(node, name);
  if (a && a->kind != KL_ATTR_INT)
    return kl_shape_error(node, "attribute %s must be int, not %s", name,
                          kl_ir_attr_kind_name(a->kind));
  *out = a ? a->u.i : dflt;
  return NULL;
}

/* True when every dim is static 1 (rank 0 included): a one-element tensor. */
static bool is_single_element(const kl_ir_type *t) {
  for (int i = 0; i < t->rank; i++)
    if (!kl_ir_dim_is_static(t->dims[i]) || t->dims[i].size != 1)
      return false;
  return true;
}

static kl_status check_block_type(const kl_ir_node *node, const kl_ir_type *t) {
  if (t->rank < 0 || t->rank > KL_MAX_RANK || !kl_dtype_is_valid((int)t->dtype))
    return kl_shape_error(node, "a sub-block value has an invalid type");
  return NULL;
}

/* ---- structure -------------------------------------------------------------------------- */

/* prim::Param: the type is declared, never inferred. */
KL_SHAPE_FN(declared) {
  (void)in;
  (void)n_in;
  if (n_out != node->n_outputs)
    return kl_shape_error(node, "expected %d outputs, got %d", node->n_outputs, n_out);
  for (int i = 0; i < n_out; i++)
    out[i] = node->outputs[i]->type;
  return NULL;
}

/* prim::Constant: the type of the value tensor. */
KL_SHAPE_FN(constant) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 0, 0, n_out, 1, 1));
  const kl_ir_attr *value = kl_ir_node_attr(node, "value");
  if (!value || value->kind != KL_ATTR_TENSOR || !value->u.t)
    return kl_shape_error(node, "attribute value (tensor) is missing");
  out[0] = kl_ir_type_of_tensor(value->u.t);
  return NULL;
}

/* prim::If(cond : Bool one element) with then and else blocks; both return one value per
 * output, with equal dtypes and ranks; dims the branches disagree on are unknown. */
KL_SHAPE_FN(if) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 0, -1));
  if (in[0].dtype != KL_BOOL || !is_single_element(&in[0]))
    return kl_shape_error(node, "condition %s must be a one-element Bool",
                          kl_shape_fmt(node, &in[0]).s);
  if (node->n_blocks != 2)
    return kl_shape_error(node, "expected 2 blocks (then, else), got %d", node->n_blocks);
  static const char *const names[] = {"then", "else"};
  for (int b = 0; b < 2; b++)
    if (node->blocks[b]->n_returns != n_out)
      return kl_shape_error(node, "%s block returns %d values, but the node has %d outputs",
                            names[b], node->blocks[b]->n_returns, n_out);
  for (int i = 0; i < n_out; i++) {
    const kl_ir_type *t = &node->blocks[0]->returns[i]->type;
    const kl_ir_type *e = &node->blocks[1]->returns[i]->type;
    KL_RETURN_IF_ERROR(check_block_type(node, t));
    KL_RETURN_IF_ERROR(check_block_type(node, e));
    if (t->dtype != e->dtype || t->rank != e->rank)
      return kl_shape_error(node, "output %d: then block returns %s but else block returns %s",
                            i, kl_shape_fmt(node, t).s, kl_shape_fmt(node, e).s);
    out[i] = *t;
    for (int d = 0; d < t->rank; d++)
      out[i].dims[d] = dim_join(t->dims[d], e->dims[d]);
  }
  return NULL;
}

/* prim::Loop(max_trip_count, cond, carried...), TorchScript style: the body takes (iter,
 * carried...) and returns (cond, carried...); the outputs are the final carried values. A
 * carried value keeps its dtype and rank; dims that change across iterations are unknown. */
KL_SHAPE_FN(loop) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 2, -1, n_out, 0, -1));
  int n_carried = n_in - 2;
  if (n_out != n_carried)
    return kl_shape_error(node, "%d loop-carried inputs but %d outputs", n_carried, n_out);
  if ((in[0].dtype != KL_I64 && in[0].dtype != KL_I32) || !is_single_element(&in[0]))
    return kl_shape_error(node, "max_trip_count %s must be a one-element Long or Int",
                          kl_shape_fmt(node, &in[0]).s);
  if (in[1].dtype != KL_BOOL || !is_single_element(&in[1]))
    return kl_shape_error(node, "condition %s must be a one-element Bool",
                          kl_shape_fmt(node, &in[1]).s);
  if (node->n_blocks != 1)
    return kl_shape_error(node, "expected 1 body block, got %d", node->n_blocks);
  const kl_ir_block *body = node->blocks[0];
  if (body->n_params != n_carried + 1)
    return kl_shape_error(node, "body takes %d parameters; expected %d (iteration, then %d "
                                "carried)", body->n_params, n_carried + 1, n_carried);
  if (body->n_returns != n_carried + 1)
    return kl_shape_error(node, "body returns %d values; expected %d (condition, then %d "
                                "carried)", body->n_returns, n_carried + 1, n_carried);
  const kl_ir_type *cond = &body->returns[0]->type;
  KL_RETURN_IF_ERROR(check_block_type(node, cond));
  if (cond->dtype != KL_BOOL || !is_single_element(cond))
    return kl_shape_error(node, "body's returned condition %s must be a one-element Bool",
                          kl_shape_fmt(node, cond).s);
  for (int i = 0; i < n_carried; i++) {
    const kl_ir_type *c = &in[2 + i];
    const kl_ir_type *p = &body->params[1 + i]->type, *r = &body->returns[1 + i]->type;
    KL_RETURN_IF_ERROR(check_block_type(node, p));
    KL_RETURN_IF_ERROR(check_block_type(node, r));
    if (p->dtype != c->dtype || p->rank != c->rank)
      return kl_shape_error(node, "carried value %d: input %s but body parameter %s", i,
                            kl_shape_fmt(node, c).s, kl_shape_fmt(node, p).s);
    if (r->dtype != c->dtype || r->rank != c->rank)
      return kl_shape_error(node, "carried value %d: input %s but body returns %s", i,
                            kl_shape_fmt(node, c).s, kl_shape_fmt(node, r).s);
    out[i] = *c;
    for (int d = 0; d < c->rank; d++)
      out[i].dims[d] = dim_join(c->dims[d], r->dims[d]);
  }
  return NULL;
}

/* prim::FusionGroup: the body's parameters take the input types and its returns are the
 * outputs. Symbols of the body's parameter types are bound to the input dims they meet, so a
 * body written for Float(N, 5) gives Float(4, 5) when the interpreter passes Float(4, 5). */
#define MAX_BINDINGS 64
KL_SHAPE_FN(fusion_group) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 0, -1, n_out, 1, -1));
  if (node->n_blocks != 1)
    return kl_shape_error(node, "expected 1 body block, got %d", node->n_blocks);
  const kl_ir_block *body = node->blocks[0];
  if (body->n_params != n_in)
    return kl_shape_error(node, "body takes %d parameters, but the node has %d inputs",
                          body->n_params, n_in);
  if (body->n_returns != n_out)
    return kl_shape_error(node, "body returns %d values, but the node has %d outputs",
                          body->n_returns, n_out);
  struct {
    int32_t sym;
    kl_ir_dim dim;
  } bound[MAX_BINDINGS];
  int n_bound = 0;
  for (int i = 0; i < n_in; i++) {
    const kl_ir_type *p = &body->params[i]->type;
    KL_RETURN_IF_ERROR(check_block_type(node, p));
    if (p->dtype != in[i].dtype || p->rank != in[i].rank)
      return kl_shape_error(node, "input %d is %s but the body parameter is %s", i,
                            kl_shape_fmt(node, &in[i]).s, kl_shape_fmt(node, p).s);
    for (int d = 0; d < p->rank; d++) {
      kl_ir_dim pd = p->dims[d], id = in[i].dims[d];
      if (!kl_shape_dims_may_equal(node, pd, id))
        return kl_shape_error(node, "input %d is %s but the body parameter is %s", i,
                              kl_shape_fmt(node, &in[i]).s, kl_shape_fmt(node, p).s);
      if (pd.sym < 0)
        continue;
      int j = 0;
      while (j < n_bound && bound[j].sym != pd.sym)
        j++;
      if (j == n_bound) {
        if (n_bound == MAX_BINDINGS)
          continue; /* unbound symbols stay as the body declares them */
        bound[n_bound].sym = pd.sym;
        bound[n_bound++].dim = id;
      } else if (!kl_ir_dim_equal(bound[j].dim, id)) {
        if (kl_ir_dim_is_static(bound[j].dim) && kl_ir_dim_is_static(id))
          return kl_shape_error(node, "input %d %s gives body symbol %s the size %lld, but an "
                                      "earlier input gave %lld", i, kl_shape_fmt(node, &in[i]).s,
                                kl_shape_fmt_dim(node, pd).s, (long long)id.size,
                                (long long)bound[j].dim.size);
        bound[j].dim = kl_shape_dim_meet(bound[j].dim, id);
      }
    }
  }
  for (int i = 0; i < n_out; i++) {
    out[i] = body->returns[i]->type;
    KL_RETURN_IF_ERROR(check_block_type(node, &out[i]));
    for (int d = 0; d < out[i].rank; d++)
      for (int j = 0; j < n_bound; j++)
        if (out[i].dims[d].sym == bound[j].sym)
          out[i].dims[d] = bound[j].dim;
  }
  return NULL;
}

/* ---- reshaping ---------------------------------------------------------------------------- */

/* aten::reshape[shape=[...]]: at most one -1, inferred from the element count. 0 means size 0
 * (PyTorch), not "copy" (ONNX). With symbolic input dims, -1 is inferred only when it must be
 * the input's single symbol: Float(N, 3, 4) -> [-1, 12] gives Float(N, 12). */
KL_SHAPE_FN(reshape) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  const kl_ir_type *x = &in[0];
  const kl_ir_attr *shape = NULL;
  KL_RETURN_IF_ERROR(require_ints(node, "shape", &shape));
  if (shape->n > KL_MAX_RANK)
    return kl_shape_error_code(node, KL_ERR_LIMIT, "attribute shape has %d dims, more than %d",
                               shape->n, KL_MAX_RANK);
  int infer = -1;
  int64_t known = 1; /* product of the entries other than -1 */
  for (int i = 0; i < shape->n; i++) {
    int64_t s = shape->u.is[i];
    if (s == -1) {
      if (infer >= 0)
        return kl_shape_error(node, "attribute shape %s has more than one -1",
                              fmt_ints(shape->u.is, shape->n).s);
      infer = i;
    } else if (s < -1) {
      return kl_shape_error(node, "attribute shape %s: entry %d is %lld",
                            fmt_ints(shape->u.is, shape->n).s, i, (long long)s);
    } else if (!kl_mul_i64(known, s, &known)) {
      return kl_shape_error(node, "attribute shape %s: element count overflows",
                            fmt_ints(shape->u.is, shape->n).s);
    }
  }
  /* The input: product of its static dims, and its one non-static dim if it has exactly one. */
  int64_t static_numel = 1;
  int n_dynamic = 0;
  kl_ir_dim dynamic = dim_unknown();
  for (int d = 0; d < x->rank; d++) {
    if (kl_ir_dim_is_static(x->dims[d])) {
      if (!kl_mul_i64(static_numel, x->dims[d].size, &static_numel))
        return kl_shape_error(node, "input %s: element count overflows", kl_shape_fmt(node, x).s);
    } else {
      n_dynamic++;
      dynamic = x->dims[d];
    }
  }
  kl_ir_type y = *x;
  y.rank = shape->n;
  for (int i = 0; i < shape->n; i++)
    y.dims[i] = kl_ir_dim_static(shape->u.is[i]);
  if (n_dynamic == 0) {
    if (infer < 0 && known != static_numel)
      return kl_shape_error(node, "cannot reshape input %s (%lld elements) to %s (%lld "
                                  "elements)", kl_shape_fmt(node, x).s, (long long)static_numel,
                            fmt_ints(shape->u.is, shape->n).s, (long long)known);
    if (infer >= 0) {
      if (known == 0 || static_numel % known != 0)
        return kl_shape_error(node, "cannot reshape input %s (%lld elements) to %s",
                              kl_shape_fmt(node, x).s, (long long)static_numel,
                              fmt_ints(shape->u.is, shape->n).s);
      y.dims[infer] = kl_ir_dim_static(static_numel / known);
    }
  } else if (infer >= 0) {
    if (known == 0)
      return kl_shape_error(node, "attribute shape %s: -1 is ambiguous next to a 0",
                            fmt_ints(shape->u.is, shape->n).s);
    bool exact = n_dynamic == 1 && dynamic.sym >= 0 && known == static_numel;
    y.dims[infer] = exact ? dynamic : dim_unknown();
  }
  out[0] = y;
  return NULL;
}

/* aten::flatten[start_dim=0, end_dim=-1]: dims start..end become their product. A rank-0 input
 * becomes (1), as in PyTorch. */
KL_SHAPE_FN(flatten) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  kl_ir_type x = in[0];
  int64_t start_attr = 0, end_attr = -1;
  KL_RETURN_IF_ERROR(optional_int(node, "start_dim", 0, &start_attr));
  KL_RETURN_IF_ERROR(optional_int(node, "end_dim", -1, &end_attr));
  if (x.rank == 0) {
    x.rank = 1;
    x.dims[0] = kl_ir_dim_static(1);
  }
  int start, end;
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(node, start_attr, x.rank, &start));
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(node, end_attr, x.rank, &end));
  if (start > end)
    return kl_shape_error(node, "start_dim %d comes after end_dim %d", start, end);
  int64_t product = 1;
  int n_dynamic = 0;
  kl_ir_dim dynamic = dim_unknown();
  for (int d = start; d <= end; d++) {
    if (!kl_ir_dim_is_static(x.dims[d])) {
      n_dynamic++;
      dynamic = x.dims[d];
    } else if (!kl_mul_i64(product, x.dims[d].size, &product)) {
      return kl_shape_error(node, "input %s: flattened size overflows", kl_shape_fmt(node, &x).s);
    }
  }
  kl_ir_dim merged;
  if (n_dynamic == 0 || product == 0)
    merged = kl_ir_dim_static(product);
  else if (n_dynamic == 1 && product == 1)
    merged = dynamic;
  else
    merged = dim_unknown();
  kl_ir_type y = x;
  y.rank = 0;
  for (int d = 0; d < x.rank; d++) {
    if (d < start || d > end)
      y.dims[y.rank++] = x.dims[d];
    else if (d == start)
      y.dims[y.rank++] = merged;
  }
  out[0] = y;
  return NULL;
}

/* Whether dim d of x is 1, for squeeze. A symbol decides by its bounds; one that may or may not
 * be 1 (or an unknown dim) would leave the output rank unknown, which no type can say. */
static kl_status squeezes(const kl_ir_node *node, const kl_ir_type *x, int d, bool *out) {
  kl_ir_dim dim = x->dims[d];
  if (kl_ir_dim_is_static(dim)) {
    *out = dim.size == 1;
    return NULL;
  }
  bool may_be_one = kl_shape_dim_may_be(node, dim, 1);
  const kl_ir_graph *g = node->graph;
  if (!may_be_one) {
    *out = false;
    return NULL;
  }
  if (dim.sym >= 0 && g && dim.sym < g->n_symbols && g->symbols[dim.sym].max == 1) {
    *out = true;
    return NULL;
  }
  return kl_shape_error_code(node, KL_ERR_UNSUPPORTED, "cannot tell whether dim %d (%s) of "
                                                       "input %s is 1, so the output rank is "
                                                       "unknown", d,
                             kl_shape_fmt_dim(node, dim).s, kl_shape_fmt(node, x).s);
}

/* aten::squeeze[dim=[...]]: removes the listed dims that are 1 (others stay, as in PyTorch);
 * without dim, every dim that is 1. An empty list squeezes nothing. */
KL_SHAPE_FN(squeeze) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  const kl_ir_type *x = &in[0];
  const kl_ir_attr *dims = kl_ir_node_attr(node, "dim");
  if (dims && dims->kind != KL_ATTR_INTS)
    return kl_shape_error(node, "attribute dim must be ints, not %s",
                          kl_ir_attr_kind_name(dims->kind));
  bool listed[KL_MAX_RANK] = {false};
  if (dims && x->rank == 0) {
    /* PyTorch accepts dim 0 or -1 on a scalar and returns it unchanged. */
    for (int i = 0; i < dims->n; i++)
      if (dims->u.is[i] != 0 && dims->u.is[i] != -1)
        return kl_shape_error(node, "dim %lld is out of range for a rank-0 input",
                              (long long)dims->u.is[i]);
    out[0] = *x;
    return NULL;
  }
  for (int i = 0; dims && i < dims->n; i++) {
    int d = 0;
    KL_RETURN_IF_ERROR(kl_ir_normalize_dim(node, dims->u.is[i], x->rank, &d));
    if (listed[d])
      return kl_shape_error(node, "dim %d appears more than once in attribute dim", d);
    listed[d] = true;
  }
  kl_ir_type y = *x;
  y.rank = 0;
  for (int d = 0; d < x->rank; d++) {
    bool drop = false;
    if (!dims || listed[d])
      KL_RETURN_IF_ERROR(squeezes(node, x, d, &drop));
    if (!drop)
      y.dims[y.rank++] = x->dims[d];
  }
  out[0] = y;
  return NULL;
}

/* aten::unsqueeze[dim]: a 1 inserted at dim of the output (range -rank-1..rank). */
KL_SHAPE_FN(unsqueeze) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  const kl_ir_type *x = &in[0];
  int64_t dim_attr = 0;
  KL_RETURN_IF_ERROR(require_int(node, "dim", &dim_attr));
  if (x->rank + 1 > KL_MAX_RANK)
    return kl_shape_error_code(node, KL_ERR_LIMIT, "input %s already has the most dims (%d)",
                               kl_shape_fmt(node, x).s, KL_MAX_RANK);
  int d = 0;
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(node, dim_attr, x->rank + 1, &d));
  kl_ir_type y = *x;
  y.rank = x->rank + 1;
  for (int i = x->rank; i > d; i--)
    y.dims[i] = x->dims[i - 1];
  y.dims[d] = kl_ir_dim_static(1);
  out[0] = y;
  return NULL;
}

/* aten::transpose and aten::permute: y.dims[i] = x.dims[perm[i]]. */
static kl_status permute_shape(const kl_ir_node *node, const kl_ir_type *in, int n_in,
                               kl_ir_type *out, int n_out) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  int perm[KL_MAX_RANK];
  KL_RETURN_IF_ERROR(kl_ir_permute_params(node, in[0].rank, perm));
  out[0] = in[0];
  for (int i = 0; i < in[0].rank; i++)
    out[0].dims[i] = in[0].dims[perm[i]];
  return NULL;
}

KL_SHAPE_FN(transpose) { return permute_shape(node, in, n_in, out, n_out); }
KL_SHAPE_FN(permute) { return permute_shape(node, in, n_in, out, n_out); }

/* aten::expand[size=[...]]: right-aligned; -1 keeps an existing dim; a dim of 1 takes any size;
 * new leading dims need an explicit size >= 0. A symbol expanded to s becomes s (the op only
 * succeeds when the symbol is 1 or s). */
KL_SHAPE_FN(expand) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  const kl_ir_type *x = &in[0];
  const kl_ir_attr *size = NULL;
  KL_RETURN_IF_ERROR(require_ints(node, "size", &size));
  if (size->n > KL_MAX_RANK)
    return kl_shape_error_code(node, KL_ERR_LIMIT, "attribute size has %d dims, more than %d",
                               size->n, KL_MAX_RANK);
  if (size->n < x->rank)
    return kl_shape_error(node, "attribute size %s has fewer dims than input %s",
                          fmt_ints(size->u.is, size->n).s, kl_shape_fmt(node, x).s);
  int lead = size->n - x->rank;
  kl_ir_type y = *x;
  y.rank = size->n;
  for (int i = 0; i < size->n; i++) {
    int64_t s = size->u.is[i];
    if (s < -1 || (i < lead && s == -1))
      return kl_shape_error(node, "attribute size %s: entry %d = %lld is not allowed%s",
                            fmt_ints(size->u.is, size->n).s, i, (long long)s,
                            i < lead ? " for a new leading dim" : "");
    if (i < lead) {
      y.dims[i] = kl_ir_dim_static(s);
      continue;
    }
    kl_ir_dim d = x->dims[i - lead];
    if (s == -1) {
      y.dims[i] = d;
    } else if (kl_shape_dim_may_be(node, d, 1) || kl_shape_dim_may_be(node, d, s)) {
      y.dims[i] = kl_ir_dim_static(s);
    } else {
      return kl_shape_error(node, "cannot expand input %s to %s: dim %d is %s, not 1 or %lld",
                            kl_shape_fmt(node, x).s, fmt_ints(size->u.is, size->n).s,
                            i - lead, kl_shape_fmt_dim(node, d).s, (long long)s);
    }
  }
  out[0] = y;
  return NULL;
}

/* ---- joining and splitting -------------------------------------------------------------- */

/* aten::cat[dim=0]: same dtype and rank; the other dims equal; sizes along dim add up. */
KL_SHAPE_FN(cat) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, -1, n_out, 1, 1));
  int64_t dim_attr = 0;
  int d = 0;
  KL_RETURN_IF_ERROR(optional_int(node, "dim", 0, &dim_attr));
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(node, dim_attr, in[0].rank, &d));
  kl_ir_type y = in[0];
  int64_t total = 0;
  int n_dynamic = 0;
  kl_ir_dim dynamic = dim_unknown();
  for (int i = 0; i < n_in; i++) {
    char what[32];
    snprintf(what, sizeof what, "input %d", i);
    KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, &in[0], "input 0", &in[i], what));
    if (in[i].rank != in[0].rank)
      return kl_shape_error(node, "input 0 %s and %s %s have different ranks",
                            kl_shape_fmt(node, &in[0]).s, what, kl_shape_fmt(node, &in[i]).s);
    for (int j = 0; j < y.rank; j++) {
      if (j == d)
        continue;
      if (!kl_shape_dims_may_equal(node, y.dims[j], in[i].dims[j]))
        return kl_shape_error(node, "input 0 %s and %s %s differ at dim %d: %s != %s",
                              kl_shape_fmt(node, &in[0]).s, what, kl_shape_fmt(node, &in[i]).s,
                              j, kl_shape_fmt_dim(node, y.dims[j]).s,
                              kl_shape_fmt_dim(node, in[i].dims[j]).s);
      y.dims[j] = kl_shape_dim_meet(y.dims[j], in[i].dims[j]);
    }
    kl_ir_dim c = in[i].dims[d];
    if (!kl_ir_dim_is_static(c)) {
      n_dynamic++;
      dynamic = c;
    } else if (!kl_add_i64(total, c.size, &total)) {
      return kl_shape_error(node, "size along dim %d overflows", d);
    }
  }
  if (n_dynamic == 0)
    y.dims[d] = kl_ir_dim_static(total);
  else if (n_dynamic == 1 && total == 0)
    y.dims[d] = dynamic;
  else
    y.dims[d] = dim_unknown();
  out[0] = y;
  return NULL;
}

/* aten::split[sizes=[...], dim=0]: one output per size; the sizes add up to the dim. */
KL_SHAPE_FN(split) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, -1));
  const kl_ir_type *x = &in[0];
  const kl_ir_attr *sizes = NULL;
  int64_t dim_attr = 0;
  int d = 0;
  KL_RETURN_IF_ERROR(require_ints(node, "sizes", &sizes));
  KL_RETURN_IF_ERROR(optional_int(node, "dim", 0, &dim_attr));
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(node, dim_attr, x->rank, &d));
  if (sizes->n != n_out)
    return kl_shape_error(node, "attribute sizes has %d entries but the node has %d outputs",
                          sizes->n, n_out);
  int64_t total = 0;
  for (int i = 0; i < sizes->n; i++) {
    if (sizes->u.is[i] < 0)
      return kl_shape_error(node, "attribute sizes %s: entry %d is negative",
                            fmt_ints(sizes->u.is, sizes->n).s, i);
    if (!kl_add_i64(total, sizes->u.is[i], &total))
      return kl_shape_error(node, "attribute sizes %s: sum overflows",
                            fmt_ints(sizes->u.is, sizes->n).s);
  }
  if (!kl_shape_dim_may_be(node, x->dims[d], total))
    return kl_shape_error(node, "attribute sizes %s add up to %lld, but dim %d of input %s is %s",
                          fmt_ints(sizes->u.is, sizes->n).s, (long long)total, d,
                          kl_shape_fmt(node, x).s, kl_shape_fmt_dim(node, x->dims[d]).s);
  for (int i = 0; i < n_out; i++) {
    out[i] = *x;
    out[i].dims[d] = kl_ir_dim_static(sizes->u.is[i]);
  }
  return NULL;
}

/* aten::slice: Python slicing along one dim (kl_ir_slice_params). On a symbolic dim only the
 * whole-dim slice [0:INT64_MAX:1] keeps the symbol. */
KL_SHAPE_FN(slice) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  const kl_ir_type *x = &in[0];
  int64_t shape[KL_MAX_RANK];
  for (int i = 0; i < x->rank; i++)
    shape[i] = kl_ir_dim_is_static(x->dims[i]) ? x->dims[i].size : 0;
  int d = 0;
  int64_t start = 0, step = 1, len = 0;
  KL_RETURN_IF_ERROR(kl_ir_slice_params(node, x->rank, shape, &d, &start, &step, &len));
  out[0] = *x;
  if (kl_ir_dim_is_static(x->dims[d])) {
    out[0].dims[d] = kl_ir_dim_static(len);
  } else {
    bool whole = kl_ir_node_int(node, "start", 0) == 0 &&
                 kl_ir_node_int(node, "end", INT64_MAX) == INT64_MAX && step == 1;
    if (!whole)
      out[0].dims[d] = dim_unknown();
  }
  return NULL;
}

/* aten::constant_pad_nd: each dim grows by its (before, after) pair; negative pads crop. */
KL_SHAPE_FN(constant_pad) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  const kl_ir_type *x = &in[0];
  int64_t pad[2 * KL_MAX_RANK];
  KL_RETURN_IF_ERROR(kl_ir_pad_params(node, x->rank, pad, NULL));
  out[0] = *x;
  for (int d = 0; d < x->rank; d++) {
    int64_t grow, size;
    if (!kl_add_i64(pad[2 * d], pad[2 * d + 1], &grow))
      return kl_shape_error(node, "padding of dim %d overflows", d);
    if (!kl_ir_dim_is_static(x->dims[d])) {
      if (grow != 0)
        out[0].dims[d] = dim_unknown();
      continue;
    }
    if (!kl_add_i64(x->dims[d].size, grow, &size))
      return kl_shape_error(node, "padded size of dim %d overflows", d);
    if (size < 0)
      return kl_shape_error(node, "input %s: padding (%lld, %lld) of dim %d gives a negative "
                                  "size %lld", kl_shape_fmt(node, x).s, (long long)pad[2 * d],
                            (long long)pad[2 * d + 1], d, (long long)size);
    out[0].dims[d] = kl_ir_dim_static(size);
  }
  return NULL;
}

/* ---- gathering -------------------------------------------------------------------------- */

/* aten::embedding(weight (num, dim), indices (...)) -> (..., dim). */
KL_SHAPE_FN(embedding) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 2, 2, n_out, 1, 1));
  const kl_ir_type *w = &in[0], *idx = &in[1];
  KL_RETURN_IF_ERROR(kl_ir_gather_params(node, w->rank, NULL, NULL, NULL));
  KL_RETURN_IF_ERROR(kl_shape_require_index(node, idx, "indices"));
  if (idx->rank + 1 > KL_MAX_RANK)
    return kl_shape_error_code(node, KL_ERR_LIMIT, "indices %s: the output would have more "
                                                   "than %d dims", kl_shape_fmt(node, idx).s,
                               KL_MAX_RANK);
  kl_ir_type y = *idx;
  y.dtype = w->dtype;
  y.dims[y.rank++] = w->dims[1];
  out[0] = y;
  return NULL;
}

/* aten::index_select and onnx::Gather: data.shape[:axis] + indices.shape + data.shape[axis+1:].
 * index_select takes 1-D indices only (a 0-D index would keep the dim in PyTorch but drop it
 * in the gather kernel). */
KL_SHAPE_FN(gather) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 2, 2, n_out, 1, 1));
  const kl_ir_type *x = &in[0], *idx = &in[1];
  int axis = 0;
  bool indices_1d = false;
  KL_RETURN_IF_ERROR(kl_ir_gather_params(node, x->rank, &axis, NULL, &indices_1d));
  KL_RETURN_IF_ERROR(kl_shape_require_index(node, idx, "indices"));
  if (indices_1d && idx->rank != 1)
    return kl_shape_error(node, "indices %s must be 1-D", kl_shape_fmt(node, idx).s);
  int rank = x->rank - 1 + idx->rank;
  if (rank > KL_MAX_RANK)
    return kl_shape_error_code(node, KL_ERR_LIMIT, "data %s and indices %s: the output would "
                                                   "have %d dims, more than %d",
                               kl_shape_fmt(node, x).s, kl_shape_fmt(node, idx).s, rank,
                               KL_MAX_RANK);
  kl_ir_type y = *x;
  y.rank = 0;
  for (int d = 0; d < axis; d++)
    y.dims[y.rank++] = x->dims[d];
  for (int d = 0; d < idx->rank; d++)
    y.dims[y.rank++] = idx->dims[d];
  for (int d = axis + 1; d < x->rank; d++)
    y.dims[y.rank++] = x->dims[d];
  out[0] = y;
  return NULL;
}
