/* Shape functions for the compute ops: matrix products, convolution, normalization, pooling,
 * elementwise ops and reductions, plus the dim helpers every shape function shares.
 *
 * Semantics are PyTorch's aten ops with the attribute rules of ir/op_params.h, minus implicit
 * dtype promotion: mixed dtypes are an error naming both inputs. Output dims follow the rule in
 * shape_internal.h: a symbol only where the output dim is exactly that input dim, a number
 * where arithmetic on numbers (or the op's success) forces it, unknown otherwise. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../runtime/checked.h"
#include "op_params.h"
#include "shape_internal.h"

/* ---- shared helpers --------------------------------------------------------------------- */

kl_shape_str kl_shape_fmt(const kl_ir_node *node, const kl_ir_type *t) {
  kl_shape_str r;
  kl_ir_type_format(node ? node->graph : NULL, t, r.s, sizeof r.s);
  return r;
}

kl_shape_str kl_shape_fmt_dim(const kl_ir_node *node, kl_ir_dim d) {
  kl_shape_str r;
  const kl_ir_graph *g = node ? node->graph : NULL;
  if (kl_ir_dim_is_static(d))
    snprintf(r.s, sizeof r.s, "%lld", (long long)d.size);
  else if (d.sym == KL_DIM_UNKNOWN)
    snprintf(r.s, sizeof r.s, "*");
  else if (g && d.sym >= 0 && d.sym < g->n_symbols)
    snprintf(r.s, sizeof r.s, "%s", g->symbols[d.sym].name);
  else
    snprintf(r.s, sizeof r.s, "$%d", (int)d.sym);
  return r;
}

static kl_status shape_errorv(const kl_ir_node *node, kl_status_code code, const char *fmt,
                              va_list ap) {
  char msg[1536];
  vsnprintf(msg, sizeof msg, fmt, ap);
  return kl_status_create(code, "%s: %s", kl_ir_node_op_name(node), msg);
}

kl_status kl_shape_error(const kl_ir_node *node, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kl_status s = shape_errorv(node, KL_ERR_INVALID_ARGUMENT, fmt, ap);
  va_end(ap);
  return s;
}

kl_status kl_shape_error_code(const kl_ir_node *node, kl_status_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kl_status s = shape_errorv(node, code, fmt, ap);
  va_end(ap);
  return s;
}

/* "2", "at least 2" or "2 to 3". */
static kl_shape_str count_range(int min, int max) {
  kl_shape_str r;
  if (max == min)
    snprintf(r.s, sizeof r.s, "%d", min);
  else if (max < 0)
    snprintf(r.s, sizeof r.s, "at least %d", min);
  else
    snprintf(r.s, sizeof r.s, "%d to %d", min, max);
  return r;
}

kl_status kl_shape_check_arity(const kl_ir_node *node, const kl_ir_type *in, int n_in,
                               int min_in, int max_in, int n_out, int min_out, int max_out) {
  if (n_in < min_in || (max_in >= 0 && n_in > max_in))
    return kl_shape_error(node, "expected %s inputs, got %d", count_range(min_in, max_in).s,
                          n_in);
  if (n_out < min_out || (max_out >= 0 && n_out > max_out))
    return kl_shape_error(node, "expected %s outputs, got %d", count_range(min_out, max_out).s,
                          n_out);
  for (int i = 0; i < n_in; i++) {
    if (in[i].rank < 0 || in[i].rank > KL_MAX_RANK)
      return kl_shape_error(node, "input %d has rank %d, outside 0..%d", i, in[i].rank,
                            KL_MAX_RANK);
    if (!kl_dtype_is_valid((int)in[i].dtype))
      return kl_shape_error(node, "input %d has invalid dtype %d", i, (int)in[i].dtype);
  }
  return NULL;
}

kl_status kl_shape_require_float(const kl_ir_node *node, const kl_ir_type *t, const char *what) {
  if (kl_dtype_is_float(t->dtype))
    return NULL;
  return kl_shape_error(node, "%s %s must have a floating-point dtype", what,
                        kl_shape_fmt(node, t).s);
}

kl_status kl_shape_require_index(const kl_ir_node *node, const kl_ir_type *t, const char *what) {
  if (t->dtype == KL_I32 || t->dtype == KL_I64)
    return NULL;
  return kl_shape_error(node, "%s %s must be Int or Long", what, kl_shape_fmt(node, t).s);
}

