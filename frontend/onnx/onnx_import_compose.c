/* ONNX ops that kiln's IR has no single op for, written as several IR ops: activations
 * (Elu, Selu, Softplus, Mish, ...) from exp/where/mul, logical ops from where/eq/ne, the
 * L1/L2/log-sum reductions, and normalizations (InstanceNormalization, GroupNormalization,
 * MeanVarianceNormalization, LpNormalization). Each mapping refuses (with a per-node error)
 * the cases where the composition would not be exact. Also the small emitting helpers that
 * onnx_import_compose_data.c shares. The op table in onnx_import_ops.c points here. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../runtime/checked.h"
#include "onnx_internal.h"

/* ---- helpers ----------------------------------------------------------------------------- */

kl_status kl_onnx_need_x(kl_onnx_node_ctx *c, kl_ir_value **out) {
  *out = kl_onnx_input(c, 0);
  if (!*out)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  return NULL;
}

kl_ir_value *kl_onnx_like(kl_onnx_node_ctx *c, kl_ir_value *like, double v) {
  return kl_onnx_scalar_const(c, like->type.dtype, v);
}

kl_status kl_onnx_where(kl_onnx_node_ctx *c, kl_ir_value *cond, kl_ir_value *a, kl_ir_value *b,
                        kl_ir_value **out) {
  kl_ir_value *in[3] = {cond, a, b};
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_WHERE, in, 3, &n));
  return kl_onnx_finish(c, n, out);
}

kl_status kl_onnx_cast(kl_onnx_node_ctx *c, kl_ir_value *x, kl_dtype dtype, kl_ir_value **out) {
  if (x->type.dtype == dtype) {
    *out = x;
    return NULL;
  }
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CAST, &x, 1, &n));
  kl_ir_node_set_dtype(n, "dtype", dtype);
  return kl_onnx_finish(c, n, out);
}

kl_status kl_onnx_require_float(kl_onnx_node_ctx *c, kl_ir_value *x) {
  if (!kl_dtype_is_float(x->type.dtype))
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "input '%s' must be a float tensor",
                              x->name);
  return NULL;
}

/* A reduction over dims (n < 0: all) with keepdim. */
kl_status kl_onnx_reduce(kl_onnx_node_ctx *c, kl_op op, kl_ir_value *x, const int64_t *dims, int n,
                         bool keepdim, kl_ir_value **out) {
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, op, &x, 1, &node));
  if (n > 0)
    kl_ir_node_set_ints(node, "dim", dims, n);
  kl_ir_node_set_int(node, "keepdim", keepdim);
  return kl_onnx_finish(c, node, out);
}

kl_status kl_onnx_permute(kl_onnx_node_ctx *c, kl_ir_value *x, const int64_t *perm, int n,
                          kl_ir_value **out) {
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_PERMUTE, &x, 1, &node));
  kl_ir_node_set_ints(node, "dims", perm, n);
  return kl_onnx_finish(c, node, out);
}

kl_status kl_onnx_unsqueeze(kl_onnx_node_ctx *c, kl_ir_value *x, int64_t dim, kl_ir_value **out) {
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_UNSQUEEZE, &x, 1, &node));
  kl_ir_node_set_int(node, "dim", dim);
  return kl_onnx_finish(c, node, out);
}

kl_status kl_onnx_slice(kl_onnx_node_ctx *c, kl_ir_value *x, int64_t dim, int64_t start,
                        int64_t end, int64_t step, kl_ir_value **out) {
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_SLICE, &x, 1, &node));
  kl_ir_node_set_int(node, "dim", dim);
  kl_ir_node_set_int(node, "start", start);
  kl_ir_node_set_int(node, "end", end);
  kl_ir_node_set_int(node, "step", step);
  return kl_onnx_finish(c, node, out);
}

/* ---- elementwise ----------------------------------------------------------------------- */

