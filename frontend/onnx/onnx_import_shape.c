/* The ONNX ops that move data or compute shapes: Flatten, Reshape, Squeeze, Unsqueeze,
 * Transpose, Concat, Split, Slice, Gather, Expand, Pad, the Reduce family, and the ops whose
 * result kiln computes at import from static shapes and constants (Shape, Size,
 * ConstantOfShape, Range). Each reads its shape-like inputs (ONNX's attributes before some
 * opset, inputs after) as constants and emits IR ops with attributes. The op table in
 * onnx_import_ops.c points here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/checked.h"
#include "onnx_internal.h"

/* ---- shapes ---------------------------------------------------------------------------------- */

/* Flatten to 2-D at axis: dims axis.. merge, then dims ..axis-1 merge (a missing side is 1). */
kl_status kl_onnx_map_flatten(kl_onnx_node_ctx *c) {
  kl_ir_value *x = kl_onnx_input(c, 0);
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  int rank = x->type.rank;
  int64_t axis = kl_onnx_attr_int(c, "axis", 1);
  if (axis < -rank || axis > rank)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "axis %lld is out of range for rank "
                              "%d", (long long)axis, rank);
  if (axis < 0)
    axis += rank;
  kl_ir_node *n;
  kl_ir_value *y = x;
  if (axis < rank) {
    KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_FLATTEN, &y, 1, &n));
    kl_ir_node_set_int(n, "start_dim", axis);
    KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &y));
  } else {
    KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_UNSQUEEZE, &y, 1, &n));
    kl_ir_node_set_int(n, "dim", -1);
    KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &y));
  }
  /* y has rank axis + 1; with axis 1 it is already 2-D */
  if (axis == 1) {
    c->out[0] = y;
    return NULL;
  }
  if (axis == 0) {
    KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_UNSQUEEZE, &y, 1, &n));
    kl_ir_node_set_int(n, "dim", 0);
  } else {
    KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_FLATTEN, &y, 1, &n));
    kl_ir_node_set_int(n, "start_dim", 0);
    kl_ir_node_set_int(n, "end_dim", axis - 1);
  }
  return kl_onnx_finish(c, n, &c->out[0]);
}

kl_status kl_onnx_map_reshape(kl_onnx_node_ctx *c) {
  kl_ir_value *x = kl_onnx_input(c, 0);
  int64_t shape[KL_MAX_RANK];
  int n = 0;
  if (c->opset < 5) {
    const int64_t *v = kl_onnx_attr_ints(c, "shape", &n);
    if (n < 0)
      return kl_onnx_missing_attr(c, "shape");
    if (n > KL_MAX_RANK)
      return kl_onnx_node_error(c, KL_ERR_LIMIT, "shape has more than %d dims", KL_MAX_RANK);
    if (n > 0) /* an empty list is a NULL pointer */
      memcpy(shape, v, (size_t)n * sizeof *v);
  } else {
    KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 1, shape, KL_MAX_RANK, &n));
  }
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  bool allowzero = kl_onnx_attr_int(c, "allowzero", 0) != 0, has_minus = false;
  for (int i = 0; i < n; i++)
    has_minus |= shape[i] == -1;
  for (int i = 0; i < n && !allowzero; i++) {
    if (shape[i] != 0)
      continue;
    if (i >= x->type.rank)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "shape entry %d is 0 (copy) but the "
                                "input has rank %d", i, x->type.rank);
    if (kl_ir_dim_is_static(x->type.dims[i])) {
      shape[i] = x->type.dims[i].size;
    } else if (!has_minus) {
      shape[i] = -1;
      has_minus = true;
    } else {
      return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "shape entry %d copies a dynamic dim "
                                "next to a -1", i);
    }
  }
  return kl_onnx_reshape_to(c, x, shape, n, &c->out[0]);
}

/* Axes from the attribute (before opset `since`) or from constant input 1. *out_n = -1: none. */
kl_status kl_onnx_axes_of(kl_onnx_node_ctx *c, int64_t since, int64_t *axes, int *out_n) {
  if (c->opset < since) {
    const int64_t *v = kl_onnx_attr_ints(c, "axes", out_n);
    if (*out_n > KL_MAX_RANK)
      return kl_onnx_node_error(c, KL_ERR_LIMIT, "more than %d axes", KL_MAX_RANK);
    if (*out_n > 0)
      memcpy(axes, v, (size_t)*out_n * sizeof *v);
    return NULL;
  }
  *out_n = -1;
  if (!kl_onnx_input(c, 1))
    return NULL;
  return kl_onnx_const_ints(c, 1, axes, KL_MAX_RANK, out_n);
}

