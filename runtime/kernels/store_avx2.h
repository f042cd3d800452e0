/* The first n lanes of an 8-float vector stored with plain stores (4, 2 and 1 floats wide).
 * _mm256_maskstore_ps would do it in one instruction, but on some AMD cores (Zen 3 measured:
 * about 6 ns against 0.8 for a whole store) a masked store is microcoded, and a load of what it
 * wrote waits for it to retire; kernels that store a partial vector per row use this instead. */
#ifndef KL_RUNTIME_KERNELS_STORE_AVX2_H
#define KL_RUNTIME_KERNELS_STORE_AVX2_H

#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Lanes [0, n) of v to p[0 .. n), 0 <= n <= 8; nothing else of p is touched. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
kl_storen_avx2(float *p, __m256 v, int64_t n) {
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
#endif

#endif
