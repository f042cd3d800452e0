/* Single-precision 2-D convolution as an implicit GEMM.
 *
 * For image n and group g the convolution is one matrix product,
 *   y_g (Cog, P) = bias_g + W_g (Cog, KK) @ col (KK, P),   P = Ho * Wo, KK = Cg * Kh * Kw,
 * where col is the im2col matrix: col[(c, ki, kj)][(oh, ow)] = x[c][oh*sh - ph + ki*dh]
 * [ow*sw - pw + kj*dw], zero outside the image. col is never built: the GEMM of runtime/gemm.h
 * asks for B one panel (KC rows by NR output pixels) at a time, and pack_col writes that panel
 * straight from the image. A panel's pixels fall into runs of one output row; for each row
 * (c, ki, kj) of the panel a run is a strided read of one input row, clipped at the image's
 * edges: with AVX-512 one masked load (stride 1) or one masked gather per 16 pixels, else a
 * scalar loop. A 1x1, stride-1, unpadded convolution needs no packing of its own: x itself is
 * B. The weights may come packed ahead of time (kl_rt_conv2d_pack, at compile time); the bias
 * starts each sum inside the GEMM, so y is written once.
 *
 * kl_rt_conv2d_f32_part computes a range of output pixels of one (image, group), so a step can
 * split a convolution across threads; the GEMM gives every element the same bits whatever the
 * split. When a step splits the output channels of few pixels across threads, each task would
 * pack the same panels: kl_rt_conv2d_pack_col then packs the whole patch matrix once (its
 * panels shared out among the threads) and the parts read it as a packed B. */
#include <string.h>

#include "../gemm.h"
#include "avx2.h"
#include "epilogue_vec.h"
#include "kernels_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KL_CONV_X86 1
#endif

enum { MR = KL_SGEMM_MR, NR = KL_SGEMM_NR, MAX_KW_SIMD = 16 };

typedef struct conv_geom {
  int64_t Cg, H, W, Kh, Kw, Ho, Wo;
  int64_t sh, sw, ph, pw, dh, dw;
} conv_geom;

/* A run of one panel: columns [j0, j0 + len) are output pixels (oh, ow0 .. ow0 + len - 1). */
typedef struct pixel_run {
  int64_t j0, len, oh, ow0;
} pixel_run;

typedef struct col_source {
  const conv_geom *g;
  const float *x; /* (Cg, H, W): this image's channels of this group */
  bool avx512, avx2;
} col_source;

/* The runs of the panel starting at pixel n0 (at most NR pixels, clipped to P); returns how
 * many, and the columns they cover in *out_cols. */
static int panel_runs(const conv_geom *g, int64_t P, int64_t n0, pixel_run *runs,
                      int64_t *out_cols) {
  int n = 0;
  int64_t j = 0, end = P - n0 < NR ? P - n0 : NR;
  while (j < end) {
    int64_t p = n0 + j, oh = p / g->Wo, ow = p % g->Wo;
    int64_t len = g->Wo - ow < end - j ? g->Wo - ow : end - j;
    runs[n++] = (pixel_run){j, len, oh, ow};
    j += len;
  }
  *out_cols = end;
  return n;
}

/* The lanes t of a run, iw = iw0 + t * sw, that fall inside [0, W): [*t0, *t1). */
static void valid_lanes(int64_t iw0, int64_t sw, int64_t W, int64_t len, int64_t *t0,
                        int64_t *t1) {
  int64_t lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
  int64_t hi = W > iw0 ? (W - iw0 + sw - 1) / sw : 0;
  *t0 = lo < len ? lo : len;
  *t1 = hi < len ? hi : len;
  if (*t1 < *t0)
    *t1 = *t0;
}

static void copy_run_scalar(const float *row, int64_t iw0, int64_t sw, int64_t W, int64_t len,
                            float *dst) {
  int64_t t0, t1;
  valid_lanes(iw0, sw, W, len, &t0, &t1);
  for (int64_t t = 0; t < t0; t++)
    dst[t] = 0.0f;
  for (int64_t t = t0; t < t1; t++)
    dst[t] = row[iw0 + t * sw];
  for (int64_t t = t1; t < len; t++)
    dst[t] = 0.0f;
}

/* gemm.h's panel callback, portable: rows [k0, k0 + kc) of col for the pixels [n0, n0 + NR). */
static void pack_col_scalar(const col_source *s, int64_t P, int64_t k0, int64_t kc, int64_t n0,
                            float *panel) {
  const conv_geom *g = s->g;
  pixel_run runs[NR];
  int64_t cols;
  int n_runs = panel_runs(g, P, n0, runs, &cols);
  int64_t kk = g->Kh * g->Kw;
  int64_t c = k0 / kk, ki = (k0 % kk) / g->Kw, kj = k0 % g->Kw;
  for (int64_t k = 0; k < kc; k++) {
    float *dst = panel + k * NR;
    const float *plane = s->x + c * g->H * g->W;
    for (int r = 0; r < n_runs; r++) {
      const pixel_run *run = &runs[r];
      int64_t ih = run->oh * g->sh - g->ph + ki * g->dh;
      if (ih < 0 || ih >= g->H) {
        memset(dst + run->j0, 0, (size_t)run->len * sizeof(float));
        continue;
      }
      int64_t iw0 = run->ow0 * g->sw - g->pw + kj * g->dw;
      copy_run_scalar(plane + ih * g->W, iw0, g->sw, g->W, run->len, dst + run->j0);
    }
    if (cols < NR)
      memset(dst + cols, 0, (size_t)(NR - cols) * sizeof(float));
    if (++kj == g->Kw) {
      kj = 0;
      if (++ki == g->Kh)
        ki = 0, c++;
    }
  }
}