kl_status kl_onnx_map_squeeze(kl_onnx_node_ctx *c) {
  int64_t axes[KL_MAX_RANK];
  int n;
  KL_RETURN_IF_ERROR(kl_onnx_axes_of(c, 13, axes, &n));
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_SQUEEZE, c->in, 1, &node));
  if (n >= 0)
    kl_ir_node_set_ints(node, "dim", axes, n);
  return kl_onnx_finish(c, node, &c->out[0]);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Unsqueeze: axes refer to the output; inserting them in increasing order is exact. */
kl_status kl_onnx_map_unsqueeze(kl_onnx_node_ctx *c) {
  int64_t axes[KL_MAX_RANK];
  int n;
  KL_RETURN_IF_ERROR(kl_onnx_axes_of(c, 13, axes, &n));
  if (n < 0)
    return kl_onnx_missing_attr(c, "axes");
  kl_ir_value *y = kl_onnx_input(c, 0);
  if (!y)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  int out_rank = y->type.rank + n;
  for (int i = 0; i < n; i++) {
    if (axes[i] < -out_rank || axes[i] >= out_rank)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "axis %lld is out of range for "
                                "output rank %d", (long long)axes[i], out_rank);
    if (axes[i] < 0)
      axes[i] += out_rank;
  }
  qsort(axes, (size_t)n, sizeof *axes, cmp_i64);
  for (int i = 0; i < n; i++) {
    kl_ir_node *node;
    KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_UNSQUEEZE, &y, 1, &node));
    kl_ir_node_set_int(node, "dim", axes[i]);
    KL_RETURN_IF_ERROR(kl_onnx_finish(c, node, &y));
  }
  c->out[0] = y;
  return NULL;
}

kl_status kl_onnx_map_transpose(kl_onnx_node_ctx *c) {
  kl_ir_value *x = kl_onnx_input(c, 0);
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  int n;
  const int64_t *perm = kl_onnx_attr_ints(c, "perm", &n);
  int64_t rev[KL_MAX_RANK];
  if (n < 0) {
    n = x->type.rank;
    for (int i = 0; i < n; i++)
      rev[i] = n - 1 - i;
    perm = rev;
  }
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_PERMUTE, &x, 1, &node));
  kl_ir_node_set_ints(node, "dims", perm, n);
  return kl_onnx_finish(c, node, &c->out[0]);
}

kl_status kl_onnx_map_concat(kl_onnx_node_ctx *c) {
  const Onnx__AttributeProto *axis = kl_onnx_attr(c->node, "axis");
  if (!axis || !axis->has_i)
    return kl_onnx_missing_attr(c, "axis");
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CAT, c->in, c->n_in, &n));
  kl_ir_node_set_int(n, "dim", axis->i);
  return kl_onnx_finish(c, n, &c->out[0]);
}

kl_status kl_onnx_map_split(kl_onnx_node_ctx *c) {
  kl_ir_value *x = kl_onnx_input(c, 0);
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  int64_t axis = kl_onnx_attr_int(c, "axis", 0), sizes[256];
  int n = -1;
  if (c->opset < 13) {
    const int64_t *v = kl_onnx_attr_ints(c, "split", &n);
    if (n > 256)
      return kl_onnx_node_error(c, KL_ERR_LIMIT, "more than 256 parts");
    if (n > 0)
      memcpy(sizes, v, (size_t)n * sizeof *v);
  } else if (kl_onnx_input(c, 1)) {
    KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 1, sizes, 256, &n));
  }
  if (n < 0) {
    int parts = c->opset >= 18 ? (int)kl_onnx_attr_int(c, "num_outputs", c->n_out) : c->n_out;
    int rank = x->type.rank;
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank || !kl_ir_dim_is_static(x->type.dims[a]) || parts <= 0 || parts > 256)
      return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "an even split needs a valid axis with a "
                                "static size");
    int64_t dim = x->type.dims[a].size, each = (dim + parts - 1) / parts;
    n = parts;
    for (int i = 0; i < parts; i++) {
      int64_t left = dim - each * i;
      sizes[i] = left < 0 ? 0 : left < each ? left : each;
    }
  }
  if (n != c->n_out)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "%d split sizes for %d outputs", n,
                              c->n_out);
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_emit(c, KL_OP_SPLIT, &x, 1, n, &node));
  kl_ir_node_set_ints(node, "sizes", sizes, n);
  kl_ir_node_set_int(node, "dim", axis);
  KL_RETURN_IF_ERROR(kl_onnx_infer(c, node));
  for (int i = 0; i < n; i++)
    c->out[i] = node->outputs[i];
  return NULL;
}

