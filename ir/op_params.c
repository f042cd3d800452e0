/* Reading op attributes into kernel parameters: defaults, validation and normalization written
 * once, for the shape functions, the interpreter's kernel adapters and the code generators.
 * Every rule here is the documented one in ir/op_params.h; an attribute that breaks a rule is
 * an INVALID_ARGUMENT status naming the op and the attribute, never a silent clamp. Attribute
 * kinds are checked too: these run on graphs that may not have been verified yet. */
#include "op_params.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* "aten::conv2d: <message>" with code INVALID_ARGUMENT. */
static kl_status param_error(const kl_ir_node *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static kl_status param_error(const kl_ir_node *n, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: %s", kl_ir_node_op_name(n), msg);
}

/* The attribute `name` if present and of `kind`; NULL in *out when absent. A present attribute
 * of another kind is an error (the getters in graph.c would silently use the default). */
static kl_status find_attr(const kl_ir_node *n, const char *name, kl_ir_attr_kind kind,
                           const kl_ir_attr **out) {
  const kl_ir_attr *a = kl_ir_node_attr(n, name);
  if (a && a->kind != kind)
    return param_error(n, "attribute %s must be %s, not %s", name, kl_ir_attr_kind_name(kind),
                       kl_ir_attr_kind_name(a->kind));
  *out = a;
  return NULL;
}

static kl_status get_int(const kl_ir_node *n, const char *name, int64_t dflt, int64_t *out) {
  const kl_ir_attr *a = NULL;
  KL_RETURN_IF_ERROR(find_attr(n, name, KL_ATTR_INT, &a));
  *out = a ? a->u.i : dflt;
  return NULL;
}

static kl_status get_required_int(const kl_ir_node *n, const char *name, int64_t *out) {
  const kl_ir_attr *a = NULL;
  KL_RETURN_IF_ERROR(find_attr(n, name, KL_ATTR_INT, &a));
  if (!a)
    return param_error(n, "required attribute %s is missing", name);
  *out = a->u.i;
  return NULL;
}

static kl_status get_float(const kl_ir_node *n, const char *name, double dflt, double *out) {
  const kl_ir_attr *a = NULL;
  KL_RETURN_IF_ERROR(find_attr(n, name, KL_ATTR_FLOAT, &a));
  *out = a ? a->u.f : dflt;
  return NULL;
}

kl_status kl_ir_normalize_dim(const kl_ir_node *n, int64_t dim, int rank, int *out_dim) {
  if (rank <= 0)
    return param_error(n, "dim %lld given for a rank-0 tensor, which has no dims", (long long)dim);
  if (dim < -(int64_t)rank || dim >= rank)
    return param_error(n, "dim %lld is out of range for rank %d (expected %d..%d)",
                       (long long)dim, rank, -rank, rank - 1);
  *out_dim = (int)(dim < 0 ? dim + rank : dim);
  return NULL;
}

/* Reads an ints attribute of exactly two values, each >= min, into out (dflt when absent). An
 * empty list means the default when allow_empty is set (TorchScript prints stride=[] for
 * pooling's "same as kernel_size"). */
static kl_status get_pair(const kl_ir_node *n, const char *name, const int64_t dflt[2],
                          int64_t min, bool allow_empty, int64_t out[2]) {
  const kl_ir_attr *a = NULL;
  KL_RETURN_IF_ERROR(find_attr(n, name, KL_ATTR_INTS, &a));
  if (!a || (allow_empty && a->n == 0)) {
    if (!dflt)
      return param_error(n, "required attribute %s is missing", name);
    out[0] = dflt[0];
    out[1] = dflt[1];
    return NULL;
  }
  if (a->n != 2)
    return param_error(n, "attribute %s must have 2 values, got %d", name, a->n);
  for (int i = 0; i < 2; i++) {
    if (a->u.is[i] < min)
      return param_error(n, "attribute %s[%d] = %lld must be >= %lld", name, i,
                         (long long)a->u.is[i], (long long)min);
    out[i] = a->u.is[i];
  }
  return NULL;
}

/* padding: absent -> zeros; [h, w] -> symmetric; [top, left, bottom, right]; all >= 0. */
static kl_status get_padding(const kl_ir_node *n, int64_t out[4]) {
  const kl_ir_attr *a = NULL;
  KL_RETURN_IF_ERROR(find_attr(n, "padding", KL_ATTR_INTS, &a));
  memset(out, 0, 4 * sizeof *out);
  if (!a)
    return NULL;
  if (a->n != 2 && a->n != 4)
    return param_error(n, "attribute padding must have 2 values (h, w) or 4 (top, left, bottom, "
                          "right), got %d", a->n);
  for (int i = 0; i < a->n; i++)
    if (a->u.is[i] < 0)
      return param_error(n, "attribute padding[%d] = %lld must be >= 0", i,
                         (long long)a->u.is[i]);
  if (a->n == 2) {
    out[0] = out[2] = a->u.is[0];
    out[1] = out[3] = a->u.is[1];
  } else {
    memcpy(out, a->u.is, 4 * sizeof *out);
  }
  return NULL;
}

static const int64_t ones2[2] = {1, 1};

kl_status kl_ir_conv2d_params(const kl_ir_node *n, kl_rt_conv2d_params *out) {
  if (n->op != KL_OP_CONV2D)
    return param_error(n, "not a convolution");
  KL_RETURN_IF_ERROR(get_pair(n, "stride", ones2, 1, false, out->stride));
  KL_RETURN_IF_ERROR(get_padding(n, out->pad));
  KL_RETURN_IF_ERROR(get_pair(n, "dilation", ones2, 1, false, out->dilation));
  KL_RETURN_IF_ERROR(get_int(n, "groups", 1, &out->groups));
  if (out->groups < 1)
    return param_error(n, "attribute groups = %lld must be >= 1", (long long)out->groups);
  return NULL;
}

kl_status kl_ir_pool2d_params(const kl_ir_node *n, kl_rt_pool2d_params *out, bool *out_ceil_mode) {
  bool is_max = n->op == KL_OP_MAX_POOL2D;
  if (!is_max && n->op != KL_OP_AVG_POOL2D)
    return param_error(n, "not a 2-D max or average pooling");
  KL_RETURN_IF_ERROR(get_pair(n, "kernel_size", NULL, 1, false, out->kernel));
  KL_RETURN_IF_ERROR(get_pair(n, "stride", out->kernel, 1, true, out->stride));
  KL_RETURN_IF_ERROR(get_padding(n, out->pad));
  if (is_max) {
    KL_RETURN_IF_ERROR(get_pair(n, "dilation", ones2, 1, false, out->dilation));
  } else {
    out->dilation[0] = out->dilation[1] = 1;
  }
  /* PyTorch wants pad <= kernel / 2; ONNX allows more (issue 4: test_averagepool_2d_pads). What
   * the kernels need is that no window lies wholly in padding: pad < the dilated kernel. */
  for (int i = 0; i < 4; i++) {
    int64_t k = out->kernel[i % 2], d = out->dilation[i % 2];
    if (out->pad[i] > 0 && (out->pad[i] - 1) / d >= k - 1) /* pad > (k - 1) * d, unoverflowed */
      return param_error(n, "padding %lld is not less than the kernel size %lld (dilated), so a "
                         "window would lie wholly in padding", (long long)out->pad[i],
                         (long long)k);
  }
  int64_t ceil_mode = 0, count_include_pad = 1;
  KL_RETURN_IF_ERROR(get_int(n, "ceil_mode", 0, &ceil_mode));
  if (!is_max)
    KL_RETURN_IF_ERROR(get_int(n, "count_include_pad", 1, &count_include_pad));
  out->count_include_pad = !is_max && count_include_pad != 0;
  if (out_ceil_mode)
    *out_ceil_mode = ceil_mode != 0;
  return NULL;
}

kl_status kl_ir_unary_params(const kl_ir_node *n, kl_rt_unary_op *out_op, double *out_a,
                             double *out_b) {
  kl_rt_unary_op op;
  double a = 0, b = 0;
  switch (n->op) {
  case KL_OP_RELU: op = KL_UNARY_RELU; break;
  case KL_OP_RELU6: op = KL_UNARY_CLAMP, a = 0, b = 6; break;
  case KL_OP_HARDTANH:
    op = KL_UNARY_CLAMP;
    KL_RETURN_IF_ERROR(get_float(n, "min_val", -1.0, &a));
    KL_RETURN_IF_ERROR(get_float(n, "max_val", 1.0, &b));
    if (!(a <= b))
      return param_error(n, "attribute min_val = %g must not be greater than max_val = %g", a, b);
    break;
  case KL_OP_CLAMP:
    /* min > max is allowed and gives max everywhere, as torch.clamp does. */
    op = KL_UNARY_CLAMP;
    KL_RETURN_IF_ERROR(get_float(n, "min", -INFINITY, &a));
    KL_RETURN_IF_ERROR(get_float(n, "max", INFINITY, &b));
    if (isnan(a) || isnan(b))
      return param_error(n, "attributes min and max must not be NaN");
    break;
  case KL_OP_LEAKY_RELU:
    op = KL_UNARY_LEAKY_RELU;
    KL_RETURN_IF_ERROR(get_float(n, "negative_slope", 0.01, &a));
    break;
  case KL_OP_SIGMOID: op = KL_UNARY_SIGMOID; break;
  case KL_OP_HARDSIGMOID: op = KL_UNARY_HARDSIGMOID; break;
  case KL_OP_HARDSWISH: op = KL_UNARY_HARDSWISH; break;
  case KL_OP_TANH: op = KL_UNARY_TANH; break;
  case KL_OP_GELU: {
    const kl_ir_attr *approx = NULL;
    KL_RETURN_IF_ERROR(find_attr(n, "approximate", KL_ATTR_STRING, &approx));
    const char *s = approx ? approx->u.s : "none";
    if (strcmp(s, "none") == 0)
      op = KL_UNARY_GELU;
    else if (strcmp(s, "tanh") == 0)
      op = KL_UNARY_GELU_TANH;
    else
      return param_error(n, "attribute approximate = \"%s\" must be \"none\" or \"tanh\"", s);
    break;
  }
  case KL_OP_SILU: op = KL_UNARY_SILU; break;
  case KL_OP_SQRT: op = KL_UNARY_SQRT; break;
  case KL_OP_RSQRT: op = KL_UNARY_RSQRT; break;
  case KL_OP_RECIPROCAL: op = KL_UNARY_RECIPROCAL; break;
  case KL_OP_EXP: op = KL_UNARY_EXP; break;
  case KL_OP_LOG: op = KL_UNARY_LOG; break;
  case KL_OP_ERF: op = KL_UNARY_ERF; break;
  case KL_OP_NEG: op = KL_UNARY_NEG; break;
  case KL_OP_ABS: op = KL_UNARY_ABS; break;
  /* ---- elementwise math (issue 4) ---- */
  case KL_OP_SIN: op = KL_UNARY_SIN; break;
  case KL_OP_COS: op = KL_UNARY_COS; break;
  case KL_OP_TAN: op = KL_UNARY_TAN; break;
  case KL_OP_ASIN: op = KL_UNARY_ASIN; break;
  case KL_OP_ACOS: op = KL_UNARY_ACOS; break;
  case KL_OP_ATAN: op = KL_UNARY_ATAN; break;
  case KL_OP_SINH: op = KL_UNARY_SINH; break;
  case KL_OP_COSH: op = KL_UNARY_COSH; break;
  case KL_OP_ASINH: op = KL_UNARY_ASINH; break;
  case KL_OP_ACOSH: op = KL_UNARY_ACOSH; break;
  case KL_OP_ATANH: op = KL_UNARY_ATANH; break;
  case KL_OP_FLOOR: op = KL_UNARY_FLOOR; break;
  case KL_OP_CEIL: op = KL_UNARY_CEIL; break;
  case KL_OP_ROUND: op = KL_UNARY_ROUND; break;
  case KL_OP_SIGN: op = KL_UNARY_SIGN; break;
  case KL_OP_BITWISE_NOT: op = KL_UNARY_BITWISE_NOT; break; /* issue 4 */
  case KL_OP_DROPOUT: {
    /* Inference only: dropout is the identity; training mode would need randomness. */
    double p = 0;
    int64_t train = 0;
    KL_RETURN_IF_ERROR(get_float(n, "p", 0.5, &p));
    KL_RETURN_IF_ERROR(get_int(n, "train", 0, &train));
    if (!(p >= 0.0 && p <= 1.0))
      return param_error(n, "attribute p = %g must be in [0, 1]", p);
    if (train)
      return kl_status_create(KL_ERR_UNSUPPORTED,
                              "%s: attribute train = %lld: training-mode dropout is not supported",
                              kl_ir_node_op_name(n), (long long)train);
    op = KL_UNARY_IDENTITY;
    break;
  }
  default:
    return param_error(n, "not a unary elementwise op");
  }
  if (out_op)
    *out_op = op;
  if (out_a)
    *out_a = a;
  if (out_b)
    *out_b = b;
  return NULL;
}

kl_status kl_ir_binary_params(const kl_ir_node *n, kl_rt_binary_op *out_op) {
  kl_rt_binary_op op;
  switch (n->op) {
  case KL_OP_ADD: op = KL_BINARY_ADD; break;
  case KL_OP_SUB: op = KL_BINARY_SUB; break;
  case KL_OP_MUL: op = KL_BINARY_MUL; break;
  case KL_OP_DIV: op = KL_BINARY_DIV; break;
  case KL_OP_POW: op = KL_BINARY_POW; break;
  case KL_OP_MAXIMUM: op = KL_BINARY_MAX; break;
  case KL_OP_MINIMUM: op = KL_BINARY_MIN; break;
  case KL_OP_EQ: op = KL_BINARY_EQ; break;
  case KL_OP_NE: op = KL_BINARY_NE; break;
  case KL_OP_LT: op = KL_BINARY_LT; break;
  case KL_OP_LE: op = KL_BINARY_LE; break;
  case KL_OP_GT: op = KL_BINARY_GT; break;
  case KL_OP_GE: op = KL_BINARY_GE; break;
  /* ---- elementwise math (issue 4) ---- */
  case KL_OP_REMAINDER: op = KL_BINARY_REMAINDER; break;
  case KL_OP_FMOD: op = KL_BINARY_FMOD; break;
  case KL_OP_BITWISE_LEFT_SHIFT: op = KL_BINARY_SHL; break;
  case KL_OP_BITWISE_RIGHT_SHIFT: op = KL_BINARY_SHR; break;
  /* ---- bitwise (issue 4) ---- */
  case KL_OP_BITWISE_AND: op = KL_BINARY_AND; break;
  case KL_OP_BITWISE_OR: op = KL_BINARY_OR; break;
  case KL_OP_BITWISE_XOR: op = KL_BINARY_XOR; break;
  default: return param_error(n, "not a binary elementwise op");
  }
  if (out_op)
    *out_op = op;
  return NULL;
}

kl_status kl_ir_reduce_params(const kl_ir_node *n, int rank, kl_rt_reduce_op *out_op,
                              bool *out_mask, bool *out_keepdim) {
  kl_rt_reduce_op op;
  switch (n->op) {
  case KL_OP_SUM: op = KL_REDUCE_SUM; break;
  case KL_OP_MEAN: op = KL_REDUCE_MEAN; break;
  case KL_OP_AMAX: op = KL_REDUCE_MAX; break;
  case KL_OP_AMIN: op = KL_REDUCE_MIN; break;
  case KL_OP_PROD: op = KL_REDUCE_PROD; break; /* issue 4 */
  default: return param_error(n, "not a reduction");
  }
  if (rank < 0 || rank > KL_MAX_RANK)
    return param_error(n, "rank %d is out of range", rank);
  const kl_ir_attr *dims = NULL;
  int64_t keepdim = 0;
  KL_RETURN_IF_ERROR(find_attr(n, "dim", KL_ATTR_INTS, &dims));
  KL_RETURN_IF_ERROR(get_int(n, "keepdim", 0, &keepdim));
  bool mask[KL_MAX_RANK];
  bool all = !dims || dims->n == 0;
  for (int d = 0; d < rank && d < KL_MAX_RANK; d++)
    mask[d] = all;
  for (int i = 0; !all && i < dims->n; i++) {
    int d;
    KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, dims->u.is[i], rank, &d));
    if (mask[d])
      return param_error(n, "dim %d appears more than once in attribute dim", d);
    mask[d] = true;
  }
  if (out_op)
    *out_op = op;
  if (out_mask)
    memcpy(out_mask, mask, (size_t)rank * sizeof *mask);
  if (out_keepdim)
    *out_keepdim = keepdim != 0;
  return NULL;
}