kl_status kl_onnx_map_cast_like(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *like = kl_onnx_input(c, 1);
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  if (!like)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 1 (target_type) is missing");
  return kl_onnx_cast(c, x, like->type.dtype, &c->out[0]); /* the same type: x itself */
}

/* alpha * (exp(x) - 1) where x <= 0, else x. */
static kl_status elu(kl_onnx_node_ctx *c, kl_ir_value *x, double alpha, kl_ir_value **out) {
  kl_ir_value *pos, *e, *neg;
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_GT, x, kl_onnx_like(c, x, 0), &pos));
  KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_EXP, x, &e));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_SUB, e, kl_onnx_like(c, x, 1), &e));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, e, kl_onnx_like(c, x, alpha), &neg));
  return kl_onnx_where(c, pos, x, neg, out);
}

kl_status kl_onnx_map_elu(kl_onnx_node_ctx *c) {
  kl_ir_value *x;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  return elu(c, x, kl_onnx_attr_float(c, "alpha", 1.0), &c->out[0]);
}

kl_status kl_onnx_map_selu(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *y;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  KL_RETURN_IF_ERROR(elu(c, x, kl_onnx_attr_float(c, "alpha", 1.67326319217681884765625), &y));
  double gamma = kl_onnx_attr_float(c, "gamma", 1.05070102214813232421875);
  return kl_onnx_emit2(c, KL_OP_MUL, y, kl_onnx_like(c, x, gamma), &c->out[0]);
}

/* max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) */
kl_status kl_onnx_map_celu(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *pos, *e, *neg;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  double alpha = kl_onnx_attr_float(c, "alpha", 1.0);
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MAXIMUM, x, kl_onnx_like(c, x, 0), &pos));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_DIV, x, kl_onnx_like(c, x, alpha), &e));
  KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_EXP, e, &e));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_SUB, e, kl_onnx_like(c, x, 1), &e));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, e, kl_onnx_like(c, x, alpha), &e));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MINIMUM, e, kl_onnx_like(c, x, 0), &neg));
  return kl_onnx_emit2(c, KL_OP_ADD, pos, neg, &c->out[0]);
}

kl_status kl_onnx_map_thresholded_relu(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *above;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(
      c, KL_OP_GT, x, kl_onnx_like(c, x, kl_onnx_attr_float(c, "alpha", 1.0)), &above));
  return kl_onnx_where(c, above, x, kl_onnx_like(c, x, 0), &c->out[0]);
}

static kl_status softplus(kl_onnx_node_ctx *c, kl_ir_value *x, kl_ir_value **out) {
  kl_ir_value *e;
  KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_EXP, x, &e));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, e, kl_onnx_like(c, x, 1), &e));
  return kl_onnx_emit1(c, KL_OP_LOG, e, out);
}

kl_status kl_onnx_map_softplus(kl_onnx_node_ctx *c) {
  kl_ir_value *x;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  return softplus(c, x, &c->out[0]);
}

kl_status kl_onnx_map_softsign(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *d;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_ABS, x, &d));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, d, kl_onnx_like(c, x, 1), &d));
  return kl_onnx_emit2(c, KL_OP_DIV, x, d, &c->out[0]);
}

kl_status kl_onnx_map_prelu(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *slope = kl_onnx_input(c, 1), *neg, *scaled;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  if (!slope)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 1 (slope) is missing");
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_LT, x, kl_onnx_like(c, x, 0), &neg));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, x, slope, &scaled));
  return kl_onnx_where(c, neg, scaled, x, &c->out[0]);
}

kl_status kl_onnx_map_mish(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *y;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  KL_RETURN_IF_ERROR(softplus(c, x, &y));
  KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_TANH, y, &y));
  return kl_onnx_emit2(c, KL_OP_MUL, x, y, &c->out[0]);
}

kl_status kl_onnx_map_is_nan(kl_onnx_node_ctx *c) {
  kl_ir_value *x;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  return kl_onnx_emit2(c, KL_OP_NE, x, x, &c->out[0]);
}

