/* The eager ops: one function per row of ir/ops.def, each turning its C arguments into the
 * node's inputs and attributes and handing them to kl_fe_call1 (eager.c).
 *
 * Attributes follow ir/op_params.h. Where an argument means "the default", the attribute is
 * left out rather than written with the default value, so a traced graph reads like the one
 * PyTorch would record (conv2d with no stride, clamp with no max, a full reduction with no dim).
 * Arguments the op cannot see (a count, a NULL list) are checked here and reported naming the
 * function; everything about shapes is left to the op's shape function. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend_internal.h"

/* ---- attribute builders -------------------------------------------------------------- */

static kl_ir_attr attr_int(const char *name, int64_t v) {
  return (kl_ir_attr){.name = name, .kind = KL_ATTR_INT, .u.i = v};
}

static kl_ir_attr attr_float(const char *name, double v) {
  return (kl_ir_attr){.name = name, .kind = KL_ATTR_FLOAT, .u.f = v};
}

static kl_ir_attr attr_string(const char *name, const char *v) {
  return (kl_ir_attr){.name = name, .kind = KL_ATTR_STRING, .u.s = v};
}

/* The attribute copies the array (kl_ir_node_set_attr is deep), so v may be a local. */
static kl_ir_attr attr_ints(const char *name, const int64_t *v, int n) {
  return (kl_ir_attr){.name = name, .kind = KL_ATTR_INTS, .n = n, .u.is = (int64_t *)v};
}

static kl_ir_attr attr_dtype(const char *name, kl_dtype v) {
  return (kl_ir_attr){.name = name, .kind = KL_ATTR_DTYPE, .u.dtype = v};
}

/* Reports a bad list argument (negative count, or NULL values for a positive count). */
static bool check_list(const char *fn, const char *what, int n, const void *values) {
  if (n >= 0 && (n == 0 || values))
    return true;
  kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: %s has count %d and values %s", fn,
                                what, n, values ? "given" : "NULL"));
  return false;
}

static bool check_max(const char *fn, const char *what, int n, int max) {
  if (n <= max)
    return true;
  kl_fe_report(kl_status_create(KL_ERR_LIMIT, "%s: %s has %d entries, more than %d", fn, what, n,
                                max));
  return false;
}

#define COUNT(array) ((int)(sizeof(array) / sizeof(array)[0]))
#define CALL(op, ins, attrs) kl_fe_call1((op), (ins), COUNT(ins), (attrs), COUNT(attrs))
#define CALL_NOATTR(op, ins) kl_fe_call1((op), (ins), COUNT(ins), NULL, 0)

/* ---- matrix products and convolution ------------------------------------------------- */

kl_tensor *kl_linear(kl_tensor *x, kl_tensor *weight, kl_tensor *bias) {
  kl_tensor *in[3] = {x, weight, bias};
  return kl_fe_call1(KL_OP_LINEAR, in, bias ? 3 : 2, NULL, 0);
}

kl_tensor *kl_matmul(kl_tensor *a, kl_tensor *b) {
  kl_tensor *in[] = {a, b};
  return CALL_NOATTR(KL_OP_MATMUL, in);
}

/* A pair of options where 0 means dflt: left out when both are 0, else zeros become dflt. */
static bool pair_attr(const char *name, const int64_t v[2], int64_t dflt, kl_ir_attr *attrs,
                      int *n_attrs, int64_t out_pair[2]) {
  if (v[0] == 0 && v[1] == 0)
    return false;
  out_pair[0] = v[0] ? v[0] : dflt;
  out_pair[1] = v[1] ? v[1] : dflt;
  attrs[(*n_attrs)++] = attr_ints(name, out_pair, 2);
  return true;
}

kl_tensor *kl_conv2d(kl_tensor *x, kl_tensor *weight, kl_tensor *bias, const kl_conv2d_opts *opts) {
  kl_tensor *in[3] = {x, weight, bias};
  kl_ir_attr attrs[4];
  int n_attrs = 0;
  int64_t stride[2], padding[2], dilation[2];
  if (opts) {
    pair_attr("stride", opts->stride, 1, attrs, &n_attrs, stride);
    pair_attr("padding", opts->padding, 0, attrs, &n_attrs, padding);
    pair_attr("dilation", opts->dilation, 1, attrs, &n_attrs, dilation);
    if (opts->groups)
      attrs[n_attrs++] = attr_int("groups", opts->groups);
  }
  return kl_fe_call1(KL_OP_CONV2D, in, bias ? 3 : 2, attrs, n_attrs);
}

