/* The fused epilogue (runtime/gemm.h) on one vector, AVX-512 (16 lanes) or AVX2 (8 lanes): the
 * operations of epilogue.c, for the kernels that apply it in registers before their store
 * instead of reading back what they stored (a load waits for a masked store still in flight
 * rather than taking its data). The same operations in the same order as
 * kl_sgemm_epilogue_apply's vector paths, so both give the same bits; the two widths run the
 * same operations lane for lane (vmath.h's exp included), so they agree too. */
#ifndef KL_RUNTIME_KERNELS_EPILOGUE_VEC_H
#define KL_RUNTIME_KERNELS_EPILOGUE_VEC_H

#include "../gemm.h"
#include "avx2.h"
#include "vmath.h"

#ifdef KL_VMATH_X86
/* v with e applied (e not NULL); the residual, when e has one, is read at r under mask m. */
__attribute__((target("avx512f"), always_inline)) static inline __m512
kl_epilogue_avx512(const kl_sgemm_epilogue *e, __m512 v, const float *r, __mmask16 m) {
  if (e->residual)
    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, r));
  if (e->act == KL_SGEMM_ACT_CLAMP) {
    v = _mm512_min_ps(_mm512_set1_ps(e->hi), _mm512_max_ps(_mm512_set1_ps(e->lo), v));
  } else if (e->act == KL_SGEMM_ACT_SILU) {
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 d = _mm512_add_ps(one, kl_vm_exp512(_mm512_sub_ps(_mm512_setzero_ps(), v)));
    v = _mm512_mul_ps(v, _mm512_div_ps(one, d));
  }
  return v;
}

/* kl_epilogue_avx512 with 8 lanes, the residual read at r for the first n lanes (n >= 8: all;
 * the others get 0). */
__attribute__((target("avx2,fma"), always_inline)) static inline __m256
kl_epilogue_avx2(const kl_sgemm_epilogue *e, __m256 v, const float *r, int64_t n) {
  if (e->residual) {
    v = _mm256_add_ps(v, n >= 8 ? _mm256_loadu_ps(r) : _mm256_maskload_ps(r, kl_avx2_first(n)));
  }
  if (e->act == KL_SGEMM_ACT_CLAMP) {
    v = _mm256_min_ps(_mm256_set1_ps(e->hi), _mm256_max_ps(_mm256_set1_ps(e->lo), v));
  } else if (e->act == KL_SGEMM_ACT_SILU) {
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 d = _mm256_add_ps(one, kl_vm_exp256(_mm256_sub_ps(_mm256_setzero_ps(), v)));
    v = _mm256_mul_ps(v, _mm256_div_ps(one, d));
  }
  return v;
}
#endif

#endif