kl_status kl_onnx_map_is_inf(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *a;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  bool pos = kl_onnx_attr_int(c, "detect_positive", 1) != 0;
  bool neg = kl_onnx_attr_int(c, "detect_negative", 1) != 0;
  if (pos && neg) {
    KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_ABS, x, &a));
    return kl_onnx_emit2(c, KL_OP_EQ, a, kl_onnx_like(c, x, INFINITY), &c->out[0]);
  }
  /* NaN equals nothing, so detecting neither compares with NaN */
  return kl_onnx_emit2(c, KL_OP_EQ, x,
                       kl_onnx_like(c, x,
                                    pos   ? INFINITY
                                    : neg ? -INFINITY
                                          : NAN),
                       &c->out[0]);
}

kl_status kl_onnx_map_not(kl_onnx_node_ctx *c) {
  kl_ir_value *x;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  return kl_onnx_emit2(c, KL_OP_EQ, x, kl_onnx_scalar_const(c, KL_BOOL, 0), &c->out[0]);
}

/* And(a, b) = kl_onnx_where(a, b, false); Or(a, b) = kl_onnx_where(a, true, b); Xor(a, b) = a != b.
 */
kl_status kl_onnx_map_logical(kl_onnx_node_ctx *c) {
  kl_ir_value *a = kl_onnx_input(c, 0), *b = kl_onnx_input(c, 1);
  if (!a || !b)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "two inputs are required");
  const char *op = c->node->op_type;
  if (!strcmp(op, "Xor"))
    return kl_onnx_emit2(c, KL_OP_NE, a, b, &c->out[0]);
  if (!strcmp(op, "And"))
    return kl_onnx_where(c, a, b, kl_onnx_scalar_const(c, KL_BOOL, 0), &c->out[0]);
  return kl_onnx_where(c, a, kl_onnx_scalar_const(c, KL_BOOL, 1), b, &c->out[0]);
}

kl_status kl_onnx_map_mean(kl_onnx_node_ctx *c) {
  kl_ir_value *acc;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &acc));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, acc));
  for (int i = 1; i < c->n_in; i++)
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, acc, c->in[i], &acc));
  if (c->n_in == 1) {
    c->out[0] = acc;
    return NULL;
  }
  return kl_onnx_emit2(c, KL_OP_DIV, acc, kl_onnx_like(c, acc, c->n_in), &c->out[0]);
}

/* ---- reductions ------------------------------------------------------------------------- */

/* ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp (axes an input from
 * opset 18). LogSumExp subtracts the max first so large inputs do not overflow. */