/* ---- normalization ------------------------------------------------------------------- */

/* A new tensor filled with value, owned by the caller (not scoped). */
static kl_tensor *filled(const char *fn, kl_dtype dtype, int rank, const int64_t *shape,
                         double value) {
  kl_tensor *out;
  kl_status s = kl_tensor_create(dtype, rank, shape, &out);
  if (s) {
    kl_fe_report(kl_status_annotate(s, "%s", fn));
    return NULL;
  }
  for (int64_t i = 0; i < out->numel; i++)
    kl_dtype_store_f64(out->dtype, out->data, (size_t)i, value);
  return out;
}

/* aten::batch_norm takes all five inputs; a NULL weight or bias (and only those) stands for
 * ones or zeros over the channels, as PyTorch's F.batch_norm(weight=None) does. */
kl_tensor *kl_batch_norm(kl_tensor *x, kl_tensor *weight, kl_tensor *bias, kl_tensor *running_mean,
                         kl_tensor *running_var, double eps) {
  if (!x || !running_mean || !running_var)
    return NULL;
  const kl_tensor *mean = running_mean;
  kl_tensor *own_weight = weight ? NULL : filled("kl_batch_norm", mean->dtype, mean->rank,
                                                 mean->shape, 1.0);
  kl_tensor *own_bias = bias ? NULL : filled("kl_batch_norm", mean->dtype, mean->rank,
                                             mean->shape, 0.0);
  kl_tensor *in[] = {x, weight ? weight : own_weight, bias ? bias : own_bias, running_mean,
                     running_var};
  kl_ir_attr attrs[] = {attr_float("eps", eps)};
  kl_tensor *y = CALL(KL_OP_BATCH_NORM, in, attrs);
  kl_tensor_release(own_weight);
  kl_tensor_release(own_bias);
  return y;
}

/* A NULL weight with a bias becomes ones (the op's inputs are positional). */
kl_tensor *kl_layer_norm(kl_tensor *x, int n_dims, kl_tensor *weight, kl_tensor *bias, double eps) {
  if (!x)
    return NULL;
  if (n_dims < 1 || n_dims > x->rank) {
    char type[256];
    kl_ir_type xt = kl_ir_type_of_tensor(x);
    kl_ir_type_format(NULL, &xt, type, sizeof type);
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "kl_layer_norm: n_dims %d must be in 1..%d for x %s", n_dims,
                                  x->rank, type));
    return NULL;
  }
  const int64_t *normalized_shape = &x->shape[x->rank - n_dims];
  kl_tensor *own_weight = NULL;
  if (!weight && bias)
    own_weight = filled("kl_layer_norm", bias->dtype, n_dims, normalized_shape, 1.0);
  kl_tensor *in[3] = {x, weight ? weight : own_weight, bias};
  int n_in = bias ? 3 : (weight ? 2 : 1);
  kl_ir_attr attrs[] = {attr_ints("normalized_shape", normalized_shape, n_dims),
                        attr_float("eps", eps)};
  kl_tensor *y = kl_fe_call1(KL_OP_LAYER_NORM, in, n_in, attrs, 2);
  kl_tensor_release(own_weight);
  return y;
}

kl_tensor *kl_softmax(kl_tensor *x, int64_t dim) {
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_int("dim", dim)};
  return CALL(KL_OP_SOFTMAX, in, attrs);
}

kl_tensor *kl_log_softmax(kl_tensor *x, int64_t dim) {
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_int("dim", dim)};
  return CALL(KL_OP_LOG_SOFTMAX, in, attrs);
}

/* Attributes at their defaults are left out, as elsewhere: no scale when scale <= 0, no
 * is_causal unless set. */
