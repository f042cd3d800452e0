/* Direct f32 convolution for depthwise and narrow grouped convs (NCHW, weights OIHW).
 *
 * kl_rt_conv2d sends a conv here when each group has one input channel (depthwise, any channel
 * multiplier) or at most DIRECT_MAX_CG channels in and out: there im2col plus a GEMM with a few
 * rows spends its time unrolling patches. Each output plane is computed on its own, every output
 * starting at the bias and accumulating weight * input over the taps in (input channel, ki, kj)
 * order.
 *
 * The SIMD paths (AVX-512, AVX2) first copy a group's input planes into a zero-padded buffer
 * whose rows are split into stride phases (pad_layout), so that every tap of every output lies
 * inside the buffer and reads contiguous floats whatever the stride, padding or dilation: the
 * border is the copy's business (masked loads of each input row), and the loop over the taps
 * has no checks. Outputs go in tiles of four vectors (one row of four, two rows of two, or four
 * rows of one for narrow planes) with each tap's weight broadcast once for the tile and four
 * independent sums to hide the FMA latency; lanes past a row's end compute garbage from the next
 * row and are not stored. Depthwise planes at most 16 outputs wide skip this copy: with AVX-512
 * those whose padded phase rows fit one vector go to conv_depthwise_flat.c (the plane's outputs
 * as consecutive vectors), the others read the input under masks (plane_narrow; plane_narrow8
 * with AVX2). The fused epilogue is applied in registers before each store rather than by
 * reading the stored rows back. The portable C path reads the unpadded input, each tap's loop
 * limited to the outputs whose input lies inside the row (loops compilers vectorize for
 * stride 1).
 *
 * The ISA is chosen once per process (as runtime/kernels/gemm.c does); KILN_CONV_ISA=generic|
 * avx2|avx512 forces one the CPU supports, so tests cover each. A plane's arithmetic depends on
 * its geometry only, so splitting channels across threads (steps_parallel.c) gives the same
 * bits as one call. */
#include <pthread.h>
#include <string.h>

#include "epilogue_vec.h"
#include "avx2.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KL_DW_X86 1
#endif

/* Grouped (not depthwise) convs go direct with at most this many channels in and out per group.
 * Measured on 3x3 convs against im2col + a GEMM per group: direct is 3-10x faster at 2-8
 * channels, 1.6x at 16, even at 32, slower for wider groups (which have GEMM rows to reuse). */
enum { DIRECT_MAX_CG = 16 };

/* Kernels wider than this go to the portable C (the SIMD paths keep an offset per column tap).
 * After the padded input come ROWS_PAST padded rows and SLACK floats more, what the rows of a
 * tile past Ho and the lanes past a row's end read (computed, never stored). */
enum { MAX_KW = 64, ROWS_PAST = 3, SLACK = 128 };

/* The load masks of a padded row's first PAD_CHUNKS chunks of 16 columns are computed once per
 * call (pad_layout), not once per row. */
enum { PAD_CHUNKS = 16 };

/* Output rows per strip (kl_rt_conv2d_direct_f32), a multiple of every tile's rows, when a
 * group's padded input is over SMALL_PAD bytes (smaller ones stay in L1 whole). */
enum { STRIP = 8, SMALL_PAD = 32 << 10 };

typedef struct dw_geom {
  int64_t Cg, H, W, Kh, Kw, Ho, Wo;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t Hp, Wq, tap_off[MAX_KW]; /* the SIMD paths' padded input (pad_layout) */
  int64_t past;                    /* the floats after it (ROWS_PAST rows and SLACK) */
  uint32_t pad_m[PAD_CHUNKS];      /* chunk k's input lanes (chunk_mask) */
  /* the AVX-512 tiles apply the epilogue before their stores (NULL: none, or the caller
   * applies it), res the residual of the plane being computed */
  const kl_sgemm_epilogue *epi;
  const float *res;
} dw_geom;

/* xp (the padded input, pad_layout), w (Cg, Kh, Kw) -> rows [oh0, oh1) of y (Ho, Wo) = bias +
 * conv; oh0 and oh1 - oh0 are multiples of STRIP, or oh1 = Ho. */
typedef void (*plane_fn)(const dw_geom *g, const float *x, const float *w, float bias, float *y,
                         int64_t oh0, int64_t oh1);

/* Outputs o in [*lo, *hi) (within [0, n_out)) whose input index off + o * stride lies in [0, n):
 * the taps of a row that land inside the input, or the lanes of a chunk. */
static inline void in_range(int64_t n_out, int64_t stride, int64_t off, int64_t n, int64_t *lo,
                            int64_t *hi) {
  int64_t a, b;
  if (stride == 1) { /* the common case, without the divisions */
    a = off >= 0 ? 0 : -off;
    b = off > n ? 0 : n - off;
  } else {
    a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    b = off > n - 1 ? 0 : (n - 1 - off) / stride + 1;
  }
  if (b > n_out)
    b = n_out;
  if (a > b)
    a = b;
  *lo = a, *hi = b;
}

/* ---- portable C ------------------------------------------------------------------------- */

/* x (Cg, H, W), w (Cg, Kh, Kw) -> y (Ho, Wo) = bias + conv, on the unpadded input: each tap
 * runs over the outputs whose input lies inside the row, a loop with no checks that compilers
 * vectorize for stride 1. */
static void plane_generic(const dw_geom *g, const float *x, const float *w, float bias, float *y) {
  for (int64_t oh = 0; oh < g->Ho; oh++) {
    float *restrict out = y + oh * g->Wo; /* (Wo,) */
    int64_t k0, k1;
    in_range(g->Kh, g->dh, oh * g->sh - g->ph, g->H, &k0, &k1);
    for (int64_t ow = 0; ow < g->Wo; ow++)
      out[ow] = bias;
    for (int64_t c = 0; c < g->Cg; c++)
      for (int64_t ki = k0; ki < k1; ki++) {
        const float *restrict in = x + (c * g->H + oh * g->sh - g->ph + ki * g->dh) * g->W;
        const float *wr = w + (c * g->Kh + ki) * g->Kw;
        for (int64_t kj = 0; kj < g->Kw; kj++) {
          float wt = wr[kj];
          int64_t off = kj * g->dw - g->pw, lo, hi;
          in_range(g->Wo, g->sw, off, g->W, &lo, &hi);
          if (g->sw == 1)
            for (int64_t ow = lo; ow < hi; ow++)
              out[ow] += wt * in[ow + off];
          else
            for (int64_t ow = lo; ow < hi; ow++)
              out[ow] += wt * in[ow * g->sw + off];
        }
      }
  }
}