#ifdef KL_CONV_X86
/* Bits [from, to) of a 16-lane mask, from and to clipped to [0, 16] first: a piece past a
 * run's valid lanes asks for a range wholly below 0. */
static inline __mmask16 lanes_mask(int64_t from, int64_t to) {
  from = from < 0 ? 0 : from > 16 ? 16 : from;
  to = to < 0 ? 0 : to > 16 ? 16 : to;
  if (to <= from)
    return 0;
  return (__mmask16)(((1u << to) - 1u) & ~((1u << from) - 1u));
}

/* How one 16-lane piece of a run reads an input row, for one kj: the piece's lanes go to
 * dst[dst_col ...] under store; valid holds the lanes inside the image. Stride 1 loads the
 * valid lanes from row[src_off ...] (shifted down by shift, the lanes left of the image's
 * edge) and spreads them back with an expand; other strides gather lane t at iw0 + t * sw. */
typedef struct piece {
  int64_t dst_col, src_off;
  __mmask16 load, store, valid;
  int shift;
  int32_t iw0;
  bool inside;   /* stride 2: the whole span lies in the row (plain loads) */
  uint32_t even; /* stride 2: the 32-float span from iw0 is loaded under this mask (lane t at
                    bit 2t) and its even floats kept, which beats a gather */
} piece;

enum { MAX_PIECES = 2 * NR };

/* pack_col_scalar with AVX-512. A piece's masks depend on its run and kj only, so they are
 * worked out once per panel; the loop over the panel's rows then does one masked load (or
 * gather) and one masked store per piece. */
__attribute__((target("avx512f"))) static void pack_col_avx512(const col_source *s, int64_t P,
                                                                int64_t k0, int64_t kc,
                                                                int64_t n0, float *panel) {
  const conv_geom *g = s->g;
  pixel_run runs[NR];
  int64_t cols;
  int n_runs = panel_runs(g, P, n0, runs, &cols);
  piece pieces[MAX_KW_SIMD][MAX_PIECES];
  int64_t piece_oh[MAX_PIECES];
  int n_pieces = 0;
  for (int64_t kj = 0; kj < g->Kw; kj++) {
    int q = 0;
    for (int r = 0; r < n_runs; r++) {
      const pixel_run *run = &runs[r];
      int64_t iw0 = run->ow0 * g->sw - g->pw + kj * g->dw, t0, t1;
      valid_lanes(iw0, g->sw, g->W, run->len, &t0, &t1);
      for (int64_t b = 0; b < run->len; b += 16, q++) {
        piece *pc = &pieces[kj][q];
        int first = t0 > b ? (int)(t0 - b) : 0;
        pc->dst_col = run->j0 + b;
        pc->store = lanes_mask(0, run->len - b);
        pc->valid = lanes_mask(t0 - b, t1 - b);
        pc->shift = first;
        pc->load = (__mmask16)(pc->valid >> first);
        pc->src_off = iw0 + b + first;
        pc->iw0 = (int32_t)(iw0 + b * g->sw);
        pc->even = 0;
        for (int t = 0; t < 16; t++)
          if (pc->valid >> t & 1)
            pc->even |= 1u << (2 * t);
        /* all 32 floats of the stride-2 span lie in the row */
        pc->inside = pc->valid == 0xFFFF && pc->iw0 >= 0 && pc->iw0 + 32 <= g->W;
        piece_oh[q] = run->oh;
      }
    }
    n_pieces = q;
  }
  const __m512i lane_sw =
      _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                         _mm512_set1_epi32((int)g->sw));
  const __m512i evens =
      _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  int64_t kk = g->Kh * g->Kw;
  int64_t c = k0 / kk, ki = (k0 % kk) / g->Kw, kj = k0 % g->Kw;
  for (int64_t k = 0; k < kc; k++) {
    float *dst = panel + k * NR;
    const float *plane = s->x + c * g->H * g->W;
    for (int q = 0; q < n_pieces; q++) {
      const piece *pc = &pieces[kj][q];
      int64_t ih = piece_oh[q] * g->sh - g->ph + ki * g->dh;
      __m512 v = _mm512_setzero_ps();
      if (ih >= 0 && ih < g->H && pc->valid) {
        const float *row = plane + ih * g->W;
        if (g->sw == 1) {
          if (pc->load == 0xFFFF) /* inside the row: a plain load, cheaper than a masked one */
            v = _mm512_loadu_ps(row + pc->src_off);
          else
            v = _mm512_maskz_loadu_ps(pc->load, row + pc->src_off);
          if (pc->shift)
            v = _mm512_maskz_expand_ps(pc->valid, v);
        } else if (g->sw == 2) {
          /* masked lanes are not read, so the span may start or end outside the row */
          const float *p = (const float *)((uintptr_t)row + (uintptr_t)((int64_t)pc->iw0 * 4));
          __m512 lo, hi;
          if (pc->inside) {
            lo = _mm512_loadu_ps(p);
            hi = _mm512_loadu_ps(p + 16);
          } else {
            lo = _mm512_maskz_loadu_ps((__mmask16)pc->even, p);
            hi = _mm512_maskz_loadu_ps((__mmask16)(pc->even >> 16),
                                       (const float *)((uintptr_t)p + 64));
          }
          v = _mm512_permutex2var_ps(lo, evens, hi);
        } else {
          __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(pc->iw0), lane_sw);
          v = _mm512_mask_i32gather_ps(v, pc->valid, idx, row, 4);
        }
      }
      _mm512_mask_storeu_ps(dst + pc->dst_col, pc->store, v);
    }
    if (cols < NR)
      memset(dst + cols, 0, (size_t)(NR - cols) * sizeof(float));
    if (++kj == g->Kw) {
      kj = 0;
      if (++ki == g->Kh)
        ki = 0, c++;
    }
  }
}
#endif

