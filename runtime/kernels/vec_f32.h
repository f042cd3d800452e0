/* The vectorized single-precision row kernels behind the f32 paths of norm.c and attention.c,
 * and a per-thread scratch buffer for them (runtime/kernels/vec_f32.c).
 *
 * One table of functions per ISA (AVX-512, AVX2 + FMA, portable C), chosen once per process
 * from what the CPU supports; KILN_VEC_ISA=generic|avx2|avx512 forces one the CPU has (tests
 * run each). Every function handles any length, the last partial vector with masked loads and
 * stores (never reading or writing past the end), and computes each row by the same sequence
 * of operations wherever the row lies, so splitting rows across threads changes no bit.
 *
 * Semantics follow the double-precision reference kernels: softmax subtracts the row's max
 * (a row whose max is -inf uses 0, so a row of -inf, or a fully masked one, gives 0/0 = nan);
 * nan anywhere in a row makes the whole row nan (it reaches the sum); sums are kept in f32
 * vector lanes over blocks of at most KL_VEC_SUM_BLOCK elements and the blocks added in double,
 * so long rows lose no more than short ones. */
#ifndef KL_RUNTIME_KERNELS_VEC_F32_H
#define KL_RUNTIME_KERNELS_VEC_F32_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KL_VEC_SUM_BLOCK 1024

/* How one row of attention scores is masked: elements [n_valid, n) are dropped (-inf; causal
 * keys after the query, or every key under a false Bool mask broadcast along the keys); of the
 * rest, add (a row of the float mask, or NULL) is added, add_scalar is added when add_one
 * (a float mask broadcast along the keys), and keep (a row of the Bool mask, or NULL) drops
 * the elements where it is 0. */
typedef struct kl_vec_mask {
  int64_t n_valid;
  const float *add;
  float add_scalar;
  bool add_one;
  const uint8_t *keep;
} kl_vec_mask;

typedef struct kl_vec_f32_ops {
  const char *name; /* "avx512", "avx2" or "generic" */
  /* y (rows, n) = softmax, or log_softmax when log, of each row of x (rows, n); y may be x. */
  void (*softmax_rows)(const float *x, float *y, int64_t rows, int64_t n, bool log);
  /* The same along the first dim of x (n, inner), for every column at once. */
  void (*softmax_cols)(const float *x, float *y, int64_t n, int64_t inner, bool log);
  /* One row of attention in place: s (n) = softmax(s * scale, masked as m says). */
  void (*attention_row)(float *s, int64_t n, float scale, const kl_vec_mask *m);
  /* y (rows, d) = (x - mean) / sqrt(var + eps) [* weight (d)] [+ bias (d)] per row of x, the
   * biased variance about the mean computed in a second pass. */
  void (*layer_norm_rows)(const float *x, float *y, int64_t rows, int64_t d, const float *weight,
                          const float *bias, double eps);
  /* y (n) = x (n) * a + b (batch norm's per-channel form). */
  void (*affine)(const float *x, float *y, int64_t n, float a, float b);
} kl_vec_f32_ops;

/* The table for this CPU (or KILN_VEC_ISA). */
const kl_vec_f32_ops *kl_vec_f32(void);

/* At least n floats, 64-byte aligned, owned by the calling thread and kept for its next call
 * (freed when the thread ends); NULL when out of memory. One buffer per thread: a caller must
 * not hold it across a call that may use it too. */
float *kl_vec_scratch(size_t n);

#endif