kl_tensor *kl_scaled_dot_product_attention(kl_tensor *q, kl_tensor *k, kl_tensor *v,
                                           kl_tensor *mask, double scale, bool is_causal) {
  kl_tensor *in[4] = {q, k, v, mask};
  kl_ir_attr attrs[2];
  int n_attrs = 0;
  if (scale > 0)
    attrs[n_attrs++] = attr_float("scale", scale);
  if (is_causal)
    attrs[n_attrs++] = attr_int("is_causal", 1);
  return kl_fe_call1(KL_OP_ATTENTION, in, mask ? 4 : 3, attrs, n_attrs);
}

/* ---- pooling ------------------------------------------------------------------------- */

static kl_tensor *pool2d(const char *fn, kl_op op, kl_tensor *x, const kl_pool2d_opts *opts) {
  if (!x)
    return NULL;
  if (!opts) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "%s: opts is NULL, but kernel_size is required", fn));
    return NULL;
  }
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[6];
  int n_attrs = 0;
  int64_t stride[2], padding[2], dilation[2];
  attrs[n_attrs++] = attr_ints("kernel_size", opts->kernel_size, 2);
  if (opts->stride[0] || opts->stride[1]) {
    stride[0] = opts->stride[0] ? opts->stride[0] : opts->kernel_size[0];
    stride[1] = opts->stride[1] ? opts->stride[1] : opts->kernel_size[1];
    attrs[n_attrs++] = attr_ints("stride", stride, 2);
  }
  pair_attr("padding", opts->padding, 0, attrs, &n_attrs, padding);
  if (op == KL_OP_MAX_POOL2D)
    pair_attr("dilation", opts->dilation, 1, attrs, &n_attrs, dilation);
  if (opts->ceil_mode)
    attrs[n_attrs++] = attr_int("ceil_mode", 1);
  if (op == KL_OP_AVG_POOL2D && opts->exclude_pad)
    attrs[n_attrs++] = attr_int("count_include_pad", 0);
  return kl_fe_call1(op, in, 1, attrs, n_attrs);
}

kl_tensor *kl_max_pool2d(kl_tensor *x, const kl_pool2d_opts *opts) {
  return pool2d("kl_max_pool2d", KL_OP_MAX_POOL2D, x, opts);
}

kl_tensor *kl_avg_pool2d(kl_tensor *x, const kl_pool2d_opts *opts) {
  return pool2d("kl_avg_pool2d", KL_OP_AVG_POOL2D, x, opts);
}

kl_tensor *kl_adaptive_avg_pool2d(kl_tensor *x, int64_t out_h, int64_t out_w) {
  kl_tensor *in[] = {x};
  int64_t size[2] = {out_h, out_w};
  kl_ir_attr attrs[] = {attr_ints("output_size", size, 2)};
  return CALL(KL_OP_ADAPTIVE_AVG_POOL2D, in, attrs);
}

/* ---- elementwise, one input ---------------------------------------------------------- */

static kl_tensor *unary(kl_op op, kl_tensor *x) {
  kl_tensor *in[] = {x};
  return CALL_NOATTR(op, in);
}

kl_tensor *kl_relu(kl_tensor *x) { return unary(KL_OP_RELU, x); }
kl_tensor *kl_relu6(kl_tensor *x) { return unary(KL_OP_RELU6, x); }

kl_tensor *kl_hardtanh(kl_tensor *x, double min_val, double max_val) {
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_float("min_val", min_val), attr_float("max_val", max_val)};
  return CALL(KL_OP_HARDTANH, in, attrs);
}

kl_tensor *kl_clamp(kl_tensor *x, double min, double max) {
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[2];
  int n_attrs = 0;
  if (!isinf(min))
    attrs[n_attrs++] = attr_float("min", min);
  if (!isinf(max))
    attrs[n_attrs++] = attr_float("max", max);
  return kl_fe_call1(KL_OP_CLAMP, in, 1, attrs, n_attrs);
}

kl_tensor *kl_leaky_relu(kl_tensor *x, double negative_slope) {
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_float("negative_slope", negative_slope)};
  return CALL(KL_OP_LEAKY_RELU, in, attrs);
}