/* Slice: one aten::slice per axis, starts/ends/axes/steps from attributes before opset 10 and
 * constant inputs after. */
kl_status kl_onnx_map_slice(kl_onnx_node_ctx *c) {
  kl_ir_value *y = kl_onnx_input(c, 0);
  if (!y)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  int64_t starts[KL_MAX_RANK], ends[KL_MAX_RANK], axes[KL_MAX_RANK], steps[KL_MAX_RANK];
  int ns, ne, na = -1, nst = -1;
  if (c->opset < 10) {
    const int64_t *v = kl_onnx_attr_ints(c, "starts", &ns);
    const int64_t *e = kl_onnx_attr_ints(c, "ends", &ne);
    if (ns < 0)
      return kl_onnx_missing_attr(c, "starts");
    if (ne < 0)
      return kl_onnx_missing_attr(c, "ends");
    if (ns > KL_MAX_RANK || ne > KL_MAX_RANK)
      return kl_onnx_node_error(c, KL_ERR_LIMIT, "more than %d axes", KL_MAX_RANK);
    if (ns > 0) /* an empty list is a NULL pointer */
      memcpy(starts, v, (size_t)ns * sizeof *v);
    if (ne > 0)
      memcpy(ends, e, (size_t)ne * sizeof *e);
    const int64_t *a = kl_onnx_attr_ints(c, "axes", &na);
    if (na > KL_MAX_RANK)
      return kl_onnx_node_error(c, KL_ERR_LIMIT, "more than %d axes", KL_MAX_RANK);
    if (na > 0)
      memcpy(axes, a, (size_t)na * sizeof *a);
  } else {
    KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 1, starts, KL_MAX_RANK, &ns));
    KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 2, ends, KL_MAX_RANK, &ne));
    if (kl_onnx_input(c, 3))
      KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 3, axes, KL_MAX_RANK, &na));
    if (kl_onnx_input(c, 4))
      KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 4, steps, KL_MAX_RANK, &nst));
  }
  if (ne != ns || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "starts, ends, axes and steps differ "
                              "in length");
  for (int i = 0; i < ns; i++) {
    int64_t step = nst >= 0 ? steps[i] : 1;
    if (step == 0)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "step %d is 0", i);
    int64_t dim = na >= 0 ? axes[i] : i, end = ends[i];
    int64_t d = dim < 0 ? dim + y->type.rank : dim;
    /* A backwards slice "to the front" has many spellings (-size - 1, INT64_MIN, as kiln's
     * export writes it); with a static size they become one, -size - 1. */
    if (step < 0 && d >= 0 && d < y->type.rank && kl_ir_dim_is_static(y->type.dims[d]) &&
        end < -y->type.dims[d].size - 1)
      end = -y->type.dims[d].size - 1;
    kl_ir_node *n;
    KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_SLICE, &y, 1, &n));
    kl_ir_node_set_int(n, "dim", dim);
    kl_ir_node_set_int(n, "start", starts[i]);
    kl_ir_node_set_int(n, "end", end);
    kl_ir_node_set_int(n, "step", step);
    KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &y));
  }
  c->out[0] = y;
  return NULL;
}

kl_status kl_onnx_map_gather(kl_onnx_node_ctx *c) {
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_GATHER, c->in, 2, &n));
  kl_ir_node_set_int(n, "axis", kl_onnx_attr_int(c, "axis", 0));
  return kl_onnx_finish(c, n, &c->out[0]);
}