#ifdef KL_CONV_X86
/* How one 8-lane piece of a run reads an input row, for one kj (pack_col_avx2): lane t of the
 * piece is column src + t * sw of the row, valid (bits) the lanes inside the image and the run;
 * with stride 2 the piece is the even floats of a 16-float span, lo and hi its load masks. */
typedef struct piece8 {
  __m256i lo, hi;
  int64_t dst_col, src;
  uint32_t valid;
  bool whole; /* every float the piece's loads touch lies in the row: plain loads */
} piece8;

/* pack_col_scalar with AVX2, strides 1 and 2. A panel's row is built in a local row of 32
 * floats by whole-vector stores (a piece's lanes past its run are overwritten by the next run's
 * piece; masked stores are slow on some AVX2 machines, avx2.h), then copied out. */
__attribute__((target("avx2,fma"))) static void pack_col_avx2(const col_source *s, int64_t P,
                                                              int64_t k0, int64_t kc,
                                                              int64_t n0, float *panel) {
  const conv_geom *g = s->g;
  pixel_run runs[NR];
  int64_t cols;
  int n_runs = panel_runs(g, P, n0, runs, &cols);
  piece8 pieces[MAX_KW_SIMD][NR / 8 + NR];
  int64_t piece_oh[NR / 8 + NR];
  int n_pieces = 0;
  for (int64_t kj = 0; kj < g->Kw; kj++) {
    int q = 0;
    for (int r = 0; r < n_runs; r++) {
      const pixel_run *run = &runs[r];
      int64_t iw0 = run->ow0 * g->sw - g->pw + kj * g->dw, t0, t1;
      valid_lanes(iw0, g->sw, g->W, run->len, &t0, &t1);
      for (int64_t b = 0; b < run->len; b += 8, q++) {
        piece8 *pc = &pieces[kj][q];
        int64_t lo = t0 - b < 0 ? 0 : t0 - b, hi = t1 - b > 8 ? 8 : t1 - b;
        uint32_t valid = lo < hi ? ((1u << hi) - 1u) & ~((1u << lo) - 1u) : 0;
        uint32_t even = 0;
        for (int t = 0; t < 8; t++)
          if (valid >> t & 1)
            even |= 1u << (2 * t);
        pc->dst_col = run->j0 + b;
        pc->src = iw0 + b * g->sw;
        pc->valid = valid;
        pc->lo = kl_avx2_lanes(g->sw == 1 ? valid : even);
        pc->hi = kl_avx2_lanes(even >> 8);
        pc->whole = valid == 0xFF && pc->src >= 0 && pc->src + 8 * g->sw <= g->W;
        piece_oh[q] = run->oh;
      }
    }
    n_pieces = q;
  }
  float row_out[NR + 8] = {0};
  int64_t kk = g->Kh * g->Kw;
  int64_t c = k0 / kk, ki = (k0 % kk) / g->Kw, kj = k0 % g->Kw;
  for (int64_t k = 0; k < kc; k++) {
    const float *plane = s->x + c * g->H * g->W;
    for (int q = 0; q < n_pieces; q++) {
      const piece8 *pc = &pieces[kj][q];
      int64_t ih = piece_oh[q] * g->sh - g->ph + ki * g->dh;
      __m256 v = _mm256_setzero_ps();
      if (ih >= 0 && ih < g->H && pc->valid) {
        /* masked lanes are not read, so the span may start or end outside the row */
        const float *p =
            (const float *)((uintptr_t)(plane + ih * g->W) + (uintptr_t)(pc->src * 4));
        if (g->sw == 1) {
          v = pc->whole ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, pc->lo);
        } else {
          const float *p8 = (const float *)((uintptr_t)p + 32);
          __m256 a = pc->whole ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, pc->lo);
          __m256 b = pc->whole ? _mm256_loadu_ps(p8) : _mm256_maskload_ps(p8, pc->hi);
          v = kl_avx2_evens(a, b);
        }
      }
      _mm256_storeu_ps(row_out + pc->dst_col, v);
    }
    float *dst = panel + k * NR;
    for (int64_t j = 0; j < NR; j += 8)
      _mm256_storeu_ps(dst + j, j < cols ? _mm256_loadu_ps(row_out + j) : _mm256_setzero_ps());
    if (cols % 8)
      memset(dst + cols, 0, (size_t)(8 - cols % 8) * sizeof(float));
    if (++kj == g->Kw) {
      kj = 0;
      if (++ki == g->Kh)
        ki = 0, c++;
    }
  }
}
#endif

