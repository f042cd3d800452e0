/* The blocked single-precision GEMM of runtime/gemm.h.
 *
 * Loop nest, for each block of KL_SGEMM_KC along k:
 *   - A's rows for this k block are read where they lie when A is row-major (the micro-kernel
 *     broadcasts one element of each of its MR rows per step, so rows stream with unit
 *     stride), or come packed ahead of time, or (A transposed) are packed here into panels of
 *     MR rows (k-major: a[k * MR + i]);
 *   - for each panel of NR columns of B (k-major: b[k * NR + j], packed here or ahead of time;
 *     a row-major B under few rows of C is read where it lies, its rows ldb apart, as packing
 *     would cost as much as the products), the micro-kernel computes every MR x NR tile of C
 *     under it from the two panels.
 * A B panel (KC x NR floats, 32 KiB) stays in L1 while the A panels stream from L2. The
 * micro-kernel prefetches its tile of C first: C's rows are far apart, and without it the
 * tile's loads and stores at the end miss (half the speed on large products).
 *
 * The micro-kernel keeps an MR x NR tile in registers: 12 AVX-512 registers (6 rows x 2), or
 * the same tile as two 6 x 16 halves with AVX2, or plain C. With AVX-512 the micro-kernel
 * stores edge tiles itself (masked columns, rows past M dropped; a 6 x 16 strip when at most
 * 16 columns are wanted) and applies the fused epilogue in registers. Other kernels compute
 * tiles cut by the edges of C whole into a local tile (from zero-padded panels, or rows of A
 * past M repeating the last one) and copy the valid part. Either way every element of C goes
 * through the same arithmetic whatever its position. */
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "../gemm.h"
#include "epilogue_vec.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KL_GEMM_X86 1
#endif

enum { MR = KL_SGEMM_MR, NR = KL_SGEMM_NR, KC = KL_SGEMM_KC };

/* Rows of C at most and columns at least, for B to be read in place rather than packed (see
 * kl_sgemm_run). The columns are more than NR, so to a micro-kernel a B row stride of NR always
 * means a packed (zero-padded) panel. */
enum { B_IN_PLACE_ROWS = 8 * MR, B_IN_PLACE_COLS = 8 * NR };

static int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static float element(kl_sgemm_operand o, int64_t r, int64_t c) {
  return o.trans ? o.data[c * o.ld + r] : o.data[r * o.ld + c];
}

size_t kl_sgemm_packed_a_floats(int64_t M, int64_t K) {
  return (size_t)round_up(M, MR) * (size_t)K;
}

size_t kl_sgemm_packed_b_floats(int64_t K, int64_t N) {
  return (size_t)round_up(N, NR) * (size_t)K;
}

/* Rows [0, M) of A, columns [k0, k0 + kc), as panels of MR rows: out[p * kc * MR + k * MR + i]. */
static void pack_a_block(int64_t M, int64_t k0, int64_t kc, kl_sgemm_operand a, float *out) {
  for (int64_t p = 0; p < M; p += MR) {
    float *panel = out + p * kc;
    int64_t rows = min64(MR, M - p);
    if (!a.trans && rows == MR) {
      const float *src = a.data + p * a.ld + k0;
      for (int64_t k = 0; k < kc; k++)
        for (int i = 0; i < MR; i++)
          panel[k * MR + i] = src[i * a.ld + k];
      continue;
    }
    for (int64_t k = 0; k < kc; k++)
      for (int i = 0; i < MR; i++)
        panel[k * MR + i] = i < rows ? element(a, p + i, k0 + k) : 0.0f;
  }
}

