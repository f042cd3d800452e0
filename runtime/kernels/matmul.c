/* Matrix products: numpy matmul (batched, broadcasting) and linear (x @ w^T + bias).
 *
 * Everything funnels into one core, C (M, N) += A (M, K) @ B (K, N): for f32 the blocked,
 * register-tiled GEMM of runtime/gemm.h, for f64 a loop written i-k-j so the inner loop runs
 * over contiguous rows of B and C and the compiler vectorizes it. The other dtypes are widened
 * to double, multiplied, and narrowed at the end. f32 linear reads w transposed in the GEMM
 * (or packed ahead of time), with the bias starting each sum; with few rows (batch-1
 * inference) it uses row-by-row dot products instead, which stream w once (four rows at a time
 * with AVX2). conv.c reuses the cores (kernels_internal.h). */
#include <string.h>

#include "../gemm.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* The cores work on panels of B small enough to stay in cache while every row of A passes
 * over them: without this, a large B is streamed from memory once per row of A. Blocking keeps
 * each C element's sum in ascending k order (the block sizes are multiples of 4), so results do
 * not depend on the sizes. */
enum { GEMM_BLOCK_K = 64, GEMM_BLOCK_N = 512 };

/* C (M, N) += A (M, K) @ B (K, N) for one panel: i-k-j, four rows of B per pass. */
static void gemm_panel_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                           const float *B, int64_t ldb, float *C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++) {
    float *c = C + i * ldc;
    const float *a = A + i * lda;
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) { /* four rows of B per pass quarter the traffic on C */
      float a0 = a[k], a1 = a[k + 1], a2 = a[k + 2], a3 = a[k + 3];
      const float *b0 = B + k * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
      for (int64_t j = 0; j < N; j++)
        c[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
    }
    for (; k < K; k++) {
      float ak = a[k];
      const float *b = B + k * ldb;
      for (int64_t j = 0; j < N; j++)
        c[j] += ak * b[j];
    }
  }
}

static void gemm_panel_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda,
                           const double *B, int64_t ldb, double *C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++) {
    double *c = C + i * ldc;
    const double *a = A + i * lda;
    for (int64_t k = 0; k < K; k++) {
      double ak = a[k];
      const double *b = B + k * ldb;
      for (int64_t j = 0; j < N; j++)
        c[j] += ak * b[j];
    }
  }
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

void kl_rt_gemm_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                    int64_t ldb, float *C, int64_t ldc) {
  /* the packed, register-tiled GEMM of runtime/gemm.h; the loops below only when it cannot
   * have its scratch memory */
  kl_sgemm_operand a = {A, lda, false}, b = {B, ldb, false};
  if (kl_sgemm(M, N, K, a, NULL, b, NULL, C, ldc, true))
    return;
  for (int64_t j0 = 0; j0 < N; j0 += GEMM_BLOCK_N)
    for (int64_t k0 = 0; k0 < K; k0 += GEMM_BLOCK_K)
      gemm_panel_f32(M, min64(GEMM_BLOCK_N, N - j0), min64(GEMM_BLOCK_K, K - k0), A + k0, lda,
                     B + k0 * ldb + j0, ldb, C + j0, ldc);
}

void kl_rt_gemm_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, const double *B,
                    int64_t ldb, double *C, int64_t ldc) {
  for (int64_t j0 = 0; j0 < N; j0 += GEMM_BLOCK_N)
    for (int64_t k0 = 0; k0 < K; k0 += GEMM_BLOCK_K)
      gemm_panel_f64(M, min64(GEMM_BLOCK_N, N - j0), min64(GEMM_BLOCK_K, K - k0), A + k0, lda,
                     B + k0 * ldb + j0, ldb, C + j0, ldc);
}

/* a (n,) . b (n,) with eight independent partial sums, so the loop vectorizes without
 * reassociating one long dependency chain (which -O2 may not do for floats). */
static float dot_f32(const float *a, const float *b, int64_t n) {
  float part[8] = {0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++)
      part[k] += a[i + k] * b[i + k];
  float sum =
      ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; i < n; i++)
    sum += a[i] * b[i];
  return sum;
}

