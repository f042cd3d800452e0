/* ONNX ops that need no new IR op (issue 4): the window functions (HannWindow, HammingWindow,
 * BlackmanWindow) and EyeLike become constants computed at import; CenterCropPad is a slice
 * and a constant_pad per axis; OneHot compares the (wrapped) indices with a constant arange
 * and picks the off/on values (slices of values) with where; LRN is
 * x / (bias + alpha/size * window-sum of x^2)^beta with the channel window summed from slices
 * of the zero-padded squares. All need static shapes or constant inputs and say so otherwise.
 * The op table in onnx_import_ops.c points here. */
#include <math.h>
#include <string.h>

#include "../../runtime/checked.h"
#include "onnx_internal.h"

/* A new tensor of dtype and shape, its bytes charged to the import budget. */
static kl_status budget_tensor(kl_onnx_node_ctx *c, kl_dtype dtype, int rank,
                               const int64_t *shape, kl_tensor **out) {
  int64_t numel = 1;
  for (int d = 0; d < rank; d++)
    if (shape[d] < 0 || !kl_mul_i64(numel, shape[d], &numel))
      return kl_onnx_node_error(c, KL_ERR_LIMIT, "the constant output is too large");
  size_t bytes = (size_t)numel * kl_dtype_size(dtype);
  if (numel > INT64_MAX / 8 || bytes > c->imp->budget)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "the constant output is too large");
  c->imp->budget -= bytes;
  return kl_tensor_create(dtype, rank, shape, out);
}

/* ---- window functions (opset 17) --------------------------------------------------------- */

typedef enum window_kind { WINDOW_HANN, WINDOW_HAMMING, WINDOW_BLACKMAN } window_kind;

static kl_status map_window(kl_onnx_node_ctx *c, window_kind kind) {
  int64_t size;
  int n;
  KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 0, &size, 1, &n));
  if (n != 1 || size < 0)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "size must be one non-negative "
                              "integer");
  kl_dtype dtype;
  KL_RETURN_IF_ERROR(kl_onnx_dtype_from_onnx(
      (int32_t)kl_onnx_attr_int(c, "output_datatype", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT),
      &dtype));
  bool periodic = kl_onnx_attr_int(c, "periodic", 1) != 0;
  double denom = periodic ? (double)size : (double)size - 1;
  kl_tensor *t;
  KL_RETURN_IF_ERROR(budget_tensor(c, dtype, 1, &size, &t));
  for (int64_t i = 0; i < size; i++) {
    double a = denom > 0 ? 2.0 * M_PI * (double)i / denom : 0, v;
    switch (kind) {
    case WINDOW_HANN: v = 0.5 - 0.5 * cos(a); break;
    case WINDOW_HAMMING: v = 25.0 / 46.0 - (1.0 - 25.0 / 46.0) * cos(a); break;
    default: v = 0.42 - 0.5 * cos(a) + 0.08 * cos(2 * a); break;
    }
    kl_dtype_store_f64(dtype, t->data, (size_t)i, v);
  }
  c->out[0] = kl_onnx_emit_constant(c, t);
  kl_tensor_release(t);
  return NULL;
}

kl_status kl_onnx_map_hann_window(kl_onnx_node_ctx *c) { return map_window(c, WINDOW_HANN); }
kl_status kl_onnx_map_hamming_window(kl_onnx_node_ctx *c) {
  return map_window(c, WINDOW_HAMMING);
}
kl_status kl_onnx_map_blackman_window(kl_onnx_node_ctx *c) {
  return map_window(c, WINDOW_BLACKMAN);
}

/* ---- EyeLike ---------------------------------------------------------------------------- */

