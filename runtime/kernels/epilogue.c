/* The fused epilogue of the GEMM and convolution kernels (runtime/gemm.h): a residual add and
 * an activation applied to a block of output that was just written, while it is still in
 * cache, instead of by a separate pass over the whole tensor.
 *
 * The activations match the unary kernels and the compiled elementwise code: clamp is
 * min(max(x, lo), hi) with nan passed through (x second in max and min, whose x86 vector forms
 * return their second operand when either is nan), silu is x * (1 / (1 + e^-x)) with the exp of
 * vmath.h, the one compiled code uses. */
#include <string.h>

#include "../gemm.h"
#include "epilogue_vec.h"
#include "avx2.h"
#include "vmath.h"

static inline float clamp1(float x, float lo, float hi) {
  if (x != x)
    return x;
  x = x < lo ? lo : x;
  return x > hi ? hi : x;
}

static inline float silu1(float x) {
  return x * (1.0f / (1.0f + kl_vm_expf(-x)));
}

static void apply_scalar(const kl_sgemm_epilogue *e, float *c, const float *r, int64_t cols) {
  for (int64_t j = 0; j < cols; j++) {
    float v = r ? c[j] + r[j] : c[j];
    if (e->act == KL_SGEMM_ACT_CLAMP)
      v = clamp1(v, e->lo, e->hi);
    else if (e->act == KL_SGEMM_ACT_SILU)
      v = silu1(v);
    c[j] = v;
  }
}

#ifdef KL_VMATH_X86
__attribute__((target("avx512f"))) static void apply_avx512(const kl_sgemm_epilogue *e, float *c,
                                                            const float *r, int64_t rows,
                                                            int64_t cols, int64_t ld) {
  int64_t whole = cols / 16 * 16;
  __mmask16 tail = (__mmask16)((1u << (cols - whole)) - 1u);
  for (int64_t i = 0; i < rows; i++, c += ld, r = r ? r + ld : NULL)
    for (int64_t j = 0; j < cols; j += 16) {
      __mmask16 m = j < whole ? (__mmask16)0xFFFF : tail;
      __m512 v = kl_epilogue_avx512(e, _mm512_maskz_loadu_ps(m, c + j), r ? r + j : NULL, m);
      _mm512_mask_storeu_ps(c + j, m, v);
    }
}

/* apply_avx512 with 8 lanes; a row's last few columns are computed as a whole vector (the
 * same operations wherever a split puts the edge of a block) and stored without a masked
 * store (avx2.h). */
__attribute__((target("avx2,fma"))) static void apply_avx2(const kl_sgemm_epilogue *e, float *c,
                                                          const float *r, int64_t rows,
                                                          int64_t cols, int64_t ld) {
  kl_sgemm_epilogue here = *e; /* not reread after each store */
  e = &here;
  for (int64_t i = 0; i < rows; i++, c += ld, r = r ? r + ld : NULL)
    for (int64_t j = 0; j < cols; j += 8) {
      int64_t n = cols - j;
      __m256 v = n >= 8 ? _mm256_loadu_ps(c + j) : _mm256_maskload_ps(c + j, kl_avx2_first(n));
      kl_avx2_storen(c + j, kl_epilogue_avx2(e, v, r ? r + j : NULL, n), n);
    }
}
#endif

void kl_sgemm_epilogue_apply(const kl_sgemm_epilogue *e, float *c, int64_t off, int64_t rows,
                             int64_t cols, int64_t ld) {
  if (!e || rows <= 0 || cols <= 0 || (!e->residual && e->act == KL_SGEMM_ACT_NONE))
    return;
  const float *r = e->residual ? e->residual + off : NULL;
#ifdef KL_VMATH_X86
  /* the GEMM's choice, overrides included; 0: not asked yet, 1: portable, 2: avx512, 3: avx2 */
  static int simd;
  int known = __atomic_load_n(&simd, __ATOMIC_RELAXED);
  if (!known) {
    const char *isa = kl_sgemm_isa();
    known = !strcmp(isa, "avx512") ? 2 : !strcmp(isa, "avx2") ? 3 : 1;
    __atomic_store_n(&simd, known, __ATOMIC_RELAXED);
  }
  if (known == 2) {
    apply_avx512(e, c, r, rows, cols, ld);
    return;
  }
  if (known == 3) {
    apply_avx2(e, c, r, rows, cols, ld);
    return;
  }
#endif
  for (int64_t i = 0; i < rows; i++)
    apply_scalar(e, c + i * ld, r ? r + i * ld : NULL, cols);
}