/* y[o] = bias[o] + dot_f32(x, w + o * n, n) for o in [0, out): rows of w in fours with AVX2,
 * each row summed by dot_f32's operations in dot_f32's order (eight lanes of products, each a
 * multiply then an add, reduced pairwise, the tail in order), so the bits are dot_f32's. Four
 * rows at once keep four weight streams in flight: a batch-1 linear reads its weights once,
 * from memory. */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static void dots_f32_avx2(const float *x, const float *w,
                                                          const float *bias, float *y,
                                                          int64_t n, int64_t out) {
  int64_t o = 0;
  for (; o + 4 <= out; o += 4) {
    const float *w0 = w + o * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
    __m256 p0 = _mm256_setzero_ps(), p1 = p0, p2 = p0, p3 = p0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256 xv = _mm256_loadu_ps(x + i);
      p0 = _mm256_add_ps(p0, _mm256_mul_ps(xv, _mm256_loadu_ps(w0 + i)));
      p1 = _mm256_add_ps(p1, _mm256_mul_ps(xv, _mm256_loadu_ps(w1 + i)));
      p2 = _mm256_add_ps(p2, _mm256_mul_ps(xv, _mm256_loadu_ps(w2 + i)));
      p3 = _mm256_add_ps(p3, _mm256_mul_ps(xv, _mm256_loadu_ps(w3 + i)));
    }
    __m256 parts[4] = {p0, p1, p2, p3};
    for (int r = 0; r < 4; r++) {
      float q[8];
      _mm256_storeu_ps(q, parts[r]);
      float sum = ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
      const float *wr = w + (o + r) * n;
      for (int64_t k = i; k < n; k++)
        sum += x[k] * wr[k];
      y[o + r] = (bias ? bias[o + r] : 0.0f) + sum;
    }
  }
  for (; o < out; o++)
    y[o] = (bias ? bias[o] : 0.0f) + dot_f32(x, w + o * n, n);
}
#endif

static void dots_f32(const float *x, const float *w, const float *bias, float *y, int64_t n,
                     int64_t out) {
#if defined(__x86_64__) && defined(__GNUC__)
  /* for weights worth streaming: a tiny layer (an MLP's 10 -> 5) ran 4x slower this way */
  if (n >= 64 && out >= 4 && __builtin_cpu_supports("avx2")) {
    dots_f32_avx2(x, w, bias, y, n, out);
    return;
  }
#endif
  for (int64_t o = 0; o < out; o++)
    y[o] = (bias ? bias[o] : 0.0f) + dot_f32(x, w + o * n, n);
}

static double dot_f64(const double *a, const double *b, int64_t n) {
  double part[4] = {0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; k++)
      part[k] += a[i + k] * b[i + k];
  double sum = (part[0] + part[1]) + (part[2] + part[3]);
  for (; i < n; i++)
    sum += a[i] * b[i];
  return sum;
}

/* dst (cols, rows) = src (rows, cols)^T in 32x32 tiles, so both sides stay in cache. */
#define DEFINE_TRANSPOSE(NAME, T)                                                                  \
  static void NAME(const T *src, int64_t rows, int64_t cols, T *dst) {                             \
    for (int64_t r0 = 0; r0 < rows; r0 += 32)                                                      \
      for (int64_t c0 = 0; c0 < cols; c0 += 32)                                                    \
        for (int64_t r = r0; r < min64(r0 + 32, rows); r++)                                        \
          for (int64_t c = c0; c < min64(c0 + 32, cols); c++)                                      \
            dst[c * rows + r] = src[r * cols + c];                                                 \
  }
DEFINE_TRANSPOSE(transpose_f64, double)

/* Data of t as a matrix of the compute dtype: the buffer itself for f32/f64, else a widened
 * copy in *owned (freed by the caller). */
