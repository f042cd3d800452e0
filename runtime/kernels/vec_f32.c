/* The f32 row kernels of vec_f32.h, instantiated per ISA, the choice among them, and the
 * per-thread scratch buffer.
 *
 * vec_f32_body.h holds the kernels once, over a vocabulary of vector macros; this file defines
 * that vocabulary three times (AVX-512 with 16 lanes and mask registers, AVX2 + FMA with 8 lanes
 * and maskload/maskstore, plain C with one float) and includes the body after each, so the
 * three tables differ only in the width and the instructions. Every function of an x86 instance
 * carries its target attribute, so the file builds with the compiler's default flags and the
 * choice is made at run time, once per process, as runtime/kernels/gemm.c chooses its
 * micro-kernel: the widest ISA the CPU has, or the one KILN_VEC_ISA names if the CPU has it. */
#include "vec_f32.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_internal.h"
#include "vmath.h"

/* ---- AVX-512 ------------------------------------------------------------------------------ */
#ifdef KL_VMATH_X86
#define VW 16
#define VT __m512
#define VFN __attribute__((target("avx512f"))) static
#define NAME(f) f##_avx512
#define NAME_STR "avx512"

VFN inline __mmask16 first512(int64_t n) {
  return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

/* v where the n (<= 16) bytes at m are nonzero, -inf elsewhere; reads only those n bytes */
VFN inline __m512 keep512(__m512 v, const uint8_t *m, int64_t n) {
  uint8_t tmp[16] = {0};
  memcpy(tmp, m, (size_t)(n < 16 ? n : 16));
  __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)tmp));
  return _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), _mm512_test_epi32_mask(b, b), v);
}

#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(x) _mm512_set1_ps(x)
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_LOADN(p, n, fill) _mm512_mask_loadu_ps(_mm512_set1_ps(fill), first512(n), p)
#define V_STOREN(p, v, n) _mm512_mask_storeu_ps(p, first512(n), v)
#define V_ADD _mm512_add_ps
#define V_SUB _mm512_sub_ps
#define V_MUL _mm512_mul_ps
#define V_FMA _mm512_fmadd_ps
#define V_MAX _mm512_max_ps
#define V_EXP kl_vm_exp512
#define V_HSUM _mm512_reduce_add_ps
#define V_HMAX _mm512_reduce_max_ps
#define V_KEEP keep512
#define V_FILLN(v, n, fill) _mm512_mask_mov_ps(_mm512_set1_ps(fill), first512(n), v)
#define V_ZERO_IF_NEGINF(v)                                                                       \
  _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ),            \
                     _mm512_setzero_ps())
#include "vec_f32_body.h"
#undef VW
#undef VT
#undef VFN
#undef NAME
#undef NAME_STR
#undef V_ZERO
#undef V_SET1
#undef V_LOAD
#undef V_STORE
#undef V_LOADN
#undef V_STOREN
#undef V_ADD
#undef V_SUB
#undef V_MUL
#undef V_FMA
#undef V_MAX
#undef V_EXP
#undef V_HSUM
#undef V_HMAX
#undef V_KEEP
#undef V_FILLN
#undef V_ZERO_IF_NEGINF

/* ---- AVX2 + FMA --------------------------------------------------------------------------- */
#define VW 8
#define VT __m256
#define VFN __attribute__((target("avx2,fma"))) static
#define NAME(f) f##_avx2
#define NAME_STR "avx2"

/* all ones in the first n lanes (n <= 8) */
VFN inline __m256i first256(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 8 ? n : 8)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

VFN inline __m256 loadn256(const float *p, int64_t n, float fill) {
  __m256i k = first256(n);
  return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, k), _mm256_castsi256_ps(k));
}

VFN inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

VFN inline float hmax256(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

VFN inline __m256 keep256(__m256 v, const uint8_t *m, int64_t n) {
  uint8_t tmp[16] = {0};
  memcpy(tmp, m, (size_t)(n < 8 ? n : 8));
  __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)tmp));
  __m256 drop = _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, _mm256_setzero_si256()));
  return _mm256_blendv_ps(v, _mm256_set1_ps(-INFINITY), drop);
}