kl_status kl_shape_require_same_dtype(const kl_ir_node *node, const kl_ir_type *a,
                                      const char *a_what, const kl_ir_type *b,
                                      const char *b_what) {
  if (a->dtype == b->dtype)
    return NULL;
  return kl_shape_error(node, "%s %s and %s %s have different dtypes (%s vs %s; no implicit "
                              "promotion)", a_what, kl_shape_fmt(node, a).s, b_what,
                        kl_shape_fmt(node, b).s, kl_dtype_ir_name(a->dtype),
                        kl_dtype_ir_name(b->dtype));
}

static const kl_ir_symbol *symbol_of(const kl_ir_node *node, kl_ir_dim d) {
  const kl_ir_graph *g = node ? node->graph : NULL;
  if (g && d.sym >= 0 && d.sym < g->n_symbols)
    return &g->symbols[d.sym];
  return NULL;
}

bool kl_shape_dim_may_be(const kl_ir_node *node, kl_ir_dim d, int64_t size) {
  if (kl_ir_dim_is_static(d))
    return d.size == size;
  const kl_ir_symbol *s = symbol_of(node, d);
  return !s || (s->min <= size && size <= s->max);
}

bool kl_shape_dims_may_equal(const kl_ir_node *node, kl_ir_dim a, kl_ir_dim b) {
  if (kl_ir_dim_is_static(a))
    return kl_shape_dim_may_be(node, b, a.size);
  if (kl_ir_dim_is_static(b))
    return kl_shape_dim_may_be(node, a, b.size);
  const kl_ir_symbol *sa = symbol_of(node, a), *sb = symbol_of(node, b);
  if (a.sym == b.sym || !sa || !sb)
    return true;
  return sa->min <= sb->max && sb->min <= sa->max;
}

kl_ir_dim kl_shape_dim_meet(kl_ir_dim a, kl_ir_dim b) {
  if (kl_ir_dim_equal(a, b) || kl_ir_dim_is_static(a))
    return a;
  if (kl_ir_dim_is_static(b))
    return b;
  if (a.sym == KL_DIM_UNKNOWN)
    return b;
  if (b.sym == KL_DIM_UNKNOWN)
    return a;
  kl_ir_dim u = {0, KL_DIM_UNKNOWN};
  return u;
}

bool kl_shape_broadcast_dim(const kl_ir_node *node, kl_ir_dim a, kl_ir_dim b, kl_ir_dim *out) {
  kl_ir_dim unknown = {0, KL_DIM_UNKNOWN};
  if (kl_ir_dim_equal(a, b)) {
    *out = a.sym == KL_DIM_UNKNOWN ? unknown : a;
    return true;
  }
  if (kl_ir_dim_is_static(a) && a.size == 1) {
    *out = b;
    return true;
  }
  if (kl_ir_dim_is_static(b) && b.size == 1) {
    *out = a;
    return true;
  }
  /* A static s != 1 wins: the other side must be s or 1 for the op to run at all. */
  if (kl_ir_dim_is_static(a) || kl_ir_dim_is_static(b)) {
    kl_ir_dim s = kl_ir_dim_is_static(a) ? a : b, other = kl_ir_dim_is_static(a) ? b : a;
    if (!kl_shape_dim_may_be(node, other, s.size) && !kl_shape_dim_may_be(node, other, 1))
      return false;
    *out = s;
    return true;
  }
  /* Two different symbols (or a symbol and unknown): either may be 1, so nothing is known. */
  *out = unknown;
  return true;
}

kl_status kl_shape_broadcast(const kl_ir_node *node, const kl_ir_type *a, const char *a_what,
                             const kl_ir_type *b, const char *b_what, kl_ir_type *out) {
  int rank = a->rank > b->rank ? a->rank : b->rank;
  kl_ir_dim dims[KL_MAX_RANK];
  for (int i = 0; i < rank; i++) {
    int ia = a->rank - rank + i, ib = b->rank - rank + i;
    kl_ir_dim one = kl_ir_dim_static(1);
    kl_ir_dim da = ia >= 0 ? a->dims[ia] : one, db = ib >= 0 ? b->dims[ib] : one;
    if (!kl_shape_broadcast_dim(node, da, db, &dims[i]))
      return kl_shape_error(node, "%s %s and %s %s cannot be broadcast together: %s vs %s at "
                                  "dim %d from the end", a_what, kl_shape_fmt(node, a).s,
                            b_what, kl_shape_fmt(node, b).s, kl_shape_fmt_dim(node, da).s,
                            kl_shape_fmt_dim(node, db).s, i - rank);
  }
  out->rank = rank;
  memcpy(out->dims, dims, (size_t)rank * sizeof *dims);
  return NULL;
}

