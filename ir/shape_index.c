/* Attribute rules and shape functions of the indexing ops added for issue 4: aten::cumsum,
 * aten::scatter (ONNX ScatterElements), onnx::ScatterND and onnx::GatherND. aten::prod shares
 * aten::sum's rules (op_params.c, shape_nn.c). The scatters return data's type; GatherND's
 * output rank depends on the last dim of indices, so that dim must be static. */
#include <string.h>

#include "op_params.h"
#include "shape_internal.h"

/* ---- attributes -------------------------------------------------------------------------- */

kl_status kl_ir_cumsum_params(const kl_ir_node *n, int rank, int *out_dim, bool *out_exclusive,
                              bool *out_reverse) {
  const kl_ir_attr *dim = kl_ir_node_attr(n, "dim");
  if (!dim || dim->kind != KL_ATTR_INT)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: needs the int attribute dim",
                            kl_ir_node_op_name(n));
  /* a rank-0 input has one element and cumsums over dim 0 or -1 */
  int d;
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, dim->u.i, rank ? rank : 1, &d));
  if (out_dim)
    *out_dim = d;
  if (out_exclusive)
    *out_exclusive = kl_ir_node_int(n, "exclusive", 0) != 0;
  if (out_reverse)
    *out_reverse = kl_ir_node_int(n, "reverse", 0) != 0;
  return NULL;
}

kl_status kl_ir_scatter_params(const kl_ir_node *n, int rank, int *out_dim,
                               kl_rt_scatter_reduce *out_reduce) {
  const char *attr = n->op == KL_OP_SCATTER ? "reduce" : "reduction";
  const kl_ir_attr *r = kl_ir_node_attr(n, attr);
  if (r && r->kind != KL_ATTR_STRING)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: attribute %s must be a string",
                            kl_ir_node_op_name(n), attr);
  static const char *const names[] = {"none", "add", "mul", "max", "min"};
  const char *name = r ? r->u.s : "none";
  int found = -1;
  for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
    if (!strcmp(name, names[i]))
      found = i;
  /* PyTorch spells them "sum" and "prod" in scatter_reduce */
  if (!strcmp(name, "sum"))
    found = KL_SCATTER_ADD;
  if (!strcmp(name, "multiply") || !strcmp(name, "prod"))
    found = KL_SCATTER_MUL;
  if (found < 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: %s \"%s\" is not one of none, add, mul, max, min",
                            kl_ir_node_op_name(n), attr, name);
  if (out_reduce)
    *out_reduce = (kl_rt_scatter_reduce)found;
  if (n->op != KL_OP_SCATTER)
    return NULL;
  const kl_ir_attr *dim = kl_ir_node_attr(n, "dim");
  if (!dim || dim->kind != KL_ATTR_INT)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: needs the int attribute dim",
                            kl_ir_node_op_name(n));
  int d;
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, dim->u.i, rank, &d));
  if (out_dim)
    *out_dim = d;
  return NULL;
}

kl_status kl_ir_gather_nd_params(const kl_ir_node *n, int *out_batch_dims) {
  int64_t b = kl_ir_node_int(n, "batch_dims", 0);
  if (b < 0 || b > KL_MAX_RANK)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: batch_dims %lld is out of range",
                            kl_ir_node_op_name(n), (long long)b);
  *out_batch_dims = (int)b;
  return NULL;
}

/* ---- shapes ------------------------------------------------------------------------------ */

/* aten::cumsum(x) -> x's type; numbers only. */
KL_SHAPE_FN(cumsum) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  KL_RETURN_IF_ERROR(kl_ir_cumsum_params(node, in[0].rank, NULL, NULL, NULL));
  if (in[0].dtype == KL_BOOL)
    return kl_shape_error(node, "input %s: cumsum needs numbers", kl_shape_fmt(node, &in[0]).s);
  out[0] = in[0];
  return NULL;
}

/* aten::scatter(data, index, src) -> data's type. index, data and src share a rank; index is
 * no larger than src in any dim, nor than data outside dim. */