kl_status kl_onnx_map_reduce_composite(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *y;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  const char *op = c->node->op_type;
  int64_t axes[KL_MAX_RANK];
  int n;
  KL_RETURN_IF_ERROR(kl_onnx_axes_of(c, 18, axes, &n));
  bool keep = kl_onnx_attr_int(c, "keepdims", 1) != 0;
  if (n <= 0 && kl_onnx_attr_int(c, "noop_with_empty_axes", 0)) {
    n = 0; /* the reduction of nothing is the element itself */
    if (!strcmp(op, "ReduceL1"))
      return kl_onnx_emit1(c, KL_OP_ABS, x, &c->out[0]);
    if (!strcmp(op, "ReduceL2")) {
      KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, x, x, &y));
      return kl_onnx_emit1(c, KL_OP_SQRT, y, &c->out[0]);
    }
    if (!strcmp(op, "ReduceSumSquare"))
      return kl_onnx_emit2(c, KL_OP_MUL, x, x, &c->out[0]);
    if (!strcmp(op, "ReduceLogSum"))
      return kl_onnx_emit1(c, KL_OP_LOG, x, &c->out[0]);
    c->out[0] = x;
    return NULL;
  }
  kl_dtype dtype = x->type.dtype;
  if (!strcmp(op, "ReduceLogSumExp")) {
    KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
    kl_ir_value *m, *e, *s;
    KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_AMAX, x, axes, n, true, &m));
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_SUB, x, m, &e));
    KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_EXP, e, &e));
    KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_SUM, e, axes, n, true, &s));
    KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_LOG, s, &s));
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, s, m, &y));
    if (keep) {
      c->out[0] = y;
      return NULL;
    }
    kl_ir_node *sq;
    KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_SQUEEZE, &y, 1, &sq));
    if (n > 0)
      kl_ir_node_set_ints(sq, "dim", axes, n);
    return kl_onnx_finish(c, sq, &c->out[0]);
  }
  if (!strcmp(op, "ReduceL1"))
    KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_ABS, x, &x));
  else if (strcmp(op, "ReduceLogSum"))
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, x, x, &x));
  KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_SUM, x, axes, n, keep, &y));
  KL_RETURN_IF_ERROR(kl_onnx_cast(c, y, dtype, &y));
  if (!strcmp(op, "ReduceL2"))
    return kl_onnx_emit1(c, KL_OP_SQRT, y, &c->out[0]);
  if (!strcmp(op, "ReduceLogSum"))
    return kl_onnx_emit1(c, KL_OP_LOG, y, &c->out[0]);
  c->out[0] = y;
  return NULL;
}

/* ---- normalization ----------------------------------------------------------------------- */

/* (x - mean) / sqrt(var + eps) over dims, var the biased variance. */
static kl_status normalize(kl_onnx_node_ctx *c, kl_ir_value *x, const int64_t *dims, int n,
                           double eps, kl_ir_value **out) {
  kl_ir_value *m, *d, *v;
  KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_MEAN, x, dims, n, true, &m));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_SUB, x, m, &d));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, d, d, &v));
  KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_MEAN, v, dims, n, true, &v));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, v, kl_onnx_like(c, v, eps), &v));
  KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_SQRT, v, &v));
  return kl_onnx_emit2(c, KL_OP_DIV, d, v, out);
}

/* A per-channel vector (C) as (C, 1, ..., 1) with `trailing` ones, to broadcast over dim 1. */
static kl_status channel_vector(kl_onnx_node_ctx *c, kl_ir_value *v, int trailing,
                                kl_ir_value **out) {
  for (int i = 0; i < trailing; i++)
    KL_RETURN_IF_ERROR(kl_onnx_unsqueeze(c, v, -1, &v));
  *out = v;
  return NULL;
}

kl_status kl_onnx_map_instance_norm(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *scale = kl_onnx_input(c, 1), *bias = kl_onnx_input(c, 2), *y;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  int rank = x->type.rank;
  if (rank < 3 || !scale || !bias)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "needs input (N, C, ...) of rank 3 "
                              "or more, scale and B");
  int64_t dims[KL_MAX_RANK];
  for (int d = 2; d < rank; d++)
    dims[d - 2] = d;
  KL_RETURN_IF_ERROR(normalize(c, x, dims, rank - 2, kl_onnx_attr_float(c, "epsilon", 1e-5), &y));
  KL_RETURN_IF_ERROR(channel_vector(c, scale, rank - 2, &scale));
  KL_RETURN_IF_ERROR(channel_vector(c, bias, rank - 2, &bias));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, y, scale, &y));
  return kl_onnx_emit2(c, KL_OP_ADD, y, bias, &c->out[0]);
}

/* GroupNormalization: x (N, C, ...) seen as (N, G, C/G * ...) normalized along the last dim;
 * scale and bias are per group before opset 21 and per channel from 21. */