static kl_ir_dim dim_unknown(void) {
  kl_ir_dim d = {0, KL_DIM_UNKNOWN};
  return d;
}

/* ---- matrix products -------------------------------------------------------------------- */

/* aten::linear(x (..., in), weight (out, in), bias (out)?) -> (..., out). */
KL_SHAPE_FN(linear) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 2, 3, n_out, 1, 1));
  const kl_ir_type *x = &in[0], *w = &in[1], *bias = n_in > 2 ? &in[2] : NULL;
  KL_RETURN_IF_ERROR(kl_shape_require_float(node, x, "input"));
  KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, x, "input", w, "weight"));
  if (bias)
    KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, x, "input", bias, "bias"));
  if (x->rank < 1)
    return kl_shape_error(node, "input %s must have at least 1 dim", kl_shape_fmt(node, x).s);
  if (w->rank != 2)
    return kl_shape_error(node, "weight %s must be 2-D (out_features, in_features)",
                          kl_shape_fmt(node, w).s);
  kl_ir_dim k = x->dims[x->rank - 1];
  if (!kl_shape_dims_may_equal(node, k, w->dims[1]))
    return kl_shape_error(node, "input %s and weight %s disagree: %s != %s",
                          kl_shape_fmt(node, x).s, kl_shape_fmt(node, w).s,
                          kl_shape_fmt_dim(node, k).s, kl_shape_fmt_dim(node, w->dims[1]).s);
  kl_ir_dim out_features = w->dims[0];
  if (bias) {
    if (bias->rank != 1 || !kl_shape_dims_may_equal(node, bias->dims[0], out_features))
      return kl_shape_error(node, "bias %s does not match weight %s: expected (%s)",
                            kl_shape_fmt(node, bias).s, kl_shape_fmt(node, w).s,
                            kl_shape_fmt_dim(node, out_features).s);
    out_features = kl_shape_dim_meet(out_features, bias->dims[0]);
  }
  out[0] = *x;
  out[0].dims[x->rank - 1] = out_features;
  return NULL;
}

/* aten::matmul, numpy rules: a 1-D operand gets a dim added (front for a, back for b) that is
 * removed from the result; the batch dims (all but the last two) broadcast. */
KL_SHAPE_FN(matmul) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 2, 2, n_out, 1, 1));
  const kl_ir_type *a = &in[0], *b = &in[1];
  KL_RETURN_IF_ERROR(kl_shape_require_float(node, a, "input"));
  KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, a, "input", b, "other"));
  if (a->rank < 1 || b->rank < 1)
    return kl_shape_error(node, "input %s and other %s must both have at least 1 dim",
                          kl_shape_fmt(node, a).s, kl_shape_fmt(node, b).s);
  kl_ir_dim ka = a->dims[a->rank - 1], kb = b->dims[b->rank == 1 ? 0 : b->rank - 2];
  if (!kl_shape_dims_may_equal(node, ka, kb))
    return kl_shape_error(node, "input %s and other %s disagree: %s != %s",
                          kl_shape_fmt(node, a).s, kl_shape_fmt(node, b).s,
                          kl_shape_fmt_dim(node, ka).s, kl_shape_fmt_dim(node, kb).s);
  kl_ir_type batch_a = *a, batch_b = *b, y = *a;
  batch_a.rank = a->rank > 2 ? a->rank - 2 : 0;
  batch_b.rank = b->rank > 2 ? b->rank - 2 : 0;
  kl_status s = kl_shape_broadcast(node, &batch_a, "input", &batch_b, "other", &y);
  if (s) {
    kl_status_destroy(s);
    return kl_shape_error(node, "input %s and other %s: batch dims cannot be broadcast together",
                          kl_shape_fmt(node, a).s, kl_shape_fmt(node, b).s);
  }
  if (a->rank >= 2)
    y.dims[y.rank++] = a->dims[a->rank - 2];
  if (b->rank >= 2)
    y.dims[y.rank++] = b->dims[b->rank - 1];
  out[0] = y;
  return NULL;
}

/* ---- sliding windows: convolution and pooling ------------------------------------------- */

/* One spatial output dim of a sliding window: floor((in + lo + hi - dil*(k-1) - 1 + c) / stride)
 * + 1, with c = stride - 1 under ceil_mode, where the last window must also start inside the
 * input or the left padding (PyTorch's rule). An output < 1 is an error. A symbolic input keeps
 * its symbol only when the window preserves the size (stride 1, padding = dilated kernel - 1). */
