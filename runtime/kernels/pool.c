/* 2-D pooling over NCHW: max, average, and PyTorch's adaptive average. The output size comes
 * from y (the shape function applies ceil_mode), so a window may hang over the padded input;
 * such windows are clipped as PyTorch clips them.
 *
 * f32 takes fast paths; the other dtypes the reference loops, which compare and sum in double.
 * Max and average windows are separable: for each output row, a vertical pass combines the
 * window's input rows into one padded row (-inf or 0 in the padding, so clipped windows need no
 * checks), then a horizontal pass combines each window's columns of it; both are plain loops
 * over contiguous or strided floats that compilers vectorize, but for 3-wide stride-2 max
 * windows, whose horizontal pass AVX-512 does from the row's even and odd columns (compilers
 * leave that strided loop scalar). Max is nan-aware (a nan anywhere
 * in the window wins, as in PyTorch), and average divides by the reference's count (padding
 * included or not, clipped at the padded extent). The global average (1x1 output) sums a plane
 * in 64 float lanes. The loops are instantiated for AVX-512, AVX2 and baseline x86-64 and the
 * ISA chosen once per process, with KILN_CONV_ISA forcing one as for conv_depthwise.c. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "avx2.h"
#include "kernels_internal.h"

static kl_status pool_check(const char *op, const kl_tensor *x, const kl_rt_pool2d_params *p,
                            const kl_tensor *y) {
  if (x->dtype != y->dtype)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: input is %s but output is %s", op,
                            kl_dtype_ir_name(x->dtype), kl_dtype_ir_name(y->dtype));
  if (x->rank != 4 || y->rank != 4 || x->shape[0] != y->shape[0] || x->shape[1] != y->shape[1])
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: input %s and output %s must be 4-D (N, C, H, W) with equal N, C",
                            op, KL_SHAPE(x), KL_SHAPE(y));
  if (!p)
    return NULL;
  for (int i = 0; i < 2; i++)
    if (p->kernel[i] < 1 || p->stride[i] < 1 || p->dilation[i] < 1)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "%s: kernel [%lld, %lld], stride [%lld, %lld] and dilation "
                              "[%lld, %lld] must be >= 1",
                              op, (long long)p->kernel[0], (long long)p->kernel[1],
                              (long long)p->stride[0], (long long)p->stride[1],
                              (long long)p->dilation[0], (long long)p->dilation[1]);
  for (int i = 0; i < 4; i++)
    if (p->pad[i] < 0)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: negative padding %lld", op,
                              (long long)p->pad[i]);
  /* the farthest index a window reaches, (out - 1) * stride + (kernel - 1) * dilation, and the
   * padded extent must fit in int64 so the loops below cannot overflow */
  for (int i = 0; i < 2; i++) {
    int64_t reach, tail, extent;
    int64_t out = y->shape[2 + i] > 0 ? y->shape[2 + i] - 1 : 0;
    if (!kl_mul_i64(out, p->stride[i], &reach) ||
        !kl_mul_i64(p->kernel[i] - 1, p->dilation[i], &tail) || !kl_add_i64(reach, tail, &reach) ||
        !kl_add_i64(x->shape[2 + i], p->pad[i], &extent) ||
        !kl_add_i64(extent, p->pad[i + 2], &extent) || !kl_add_i64(reach, p->kernel[i], &reach))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "%s: window arithmetic overflows for input %s and output %s", op,
                              KL_SHAPE(x), KL_SHAPE(y));
  }
  return NULL;
}

/* ---- f32 fast paths ---------------------------------------------------------------------- */

/* One plane's geometry; the padded row holds input column iw at row[pw + iw], and L covers every
 * column a window reads. */
typedef struct pool_geom {
  int64_t H, W, Ho, Wo, Kh, Kw, sh, sw, ph, pw, pb, pr, dh, dw, L;
  bool count_include_pad;
  const float *span_w, *in_w; /* avg: each output column's window width within the padded
                                   extent and within the input (count_include_pad or not) */
} pool_geom;

#define POOL_INLINE static inline __attribute__((always_inline))

POOL_INLINE float nan_max(float m, float v) {
  return v > m || v != v ? v : m; /* nan wins on either side */
}

