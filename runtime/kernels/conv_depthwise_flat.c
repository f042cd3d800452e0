/* Depthwise f32 convolution of small planes with AVX-512: the 14x14 and 7x7 stages of
 * MobileNet-style networks, where conv_depthwise.c's row tiles fill half a vector or less.
 *
 * Each plane's input is first copied, zero-padded, into its stride phases: phase plane (a, b)
 * holds padded element (r * sh + a, c * sw + b) at row r, column c, rows Wq floats apart, where
 * Wq = Wo + the reach of the widest tap in phase columns. Output (oh, ow) at flat position
 * oh * Wq + ow then reads tap (ki, kj) at a fixed offset from that position in one phase plane,
 * so a whole plane's outputs run as consecutive vectors of 16 flat positions (the Wq - Wo
 * columns between two rows computed and dropped) with one plain load per vector and tap, no
 * masks and no shuffles: 7x7 outputs take 4 vectors instead of 8 half-empty ones, and stride 2
 * splits its columns once in the copy instead of once per tap. Every sum starts at the bias and
 * adds all taps in (ki, kj) order, zeros from the padding included, the order of the other
 * paths, so the bits are the same. Each vector's outputs are packed in registers (a compress
 * under the mask of its output lanes) and stored one after another, the fused epilogue applied
 * first (the residual read likewise and expanded). The next plane is copied into a second
 * buffer before this one's sums run, so their loads never wait for the copy's stores. */
#include <assert.h>
#include <string.h>

#include "epilogue_vec.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KL_FLAT_X86 1
#endif

/* The limits of this path: taps per plane, floats of the phase planes (with the reads past
 * them) and flat outputs, all kept on the stack. */
enum { FLAT_MAX_TAPS = 64, FLAT_MAX_IN = 4096, FLAT_MAX_OUT = 512, FLAT_GROUP = 4 };
/* (nvec is rounded up to FLAT_GROUP vectors; the sums run 8 at a time, the last 4 alone) */

typedef struct flat_plan {
  const kl_dw_flat_shape *s;
  int64_t Hq, Wq, phases;     /* each phase plane Hq x Wq; sh * sw of them */
  int64_t taps, nvec;         /* nvec: vectors of flat outputs, a multiple of FLAT_GROUP */
  int64_t reads;              /* floats the sums read from the start of the phase planes */
  int64_t off[FLAT_MAX_TAPS]; /* where tap ki * Kw + kj reads flat output 0 */
  uint32_t cols;              /* bit j: padded column j (< 32) lies in the input row */
  uint16_t keep[FLAT_MAX_OUT / 16]; /* flat vector v: its lanes that are outputs */
} flat_plan;

static bool plan(const kl_dw_flat_shape *s, flat_plan *p) {
  if (s->Wo < 1 || s->Ho < 1 || s->sw < 1 || s->sw > 2 || s->sh < 1 || s->sh > 4 ||
      s->dh < 1 || s->dw < 1 || s->Kh < 1 || s->Kw < 1 || s->Kh * s->Kw > FLAT_MAX_TAPS ||
      s->Ho > FLAT_MAX_OUT)
    return false;
  p->s = s;
  p->Wq = s->Wo + (s->Kw - 1) * s->dw / s->sw;
  p->Hq = s->Ho + (s->Kh - 1) * s->dh / s->sh;
  if (p->Wq > 16 || p->Hq > FLAT_MAX_OUT)
    return false;
  p->phases = s->sh * s->sw;
  p->taps = s->Kh * s->Kw;
  int64_t flat = (s->Ho - 1) * p->Wq + s->Wo;
  p->nvec = (flat + 16 * FLAT_GROUP - 1) / (16 * FLAT_GROUP) * FLAT_GROUP;
  if (p->nvec * 16 > FLAT_MAX_OUT)
    return false;
  int64_t plane = p->Hq * p->Wq, reach = 0;
  for (int64_t ki = 0; ki < s->Kh; ki++)
    for (int64_t kj = 0; kj < s->Kw; kj++) {
      int64_t a = ki * s->dh % s->sh, b = kj * s->dw % s->sw;
      int64_t o = (a * s->sw + b) * plane + ki * s->dh / s->sh * p->Wq + kj * s->dw / s->sw;
      p->off[ki * s->Kw + kj] = o;
      if (o > reach)
        reach = o;
    }
  /* the copy stores up to 16 floats past the planes, the sums read nvec vectors from each
   * tap's offset */
  p->reads = reach + p->nvec * 16;
  if (p->phases * plane + 16 > FLAT_MAX_IN || p->reads > FLAT_MAX_IN)
    return false;
  memset(p->keep, 0, sizeof p->keep);
  for (int64_t oh = 0; oh < s->Ho; oh++) /* shifts, not divisions: this runs on every call */
    for (int64_t f = oh * p->Wq; f < oh * p->Wq + s->Wo; f++)
      p->keep[f >> 4] |= (uint16_t)(1u << (f & 15));
  p->cols = 0; /* only the columns some phase row reads: none past 2 Wq */
  for (int64_t j = 0; j < s->sw * p->Wq; j++)
    if (j - s->pw >= 0 && j - s->pw < s->W)
      p->cols |= 1u << j;
  return true;
}