kl_tensor *kl_sigmoid(kl_tensor *x) { return unary(KL_OP_SIGMOID, x); }
kl_tensor *kl_hardsigmoid(kl_tensor *x) { return unary(KL_OP_HARDSIGMOID, x); }
kl_tensor *kl_hardswish(kl_tensor *x) { return unary(KL_OP_HARDSWISH, x); }
kl_tensor *kl_tanh(kl_tensor *x) { return unary(KL_OP_TANH, x); }

kl_tensor *kl_gelu(kl_tensor *x, bool tanh_approximation) {
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_string("approximate", "tanh")};
  return kl_fe_call1(KL_OP_GELU, in, 1, attrs, tanh_approximation ? 1 : 0);
}

kl_tensor *kl_silu(kl_tensor *x) { return unary(KL_OP_SILU, x); }
kl_tensor *kl_sqrt(kl_tensor *x) { return unary(KL_OP_SQRT, x); }
kl_tensor *kl_rsqrt(kl_tensor *x) { return unary(KL_OP_RSQRT, x); }
kl_tensor *kl_reciprocal(kl_tensor *x) { return unary(KL_OP_RECIPROCAL, x); }
kl_tensor *kl_exp(kl_tensor *x) { return unary(KL_OP_EXP, x); }
kl_tensor *kl_log(kl_tensor *x) { return unary(KL_OP_LOG, x); }
kl_tensor *kl_erf(kl_tensor *x) { return unary(KL_OP_ERF, x); }
kl_tensor *kl_neg(kl_tensor *x) { return unary(KL_OP_NEG, x); }
kl_tensor *kl_abs(kl_tensor *x) { return unary(KL_OP_ABS, x); }

kl_tensor *kl_dropout(kl_tensor *x, double p) {
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_float("p", p)};
  return CALL(KL_OP_DROPOUT, in, attrs);
}

kl_tensor *kl_to(kl_tensor *x, kl_dtype dtype) {
  if (x && !kl_dtype_is_valid((int)dtype)) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_to: %d is not a dtype", (int)dtype));
    return NULL;
  }
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_dtype("dtype", dtype)};
  return CALL(KL_OP_CAST, in, attrs);
}

/* ---- elementwise with broadcasting --------------------------------------------------- */

static kl_tensor *binary(kl_op op, kl_tensor *a, kl_tensor *b) {
  kl_tensor *in[] = {a, b};
  return CALL_NOATTR(op, in);
}

kl_tensor *kl_add(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_ADD, a, b); }
kl_tensor *kl_sub(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_SUB, a, b); }
kl_tensor *kl_mul(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_MUL, a, b); }
kl_tensor *kl_div(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_DIV, a, b); }
kl_tensor *kl_pow(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_POW, a, b); }
kl_tensor *kl_maximum(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_MAXIMUM, a, b); }
kl_tensor *kl_minimum(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_MINIMUM, a, b); }
kl_tensor *kl_eq(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_EQ, a, b); }
kl_tensor *kl_ne(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_NE, a, b); }
kl_tensor *kl_lt(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_LT, a, b); }
kl_tensor *kl_le(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_LE, a, b); }
kl_tensor *kl_gt(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_GT, a, b); }
kl_tensor *kl_ge(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_GE, a, b); }

kl_tensor *kl_where(kl_tensor *cond, kl_tensor *a, kl_tensor *b) {
  kl_tensor *in[] = {cond, a, b};
  return CALL_NOATTR(KL_OP_WHERE, in);
}

/* ---- data movement ------------------------------------------------------------------- */

/* One ints attribute from a caller's list, checked first. */
static kl_tensor *with_ints(const char *fn, kl_op op, kl_tensor *x, const char *name, int n,
                            const int64_t *values) {
  if (!x)
    return NULL;
  if (!check_list(fn, name, n, values) || !check_max(fn, name, n, KL_MAX_RANK))
    return NULL;
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_ints(name, values, n)};
  return CALL(op, in, attrs);
}

kl_tensor *kl_reshape(kl_tensor *x, int rank, const int64_t *shape) {
  return with_ints("kl_reshape", KL_OP_RESHAPE, x, "shape", rank, shape);
}