/* Window rows k in [*k0, *k1) of kernel K, dilation d, first input row h0, inside [0, H). */
POOL_INLINE void window_rows(int64_t K, int64_t d, int64_t h0, int64_t H, int64_t *k0,
                             int64_t *k1) {
  int64_t a = h0 >= 0 ? 0 : (-h0 + d - 1) / d;
  int64_t b = h0 > H - 1 ? 0 : (H - 1 - h0) / d + 1;
  if (b > K)
    b = K;
  *k0 = a < b ? a : b, *k1 = b;
}

/* The vertical pass of output row oh: the max of its window's input rows into row (its -inf
 * padding kept). False when the window has no input rows: out (Wo,) is then all -inf. */
POOL_INLINE bool max_rows(const pool_geom *g, const float *x, int64_t oh, float *row,
                          float *out) {
  int64_t W = g->W, h0 = oh * g->sh - g->ph, k0, k1;
  window_rows(g->Kh, g->dh, h0, g->H, &k0, &k1);
  if (k0 == k1) {
    for (int64_t ow = 0; ow < g->Wo; ow++)
      out[ow] = -INFINITY;
    return false;
  }
  float *mid = row + g->pw; /* (W,) */
  memcpy(mid, x + (h0 + k0 * g->dh) * W, (size_t)W * sizeof *mid);
  for (int64_t ki = k0 + 1; ki < k1; ki++) {
    const float *in = x + (h0 + ki * g->dh) * W;
    for (int64_t iw = 0; iw < W; iw++)
      mid[iw] = nan_max(mid[iw], in[iw]);
  }
  return true;
}

/* x (H, W) -> y (Ho, Wo); row is scratch of L floats. */
POOL_INLINE void max_plane_body(const pool_geom *g, const float *x, float *y, float *row) {
  int64_t Wo = g->Wo, sw = g->sw, dw = g->dw;
  for (int64_t i = 0; i < g->L; i++)
    row[i] = -INFINITY;
  for (int64_t oh = 0; oh < g->Ho; oh++) {
    float *out = y + oh * Wo; /* (Wo,) */
    if (!max_rows(g, x, oh, row, out))
      continue;
    if (sw == 2 && dw == 1 && g->Kw >= 2) { /* the common 3x3 and 2x2 stride-2 pools */
      for (int64_t ow = 0; ow < Wo; ow++)
        out[ow] = nan_max(row[2 * ow], row[2 * ow + 1]);
      for (int64_t kj = 2; kj < g->Kw; kj++)
        for (int64_t ow = 0; ow < Wo; ow++)
          out[ow] = nan_max(out[ow], row[2 * ow + kj]);
      continue;
    }
    for (int64_t ow = 0; ow < Wo; ow++)
      out[ow] = row[ow * sw];
    for (int64_t kj = 1; kj < g->Kw; kj++)
      for (int64_t ow = 0; ow < Wo; ow++)
        out[ow] = nan_max(out[ow], row[ow * sw + kj * dw]);
  }
}

POOL_INLINE void avg_plane_body(const pool_geom *g, const float *x, float *y, float *row) {
  int64_t H = g->H, W = g->W, Wo = g->Wo, sw = g->sw;
  for (int64_t i = 0; i < g->L; i++)
    row[i] = 0.0f;
  float *mid = row + g->pw; /* (W,) */
  for (int64_t oh = 0; oh < g->Ho; oh++) {
    float *out = y + oh * Wo; /* (Wo,) */
    /* the window within the padded input, then within the input itself (as the reference) */
    int64_t h0 = oh * g->sh - g->ph, h1 = h0 + g->Kh;
    if (h1 > H + g->pb)
      h1 = H + g->pb;
    int64_t span_h = h1 - h0, a = h0 > 0 ? h0 : 0, b = h1 < H ? h1 : H;
    if (a < b) {
      memcpy(mid, x + a * W, (size_t)W * sizeof *mid);
      for (int64_t ih = a + 1; ih < b; ih++)
        for (int64_t iw = 0; iw < W; iw++)
          mid[iw] += x[ih * W + iw];
    } else {
      for (int64_t iw = 0; iw < W; iw++)
        mid[iw] = 0.0f;
    }
    bool pairs = sw == 2 && g->Kw >= 2; /* stride 2: in column pairs, as for max */
    if (pairs)
      for (int64_t ow = 0; ow < Wo; ow++)
        out[ow] = row[2 * ow] + row[2 * ow + 1];
    else
      for (int64_t ow = 0; ow < Wo; ow++)
        out[ow] = row[ow * sw];
    for (int64_t kj = pairs ? 2 : 1; kj < g->Kw; kj++)
      for (int64_t ow = 0; ow < Wo; ow++)
        out[ow] += row[ow * sw + kj];
    /* the reference's count, sign and all */
    float rows = (float)(g->count_include_pad ? span_h : b - a);
    const float *cols = g->count_include_pad ? g->span_w : g->in_w;
    for (int64_t ow = 0; ow < Wo; ow++) {
      float count = rows * cols[ow];
      out[ow] = count > 0 ? out[ow] / count : NAN;
    }
  }
}