#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(x) _mm256_set1_ps(x)
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_LOADN loadn256
#define V_STOREN(p, v, n) _mm256_maskstore_ps(p, first256(n), v)
#define V_ADD _mm256_add_ps
#define V_SUB _mm256_sub_ps
#define V_MUL _mm256_mul_ps
#define V_FMA _mm256_fmadd_ps
#define V_MAX _mm256_max_ps
#define V_EXP kl_vm_exp256
#define V_HSUM hsum256
#define V_HMAX hmax256
#define V_KEEP keep256
#define V_FILLN(v, n, fill)                                                                       \
  _mm256_blendv_ps(_mm256_set1_ps(fill), v, _mm256_castsi256_ps(first256(n)))
#define V_ZERO_IF_NEGINF(v)                                                                       \
  _mm256_blendv_ps(v, _mm256_setzero_ps(), _mm256_cmp_ps(v, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ))
#include "vec_f32_body.h"
#undef VW
#undef VT
#undef VFN
#undef NAME
#undef NAME_STR
#undef V_ZERO
#undef V_SET1
#undef V_LOAD
#undef V_STORE
#undef V_LOADN
#undef V_STOREN
#undef V_ADD
#undef V_SUB
#undef V_MUL
#undef V_FMA
#undef V_MAX
#undef V_EXP
#undef V_HSUM
#undef V_HMAX
#undef V_KEEP
#undef V_FILLN
#undef V_ZERO_IF_NEGINF
#endif /* KL_VMATH_X86 */

/* ---- portable C: one lane ------------------------------------------------------------------- */
#define VW 1
#define VT float
#define VFN static
#define NAME(f) f##_generic
#define NAME_STR "generic"

static inline float max_generic(float x, float acc) { return x > acc ? x : acc; }

#define V_ZERO() 0.0f
#define V_SET1(x) ((float)(x))
#define V_LOAD(p) (*(p))
#define V_STORE(p, v) (*(p) = (v))
#define V_LOADN(p, n, fill) ((n) > 0 ? *(p) : (fill))
#define V_STOREN(p, v, n) ((n) > 0 ? (void)(*(p) = (v)) : (void)0)
#define V_ADD(a, b) ((a) + (b))
#define V_SUB(a, b) ((a) - (b))
#define V_MUL(a, b) ((a) * (b))
#define V_FMA(a, b, c) ((a) * (b) + (c))
#define V_MAX max_generic
#define V_EXP kl_vm_expf
#define V_HSUM(v) (v)
#define V_HMAX(v) (v)
#define V_KEEP(v, m, n) ((n) > 0 && *(m) ? (v) : -INFINITY)
#define V_FILLN(v, n, fill) ((n) > 0 ? (v) : (fill))
#define V_ZERO_IF_NEGINF(v) ((v) == -INFINITY ? 0.0f : (v))
#include "vec_f32_body.h"

/* ---- the choice --------------------------------------------------------------------------- */

static const kl_vec_f32_ops *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

/* KILN_VEC_ISA=generic|avx2|avx512 forces a table the CPU supports (tests cover each). */
static void choose_isa(void) {
  chosen = &ops_generic;
#ifdef KL_VMATH_X86
  __builtin_cpu_init();
  const char *want = getenv("KILN_VEC_ISA");
  bool avx512 = __builtin_cpu_supports("avx512f");
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (want && !strcmp(want, "generic"))
    return;
  if (avx512 && !(want && !strcmp(want, "avx2")))
    chosen = &ops_avx512;
  else if (avx2)
    chosen = &ops_avx2;
#endif
}

const kl_vec_f32_ops *kl_vec_f32(void) {
  pthread_once(&chosen_once, choose_isa);
  return chosen;
}

float *kl_vec_scratch(size_t n) { return kl_rt_scratch(KL_SCRATCH_VEC, n); }