kl_tensor *kl_flatten(kl_tensor *x, int64_t start_dim, int64_t end_dim) {
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_int("start_dim", start_dim), attr_int("end_dim", end_dim)};
  return CALL(KL_OP_FLATTEN, in, attrs);
}

kl_tensor *kl_squeeze(kl_tensor *x, int n_dims, const int64_t *dims) {
  if (n_dims == 0)
    return unary(KL_OP_SQUEEZE, x);
  return with_ints("kl_squeeze", KL_OP_SQUEEZE, x, "dim", n_dims, dims);
}

kl_tensor *kl_unsqueeze(kl_tensor *x, int64_t dim) {
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_int("dim", dim)};
  return CALL(KL_OP_UNSQUEEZE, in, attrs);
}

kl_tensor *kl_transpose(kl_tensor *x, int64_t dim0, int64_t dim1) {
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_int("dim0", dim0), attr_int("dim1", dim1)};
  return CALL(KL_OP_TRANSPOSE, in, attrs);
}

kl_tensor *kl_permute(kl_tensor *x, int n_dims, const int64_t *dims) {
  return with_ints("kl_permute", KL_OP_PERMUTE, x, "dims", n_dims, dims);
}

kl_tensor *kl_expand(kl_tensor *x, int rank, const int64_t *sizes) {
  return with_ints("kl_expand", KL_OP_EXPAND, x, "size", rank, sizes);
}

kl_tensor *kl_cat(int n, kl_tensor *const *xs, int64_t dim) {
  if (n < 1 || !xs) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "kl_cat: needs at least one tensor, got %d%s", n,
                                  xs ? "" : " (xs is NULL)"));
    return NULL;
  }
  kl_ir_attr attrs[] = {attr_int("dim", dim)};
  return kl_fe_call1(KL_OP_CAT, xs, n, attrs, 1);
}

bool kl_split(kl_tensor *x, int n, const int64_t *sizes, int64_t dim, kl_tensor **out_pieces) {
  for (int i = 0; out_pieces && i < n; i++)
    out_pieces[i] = NULL;
  if (!x)
    return false;
  if (n < 1 || !sizes || !out_pieces) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "kl_split: needs n >= 1 sizes and an output array, got n %d%s%s",
                                  n, sizes ? "" : ", sizes NULL",
                                  out_pieces ? "" : ", out_pieces NULL"));
    return false;
  }
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_ints("sizes", sizes, n), attr_int("dim", dim)};
  kl_status s = kl_fe_call(KL_OP_SPLIT, in, 1, attrs, 2, out_pieces, n);
  if (s) {
    kl_fe_report(s);
    return false;
  }
  for (int i = 0; i < n; i++)
    kl_fe_own(out_pieces[i]);
  return true;
}

kl_tensor *kl_slice(kl_tensor *x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_int("dim", dim), attr_int("start", start), attr_int("end", end),
                        attr_int("step", step)};
  return CALL(KL_OP_SLICE, in, attrs);
}

kl_tensor *kl_constant_pad(kl_tensor *x, int n_pad, const int64_t *pad, double value) {
  if (!x)
    return NULL;
  if (!check_list("kl_constant_pad", "pad", n_pad, pad) ||
      !check_max("kl_constant_pad", "pad", n_pad, 2 * KL_MAX_RANK))
    return NULL;
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[] = {attr_ints("pad", pad, n_pad), attr_float("value", value)};
  return CALL(KL_OP_CONSTANT_PAD, in, attrs);
}

kl_tensor *kl_embedding(kl_tensor *weight, kl_tensor *indices) {
  return binary(KL_OP_EMBEDDING, weight, indices);
}

kl_tensor *kl_index_select(kl_tensor *x, int64_t dim, kl_tensor *index) {
  kl_tensor *in[] = {x, index};
  kl_ir_attr attrs[] = {attr_int("dim", dim)};
  return CALL(KL_OP_INDEX_SELECT, in, attrs);
}

kl_tensor *kl_gather(kl_tensor *x, kl_tensor *indices, int64_t axis) {
  kl_tensor *in[] = {x, indices};
  kl_ir_attr attrs[] = {attr_int("axis", axis)};
  return CALL(KL_OP_GATHER, in, attrs);
}