#ifdef KL_CONV_X86
/* ---- few taps: the micro-kernel reads the input itself ----------------------------------
 *
 * When K = Cg * Kh * Kw fits one block of the GEMM (KL_SGEMM_KC) and output rows are at least
 * a vector wide, packing patches costs about half of what the products do (an image stem: 3
 * channels, 7x7, stride 2, K = 147 against M = 64 rows). Instead the part copies the input
 * rows it reads once into a zero-padded buffer split into stride phases (phase f of padded row
 * r holds x[r - ph][j * sw + f - pw] at j), where a block of outputs (oh, ow .. ow + 15) of
 * tap (c, ki, kj) is 16 consecutive floats at a fixed offset from the block's base (8 with
 * AVX2). A tile is MR output channels by two such blocks; every sum starts at the bias and
 * adds the taps in k order with fused multiply-adds, as the GEMM's micro-kernel does, so the
 * bits are the same as the packed path's whatever the split. */

enum { FEW_MAX_SW = 4 };

typedef struct few_layout {
  int64_t r0, rows, Wq, row_floats; /* padded rows [r0, r0 + rows), sw phases of Wq each */
} few_layout;

/* Whether the few-taps path takes a convolution of this geometry, with blocks of bw outputs
 * (16 with AVX-512, 8 with AVX2). Not 1x1 ones: strided, they read a quarter or less of the
 * padded copy, which costs more than packing just what they read (ResNet's 1x1 stride-2
 * downsample alone: 0.33 -> 0.23 ms packed). */
static bool few_taps_fits(const conv_geom *g, int64_t K, int64_t bw) {
  return K <= KL_SGEMM_KC && g->Wo >= bw && g->sw <= FEW_MAX_SW && g->sh <= FEW_MAX_SW &&
         g->Kw <= MAX_KW_SIMD && g->dw <= FEW_MAX_SW && g->dh <= FEW_MAX_SW &&
         !(g->Kh == 1 && g->Kw == 1);
}

/* The even floats of p[0 .. 2n) to d[0 .. n), as many as whole vectors take; returns how many. */
__attribute__((target("avx512f"))) static int64_t evens_avx512(const float *p, int64_t n,
                                                               float *d) {
  const __m512i evens =
      _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16, p += 32)
    _mm512_storeu_ps(d + j, _mm512_permutex2var_ps(_mm512_loadu_ps(p), evens,
                                                   _mm512_loadu_ps(p + 16)));
  return j;
}
__attribute__((target("avx2,fma"))) static int64_t evens_avx2(const float *p, int64_t n,
                                                              float *d) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8, p += 16)
    _mm256_storeu_ps(d + j, kl_avx2_evens(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)));
  return j;
}

/* Padded row r (of the input padded by ph) of channel c, all its phases, into dst. */
static void few_copy_row(const conv_geom *g, const float *x, int64_t c, int64_t r, int64_t Wq,
                         bool avx2, float *dst) {
  int64_t ih = r - g->ph;
  if (ih < 0 || ih >= g->H) {
    memset(dst, 0, (size_t)(g->sw * Wq) * sizeof(float));
    return;
  }
  const float *src = x + (c * g->H + ih) * g->W;
  for (int64_t f = 0; f < g->sw; f++) {
    float *d = dst + f * Wq;
    /* j with iw = j * sw + f - pw inside [0, W): [j0, j1) */
    int64_t first = g->pw - f, j0 = first <= 0 ? 0 : (first + g->sw - 1) / g->sw;
    int64_t last = g->W - 1 - f + g->pw; /* j * sw <= last */
    int64_t j1 = last < 0 ? 0 : last / g->sw + 1;
    if (j1 > Wq)
      j1 = Wq;
    if (j0 > j1)
      j0 = j1;
    memset(d, 0, (size_t)j0 * sizeof(float));
    int64_t j = j0;
    if (g->sw == 1) {
      memcpy(d + j0, src + j0 - g->pw, (size_t)(j1 - j0) * sizeof(float));
      j = j1;
    } else if (g->sw == 2) {
      /* the outputs whose pair of floats (2j + f - pw, and the one after) lies in the row */
      int64_t last_pair = (g->W - 2 - f + g->pw) / 2; /* largest such j, when >= j0 */
      int64_t n = g->W - 2 - f + g->pw >= 0 && last_pair >= j0
                      ? (last_pair + 1 < j1 ? last_pair + 1 : j1) - j0
                      : 0;
      const float *p = src + j0 * 2 + f - g->pw;
      j += avx2 ? evens_avx2(p, n, d + j0) : evens_avx512(p, n, d + j0);
    }
    for (; j < j1; j++)
      d[j] = src[j * g->sw + f - g->pw];
    memset(d + j1, 0, (size_t)(Wq - j1) * sizeof(float));
  }
}