/* ---- the padded, phase-split input of the SIMD paths ------------------------------------ */

/* Bits [a, b) of a 32-bit mask, a and b clipped to [0, 32]. */
static inline uint32_t bits_in(int64_t a, int64_t b) {
  a = a < 0 ? 0 : a > 32 ? 32 : a;
  b = b < 0 ? 0 : b > 32 ? 32 : b;
  return a < b ? (uint32_t)((((uint64_t)1 << b) - 1) & ~(((uint64_t)1 << a) - 1)) : 0;
}

/* Which of the 16 * sw input columns from j * sw - pw on that chunk j of a padded row (16
 * columns, each phase) reads lie inside the input, as bits. */
static inline uint32_t chunk_mask(const dw_geom *g, int64_t j) {
  int64_t base = j * g->sw - g->pw;
  return bits_in(-base, g->W - base);
}

/* Fills g's padded layout: Hp padded rows, each of sw phase rows of Wq floats, where phase f of
 * padded row r holds x[r - ph][j * sw + f - pw] at j (0 outside the input), so the input of
 * output (oh, ow) at tap (ki, kj) is row oh * sh + ki * dh, phase (kj * dw) % sw, element
 * ow + (kj * dw) / sw: every stride reads contiguous floats. False when a dimension is too big
 * to lay out (the portable path then takes the conv). */
static bool pad_layout(dw_geom *g, int64_t *out_floats) {
  int64_t reach_h, reach_w, plane;
  if (g->Kw > MAX_KW || !kl_mul_i64(g->Ho - 1, g->sh, &reach_h) ||
      !kl_mul_i64(g->Kh - 1, g->dh, &plane) || !kl_add_i64(reach_h, plane + 1, &g->Hp) ||
      !kl_mul_i64(g->Kw - 1, g->dw, &reach_w))
    return false;
  /* whole 64-byte lines per phase row, so that the copy's stores never split a line */
  g->Wq = (g->Wo + reach_w / g->sw + 15) / 16 * 16;
  for (int64_t kj = 0; kj < g->Kw; kj++)
    g->tap_off[kj] = (kj * g->dw) % g->sw * g->Wq + kj * g->dw / g->sw;
  int64_t floats, row;
  if (!kl_mul_i64(g->sw, g->Wq, &row) || !kl_mul_i64(row, g->Hp, &plane) ||
      !kl_mul_i64(plane, g->Cg, &floats) || !kl_mul_i64(row, ROWS_PAST * g->sh, &g->past) ||
      !kl_add_i64(g->past, SLACK, &g->past) || !kl_add_i64(floats, g->past, &floats) ||
      floats > (int64_t)(kl_tensor_max_bytes() / sizeof(float)))
    return false;
  for (int64_t k = 0; k < PAD_CHUNKS; k++)
    g->pad_m[k] = chunk_mask(g, 16 * k);
  *out_floats = floats;
  return true;
}

/* The input row under padded row r of channel c, or NULL in the padding. */
static inline const float *src_row(const dw_geom *g, const float *x, int64_t c, int64_t r) {
  int64_t ih = r - g->ph;
  return ih >= 0 && ih < g->H ? x + (c * g->H + ih) * g->W : NULL;
}

#ifdef KL_DW_X86

/* One padded row (sw phase rows of Wq floats) from input row src, or zeros for NULL: the
 * strides above 2, which the SIMD fills leave to this loop. */
static void pad_row(const dw_geom *g, const float *src, float *dst) {
  for (int64_t f = 0; f < g->sw; f++)
    for (int64_t j = 0; j < g->Wq; j++) {
      int64_t iw = j * g->sw + f - g->pw;
      dst[f * g->Wq + j] = src && iw >= 0 && iw < g->W ? src[iw] : 0.0f;
    }
}

/* ---- AVX-512 ---------------------------------------------------------------------------- */

#define AVX512 __attribute__((target("avx512f"), always_inline)) static inline

/* Output row oh's 16 outputs from ow (those past Wo dropped), the epilogue applied first. */
AVX512 void store16(const dw_geom *g, float *y, int64_t oh, int64_t ow, __m512 v) {
  int64_t n = g->Wo - ow, at = oh * g->Wo + ow;
  if (n <= 0)
    return;
  __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
  if (g->epi)
    v = kl_epilogue_avx512(g->epi, v, g->res ? g->res + at : NULL, m);
  if (n >= 16)
    _mm512_storeu_ps(y + at, v);
  else
    _mm512_mask_storeu_ps(y + at, m, v);
}

/* Outputs (oh .. oh + R - 1, ow .. ow + 16 U - 1) of one plane from the padded input xp: R x U
 * independent sums (the weight broadcast once for all of them, and enough chains in flight to
 * hide the FMA latency). Lanes past Wo compute garbage from the next row and are not stored. */
AVX512 void tile16(const dw_geom *g, const float *xp, const float *w, __m512 b, float *y,
                   int64_t oh, int64_t ow, int R, int U) {
  __m512 acc[4][4];
  for (int r = 0; r < R; r++)
    for (int u = 0; u < U; u++)
      acc[r][u] = b;
  int64_t rs = g->sw * g->Wq; /* floats per padded row */
  for (int64_t c = 0; c < g->Cg; c++)
    for (int64_t ki = 0; ki < g->Kh; ki++) {
      const float *row = xp + (c * g->Hp + oh * g->sh + ki * g->dh) * rs + ow;
      const float *wr = w + (c * g->Kh + ki) * g->Kw;
      for (int64_t kj = 0; kj < g->Kw; kj++) {
        __m512 wv = _mm512_set1_ps(wr[kj]);
        const float *p = row + g->tap_off[kj];
        for (int r = 0; r < R; r++)
          for (int u = 0; u < U; u++)
            acc[r][u] =
                _mm512_fmadd_ps(wv, _mm512_loadu_ps(p + r * g->sh * rs + 16 * u), acc[r][u]);
      }
    }
  for (int r = 0; r < R; r++)
    for (int u = 0; u < U; u++) {
      store16(g, y, oh + r, ow + 16 * u, acc[r][u]);
    }
}