/* Expand broadcasts both ways: a 1 in the shape keeps the input's dim (-1 for aten::expand). */
kl_status kl_onnx_map_expand(kl_onnx_node_ctx *c) {
  kl_ir_value *x = kl_onnx_input(c, 0);
  int64_t shape[KL_MAX_RANK];
  int n;
  KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 1, shape, KL_MAX_RANK, &n));
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  int rank = x->type.rank, out_rank = n > rank ? n : rank;
  int64_t size[KL_MAX_RANK];
  for (int i = 0; i < out_rank; i++) {
    int si = i - (out_rank - n), xi = i - (out_rank - rank);
    int64_t s = si >= 0 ? shape[si] : 1;
    size[i] = (s == 1 && xi >= 0) ? -1 : s;
  }
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_EXPAND, &x, 1, &node));
  kl_ir_node_set_ints(node, "size", size, out_rank);
  return kl_onnx_finish(c, node, &c->out[0]);
}

kl_status kl_onnx_map_pad(kl_onnx_node_ctx *c) {
  kl_ir_value *x = kl_onnx_input(c, 0);
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  char buf[32];
  const char *mode = kl_onnx_attr_string(c, "mode", "constant", buf, sizeof buf);
  if (strcmp(mode, "constant"))
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "mode '%s' (only constant is supported)",
                              mode);
  int rank = x->type.rank, n;
  int64_t pads[2 * KL_MAX_RANK], axes[KL_MAX_RANK];
  double value = 0;
  int na = -1;
  if (c->opset < 11) {
    const int64_t *p = kl_onnx_attr_ints(c, "pads", &n);
    if (n < 0)
      return kl_onnx_missing_attr(c, "pads");
    if (n > 2 * KL_MAX_RANK)
      return kl_onnx_node_error(c, KL_ERR_LIMIT, "too many pads");
    if (n > 0) /* an empty list is a NULL pointer */
      memcpy(pads, p, (size_t)n * sizeof *p);
    value = kl_onnx_attr_float(c, "value", 0);
  } else {
    KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 1, pads, 2 * KL_MAX_RANK, &n));
    KL_RETURN_IF_ERROR(kl_onnx_const_scalar(c, 2, 0, &value));
    if (kl_onnx_input(c, 3))
      KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 3, axes, KL_MAX_RANK, &na));
  }
  if (na < 0) {
    na = rank;
    for (int i = 0; i < rank; i++)
      axes[i] = i;
  }
  if (n != 2 * na)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "%d pads for %d axes", n, na);
  /* ONNX: all begins then all ends; aten: (before, after) pairs from the last dim. */
  int64_t before[KL_MAX_RANK] = {0}, after[KL_MAX_RANK] = {0};
  for (int i = 0; i < na; i++) {
    int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (a < 0 || a >= rank)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "axis %lld is out of range",
                                (long long)axes[i]);
    before[a] = pads[i];
    after[a] = pads[na + i];
  }
  int64_t pad[2 * KL_MAX_RANK];
  for (int d = 0; d < rank; d++) {
    pad[2 * d] = before[rank - 1 - d];
    pad[2 * d + 1] = after[rank - 1 - d];
  }
  /* Trailing (0, 0) pairs (the leading dims) are dropped, as aten spells a pad: one spelling
   * whether the pads came in full or, as kiln's own export writes them, for every dim. */
  int n_pad = 2 * rank;
  while (n_pad > 2 && pad[n_pad - 1] == 0 && pad[n_pad - 2] == 0)
    n_pad -= 2;
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CONSTANT_PAD, &x, 1, &node));
  kl_ir_node_set_ints(node, "pad", pad, n_pad);
  if (value != 0)
    kl_ir_node_set_float(node, "value", value);
  return kl_onnx_finish(c, node, &c->out[0]);
}

/* ReduceSum takes axes as an input from opset 13, the others from opset 18. */
/* ONNX gives -inf (max) or +inf (min) for a reduction over an empty dim, where aten's amax
 * and amin refuse: with a static shape, the result is that constant (out[0] set), else
 * nothing is done. */
