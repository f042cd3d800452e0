/* 2-D convolution (NCHW, weights OIHW): the checks, and every dtype but f32 by im2col and the
 * matmul core (f32 is the implicit GEMM of conv_gemm.c).
 *
 * For each image and group, the input patches are unrolled into col (Cin/g * Kh * Kw, Ho * Wo)
 * and the output is W_g (Cout/g, Cin/g * Kh * Kw) @ col, accumulated onto the bias with
 * kl_rt_gemm_f64: the inner loop runs over output pixels, contiguous in both col and y, so it
 * vectorizes. A 1x1, stride-1, unpadded conv needs no unrolling: x itself is col. f64 runs
 * natively; the other dtypes are widened to double and narrowed at the end. */
#include <string.h>

#include "kernels_internal.h"

typedef kl_rt_conv2d_dims conv_dims;

/* Output extent along one axis, or -1 when the window does not fit. */
static int64_t conv_out_size(int64_t in, int64_t pad0, int64_t pad1, int64_t k, int64_t stride,
                             int64_t dilation) {
  int64_t span, avail;
  if (!kl_mul_i64(dilation, k - 1, &span) || !kl_add_i64(span, 1, &span) ||
      !kl_add_i64(in, pad0, &avail) || !kl_add_i64(avail, pad1, &avail) || avail < span)
    return -1;
  return (avail - span) / stride + 1;
}

kl_status kl_rt_conv2d_check(const kl_tensor *x, const kl_tensor *w, const kl_tensor *bias,
                             const kl_rt_conv2d_params *p, const kl_tensor *y, conv_dims *d) {
  if (x->dtype != w->dtype || x->dtype != y->dtype || (bias && bias->dtype != x->dtype))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "conv2d: dtypes differ (x %s, w %s, y %s)",
                            kl_dtype_ir_name(x->dtype), kl_dtype_ir_name(w->dtype),
                            kl_dtype_ir_name(y->dtype));
  if (x->rank != 4 || w->rank != 4 || y->rank != 4)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "conv2d: x %s, w %s and y %s must all be 4-D (NCHW, OIHW)", KL_SHAPE(x),
                            KL_SHAPE(w), KL_SHAPE(y));
  for (int i = 0; i < 2; i++)
    if (p->stride[i] < 1 || p->dilation[i] < 1)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "conv2d: stride and dilation must be >= 1, got stride [%lld, %lld] "
                              "dilation [%lld, %lld]",
                              (long long)p->stride[0], (long long)p->stride[1],
                              (long long)p->dilation[0], (long long)p->dilation[1]);
  for (int i = 0; i < 4; i++)
    if (p->pad[i] < 0)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "conv2d: negative padding %lld",
                              (long long)p->pad[i]);
  d->N = x->shape[0], d->Cin = x->shape[1], d->H = x->shape[2], d->W = x->shape[3];
  d->Cout = w->shape[0], d->Kh = w->shape[2], d->Kw = w->shape[3];
  d->groups = p->groups;
  if (d->groups < 1 || d->Cin % d->groups || d->Cout % d->groups)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "conv2d: groups %lld must divide input channels %lld and output "
                            "channels %lld",
                            (long long)d->groups, (long long)d->Cin, (long long)d->Cout);
  d->Cg = d->Cin / d->groups, d->Cog = d->Cout / d->groups;
  if (w->shape[1] != d->Cg)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "conv2d: w %s must have %lld input channels per group (x %s, groups "
                            "%lld)",
                            KL_SHAPE(w), (long long)d->Cg, KL_SHAPE(x), (long long)d->groups);
  if (bias && (bias->rank != 1 || bias->shape[0] != d->Cout))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "conv2d: bias %s must be [%lld]",
                            KL_SHAPE(bias), (long long)d->Cout);
  d->Ho = conv_out_size(d->H, p->pad[0], p->pad[2], d->Kh, p->stride[0], p->dilation[0]);
  d->Wo = conv_out_size(d->W, p->pad[1], p->pad[3], d->Kw, p->stride[1], p->dilation[1]);
  if (y->shape[0] != d->N || y->shape[1] != d->Cout || y->shape[2] != d->Ho || y->shape[3] != d->Wo)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "conv2d: x %s with w %s gives [%lld, %lld, %lld, %lld], output is %s",
                            KL_SHAPE(x), KL_SHAPE(w), (long long)d->N, (long long)d->Cout,
                            (long long)d->Ho, (long long)d->Wo, KL_SHAPE(y));
  return NULL;
}

/* One conv body per compute type T with its gemm: x (N, Cin, H, W), w (Cout, Cg, Kh, Kw),
 * bias (Cout,) or NULL, y (N, Cout, Ho, Wo), col scratch (Cg * Kh * Kw, Ho * Wo) or NULL when
 * the conv is pointwise. */