/* The common depthwise shapes (K x K, K = 3 or 5, stride S = 1 or 2, no dilation): R output
 * rows x U chunks per tile with the K * K weights in registers, and each padded row loaded
 * once for all the tile's rows it feeds (a 3x3 stride-1 tile of four rows reads six rows, not
 * twelve). Rows past Ho read the padding's ROWS_PAST rows and are not stored. */
AVX512 void tile16_kk(const dw_geom *g, const float *xp, const __m512 *wv, __m512 b, float *y,
                      int64_t oh, int64_t ow, int64_t lim, int K, int S, int R, int U) {
  __m512 acc[4][2];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 2
    for (int u = 0; u < U; u++)
      acc[r][u] = b;
  int64_t rs = S * g->Wq;
  const float *base = xp + oh * S * rs + ow;
#pragma GCC unroll 16
  for (int ir = 0; ir < (R - 1) * S + K; ir++)
#pragma GCC unroll 5
    for (int kj = 0; kj < K; kj++) {
      const float *p = base + ir * rs + kj % S * g->Wq + kj / S;
#pragma GCC unroll 2
      for (int u = 0; u < U; u++) {
        __m512 v = _mm512_loadu_ps(p + 16 * u);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
          int ki = ir - r * S;
          if (ki >= 0 && ki < K)
            acc[r][u] = _mm512_fmadd_ps(wv[ki * K + kj], v, acc[r][u]);
        }
      }
    }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
#pragma GCC unroll 2
    for (int u = 0; u < U; u++) {
      if (oh + r >= lim)
        break;
      store16(g, y, oh + r, ow + 16 * u, acc[r][u]);
    }
}

/* A plane of tile16_kk tiles: R rows at a time (the last tile may hang past Ho), chunks in
 * pairs. */
AVX512 void plane16_kk(const dw_geom *g, const float *xp, const float *w, float bias, float *y,
                       int64_t oh0, int64_t oh1, int K, int S, int R) {
  __m512 wv[25];
#pragma GCC unroll 25
  for (int i = 0; i < K * K; i++)
    wv[i] = _mm512_set1_ps(w[i]);
  __m512 b = _mm512_set1_ps(bias);
  int64_t chunks = (g->Wo + 15) / 16;
  for (int64_t oh = oh0; oh < oh1; oh += R) {
    int64_t c = 0;
    for (; c + 2 <= chunks; c += 2)
      tile16_kk(g, xp, wv, b, y, oh, 16 * c, oh1, K, S, R, 2);
    if (c < chunks)
      tile16_kk(g, xp, wv, b, y, oh, 16 * c, oh1, K, S, R, 1);
  }
}

__attribute__((target("avx512f"))) static void plane_avx512_k3s1(const dw_geom *g, const float *xp,
                                                                 const float *w, float bias,
                                                                 float *y, int64_t oh0,
                                                                 int64_t oh1) {
  plane16_kk(g, xp, w, bias, y, oh0, oh1, 3, 1, 4);
}
__attribute__((target("avx512f"))) static void plane_avx512_k3s2(const dw_geom *g, const float *xp,
                                                                 const float *w, float bias,
                                                                 float *y, int64_t oh0,
                                                                 int64_t oh1) {
  plane16_kk(g, xp, w, bias, y, oh0, oh1, 3, 2, 4);
}
__attribute__((target("avx512f"))) static void plane_avx512_k5s1(const dw_geom *g, const float *xp,
                                                                 const float *w, float bias,
                                                                 float *y, int64_t oh0,
                                                                 int64_t oh1) {
  plane16_kk(g, xp, w, bias, y, oh0, oh1, 5, 1, 2);
}
__attribute__((target("avx512f"))) static void plane_avx512_k5s2(const dw_geom *g, const float *xp,
                                                                 const float *w, float bias,
                                                                 float *y, int64_t oh0,
                                                                 int64_t oh1) {
  plane16_kk(g, xp, w, bias, y, oh0, oh1, 5, 2, 2);
}

/* x (Cg, H, W) -> xp (Cg, Hp, sw, Wq) as pad_layout describes: 16 columns of a padded row per
 * step, loaded with the lanes outside the input masked to zero (stride 2: a 32-float span split
 * into its even and odd lanes, the two phases). Wq is a whole number of 16-float chunks, so
 * every store is a plain one: the plane kernels read these rows right away, and a load cannot
 * take its data from a masked store still in flight (it waits for the store to complete). */
__attribute__((target("avx512f"))) static void pad_avx512(const dw_geom *g, const float *x,
                                                          float *xp, int64_t r0, int64_t r1) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  int64_t s = g->sw, Wq = g->Wq;
  for (int64_t c = 0; c < g->Cg; c++)
    for (int64_t r = r0; r < r1; r++) {
      const float *src = src_row(g, x, c, r);
      float *dst = xp + (c * g->Hp + r) * s * Wq; /* (sw, Wq) */
      if (src && s > 2) {
        pad_row(g, src, dst);
        continue;
      }
      if (!src) {
        for (int64_t j = 0; j < s * Wq; j += 16)
          _mm512_storeu_ps(dst + j, _mm512_setzero_ps());
        continue;
      }
      for (int64_t j = 0; j < Wq; j += 16) {
        uint32_t m = j < 16 * PAD_CHUNKS ? g->pad_m[j / 16] : chunk_mask(g, j);
        /* masked lanes are not read, so the address may lie outside the row */
        const float *p = (const float *)((uintptr_t)src + (uintptr_t)((j * s - g->pw) * 4));
        bool inside = s == 1 ? (uint16_t)m == 0xffff : m == 0xffffffffu;
        /* inside the input: plain loads (the masked ones cost an extra uop) */
        __m512 a = inside ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps((__mmask16)m, p);
        if (s == 1) {
          _mm512_storeu_ps(dst + j, a);
          continue;
        }
        __m512 b = inside ? _mm512_loadu_ps(p + 16)
                          : _mm512_maskz_loadu_ps((__mmask16)(m >> 16), p + 16);
        _mm512_storeu_ps(dst + j, _mm512_permutex2var_ps(a, even, b));
        _mm512_storeu_ps(dst + Wq + j, _mm512_permutex2var_ps(a, odd, b));
      }
    }
}