/* Rows [k0, k0 + kc) of B, columns [n0, n0 + NR) clipped to N, as one panel: out[k * NR + j]. */
static void pack_b_panel(int64_t N, int64_t k0, int64_t kc, int64_t n0, kl_sgemm_operand b,
                         float *out) {
  int64_t cols = min64(NR, N - n0);
  if (!b.trans) {
    for (int64_t k = 0; k < kc; k++) {
      const float *src = b.data + (k0 + k) * b.ld + n0;
      float *dst = out + k * NR;
      if (cols == NR) { /* a fixed size: copied inline, no call */
        memcpy(dst, src, NR * sizeof(float));
        continue;
      }
      memcpy(dst, src, (size_t)cols * sizeof(float));
      for (int64_t j = cols; j < NR; j++)
        dst[j] = 0.0f;
    }
    return;
  }
  for (int64_t k = 0; k < kc; k++)
    for (int64_t j = 0; j < NR; j++)
      out[k * NR + j] = j < cols ? b.data[(n0 + j) * b.ld + k0 + k] : 0.0f;
}

void kl_sgemm_pack_a(int64_t M, int64_t K, kl_sgemm_operand a, float *out) {
  int64_t mpad = round_up(M, MR);
  for (int64_t k0 = 0; k0 < K; k0 += KC)
    pack_a_block(M, k0, min64(KC, K - k0), a, out + k0 * mpad);
}

void kl_sgemm_pack_b(int64_t K, int64_t N, kl_sgemm_operand b, float *out) {
  int64_t npad = round_up(N, NR);
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    int64_t kc = min64(KC, K - k0);
    for (int64_t n0 = 0; n0 < N; n0 += NR)
      pack_b_panel(N, k0, kc, n0, b, out + k0 * npad + n0 * kc);
  }
}

/* ---- micro-kernels: tile (MR x NR, row stride ldc) = [tile +] a-panel @ b-panel ---------- */

/* The MR rows of A a micro-kernel reads: element (i, k) is row[i][k * k_stride]. A packed
 * panel has row[i] = panel + i and k_stride MR; a row-major A is read where it lies, row[i]
 * its row i and k_stride 1 (rows past M repeat the last row; their results are dropped). */
typedef struct a_rows {
  const float *row[MR];
  int64_t k_stride;
  const float *next; /* the packed panel the next call reads, to prefetch; NULL: none */
} a_rows;

/* Row k of the B panel is b + k * ldb: NR in a packed panel, B's own row stride when B is read
 * where it lies (then only the first cols columns of a row may be read: the kernels of an ISA
 * whose isa_choice says it stores edges read an edge tile's B under masks, and others are given
 * B in place for whole panels only).
 * add: C += the product; else C = the product + row_bias (MR values, one per row) + col_bias
 * (NR values, one per column), each NULL for none. epi (only to a kernel whose isa_choice
 * says it takes one; NULL for none): the fused epilogue, applied to the tile before it is
 * stored, its residual read at res (row stride ldc). Only the first rows rows and cols columns
 * of the tile are wanted: a kernel whose isa_choice says it stores edges writes just those
 * (rows < MR or cols < NR only to such a kernel), others may write the whole tile or leave
 * columns past cols unwritten. */
typedef void (*ukernel_fn)(int64_t kc, const a_rows *a, const float *b, int64_t ldb, float *c,
                           int64_t ldc,
                           bool add, const float *row_bias, const float *col_bias,
                           const kl_sgemm_epilogue *epi, const float *res, int rows, int cols);

static void ukernel_generic(int64_t kc, const a_rows *a, const float *b, int64_t ldb, float *c,
                            int64_t ldc,
                            bool add, const float *row_bias, const float *col_bias,
                            const kl_sgemm_epilogue *epi, const float *res, int rows,
                            int cols) {
  (void)epi, (void)res, (void)rows, (void)cols;
  float acc[MR][NR];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++)
      acc[i][j] = add ? 0.0f
                      : (row_bias ? row_bias[i] : 0.0f) + (col_bias ? col_bias[j] : 0.0f);
  for (int64_t k = 0; k < kc; k++)
    for (int i = 0; i < MR; i++) {
      float ai = a->row[i][k * a->k_stride];
      for (int j = 0; j < NR; j++)
        acc[i][j] += ai * b[k * ldb + j];
    }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++)
      c[i * ldc + j] = add ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

#ifdef KL_GEMM_X86
/* The store of an AVX-512 tile: rows [0, rows) of its halves under masks m[0], m[1] (m[1] 0:
 * no second half), [C +] the sums, the epilogue (NULL: none) applied in registers first. */