#define DEFINE_CONV(T, GEMM)                                                                       \
  static void conv_##T(const conv_dims *d, const kl_rt_conv2d_params *p, const T *x, const T *w,   \
                       const T *bias, T *y, T *col) {                                              \
    int64_t P = d->Ho * d->Wo, KK = d->Cg * d->Kh * d->Kw;                                         \
    for (int64_t n = 0; n < d->N; n++) {                                                           \
      for (int64_t g = 0; g < d->groups; g++) {                                                    \
        const T *xg = x + (n * d->Cin + g * d->Cg) * d->H * d->W; /* (Cg, H, W) */                 \
        const T *wg = w + g * d->Cog * KK;                        /* (Cog, KK) */                  \
        T *yg = y + (n * d->Cout + g * d->Cog) * P;               /* (Cog, P) */                   \
        const T *cols = xg;                                                                        \
        if (col) {                                                                                 \
          for (int64_t c = 0; c < d->Cg; c++)                                                      \
            for (int64_t ki = 0; ki < d->Kh; ki++)                                                 \
              for (int64_t kj = 0; kj < d->Kw; kj++) {                                             \
                T *row = col + ((c * d->Kh + ki) * d->Kw + kj) * P;                                \
                for (int64_t oh = 0; oh < d->Ho; oh++) {                                           \
                  int64_t ih = oh * p->stride[0] - p->pad[0] + ki * p->dilation[0];                \
                  T *out = row + oh * d->Wo;                                                       \
                  if (ih < 0 || ih >= d->H) {                                                      \
                    memset(out, 0, (size_t)d->Wo * sizeof(T));                                     \
                    continue;                                                                      \
                  }                                                                                \
                  const T *in = xg + (c * d->H + ih) * d->W;                                       \
                  for (int64_t ow = 0; ow < d->Wo; ow++) {                                         \
                    int64_t iw = ow * p->stride[1] - p->pad[1] + kj * p->dilation[1];              \
                    out[ow] = iw >= 0 && iw < d->W ? in[iw] : (T)0;                                \
                  }                                                                                \
                }                                                                                  \
              }                                                                                    \
          cols = col;                                                                              \
        }                                                                                          \
        for (int64_t o = 0; o < d->Cog; o++) {                                                     \
          T b0 = bias ? bias[g * d->Cog + o] : (T)0;                                               \
          for (int64_t q = 0; q < P; q++)                                                          \
            yg[o * P + q] = b0;                                                                    \
        }                                                                                          \
        GEMM(d->Cog, P, KK, wg, KK, cols, P, yg, P);                                               \
      }                                                                                            \
    }                                                                                              \
  }

DEFINE_CONV(double, kl_rt_gemm_f64)

kl_status kl_rt_conv2d(const kl_tensor *x, const kl_tensor *w, const kl_tensor *bias,
                       const kl_rt_conv2d_params *p, kl_tensor *y) {
  conv_dims d;
  KL_RETURN_IF_ERROR(kl_rt_conv2d_check(x, w, bias, p, y, &d));
  if (y->numel == 0)
    return NULL;
  if (kl_rt_conv2d_direct_fits(x, w, p->groups)) /* depthwise, narrow groups */
    return kl_rt_conv2d_direct_f32(x, w, bias, p, y, NULL);
  if (x->dtype == KL_F32) { /* the implicit GEMM of conv_gemm.c */
    for (int64_t n = 0; n < d.N; n++)
      for (int64_t g = 0; g < d.groups; g++)
        if (!kl_rt_conv2d_f32_part(&d, p, x->data, w->data, NULL, NULL,
                                   bias ? bias->data : NULL, y->data, n, g, 0, d.Cog, 0,
                                   d.Ho * d.Wo, NULL))
          return kl_rt_oom("conv2d");
    return NULL;
  }
  bool pointwise = d.Kh == 1 && d.Kw == 1 && p->stride[0] == 1 && p->stride[1] == 1 &&
                   p->pad[0] == 0 && p->pad[1] == 0 && p->pad[2] == 0 && p->pad[3] == 0;
  size_t es = sizeof(double);
  int64_t col_elems = 0;
  size_t col_bytes = 0;
  if (!pointwise) {
    int64_t dims[4] = {d.Cg, d.Kh * d.Kw, d.Ho, d.Wo};
    if (!kl_shape_numel(dims, 4, &col_elems) || !kl_mul_size((size_t)col_elems, es, &col_bytes) ||
        col_bytes > kl_tensor_max_bytes())
      return kl_status_create(KL_ERR_LIMIT,
                              "conv2d: x %s with w %s needs a patch buffer over the tensor limit",
                              KL_SHAPE(x), KL_SHAPE(w));
  }
  void *col = pointwise ? NULL : malloc(col_bytes ? col_bytes : 1);
  if (!pointwise && !col)
    return kl_rt_oom("conv2d");
  if (x->dtype == KL_F64) {
    conv_double(&d, p, x->data, w->data, bias ? bias->data : NULL, y->data, col);
    free(col);
    return NULL;
  }
  /* Slow dtypes: widen everything to double, convolve, narrow. */
  double *xd = kl_load_all_f64(x), *wd = kl_load_all_f64(w);
  double *bd = bias ? kl_load_all_f64(bias) : NULL;
  double *yd = malloc((size_t)y->numel * sizeof *yd);
  if (!xd || !wd || (bias && !bd) || !yd) {
    free(xd), free(wd), free(bd), free(yd), free(col);
    return kl_rt_oom("conv2d");
  }
  conv_double(&d, p, xd, wd, bd, yd, col);
  for (int64_t i = 0; i < y->numel; i++)
    kl_dtype_store_f64(y->dtype, y->data, (size_t)i, yd[i]);
  free(xd), free(wd), free(bd), free(yd), free(col);
  return NULL;
}