/* Ones where col - row == k over the input's static 2-D shape. */
kl_status kl_onnx_map_eye_like(kl_onnx_node_ctx *c) {
  kl_ir_value *x;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  int64_t shape[KL_MAX_RANK];
  if (x->type.rank != 2)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "input must be 2-D, not rank %d",
                              x->type.rank);
  KL_RETURN_IF_ERROR(kl_onnx_need_static(c, x, shape));
  kl_dtype dtype = x->type.dtype;
  if (kl_onnx_attr(c->node, "dtype"))
    KL_RETURN_IF_ERROR(kl_onnx_dtype_from_onnx((int32_t)kl_onnx_attr_int(c, "dtype", 1),
                                               &dtype));
  int64_t k = kl_onnx_attr_int(c, "k", 0);
  kl_tensor *t;
  KL_RETURN_IF_ERROR(budget_tensor(c, dtype, 2, shape, &t));
  for (int64_t i = 0; i < shape[0]; i++)
    for (int64_t j = 0; j < shape[1]; j++)
      kl_dtype_store_f64(dtype, t->data, (size_t)(i * shape[1] + j), j - i == k ? 1.0 : 0.0);
  c->out[0] = kl_onnx_emit_constant(c, t);
  kl_tensor_release(t);
  return NULL;
}

/* ---- CenterCropPad (opset 18) ----------------------------------------------------------- */

/* Per axis: a centered slice where the target is smaller, a centered zero pad where larger
 * (the extra element of an odd difference goes to the end in both). */
kl_status kl_onnx_map_center_crop_pad(kl_onnx_node_ctx *c) {
  kl_ir_value *x;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  int rank = x->type.rank, n_shape, n_axes;
  int64_t target[KL_MAX_RANK], shape[KL_MAX_RANK], axes[KL_MAX_RANK];
  KL_RETURN_IF_ERROR(kl_onnx_need_static(c, x, shape));
  KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 1, target, KL_MAX_RANK, &n_shape));
  const int64_t *ax = kl_onnx_attr_ints(c, "axes", &n_axes);
  if (n_axes < 0) {
    n_axes = rank;
    for (int d = 0; d < rank; d++)
      axes[d] = d;
  } else {
    if (n_axes > KL_MAX_RANK)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "too many axes");
    memcpy(axes, ax, (size_t)n_axes * sizeof *axes);
  }
  if (n_shape != n_axes)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "shape has %d values for %d axes",
                              n_shape, n_axes);
  int64_t pad[2 * KL_MAX_RANK] = {0};
  bool padded = false;
  for (int i = 0; i < n_axes; i++) {
    int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (a < 0 || a >= rank || target[i] < 0)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "axis %lld or its size %lld is "
                                "out of range", (long long)axes[i], (long long)target[i]);
    int64_t dim = shape[a];
    if (target[i] < dim) {
      int64_t start = (dim - target[i]) / 2;
      KL_RETURN_IF_ERROR(kl_onnx_slice(c, x, a, start, start + target[i], 1, &x));
    } else if (target[i] > dim) {
      int64_t before = (target[i] - dim) / 2, pr = rank - 1 - a;
      pad[2 * pr] = before;
      pad[2 * pr + 1] = target[i] - dim - before;
      padded = true;
    }
  }
  if (!padded) {
    c->out[0] = x;
    return NULL;
  }
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CONSTANT_PAD, &x, 1, &node));
  kl_ir_node_set_ints(node, "pad", pad, 2 * rank);
  return kl_onnx_finish(c, node, &c->out[0]);
}

/* ---- OneHot ----------------------------------------------------------------------------- */

/* where(unsqueeze(wrap(indices), axis) == arange(depth), on, off); indices outside
 * [-depth, depth) match nothing and give off everywhere, as ONNX specifies. */
