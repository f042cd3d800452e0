/* ONNX Resize (nearest, linear, cubic; every coordinate transformation mode; antialias;
 * exclude_outside; tf_crop_and_resize with extrapolation), computed separably: for each dim
 * whose mapping is not the identity, every output index gets a short list of input indices
 * and weights (its taps), and the data is filtered along that dim alone, in double. Doing the
 * dims one after another gives the same sums as ONNX's nested per-dim interpolation. */
#include <math.h>
#include <string.h>

#include "kernels_internal.h"

/* The taps of one dim: n per output index; idx already clamped into [0, in). */
typedef struct taps {
  int n;
  int64_t *idx;  /* (out, n) */
  double *w;     /* (out, n) */
  bool *outside; /* (out): tf_crop_and_resize coordinate outside the input */
} taps;

static void taps_free(taps *t) {
  free(t->idx);
  free(t->w);
  free(t->outside);
}

/* The input coordinate that output index o maps to (ONNX's x_original). */
static double source_coord(const kl_rt_resize_params *p, int d, int rank, double o, int64_t in,
                           int64_t out) {
  double s = p->scales[d], width = s * (double)in;
  switch (p->coord) {
  case KL_RESIZE_ALIGN_CORNERS:
    return width == 1 ? 0 : o * (double)(in - 1) / (width - 1);
  case KL_RESIZE_ASYMMETRIC:
    return o / s;
  case KL_RESIZE_TF_CROP_AND_RESIZE: {
    double start = p->roi[d], end = p->roi[rank + d];
    double x = width == 1 ? (end - start) * (double)(in - 1) / 2
                          : o * (end - start) * (double)(in - 1) / (width - 1);
    return x + start * (double)(in - 1);
  }
  case KL_RESIZE_PYTORCH_HALF_PIXEL:
    return width == 1 ? -0.5 : (o + 0.5) / s - 0.5;
  case KL_RESIZE_HALF_PIXEL_SYMMETRIC: {
    double adjustment = (double)out / width, center = (double)in / 2;
    return center * (1 - adjustment) + (o + 0.5) / s - 0.5;
  }
  case KL_RESIZE_HALF_PIXEL:
  default:
    return (o + 0.5) / s - 0.5;
  }
}

/* The filter: linear is a triangle, cubic Keys' kernel with parameter a. */
static double filter(kl_rt_resize_mode mode, double a, double x) {
  x = fabs(x);
  if (mode == KL_RESIZE_LINEAR)
    return x < 1 ? 1 - x : 0;
  if (x <= 1)
    return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2)
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

/* Builds the taps of dim d. Tap i (i from `first`) sits at input index base + i, where
 * base = ceil(x) - 1 and ratio = x - base lies in (0, 1], as in ONNX's reference. */
static kl_status make_taps(const kl_rt_resize_params *p, int d, int rank, int64_t in,
                           int64_t out, taps *t) {
  double s = p->scales[d];
  int first = 0, n = 2;
  double support_scale = 1;
  if (p->mode != KL_RESIZE_NEAREST) {
    support_scale = p->antialias && s < 1 ? s : 1;
    double reach = p->mode == KL_RESIZE_LINEAR ? 1 : 2;
    double f = floor(-reach / support_scale) + 1;
    if (!(f > -1e6))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "resize: scale %g of dim %d is too "
                              "small for antialiasing", s, d);
    first = (int)f;
    n = 2 - 2 * first;
  }
  memset(t, 0, sizeof *t);
  t->n = n;
  size_t count = (size_t)(out > 0 ? out : 1) * (size_t)n;
  t->idx = malloc(count * sizeof *t->idx);
  t->w = malloc(count * sizeof *t->w);
  t->outside = calloc((size_t)(out > 0 ? out : 1), sizeof *t->outside);
  if (!t->idx || !t->w || !t->outside) {
    taps_free(t);
    return kl_status_create(KL_ERR_OUT_OF_MEMORY, "resize: no memory for %lld x %d taps",
                            (long long)out, n);
  }
  for (int64_t o = 0; o < out; o++) {
    double x = source_coord(p, d, rank, (double)o, in, out);
    int64_t *idx = t->idx + o * n;
    double *w = t->w + o * n;
    if (p->coord == KL_RESIZE_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(in - 1)))
      t->outside[o] = true;
    if (!isfinite(x) || fabs(x) > 1e15)
      x = 0, t->outside[o] = p->coord == KL_RESIZE_TF_CROP_AND_RESIZE;
    double base = ceil(x) - 1, ratio = x - base;
    double sum = 0;
    for (int k = 0; k < n; k++) {
      int i = first + k;
      idx[k] = (int64_t)base + i;
      if (p->mode == KL_RESIZE_NEAREST) {
        bool upper;
        if (ratio == 1)
          upper = true;
        else if (p->nearest == KL_NEAREST_ROUND_PREFER_FLOOR)
          upper = ratio > 0.5;
        else if (p->nearest == KL_NEAREST_ROUND_PREFER_CEIL)
          upper = ratio >= 0.5;
        else
          upper = p->nearest == KL_NEAREST_CEIL;
        w[k] = (k == 1) == upper ? 1 : 0;
      } else {
        w[k] = filter(p->mode, p->cubic_coeff_a, ((double)i - ratio) * support_scale);
      }
      if (p->exclude_outside && (idx[k] < 0 || idx[k] >= in))
        w[k] = 0;
      sum += w[k];
    }
    if ((p->antialias || p->exclude_outside) && sum != 0)
      for (int k = 0; k < n; k++)
        w[k] /= sum;
    for (int k = 0; k < n; k++)
      idx[k] = idx[k] < 0 ? 0 : idx[k] >= in ? in - 1 : idx[k];
  }
  return NULL;
}

