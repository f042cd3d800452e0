/* 2-D pooling over NCHW: max, average, and PyTorch's adaptive average. The output size comes
 * from y (the shape function applies ceil_mode), so a window may hang over the padded input;
 * such windows are clipped as PyTorch clips them. Values are compared and summed in double. */
#include <math.h>

#include "kernels_internal.h"

static kl_status pool_check(const char *op, const kl_tensor *x, const kl_rt_pool2d_params *p,
                            const kl_tensor *y) {
  if (x->dtype != y->dtype)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: input is %s but output is %s", op,
                            kl_dtype_ir_name(x->dtype), kl_dtype_ir_name(y->dtype));
  if (x->rank != 4 || y->rank != 4 || x->shape[0] != y->shape[0] || x->shape[1] != y->shape[1])
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: input %s and output %s must be 4-D (N, C, H, W) with equal N, C",
                            op, KL_SHAPE(x), KL_SHAPE(y));
  if (!p)
    return NULL;
  for (int i = 0; i < 2; i++)
    if (p->kernel[i] < 1 || p->stride[i] < 1 || p->dilation[i] < 1)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "%s: kernel [%lld, %lld], stride [%lld, %lld] and dilation "
                              "[%lld, %lld] must be >= 1",
                              op, (long long)p->kernel[0], (long long)p->kernel[1],
                              (long long)p->stride[0], (long long)p->stride[1],
                              (long long)p->dilation[0], (long long)p->dilation[1]);
  for (int i = 0; i < 4; i++)
    if (p->pad[i] < 0)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: negative padding %lld", op,
                              (long long)p->pad[i]);
  /* the farthest index a window reaches, (out - 1) * stride + (kernel - 1) * dilation, and the
   * padded extent must fit in int64 so the loops below cannot overflow */
  for (int i = 0; i < 2; i++) {
    int64_t reach, tail, extent;
    int64_t out = y->shape[2 + i] > 0 ? y->shape[2 + i] - 1 : 0;
    if (!kl_mul_i64(out, p->stride[i], &reach) ||
        !kl_mul_i64(p->kernel[i] - 1, p->dilation[i], &tail) || !kl_add_i64(reach, tail, &reach) ||
        !kl_add_i64(x->shape[2 + i], p->pad[i], &extent) ||
        !kl_add_i64(extent, p->pad[i + 2], &extent) || !kl_add_i64(reach, p->kernel[i], &reach))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "%s: window arithmetic overflows for input %s and output %s", op,
                              KL_SHAPE(x), KL_SHAPE(y));
  }
  return NULL;
}

kl_status kl_rt_max_pool2d(const kl_tensor *x, const kl_rt_pool2d_params *p, kl_tensor *y) {
  KL_RETURN_IF_ERROR(pool_check("max_pool2d", x, p, y));
  int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t Ho = y->shape[2], Wo = y->shape[3];
  for (int64_t pl = 0; pl < planes; pl++) { /* x (planes, H, W) -> y (planes, Ho, Wo) */
    int64_t xb = pl * H * W, yb = pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; oh++)
      for (int64_t ow = 0; ow < Wo; ow++) {
        double best = -INFINITY;
        for (int64_t ki = 0; ki < p->kernel[0]; ki++) {
          int64_t ih = oh * p->stride[0] - p->pad[0] + ki * p->dilation[0];
          if (ih < 0 || ih >= H)
            continue;
          for (int64_t kj = 0; kj < p->kernel[1]; kj++) {
            int64_t iw = ow * p->stride[1] - p->pad[1] + kj * p->dilation[1];
            if (iw < 0 || iw >= W)
              continue;
            double v =
                kl_dtype_is_float(x->dtype)
                    ? kl_ld(x, xb + ih * W + iw)
                    : (double)kl_dtype_load_i64(x->dtype, x->data, (size_t)(xb + ih * W + iw));
            if (v > best || v != v) /* nan wins, as in PyTorch */
              best = v;
            if (best != best)
              break;
          }
        }
        kl_st(y, yb + oh * Wo + ow, best);
      }
  }
  return NULL;
}

kl_status kl_rt_avg_pool2d(const kl_tensor *x, const kl_rt_pool2d_params *p, kl_tensor *y) {
  KL_RETURN_IF_ERROR(pool_check("avg_pool2d", x, p, y));
  if (!kl_dtype_is_float(x->dtype))
    return kl_status_create(KL_ERR_UNSUPPORTED, "avg_pool2d: needs a floating-point input, got %s",
                            kl_dtype_ir_name(x->dtype));
  int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t Ho = y->shape[2], Wo = y->shape[3];
  for (int64_t pl = 0; pl < planes; pl++) {
    int64_t xb = pl * H * W, yb = pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; oh++) {
      /* the window within the padded input, then within the input itself */
      int64_t h0 = oh * p->stride[0] - p->pad[0], h1 = h0 + p->kernel[0];
      if (h1 > H + p->pad[2])
        h1 = H + p->pad[2];
      int64_t span_h = h1 - h0;
      if (h0 < 0)
        h0 = 0;
      if (h1 > H)
        h1 = H;
      for (int64_t ow = 0; ow < Wo; ow++) {
        int64_t w0 = ow * p->stride[1] - p->pad[1], w1 = w0 + p->kernel[1];
        if (w1 > W + p->pad[3])
          w1 = W + p->pad[3];
        int64_t span_w = w1 - w0;
        if (w0 < 0)
          w0 = 0;
        if (w1 > W)
          w1 = W;
        double sum = 0.0;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++)
            sum += kl_ld(x, xb + ih * W + iw);
        int64_t count = p->count_include_pad ? span_h * span_w : (h1 - h0) * (w1 - w0);
        kl_st(y, yb + oh * Wo + ow, count > 0 ? sum / (double)count : NAN);
      }
    }
  }
  return NULL;
}

kl_status kl_rt_adaptive_avg_pool2d(const kl_tensor *x, kl_tensor *y) {
  KL_RETURN_IF_ERROR(pool_check("adaptive_avg_pool2d", x, NULL, y));
  if (!kl_dtype_is_float(x->dtype))
    return kl_status_create(KL_ERR_UNSUPPORTED,
                            "adaptive_avg_pool2d: needs a floating-point input, got %s",
                            kl_dtype_ir_name(x->dtype));
  int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t Ho = y->shape[2], Wo = y->shape[3];
  if ((H == 0 || W == 0) && y->numel > 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "adaptive_avg_pool2d: cannot pool empty input %s to %s", KL_SHAPE(x),
                            KL_SHAPE(y));
  for (int64_t pl = 0; pl < planes; pl++) {
    int64_t xb = pl * H * W, yb = pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; oh++) {
      int64_t h0 = oh * H / Ho, h1 = ((oh + 1) * H + Ho - 1) / Ho; /* floor, ceil */
      for (int64_t ow = 0; ow < Wo; ow++) {
        int64_t w0 = ow * W / Wo, w1 = ((ow + 1) * W + Wo - 1) / Wo;
        double sum = 0.0;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++)
            sum += kl_ld(x, xb + ih * W + iw);
        kl_st(y, yb + oh * Wo + ow, sum / (double)((h1 - h0) * (w1 - w0)));
      }
    }
  }
  return NULL;
}