KL_SHAPE_FN(scatter) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 3, 3, n_out, 1, 1));
  const kl_ir_type *data = &in[0], *index = &in[1], *src = &in[2];
  int dim = 0;
  KL_RETURN_IF_ERROR(kl_ir_scatter_params(node, data->rank, &dim, NULL));
  KL_RETURN_IF_ERROR(kl_shape_require_index(node, index, "index"));
  KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, data, "data", src, "src"));
  if (index->rank != data->rank || src->rank != data->rank)
    return kl_shape_error(node, "data %s, index %s and src %s must have the same rank",
                          kl_shape_fmt(node, data).s, kl_shape_fmt(node, index).s,
                          kl_shape_fmt(node, src).s);
  for (int d = 0; d < data->rank; d++) {
    kl_ir_dim i = index->dims[d];
    if (!kl_ir_dim_is_static(i))
      continue;
    bool too_big = (kl_ir_dim_is_static(src->dims[d]) && i.size > src->dims[d].size) ||
                   (d != dim && kl_ir_dim_is_static(data->dims[d]) && i.size > data->dims[d].size);
    if (too_big)
      return kl_shape_error(node, "index %s is larger than src %s or data %s in dim %d",
                            kl_shape_fmt(node, index).s, kl_shape_fmt(node, src).s,
                            kl_shape_fmt(node, data).s, d);
  }
  out[0] = *data;
  return NULL;
}

/* onnx::ScatterND(data, indices (..., k), updates (indices.shape[:-1] + data.shape[k:])). */
KL_SHAPE_FN(scatter_nd) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 3, 3, n_out, 1, 1));
  const kl_ir_type *data = &in[0], *idx = &in[1], *upd = &in[2];
  KL_RETURN_IF_ERROR(kl_ir_scatter_params(node, data->rank, NULL, NULL));
  KL_RETURN_IF_ERROR(kl_shape_require_index(node, idx, "indices"));
  KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, data, "data", upd, "updates"));
  if (idx->rank < 1)
    return kl_shape_error(node, "indices %s must have at least one dim",
                          kl_shape_fmt(node, idx).s);
  kl_ir_dim last = idx->dims[idx->rank - 1];
  if (kl_ir_dim_is_static(last)) {
    int64_t k = last.size;
    if (k > data->rank)
      return kl_shape_error(node, "indices %s index past data %s (%lld of its %d dims)",
                            kl_shape_fmt(node, idx).s, kl_shape_fmt(node, data).s, (long long)k,
                            data->rank);
    if (upd->rank != idx->rank - 1 + data->rank - (int)k)
      return kl_shape_error(node, "indices %s into data %s need updates of rank %lld, not %s",
                            kl_shape_fmt(node, idx).s, kl_shape_fmt(node, data).s,
                            (long long)(idx->rank - 1 + data->rank - k),
                            kl_shape_fmt(node, upd).s);
  }
  out[0] = *data;
  return NULL;
}

/* onnx::GatherND(data, indices (..., k)) -> indices.shape[:-1] + data.shape[batch_dims + k:]. */
KL_SHAPE_FN(gather_nd) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 2, 2, n_out, 1, 1));
  const kl_ir_type *data = &in[0], *idx = &in[1];
  int batch_dims = 0;
  KL_RETURN_IF_ERROR(kl_ir_gather_nd_params(node, &batch_dims));
  KL_RETURN_IF_ERROR(kl_shape_require_index(node, idx, "indices"));
  if (idx->rank < 1 || batch_dims >= idx->rank)
    return kl_shape_error(node, "indices %s need more than batch_dims %d dims",
                          kl_shape_fmt(node, idx).s, batch_dims);
  kl_ir_dim last = idx->dims[idx->rank - 1];
  if (!kl_ir_dim_is_static(last))
    return kl_shape_error_code(node, KL_ERR_UNSUPPORTED,
                               "indices %s: the last dim must be static (it sets the rank)",
                               kl_shape_fmt(node, idx).s);
  int64_t k = last.size;
  if (batch_dims + k > data->rank)
    return kl_shape_error(node, "indices %s with batch_dims %d index past data %s",
                          kl_shape_fmt(node, idx).s, batch_dims, kl_shape_fmt(node, data).s);
  for (int d = 0; d < batch_dims; d++)
    if (!kl_shape_dims_may_equal(node, data->dims[d], idx->dims[d]))
      return kl_shape_error(node, "batch dim %d differs between data %s and indices %s", d,
                            kl_shape_fmt(node, data).s, kl_shape_fmt(node, idx).s);
  int rank = idx->rank - 1 + data->rank - batch_dims - (int)k;
  if (rank > KL_MAX_RANK)
    return kl_shape_error_code(node, KL_ERR_LIMIT, "the output would have %d dims, more than %d",
                               rank, KL_MAX_RANK);
  kl_ir_type y = *data;
  y.rank = 0;
  for (int d = 0; d < idx->rank - 1; d++)
    y.dims[y.rank++] = d < batch_dims ? kl_shape_dim_meet(data->dims[d], idx->dims[d])
                                      : idx->dims[d];
  for (int d = batch_dims + (int)k; d < data->rank; d++)
    y.dims[y.rank++] = data->dims[d];
  out[0] = y;
  return NULL;
}