#ifdef KL_FLAT_X86
#define AVX512 __attribute__((target("avx512f"))) static

/* Plane x (H, W) into its phase planes at xp (and up to 16 floats past them with stride 1).
 * Stride 2 splits each padded row's 32 columns from one pair of loads into both column phases,
 * stored under masks (the rows of the two phases interleave). */
AVX512 void copy_phases(const flat_plan *p, const float *x, float *xp) {
  const kl_dw_flat_shape *s = p->s;
  const __m512i evens =
      _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odds =
      _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  __mmask16 row = (__mmask16)((1u << p->Wq) - 1u), lo = (__mmask16)p->cols,
            hi = (__mmask16)(p->cols >> 16);
  int64_t plane = p->Hq * p->Wq;
  for (int64_t a = 0; a < s->sh; a++)
    for (int64_t r = 0; r < p->Hq; r++) {
      float *d = xp + a * s->sw * plane + r * p->Wq; /* column phase 0; phase 1 a plane on */
      int64_t ih = r * s->sh + a - s->ph;
      if (s->sw == 1) { /* whole stores, each running into the next row (written after it) */
        _mm512_storeu_ps(d, ih < 0 || ih >= s->H
                                ? _mm512_setzero_ps()
                                : _mm512_maskz_loadu_ps(lo, x + ih * s->W - s->pw));
        continue;
      }
      if (ih < 0 || ih >= s->H) {
        _mm512_mask_storeu_ps(d, row, _mm512_setzero_ps());
        _mm512_mask_storeu_ps(d + plane, row, _mm512_setzero_ps());
        continue;
      }
      const float *src = x + ih * s->W - s->pw; /* padded column 0; masked lanes not read */
      __m512 v = _mm512_maskz_loadu_ps(lo, src);
      __m512 u = hi ? _mm512_maskz_loadu_ps(hi, src + 16) : _mm512_setzero_ps();
      _mm512_mask_storeu_ps(d, row, _mm512_permutex2var_ps(v, evens, u));
      _mm512_mask_storeu_ps(d + plane, row, _mm512_permutex2var_ps(v, odds, u));
    }
}

/* Flat vector v's outputs (the lanes of keep) stored one after another at y, e (NULL: none)
 * applied first with its residual read at r likewise. */
__attribute__((target("avx512f"), always_inline)) static inline void
store_kept(__m512 v, __mmask16 keep, float *y, const kl_sgemm_epilogue *e, const float *r) {
  __mmask16 n = (__mmask16)((1u << __builtin_popcount(keep)) - 1u);
  if (e) {
    if (r)
      v = _mm512_add_ps(v, _mm512_maskz_expand_ps(keep, _mm512_maskz_loadu_ps(n, r)));
    kl_sgemm_epilogue act = *e;
    act.residual = NULL;
    v = kl_epilogue_avx512(&act, v, NULL, keep);
  }
  if (keep != n) /* lanes to gather first */
    v = _mm512_maskz_compress_ps(keep, v);
  _mm512_mask_storeu_ps(y, n, v);
}

/* G flat vectors from v of one plane (G independent sums per tap to cover the FMA latency),
 * stored from y + done; returns the outputs stored. */