__attribute__((target("avx512f"))) static void plane_avx512(const dw_geom *g, const float *xp,
                                                            const float *w, float bias, float *y,
                                                            int64_t oh0, int64_t oh1) {
  __m512 b = _mm512_set1_ps(bias);
  int64_t chunks = (g->Wo + 15) / 16, oh = oh0;
  if (chunks == 1) { /* narrow planes: up to four rows at once */
    for (; oh + 4 <= oh1; oh += 4)
      tile16(g, xp, w, b, y, oh, 0, 4, 1);
    switch (oh1 - oh) {
    case 3:
      tile16(g, xp, w, b, y, oh, 0, 3, 1);
      break;
    case 2:
      tile16(g, xp, w, b, y, oh, 0, 2, 1);
      break;
    case 1:
      tile16(g, xp, w, b, y, oh, 0, 1, 1);
      break;
    }
    return;
  }
  if (chunks == 2)
    for (; oh + 2 <= oh1; oh += 2)
      tile16(g, xp, w, b, y, oh, 0, 2, 2);
  for (; oh < oh1; oh++) {
    int64_t c = 0;
    for (; c + 4 <= chunks; c += 4)
      tile16(g, xp, w, b, y, oh, 16 * c, 1, 4);
    switch (chunks - c) {
    case 3:
      tile16(g, xp, w, b, y, oh, 16 * c, 1, 3);
      break;
    case 2:
      tile16(g, xp, w, b, y, oh, 16 * c, 1, 2);
      break;
    case 1:
      tile16(g, xp, w, b, y, oh, 16 * c, 1, 1);
      break;
    }
  }
}

/* ---- AVX-512, planes one vector wide ----------------------------------------------------
 *
 * Depthwise planes at most 16 outputs wide (the 14x14 and 7x7 stages of MobileNet-style
 * networks) are mostly border, and copying each into a padded buffer costs more than the
 * plane's arithmetic. Here each tap reads the input row where it lies, with one masked load
 * (stride 2: two, and the even lanes kept) whose mask, fixed per column tap for the whole
 * convolution, zeroes the lanes outside the row. Every output still starts at the bias and
 * adds its taps in (ki, kj) order, the padded path's order, zeros included, so the bits are
 * the same; the epilogue is applied in registers. */

enum { NARROW_MAX_K = 16, NARROW_ZERO = 256, NARROW_ZERO_AT = 96 };

/* What a padding row reads: zeros around the point rows outside the input are taken from, wide
 * enough for every tap offset narrow_fits lets through. */
static const float narrow_zeros[NARROW_ZERO] __attribute__((aligned(64)));

typedef struct narrow_taps {
  int64_t off[NARROW_MAX_K];   /* column tap kj reads the row from off[kj] */
  __mmask16 lo[NARROW_MAX_K];  /* ... its lanes (stride 2: of the first 16 floats, even ones) */
  __mmask16 hi[NARROW_MAX_K];  /* stride 2: of the next 16 */
  __mmask16 store;             /* the Wo lanes of an output row */
} narrow_taps;

/* Whether a depthwise plane of geometry g goes the narrow way. */
static bool narrow_fits(const dw_geom *g) {
  return g->Cg == 1 && g->Wo <= 16 && g->sw <= 2 && g->Kw <= NARROW_MAX_K &&
         g->pw <= NARROW_ZERO_AT && (g->Kw - 1) * g->dw - g->pw + 32 <= NARROW_ZERO - NARROW_ZERO_AT;
}

/* Where column tap kj reads an output row from, and which floats from there it reads: bit l
 * (stride 2: bit 2l) is set where output lane l's input column lies inside the row. */
static int64_t narrow_lanes(const dw_geom *g, int64_t kj, uint32_t *bits) {
  int64_t base = kj * g->dw - g->pw; /* output lane l reads input column base + l * sw */
  uint32_t m = 0;
  for (int64_t l = 0; l < g->Wo; l++) {
    int64_t iw = base + l * g->sw;
    if (iw >= 0 && iw < g->W)
      m |= 1u << (g->sw == 1 ? l : 2 * l);
  }
  *bits = m;
  return base;
}

static void narrow_init(const dw_geom *g, narrow_taps *t) {
  for (int64_t kj = 0; kj < g->Kw; kj++) {
    uint32_t m;
    t->off[kj] = narrow_lanes(g, kj, &m);
    t->lo[kj] = (__mmask16)m;
    t->hi[kj] = (__mmask16)(m >> 16);
  }
  t->store = (__mmask16)((1u << g->Wo) - 1u);
}

/* Four output rows from oh (those past Ho computed on zeros and not stored), Kw = K and stride
 * S fixed at compile time where the caller makes them constants. */