/* Whether the taps copy input index o to output index o (the dim needs no pass). */
static bool taps_identity(const taps *t, int64_t in, int64_t out) {
  if (in != out)
    return false;
  for (int64_t o = 0; o < out; o++) {
    if (t->outside[o])
      return false;
    for (int k = 0; k < t->n; k++) {
      double w = t->w[o * t->n + k];
      if (w != 0 && !(w == 1 && t->idx[o * t->n + k] == o))
        return false;
    }
  }
  return true;
}

/* dst (outer, out, inner) = taps applied to src (outer, in, inner). */
static void filter_dim(const double *src, double *dst, int64_t outer, int64_t in, int64_t out,
                       int64_t inner, const taps *t) {
  for (int64_t a = 0; a < outer; a++)
    for (int64_t o = 0; o < out; o++) {
      double *y = dst + (a * out + o) * inner;
      for (int64_t b = 0; b < inner; b++)
        y[b] = 0;
      for (int k = 0; k < t->n; k++) {
        double w = t->w[o * t->n + k];
        if (w == 0)
          continue;
        const double *x = src + (a * in + t->idx[o * t->n + k]) * inner;
        for (int64_t b = 0; b < inner; b++)
          y[b] += w * x[b];
      }
    }
}

kl_status kl_rt_resize(const kl_tensor *x, const kl_rt_resize_params *p, kl_tensor *y) {
  if (x->dtype != y->dtype || x->rank != y->rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "resize: input %s %s and output %s %s "
                            "must share dtype and rank", kl_dtype_ir_name(x->dtype), KL_SHAPE(x),
                            kl_dtype_ir_name(y->dtype), KL_SHAPE(y));
  if (!kl_dtype_is_float(x->dtype))
    return kl_status_create(KL_ERR_UNSUPPORTED, "resize: needs a floating-point input, got %s",
                            kl_dtype_ir_name(x->dtype));
  if (p->mode == KL_RESIZE_NEAREST && p->antialias)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "resize: antialias needs linear or cubic "
                            "mode");
  int rank = x->rank;
  for (int d = 0; d < rank; d++)
    if (!(p->scales[d] > 0) || !isfinite(p->scales[d]))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "resize: scale %g of dim %d must be "
                              "positive", p->scales[d], d);
  if (y->numel == 0)
    return NULL;
  if (x->numel == 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "resize: cannot resize empty input %s to %s",
                            KL_SHAPE(x), KL_SHAPE(y));

  /* the working buffer is never larger than the largest of the shapes it passes through */
  int64_t shape[KL_MAX_RANK];
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)rank);
  int64_t most = x->numel, cur = x->numel;
  for (int d = 0; d < rank; d++) {
    cur = cur / shape[d] * y->shape[d];
    most = cur > most ? cur : most;
  }
  double *a = malloc((size_t)most * sizeof(double)), *b = malloc((size_t)most * sizeof(double));
  taps all[KL_MAX_RANK];
  memset(all, 0, sizeof all);
  kl_status status = NULL;
  if (!a || !b) {
    status = kl_status_create(KL_ERR_OUT_OF_MEMORY, "resize: no memory for %lld values",
                              (long long)most);
    goto done;
  }
  for (int64_t i = 0; i < x->numel; i++)
    a[i] = kl_dtype_load_f64(x->dtype, x->data, (size_t)i);
  bool any_outside = false;
  for (int d = 0; d < rank; d++) {
    int64_t in = shape[d], out = y->shape[d];
    if ((status = make_taps(p, d, rank, in, out, &all[d])))
      goto done;
    for (int64_t o = 0; o < out; o++)
      any_outside |= all[d].outside[o];
    if (taps_identity(&all[d], in, out))
      continue;
    int64_t outer = 1, inner = 1;
    for (int e = 0; e < d; e++)
      outer *= shape[e];
    for (int e = d + 1; e < rank; e++)
      inner *= shape[e];
    filter_dim(a, b, outer, in, out, inner, &all[d]);
    shape[d] = out;
    double *swap = a;
    a = b, b = swap;
  }
  /* tf_crop_and_resize: a coordinate outside the input along any dim gives the constant */
  int64_t index[KL_MAX_RANK] = {0};
  for (int64_t i = 0; i < y->numel; i++) {
    double v = a[i];
    if (any_outside) {
      for (int d = 0; d < rank; d++)
        if (all[d].outside[index[d]])
          v = p->extrapolation_value;
      for (int d = rank - 1; d >= 0 && ++index[d] == y->shape[d]; d--)
        index[d] = 0;
    }
    kl_dtype_store_f64(y->dtype, y->data, (size_t)i, v);
  }
done:
  for (int d = 0; d < rank; d++)
    taps_free(&all[d]);
  free(a);
  free(b);
  return status;
}
