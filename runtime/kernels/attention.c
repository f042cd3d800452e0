/* Scaled dot-product attention, the reference form: for each batch matrix,
 *   y (L, Ev) = softmax(q (L, E) @ k (S, E)^T * scale + mask (L, S)) @ v (S, Ev)
 * with the batch dims of q, k, v and mask broadcast together (numpy rules), as PyTorch's math
 * implementation of F.scaled_dot_product_attention computes it. One query row at a time: its
 * scores go into a scratch row, are softmaxed in double (max subtracted, as kl_rt_softmax does,
 * so a decomposed softmax and this kernel agree to rounding) and weight the rows of v. */
#include <math.h>

#include "kernels_internal.h"

/* Element offsets of one batch dim index vector into a tensor read as if broadcast: strides of
 * x's leading (rank - 2) dims against the batch shape of rank nb, in elements of x. */
static bool batch_strides(const kl_tensor *x, const int64_t *batch, int nb, int64_t *out) {
  int xb = x->rank - 2;
  if (xb > nb)
    return false;
  int64_t dense[KL_MAX_RANK];
  kl_dense_strides(x->shape, x->rank, dense);
  for (int d = 0; d < nb; d++) {
    int xd = d - (nb - xb);
    if (xd < 0) {
      out[d] = 0;
      continue;
    }
    int64_t n = x->shape[xd];
    if (n != batch[d] && n != 1)
      return false;
    out[d] = n == 1 ? 0 : dense[xd];
  }
  return true;
}

static kl_status shape_error(const char *what, const kl_tensor *q, const kl_tensor *k,
                             const kl_tensor *v, const kl_tensor *y) {
  return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                          "scaled_dot_product_attention: %s (q %s, k %s, v %s, output %s)", what,
                          KL_SHAPE(q), KL_SHAPE(k), KL_SHAPE(v), KL_SHAPE(y));
}

kl_status kl_rt_attention(const kl_tensor *q, const kl_tensor *k, const kl_tensor *v,
                          const kl_tensor *mask, double scale, bool is_causal, kl_tensor *y) {
  const char *op = "scaled_dot_product_attention";
  if (!kl_dtype_is_float(q->dtype) || k->dtype != q->dtype || v->dtype != q->dtype ||
      y->dtype != q->dtype)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: q, k, v and output must share one floating-point dtype (got %s, "
                            "%s, %s, %s)", op, kl_dtype_ir_name(q->dtype),
                            kl_dtype_ir_name(k->dtype), kl_dtype_ir_name(v->dtype),
                            kl_dtype_ir_name(y->dtype));
  if (mask && mask->dtype != q->dtype && mask->dtype != KL_BOOL)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: mask is %s; it must be Bool or the dtype of q (%s)", op,
                            kl_dtype_ir_name(mask->dtype), kl_dtype_ir_name(q->dtype));
  if (q->rank < 2 || k->rank < 2 || v->rank < 2 || y->rank < 2)
    return shape_error("every operand needs at least 2 dims", q, k, v, y);
  int nb = y->rank - 2; /* y (batch..., L, Ev) */
  const int64_t *batch = y->shape;
  int64_t L = q->shape[q->rank - 2], E = q->shape[q->rank - 1];
  int64_t S = k->shape[k->rank - 2], Ev = v->shape[v->rank - 1];
  if (k->shape[k->rank - 1] != E)
    return shape_error("q and k differ in their last dim", q, k, v, y);
  if (v->shape[v->rank - 2] != S)
    return shape_error("k and v differ in their sequence dim", q, k, v, y);
  if (y->shape[nb] != L || y->shape[nb + 1] != Ev)
    return shape_error("output is not (..., L, Ev)", q, k, v, y);
  int64_t qs[KL_MAX_RANK], ks[KL_MAX_RANK], vs[KL_MAX_RANK], ms[KL_MAX_RANK];
  if (!batch_strides(q, batch, nb, qs) || !batch_strides(k, batch, nb, ks) ||
      !batch_strides(v, batch, nb, vs))
    return shape_error("batch dims do not broadcast to the output's", q, k, v, y);
  /* The mask broadcasts to the full score shape (batch..., L, S). */
  int64_t score_shape[KL_MAX_RANK];
  for (int d = 0; d < nb; d++)
    score_shape[d] = batch[d];
  score_shape[nb] = L;
  score_shape[nb + 1] = S;
  if (mask && !kl_broadcast_strides(mask, score_shape, nb + 2, ms)) {
    char want[160];
    kl_shape_format(score_shape, nb + 2, want, sizeof want);
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: mask %s does not broadcast to the "
                                                     "scores %s", op, KL_SHAPE(mask), want);
  }
  if (y->numel == 0)
    return NULL;
  double *row = malloc((size_t)(S ? S : 1) * sizeof *row);
  double *acc = malloc((size_t)(Ev ? Ev : 1) * sizeof *acc);
  if (!row || !acc) {
    free(row);
    free(acc);
    return kl_rt_oom(op);
  }
  int64_t n_batch = y->numel / (L * Ev);
  int64_t idx[KL_MAX_RANK] = {0};
  int64_t qo = 0, ko = 0, vo = 0, mo = 0; /* offsets of the current batch matrix */
  for (int64_t b = 0; b < n_batch; b++) {
    for (int64_t i = 0; i < L; i++) {
      /* scores (S,) = q[i] . k[j] * scale + mask[i, j]; causal: keys after the query drop out */
      double mx = -INFINITY;
      for (int64_t j = 0; j < S; j++) {
        double s = 0.0;
        for (int64_t e = 0; e < E; e++)
          s += kl_ld(q, qo + i * E + e) * kl_ld(k, ko + j * E + e);
        s *= scale;
        if (mask) {
          int64_t m = mo + i * ms[nb] + j * ms[nb + 1];
          if (mask->dtype == KL_BOOL)
            s = ((const uint8_t *)mask->data)[m] ? s : -INFINITY;
          else
            s += kl_ld(mask, m);
        }
        if (is_causal && j > i)
          s = -INFINITY;
        row[j] = s;
        if (s > mx || s != s)
          mx = s;
      }
      if (mx == -INFINITY) /* every key masked: 0/0 = nan below, as softmax gives */
        mx = 0.0;
      double sum = 0.0;
      for (int64_t j = 0; j < S; j++) {
        row[j] = exp(row[j] - mx);
        sum += row[j];
      }
      for (int64_t e = 0; e < Ev; e++)
        acc[e] = 0.0;
      for (int64_t j = 0; j < S; j++) {
        double p = row[j] / sum;
        for (int64_t e = 0; e < Ev; e++)
          acc[e] += p * kl_ld(v, vo + j * Ev + e);
      }
      int64_t yo = (b * L + i) * Ev;
      for (int64_t e = 0; e < Ev; e++)
        kl_st(y, yo + e, acc[e]);
    }
    /* next batch index: the batch dims of y, last fastest */
    for (int d = nb - 1; d >= 0; d--) {
      idx[d]++;
      qo += qs[d], ko += ks[d], vo += vs[d], mo += mask ? ms[d] : 0;
      if (idx[d] < batch[d])
        break;
      qo -= qs[d] * batch[d], ko -= ks[d] * batch[d], vo -= vs[d] * batch[d];
      mo -= mask ? ms[d] * batch[d] : 0;
      idx[d] = 0;
    }
  }
  free(row);
  free(acc);
  return NULL;
}