/* ---- reductions ---------------------------------------------------------------------- */

static kl_tensor *reduce(const char *fn, kl_op op, kl_tensor *x, int n_dims, const int64_t *dims,
                         bool keepdim) {
  if (!x)
    return NULL;
  if (!check_list(fn, "dims", n_dims, dims) || !check_max(fn, "dims", n_dims, KL_MAX_RANK))
    return NULL;
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[2];
  int n_attrs = 0;
  if (n_dims > 0)
    attrs[n_attrs++] = attr_ints("dim", dims, n_dims);
  if (keepdim)
    attrs[n_attrs++] = attr_int("keepdim", 1);
  return kl_fe_call1(op, in, 1, attrs, n_attrs);
}

kl_tensor *kl_sum(kl_tensor *x, int n_dims, const int64_t *dims, bool keepdim) {
  return reduce("kl_sum", KL_OP_SUM, x, n_dims, dims, keepdim);
}

kl_tensor *kl_mean(kl_tensor *x, int n_dims, const int64_t *dims, bool keepdim) {
  return reduce("kl_mean", KL_OP_MEAN, x, n_dims, dims, keepdim);
}

kl_tensor *kl_amax(kl_tensor *x, int n_dims, const int64_t *dims, bool keepdim) {
  return reduce("kl_amax", KL_OP_AMAX, x, n_dims, dims, keepdim);
}

kl_tensor *kl_amin(kl_tensor *x, int n_dims, const int64_t *dims, bool keepdim) {
  return reduce("kl_amin", KL_OP_AMIN, x, n_dims, dims, keepdim);
}

/* ---- elementwise math (issue 4) ---- */

kl_tensor *kl_sin(kl_tensor *x) { return unary(KL_OP_SIN, x); }
kl_tensor *kl_cos(kl_tensor *x) { return unary(KL_OP_COS, x); }
kl_tensor *kl_tan(kl_tensor *x) { return unary(KL_OP_TAN, x); }
kl_tensor *kl_asin(kl_tensor *x) { return unary(KL_OP_ASIN, x); }
kl_tensor *kl_acos(kl_tensor *x) { return unary(KL_OP_ACOS, x); }
kl_tensor *kl_atan(kl_tensor *x) { return unary(KL_OP_ATAN, x); }
kl_tensor *kl_sinh(kl_tensor *x) { return unary(KL_OP_SINH, x); }
kl_tensor *kl_cosh(kl_tensor *x) { return unary(KL_OP_COSH, x); }
kl_tensor *kl_asinh(kl_tensor *x) { return unary(KL_OP_ASINH, x); }
kl_tensor *kl_acosh(kl_tensor *x) { return unary(KL_OP_ACOSH, x); }
kl_tensor *kl_atanh(kl_tensor *x) { return unary(KL_OP_ATANH, x); }
kl_tensor *kl_floor(kl_tensor *x) { return unary(KL_OP_FLOOR, x); }
kl_tensor *kl_ceil(kl_tensor *x) { return unary(KL_OP_CEIL, x); }
kl_tensor *kl_round(kl_tensor *x) { return unary(KL_OP_ROUND, x); }
kl_tensor *kl_sign(kl_tensor *x) { return unary(KL_OP_SIGN, x); }
kl_tensor *kl_remainder(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_REMAINDER, a, b); }
kl_tensor *kl_fmod(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_FMOD, a, b); }
kl_tensor *kl_bitwise_left_shift(kl_tensor *a, kl_tensor *b) {
  return binary(KL_OP_BITWISE_LEFT_SHIFT, a, b);
}
kl_tensor *kl_bitwise_right_shift(kl_tensor *a, kl_tensor *b) {
  return binary(KL_OP_BITWISE_RIGHT_SHIFT, a, b);
}

/* ---- bitwise (issue 4) ---- */
kl_tensor *kl_bitwise_and(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_BITWISE_AND, a, b); }
kl_tensor *kl_bitwise_or(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_BITWISE_OR, a, b); }
kl_tensor *kl_bitwise_xor(kl_tensor *a, kl_tensor *b) { return binary(KL_OP_BITWISE_XOR, a, b); }
kl_tensor *kl_bitwise_not(kl_tensor *x) { return unary(KL_OP_BITWISE_NOT, x); }

