/* Single-precision matrix multiply for the heavy kernels: C (M, N) = [C +] A (M, K) @ B (K, N).
 *
 * The product is blocked the way BLIS and MLAS block it: B is copied ("packed") into panels of
 * KL_SGEMM_NR columns and A into panels of KL_SGEMM_MR rows, per block of KL_SGEMM_KC of the
 * reduction dim, so that a register-tiled micro-kernel streams both from cache with unit stride.
 * The micro-kernel is picked once per process from what the CPU supports (AVX-512, AVX2 + FMA,
 * or portable C). Either operand may be packed ahead of time (a compiler packs the weights once,
 * at compile time) and passed already packed; the packed layout does not depend on the CPU.
 *
 * Each element of C is summed in ascending k, in blocks of KL_SGEMM_KC, so the result does not
 * depend on how M and N are split (across threads, say); it may differ in the last bits from a
 * loop without fused multiply-add. */
#ifndef KL_RUNTIME_GEMM_H
#define KL_RUNTIME_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KL_SGEMM_MR 6
#define KL_SGEMM_NR 32
#define KL_SGEMM_KC 256

/* An operand as stored: element (r, c) of the logical matrix is data[r * ld + c], or
 * data[c * ld + r] when trans (a linear layer's weight (out, in) is B transposed). */
typedef struct kl_sgemm_operand {
  const float *data;
  int64_t ld;
  bool trans;
} kl_sgemm_operand;

/* Floats needed to hold A (M, K) packed, or B (K, N) packed. */
size_t kl_sgemm_packed_a_floats(int64_t M, int64_t K);
size_t kl_sgemm_packed_b_floats(int64_t K, int64_t N);
/* Packs A (M, K) / B (K, N) into out (kl_sgemm_packed_*_floats entries, zero-padded panels). */
void kl_sgemm_pack_a(int64_t M, int64_t K, kl_sgemm_operand a, float *out);
void kl_sgemm_pack_b(int64_t K, int64_t N, kl_sgemm_operand b, float *out);

/* C (M, N) with row stride ldc = [C +] A @ B. packed_a / packed_b, when not NULL, hold A / B
 * packed by kl_sgemm_pack_* (then a / b are ignored); otherwise the operand is packed on the fly
 * into per-thread scratch memory. Returns false only when scratch memory cannot be had. */
bool kl_sgemm(int64_t M, int64_t N, int64_t K, kl_sgemm_operand a, const float *packed_a,
              kl_sgemm_operand b, const float *packed_b, float *C, int64_t ldc, bool accumulate);
/* The same for the columns [n_begin, n_end) of C only; n_begin must be a multiple of
 * KL_SGEMM_NR. Splitting N this way (across threads, say) gives bit-identical results. */
bool kl_sgemm_cols(int64_t M, int64_t N, int64_t K, kl_sgemm_operand a, const float *packed_a,
                   kl_sgemm_operand b, const float *packed_b, float *C, int64_t ldc,
                   bool accumulate, int64_t n_begin, int64_t n_end);

/* A source of B's panels computed on demand (a convolution's im2col, say, without the matrix):
 * pack(ctx, N, k0, kc, n0, panel) writes rows [k0, k0 + kc) and columns [n0, n0 + KL_SGEMM_NR)
 * of B (K, N) into panel[k * KL_SGEMM_NR + j] (k and j relative), zero for columns >= N. */
typedef struct kl_sgemm_b_source {
  void (*pack)(const void *ctx, int64_t N, int64_t k0, int64_t kc, int64_t n0, float *panel);
  const void *ctx;
} kl_sgemm_b_source;

/* What a convolution or product may do to each finished element c of its output before it is
 * stored for good (fused from the graph by a compiler): c += residual (when not NULL), then the
 * activation: clamp to [lo, hi] (relu, relu6, hardtanh, clamp; nan stays nan) or silu
 * (c * sigmoid(c)). residual is indexed like the output it goes with. */
typedef enum kl_sgemm_act {
  KL_SGEMM_ACT_NONE,
  KL_SGEMM_ACT_CLAMP,
  KL_SGEMM_ACT_SILU,
} kl_sgemm_act;

typedef struct kl_sgemm_epilogue {
  const float *residual;
  kl_sgemm_act act;
  float lo, hi;
} kl_sgemm_epilogue;

/* Applies e to the rows x cols block c (row stride ld) at element offset off of its output:
 * residual elements are read at e->residual + off + i * ld + j. */
void kl_sgemm_epilogue_apply(const kl_sgemm_epilogue *e, float *c, int64_t off, int64_t rows,
                             int64_t cols, int64_t ld);

/* One product C (M, N) = [C +] [row_bias +] [col_bias +] A @ B. A is packed_a (kl_sgemm_pack_a)
 * or a; B is packed_b, else b_source, else b. row_bias (M values, one per row of C) and
 * col_bias (N values, one per column), each NULL for none, start each sum when not
 * accumulating. The epilogue, when set, is applied to each element once its sum is complete. */
typedef struct kl_sgemm_problem {
  int64_t M, N, K;
  kl_sgemm_operand a;
  const float *packed_a;
  kl_sgemm_operand b;
  const float *packed_b;
  const kl_sgemm_b_source *b_source;
  const float *row_bias, *col_bias;
  float *C;
  int64_t ldc;
  bool accumulate;
  const kl_sgemm_epilogue *epilogue; /* NULL: none; its residual is indexed like C */
} kl_sgemm_problem;

/* Computes the rows [m_begin, m_end) and columns [n_begin, n_end) of pr's C (m_begin a multiple
 * of KL_SGEMM_MR, n_begin of KL_SGEMM_NR; ends clipped to M and N); the same bits whatever the
 * split. Returns false only when scratch memory cannot be had. */
bool kl_sgemm_run(const kl_sgemm_problem *pr, int64_t m_begin, int64_t m_end, int64_t n_begin,
                  int64_t n_end);

/* The micro-kernel in use: "avx512", "avx2" or "generic" (for benchmarks and reports). */
const char *kl_sgemm_isa(void);

#endif