kl_status kl_ir_permute_params(const kl_ir_node *n, int rank, int *out_perm) {
  if (rank < 0 || rank > KL_MAX_RANK)
    return param_error(n, "rank %d is out of range", rank);
  int perm[KL_MAX_RANK];
  if (n->op == KL_OP_TRANSPOSE) {
    int64_t dim0 = 0, dim1 = 0;
    int d0, d1;
    KL_RETURN_IF_ERROR(get_required_int(n, "dim0", &dim0));
    KL_RETURN_IF_ERROR(get_required_int(n, "dim1", &dim1));
    KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, dim0, rank, &d0));
    KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, dim1, rank, &d1));
    for (int i = 0; i < rank; i++)
      perm[i] = i;
    perm[d0] = d1;
    perm[d1] = d0;
  } else if (n->op == KL_OP_PERMUTE) {
    const kl_ir_attr *dims = NULL;
    KL_RETURN_IF_ERROR(find_attr(n, "dims", KL_ATTR_INTS, &dims));
    if (!dims)
      return param_error(n, "required attribute dims is missing");
    if (dims->n != rank)
      return param_error(n, "attribute dims has %d entries for an input of rank %d", dims->n,
                         rank);
    bool seen[KL_MAX_RANK] = {false};
    for (int i = 0; i < rank; i++) {
      KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, dims->u.is[i], rank, &perm[i]));
      if (seen[perm[i]])
        return param_error(n, "attribute dims is not a permutation: dim %d appears twice",
                           perm[i]);
      seen[perm[i]] = true;
    }
  } else {
    return param_error(n, "not a transpose or permute");
  }
  memcpy(out_perm, perm, (size_t)rank * sizeof *perm);
  return NULL;
}