static kl_status window_dim(const kl_ir_node *node, const kl_ir_type *x, const char *axis,
                            kl_ir_dim in, kl_ir_dim k, int64_t lo, int64_t hi, int64_t stride,
                            int64_t dil, bool ceil_mode, kl_ir_dim *out) {
  if (!kl_ir_dim_is_static(k)) {
    *out = dim_unknown();
    return NULL;
  }
  int64_t eff, pads, span, num;
  if (k.size < 1)
    return kl_shape_error(node, "kernel %s is %lld, must be >= 1", axis, (long long)k.size);
  if (!kl_mul_i64(dil, k.size - 1, &eff) || !kl_add_i64(eff, 1, &eff) ||
      !kl_add_i64(lo, hi, &pads))
    return kl_shape_error(node, "kernel or padding along %s overflows", axis);
  if (!kl_ir_dim_is_static(in)) {
    *out = stride == 1 && pads == eff - 1 ? in : dim_unknown();
    return NULL;
  }
  if (!kl_add_i64(in.size, pads, &span) || !kl_add_i64(span, -eff, &num) ||
      (ceil_mode && !kl_add_i64(num, stride - 1, &num)))
    return kl_shape_error(node, "input %s: size along %s overflows", kl_shape_fmt(node, x).s,
                          axis);
  if (num < 0)
    return kl_shape_error(node, "input %s padded to %lld along %s is smaller than the (dilated) "
                                "kernel %lld", kl_shape_fmt(node, x).s, (long long)span, axis,
                          (long long)eff);
  int64_t size = num / stride + 1;
  if (ceil_mode && (size - 1) * stride >= in.size + lo)
    size--;
  if (size < 1)
    return kl_shape_error(node, "input %s gives an empty output along %s",
                          kl_shape_fmt(node, x).s, axis);
  *out = kl_ir_dim_static(size);
  return NULL;
}

/* aten::conv2d(x (N, C, H, W), weight (Cout, C/groups, Kh, Kw), bias (Cout)?). */
KL_SHAPE_FN(conv2d) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 2, 3, n_out, 1, 1));
  const kl_ir_type *x = &in[0], *w = &in[1], *bias = n_in > 2 ? &in[2] : NULL;
  KL_RETURN_IF_ERROR(kl_shape_require_float(node, x, "input"));
  KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, x, "input", w, "weight"));
  if (bias)
    KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, x, "input", bias, "bias"));
  if (x->rank != 4)
    return kl_shape_error(node, "input %s must be 4-D (N, C, H, W)", kl_shape_fmt(node, x).s);
  if (w->rank != 4)
    return kl_shape_error(node, "weight %s must be 4-D (Cout, Cin/groups, Kh, Kw)",
                          kl_shape_fmt(node, w).s);
  kl_rt_conv2d_params p = {{1, 1}, {0, 0, 0, 0}, {1, 1}, 1};
  KL_RETURN_IF_ERROR(kl_ir_conv2d_params(node, &p));
  kl_ir_dim c = x->dims[1], cg = w->dims[1], cout = w->dims[0];
  if (kl_ir_dim_is_static(cout) && cout.size % p.groups != 0)
    return kl_shape_error(node, "weight %s: %lld output channels are not divisible by groups = "
                                "%lld", kl_shape_fmt(node, w).s, (long long)cout.size,
                          (long long)p.groups);
  if (kl_ir_dim_is_static(cg)) {
    int64_t cin;
    if (!kl_mul_i64(cg.size, p.groups, &cin) || !kl_shape_dim_may_be(node, c, cin))
      return kl_shape_error(node, "input %s and weight %s disagree: %s input channels, but "
                                  "weight expects %lld x groups %lld",
                            kl_shape_fmt(node, x).s, kl_shape_fmt(node, w).s,
                            kl_shape_fmt_dim(node, c).s, (long long)cg.size,
                            (long long)p.groups);
  } else if (kl_ir_dim_is_static(c) && c.size % p.groups != 0) {
    return kl_shape_error(node, "input %s: %lld channels are not divisible by groups = %lld",
                          kl_shape_fmt(node, x).s, (long long)c.size, (long long)p.groups);
  }
  if (bias) {
    if (bias->rank != 1 || !kl_shape_dims_may_equal(node, bias->dims[0], cout))
      return kl_shape_error(node, "bias %s does not match weight %s: expected (%s)",
                            kl_shape_fmt(node, bias).s, kl_shape_fmt(node, w).s,
                            kl_shape_fmt_dim(node, cout).s);
    cout = kl_shape_dim_meet(cout, bias->dims[0]);
  }
  out[0] = *x;
  out[0].dims[1] = cout;
  KL_RETURN_IF_ERROR(window_dim(node, x, "height", x->dims[2], w->dims[2], p.pad[0], p.pad[2],
                                p.stride[0], p.dilation[0], false, &out[0].dims[2]));
  KL_RETURN_IF_ERROR(window_dim(node, x, "width", x->dims[3], w->dims[3], p.pad[1], p.pad[3],
                                p.stride[1], p.dilation[1], false, &out[0].dims[3]));
  return NULL;
}