/* The mean of n > 0 floats: summed in 64 float lanes (16 for the last few dozen, so that small
 * planes skip most of the fold), the lanes then added pairwise. */
POOL_INLINE float mean_body(const float *x, int64_t n) {
  float acc[64] = {0};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int l = 0; l < 64; l++)
      acc[l] += x[i + l];
  if (n >= 64)
    for (int l = 0; l < 16; l++)
      acc[l] += (acc[l + 16] + acc[l + 32]) + acc[l + 48];
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; l++)
      acc[l] += x[i + l];
  for (int l = 0; i < n; i++, l++)
    acc[l] += x[i];
  for (int l = 0; l < 8; l++)
    acc[l] += acc[l + 8];
  for (int l = 0; l < 4; l++)
    acc[l] += acc[l + 4];
  return ((acc[0] + acc[2]) + (acc[1] + acc[3])) / (float)n;
}

typedef struct pool_isa {
  void (*max_plane)(const pool_geom *g, const float *x, float *y, float *row);
  void (*avg_plane)(const pool_geom *g, const float *x, float *y, float *row);
  float (*mean)(const float *x, int64_t n);
} pool_isa;

#define POOL_ISA(name, attr)                                                                       \
  attr static void max_plane_##name(const pool_geom *g, const float *x, float *y, float *row) {    \
    max_plane_body(g, x, y, row);                                                                  \
  }                                                                                                \
  attr static void avg_plane_##name(const pool_geom *g, const float *x, float *y, float *row) {    \
    avg_plane_body(g, x, y, row);                                                                  \
  }                                                                                                \
  attr static float mean_##name(const float *x, int64_t n) { return mean_body(x, n); }             \
  static const pool_isa isa_##name = {max_plane_##name, avg_plane_##name, mean_##name};

POOL_ISA(generic, )
#if defined(__x86_64__) && defined(__GNUC__)
#define KL_POOL_X86 1
#include <immintrin.h>
POOL_ISA(avx2, __attribute__((target("avx2,fma"))))
POOL_ISA(avx512, __attribute__((target("avx512f"))))
#endif

#ifdef KL_POOL_X86
/* nan_max on 16 lanes: v where v > m or v is nan, else m (the same choice, so the same bits). */
__attribute__((target("avx512f"))) static inline __m512 nan_max16(__m512 m, __m512 v) {
  __mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  return _mm512_mask_blend_ps(take, m, v);
}

/* The floats a row buffer has past g->L for max_plane_k3s2's last vectors. */
enum { ROW_SLACK = 64 };

/* max_plane_body for windows 3 columns wide at stride 2 (ResNet's 3x3 stride-2 pool): the row
 * pass the same, then cols, the column pass of one output row, a vector of outputs at a time
 * from the even and odd columns of the row (lanes past Wo read the row's slack and are not
 * stored). */
__attribute__((always_inline)) static inline void
max_plane_k3s2(const pool_geom *g, const float *x, float *y, float *row,
               void (*cols)(const float *row, float *out, int64_t Wo)) {
  for (int64_t i = 0; i < g->L + ROW_SLACK; i++)
    row[i] = -INFINITY;
  for (int64_t oh = 0; oh < g->Ho; oh++) {
    float *out = y + oh * g->Wo; /* (Wo,) */
    if (max_rows(g, x, oh, row, out))
      cols(row, out, g->Wo);
  }
}