/* Python's slice.indices: clamps an index to the range the step can reach. */
static int64_t clamp_slice_index(int64_t i, int64_t len, int64_t step) {
  if (i < 0) {
    i = i < -len ? (step < 0 ? -1 : 0) : i + len;
  } else if (i >= len) {
    i = step < 0 ? len - 1 : len;
  }
  return i;
}

kl_status kl_ir_slice_params(const kl_ir_node *n, int rank, const int64_t *in_shape, int *out_dim,
                             int64_t *out_start, int64_t *out_step, int64_t *out_len) {
  if (n->op != KL_OP_SLICE)
    return param_error(n, "not a slice");
  int64_t dim = 0, start = 0, end = 0, step = 1;
  int d;
  KL_RETURN_IF_ERROR(get_int(n, "dim", 0, &dim));
  KL_RETURN_IF_ERROR(get_int(n, "start", 0, &start));
  KL_RETURN_IF_ERROR(get_int(n, "end", INT64_MAX, &end));
  KL_RETURN_IF_ERROR(get_int(n, "step", 1, &step));
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, dim, rank, &d));
  if (step == 0)
    return param_error(n, "attribute step must not be 0");
  int64_t size = in_shape[d];
  if (size < 0)
    return param_error(n, "input dim %d has negative size %lld", d, (long long)size);
  start = clamp_slice_index(start, size, step);
  end = clamp_slice_index(end, size, step);
  /* Unsigned arithmetic: the differences and -step (step may be INT64_MIN) fit in 64 bits. */
  uint64_t len = 0;
  if (step > 0 && start < end)
    len = ((uint64_t)end - (uint64_t)start - 1) / (uint64_t)step + 1;
  else if (step < 0 && start > end)
    len = ((uint64_t)start - (uint64_t)end - 1) / (0 - (uint64_t)step) + 1;
  *out_dim = d;
  *out_start = len ? start : 0;
  *out_step = step;
  *out_len = (int64_t)len;
  return NULL;
}