/* aten::max_pool2d, aten::avg_pool2d: x (N, C, H, W) -> (N, C, Ho, Wo). */
KL_SHAPE_FN(pool2d) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  const kl_ir_type *x = &in[0];
  if (node->op == KL_OP_AVG_POOL2D)
    KL_RETURN_IF_ERROR(kl_shape_require_float(node, x, "input"));
  else if (x->dtype == KL_BOOL)
    return kl_shape_error(node, "input %s must not be Bool", kl_shape_fmt(node, x).s);
  if (x->rank != 4)
    return kl_shape_error(node, "input %s must be 4-D (N, C, H, W)", kl_shape_fmt(node, x).s);
  kl_rt_pool2d_params p = {{1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, false};
  bool ceil_mode = false;
  KL_RETURN_IF_ERROR(kl_ir_pool2d_params(node, &p, &ceil_mode));
  out[0] = *x;
  KL_RETURN_IF_ERROR(window_dim(node, x, "height", x->dims[2], kl_ir_dim_static(p.kernel[0]),
                                p.pad[0], p.pad[2], p.stride[0], p.dilation[0], ceil_mode,
                                &out[0].dims[2]));
  KL_RETURN_IF_ERROR(window_dim(node, x, "width", x->dims[3], kl_ir_dim_static(p.kernel[1]),
                                p.pad[1], p.pad[3], p.stride[1], p.dilation[1], ceil_mode,
                                &out[0].dims[3]));
  return NULL;
}

/* aten::adaptive_avg_pool2d: x (N, C, H, W) -> (N, C, output_size[0], output_size[1]). */
KL_SHAPE_FN(adaptive_pool2d) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  const kl_ir_type *x = &in[0];
  KL_RETURN_IF_ERROR(kl_shape_require_float(node, x, "input"));
  if (x->rank != 4)
    return kl_shape_error(node, "input %s must be 4-D (N, C, H, W)", kl_shape_fmt(node, x).s);
  const kl_ir_attr *size = kl_ir_node_attr(node, "output_size");
  if (!size || size->kind != KL_ATTR_INTS || size->n != 2)
    return kl_shape_error(node, "attribute output_size must be 2 ints");
  for (int i = 0; i < 2; i++) {
    if (size->u.is[i] < 1)
      return kl_shape_error(node, "attribute output_size[%d] = %lld must be >= 1", i,
                            (long long)size->u.is[i]);
    if (kl_ir_dim_is_static(x->dims[2 + i]) && x->dims[2 + i].size == 0)
      return kl_shape_error(node, "input %s has an empty spatial dim",
                            kl_shape_fmt(node, x).s);
  }
  out[0] = *x;
  out[0].dims[2] = kl_ir_dim_static(size->u.is[0]);
  out[0].dims[3] = kl_ir_dim_static(size->u.is[1]);
  return NULL;
}

/* ---- normalization ---------------------------------------------------------------------- */

/* aten::batch_norm(x (N, C, ...), weight, bias, running_mean, running_var), each (C). */
KL_SHAPE_FN(batch_norm) {
  static const char *const names[] = {"input", "weight", "bias", "running_mean", "running_var"};
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 5, 5, n_out, 1, 1));
  const kl_ir_type *x = &in[0];
  if (x->rank < 2)
    return kl_shape_error(node, "input %s must have at least 2 dims (N, C, ...)",
                          kl_shape_fmt(node, x).s);
  kl_ir_dim c = x->dims[1];
  for (int i = 0; i < 5; i++) {
    KL_RETURN_IF_ERROR(kl_shape_require_float(node, &in[i], names[i]));
    if (i == 0)
      continue;
    if (in[i].rank != 1 || !kl_shape_dims_may_equal(node, in[i].dims[0], c))
      return kl_shape_error(node, "%s %s does not match the %s channels of input %s", names[i],
                            kl_shape_fmt(node, &in[i]).s, kl_shape_fmt_dim(node, c).s,
                            kl_shape_fmt(node, x).s);
    c = kl_shape_dim_meet(c, in[i].dims[0]);
  }
  out[0] = *x;
  out[0].dims[1] = c;
  return NULL;
}