/* The column pass with AVX-512: 16 outputs at a time. */
__attribute__((target("avx512f"), always_inline)) static inline void
cols_k3s2_avx512(const float *row, float *out, int64_t Wo) {
  const __m512i evens =
      _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odds = _mm512_add_epi32(evens, _mm512_set1_epi32(1));
  for (int64_t ow = 0; ow < Wo; ow += 16) {
    const float *p = row + 2 * ow;
    __m512 a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
    __m512 e = _mm512_permutex2var_ps(a, evens, b), o = _mm512_permutex2var_ps(a, odds, b);
    __m512 e2 = _mm512_permutex2var_ps(_mm512_loadu_ps(p + 2), evens, _mm512_loadu_ps(p + 18));
    __m512 v = nan_max16(nan_max16(e, o), e2);
    if (Wo - ow >= 16)
      _mm512_storeu_ps(out + ow, v);
    else
      _mm512_mask_storeu_ps(out + ow, (__mmask16)((1u << (Wo - ow)) - 1u), v);
  }
}

/* (each ISA's plane a function of its own, with the column pass inlined into the row loop) */
__attribute__((target("avx512f"))) static void max_plane_k3s2_avx512(const pool_geom *g,
                                                                      const float *x, float *y,
                                                                      float *row) {
  max_plane_k3s2(g, x, y, row, cols_k3s2_avx512);
}

/* nan_max16 on 8 lanes. */
__attribute__((target("avx2,fma"))) static inline __m256 nan_max8(__m256 m, __m256 v) {
  __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  return _mm256_blendv_ps(m, v, take);
}

/* The column pass with AVX2: 8 outputs at a time (the last partial vector stored without a
 * masked store, avx2.h). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
cols_k3s2_avx2(const float *row, float *out, int64_t Wo) {
  for (int64_t ow = 0; ow < Wo; ow += 8) {
    const float *p = row + 2 * ow;
    __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    __m256 e = kl_avx2_evens(a, b), o = kl_avx2_odds(a, b);
    __m256 e2 = kl_avx2_evens(_mm256_loadu_ps(p + 2), _mm256_loadu_ps(p + 10));
    kl_avx2_storen(out + ow, nan_max8(nan_max8(e, o), e2), Wo - ow);
  }
}

__attribute__((target("avx2,fma"))) static void max_plane_k3s2_avx2(const pool_geom *g,
                                                                    const float *x, float *y,
                                                                    float *row) {
  max_plane_k3s2(g, x, y, row, cols_k3s2_avx2);
}
#endif

static const pool_isa *chosen_isa = &isa_generic;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose_isa(void) {
#ifdef KL_POOL_X86
  __builtin_cpu_init();
  const char *want = getenv("KILN_CONV_ISA");
  bool avx512 = __builtin_cpu_supports("avx512f");
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (want && !strcmp(want, "generic"))
    return;
  if (avx512 && !(want && !strcmp(want, "avx2")))
    chosen_isa = &isa_avx512;
  else if (avx2)
    chosen_isa = &isa_avx2;
#endif
}

static const pool_isa *isa(void) {
  pthread_once(&chosen_once, choose_isa);
  return chosen_isa;
}

/* Fills g for x and y (checked by pool_check) with kernel width span (the dilated kernel for
 * max, the plain one for avg); false when the padded row would be far wider than the input (a
 * shape no legal pooling has: the reference handles it). */
static bool pool_geom_init(const kl_tensor *x, const kl_rt_pool2d_params *p, const kl_tensor *y,
                           int64_t span, pool_geom *g) {
  *g = (pool_geom){.H = x->shape[2], .W = x->shape[3], .Ho = y->shape[2], .Wo = y->shape[3],
                   .Kh = p->kernel[0], .Kw = p->kernel[1], .sh = p->stride[0],
                   .sw = p->stride[1], .ph = p->pad[0], .pw = p->pad[1], .pb = p->pad[2],
                   .pr = p->pad[3], .dh = p->dilation[0], .dw = p->dilation[1],
                   .count_include_pad = p->count_include_pad};
  if (x->numel == 0 || y->numel == 0)
    return false;
  int64_t reach = (g->Wo - 1) * g->sw + span; /* pool_check: no overflow */
  g->L = g->pw + g->W > reach ? g->pw + g->W : reach;
  return g->L <= g->pw + g->W + span && g->L <= ((int64_t)1 << 24);
}