static kl_status empty_extreme(kl_onnx_node_ctx *c, kl_ir_value *x, const int64_t *axes, int n,
                               bool keep, bool is_max) {
  int64_t shape[KL_MAX_RANK], out_shape[KL_MAX_RANK];
  if (!kl_ir_type_shape(&x->type, shape))
    return NULL;
  int rank = x->type.rank, out_rank = 0;
  bool reduced[KL_MAX_RANK] = {false}, empty = false;
  for (int i = 0; i < (n > 0 ? n : rank); i++) {
    int64_t d = n > 0 ? (axes[i] < 0 ? axes[i] + rank : axes[i]) : i;
    if (d < 0 || d >= rank)
      return NULL; /* the reduction's own check reports it */
    reduced[d] = true;
    empty |= shape[d] == 0;
  }
  if (!empty)
    return NULL;
  for (int d = 0; d < rank; d++)
    if (!reduced[d] || keep)
      out_shape[out_rank++] = reduced[d] ? 1 : shape[d];
  int64_t numel;
  if (!kl_shape_numel(out_shape, out_rank, &numel) ||
      (size_t)numel * kl_dtype_size(x->type.dtype) > c->imp->budget)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "the result is too large");
  kl_tensor *t;
  KL_RETURN_IF_ERROR(kl_tensor_create(x->type.dtype, out_rank, out_shape, &t));
  for (int64_t i = 0; i < numel; i++)
    kl_dtype_store_f64(t->dtype, t->data, (size_t)i, is_max ? -INFINITY : INFINITY);
  c->out[0] = kl_onnx_emit_constant(c, t);
  kl_tensor_release(t);
  return NULL;
}

kl_status kl_onnx_map_reduce(kl_onnx_node_ctx *c) {
  const char *op_type = c->node->op_type;
  kl_op op = !strcmp(op_type, "ReduceSum")    ? KL_OP_SUM
             : !strcmp(op_type, "ReduceMean") ? KL_OP_MEAN
             : !strcmp(op_type, "ReduceMax")  ? KL_OP_AMAX
                                              : KL_OP_AMIN;
  int64_t axes[KL_MAX_RANK];
  int n;
  KL_RETURN_IF_ERROR(kl_onnx_axes_of(c, op == KL_OP_SUM ? 13 : 18, axes, &n));
  if (n <= 0 && kl_onnx_attr_int(c, "noop_with_empty_axes", 0)) {
    c->out[0] = kl_onnx_input(c, 0);
    return c->out[0] ? NULL : kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  }
  kl_ir_value *x = kl_onnx_input(c, 0);
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  bool keep = kl_onnx_attr_int(c, "keepdims", 1) != 0;
  if ((op == KL_OP_AMAX || op == KL_OP_AMIN) && kl_dtype_is_float(x->type.dtype))
    KL_RETURN_IF_ERROR(empty_extreme(c, x, axes, n, keep, op == KL_OP_AMAX));
  if (c->out[0])
    return NULL;
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, op, c->in, 1, &node));
  if (n > 0)
    kl_ir_node_set_ints(node, "dim", axes, n);
  kl_ir_node_set_int(node, "keepdim", keep);
  KL_RETURN_IF_ERROR(kl_onnx_finish(c, node, &c->out[0]));
  kl_dtype dtype = c->in[0]->type.dtype;
  if (c->out[0]->type.dtype == dtype)
    return NULL;
  /* aten::sum of integers is Long; ONNX keeps the input's type */
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CAST, &c->out[0], 1, &node));
  kl_ir_node_set_dtype(node, "dtype", dtype);
  return kl_onnx_finish(c, node, &c->out[0]);
}

/* ---- computed constants ---------------------------------------------------------------------- */

kl_status kl_onnx_emit_i64_vector(kl_onnx_node_ctx *c, const int64_t *v, int n, int rank) {
  kl_tensor *t;
  int64_t len = n;
  KL_RETURN_IF_ERROR(kl_tensor_create(KL_I64, rank, &len, &t));
  memcpy(t->data, v, (size_t)n * sizeof *v);
  c->out[0] = kl_onnx_emit_constant(c, t);
  kl_tensor_release(t);
  return NULL;
}

