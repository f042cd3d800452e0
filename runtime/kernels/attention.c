/* Scaled dot-product attention: for each batch matrix,
 *   y (L, Ev) = softmax(q (L, E) @ k (S, E)^T * scale + mask (L, S)) @ v (S, Ev)
 * with the batch dims of q, k, v and mask broadcast together (numpy rules), as PyTorch's math
 * implementation of F.scaled_dot_product_attention computes it.
 *
 * f32 goes block by block of query rows, flash-attention style but with every key at once: the
 * scores of a block (rows x S, at most SCORE_FLOATS floats, so they stay in L2) come from the
 * packed GEMM of runtime/gemm.h reading k as a transposed operand (no copy), each row is scaled,
 * masked and softmaxed in place by the vector kernel of vec_f32.h, and the block's output rows
 * are one more GEMM, P (rows, S) @ v, written straight into y. The scores live in the calling
 * thread's scratch buffer. Each element comes out of the same arithmetic whatever block or
 * call its row falls in (the GEMM's sums do not depend on M or on which columns are computed),
 * so kl_rt_attention_rows can split the rows across threads bit for bit.
 *
 * Other dtypes keep the reference: one query row at a time, its scores in a scratch row,
 * softmaxed in double (max subtracted, as kl_rt_softmax does, so a decomposed softmax and this
 * kernel agree to rounding) and weighting the rows of v. Both paths give a row whose every key
 * is masked nan, as softmax of all -inf is, and let nan anywhere in q, k, v or the mask reach
 * the outputs it touches (a 0 weight times an inf or nan value is nan, as in PyTorch). */
#include <math.h>

#include "../gemm.h"
#include "kernels_internal.h"
#include "vec_f32.h"

/* Scores per block of query rows, in floats (128 KiB: a block stays in L2 beside k and v). */
enum { SCORE_FLOATS = 32768 };

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

/* What the checks found: shapes, and element strides of each operand's batch dims. */
typedef struct attn_plan {
  int nb; /* batch dims of y */
  const int64_t *batch;
  int64_t L, E, S, Ev, n_batch;
  int64_t qs[KL_MAX_RANK], ks[KL_MAX_RANK], vs[KL_MAX_RANK], ms[KL_MAX_RANK];
} attn_plan;

static kl_status plan_attention(const kl_tensor *q, const kl_tensor *k, const kl_tensor *v,
                                const kl_tensor *mask, const kl_tensor *y, attn_plan *p) {
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
  int nb = p->nb = y->rank - 2; /* y (batch..., L, Ev) */
  p->batch = y->shape;
  p->L = q->shape[q->rank - 2], p->E = q->shape[q->rank - 1];
  p->S = k->shape[k->rank - 2], p->Ev = v->shape[v->rank - 1];
  if (k->shape[k->rank - 1] != p->E)
    return shape_error("q and k differ in their last dim", q, k, v, y);
  if (v->shape[v->rank - 2] != p->S)
    return shape_error("k and v differ in their sequence dim", q, k, v, y);
  if (y->shape[nb] != p->L || y->shape[nb + 1] != p->Ev)
    return shape_error("output is not (..., L, Ev)", q, k, v, y);
  if (!batch_strides(q, p->batch, nb, p->qs) || !batch_strides(k, p->batch, nb, p->ks) ||
      !batch_strides(v, p->batch, nb, p->vs))
    return shape_error("batch dims do not broadcast to the output's", q, k, v, y);
  /* The mask broadcasts to the full score shape (batch..., L, S). */
  int64_t score_shape[KL_MAX_RANK];
  for (int d = 0; d < nb; d++)
    score_shape[d] = p->batch[d];
  score_shape[nb] = p->L;
  score_shape[nb + 1] = p->S;
  if (mask && !kl_broadcast_strides(mask, score_shape, nb + 2, p->ms)) {
    char want[160];
    kl_shape_format(score_shape, nb + 2, want, sizeof want);
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: mask %s does not broadcast to the "
                                                     "scores %s", op, KL_SHAPE(mask), want);
  }
  p->n_batch = p->L > 0 && p->Ev > 0 ? y->numel / (p->L * p->Ev) : 0;
  return NULL;
}