kl_status kl_onnx_map_group_norm(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *scale = kl_onnx_input(c, 1), *bias = kl_onnx_input(c, 2), *y;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  int64_t shape[KL_MAX_RANK], groups = kl_onnx_attr_int(c, "num_groups", 0);
  const Onnx__AttributeProto *g_attr = kl_onnx_attr(c->node, "num_groups");
  if (!g_attr)
    return kl_onnx_missing_attr(c, "num_groups");
  KL_RETURN_IF_ERROR(kl_onnx_need_static(c, x, shape));
  int rank = x->type.rank;
  if (rank < 3 || groups <= 0 || shape[1] % groups != 0 || !scale || !bias)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "num_groups %lld does not divide the "
                              "channels, or an input is missing", (long long)groups);
  int64_t grouped[3] = {shape[0], groups, -1}, last = 2;
  KL_RETURN_IF_ERROR(kl_onnx_reshape_to(c, x, grouped, 3, &y));
  KL_RETURN_IF_ERROR(normalize(c, y, &last, 1, kl_onnx_attr_float(c, "epsilon", 1e-5), &y));
  if (c->opset < 21) {
    KL_RETURN_IF_ERROR(kl_onnx_unsqueeze(c, scale, -1, &scale));
    KL_RETURN_IF_ERROR(kl_onnx_unsqueeze(c, bias, -1, &bias));
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, y, scale, &y));
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, y, bias, &y));
    return kl_onnx_reshape_to(c, y, shape, rank, &c->out[0]);
  }
  KL_RETURN_IF_ERROR(kl_onnx_reshape_to(c, y, shape, rank, &y));
  KL_RETURN_IF_ERROR(channel_vector(c, scale, rank - 2, &scale));
  KL_RETURN_IF_ERROR(channel_vector(c, bias, rank - 2, &bias));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, y, scale, &y));
  return kl_onnx_emit2(c, KL_OP_ADD, y, bias, &c->out[0]);
}

/* MeanVarianceNormalization: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9), axes [0, 2, 3]. */
kl_status kl_onnx_map_mvn(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *m, *m2, *sq, *v, *d;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  int n;
  const int64_t *axes = kl_onnx_attr_ints(c, "axes", &n);
  static const int64_t dflt[3] = {0, 2, 3};
  if (n < 0) {
    axes = dflt;
    n = 3;
  }
  KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_MEAN, x, axes, n, true, &m));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, x, x, &sq));
  KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_MEAN, sq, axes, n, true, &m2));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, m, m, &v));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_SUB, m2, v, &v));
  KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_SQRT, v, &v));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, v, kl_onnx_like(c, v, 1e-9), &v));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_SUB, x, m, &d));
  return kl_onnx_emit2(c, KL_OP_DIV, d, v, &c->out[0]);
}

kl_status kl_onnx_map_lp_norm(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *norm;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  int64_t axis = kl_onnx_attr_int(c, "axis", -1), p = kl_onnx_attr_int(c, "p", 2);
  if (p != 1 && p != 2)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "p must be 1 or 2, not %lld",
                              (long long)p);
  if (p == 1)
    KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_ABS, x, &norm));
  else
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, x, x, &norm));
  KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_SUM, norm, &axis, 1, true, &norm));
  if (p == 2)
    KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_SQRT, norm, &norm));
  return kl_onnx_emit2(c, KL_OP_DIV, x, norm, &c->out[0]);
}

kl_status kl_onnx_map_shrink(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *lo, *hi, *plus, *minus, *y;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  double lambd = kl_onnx_attr_float(c, "lambd", 0.5), bias = kl_onnx_attr_float(c, "bias", 0);
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_LT, x, kl_onnx_like(c, x, -lambd), &lo));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_GT, x, kl_onnx_like(c, x, lambd), &hi));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, x, kl_onnx_like(c, x, bias), &plus));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_SUB, x, kl_onnx_like(c, x, bias), &minus));
  KL_RETURN_IF_ERROR(kl_onnx_where(c, hi, minus, kl_onnx_like(c, x, 0), &y));
  return kl_onnx_where(c, lo, plus, y, &c->out[0]);
}