__attribute__((target("avx512f"), always_inline)) static inline void
store_avx512(__m512 acc[MR][2], float *c, int64_t ldc, bool add, const kl_sgemm_epilogue *epi,
             const float *res, int rows, const __mmask16 m[2]) {
  for (int i = 0; i < rows; i++)
    for (int h = 0; h < 2 && m[h]; h++) {
      float *p = c + i * ldc + 16 * h;
      bool whole = m[h] == 0xffff; /* plain loads and stores, cheaper than masked ones */
      __m512 v = acc[i][h];
      if (add)
        v = _mm512_add_ps(whole ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m[h], p), v);
      if (epi)
        v = kl_epilogue_avx512(epi, v, epi->residual ? res + i * ldc + 16 * h : NULL, m[h]);
      if (whole)
        _mm512_storeu_ps(p, v);
      else
        _mm512_mask_storeu_ps(p, m[h], v);
    }
}

/* The AVX-512 micro-kernel's 6 x 16 strip (columns b[0 .. 16) of the panel), for an edge tile
 * of at most 16 columns: the same operations on those columns as the whole tile's first half. */
__attribute__((target("avx512f"))) static void half16_avx512(int64_t kc, const a_rows *a,
                                                             const float *b, int64_t ldb,
                                                             float *c,
                                                             int64_t ldc, bool add,
                                                             const float *row_bias,
                                                             const float *col_bias,
                                                             const kl_sgemm_epilogue *epi,
                                                             const float *res, int rows,
                                                             int cols) {
  __m512 z = _mm512_setzero_ps();
  __m512 b0 = !add && col_bias ? _mm512_loadu_ps(col_bias) : z;
  bool rb = !add && row_bias;
#define KL_ROW(i) (rb ? _mm512_set1_ps(row_bias[i]) : z)
  __m512 c0 = _mm512_add_ps(KL_ROW(0), b0), c1 = _mm512_add_ps(KL_ROW(1), b0);
  __m512 c2 = _mm512_add_ps(KL_ROW(2), b0), c3 = _mm512_add_ps(KL_ROW(3), b0);
  __m512 c4 = _mm512_add_ps(KL_ROW(4), b0), c5 = _mm512_add_ps(KL_ROW(5), b0);
#undef KL_ROW
  const float *a0 = a->row[0], *a1 = a->row[1], *a2 = a->row[2];
  const float *a3 = a->row[3], *a4 = a->row[4], *a5 = a->row[5];
  int64_t ks = a->k_stride, off = 0;
  __mmask16 m[2] = {(__mmask16)((1u << cols) - 1u), 0};
  for (int64_t k = 0; k < kc; k++, off += ks, b += ldb) {
    /* B in place is read under the mask; a zero-padded panel with plain loads (cheaper) */
    __m512 v = ldb != NR ? _mm512_maskz_loadu_ps(m[0], b) : _mm512_loadu_ps(b);
    c0 = _mm512_fmadd_ps(_mm512_set1_ps(a0[off]), v, c0);
    c1 = _mm512_fmadd_ps(_mm512_set1_ps(a1[off]), v, c1);
    c2 = _mm512_fmadd_ps(_mm512_set1_ps(a2[off]), v, c2);
    c3 = _mm512_fmadd_ps(_mm512_set1_ps(a3[off]), v, c3);
    c4 = _mm512_fmadd_ps(_mm512_set1_ps(a4[off]), v, c4);
    c5 = _mm512_fmadd_ps(_mm512_set1_ps(a5[off]), v, c5);
  }
  __m512 acc[MR][2] = {{c0, z}, {c1, z}, {c2, z}, {c3, z}, {c4, z}, {c5, z}};
  store_avx512(acc, c, ldc, add, epi, res, rows, m);
}

