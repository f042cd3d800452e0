/* Normalization kernels: inference batch norm, layer norm and (log-)softmax.
 *
 * f32 tensors take the vectorized row kernels of vec_f32.h: statistics in f32 vector lanes
 * summed block by block in double (mean and variance in two passes, the mean split into two
 * floats so that centring is exact), softmax with the max subtracted and kiln's own vector exp,
 * results within a few ulp of the double computation. Every other dtype keeps the reference
 * loops below, which compute in double whatever the dtype (loads and stores through the dtype
 * helpers for f16/bf16), so f64 results are as close to exact as a single rounding allows and
 * serve as the f32 paths' reference in tests. */
#include <math.h>
#include <string.h>

#include "kernels_internal.h"
#include "vec_f32.h"

static kl_status check_float_same(const char *op, const kl_tensor *x, const kl_tensor *y) {
  if (!kl_dtype_is_float(x->dtype) || x->dtype != y->dtype)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: input %s and output %s must be the same floating-point dtype", op,
                            kl_dtype_ir_name(x->dtype), kl_dtype_ir_name(y->dtype));
  if (!kl_tensor_same_shape(x, y))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: input shape %s differs from output %s",
                            op, KL_SHAPE(x), KL_SHAPE(y));
  return NULL;
}

static kl_status check_vec(const char *op, const char *what, const kl_tensor *v, kl_dtype dt,
                           int64_t n) {
  if (!v)
    return NULL;
  if (v->dtype != dt || v->rank != 1 || v->shape[0] != n)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: %s is %s %s, expected %s [%lld]", op,
                            what, kl_dtype_ir_name(v->dtype), KL_SHAPE(v), kl_dtype_ir_name(dt),
                            (long long)n);
  return NULL;
}

kl_status kl_rt_batch_norm(const kl_tensor *x, const kl_tensor *weight, const kl_tensor *bias,
                           const kl_tensor *mean, const kl_tensor *var, double eps, kl_tensor *y) {
  KL_RETURN_IF_ERROR(check_float_same("batch_norm", x, y));
  if (x->rank < 2)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "batch_norm: input %s needs a channel dim (rank >= 2)", KL_SHAPE(x));
  int64_t C = x->shape[1];
  KL_RETURN_IF_ERROR(check_vec("batch_norm", "weight", weight, x->dtype, C));
  KL_RETURN_IF_ERROR(check_vec("batch_norm", "bias", bias, x->dtype, C));
  KL_RETURN_IF_ERROR(check_vec("batch_norm", "running_mean", mean, x->dtype, C));
  KL_RETURN_IF_ERROR(check_vec("batch_norm", "running_var", var, x->dtype, C));
  int64_t N = x->shape[0], inner = 1; /* x (N, C, inner) */
  for (int d = 2; d < x->rank; d++)
    inner *= x->shape[d];
  const kl_vec_f32_ops *vec = x->dtype == KL_F32 ? kl_vec_f32() : NULL;
  for (int64_t c = 0; c < C; c++) {
    /* y = x * scale + shift with scale = w / sqrt(var + eps), shift = b - mean * scale */
    double m = mean ? kl_ld(mean, c) : 0.0, v = var ? kl_ld(var, c) : 1.0;
    double scale = (weight ? kl_ld(weight, c) : 1.0) / sqrt(v + eps);
    double shift = (bias ? kl_ld(bias, c) : 0.0) - m * scale;
    if (vec) {
      for (int64_t n = 0; n < N; n++) {
        int64_t base = (n * C + c) * inner;
        vec->affine((const float *)x->data + base, (float *)y->data + base, inner, (float)scale,
                    (float)shift);
      }
      continue;
    }
    for (int64_t n = 0; n < N; n++) {
      int64_t base = (n * C + c) * inner;
      for (int64_t i = 0; i < inner; i++)
        kl_st(y, base + i, kl_ld(x, base + i) * scale + shift);
    }
  }
  return NULL;
}