static const void *compute_view(const kl_tensor *t, bool f32, void **owned) {
  *owned = NULL;
  if ((f32 && t->dtype == KL_F32) || (!f32 && t->dtype == KL_F64))
    return t->data;
  double *wide = kl_load_all_f64(t);
  *owned = wide;
  return wide;
}

/* Stores the double buffer acc (numel of y) into y when y is not itself f64. */
static void narrow_into(const double *acc, kl_tensor *y) {
  for (int64_t i = 0; i < y->numel; i++)
    kl_dtype_store_f64(y->dtype, y->data, (size_t)i, acc[i]);
}

kl_status kl_rt_matmul(const kl_tensor *a, const kl_tensor *b, kl_tensor *y) {
  if (a->dtype != b->dtype || a->dtype != y->dtype)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "matmul: dtypes differ (%s @ %s -> %s)",
                            kl_dtype_ir_name(a->dtype), kl_dtype_ir_name(b->dtype),
                            kl_dtype_ir_name(y->dtype));
  if (a->rank < 1 || b->rank < 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "matmul: operands %s and %s must be at least 1-D", KL_SHAPE(a),
                            KL_SHAPE(b));
  /* Promote 1-D operands: a (K,) -> (1, K), b (K,) -> (K, 1). */
  int64_t M = a->rank == 1 ? 1 : a->shape[a->rank - 2];
  int64_t K = a->shape[a->rank - 1];
  int64_t Kb = b->rank == 1 ? b->shape[0] : b->shape[b->rank - 2];
  int64_t N = b->rank == 1 ? 1 : b->shape[b->rank - 1];
  if (K != Kb)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "matmul: inner dims differ: %s @ %s",
                            KL_SHAPE(a), KL_SHAPE(b));
  /* Batch dims of a and b broadcast against each other to those of y. */
  int a_batch = a->rank > 2 ? a->rank - 2 : 0, b_batch = b->rank > 2 ? b->rank - 2 : 0;
  int batch_rank = a_batch > b_batch ? a_batch : b_batch;
  int64_t batch_shape[KL_MAX_RANK], want[KL_MAX_RANK];
  int want_rank = 0;
  for (int d = 0; d < batch_rank; d++) {
    int da = d - (batch_rank - a_batch), db = d - (batch_rank - b_batch);
    int64_t na = da >= 0 ? a->shape[da] : 1, nb = db >= 0 ? b->shape[db] : 1;
    if (na != nb && na != 1 && nb != 1)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "matmul: batch dims do not broadcast: %s @ %s", KL_SHAPE(a),
                              KL_SHAPE(b));
    batch_shape[d] = na == 1 ? nb : na;
    want[want_rank++] = batch_shape[d];
  }
  if (a->rank > 1)
    want[want_rank++] = M;
  if (b->rank > 1)
    want[want_rank++] = N;
  bool shape_ok = want_rank == y->rank;
  for (int d = 0; shape_ok && d < want_rank; d++)
    shape_ok = want[d] == y->shape[d];
  if (!shape_ok) {
    char buf[160];
    kl_shape_format(want, want_rank, buf, sizeof buf);
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "matmul: %s @ %s gives %s, output is %s",
                            KL_SHAPE(a), KL_SHAPE(b), buf, KL_SHAPE(y));
  }
  /* Batch strides in matrices: 0 on broadcast dims. */
  int64_t sa[KL_MAX_RANK], sb[KL_MAX_RANK], ia = 1, ib = 1;
  for (int d = batch_rank - 1; d >= 0; d--) {
    int da = d - (batch_rank - a_batch), db = d - (batch_rank - b_batch);
    int64_t na = da >= 0 ? a->shape[da] : 1, nb = db >= 0 ? b->shape[db] : 1;
    sa[d] = na == 1 ? 0 : ia;
    sb[d] = nb == 1 ? 0 : ib;
    ia *= na;
    ib *= nb;
  }
  int64_t n_batch = 1;
  for (int d = 0; d < batch_rank; d++)
    n_batch *= batch_shape[d];

  if (y->nbytes)
    memset(y->data, 0, y->nbytes);
  bool f32 = a->dtype == KL_F32;
  void *own_a, *own_b;
  const void *pa = compute_view(a, f32, &own_a), *pb = compute_view(b, f32, &own_b);
  double *acc = NULL;
  if (!f32 && y->dtype != KL_F64)
    acc = calloc((size_t)(y->numel ? y->numel : 1), sizeof *acc);
  if ((!pa && a->numel) || (!pb && b->numel) || (!f32 && y->dtype != KL_F64 && !acc)) {
    free(own_a);
    free(own_b);
    free(acc);
    return kl_rt_oom("matmul");
  }
  int64_t idx[KL_MAX_RANK] = {0}, oa = 0, ob = 0;
  for (int64_t bi = 0; bi < n_batch; bi++) {
    /* a[bi] (M, K) @ b[bi] (K, N) -> y[bi] (M, N) */
    if (f32)
      kl_rt_gemm_f32(M, N, K, (const float *)pa + oa * M * K, K, (const float *)pb + ob * K * N, N,
                     (float *)y->data + bi * M * N, N);
    else
      kl_rt_gemm_f64(M, N, K, (const double *)pa + oa * M * K, K, (const double *)pb + ob * K * N,
                     N, (acc ? acc : (double *)y->data) + bi * M * N, N);
    kl_index_next(batch_rank, batch_shape, idx, sa, &oa, sb, &ob, NULL, NULL);
  }
  if (acc)
    narrow_into(acc, y);
  free(own_a);
  free(own_b);
  free(acc);
  return NULL;
}