__attribute__((target("avx512f"))) static void ukernel_avx512(int64_t kc, const a_rows *a,
                                                               const float *b, int64_t ldb,
                                                               float *c,
                                                               int64_t ldc, bool add,
                                                               const float *row_bias,
                                                               const float *col_bias,
                                                               const kl_sgemm_epilogue *epi,
                                                               const float *res, int rows,
                                                               int cols) {
  if (cols <= 16) {
    half16_avx512(kc, a, b, ldb, c, ldc, add, row_bias, col_bias, epi, res, rows, cols);
    return;
  }
  __m512 z = _mm512_setzero_ps();
  __m512 b0 = !add && col_bias ? _mm512_loadu_ps(col_bias) : z;
  __m512 b1 = !add && col_bias ? _mm512_loadu_ps(col_bias + 16) : z;
  bool rb = !add && row_bias;
#define KL_ROW(i) (rb ? _mm512_set1_ps(row_bias[i]) : z)
  __m512 c00 = _mm512_add_ps(KL_ROW(0), b0), c01 = _mm512_add_ps(KL_ROW(0), b1);
  __m512 c10 = _mm512_add_ps(KL_ROW(1), b0), c11 = _mm512_add_ps(KL_ROW(1), b1);
  __m512 c20 = _mm512_add_ps(KL_ROW(2), b0), c21 = _mm512_add_ps(KL_ROW(2), b1);
  __m512 c30 = _mm512_add_ps(KL_ROW(3), b0), c31 = _mm512_add_ps(KL_ROW(3), b1);
  __m512 c40 = _mm512_add_ps(KL_ROW(4), b0), c41 = _mm512_add_ps(KL_ROW(4), b1);
  __m512 c50 = _mm512_add_ps(KL_ROW(5), b0), c51 = _mm512_add_ps(KL_ROW(5), b1);
#undef KL_ROW
  const float *a0 = a->row[0], *a1 = a->row[1], *a2 = a->row[2];
  const float *a3 = a->row[3], *a4 = a->row[4], *a5 = a->row[5];
  int64_t ks = a->k_stride, off = 0;
  for (int i = 0; i < MR; i++) { /* the tile's lines, read or written at the end */
    _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
  }
  __mmask16 m1 = (__mmask16)(cols >= NR ? 0xffffu : (1u << (cols - 16)) - 1u);
#define KL_K_STEP(LOAD1)                                                                       \
  do {                                                                                         \
    __m512 b0 = _mm512_loadu_ps(b), b1 = LOAD1;                                                \
    __m512 x = _mm512_set1_ps(a0[off]);                                                        \
    c00 = _mm512_fmadd_ps(x, b0, c00), c01 = _mm512_fmadd_ps(x, b1, c01);                     \
    x = _mm512_set1_ps(a1[off]);                                                               \
    c10 = _mm512_fmadd_ps(x, b0, c10), c11 = _mm512_fmadd_ps(x, b1, c11);                     \
    x = _mm512_set1_ps(a2[off]);                                                               \
    c20 = _mm512_fmadd_ps(x, b0, c20), c21 = _mm512_fmadd_ps(x, b1, c21);                     \
    x = _mm512_set1_ps(a3[off]);                                                               \
    c30 = _mm512_fmadd_ps(x, b0, c30), c31 = _mm512_fmadd_ps(x, b1, c31);                     \
    x = _mm512_set1_ps(a4[off]);                                                               \
    c40 = _mm512_fmadd_ps(x, b0, c40), c41 = _mm512_fmadd_ps(x, b1, c41);                     \
    x = _mm512_set1_ps(a5[off]);                                                               \
    c50 = _mm512_fmadd_ps(x, b0, c50), c51 = _mm512_fmadd_ps(x, b1, c51);                     \
    off += ks, b += ldb;                                                                       \
  } while (0)
  /* Weights streamed from memory (a packed A read once per panel of B) are latency-bound
   * without help: the next call's panel is prefetched, a line per two steps (a line holds
   * 2.67 steps of a panel), while this one computes. */
#define KL_K_LOOP(LOAD1)                                                                       \
  do {                                                                                         \
    int64_t k = 0;                                                                             \
    if (a->next)                                                                               \
      for (; k + 1 < kc; k += 2) {                                                             \
        _mm_prefetch((const char *)(a->next + k * MR), _MM_HINT_T0);                           \
        KL_K_STEP(LOAD1);                                                                      \
        KL_K_STEP(LOAD1);                                                                      \
      }                                                                                        \
    for (; k < kc; k++)                                                                        \
      KL_K_STEP(LOAD1);                                                                        \
  } while (0)
  if (cols < NR && ldb != NR) /* an edge of B read in place: under a mask (a packed panel is
                                 zero-padded, and plain loads are cheaper) */
    KL_K_LOOP(_mm512_maskz_loadu_ps(m1, b + 16));
  else
    KL_K_LOOP(_mm512_loadu_ps(b + 16));
#undef KL_K_LOOP
#undef KL_K_STEP
  __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  __mmask16 m[2] = {0xffff, m1};
  store_avx512(acc, c, ldc, add, epi, res, rows, m);
}