static kl_status max_pool_f32(const kl_tensor *x, const pool_geom *g, kl_tensor *y) {
  const pool_isa *k = isa();
  void (*plane)(const pool_geom *, const float *, float *, float *) = k->max_plane;
  size_t slack = 0;
#ifdef KL_POOL_X86
  if (k == &isa_avx512 && g->Kw == 3 && g->sw == 2 && g->dw == 1) {
    plane = max_plane_k3s2_avx512;
    slack = ROW_SLACK;
  } else if (k == &isa_avx2 && g->Kw == 3 && g->sw == 2 && g->dw == 1) {
    plane = max_plane_k3s2_avx2;
    slack = ROW_SLACK;
  }
#endif
  float *row = malloc(((size_t)g->L + slack) * sizeof *row);
  if (!row)
    return kl_rt_oom("max_pool2d");
  int64_t planes = x->shape[0] * x->shape[1];
  for (int64_t pl = 0; pl < planes; pl++)
    plane(g, (const float *)x->data + pl * g->H * g->W, (float *)y->data + pl * g->Ho * g->Wo,
          row);
  free(row);
  return NULL;
}

static kl_status avg_pool_f32(const kl_tensor *x, pool_geom *g, kl_tensor *y) {
  float *row = malloc((size_t)g->L * sizeof *row);
  float *cols = malloc((size_t)g->Wo * 2 * sizeof *cols);
  if (!row || !cols) {
    free(row), free(cols);
    return kl_rt_oom("avg_pool2d");
  }
  for (int64_t ow = 0; ow < g->Wo; ow++) { /* as the reference clips a window's columns */
    int64_t w0 = ow * g->sw - g->pw, w1 = w0 + g->Kw;
    if (w1 > g->W + g->pr)
      w1 = g->W + g->pr;
    cols[ow] = (float)(w1 - w0);
    cols[g->Wo + ow] = (float)((w1 < g->W ? w1 : g->W) - (w0 > 0 ? w0 : 0));
  }
  g->span_w = cols, g->in_w = cols + g->Wo;
  const pool_isa *k = isa();
  int64_t planes = x->shape[0] * x->shape[1];
  for (int64_t pl = 0; pl < planes; pl++)
    k->avg_plane(g, (const float *)x->data + pl * g->H * g->W,
                 (float *)y->data + pl * g->Ho * g->Wo, row);
  free(row), free(cols);
  return NULL;
}

/* ---- the kernels ------------------------------------------------------------------------ */

kl_status kl_rt_max_pool2d(const kl_tensor *x, const kl_rt_pool2d_params *p, kl_tensor *y) {
  KL_RETURN_IF_ERROR(pool_check("max_pool2d", x, p, y));
  pool_geom g;
  if (x->dtype == KL_F32 && pool_geom_init(x, p, y, (p->kernel[1] - 1) * p->dilation[1] + 1, &g))
    return max_pool_f32(x, &g, y);
  int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t Ho = y->shape[2], Wo = y->shape[3];
  for (int64_t pl = 0; pl < planes; pl++) { /* x (planes, H, W) -> y (planes, Ho, Wo) */
    int64_t xb = pl * H * W, yb = pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; oh++)
      for (int64_t ow = 0; ow < Wo; ow++) {
        double best = -INFINITY;
        for (int64_t ki = 0; ki < p->kernel[0]; ki++) {
          int64_t ih = oh * p->stride[0] - p->pad[0] + ki * p->dilation[0];
          if (ih < 0 || ih >= H)
            continue;
          for (int64_t kj = 0; kj < p->kernel[1]; kj++) {
            int64_t iw = ow * p->stride[1] - p->pad[1] + kj * p->dilation[1];
            if (iw < 0 || iw >= W)
              continue;
            double v =
                kl_dtype_is_float(x->dtype)
                    ? kl_ld(x, xb + ih * W + iw)
                    : (double)kl_dtype_load_i64(x->dtype, x->data, (size_t)(xb + ih * W + iw));
            if (v > best || v != v) /* nan wins, as in PyTorch */
              best = v;
            if (best != best)
              break;
          }
        }
        kl_st(y, yb + oh * Wo + ow, best);
      }
  }
  return NULL;
}