kl_status kl_onnx_map_shape(kl_onnx_node_ctx *c) {
  kl_ir_value *x = kl_onnx_input(c, 0);
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  int64_t shape[KL_MAX_RANK];
  if (!kl_ir_type_shape(&x->type, shape)) {
    c->imp->needs_run_time = true; /* kept as onnx::Deferred, read at run time */
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "input '%s' has a dynamic shape; Shape "
                              "needs a static one (kiln computes it at import)", x->name);
  }
  int rank = x->type.rank;
  int64_t start = kl_onnx_attr_int(c, "start", 0), end = kl_onnx_attr_int(c, "end", rank);
  if (start < 0)
    start += rank;
  if (end < 0)
    end += rank;
  start = start < 0 ? 0 : start > rank ? rank : start;
  end = end < 0 ? 0 : end > rank ? rank : end;
  if (end < start)
    end = start;
  return kl_onnx_emit_i64_vector(c, shape + start, (int)(end - start), 1);
}

kl_status kl_onnx_map_size(kl_onnx_node_ctx *c) {
  kl_ir_value *x = kl_onnx_input(c, 0);
  int64_t numel;
  if (x && !kl_ir_type_numel(&x->type, &numel))
    c->imp->needs_run_time = true; /* kept as onnx::Deferred, read at run time */
  if (!x || !kl_ir_type_numel(&x->type, &numel))
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "Size needs an input of static shape");
  return kl_onnx_emit_i64_vector(c, &numel, 1, 0);
}

kl_status kl_onnx_map_constant_of_shape(kl_onnx_node_ctx *c) {
  int64_t shape[KL_MAX_RANK];
  int n;
  KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 0, shape, KL_MAX_RANK, &n));
  kl_dtype dtype = KL_F32;
  double value = 0;
  const Onnx__AttributeProto *a = kl_onnx_attr(c->node, "value");
  if (a && a->t) {
    kl_onnx_tensor_source src = {NULL, NULL};
    kl_tensor *v;
    KL_RETURN_IF_ERROR(kl_onnx_tensor_from_proto(a->t, &src, "ConstantOfShape value", &v));
    dtype = v->dtype;
    if (v->numel != 1) {
      kl_tensor_release(v);
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "value must have one element");
    }
    value = kl_dtype_load_f64(v->dtype, v->data, 0);
    kl_tensor_release(v);
  }
  int64_t numel, nbytes;
  if (!kl_shape_numel(shape, n, &numel) ||
      !kl_mul_i64(numel, (int64_t)kl_dtype_size(dtype), &nbytes) || (size_t)nbytes > c->imp->budget)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "the shape is negative or too large");
  c->imp->budget -= (size_t)nbytes;
  kl_tensor *t;
  KL_RETURN_IF_ERROR(kl_tensor_create(dtype, n, shape, &t));
  for (int64_t i = 0; i < numel; i++)
    kl_dtype_store_f64(dtype, t->data, (size_t)i, value);
  c->out[0] = kl_onnx_emit_constant(c, t);
  kl_tensor_release(t);
  return NULL;
}

kl_status kl_onnx_map_range(kl_onnx_node_ctx *c) {
  double start, limit, delta;
  KL_RETURN_IF_ERROR(kl_onnx_const_scalar(c, 0, 0, &start));
  KL_RETURN_IF_ERROR(kl_onnx_const_scalar(c, 1, 0, &limit));
  KL_RETURN_IF_ERROR(kl_onnx_const_scalar(c, 2, 1, &delta));
  if (!kl_onnx_input(c, 0) || !kl_onnx_input(c, 1) || !kl_onnx_input(c, 2))
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "start, limit and delta are required");
  if (delta == 0)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "delta is 0");
  double count = ceil((limit - start) / delta);
  if (!(count >= 0))
    count = 0;
  if (count > 1e9)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "more than 1e9 elements");
  kl_dtype dtype = c->in[0]->type.dtype;
  int64_t n = (int64_t)count;
  kl_tensor *t;
  KL_RETURN_IF_ERROR(kl_tensor_create(dtype, 1, &n, &t));
  for (int64_t i = 0; i < n; i++)
    kl_dtype_store_f64(dtype, t->data, (size_t)i, start + (double)i * delta);
  c->out[0] = kl_onnx_emit_constant(c, t);
  kl_tensor_release(t);
  return NULL;
}
