/* Small AVX2 helpers the f32 kernels share.
 *
 * kl_avx2_storen stores the first n lanes of a vector with plain stores (4, 2 and 1 floats
 * wide). _mm256_maskstore_ps would do it in one instruction, but on some AMD cores (Zen 3
 * measured: about 6 ns against 0.8 for a whole store) a masked store is microcoded, and a load
 * of what it wrote waits for it to retire; kernels that store a partial vector per row use this
 * instead. Masked loads are cheap there and are used as they are. */
#ifndef KL_RUNTIME_KERNELS_AVX2_H
#define KL_RUNTIME_KERNELS_AVX2_H

#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define KL_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

/* Lanes [0, n) of v to p[0 .. n), 0 <= n <= 8; nothing else of p is touched. */
KL_AVX2_INLINE void kl_avx2_storen(float *p, __m256 v, int64_t n) {
  if (n >= 8) {
    _mm256_storeu_ps(p, v);
    return;
  }
  __m128 q = _mm256_castps256_ps128(v);
  if (n & 4) {
    _mm_storeu_ps(p, q);
    q = _mm256_extractf128_ps(v, 1);
    p += 4;
  }
  if (n & 2) {
    _mm_storel_pi((__m64 *)(void *)p, q);
    q = _mm_movehl_ps(q, q);
    p += 2;
  }
  if (n & 1)
    _mm_store_ss(p, q);
}

/* Bits 0..7 of m as a maskload mask. */
KL_AVX2_INLINE __m256i kl_avx2_lanes(uint32_t m) {
  __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m), bits), bits);
}

/* The first n lanes (n >= 8: all) as a maskload mask. */
KL_AVX2_INLINE __m256i kl_avx2_first(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n < 8 ? (int)n : 8),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The even (odd) floats of a (8) then b (8). */
KL_AVX2_INLINE __m256 kl_avx2_evens(__m256 a, __m256 b) {
  __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)); /* a0 a2 b0 b2 a4 a6 b4 b6 */
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
}
KL_AVX2_INLINE __m256 kl_avx2_odds(__m256 a, __m256 b) {
  __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}
#endif

#endif