kl_status kl_rt_avg_pool2d(const kl_tensor *x, const kl_rt_pool2d_params *p, kl_tensor *y) {
  KL_RETURN_IF_ERROR(pool_check("avg_pool2d", x, p, y));
  if (!kl_dtype_is_float(x->dtype))
    return kl_status_create(KL_ERR_UNSUPPORTED, "avg_pool2d: needs a floating-point input, got %s",
                            kl_dtype_ir_name(x->dtype));
  pool_geom g;
  if (x->dtype == KL_F32 && pool_geom_init(x, p, y, p->kernel[1], &g))
    return avg_pool_f32(x, &g, y);
  int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t Ho = y->shape[2], Wo = y->shape[3];
  for (int64_t pl = 0; pl < planes; pl++) {
    int64_t xb = pl * H * W, yb = pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; oh++) {
      /* the window within the padded input, then within the input itself */
      int64_t h0 = oh * p->stride[0] - p->pad[0], h1 = h0 + p->kernel[0];
      if (h1 > H + p->pad[2])
        h1 = H + p->pad[2];
      int64_t span_h = h1 - h0;
      if (h0 < 0)
        h0 = 0;
      if (h1 > H)
        h1 = H;
      for (int64_t ow = 0; ow < Wo; ow++) {
        int64_t w0 = ow * p->stride[1] - p->pad[1], w1 = w0 + p->kernel[1];
        if (w1 > W + p->pad[3])
          w1 = W + p->pad[3];
        int64_t span_w = w1 - w0;
        if (w0 < 0)
          w0 = 0;
        if (w1 > W)
          w1 = W;
        double sum = 0.0;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++)
            sum += kl_ld(x, xb + ih * W + iw);
        int64_t count = p->count_include_pad ? span_h * span_w : (h1 - h0) * (w1 - w0);
        kl_st(y, yb + oh * Wo + ow, count > 0 ? sum / (double)count : NAN);
      }
    }
  }
  return NULL;
}

kl_status kl_rt_adaptive_avg_pool2d(const kl_tensor *x, kl_tensor *y) {
  KL_RETURN_IF_ERROR(pool_check("adaptive_avg_pool2d", x, NULL, y));
  if (!kl_dtype_is_float(x->dtype))
    return kl_status_create(KL_ERR_UNSUPPORTED,
                            "adaptive_avg_pool2d: needs a floating-point input, got %s",
                            kl_dtype_ir_name(x->dtype));
  int64_t planes = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t Ho = y->shape[2], Wo = y->shape[3];
  if ((H == 0 || W == 0) && y->numel > 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "adaptive_avg_pool2d: cannot pool empty input %s to %s", KL_SHAPE(x),
                            KL_SHAPE(y));
  if (x->dtype == KL_F32 && Ho == 1 && Wo == 1 && H * W > 0) { /* global average */
    const pool_isa *k = isa();
    for (int64_t pl = 0; pl < planes; pl++)
      ((float *)y->data)[pl] = k->mean((const float *)x->data + pl * H * W, H * W);
    return NULL;
  }
  for (int64_t pl = 0; pl < planes; pl++) {
    int64_t xb = pl * H * W, yb = pl * Ho * Wo;
    for (int64_t oh = 0; oh < Ho; oh++) {
      int64_t h0 = oh * H / Ho, h1 = ((oh + 1) * H + Ho - 1) / Ho; /* floor, ceil */
      for (int64_t ow = 0; ow < Wo; ow++) {
        int64_t w0 = ow * W / Wo, w1 = ((ow + 1) * W + Wo - 1) / Wo;
        double sum = 0.0;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++)
            sum += kl_ld(x, xb + ih * W + iw);
        kl_st(y, yb + oh * Wo + ow, sum / (double)((h1 - h0) * (w1 - w0)));
      }
    }
  }
  return NULL;
}
