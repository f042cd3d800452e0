/* ONNX GridSample (PyTorch's grid_sample) over any number of spatial dims: each output point
 * reads normalized coordinates from the grid (last entry = last dim), maps them to input
 * coordinates (align_corners or not), folds them back in by the padding mode, and takes the
 * nearest value or a separable linear or cubic (Keys, a = -0.75) blend. Taps that fall outside
 * the input read 0 (zeros), the edge (border), or the mirrored index (reflection). */
#include <math.h>
#include <string.h>

#include "kernels_internal.h"

/* Mirrors x into [lo, hi] by reflecting at the nearer border until inside. */
static double reflect(double x, double lo, double hi) {
  double range = hi - lo;
  if (range <= 0)
    return lo;
  if (x < lo) {
    double dx = lo - x, n = floor(dx / range), r = dx - n * range;
    return fmod(n, 2) == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    double dx = x - hi, n = floor(dx / range), r = dx - n * range;
    return fmod(n, 2) == 0 ? hi - r : lo + r;
  }
  return x;
}

/* The input index tap i reads along a dim of size len, or -1 for a zero. */
static int64_t tap_index(int64_t i, int64_t len, kl_rt_grid_padding padding, double lo,
                         double hi) {
  if (padding == KL_GRID_PAD_ZEROS)
    return i >= 0 && i < len ? i : -1;
  if (padding == KL_GRID_PAD_BORDER)
    return i < 0 ? 0 : i >= len ? len - 1 : i;
  int64_t r = (int64_t)reflect((double)i, lo, hi);
  return r < 0 ? 0 : r >= len ? len - 1 : r;
}

static void cubic_weights(double t, double *w) {
  const double a = -0.75;
  double x0 = t + 1, x1 = t, x2 = 1 - t, x3 = 2 - t;
  w[0] = ((a * x0 - 5 * a) * x0 + 8 * a) * x0 - 4 * a;
  w[1] = ((a + 2) * x1 - (a + 3)) * x1 * x1 + 1;
  w[2] = ((a + 2) * x2 - (a + 3)) * x2 * x2 + 1;
  w[3] = ((a * x3 - 5 * a) * x3 + 8 * a) * x3 - 4 * a;
}

kl_status kl_rt_grid_sample(const kl_tensor *x, const kl_tensor *grid, kl_rt_resize_mode mode,
                            kl_rt_grid_padding padding, bool align_corners, kl_tensor *y) {
  int k = x->rank - 2;
  if (k < 1 || grid->rank != x->rank || y->rank != x->rank || grid->shape[k + 1] != k ||
      grid->shape[0] != x->shape[0] || y->shape[0] != x->shape[0] ||
      y->shape[1] != x->shape[1] || x->dtype != y->dtype)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "grid_sample: input %s, grid %s and "
                            "output %s do not fit (N, C, D1..Dk), (N, O1..Ok, k), (N, C, O1..Ok)",
                            KL_SHAPE(x), KL_SHAPE(grid), KL_SHAPE(y));
  for (int d = 0; d < k; d++)
    if (y->shape[2 + d] != grid->shape[1 + d])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "grid_sample: output %s does not match "
                              "grid %s", KL_SHAPE(y), KL_SHAPE(grid));
  if (!kl_dtype_is_float(x->dtype) || !kl_dtype_is_float(grid->dtype))
    return kl_status_create(KL_ERR_UNSUPPORTED, "grid_sample: needs floating-point input and "
                            "grid, got %s and %s", kl_dtype_ir_name(x->dtype),
                            kl_dtype_ir_name(grid->dtype));
  if (y->numel == 0)
    return NULL;
  const int64_t *dims = x->shape + 2;
  for (int d = 0; d < k; d++)
    if (dims[d] == 0)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "grid_sample: empty input %s",
                              KL_SHAPE(x));
  int n_taps = mode == KL_RESIZE_NEAREST ? 1 : mode == KL_RESIZE_LINEAR ? 2 : 4;
  int64_t combos = 1;
  for (int d = 0; d < k; d++) {
    combos *= n_taps;
    if (combos > (1 << 20))
      return kl_status_create(KL_ERR_LIMIT, "grid_sample: %d spatial dims is too many for "
                              "this mode", k);
  }
  int64_t xstrides[KL_MAX_RANK], points = 1, plane = 1;
  kl_dense_strides(dims, k, xstrides);
  for (int d = 0; d < k; d++)
    points *= y->shape[2 + d], plane *= dims[d];
  int64_t N = x->shape[0], C = x->shape[1];
  for (int64_t n = 0; n < N; n++)
    for (int64_t pt = 0; pt < points; pt++) {
      /* per dim: the tap indices (-1: zero) and weights */
      int64_t idx[KL_MAX_RANK][4];
      double w[KL_MAX_RANK][4];
      for (int d = 0; d < k; d++) {
        double g = kl_dtype_load_f64(grid->dtype, grid->data,
                                     (size_t)((n * points + pt) * k + (k - 1 - d)));
        double len = (double)dims[d];
        double c = (double)(float)(align_corners ? (g + 1) / 2 * (len - 1)
                                                 : ((g + 1) * len - 1) / 2);
        double lo = align_corners ? 0 : -0.5, hi = align_corners ? len - 1 : len - 0.5;
        if (mode == KL_RESIZE_NEAREST)
          c = nearbyint(c);
        if (!isfinite(c))
          c = -1e9;
        if (c < lo || c > hi) {
          if (padding == KL_GRID_PAD_BORDER)
            c = c < 0 ? 0 : c > len - 1 ? len - 1 : c;
          else if (padding == KL_GRID_PAD_REFLECTION)
            c = reflect(c, lo, hi);
        }
        c = fmax(fmin(c, 1e15), -1e15);
        if (mode == KL_RESIZE_NEAREST) {
          idx[d][0] = tap_index((int64_t)c, dims[d], padding, lo, hi);
          w[d][0] = 1;
          continue;
        }
        double f = floor(c), t = c - f;
        int64_t i0 = (int64_t)f;
        if (mode == KL_RESIZE_LINEAR) {
          w[d][0] = 1 - t, w[d][1] = t;
          for (int j = 0; j < 2; j++)
            idx[d][j] = tap_index(i0 + j, dims[d], padding, lo, hi);
        } else {
          cubic_weights(t, w[d]);
          for (int j = 0; j < 4; j++)
            idx[d][j] = tap_index(i0 - 1 + j, dims[d], padding, lo, hi);
        }
      }
      for (int64_t ch = 0; ch < C; ch++) {
        int64_t xbase = (n * C + ch) * plane;
        double acc = 0;
        for (int64_t combo = 0; combo < combos; combo++) {
          int64_t rest = combo, off = 0;
          double weight = 1;
          for (int d = k - 1; d >= 0 && weight != 0; d--) {
            int j = (int)(rest % n_taps);
            rest /= n_taps;
            if (idx[d][j] < 0)
              weight = 0;
            else
              weight *= w[d][j], off += idx[d][j] * xstrides[d];
          }
          if (weight != 0)
            acc += weight * kl_dtype_load_f64(x->dtype, x->data, (size_t)(xbase + off));
        }
        kl_dtype_store_f64(y->dtype, y->data, (size_t)((n * C + ch) * points + pt), acc);
      }
    }
  return NULL;
}