/* The AVX2 micro-kernel's 6 x 8 strip (columns b[0 .. 8) of the panel), for an edge tile's
 * last few columns: the same operations on those columns as a whole half. */
__attribute__((target("avx2,fma"))) static void half8_avx2(int64_t kc, const a_rows *a,
                                                           const float *bp, int64_t ldb,
                                                           float *c,
                                                           int64_t ldc, bool add,
                                                           const float *row_bias,
                                                           const float *col_bias) {
  bool rows = !add && row_bias;
  const float *a0 = a->row[0], *a1 = a->row[1], *a2 = a->row[2];
  const float *a3 = a->row[3], *a4 = a->row[4], *a5 = a->row[5];
  int64_t ks = a->k_stride, off = 0;
  __m256 z = _mm256_setzero_ps();
  __m256 b0 = col_bias ? _mm256_loadu_ps(col_bias) : z;
#define KL_ROW(i) (rows ? _mm256_set1_ps(row_bias[i]) : z)
  __m256 c0 = _mm256_add_ps(KL_ROW(0), b0), c1 = _mm256_add_ps(KL_ROW(1), b0);
  __m256 c2 = _mm256_add_ps(KL_ROW(2), b0), c3 = _mm256_add_ps(KL_ROW(3), b0);
  __m256 c4 = _mm256_add_ps(KL_ROW(4), b0), c5 = _mm256_add_ps(KL_ROW(5), b0);
#undef KL_ROW
  for (int64_t k = 0; k < kc; k++, off += ks, bp += ldb) {
    __m256 v = _mm256_loadu_ps(bp);
    c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a0 + off), v, c0);
    c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + off), v, c1);
    c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a2 + off), v, c2);
    c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a3 + off), v, c3);
    c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a4 + off), v, c4);
    c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a5 + off), v, c5);
  }
  __m256 acc[MR] = {c0, c1, c2, c3, c4, c5};
  for (int i = 0; i < MR; i++) {
    float *p = c + i * ldc;
    __m256 v = acc[i];
    if (add)
      v = _mm256_add_ps(_mm256_loadu_ps(p), v);
    _mm256_storeu_ps(p, v);
  }
}