kl_status kl_rt_linear(const kl_tensor *x, const kl_tensor *w, const kl_tensor *bias,
                       kl_tensor *y) {
  if (x->dtype != w->dtype || x->dtype != y->dtype || (bias && bias->dtype != x->dtype))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "linear: dtypes differ (x %s, w %s%s%s, y %s)",
                            kl_dtype_ir_name(x->dtype), kl_dtype_ir_name(w->dtype),
                            bias ? ", bias " : "", bias ? kl_dtype_ir_name(bias->dtype) : "",
                            kl_dtype_ir_name(y->dtype));
  if (x->rank < 1 || w->rank != 2)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "linear: x %s must be at least 1-D and w %s 2-D", KL_SHAPE(x),
                            KL_SHAPE(w));
  int64_t in = x->shape[x->rank - 1], out = w->shape[0];
  if (w->shape[1] != in)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "linear: x %s has %lld features but w %s expects %lld", KL_SHAPE(x),
                            (long long)in, KL_SHAPE(w), (long long)w->shape[1]);
  if (bias && (bias->rank != 1 || bias->shape[0] != out))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "linear: bias %s must be [%lld]",
                            KL_SHAPE(bias), (long long)out);
  bool shape_ok = y->rank == x->rank && y->shape[y->rank - 1] == out;
  for (int d = 0; shape_ok && d < x->rank - 1; d++)
    shape_ok = y->shape[d] == x->shape[d];
  if (!shape_ok)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "linear: x %s with w %s cannot give output %s",
                            KL_SHAPE(x), KL_SHAPE(w), KL_SHAPE(y));
  int64_t M = in ? x->numel / in : (out ? y->numel / out : 0);
  bool f32 = x->dtype == KL_F32;
  void *own_x, *own_w, *own_b = NULL;
  const void *px = compute_view(x, f32, &own_x), *pw = compute_view(w, f32, &own_w);
  const void *pbias = bias ? compute_view(bias, f32, &own_b) : NULL;
  size_t es = f32 ? sizeof(float) : sizeof(double);
  /* With many rows, wt (in, out) = w^T lets the core's inner loop run over contiguous output
   * features. With few rows (batch-1 inference) the transpose would cost more than the product,
   * so each output is a dot product of two contiguous rows instead. */
  bool few_rows = M < KL_RT_LINEAR_GEMM_ROWS;
  void *wt = few_rows || f32 ? NULL : malloc((size_t)(w->numel > 0 ? w->numel : 1) * es);
  bool acc_needed = y->dtype != (f32 ? KL_F32 : KL_F64);
  void *acc = acc_needed ? calloc((size_t)(y->numel ? y->numel : 1), es) : NULL;
  if ((!px && x->numel) || (!pw && w->numel) || (bias && !pbias && bias->numel) ||
      (!few_rows && !f32 && !wt) || (acc_needed && !acc)) {
    free(own_x);
    free(own_w);
    free(own_b);
    free(wt);
    free(acc);
    return kl_rt_oom("linear");
  }
  void *py = acc ? acc : y->data; /* y (M, out) */
  if (f32) {
    const float *xs = px, *ws = pw, *bs = pbias; /* x (M, in), w (out, in), bias (out,) */
    float *ys = py, *wts = wt;                   /* y (M, out), wt (in, out) */
    (void)wts;
    if (few_rows) {
      for (int64_t m = 0; m < M; m++)
        dots_f32(xs + m * in, ws, bs, ys + m * out, in, out);
    } else if (!kl_rt_linear_f32_part(xs, ws, NULL, bs, ys, M, in, out, 0, M, 0, out)) {
      free(own_x);
      free(own_w);
      free(own_b);
      free(acc);
      return kl_rt_oom("linear");
    }
  } else {
    const double *xs = px, *ws = pw, *bs = pbias;
    double *ys = py, *wts = wt;
    if (few_rows) {
      for (int64_t m = 0; m < M; m++)
        for (int64_t o = 0; o < out; o++)
          ys[m * out + o] = (bs ? bs[o] : 0.0) + dot_f64(xs + m * in, ws + o * in, in);
    } else {
      transpose_f64(ws, out, in, wts);
      for (int64_t m = 0; m < M; m++)
        for (int64_t o = 0; o < out; o++)
          ys[m * out + o] = bs ? bs[o] : 0.0;
      kl_rt_gemm_f64(M, out, in, xs, in, wts, out, ys, out);
    }
  }
  if (acc)
    narrow_into(acc, y);
  free(own_x);
  free(own_w);
  free(own_b);
  free(wt);
  free(acc);
  return NULL;
}