__attribute__((target("avx512f"), always_inline)) static inline int64_t
flat_group(const flat_plan *p, const float *xp, const float *w, __m512 b, int64_t v, float *y,
           int64_t done, const kl_sgemm_epilogue *e, const float *r, int G) {
  __m512 c[8];
#pragma GCC unroll 8
  for (int u = 0; u < G; u++)
    c[u] = b;
  const float *base = xp + v * 16;
  for (int64_t t = 0; t < p->taps; t++) {
    __m512 wv = _mm512_set1_ps(w[t]);
    const float *q = base + p->off[t];
#pragma GCC unroll 8
    for (int u = 0; u < G; u++)
      c[u] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(q + 16 * u), c[u]);
  }
  int64_t n = 0;
#pragma GCC unroll 8
  for (int u = 0; u < G; u++) {
    __mmask16 keep = p->keep[v + u];
    store_kept(c[u], keep, y + done + n, e, r ? r + done + n : NULL);
    n += __builtin_popcount(keep);
  }
  return n;
}

/* One plane: y (Ho, Wo) = bias + taps, then e (NULL: none) with residual r. */
AVX512 void flat_plane(const flat_plan *p, const float *xp, const float *w, float bias,
                       float *y, const kl_sgemm_epilogue *e, const float *r) {
  __m512 b = _mm512_set1_ps(bias);
  int64_t done = 0, v = 0; /* outputs stored, flat vectors done */
  for (; v + 8 <= p->nvec; v += 8)
    done += flat_group(p, xp, w, b, v, y, done, e, r, 8);
  if (v < p->nvec) /* nvec is a multiple of 4 */
    flat_group(p, xp, w, b, v, y, done, e, r, 4);
}

bool kl_dw_flat_f32(const kl_dw_flat_shape *s, int64_t N, int64_t Cin, int64_t Cout,
                    const float *x, const float *w, const float *bias, float *y,
                    const kl_sgemm_epilogue *epi) {
  flat_plan p;
  if (!plan(s, &p))
    return false;
  int64_t Cog = Cout / Cin, P = s->Ho * s->Wo, planes = N * Cout;
  if (planes <= 0)
    return true;
  /* two buffers: the next plane's copy goes in while this one's sums read theirs */
  static_assert(FLAT_MAX_IN % 16 == 0, "buffers stay 64-byte aligned");
  float xp[2][FLAT_MAX_IN] __attribute__((aligned(64)));
  int64_t written = p.phases * p.Hq * p.Wq + 16; /* what the copy may store */
  for (int i = 0; i < 2 && p.reads > written; i++) /* read past the planes, never written */
    memset(xp[i] + written, 0, (size_t)(p.reads - written) * sizeof(float));
  bool fused = epi && (epi->residual || epi->act != KL_SGEMM_ACT_NONE);
  /* plane i (image n, channel co = i % Cout) reads input plane i / Cog (n * Cin + co / Cog),
   * counted here rather than divided */
  const float *src = x; /* the input plane in xp[i & 1] */
  copy_phases(&p, src, xp[0]);
  for (int64_t i = 0, co = 0, k = 0; i < planes; i++) { /* k: i % Cog */
    int cur = (int)(i & 1);
    if (i + 1 < planes) { /* the next plane's input, once per input channel */
      if (k + 1 < Cog)
        memcpy(xp[!cur], xp[cur], (size_t)written * sizeof(float));
      else
        copy_phases(&p, src += s->H * s->W, xp[!cur]);
    }
    flat_plane(&p, xp[cur], w + co * p.taps, bias ? bias[co] : 0.0f, y + i * P,
               fused ? epi : NULL, fused && epi->residual ? epi->residual + i * P : NULL);
    k = k + 1 < Cog ? k + 1 : 0;
    co = co + 1 < Cout ? co + 1 : 0;
  }
  return true;
}
#else
bool kl_dw_flat_f32(const kl_dw_flat_shape *s, int64_t N, int64_t Cin, int64_t Cout,
                    const float *x, const float *w, const float *bias, float *y,
                    const kl_sgemm_epilogue *epi) {
  (void)s, (void)N, (void)Cin, (void)Cout, (void)x, (void)w, (void)bias, (void)y, (void)epi;
  return false;
}
#endif
