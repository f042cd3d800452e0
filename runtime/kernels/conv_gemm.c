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
#include "kernels_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KL_CONV_X86 1
#endif

enum { NR = KL_SGEMM_NR, MAX_KW_AVX512 = 16 };

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
  bool avx512;
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
  piece pieces[MAX_KW_AVX512][MAX_PIECES];
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

static void pack_col(const void *ctx, int64_t P, int64_t k0, int64_t kc, int64_t n0,
                     float *panel) {
  const col_source *s = ctx;
#ifdef KL_CONV_X86
  if (s->avx512) {
    pack_col_avx512(s, P, k0, kc, n0, panel);
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
  *src = (col_source){geom, x + (n * d->Cin + g * d->Cg) * d->H * d->W, /* (Cg, H, W) */
                      small && d->Kw <= MAX_KW_AVX512 && !strcmp(kl_sgemm_isa(), "avx512")};
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