/* rows x (two blocks of 16 outputs) of C = bias + A @ taps: a is the packed panel (a[k * MR +
 * i]), tap k of block h at xb[h] + koff[k]; lanes under mask[h] are stored at c[h] + i * ldc
 * (lanes outside compute from the buffer's padding and are dropped). The epilogue, when set,
 * is applied in registers before the store (epilogue_vec.h), its residual read at res[h] +
 * i * ldc. */
__attribute__((target("avx512f"))) static void few_kernel(int64_t K, const float *a,
                                                           const int64_t *koff,
                                                           const float *const xb[2],
                                                           float *const c[2],
                                                           const __mmask16 mask[2],
                                                           int64_t ldc, int rows,
                                                           const float *bias,
                                                           const kl_sgemm_epilogue *epi,
                                                           const float *const res[2]) {
  __m512 z = _mm512_setzero_ps();
#define KL_BIAS(i) (bias ? _mm512_set1_ps(bias[i]) : z)
  __m512 c00 = _mm512_add_ps(KL_BIAS(0), z), c01 = c00;
  __m512 c10 = _mm512_add_ps(KL_BIAS(1), z), c11 = c10;
  __m512 c20 = _mm512_add_ps(KL_BIAS(2), z), c21 = c20;
  __m512 c30 = _mm512_add_ps(KL_BIAS(3), z), c31 = c30;
  __m512 c40 = _mm512_add_ps(KL_BIAS(4), z), c41 = c40;
  __m512 c50 = _mm512_add_ps(KL_BIAS(5), z), c51 = c50;
#undef KL_BIAS
  const float *x0 = xb[0], *x1 = xb[1];
  for (int64_t k = 0; k < K; k++, a += MR) {
    int64_t o = koff[k];
    __m512 b0 = _mm512_loadu_ps(x0 + o), b1 = _mm512_loadu_ps(x1 + o);
    __m512 w = _mm512_set1_ps(a[0]);
    c00 = _mm512_fmadd_ps(w, b0, c00), c01 = _mm512_fmadd_ps(w, b1, c01);
    w = _mm512_set1_ps(a[1]);
    c10 = _mm512_fmadd_ps(w, b0, c10), c11 = _mm512_fmadd_ps(w, b1, c11);
    w = _mm512_set1_ps(a[2]);
    c20 = _mm512_fmadd_ps(w, b0, c20), c21 = _mm512_fmadd_ps(w, b1, c21);
    w = _mm512_set1_ps(a[3]);
    c30 = _mm512_fmadd_ps(w, b0, c30), c31 = _mm512_fmadd_ps(w, b1, c31);
    w = _mm512_set1_ps(a[4]);
    c40 = _mm512_fmadd_ps(w, b0, c40), c41 = _mm512_fmadd_ps(w, b1, c41);
    w = _mm512_set1_ps(a[5]);
    c50 = _mm512_fmadd_ps(w, b0, c50), c51 = _mm512_fmadd_ps(w, b1, c51);
  }
  __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int i = 0; i < rows; i++)
    for (int h = 0; h < 2; h++) {
      __m512 v = acc[i][h];
      if (epi)
        v = kl_epilogue_avx512(epi, v, res[h] ? res[h] + i * ldc : NULL, mask[h]);
      _mm512_mask_storeu_ps(c[h] + i * ldc, mask[h], v);
    }
}

/* few_kernel with AVX2: two blocks of 8 outputs, the lanes [lo[h], hi[h]) of block h
 * stored (whole blocks with one plain store, others lane by lane). */