/* Element offsets of batch matrix b in q, k, v and the mask. */
static void batch_offsets(const attn_plan *p, bool has_mask, int64_t b, int64_t *qo,
                          int64_t *ko, int64_t *vo, int64_t *mo) {
  *qo = *ko = *vo = *mo = 0;
  for (int d = p->nb - 1; d >= 0; d--) {
    int64_t i = b % p->batch[d];
    b /= p->batch[d];
    *qo += i * p->qs[d], *ko += i * p->ks[d], *vo += i * p->vs[d];
    *mo += has_mask ? i * p->ms[d] : 0;
  }
}

/* Rows [i0, i1) of batch matrix b, in double: the reference. row (S) and acc (Ev) are scratch. */
static void rows_reference(const attn_plan *p, const kl_tensor *q, const kl_tensor *k,
                           const kl_tensor *v, const kl_tensor *mask, double scale,
                           bool is_causal, kl_tensor *y, int64_t b, int64_t i0, int64_t i1,
                           double *row, double *acc) {
  int nb = p->nb;
  int64_t E = p->E, S = p->S, Ev = p->Ev, qo, ko, vo, mo;
  batch_offsets(p, mask != NULL, b, &qo, &ko, &vo, &mo);
  for (int64_t i = i0; i < i1; i++) {
    /* scores (S,) = q[i] . k[j] * scale + mask[i, j]; causal: keys after the query drop out */
    double mx = -INFINITY;
    for (int64_t j = 0; j < S; j++) {
      double s = 0.0;
      for (int64_t e = 0; e < E; e++)
        s += kl_ld(q, qo + i * E + e) * kl_ld(k, ko + j * E + e);
      s *= scale;
      if (mask) {
        int64_t m = mo + i * p->ms[nb] + j * p->ms[nb + 1];
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
      double pj = row[j] / sum;
      for (int64_t e = 0; e < Ev; e++)
        acc[e] += pj * kl_ld(v, vo + j * Ev + e);
    }
    int64_t yo = (b * p->L + i) * Ev;
    for (int64_t e = 0; e < Ev; e++)
      kl_st(y, yo + e, acc[e]);
  }
}

/* Rows [i0, i1) of batch matrix b in f32, a block of query rows at a time. false when scratch
 * memory cannot be had. */
static bool rows_f32(const attn_plan *p, const kl_tensor *q, const kl_tensor *k,
                     const kl_tensor *v, const kl_tensor *mask, float scale, bool is_causal,
                     kl_tensor *y, int64_t b, int64_t i0, int64_t i1) {
  int nb = p->nb;
  int64_t E = p->E, S = p->S, Ev = p->Ev, qo, ko, vo, mo;
  batch_offsets(p, mask != NULL, b, &qo, &ko, &vo, &mo);
  const kl_vec_f32_ops *vec = kl_vec_f32();
  int64_t block = S > 0 ? SCORE_FLOATS / S : i1 - i0;
  if (block < 1)
    block = 1;
  if (block > i1 - i0)
    block = i1 - i0;
  float *scores = kl_vec_scratch((size_t)(block * S > 0 ? block * S : 1)); /* (block, S) */
  if (!scores)
    return false;
  const float *qb = (const float *)q->data + qo, *kb = (const float *)k->data + ko;
  const float *vb = (const float *)v->data + vo;
  float *yb = (float *)y->data + b * p->L * Ev;
  bool bool_mask = mask && mask->dtype == KL_BOOL;
  int64_t m_row = mask ? p->ms[nb] : 0, m_col = mask ? p->ms[nb + 1] : 0;
  for (int64_t r0 = i0; r0 < i1; r0 += block) {
    int64_t rows = i1 - r0 < block ? i1 - r0 : block;
    /* scores (rows, S) = q[r0 : r0 + rows] @ k^T; with is_causal the keys past the block's last
     * row are dropped in every row, so their scores are not computed */
    int64_t keys = is_causal && r0 + rows < S ? r0 + rows : S;
    kl_sgemm_operand qa = {qb + r0 * E, E, false}, kt = {kb, E, true};
    if (!kl_sgemm(rows, keys, E, qa, NULL, kt, NULL, scores, S, false))
      return false;
    for (int64_t t = 0; t < rows; t++) {
      int64_t i = r0 + t;
      kl_vec_mask m = {.n_valid = is_causal && i + 1 < S ? i + 1 : S};
      if (mask) {
        int64_t mi = mo + i * m_row;
        if (m_col == 0) { /* one mask value for the whole row */
          if (bool_mask)
            m.n_valid = ((const uint8_t *)mask->data)[mi] ? m.n_valid : 0;
          else
            m.add_one = true, m.add_scalar = ((const float *)mask->data)[mi];
        } else if (bool_mask) {
          m.keep = (const uint8_t *)mask->data + mi;
        } else {
          m.add = (const float *)mask->data + mi;
        }
      }
      vec->attention_row(scores + t * S, S, scale, &m);
    }
    /* y[r0 : r0 + rows] (rows, Ev) = P (rows, S) @ v (S, Ev) */
    kl_sgemm_operand pa = {scores, S, false}, vm = {vb, Ev, false};
    if (!kl_sgemm(rows, Ev, S, pa, NULL, vm, NULL, yb + r0 * Ev, Ev, false))
      return false;
  }
  return true;
}

kl_status kl_rt_attention_rows(const kl_tensor *q, const kl_tensor *k, const kl_tensor *v,
                               const kl_tensor *mask, double scale, bool is_causal, kl_tensor *y,
                               int64_t row_begin, int64_t row_end) {
  const char *op = "scaled_dot_product_attention";
  attn_plan p;
  KL_RETURN_IF_ERROR(plan_attention(q, k, v, mask, y, &p));
  int64_t n_rows = p.n_batch * p.L;
  if (row_begin < 0 || row_end > n_rows || row_begin > row_end)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: rows [%lld, %lld) outside the %lld of "
                            "output %s", op, (long long)row_begin, (long long)row_end,
                            (long long)n_rows, KL_SHAPE(y));
  if (row_begin == row_end || y->numel == 0)
    return NULL;
  bool f32 = q->dtype == KL_F32;
  double *row = NULL, *acc = NULL;
  if (!f32) {
    row = malloc((size_t)(p.S ? p.S : 1) * sizeof *row);
    acc = malloc((size_t)(p.Ev ? p.Ev : 1) * sizeof *acc);
    if (!row || !acc) {
      free(row);
      free(acc);
      return kl_rt_oom(op);
    }
  }
  kl_status err = NULL;
  for (int64_t r = row_begin; r < row_end && !err;) {
    int64_t b = r / p.L, i0 = r % p.L;
    int64_t i1 = p.L - i0 < row_end - r ? p.L : i0 + (row_end - r);
    if (!f32)
      rows_reference(&p, q, k, v, mask, scale, is_causal, y, b, i0, i1, row, acc);
    else if (!rows_f32(&p, q, k, v, mask, (float)scale, is_causal, y, b, i0, i1))
      err = kl_rt_oom(op);
    r += i1 - i0;
  }
  free(row);
  free(acc);
  return err;
}

kl_status kl_rt_attention(const kl_tensor *q, const kl_tensor *k, const kl_tensor *v,
                          const kl_tensor *mask, double scale, bool is_causal, kl_tensor *y) {
  int64_t rows = y->rank >= 1 && y->shape[y->rank - 1] ? y->numel / y->shape[y->rank - 1] : 0;
  return kl_rt_attention_rows(q, k, v, mask, scale, is_causal, y, 0, rows);
}