__attribute__((target("avx2,fma"))) static void ukernel_avx2(int64_t kc, const a_rows *a,
                                                              const float *b, int64_t ldb,
                                                              float *c,
                                                              int64_t ldc, bool add,
                                                              const float *row_bias,
                                                              const float *col_bias,
                                                              const kl_sgemm_epilogue *epi,
                                                              const float *res, int rows_wanted,
                                                              int cols) {
  (void)rows_wanted;
  bool rows = !add && row_bias;
  kl_sgemm_epilogue e = epi ? *epi : (kl_sgemm_epilogue){0};
  for (int i = 0; i < MR; i++) { /* the tile's lines, read or written at the end */
    _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
  }
  for (int h = 0; h < 2 && 16 * h < cols; h++) { /* two 6 x 16 halves of the 6 x 32 tile */
    const float *bp = b + 16 * h;
    if (cols - 16 * h <= 8) { /* an edge tile's last 8 columns or fewer: half the work */
      half8_avx2(kc, a, bp, ldb, c + 16 * h, ldc, add, row_bias,
                 !add && col_bias ? col_bias + 16 * h : NULL);
      break;
    }
    const float *a0 = a->row[0], *a1 = a->row[1], *a2 = a->row[2];
    const float *a3 = a->row[3], *a4 = a->row[4], *a5 = a->row[5];
    int64_t ks = a->k_stride, off = 0;
    __m256 z = _mm256_setzero_ps();
    __m256 b0 = !add && col_bias ? _mm256_loadu_ps(col_bias + 16 * h) : z;
    __m256 b1 = !add && col_bias ? _mm256_loadu_ps(col_bias + 16 * h + 8) : z;
#define KL_ROW(i) (rows ? _mm256_set1_ps(row_bias[i]) : z)
    __m256 c00 = _mm256_add_ps(KL_ROW(0), b0), c01 = _mm256_add_ps(KL_ROW(0), b1);
    __m256 c10 = _mm256_add_ps(KL_ROW(1), b0), c11 = _mm256_add_ps(KL_ROW(1), b1);
    __m256 c20 = _mm256_add_ps(KL_ROW(2), b0), c21 = _mm256_add_ps(KL_ROW(2), b1);
    __m256 c30 = _mm256_add_ps(KL_ROW(3), b0), c31 = _mm256_add_ps(KL_ROW(3), b1);
    __m256 c40 = _mm256_add_ps(KL_ROW(4), b0), c41 = _mm256_add_ps(KL_ROW(4), b1);
    __m256 c50 = _mm256_add_ps(KL_ROW(5), b0), c51 = _mm256_add_ps(KL_ROW(5), b1);
#undef KL_ROW
    for (int64_t k = 0; k < kc; k++, off += ks, bp += ldb) {
      __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
      __m256 x = _mm256_broadcast_ss(a0 + off);
      c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
      x = _mm256_broadcast_ss(a1 + off);
      c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
      x = _mm256_broadcast_ss(a2 + off);
      c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
      x = _mm256_broadcast_ss(a3 + off);
      c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
      x = _mm256_broadcast_ss(a4 + off);
      c40 = _mm256_fmadd_ps(x, b0, c40), c41 = _mm256_fmadd_ps(x, b1, c41);
      x = _mm256_broadcast_ss(a5 + off);
      c50 = _mm256_fmadd_ps(x, b0, c50), c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int i = 0; i < MR; i++)
      for (int q = 0; q < 2; q++) {
        float *p = c + i * ldc + 16 * h + 8 * q;
        __m256 v = acc[i][q];
        if (add)
          v = _mm256_add_ps(_mm256_loadu_ps(p), v);
        if (epi)
          v = kl_epilogue_avx2(&e, v, e.residual ? res + i * ldc + 16 * h + 8 * q : NULL, 8);
        _mm256_storeu_ps(p, v);
      }
  }
}
#endif

typedef struct isa_choice {
  ukernel_fn fn;
  const char *name;
  bool fused_epilogue; /* fn takes the epilogue (else the driver applies it after the store) */
  bool edges;          /* fn stores an edge tile's part inside C itself (else via a local tile) */
} isa_choice;

static isa_choice chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

/* KILN_SGEMM_ISA=generic|avx2|avx512 forces a kernel the CPU supports (tests cover each). */
static void choose_isa(void) {
  chosen = (isa_choice){ukernel_generic, "generic", false, false};
#ifdef KL_GEMM_X86
  __builtin_cpu_init();
  const char *want = getenv("KILN_SGEMM_ISA");
  bool avx512 = __builtin_cpu_supports("avx512f");
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (want && !strcmp(want, "generic"))
    return;
  if (avx512 && !(want && !strcmp(want, "avx2")))
    chosen = (isa_choice){ukernel_avx512, "avx512", true, true};
  else if (avx2)
    chosen = (isa_choice){ukernel_avx2, "avx2", true, false};
#endif
}

static const isa_choice *isa(void) {
  pthread_once(&chosen_once, choose_isa);
  return &chosen;
}