__attribute__((target("avx2,fma"))) static void few_kernel_avx2(int64_t K, const float *a,
                                                               const int64_t *koff,
                                                               const float *const xb[2],
                                                               float *const c[2],
                                                               const int64_t lo[2],
                                                               const int64_t hi[2],
                                                               int64_t ldc, int rows,
                                                               const float *bias,
                                                               const kl_sgemm_epilogue *epi,
                                                               const float *const res[2]) {
  __m256 z = _mm256_setzero_ps();
#define KL_BIAS(i) (bias ? _mm256_set1_ps(bias[i]) : z)
  __m256 c00 = _mm256_add_ps(KL_BIAS(0), z), c01 = c00;
  __m256 c10 = _mm256_add_ps(KL_BIAS(1), z), c11 = c10;
  __m256 c20 = _mm256_add_ps(KL_BIAS(2), z), c21 = c20;
  __m256 c30 = _mm256_add_ps(KL_BIAS(3), z), c31 = c30;
  __m256 c40 = _mm256_add_ps(KL_BIAS(4), z), c41 = c40;
  __m256 c50 = _mm256_add_ps(KL_BIAS(5), z), c51 = c50;
#undef KL_BIAS
  const float *x0 = xb[0], *x1 = xb[1];
  for (int64_t k = 0; k < K; k++, a += MR) {
    int64_t o = koff[k];
    __m256 b0 = _mm256_loadu_ps(x0 + o), b1 = _mm256_loadu_ps(x1 + o);
    __m256 w = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(w, b0, c00), c01 = _mm256_fmadd_ps(w, b1, c01);
    w = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(w, b0, c10), c11 = _mm256_fmadd_ps(w, b1, c11);
    w = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(w, b0, c20), c21 = _mm256_fmadd_ps(w, b1, c21);
    w = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(w, b0, c30), c31 = _mm256_fmadd_ps(w, b1, c31);
    w = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(w, b0, c40), c41 = _mm256_fmadd_ps(w, b1, c41);
    w = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(w, b0, c50), c51 = _mm256_fmadd_ps(w, b1, c51);
  }
  __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int i = 0; i < rows; i++)
    for (int h = 0; h < 2; h++) {
      if (hi[h] <= lo[h])
        continue;
      __m256 v = acc[i][h];
      if (epi)
        v = kl_epilogue_avx2(epi, v, res[h] ? res[h] + i * ldc : NULL, hi[h]);
      float *out = c[h] + i * ldc;
      if (lo[h] == 0) {
        kl_avx2_storen(out, v, hi[h]);
        continue;
      }
      float lanes[8];
      _mm256_storeu_ps(lanes, v);
      for (int64_t l = lo[h]; l < hi[h]; l++)
        out[l] = lanes[l];
    }
}

/* The output block (oh, ow0 .. ow0 + bw - 1) clipped to the pixels [p_begin, p_end). */
typedef struct few_block {
  int64_t oh, ow0, lo, hi; /* lanes [lo, hi) are this part's */
} few_block;

/* One tile's work: blocks blk[0] and blk[1] of 16 outputs for every MR channels of the part. */
typedef struct few_tile {
  const conv_geom *g;
  const float *xp;
  const few_layout *L;
  const int64_t *koff;
  const float *a_packed, *bias;
  float *C;
  int64_t P, m_begin, m_end;
  const kl_sgemm_epilogue *epi;
  bool avx2; /* blocks of 8 outputs (few_kernel_avx2), else of 16 (few_kernel) */
  few_block blk[2];
} few_tile;

static void few_tile_run(const few_tile *t) {
  const conv_geom *g = t->g;
  int64_t K = g->Cg * g->Kh * g->Kw, Wo = g->Wo;
  const float *xb[2];
  __mmask16 mask[2] = {0, 0}; /* few_kernel's store masks; the AVX2 kernel takes lo, hi */
  for (int h = 0; h < 2; h++) {
    xb[h] = t->xp + (t->blk[h].oh * g->sh - t->L->r0) * t->L->row_floats + t->blk[h].ow0;
    if (!t->avx2)
      mask[h] = lanes_mask(t->blk[h].lo, t->blk[h].hi);
  }
  for (int64_t m0 = t->m_begin; m0 < t->m_end; m0 += MR) {
    int rows = (int)(t->m_end - m0 < MR ? t->m_end - m0 : MR);
    float *cp[2];
    const float *res[2] = {NULL, NULL};
    for (int h = 0; h < 2; h++) {
      int64_t off = m0 * t->P + t->blk[h].oh * Wo + t->blk[h].ow0;
      cp[h] = t->C + off;
      if (t->epi && t->epi->residual)
        res[h] = t->epi->residual + off;
    }
    const float *rb = t->bias ? t->bias + m0 : NULL;
    float edge_bias[MR] = {0};
    if (rb && rows < MR) { /* rows past M start at 0, as in the GEMM */
      memcpy(edge_bias, rb, (size_t)rows * sizeof(float));
      rb = edge_bias;
    }
    if (t->avx2) {
      int64_t lo[2] = {t->blk[0].lo, t->blk[1].lo}, hi[2] = {t->blk[0].hi, t->blk[1].hi};
      few_kernel_avx2(K, t->a_packed + m0 * K, t->koff, xb, cp, lo, hi, t->P, rows, rb, t->epi,
                      res);
    } else {
      few_kernel(K, t->a_packed + m0 * K, t->koff, xb, cp, mask, t->P, rows, rb, t->epi, res);
    }
  }
}

/* The padded buffer of a part is at most this many floats (else the packed path runs). */
enum { FEW_MAX_PAD_FLOATS = 8 << 20 };

typedef enum { FEW_DONE, FEW_OOM, FEW_NOT_TAKEN } few_result;