/* aten::layer_norm(x (..., *normalized_shape), weight?, bias?), both normalized_shape. */
KL_SHAPE_FN(layer_norm) {
  static const char *const names[] = {"input", "weight", "bias"};
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 3, n_out, 1, 1));
  const kl_ir_type *x = &in[0];
  const kl_ir_attr *ns = kl_ir_node_attr(node, "normalized_shape");
  if (!ns || ns->kind != KL_ATTR_INTS)
    return kl_shape_error(node, "attribute normalized_shape (ints) is missing");
  if (ns->n < 1 || ns->n > x->rank)
    return kl_shape_error(node, "attribute normalized_shape has %d dims; input %s needs 1 to %d",
                          ns->n, kl_shape_fmt(node, x).s, x->rank);
  out[0] = *x;
  int first = x->rank - ns->n;
  for (int i = 0; i < ns->n; i++) {
    if (ns->u.is[i] < 0)
      return kl_shape_error(node, "attribute normalized_shape[%d] = %lld must be >= 0", i,
                            (long long)ns->u.is[i]);
    if (!kl_shape_dim_may_be(node, x->dims[first + i], ns->u.is[i]))
      return kl_shape_error(node, "input %s does not end in normalized_shape: dim %d is %s, "
                                  "expected %lld", kl_shape_fmt(node, x).s, first + i,
                            kl_shape_fmt_dim(node, x->dims[first + i]).s,
                            (long long)ns->u.is[i]);
    out[0].dims[first + i] = kl_ir_dim_static(ns->u.is[i]);
  }
  for (int i = 0; i < n_in; i++) {
    KL_RETURN_IF_ERROR(kl_shape_require_float(node, &in[i], names[i]));
    if (i == 0)
      continue;
    bool ok = in[i].rank == ns->n;
    for (int j = 0; ok && j < ns->n; j++)
      ok = kl_shape_dim_may_be(node, in[i].dims[j], ns->u.is[j]);
    if (!ok)
      return kl_shape_error(node, "%s %s does not have the normalized shape of input %s",
                            names[i], kl_shape_fmt(node, &in[i]).s, kl_shape_fmt(node, x).s);
  }
  return NULL;
}

/* aten::softmax, aten::log_softmax: same type, dim checked. */
KL_SHAPE_FN(softmax) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  KL_RETURN_IF_ERROR(kl_shape_require_float(node, &in[0], "input"));
  const kl_ir_attr *dim = kl_ir_node_attr(node, "dim");
  if (!dim || dim->kind != KL_ATTR_INT)
    return kl_shape_error(node, "attribute dim (int) is missing");
  int d = 0;
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(node, dim->u.i, in[0].rank, &d));
  out[0] = in[0];
  return NULL;
}

/* ---- attention -------------------------------------------------------------------------- */

/* aten::scaled_dot_product_attention(q (..., L, E), k (..., S, E), v (..., S, Ev), mask?)
 * -> (..., L, Ev). The batch dims of q, k and v broadcast (the math form is two matmuls); the
 * mask, q's dtype (added) or Bool (kept where true), broadcasts to the scores (..., L, S) but
 * never widens them. scale [1/sqrt(E)] must be finite; is_causal [0] is 0 or 1. */
