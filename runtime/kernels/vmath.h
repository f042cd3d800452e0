/* Vector exp for the f32 kernels of runtime/kernels/vec_f32.c: one algorithm written three times,
 * for AVX-512 (16 lanes), AVX2 + FMA (8 lanes) and plain C (one float), so that each ISA's
 * template instance calls the exp of its own width. The ISA is chosen once per process by
 * vec_f32.c; nothing here looks at the CPU.
 *
 * The algorithm is Cephes' expf, the one codegen/llvm/vmath.c generates for compiled
 * elementwise code: e^x = 2^n e^r with n = round(x log2 e) and |r| <= ln2 / 2, r = x - n ln2 in
 * two parts (ln2_hi has few bits, so n ln2_hi is exact), e^r = 1 + r + r^2 P(r) with Cephes'
 * degree-5 minimax P (relative error about 2e-7, one or two ulp). n is rounded by adding
 * 1.5 * 2^23, whose integer bits then hold n. 2^n is applied as two exponent fields n1 + n2 so
 * that n from -150 (subnormal results) to 128 stays in range. Inputs below -103.97 give 0 (so
 * -inf gives exactly 0, which softmax over masked scores relies on; those lanes compute on 0
 * instead, since a product that underflows costs a microcode assist per lane on x86 and a
 * masked score row is half -inf), above 88.72 give inf, and
 * nan stays nan: the clamps put x second in max/min, whose x86 forms return their second
 * operand when either is nan. The two vector forms run the same operations in the same order,
 * so they agree bit for bit; the C form rounds r's products separately and may differ by an ulp. */
#ifndef KL_RUNTIME_KERNELS_VMATH_H
#define KL_RUNTIME_KERNELS_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KL_VMATH_X86 1
#endif

#define KL_VM_EXP_LO (-103.972084045410f) /* below: e^x < 2^-150, rounds to 0 */
#define KL_VM_EXP_HI 88.72283935546875f   /* above: e^x > FLT_MAX */
#define KL_VM_LOG2E 1.44269504088896341f
#define KL_VM_LN2_HI 0.693359375f
#define KL_VM_LN2_LO (-2.12194440e-4f)
#define KL_VM_MAGIC 12582912.0f /* 1.5 * 2^23 */
#define KL_VM_P0 1.9875691500e-4f
#define KL_VM_P1 1.3981999507e-3f
#define KL_VM_P2 8.3334519073e-3f
#define KL_VM_P3 4.1665795894e-2f
#define KL_VM_P4 1.6666665459e-1f
#define KL_VM_P5 5.0000001201e-1f

/* The portable form: the same steps on one float. */
static inline float kl_vm_expf(float x) {
  if (x != x)
    return x;
  if (x < KL_VM_EXP_LO)
    return 0.0f;
  if (x > KL_VM_EXP_HI)
    return (float)INFINITY;
  float xc = x < -104.0f ? -104.0f : (x > 88.75f ? 88.75f : x);
  float t = xc * KL_VM_LOG2E + KL_VM_MAGIC;
  float nf = t - KL_VM_MAGIC;
  int32_t tb, mb;
  memcpy(&tb, &t, sizeof tb);
  float magic = KL_VM_MAGIC;
  memcpy(&mb, &magic, sizeof mb);
  int32_t n = tb - mb;
  float r = xc - nf * KL_VM_LN2_HI;
  r = r - nf * KL_VM_LN2_LO;
  float p = KL_VM_P0;
  p = p * r + KL_VM_P1;
  p = p * r + KL_VM_P2;
  p = p * r + KL_VM_P3;
  p = p * r + KL_VM_P4;
  p = p * r + KL_VM_P5;
  float y = p * (r * r) + (r + 1.0f);
  int32_t n1 = n >> 1, n2 = n - n1;
  int32_t b1 = (n1 + 127) << 23, b2 = (n2 + 127) << 23;
  float s1, s2;
  memcpy(&s1, &b1, sizeof s1);
  memcpy(&s2, &b2, sizeof s2);
  return y * s1 * s2;
}

#ifdef KL_VMATH_X86
__attribute__((target("avx512f"))) static inline __m512 kl_vm_exp512(__m512 x) {
  __mmask16 lo = _mm512_cmp_ps_mask(x, _mm512_set1_ps(KL_VM_EXP_LO), _CMP_LT_OQ);
  __mmask16 hi = _mm512_cmp_ps_mask(x, _mm512_set1_ps(KL_VM_EXP_HI), _CMP_GT_OQ);
  __m512 xc = _mm512_min_ps(_mm512_set1_ps(88.75f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  xc = _mm512_mask_mov_ps(xc, lo, _mm512_setzero_ps()); /* no subnormal work for a result of 0 */
  __m512 magic = _mm512_set1_ps(KL_VM_MAGIC);
  __m512 t = _mm512_fmadd_ps(xc, _mm512_set1_ps(KL_VM_LOG2E), magic);
  __m512 nf = _mm512_sub_ps(t, magic);
  __m512i n = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_castps_si512(magic));
  __m512 r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(KL_VM_LN2_HI), xc);
  r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(KL_VM_LN2_LO), r);
  __m512 p = _mm512_set1_ps(KL_VM_P0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(KL_VM_P1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(KL_VM_P2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(KL_VM_P3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(KL_VM_P4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(KL_VM_P5));
  __m512 y = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  __m512i n1 = _mm512_srai_epi32(n, 1), n2 = _mm512_sub_epi32(n, n1);
  __m512i bias = _mm512_set1_epi32(127);
  __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
  __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
  y = _mm512_mul_ps(_mm512_mul_ps(y, s1), s2);
  y = _mm512_mask_mov_ps(y, lo, _mm512_setzero_ps());
  return _mm512_mask_mov_ps(y, hi, _mm512_set1_ps((float)INFINITY));
}

__attribute__((target("avx2,fma"))) static inline __m256 kl_vm_exp256(__m256 x) {
  __m256 lo = _mm256_cmp_ps(x, _mm256_set1_ps(KL_VM_EXP_LO), _CMP_LT_OQ);
  __m256 hi = _mm256_cmp_ps(x, _mm256_set1_ps(KL_VM_EXP_HI), _CMP_GT_OQ);
  __m256 xc = _mm256_min_ps(_mm256_set1_ps(88.75f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
  xc = _mm256_blendv_ps(xc, _mm256_setzero_ps(), lo); /* no subnormal work for a result of 0 */
  __m256 magic = _mm256_set1_ps(KL_VM_MAGIC);
  __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(KL_VM_LOG2E), magic);
  __m256 nf = _mm256_sub_ps(t, magic);
  __m256i n = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(magic));
  __m256 r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(KL_VM_LN2_HI), xc);
  r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(KL_VM_LN2_LO), r);
  __m256 p = _mm256_set1_ps(KL_VM_P0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(KL_VM_P1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(KL_VM_P2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(KL_VM_P3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(KL_VM_P4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(KL_VM_P5));
  __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i n1 = _mm256_srai_epi32(n, 1), n2 = _mm256_sub_epi32(n, n1);
  __m256i bias = _mm256_set1_epi32(127);
  __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  y = _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), lo);
  return _mm256_blendv_ps(y, _mm256_set1_ps((float)INFINITY), hi);
}
#endif

#endif