/* kl_rt_conv2d_f32_part's work by the few-taps path. */
static few_result few_taps_part(const conv_geom *g, const float *x, const float *a_packed,
                          const float *w, const float *bias, float *C, int64_t M,
                          int64_t m_begin, int64_t m_end, int64_t p_begin, int64_t p_end,
                          const kl_sgemm_epilogue *epi, bool avx2) {
  int64_t bw = avx2 ? 8 : 16; /* outputs per block */
  int64_t K = g->Cg * g->Kh * g->Kw, Wo = g->Wo, P = g->Ho * Wo, pad_n;
  int64_t oh_first = p_begin / Wo, oh_last = (p_end - 1) / Wo;
  few_layout L;
  L.r0 = oh_first * g->sh;
  L.rows = (oh_last - oh_first) * g->sh + (g->Kh - 1) * g->dh + 1;
  int64_t reach = ((g->Kw - 1) * g->dw) / g->sw;
  L.Wq = ((Wo + 15) / 16 * 16 + reach + 15) / 16 * 16;
  L.row_floats = g->sw * L.Wq;
  if (!kl_mul_i64(g->Cg, L.rows, &pad_n) || !kl_mul_i64(pad_n, L.row_floats, &pad_n) ||
      pad_n > FEW_MAX_PAD_FLOATS)
    return FEW_NOT_TAKEN;
  int64_t mpad = (M + MR - 1) / MR * MR;
  /* the padded input, then the packed weights (when not packed ahead), then the taps'
   * offsets, each from a 64-byte line */
  size_t pad_floats = ((size_t)pad_n + 16 + 15) / 16 * 16;
  size_t a_floats = a_packed ? 0 : ((size_t)(mpad * K) + 15) / 16 * 16;
  size_t koff_floats = (size_t)K * sizeof(int64_t) / sizeof(float);
  float *work = kl_rt_scratch(KL_SCRATCH_GEMM, pad_floats + a_floats + koff_floats);
  if (!work)
    return FEW_OOM;
  float *xp = work, *a_here = work + pad_floats;
  int64_t *koff = (int64_t *)(void *)(a_here + a_floats);
  for (int64_t c = 0; c < g->Cg; c++)
    for (int64_t r = 0; r < L.rows; r++)
      few_copy_row(g, x, c, L.r0 + r, L.Wq, avx2, xp + (c * L.rows + r) * L.row_floats);
  if (!a_packed) {
    kl_sgemm_operand ao = {w, K, false};
    kl_sgemm_pack_a(M, K, ao, a_here);
    a_packed = a_here;
  }
  int64_t k = 0;
  for (int64_t c = 0; c < g->Cg; c++)
    for (int64_t ki = 0; ki < g->Kh; ki++)
      for (int64_t kj = 0; kj < g->Kw; kj++, k++)
        koff[k] = (c * L.rows + ki * g->dh) * L.row_floats + (kj * g->dw) % g->sw * L.Wq +
                  (kj * g->dw) / g->sw;
  /* the blocks of bw outputs this part covers, two per tile (a lone last one with an empty
   * second) */
  few_tile t = {g, xp, &L, koff, a_packed, bias, C, P, m_begin, m_end, epi, avx2, {{0}}};
  int nb = 0;
  for (int64_t oh = oh_first; oh <= oh_last; oh++)
    for (int64_t ow0 = 0; ow0 < Wo; ow0 += bw) {
      int64_t start = oh * Wo + ow0, end = start + (Wo - ow0 < bw ? Wo - ow0 : bw);
      int64_t lo = p_begin > start ? p_begin - start : 0;
      int64_t hi = p_end < end ? p_end - start : end - start;
      if (hi <= lo)
        continue;
      t.blk[nb++] = (few_block){oh, ow0, lo, hi};
      if (nb == 2) {
        few_tile_run(&t);
        nb = 0;
      }
    }
  if (nb == 1) {
    t.blk[1] = (few_block){t.blk[0].oh, t.blk[0].ow0, 0, 0};
    few_tile_run(&t);
  }
  return FEW_DONE;
}
#endif

static void pack_col(const void *ctx, int64_t P, int64_t k0, int64_t kc, int64_t n0,
                     float *panel) {
  const col_source *s = ctx;
#ifdef KL_CONV_X86
  if (s->avx512) {
    pack_col_avx512(s, P, k0, kc, n0, panel);
    return;
  }
  if (s->avx2) {
    pack_col_avx2(s, P, k0, kc, n0, panel);
    return;
  }
#endif
  pack_col_scalar(s, P, k0, kc, n0, panel);
}

size_t kl_rt_conv2d_packed_floats(const int64_t *w_shape, int64_t groups) {
  int64_t cog = w_shape[0] / groups, kk = w_shape[1] * w_shape[2] * w_shape[3];
  return (size_t)groups * kl_sgemm_packed_a_floats(cog, kk);
}

void kl_rt_conv2d_pack(const float *w, const int64_t *w_shape, int64_t groups, float *out) {
  int64_t cog = w_shape[0] / groups, kk = w_shape[1] * w_shape[2] * w_shape[3];
  size_t per_group = kl_sgemm_packed_a_floats(cog, kk);
  for (int64_t g = 0; g < groups; g++) {
    kl_sgemm_operand a = {w + g * cog * kk, kk, false};
    kl_sgemm_pack_a(cog, kk, a, out + (size_t)g * per_group);
  }
}