kl_status kl_ir_pad_params(const kl_ir_node *n, int rank, int64_t *out_pad, double *out_value) {
  if (n->op != KL_OP_CONSTANT_PAD)
    return param_error(n, "not a constant pad");
  if (rank < 0 || rank > KL_MAX_RANK)
    return param_error(n, "rank %d is out of range", rank);
  const kl_ir_attr *pad = NULL;
  KL_RETURN_IF_ERROR(find_attr(n, "pad", KL_ATTR_INTS, &pad));
  if (!pad)
    return param_error(n, "required attribute pad is missing");
  if (pad->n % 2 != 0)
    return param_error(n, "attribute pad must have an even length, got %d", pad->n);
  if (pad->n > 2 * rank)
    return param_error(n, "attribute pad has %d values, more than 2 per dim of a rank-%d input",
                       pad->n, rank);
  double value = 0;
  KL_RETURN_IF_ERROR(get_float(n, "value", 0.0, &value));
  for (int i = 0; i < 2 * rank; i++)
    out_pad[i] = 0;
  /* pad[0], pad[1] belong to the last dim, pad[2], pad[3] to the one before, ... */
  for (int i = 0; i < pad->n / 2; i++) {
    int d = rank - 1 - i;
    out_pad[2 * d] = pad->u.is[2 * i];
    out_pad[2 * d + 1] = pad->u.is[2 * i + 1];
  }
  if (out_value)
    *out_value = value;
  return NULL;
}

kl_status kl_ir_gather_params(const kl_ir_node *n, int data_rank, int *out_axis,
                              bool *out_allow_negative, bool *out_indices_1d) {
  int axis;
  bool allow_negative = false, indices_1d = false;
  switch (n->op) {
  case KL_OP_EMBEDDING:
    if (data_rank != 2)
      return param_error(n, "weight must be 2-D (num_embeddings, embedding_dim), got rank %d",
                         data_rank);
    axis = 0;
    break;
  case KL_OP_INDEX_SELECT: {
    int64_t dim = 0;
    KL_RETURN_IF_ERROR(get_required_int(n, "dim", &dim));
    KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, dim, data_rank, &axis));
    indices_1d = true;
    break;
  }
  case KL_OP_GATHER: {
    int64_t a = 0;
    KL_RETURN_IF_ERROR(get_int(n, "axis", 0, &a));
    KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, a, data_rank, &axis));
    allow_negative = true;
    break;
  }
  default:
    return param_error(n, "not a gather-like op");
  }
  if (out_axis)
    *out_axis = axis;
  if (out_allow_negative)
    *out_allow_negative = allow_negative;
  if (out_indices_1d)
    *out_indices_1d = indices_1d;
  return NULL;
}