kl_status kl_onnx_map_one_hot(kl_onnx_node_ctx *c) {
  kl_ir_value *idx, *vals = kl_onnx_input(c, 2), *neg, *wrapped, *mask;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &idx));
  double depth_f;
  KL_RETURN_IF_ERROR(kl_onnx_const_scalar(c, 1, -1, &depth_f));
  if (!vals || vals->type.rank != 1 || !kl_ir_dim_is_static(vals->type.dims[0]) ||
      vals->type.dims[0].size != 2)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "values must be a 1-D tensor of two "
                              "elements [off, on]");
  if (!(depth_f >= 1) || depth_f > (double)INT32_MAX)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "depth must be a positive constant");
  int64_t depth = (int64_t)depth_f;
  int out_rank = idx->type.rank + 1;
  int64_t axis = kl_onnx_attr_int(c, "axis", -1);
  if (axis < 0)
    axis += out_rank;
  if (axis < 0 || axis >= out_rank || out_rank > KL_MAX_RANK)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "axis or rank out of range");
  int64_t shape[KL_MAX_RANK];
  for (int d = 0; d < out_rank; d++)
    shape[d] = d == axis ? depth : 1;
  kl_tensor *range;
  KL_RETURN_IF_ERROR(budget_tensor(c, KL_I64, out_rank, shape, &range));
  for (int64_t i = 0; i < depth; i++)
    ((int64_t *)range->data)[i] = i;
  kl_ir_value *r = kl_onnx_emit_constant(c, range);
  kl_tensor_release(range);
  KL_RETURN_IF_ERROR(kl_onnx_cast(c, idx, KL_I64, &idx));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_LT, idx, kl_onnx_scalar_const(c, KL_I64, 0), &neg));
  KL_RETURN_IF_ERROR(
      kl_onnx_emit2(c, KL_OP_ADD, idx, kl_onnx_scalar_const(c, KL_I64, (double)depth), &wrapped));
  KL_RETURN_IF_ERROR(kl_onnx_where(c, neg, wrapped, idx, &idx));
  KL_RETURN_IF_ERROR(kl_onnx_unsqueeze(c, idx, axis, &mask));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_EQ, mask, r, &mask));
  kl_ir_value *off, *on; /* shape [1], broadcast against the mask */
  KL_RETURN_IF_ERROR(kl_onnx_slice(c, vals, 0, 0, 1, 1, &off));
  KL_RETURN_IF_ERROR(kl_onnx_slice(c, vals, 0, 1, 2, 1, &on));
  return kl_onnx_where(c, mask, on, off, &c->out[0]);
}

/* ---- LRN -------------------------------------------------------------------------------- */

/* x / (bias + alpha/size * sum_{window} x^2)^beta, the window over channels (dim 1) from
 * c - floor((size-1)/2) to c + ceil((size-1)/2), zero outside: the squares padded along dim 1
 * and size slices of length C added. Needs a static channel count. */
kl_status kl_onnx_map_lrn(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *sq, *padded, *sum = NULL, *den;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  int rank = x->type.rank;
  if (rank < 3 || !kl_ir_dim_is_static(x->type.dims[1]))
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "input must have rank >= 3 and a static "
                              "channel dim");
  int64_t size = kl_onnx_attr_int(c, "size", 0), ch = x->type.dims[1].size;
  if (!kl_onnx_attr(c->node, "size"))
    return kl_onnx_missing_attr(c, "size");
  if (size < 1 || size > 4096)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "size %lld is out of range",
                              (long long)size);
  double alpha = kl_onnx_attr_float(c, "alpha", 1e-4), beta = kl_onnx_attr_float(c, "beta", 0.75),
         bias = kl_onnx_attr_float(c, "bias", 1.0);
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, x, x, &sq));
  int64_t pad[2 * KL_MAX_RANK] = {0};
  int pr = rank - 2; /* pair of dim 1, counting from the last dim */
  pad[2 * pr] = (size - 1) / 2;
  pad[2 * pr + 1] = size / 2;
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CONSTANT_PAD, &sq, 1, &node));
  kl_ir_node_set_ints(node, "pad", pad, 2 * (pr + 1));
  KL_RETURN_IF_ERROR(kl_onnx_finish(c, node, &padded));
  for (int64_t i = 0; i < size; i++) {
    kl_ir_value *s;
    KL_RETURN_IF_ERROR(kl_onnx_slice(c, padded, 1, i, i + ch, 1, &s));
    if (sum)
      KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, sum, s, &s));
    sum = s;
  }
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, sum, kl_onnx_like(c, x, alpha / (double)size),
                                   &den));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, den, kl_onnx_like(c, x, bias), &den));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_POW, den, kl_onnx_like(c, x, beta), &den));
  return kl_onnx_emit2(c, KL_OP_DIV, x, den, &c->out[0]);
}