__attribute__((target("avx512f"), always_inline)) static inline void
rows_narrow(const dw_geom *g, const narrow_taps *t, const float *x, const float *w, __m512 b,
            float *y, int64_t oh, const kl_sgemm_epilogue *e, const float *r, int K, int S) {
  const __m512i evens =
      _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  __m512 acc[4] = {b, b, b, b};
  for (int64_t ki = 0; ki < g->Kh; ki++) {
    const char *row[4]; /* masked lanes are not read, so an address may lie outside the row */
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
      int64_t ih = (oh + q) * g->sh + ki * g->dh - g->ph;
      row[q] = (const char *)(oh + q < g->Ho && ih >= 0 && ih < g->H
                                  ? x + ih * g->W
                                  : narrow_zeros + NARROW_ZERO_AT); /* a padding row */
    }
    const float *wr = w + ki * K;
#pragma GCC unroll 16
    for (int kj = 0; kj < K; kj++) {
      __m512 wv = _mm512_set1_ps(wr[kj]);
      __mmask16 lo = t->lo[kj], hi = t->hi[kj];
      int64_t off = t->off[kj] * 4;
#pragma GCC unroll 4
      for (int q = 0; q < 4; q++) {
        const float *p = (const float *)(row[q] + off);
        __m512 v = _mm512_maskz_loadu_ps(lo, p);
        if (S == 2)
          v = _mm512_permutex2var_ps(v, evens, _mm512_maskz_loadu_ps(hi, p + 16));
        acc[q] = _mm512_fmadd_ps(wv, v, acc[q]);
      }
    }
  }
#pragma GCC unroll 4
  for (int q = 0; q < 4; q++) {
    if (oh + q >= g->Ho)
      break;
    __m512 v = acc[q];
    if (e)
      v = kl_epilogue_avx512(e, v, r ? r + (oh + q) * g->Wo : NULL, t->store);
    _mm512_mask_storeu_ps(y + (oh + q) * g->Wo, t->store, v);
  }
}

/* Plane x (H, W) -> y (Ho, Wo) = bias + conv, epilogue e (NULL: none) with its residual r. */
__attribute__((target("avx512f"))) static void plane_narrow(const dw_geom *g,
                                                            const narrow_taps *t,
                                                            const float *x, const float *w,
                                                            float bias, float *y,
                                                            const kl_sgemm_epilogue *e,
                                                            const float *r) {
  __m512 b = _mm512_set1_ps(bias);
  for (int64_t oh = 0; oh < g->Ho; oh += 4) {
    if (g->Kw == 3 && g->sw == 1)
      rows_narrow(g, t, x, w, b, y, oh, e, r, 3, 1);
    else if (g->Kw == 3)
      rows_narrow(g, t, x, w, b, y, oh, e, r, 3, 2);
    else if (g->Kw == 5 && g->sw == 1)
      rows_narrow(g, t, x, w, b, y, oh, e, r, 5, 1);
    else if (g->Kw == 5)
      rows_narrow(g, t, x, w, b, y, oh, e, r, 5, 2);
    else if (g->sw == 1)
      rows_narrow(g, t, x, w, b, y, oh, e, r, (int)g->Kw, 1);
    else
      rows_narrow(g, t, x, w, b, y, oh, e, r, (int)g->Kw, 2);
  }
}

/* ---- AVX2 ------------------------------------------------------------------------------- */

#define AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

/* store16 with 8 lanes: output row oh's 8 outputs from ow (those past Wo dropped), the
 * epilogue applied first; a partial vector goes out without a masked store (avx2.h). */
AVX2 void store8(const dw_geom *g, float *y, int64_t oh, int64_t ow, __m256 v) {
  int64_t n = g->Wo - ow, at = oh * g->Wo + ow;
  if (n <= 0)
    return;
  if (g->epi)
    v = kl_epilogue_avx2(g->epi, v, g->res ? g->res + at : NULL, n);
  kl_avx2_storen(y + at, v, n);
}

/* tile16 with 8-float vectors. */
AVX2 void tile8(const dw_geom *g, const float *xp, const float *w, __m256 b, float *y, int64_t oh,
                int64_t ow, int R, int U) {
  __m256 acc[4][4];
  for (int r = 0; r < R; r++)
    for (int u = 0; u < U; u++)
      acc[r][u] = b;
  int64_t rs = g->sw * g->Wq;
  for (int64_t c = 0; c < g->Cg; c++)
    for (int64_t ki = 0; ki < g->Kh; ki++) {
      const float *row = xp + (c * g->Hp + oh * g->sh + ki * g->dh) * rs + ow;
      const float *wr = w + (c * g->Kh + ki) * g->Kw;
      for (int64_t kj = 0; kj < g->Kw; kj++) {
        __m256 wv = _mm256_set1_ps(wr[kj]);
        const float *p = row + g->tap_off[kj];
        for (int r = 0; r < R; r++)
          for (int u = 0; u < U; u++)
            acc[r][u] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p + r * g->sh * rs + 8 * u), acc[r][u]);
      }
    }
  for (int r = 0; r < R; r++)
    for (int u = 0; u < U; u++)
      store8(g, y, oh + r, ow + 8 * u, acc[r][u]);
}

/* tile16_kk with 8-float vectors, for 3x3 only (nine weights and four sums fill the 16
 * registers). */
AVX2 void tile8_k3(const dw_geom *g, const float *xp, const __m256 *wv, __m256 b, float *y,
                   int64_t oh, int64_t ow, int64_t lim, int S) {
  enum { K = 3, R = 4 };
  __m256 acc[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++)
    acc[r] = b;
  int64_t rs = S * g->Wq;
  const float *base = xp + oh * S * rs + ow;
#pragma GCC unroll 16
  for (int ir = 0; ir < (R - 1) * S + K; ir++)
#pragma GCC unroll 3
    for (int kj = 0; kj < K; kj++) {
      __m256 v = _mm256_loadu_ps(base + ir * rs + kj % S * g->Wq + kj / S);
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) {
        int ki = ir - r * S;
        if (ki >= 0 && ki < K)
          acc[r] = _mm256_fmadd_ps(wv[ki * K + kj], v, acc[r]);
      }
    }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) {
    if (oh + r >= lim)
      break;
    store8(g, y, oh + r, ow, acc[r]);
  }
}