KL_SHAPE_FN(attention) {
  static const char *const names[] = {"query", "key", "value", "mask"};
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 3, 4, n_out, 1, 1));
  const kl_ir_type *q = &in[0], *k = &in[1], *v = &in[2], *mask = n_in > 3 ? &in[3] : NULL;
  KL_RETURN_IF_ERROR(kl_shape_require_float(node, q, "query"));
  for (int i = 0; i < 3; i++) {
    KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, q, "query", &in[i], names[i]));
    if (in[i].rank < 2)
      return kl_shape_error(node, "%s %s must have at least 2 dims", names[i],
                            kl_shape_fmt(node, &in[i]).s);
  }
  const kl_ir_attr *scale = kl_ir_node_attr(node, "scale");
  if (scale && (scale->kind != KL_ATTR_FLOAT || !isfinite(scale->u.f)))
    return kl_shape_error(node, "attribute scale must be a finite float");
  const kl_ir_attr *causal = kl_ir_node_attr(node, "is_causal");
  if (causal && (causal->kind != KL_ATTR_INT || (causal->u.i != 0 && causal->u.i != 1)))
    return kl_shape_error(node, "attribute is_causal must be 0 or 1");
  kl_ir_dim e = q->dims[q->rank - 1], s = k->dims[k->rank - 2];
  if (!kl_shape_dims_may_equal(node, e, k->dims[k->rank - 1]))
    return kl_shape_error(node, "query %s and key %s differ in their last dim",
                          kl_shape_fmt(node, q).s, kl_shape_fmt(node, k).s);
  if (!kl_shape_dims_may_equal(node, s, v->dims[v->rank - 2]))
    return kl_shape_error(node, "key %s and value %s differ in their sequence dim (-2)",
                          kl_shape_fmt(node, k).s, kl_shape_fmt(node, v).s);
  s = kl_shape_dim_meet(s, v->dims[v->rank - 2]);
  kl_ir_type bq = *q, bk = *k, bv = *v, qk = *q, y = *q;
  bq.rank -= 2, bk.rank -= 2, bv.rank -= 2;
  KL_RETURN_IF_ERROR(kl_shape_broadcast(node, &bq, "query", &bk, "key", &qk));
  KL_RETURN_IF_ERROR(kl_shape_broadcast(node, &qk, "query and key", &bv, "value", &y));
  int nb = y.rank;
  if (nb + 2 > KL_MAX_RANK)
    return kl_shape_error_code(node, KL_ERR_LIMIT, "the result has more than %d dims",
                               KL_MAX_RANK);
  y.dims[nb] = q->dims[q->rank - 2];
  y.dims[nb + 1] = v->dims[v->rank - 1];
  y.rank = nb + 2;
  if (mask) {
    if (mask->dtype != KL_BOOL)
      KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, q, "query", mask, "mask"));
    kl_ir_type scores = y;
    scores.dims[nb + 1] = s;
    bool ok = mask->rank <= scores.rank;
    for (int i = 1; ok && i <= mask->rank; i++) {
      kl_ir_dim m = mask->dims[mask->rank - i], want = scores.dims[scores.rank - i];
      ok = (kl_ir_dim_is_static(m) && m.size == 1) || kl_shape_dims_may_equal(node, m, want);
    }
    if (!ok)
      return kl_shape_error(node, "mask %s does not broadcast to the scores %s",
                            kl_shape_fmt(node, mask).s, kl_shape_fmt(node, &scores).s);
  }
  out[0] = y;
  return NULL;
}

/* ---- elementwise ------------------------------------------------------------------------ */

/* Ops whose kernel takes integers too (relu, clamp, neg, abs, dropout); Bool only for dropout,
 * which is the identity at inference. The attributes are validated here so the verifier
 * reports a bad one. */
KL_SHAPE_FN(unary) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  if (in[0].dtype == KL_BOOL && node->op != KL_OP_DROPOUT)
    return kl_shape_error(node, "input %s must not be Bool", kl_shape_fmt(node, &in[0]).s);
  KL_RETURN_IF_ERROR(kl_ir_unary_params(node, NULL, NULL, NULL));
  out[0] = in[0];
  return NULL;
}

KL_SHAPE_FN(unary_float) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  KL_RETURN_IF_ERROR(kl_shape_require_float(node, &in[0], "input"));
  KL_RETURN_IF_ERROR(kl_ir_unary_params(node, NULL, NULL, NULL));
  out[0] = in[0];
  return NULL;
}

KL_SHAPE_FN(binary) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 2, 2, n_out, 1, 1));
  KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, &in[0], "input", &in[1], "other"));
  out[0].dtype = in[0].dtype;
  return kl_shape_broadcast(node, &in[0], "input", &in[1], "other", &out[0]);
}

KL_SHAPE_FN(compare) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 2, 2, n_out, 1, 1));
  KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, &in[0], "input", &in[1], "other"));
  out[0].dtype = KL_BOOL;
  return kl_shape_broadcast(node, &in[0], "input", &in[1], "other", &out[0]);
}