/* The patch source of image n, group g: geom and src filled for pack_col. */
static void col_source_init(const kl_rt_conv2d_dims *d, const kl_rt_conv2d_params *p,
                            const float *x, int64_t n, int64_t g, conv_geom *geom,
                            col_source *src) {
  *geom = (conv_geom){d->Cg,         d->H,         d->W,         d->Kh,        d->Kw,
                      d->Ho,         d->Wo,        p->stride[0], p->stride[1], p->pad[0],
                      p->pad[1],     p->dilation[0], p->dilation[1]};
  /* the gather's lane indices (iw0 + t * sw) must fit in int32 */
  bool small = d->W < (1 << 28) && p->pad[1] < (1 << 28) && p->stride[1] < (1 << 20) &&
               (d->Kw - 1) * p->dilation[1] < (1 << 28);
  bool simd = small && d->Kw <= MAX_KW_SIMD;
  *src = (col_source){geom, x + (n * d->Cin + g * d->Cg) * d->H * d->W, /* (Cg, H, W) */
                      simd && !strcmp(kl_sgemm_isa(), "avx512"),
                      simd && p->stride[1] <= 2 && !strcmp(kl_sgemm_isa(), "avx2")};
}

size_t kl_rt_conv2d_col_floats(const kl_rt_conv2d_dims *d) {
  return kl_sgemm_packed_b_floats(d->Cg * d->Kh * d->Kw, d->Ho * d->Wo);
}

void kl_rt_conv2d_pack_col(const kl_rt_conv2d_dims *d, const kl_rt_conv2d_params *p,
                           const float *x, int64_t n, int64_t g, int64_t panel_begin,
                           int64_t panel_end, float *col) {
  conv_geom geom;
  col_source src;
  col_source_init(d, p, x, n, g, &geom, &src);
  int64_t P = d->Ho * d->Wo, K = d->Cg * d->Kh * d->Kw;
  int64_t npad = (int64_t)kl_sgemm_packed_b_floats(1, P); /* P rounded up to whole panels */
  for (int64_t k0 = 0; k0 < K; k0 += KL_SGEMM_KC) {
    int64_t kc = K - k0 < KL_SGEMM_KC ? K - k0 : KL_SGEMM_KC;
    for (int64_t pn = panel_begin; pn < panel_end && pn * NR < P; pn++)
      pack_col(&src, P, k0, kc, pn * NR, col + k0 * npad + pn * NR * kc);
  }
}

float *kl_rt_conv2d_col_scratch(size_t floats) {
  return kl_rt_scratch(KL_SCRATCH_CONV_COL, floats);
}

bool kl_rt_conv2d_f32_part(const kl_rt_conv2d_dims *d, const kl_rt_conv2d_params *p,
                           const float *x, const float *w, const float *w_packed,
                           const float *col, const float *bias, float *y, int64_t n, int64_t g,
                           int64_t m_begin, int64_t m_end, int64_t p_begin, int64_t p_end,
                           const kl_sgemm_epilogue *epi) {
  conv_geom geom;
  col_source src;
  col_source_init(d, p, x, n, g, &geom, &src);
  int64_t P = d->Ho * d->Wo, KK = d->Cg * d->Kh * d->Kw;
  bool pointwise = d->Kh == 1 && d->Kw == 1 && p->stride[0] == 1 && p->stride[1] == 1 &&
                   p->pad[0] == 0 && p->pad[1] == 0 && p->pad[2] == 0 && p->pad[3] == 0;
  kl_sgemm_b_source patches = {pack_col, &src};
  int64_t y_off = (n * d->Cout + g * d->Cog) * P;
  kl_sgemm_epilogue e; /* its residual indexed like this part's C */
  if (epi) {
    e = *epi;
    if (e.residual)
      e.residual += y_off;
  }
#ifdef KL_CONV_X86
  bool few_avx512 = src.avx512, few_avx2 = !src.avx512 && !strcmp(kl_sgemm_isa(), "avx2");
  if (!col && (few_avx512 || few_avx2) && few_taps_fits(&geom, KK, few_avx2 ? 8 : 16) &&
      m_begin < m_end && p_begin < p_end) {
    few_result r = few_taps_part(
        &geom, src.x, w_packed ? w_packed + (size_t)g * kl_sgemm_packed_a_floats(d->Cog, KK) : NULL,
        w ? w + g * d->Cog * KK : NULL, bias ? bias + g * d->Cog : NULL, y + y_off, d->Cog,
        m_begin, m_end < d->Cog ? m_end : d->Cog, p_begin, p_end < P ? p_end : P,
        epi ? &e : NULL, few_avx2);
    if (r != FEW_NOT_TAKEN)
      return r == FEW_DONE;
  }
#endif
  kl_sgemm_problem pr = {
      .M = d->Cog,
      .N = P,
      .K = KK,
      .a = {w ? w + g * d->Cog * KK : NULL, KK, false},
      .packed_a = w_packed ? w_packed + (size_t)g * kl_sgemm_packed_a_floats(d->Cog, KK) : NULL,
      .b = {src.x, P, false},
      .packed_b = col,
      .b_source = pointwise ? NULL : &patches,
      .row_bias = bias ? bias + g * d->Cog : NULL,
      .C = y + y_off,
      .ldc = P,
      .epilogue = epi ? &e : NULL,
  };
  return kl_sgemm_run(&pr, m_begin, m_end, p_begin, p_end);
}

bool kl_rt_conv2d_uses_gemm(const int64_t *w_shape, int64_t groups) {
  return !kl_rt_conv2d_direct_shape(w_shape, groups); /* conv.c's dispatch */
}