/* The GEMM form of f32 linear: y (M, out) = x (M, in) @ w^T + bias, B being w read transposed
 * (or packed by kl_rt_linear_pack) and the bias starting each column's sums. */
bool kl_rt_linear_f32_part(const float *x, const float *w, const float *w_packed,
                           const float *bias, float *y, int64_t M, int64_t in, int64_t out,
                           int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end) {
  kl_sgemm_problem pr = {.M = M, .N = out, .K = in, .a = {x, in, false}, .b = {w, in, true},
                         .packed_b = w_packed, .col_bias = bias, .C = y, .ldc = out};
  return kl_sgemm_run(&pr, m_begin, m_end, n_begin, n_end);
}

size_t kl_rt_linear_packed_floats(int64_t in, int64_t out) {
  return kl_sgemm_packed_b_floats(in, out);
}

void kl_rt_linear_pack(const float *w, int64_t in, int64_t out, float *packed) {
  kl_sgemm_operand b = {w, in, true};
  kl_sgemm_pack_b(in, out, b, packed);
}

bool kl_rt_matmul_f32_part(const float *a, const float *b_packed, float *y, int64_t rows,
                           int64_t K, int64_t N, int64_t m_begin, int64_t m_end,
                           int64_t n_begin, int64_t n_end) {
  kl_sgemm_problem pr = {.M = rows, .N = N, .K = K, .a = {a, K, false}, .packed_b = b_packed,
                         .C = y, .ldc = N};
  return kl_sgemm_run(&pr, m_begin, m_end, n_begin, n_end);
}

size_t kl_rt_matmul_packed_b_floats(int64_t K, int64_t N) {
  return kl_sgemm_packed_b_floats(K, N);
}

void kl_rt_matmul_pack_b(const float *b, int64_t K, int64_t N, float *packed) {
  kl_sgemm_operand op = {b, N, false};
  kl_sgemm_pack_b(K, N, op, packed);
}