AVX2 void plane8_k3(const dw_geom *g, const float *xp, const float *w, float bias, float *y,
                    int64_t oh0, int64_t oh1, int S) {
  __m256 wv[9];
#pragma GCC unroll 9
  for (int i = 0; i < 9; i++)
    wv[i] = _mm256_set1_ps(w[i]);
  __m256 b = _mm256_set1_ps(bias);
  for (int64_t oh = oh0; oh < oh1; oh += 4)
    for (int64_t ow = 0; ow < g->Wo; ow += 8)
      tile8_k3(g, xp, wv, b, y, oh, ow, oh1, S);
}

__attribute__((target("avx2,fma"))) static void plane_avx2_k3s1(const dw_geom *g, const float *xp,
                                                                const float *w, float bias,
                                                                float *y, int64_t oh0,
                                                                int64_t oh1) {
  plane8_k3(g, xp, w, bias, y, oh0, oh1, 1);
}
__attribute__((target("avx2,fma"))) static void plane_avx2_k3s2(const dw_geom *g, const float *xp,
                                                                const float *w, float bias,
                                                                float *y, int64_t oh0,
                                                                int64_t oh1) {
  plane8_k3(g, xp, w, bias, y, oh0, oh1, 2);
}

/* pad_avx512 with 8-float vectors. Padded rows are whole 16-float chunks, so every store is
 * a whole vector; a chunk wholly inside the input row is read by plain loads, one crossing
 * its ends under a mask. */
__attribute__((target("avx2,fma"))) static void pad_avx2(const dw_geom *g, const float *x,
                                                         float *xp, int64_t r0, int64_t r1) {
  int64_t s = g->sw, Wq = g->Wq;
  for (int64_t c = 0; c < g->Cg; c++)
    for (int64_t r = r0; r < r1; r++) {
      const float *src = src_row(g, x, c, r);
      float *dst = xp + (c * g->Hp + r) * s * Wq;
      if (src && s > 2) {
        pad_row(g, src, dst);
        continue;
      }
      if (!src) {
        for (int64_t j = 0; j < s * Wq; j += 8)
          _mm256_storeu_ps(dst + j, _mm256_setzero_ps());
        continue;
      }
      for (int64_t j = 0; j < Wq; j += 16) { /* the chunks of pad_layout, 8 columns at a time */
        uint32_t m = j < 16 * PAD_CHUNKS ? g->pad_m[j / 16] : chunk_mask(g, j);
        uint32_t all = s == 1 ? 0xFFFFu : 0xFFFFFFFFu;
        m &= all;
        const float *p = (const float *)((uintptr_t)src + (uintptr_t)((j * s - g->pw) * 4));
        for (int h = 0; h < 2; h++) {
          if (s == 1) {
            __m256 v = m == all ? _mm256_loadu_ps(p + 8 * h)
                                : _mm256_maskload_ps(p + 8 * h, kl_avx2_lanes(m >> (8 * h)));
            _mm256_storeu_ps(dst + j + 8 * h, v);
            continue;
          }
          __m256 a, b;
          if (m == all) {
            a = _mm256_loadu_ps(p + 16 * h);
            b = _mm256_loadu_ps(p + 16 * h + 8);
          } else {
            a = _mm256_maskload_ps(p + 16 * h, kl_avx2_lanes(m >> (16 * h)));
            b = _mm256_maskload_ps(p + 16 * h + 8, kl_avx2_lanes(m >> (16 * h + 8)));
          }
          _mm256_storeu_ps(dst + j + 8 * h, kl_avx2_evens(a, b));
          _mm256_storeu_ps(dst + Wq + j + 8 * h, kl_avx2_odds(a, b));
        }
      }
    }
}

__attribute__((target("avx2,fma"))) static void plane_avx2(const dw_geom *g, const float *xp,
                                                           const float *w, float bias, float *y,
                                                           int64_t oh0, int64_t oh1) {
  __m256 b = _mm256_set1_ps(bias);
  int64_t chunks = (g->Wo + 7) / 8, oh = oh0;
  if (chunks == 1) {
    for (; oh + 4 <= oh1; oh += 4)
      tile8(g, xp, w, b, y, oh, 0, 4, 1);
    switch (oh1 - oh) {
    case 3:
      tile8(g, xp, w, b, y, oh, 0, 3, 1);
      break;
    case 2:
      tile8(g, xp, w, b, y, oh, 0, 2, 1);
      break;
    case 1:
      tile8(g, xp, w, b, y, oh, 0, 1, 1);
      break;
    }
    return;
  }
  if (chunks == 2)
    for (; oh + 2 <= oh1; oh += 2)
      tile8(g, xp, w, b, y, oh, 0, 2, 2);
  for (; oh < oh1; oh++) {
    int64_t c = 0;
    for (; c + 4 <= chunks; c += 4)
      tile8(g, xp, w, b, y, oh, 8 * c, 1, 4);
    switch (chunks - c) {
    case 3:
      tile8(g, xp, w, b, y, oh, 8 * c, 1, 3);
      break;
    case 2:
      tile8(g, xp, w, b, y, oh, 8 * c, 1, 2);
      break;
    case 1:
      tile8(g, xp, w, b, y, oh, 8 * c, 1, 1);
      break;
    }
  }
}

/* ---- AVX2, planes at most two vectors wide ----------------------------------------------
 *
 * plane_narrow with 8-float vectors: a row of at most 16 outputs is U = 1 or 2 vectors, each
 * tap read where it lies under a mask fixed per column tap (stride 2: two masked loads and the
 * even floats kept), padding rows read from narrow_zeros. The same operations in the same
 * order as the padded path's, so the same bits. */

typedef struct narrow_taps8 {
  int64_t off[NARROW_MAX_K];      /* column tap kj reads the row from off[kj] */
  __m256i lo[NARROW_MAX_K][2];    /* vector u's load mask (stride 2: of its first 8 floats) */
  __m256i hi[NARROW_MAX_K][2];    /* stride 2: of its next 8 */
} narrow_taps8;