const char *kl_sgemm_isa(void) { return isa()->name; }

/* ---- the driver ------------------------------------------------------------------------- */

/* B from an operand as stored: one panel copied out of it. */
static void pack_b_operand(const void *ctx, int64_t N, int64_t k0, int64_t kc, int64_t n0,
                           float *panel) {
  pack_b_panel(N, k0, kc, n0, *(const kl_sgemm_operand *)ctx, panel);
}

bool kl_sgemm_run(const kl_sgemm_problem *pr, int64_t m_begin, int64_t m_end, int64_t n_begin,
                  int64_t n_end) {
  int64_t M = pr->M, N = pr->N, K = pr->K, ldc = pr->ldc;
  float *C = pr->C;
  if (m_end > M)
    m_end = M;
  if (n_end > N)
    n_end = N;
  if (m_end <= m_begin || n_end <= n_begin)
    return true;
  if (K <= 0) { /* an empty sum */
    if (!pr->accumulate)
      for (int64_t i = m_begin; i < m_end; i++)
        for (int64_t j = n_begin; j < n_end; j++)
          C[i * ldc + j] = (pr->row_bias ? pr->row_bias[i] : 0.0f) +
                           (pr->col_bias ? pr->col_bias[j] : 0.0f);
    kl_sgemm_epilogue_apply(pr->epilogue, C + m_begin * ldc + n_begin, m_begin * ldc + n_begin,
                            m_end - m_begin, n_end - n_begin, ldc);
    return true;
  }
  ukernel_fn kernel = isa()->fn;
  bool edges = isa()->edges;
  bool fused = isa()->fused_epilogue && pr->epilogue &&
               (pr->epilogue->residual || pr->epilogue->act != KL_SGEMM_ACT_NONE);
  const float *packed_a = pr->packed_a, *packed_b = pr->packed_b;
  kl_sgemm_b_source plain = {pack_b_operand, &pr->b};
  const kl_sgemm_b_source *src = pr->b_source ? pr->b_source : &plain;
  int64_t mpad = round_up(M, MR), npad = round_up(N, NR), rows_here = m_end - m_begin;
  size_t a_floats =
      packed_a || !pr->a.trans ? 0 : (size_t)(round_up(rows_here, MR) * min64(KC, K));
  size_t b_floats = packed_b ? 0 : (size_t)(KC * NR);
  float *work = NULL;
  if (a_floats + b_floats) {
    work = kl_rt_scratch(KL_SCRATCH_GEMM, a_floats + b_floats);
    if (!work)
      return false;
  }
  float *a_block = work, *b_panel = work ? work + a_floats : NULL;
  /* a row-major A is read in place; a transposed one is packed here, block by block */
  bool direct_a = !packed_a && !pr->a.trans;
  /* a wide row-major B that few tiles of A share (a 1x1 conv with few channels out, say) is
   * read in place: packing its panels would cost as much as the products. Narrow ones (a
   * Winograd product over a few tiles, say) stay packed, where in place was not measured to
   * gain. */
  bool b_in_place = !packed_b && !pr->b_source && !pr->b.trans && rows_here <= B_IN_PLACE_ROWS &&
                    N >= B_IN_PLACE_COLS;
  kl_sgemm_operand a_here = pr->a; /* rows [m_begin, m_end) of A, when packing it here */
  if (!a_here.trans)
    a_here.data += m_begin * a_here.ld;
  else
    a_here.data += m_begin;
  float tile[MR * NR], edge_row_bias[MR], edge_col_bias[NR];
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    int64_t kc = min64(KC, K - k0);
    bool add = pr->accumulate || k0 > 0, last = k0 + kc >= K;
    /* pa + (m0 - m_begin) * kc is the panel of rows m0 .. m0 + MR */
    const float *pa = packed_a ? packed_a + k0 * mpad + m_begin * kc : a_block;
    if (!packed_a && !direct_a)
      pack_a_block(rows_here, k0, kc, a_here, a_block);
    for (int64_t n0 = n_begin; n0 < n_end; n0 += NR) {
      int64_t cols = min64(NR, n_end - n0), ldb = NR;
      const float *pb = packed_b ? packed_b + k0 * npad + n0 * kc : b_panel;
      if (b_in_place && (cols == NR || edges)) {
        pb = pr->b.data + k0 * pr->b.ld + n0;
        ldb = pr->b.ld;
      } else if (!packed_b) {
        src->pack(src->ctx, N, k0, kc, n0, b_panel);
      }
      for (int64_t m0 = m_begin; m0 < m_end; m0 += MR) {
        int64_t rows = min64(MR, m_end - m0);
        float *c = C + m0 * ldc + n0;
        a_rows ar;
        if (direct_a) {
          for (int i = 0; i < MR; i++)
            ar.row[i] = pr->a.data + (m0 + (i < rows ? i : rows - 1)) * pr->a.ld + k0;
          ar.k_stride = 1;
          ar.next = NULL;
        } else {
          const float *panel = pa + (m0 - m_begin) * kc;
          for (int i = 0; i < MR; i++)
            ar.row[i] = panel + i;
          ar.k_stride = MR;
          ar.next = m0 + MR < m_end ? panel + MR * kc : NULL;
        }
        const float *rb = pr->row_bias ? pr->row_bias + m0 : NULL;
        const float *cb = pr->col_bias ? pr->col_bias + n0 : NULL;
        if (rb && rows < MR) { /* an edge tile's rows past M start at 0 (their sums dropped) */
          for (int i = 0; i < MR; i++)
            edge_row_bias[i] = i < rows ? rb[i] : 0.0f;
          rb = edge_row_bias;
        }
        if (cb && cols < NR) {
          for (int j = 0; j < NR; j++)
            edge_col_bias[j] = j < cols ? cb[j] : 0.0f;
          cb = edge_col_bias;
        }
        if ((rows == MR && cols == NR) || edges) {
          if (last && fused) { /* in registers, before the store */
            const float *res = pr->epilogue->residual;
            kernel(kc, &ar, pb, ldb, c, ldc, add, rb, cb, pr->epilogue,
                   res ? res + m0 * ldc + n0 : NULL, (int)rows, (int)cols);
            continue;
          }
          kernel(kc, &ar, pb, ldb, c, ldc, add, rb, cb, NULL, NULL, (int)rows, (int)cols);
          if (last && pr->epilogue) /* the tile is complete and still in L1 */
            kl_sgemm_epilogue_apply(pr->epilogue, c, m0 * ldc + n0, rows, cols, ldc);
          continue;
        }
        /* an edge tile: compute it whole, then add or copy the part inside C */
        kernel(kc, &ar, pb, ldb, tile, NR, false, add ? NULL : rb, add ? NULL : cb, NULL, NULL,
               MR, (int)cols);
        for (int64_t i = 0; i < rows; i++)
          for (int64_t j = 0; j < cols; j++)
            c[i * ldc + j] = add ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
        if (last && pr->epilogue)
          kl_sgemm_epilogue_apply(pr->epilogue, c, m0 * ldc + n0, rows, cols, ldc);
      }
    }
  }
  return true;
}

bool kl_sgemm_cols(int64_t M, int64_t N, int64_t K, kl_sgemm_operand a, const float *packed_a,
                   kl_sgemm_operand b, const float *packed_b, float *C, int64_t ldc,
                   bool accumulate, int64_t n_begin, int64_t n_end) {
  kl_sgemm_problem pr = {.M = M, .N = N, .K = K, .a = a, .packed_a = packed_a, .b = b,
                         .packed_b = packed_b, .C = C, .ldc = ldc, .accumulate = accumulate};
  return kl_sgemm_run(&pr, 0, M, n_begin, n_end);
}

bool kl_sgemm(int64_t M, int64_t N, int64_t K, kl_sgemm_operand a, const float *packed_a,
              kl_sgemm_operand b, const float *packed_b, float *C, int64_t ldc, bool accumulate) {
  return kl_sgemm_cols(M, N, K, a, packed_a, b, packed_b, C, ldc, accumulate, 0, N);
}