kl_status kl_rt_layer_norm(const kl_tensor *x, const kl_tensor *weight, const kl_tensor *bias,
                           int n_norm_dims, double eps, kl_tensor *y) {
  KL_RETURN_IF_ERROR(check_float_same("layer_norm", x, y));
  if (n_norm_dims < 0 || n_norm_dims > x->rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "layer_norm: cannot normalize the last %d dims of %s", n_norm_dims,
                            KL_SHAPE(x));
  int first = x->rank - n_norm_dims;
  int64_t D = 1; /* x (rows, D) */
  for (int d = first; d < x->rank; d++)
    D *= x->shape[d];
  const kl_tensor *params[2] = {weight, bias};
  for (int k = 0; k < 2; k++) {
    const kl_tensor *t = params[k];
    if (!t)
      continue;
    bool ok = t->dtype == x->dtype && t->rank == n_norm_dims;
    for (int d = 0; ok && d < n_norm_dims; d++)
      ok = t->shape[d] == x->shape[first + d];
    if (!ok)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "layer_norm: %s is %s %s, expected the trailing %d dims of input %s",
                              k ? "bias" : "weight", kl_dtype_ir_name(t->dtype), KL_SHAPE(t),
                              n_norm_dims, KL_SHAPE(x));
  }
  if (D == 0)
    return NULL;
  int64_t rows = x->numel / D;
  if (x->dtype == KL_F32) {
    kl_vec_f32()->layer_norm_rows(x->data, y->data, rows, D, weight ? weight->data : NULL,
                                  bias ? bias->data : NULL, eps);
    return NULL;
  }
  for (int64_t r = 0; r < rows; r++) {
    int64_t base = r * D;
    double sum = 0.0;
    for (int64_t i = 0; i < D; i++)
      sum += kl_ld(x, base + i);
    double mu = sum / (double)D, sq = 0.0;
    for (int64_t i = 0; i < D; i++) {
      double dv = kl_ld(x, base + i) - mu;
      sq += dv * dv;
    }
    double inv = 1.0 / sqrt(sq / (double)D + eps); /* biased variance, as PyTorch */
    for (int64_t i = 0; i < D; i++) {
      double v = (kl_ld(x, base + i) - mu) * inv;
      if (weight)
        v *= kl_ld(weight, i);
      if (bias)
        v += kl_ld(bias, i);
      kl_st(y, base + i, v);
    }
  }
  return NULL;
}

kl_status kl_rt_softmax(const kl_tensor *x, int dim, bool use_log, kl_tensor *y) {
  const char *op = use_log ? "log_softmax" : "softmax";
  KL_RETURN_IF_ERROR(check_float_same(op, x, y));
  if (x->rank == 0 ? dim != 0 : (dim < 0 || dim >= x->rank))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: dim %d is out of range for %s", op, dim,
                            KL_SHAPE(x));
  /* x (outer, n, inner), normalized along n */
  int64_t n = x->rank ? x->shape[dim] : 1, outer = 1, inner = 1;
  for (int d = 0; d < dim; d++)
    outer *= x->shape[d];
  for (int d = dim + 1; d < x->rank; d++)
    inner *= x->shape[d];
  if (x->dtype == KL_F32 && x->numel > 0) {
    const kl_vec_f32_ops *vec = kl_vec_f32();
    if (inner == 1) {
      vec->softmax_rows(x->data, y->data, outer, n, use_log);
      return NULL;
    }
    for (int64_t o = 0; o < outer; o++)
      vec->softmax_cols((const float *)x->data + o * n * inner, (float *)y->data + o * n * inner,
                        n, inner, use_log);
    return NULL;
  }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      int64_t base = o * n * inner + in;
      double mx = -INFINITY;
      for (int64_t k = 0; k < n; k++) {
        double v = kl_ld(x, base + k * inner);
        if (v > mx || v != v)
          mx = v;
      }
      if (mx == -INFINITY) /* all -inf: avoid inf - inf; the result is nan as in PyTorch */
        mx = 0.0;
      double sum = 0.0;
      for (int64_t k = 0; k < n; k++)
        sum += exp(kl_ld(x, base + k * inner) - mx);
      double lse = use_log ? mx + log(sum) : 0.0;
      for (int64_t k = 0; k < n; k++) {
        double v = kl_ld(x, base + k * inner);
        kl_st(y, base + k * inner, use_log ? v - lse : exp(v - mx) / sum);
      }
    }
  return NULL;
}