/* Shifts (issue 4): binary broadcasting on integer operands only, Bool excluded. */
KL_SHAPE_FN(binary_int) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 2, 2, n_out, 1, 1));
  KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, &in[0], "input", &in[1], "other"));
  if (kl_dtype_is_float(in[0].dtype) || in[0].dtype == KL_BOOL)
    return kl_shape_error(node, "input %s must be an integer tensor",
                          kl_shape_fmt(node, &in[0]).s);
  out[0].dtype = in[0].dtype;
  return kl_shape_broadcast(node, &in[0], "input", &in[1], "other", &out[0]);
}

/* Bitwise and, or, xor (issue 4): binary broadcasting on integer or Bool operands. */
KL_SHAPE_FN(bitwise) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 2, 2, n_out, 1, 1));
  KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, &in[0], "input", &in[1], "other"));
  if (kl_dtype_is_float(in[0].dtype))
    return kl_shape_error(node, "input %s must be an integer or Bool tensor",
                          kl_shape_fmt(node, &in[0]).s);
  out[0].dtype = in[0].dtype;
  return kl_shape_broadcast(node, &in[0], "input", &in[1], "other", &out[0]);
}

/* Bitwise not (issue 4): same shape and dtype, integer or Bool input. */
KL_SHAPE_FN(unary_bitwise) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  if (kl_dtype_is_float(in[0].dtype))
    return kl_shape_error(node, "input %s must be an integer or Bool tensor",
                          kl_shape_fmt(node, &in[0]).s);
  KL_RETURN_IF_ERROR(kl_ir_unary_params(node, NULL, NULL, NULL));
  out[0] = in[0];
  return NULL;
}

/* aten::where(condition : Bool, input, other): all three broadcast together. */
KL_SHAPE_FN(where) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 3, 3, n_out, 1, 1));
  if (in[0].dtype != KL_BOOL)
    return kl_shape_error(node, "condition %s must be Bool", kl_shape_fmt(node, &in[0]).s);
  KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, &in[1], "input", &in[2], "other"));
  kl_ir_type values = in[1];
  KL_RETURN_IF_ERROR(kl_shape_broadcast(node, &in[1], "input", &in[2], "other", &values));
  kl_status s = kl_shape_broadcast(node, &in[0], "condition", &values, "input and other", &out[0]);
  if (s)
    return s;
  out[0].dtype = in[1].dtype;
  return NULL;
}

/* aten::to[dtype=...]: same shape, the attribute's dtype. */
KL_SHAPE_FN(cast) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  const kl_ir_attr *dt = kl_ir_node_attr(node, "dtype");
  if (!dt || dt->kind != KL_ATTR_DTYPE || !kl_dtype_is_valid((int)dt->u.dtype))
    return kl_shape_error(node, "attribute dtype (a dtype) is missing or invalid");
  out[0] = in[0];
  out[0].dtype = dt->u.dtype;
  return NULL;
}

/* ---- reductions ------------------------------------------------------------------------- */

/* aten::sum/mean/amax/amin/prod. As in PyTorch, sum and prod of an integer or Bool input are
 * Long; mean needs a float input; amax/amin of an empty reduced dim is an error for integers (no
 * identity to return) and -inf/+inf for floats, as ONNX has it. */
KL_SHAPE_FN(reduce) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  const kl_ir_type *x = &in[0];
  kl_rt_reduce_op op = KL_REDUCE_SUM;
  bool mask[KL_MAX_RANK] = {false}, keepdim = false;
  KL_RETURN_IF_ERROR(kl_ir_reduce_params(node, x->rank, &op, mask, &keepdim));
  if (op == KL_REDUCE_MEAN)
    KL_RETURN_IF_ERROR(kl_shape_require_float(node, x, "input"));
  kl_ir_type y = *x;
  if ((op == KL_REDUCE_SUM || op == KL_REDUCE_PROD) && !kl_dtype_is_float(x->dtype))
    y.dtype = KL_I64;
  y.rank = 0;
  for (int d = 0; d < x->rank; d++) {
    if (!mask[d]) {
      y.dims[y.rank++] = x->dims[d];
      continue;
    }
    if ((op == KL_REDUCE_MAX || op == KL_REDUCE_MIN) && kl_ir_dim_is_static(x->dims[d]) &&
        x->dims[d].size == 0 && !kl_dtype_is_float(x->dtype))
      return kl_shape_error(node, "input %s: reduced dim %d is empty, so it has no %s",
                            kl_shape_fmt(node, x).s, d, op == KL_REDUCE_MAX ? "max" : "min");
    if (keepdim)
      y.dims[y.rank++] = kl_ir_dim_static(1);
  }
  out[0] = y;
  return NULL;
}