/* ---- reductions and indexing (issue 4) ----------------------------------------------- */

kl_tensor *kl_prod(kl_tensor *x, int n_dims, const int64_t *dims, bool keepdim) {
  return reduce("kl_prod", KL_OP_PROD, x, n_dims, dims, keepdim);
}

kl_tensor *kl_cumsum(kl_tensor *x, int64_t dim, bool exclusive, bool reverse) {
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[3] = {attr_int("dim", dim)};
  int n_attrs = 1;
  if (exclusive)
    attrs[n_attrs++] = attr_int("exclusive", 1);
  if (reverse)
    attrs[n_attrs++] = attr_int("reverse", 1);
  return kl_fe_call1(KL_OP_CUMSUM, in, 1, attrs, n_attrs);
}

kl_tensor *kl_scatter(kl_tensor *data, int64_t dim, kl_tensor *index, kl_tensor *src,
                      const char *reduce) {
  kl_tensor *in[] = {data, index, src};
  kl_ir_attr attrs[2] = {attr_int("dim", dim)};
  int n_attrs = 1;
  if (reduce && strcmp(reduce, "none"))
    attrs[n_attrs++] = attr_string("reduce", reduce);
  return kl_fe_call1(KL_OP_SCATTER, in, 3, attrs, n_attrs);
}

kl_tensor *kl_scatter_nd(kl_tensor *data, kl_tensor *indices, kl_tensor *updates,
                         const char *reduction) {
  kl_tensor *in[] = {data, indices, updates};
  kl_ir_attr attrs[1];
  int n_attrs = 0;
  if (reduction && strcmp(reduction, "none"))
    attrs[n_attrs++] = attr_string("reduction", reduction);
  return kl_fe_call1(KL_OP_SCATTER_ND, in, 3, attrs, n_attrs);
}

kl_tensor *kl_gather_nd(kl_tensor *data, kl_tensor *indices, int64_t batch_dims) {
  kl_tensor *in[] = {data, indices};
  kl_ir_attr attrs[1];
  int n_attrs = 0;
  if (batch_dims)
    attrs[n_attrs++] = attr_int("batch_dims", batch_dims);
  return kl_fe_call1(KL_OP_GATHER_ND, in, 2, attrs, n_attrs);
}

/* ---- resize and grid sample (issue 4) ------------------------------------------------ */

kl_tensor *kl_resize(kl_tensor *x, int n_sizes, const int64_t *sizes, const char *mode,
                     const char *coord) {
  if (!check_list("kl_resize", "sizes", n_sizes, sizes) ||
      !check_max("kl_resize", "sizes", n_sizes, KL_MAX_RANK))
    return NULL;
  kl_tensor *in[] = {x};
  kl_ir_attr attrs[3] = {attr_ints("size", sizes, n_sizes)};
  int n_attrs = 1;
  if (mode && strcmp(mode, "nearest"))
    attrs[n_attrs++] = attr_string("mode", mode);
  if (coord && strcmp(coord, "half_pixel"))
    attrs[n_attrs++] = attr_string("coordinate_transformation_mode", coord);
  return kl_fe_call1(KL_OP_RESIZE, in, 1, attrs, n_attrs);
}

kl_tensor *kl_grid_sample(kl_tensor *x, kl_tensor *grid, const char *mode,
                          const char *padding_mode, bool align_corners) {
  kl_tensor *in[] = {x, grid};
  kl_ir_attr attrs[3];
  int n_attrs = 0;
  if (mode && strcmp(mode, "linear"))
    attrs[n_attrs++] = attr_string("mode", mode);
  if (padding_mode && strcmp(padding_mode, "zeros"))
    attrs[n_attrs++] = attr_string("padding_mode", padding_mode);
  if (align_corners)
    attrs[n_attrs++] = attr_int("align_corners", 1);
  return kl_fe_call1(KL_OP_GRID_SAMPLE, in, 2, attrs, n_attrs);
}