__attribute__((target("avx2,fma"))) static void narrow_init8(const dw_geom *g,
                                                            narrow_taps8 *t) {
  for (int64_t kj = 0; kj < g->Kw; kj++) {
    uint32_t m;
    t->off[kj] = narrow_lanes(g, kj, &m);
    for (int u = 0; u < 2; u++) {
      t->lo[kj][u] = kl_avx2_lanes(g->sw == 1 ? m >> (8 * u) : m >> (16 * u));
      t->hi[kj][u] = kl_avx2_lanes(g->sw == 1 ? 0 : m >> (16 * u + 8));
    }
  }
}

/* Four output rows from oh (those past Ho computed on zeros and not stored), U vectors each;
 * K, S and U constants where the caller makes them so. */
AVX2 void rows_narrow8(const dw_geom *g, const narrow_taps8 *t, const float *x, const float *w,
                       __m256 b, float *y, int64_t oh, const kl_sgemm_epilogue *e,
                       const float *r, int K, int S, int U) {
  __m256 acc[4][2] = {{b, b}, {b, b}, {b, b}, {b, b}};
  for (int64_t ki = 0; ki < g->Kh; ki++) {
    const char *row[4]; /* masked lanes are not read, so an address may lie outside the row */
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
      int64_t ih = (oh + q) * g->sh + ki * g->dh - g->ph;
      row[q] = (const char *)(oh + q < g->Ho && ih >= 0 && ih < g->H
                                  ? x + ih * g->W
                                  : narrow_zeros + NARROW_ZERO_AT); /* a padding row */
    }
    const float *wr = w + ki * K;
#pragma GCC unroll 16
    for (int kj = 0; kj < K; kj++) {
      __m256 wv = _mm256_set1_ps(wr[kj]);
      int64_t off = t->off[kj] * 4;
#pragma GCC unroll 2
      for (int u = 0; u < U; u++) {
        __m256i lo = t->lo[kj][u], hi = t->hi[kj][u];
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
          const float *p = (const float *)(row[q] + off) + 8 * S * u;
          __m256 v = _mm256_maskload_ps(p, lo);
          if (S == 2)
            v = kl_avx2_evens(v, _mm256_maskload_ps(p + 8, hi));
          acc[q][u] = _mm256_fmadd_ps(wv, v, acc[q][u]);
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int q = 0; q < 4; q++) {
    if (oh + q >= g->Ho)
      break;
#pragma GCC unroll 2
    for (int u = 0; u < U; u++) {
      int64_t at = (oh + q) * g->Wo + 8 * u, n = g->Wo - 8 * u;
      __m256 v = acc[q][u];
      if (e)
        v = kl_epilogue_avx2(e, v, r ? r + at : NULL, n);
      kl_avx2_storen(y + at, v, n);
    }
  }
}

#define NARROW8_ROWS(K, S)                                                                     \
  do {                                                                                         \
    if (g->Wo > 8)                                                                             \
      rows_narrow8(g, t, x, w, b, y, oh, e, r, K, S, 2);                                       \
    else                                                                                       \
      rows_narrow8(g, t, x, w, b, y, oh, e, r, K, S, 1);                                       \
  } while (0)

/* plane_narrow with 8-float vectors. */
__attribute__((target("avx2,fma"))) static void plane_narrow8(const dw_geom *g,
                                                             const narrow_taps8 *t,
                                                             const float *x, const float *w,
                                                             float bias, float *y,
                                                             const kl_sgemm_epilogue *e,
                                                             const float *r) {
  __m256 b = _mm256_set1_ps(bias);
  for (int64_t oh = 0; oh < g->Ho; oh += 4) {
    if (g->Kw == 3 && g->sw == 1)
      NARROW8_ROWS(3, 1);
    else if (g->Kw == 3)
      NARROW8_ROWS(3, 2);
    else if (g->Kw == 5 && g->sw == 1)
      NARROW8_ROWS(5, 1);
    else if (g->Kw == 5)
      NARROW8_ROWS(5, 2);
    else if (g->sw == 1)
      NARROW8_ROWS((int)g->Kw, 1);
    else
      NARROW8_ROWS((int)g->Kw, 2);
  }
}
#undef NARROW8_ROWS

#endif /* KL_DW_X86 */

/* ---- the ISA, chosen once --------------------------------------------------------------- */

/* The SIMD kernels of one ISA: the general plane, the padding, and planes for K x K stride-S
 * depthwise shapes (NULL where the ISA has none). */
typedef void (*pad_fn)(const dw_geom *g, const float *x, float *xp, int64_t r0, int64_t r1);
typedef struct dw_isa {
  plane_fn plane;
  pad_fn pad;
  plane_fn k3[2], k5[2]; /* stride 1, 2 */
} dw_isa;

#ifdef KL_DW_X86
static const dw_isa isa_avx512 = {plane_avx512, pad_avx512,
                                  {plane_avx512_k3s1, plane_avx512_k3s2},
                                  {plane_avx512_k5s1, plane_avx512_k5s2}};
static const dw_isa isa_avx2 = {plane_avx2, pad_avx2, {plane_avx2_k3s1, plane_avx2_k3s2},
                                {NULL, NULL}};
#endif

/* NULL: the portable path on the unpadded input. */
static const dw_isa *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose_isa(void) {
#ifdef KL_DW_X86
  __builtin_cpu_init();
  const char *want = getenv("KILN_CONV_ISA");
  bool avx512 = __builtin_cpu_supports("avx512f");
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (want && !strcmp(want, "generic"))
    return;
  if (avx512 && !(want && !strcmp(want, "avx2")))
    chosen = &isa_avx512;
  else if (avx2)
    chosen = &isa_avx2;
#endif
}

/* The plane kernel of k for geometry g. */
static plane_fn pick_plane(const dw_isa *k, const dw_geom *g) {
  plane_fn f = NULL;
  if (g->Cg == 1 && g->Kh == g->Kw && g->dh == 1 && g->dw == 1 && g->sh == g->sw && g->sw <= 2)
    f = g->Kh == 3 ? k->k3[g->sw - 1] : g->Kh == 5 ? k->k5[g->sw - 1] : NULL;
  return f ? f : k->plane;
}

/* ---- entry points ----------------------------------------------------------------------- */

bool kl_rt_conv2d_direct_shape(const int64_t *w_shape, int64_t groups) {
  if (groups < 1)
    return false;
  int64_t Cg = w_shape[1], Cog = w_shape[0] / groups;
  return Cg == 1 || (groups > 1 && Cg <= DIRECT_MAX_CG && Cog <= DIRECT_MAX_CG);
}

bool kl_rt_conv2d_direct_fits(const kl_tensor *x, const kl_tensor *w, int64_t groups) {
  return x->dtype == KL_F32 && w->rank == 4 && kl_rt_conv2d_direct_shape(w->shape, groups);
}

kl_status kl_rt_conv2d_direct_f32(const kl_tensor *x, const kl_tensor *w, const kl_tensor *bias,
                                  const kl_rt_conv2d_params *p, kl_tensor *y,
                                  const kl_sgemm_epilogue *epi) {
  pthread_once(&chosen_once, choose_isa);
  int64_t N = x->shape[0], Cin = x->shape[1], Cout = w->shape[0];
  dw_geom g = {.Cg = w->shape[1], .H = x->shape[2], .W = x->shape[3], .Kh = w->shape[2],
               .Kw = w->shape[3], .Ho = y->shape[2], .Wo = y->shape[3], .sh = p->stride[0],
               .sw = p->stride[1], .ph = p->pad[0], .pw = p->pad[1], .dh = p->dilation[0],
               .dw = p->dilation[1]};
  int64_t groups = p->groups, Cog = Cout / groups, taps = g.Cg * g.Kh * g.Kw;
  const float *xd = x->data, *wd = w->data, *bd = bias ? bias->data : NULL;
  float *yd = y->data;
  int64_t floats;
  if (!chosen || !pad_layout(&g, &floats)) {
    for (int64_t n = 0; n < N; n++)
      for (int64_t co = 0; co < Cout; co++) {
        int64_t off = (n * Cout + co) * g.Ho * g.Wo;
        plane_generic(&g, xd + (n * Cin + co / Cog * g.Cg) * g.H * g.W, wd + co * taps,
                      bd ? bd[co] : 0.0f, yd + off);
        kl_sgemm_epilogue_apply(epi, yd + off, off, 1, g.Ho * g.Wo, g.Ho * g.Wo);
      }
    return NULL;
  }
#ifdef KL_DW_X86
  if (chosen == &isa_avx2 && narrow_fits(&g)) {
    narrow_taps8 t;
    narrow_init8(&g, &t);
    bool fused = epi && (epi->residual || epi->act != KL_SGEMM_ACT_NONE);
    for (int64_t n = 0; n < N; n++)
      for (int64_t co = 0; co < Cout; co++) {
        int64_t off = (n * Cout + co) * g.Ho * g.Wo;
        plane_narrow8(&g, &t, xd + (n * Cin + co / Cog) * g.H * g.W, wd + co * taps,
                      bd ? bd[co] : 0.0f, yd + off, fused ? epi : NULL,
                      fused && epi->residual ? epi->residual + off : NULL);
      }
    return NULL;
  }
  kl_dw_flat_shape fs = {g.H, g.W, g.Kh, g.Kw, g.Ho, g.Wo, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
  if (chosen == &isa_avx512 && g.Cg == 1 && kl_dw_flat_f32(&fs, N, Cin, Cout, xd, wd, bd, yd, epi))
    return NULL;
  if (chosen == &isa_avx512 && narrow_fits(&g)) {
    narrow_taps t;
    narrow_init(&g, &t);
    bool fused = epi && (epi->residual || epi->act != KL_SGEMM_ACT_NONE);
    for (int64_t n = 0; n < N; n++)
      for (int64_t co = 0; co < Cout; co++) {
        int64_t off = (n * Cout + co) * g.Ho * g.Wo;
        plane_narrow(&g, &t, xd + (n * Cin + co / Cog) * g.H * g.W, wd + co * taps,
                     bd ? bd[co] : 0.0f, yd + off, fused ? epi : NULL,
                     fused && epi->residual ? epi->residual + off : NULL);
      }
    return NULL;
  }
#endif
  plane_fn plane = pick_plane(chosen, &g);
#ifdef KL_DW_X86
  if (chosen && epi && (epi->residual || epi->act != KL_SGEMM_ACT_NONE))
    g.epi = epi; /* in registers, before the stores */
#endif
  float *xp = aligned_alloc(64, ((size_t)floats * sizeof *xp + 63) / 64 * 64);
  if (!xp)
    return kl_rt_oom("conv2d");
  memset(xp + floats - g.past, 0, (size_t)g.past * sizeof *xp); /* read, never stored */
  int64_t strip = (floats - g.past) * (int64_t)sizeof *xp <= SMALL_PAD ? g.Ho : STRIP;
  for (int64_t n = 0; n < N; n++)
    for (int64_t gi = 0; gi < groups; gi++) {
      /* a strip of output rows at a time, its padded rows copied just before: what the copy
       * writes is still in L1 when the planes read it */
      const float *xg = xd + (n * Cin + gi * g.Cg) * g.H * g.W;
      int64_t padded = 0;
      for (int64_t oh0 = 0; oh0 < g.Ho; oh0 += strip) {
        int64_t oh1 = oh0 + strip < g.Ho ? oh0 + strip : g.Ho;
        int64_t need = (oh1 - 1) * g.sh + (g.Kh - 1) * g.dh + 1;
        chosen->pad(&g, xg, xp, padded, need);
        padded = need;
        for (int64_t co = gi * Cog; co < (gi + 1) * Cog; co++) {
          int64_t off = (n * Cout + co) * g.Ho * g.Wo;
          g.res = g.epi && epi->residual ? epi->residual + off : NULL;
          plane(&g, xp, wd + co * taps, bd ? bd[co] : 0.0f, yd + off, oh0, oh1);
          off += oh0 * g.Wo; /* the strip's rows, still in cache */
          if (!g.epi)
            kl_sgemm_epilogue_apply(epi, yd + off, off, 1, (oh1 - oh0) * g.Wo, 0);
        }
      }
    }
  free(xp);
  return NULL;
}
