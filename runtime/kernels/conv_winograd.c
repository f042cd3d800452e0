/* 3x3 stride-1 f32 convolution by Winograd's minimal filtering F(2x2, 3x3).
 *
 * The output is cut into 2x2 tiles; tile t reads a 4x4 patch d of each input channel, and
 *   y_tile = A^T [ sum_c (G g_oc G^T) .* (B^T d_c B) ] A,
 * so the 36 multiply-adds per tile and channel pair of a direct convolution become 16: for
 * each of the 16 positions xi of the transformed tile, one matrix product
 *   M_xi (Cout, tiles) = U_xi (Cout, Cin) @ V_xi (Cin, tiles),
 * run by the GEMM of runtime/gemm.h. U = G g G^T is computed once, ahead of time
 * (kl_rt_conv2d_winograd_pack, by a compiler), and stored packed for the GEMM. The transforms
 * of F(2x2, 3x3) only add and subtract (G's halves are exact), so the results stay within a
 * few ulps of a direct convolution's.
 *
 * Work goes by blocks of tiles (taken in row-major tile order, a multiple of the GEMM's panel
 * wide) and, when an image has few tiles, blocks of output channels: a task copies the input
 * rows its tiles read into a zero-padded scratch copy (so the transform reads whole rows with
 * no edge tests), transforms them into V, runs the 16 products for its channels and
 * transforms M back into y, adding the bias. With AVX-512 the transforms handle 16 tiles of a
 * tile row at a time (even and odd columns split by permutes), with AVX2 8, with the same
 * operations as the plain loops used otherwise (so the same bits). Every output element is
 * computed by the same operations whatever the split. */
#include <pthread.h>
#include <string.h>

#include "../gemm.h"
#include "kernels_internal.h"
#include "avx2.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KL_WINO_X86 1
#endif

enum { XI = 16, LANES = 16, TILE_BUDGET_FLOATS = 1 << 18 };

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }


bool kl_rt_conv2d_winograd_fits(const int64_t *x_shape, const int64_t *w_shape,
                                const kl_rt_conv2d_params *p) {
  if (!(w_shape[2] == 3 && w_shape[3] == 3 && p->groups == 1 && p->stride[0] == 1 &&
        p->stride[1] == 1 && p->dilation[0] == 1 && p->dilation[1] == 1 &&
        w_shape[1] == x_shape[1] && w_shape[1] >= 8 && w_shape[0] >= 8 && p->pad[0] <= 2 &&
        p->pad[1] <= 2 && p->pad[2] <= 2 && p->pad[3] <= 2 && x_shape[2] >= 2 &&
        x_shape[3] >= 2 && x_shape[2] < (1 << 24) && x_shape[3] < (1 << 24)))
    return false;
  /* worth it when the 16 products over tiles (whole panels of them) cost clearly less than
   * the 9 multiply-adds per pixel of the GEMM convolution (whole panels of pixels) */
  int64_t Ho = x_shape[2] + p->pad[0] + p->pad[2] - 2, Wo = x_shape[3] + p->pad[1] + p->pad[3] - 2;
  if (Ho < 1 || Wo < 1)
    return false;
  int64_t nr = KL_SGEMM_NR;
  int64_t tiles = ceil_div(ceil_div(Ho, 2) * ceil_div(Wo, 2), nr) * nr;
  int64_t pixels = ceil_div(Ho * Wo, nr) * nr;
  return 16 * tiles * 10 < 9 * pixels * 7;
}

size_t kl_rt_conv2d_winograd_floats(int64_t Cout, int64_t Cin) {
  return XI * kl_sgemm_packed_a_floats(Cout, Cin);
}

bool kl_rt_conv2d_winograd_pack(const float *w, int64_t Cout, int64_t Cin, float *out) {
  /* U (16, Cout, Cin) = G g G^T per (output, input) channel pair, in double, then packed */
  float *u = malloc((size_t)(XI * Cout * Cin) * sizeof *u + 1);
  if (!u)
    return false;
  static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  for (int64_t o = 0; o < Cout; o++)
    for (int64_t c = 0; c < Cin; c++) {
      const float *g = w + (o * Cin + c) * 9; /* g (3, 3) */
      double t[4][3];                         /* G g */
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
          t[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] + G[i][2] * g[2 * 3 + j];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) /* (G g) G^T */
          u[((i * 4 + j) * Cout + o) * Cin + c] =
              (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
    }
  size_t per = kl_sgemm_packed_a_floats(Cout, Cin);
  for (int xi = 0; xi < XI; xi++) {
    kl_sgemm_operand a = {u + (size_t)xi * (size_t)(Cout * Cin), Cin, false};
    kl_sgemm_pack_a(Cout, Cin, a, out + (size_t)xi * per);
  }
  free(u);
  return true;
}

/* ---- the split ------------------------------------------------------------------------- */

void kl_rt_conv2d_winograd_split(const kl_rt_conv2d_dims *d, int threads,
                                 kl_rt_winograd_split *out) {
  int64_t TH = ceil_div(d->Ho, 2), TW = ceil_div(d->Wo, 2), T = TH * TW;
  int64_t panels = ceil_div(T, KL_SGEMM_NR);
  /* tiles per block: V and M of a block in about a megabyte, whole panels */
  int64_t budget = TILE_BUDGET_FLOATS / (XI * (d->Cin + d->Cout)) / KL_SGEMM_NR;
  budget = budget < 1 ? 1 : budget > 16 ? 16 : budget; /* in panels */
  /* one range of panels per thread, unless the images alone keep the threads busy */
  int64_t ranges = threads > 1 && d->N < 2 * (int64_t)threads ? threads : 1;
  if (ranges > panels)
    ranges = panels;
  int64_t per_range = ceil_div(panels, ranges); /* panels of the largest range */
  int64_t blocks = ceil_div(per_range, budget);
  out->tiles_h = TH;
  out->tiles_w = TW;
  out->n_ranges = ranges;
  out->blocks_per_range = blocks;
  out->tile_block = ceil_div(per_range, blocks) * KL_SGEMM_NR;
  out->n_tile_blocks = ranges * blocks;
  int64_t n_co = 1;
  if (threads > 1 && ranges * d->N < threads) /* fewer panels than threads: split channels */
    n_co = min64(ceil_div(threads, ranges * d->N), ceil_div(d->Cout, 4 * KL_SGEMM_MR));
  if (n_co < 1)
    n_co = 1;
  out->co_block = ceil_div(ceil_div(d->Cout, n_co), KL_SGEMM_MR) * KL_SGEMM_MR;
  out->n_co_blocks = ceil_div(d->Cout, out->co_block);
}

/* The tiles [*t0, *t1) of block `block` of sp (empty when the block's range is short). */
static void block_tiles(const kl_rt_winograd_split *sp, int64_t block, int64_t *t0,
                        int64_t *t1) {
  int64_t T = sp->tiles_h * sp->tiles_w, panels = ceil_div(T, KL_SGEMM_NR);
  int64_t r = block / sp->blocks_per_range, j = block % sp->blocks_per_range;
  int64_t first = r * panels / sp->n_ranges, end = (r + 1) * panels / sp->n_ranges;
  int64_t p0 = first + j * (sp->tile_block / KL_SGEMM_NR);
  int64_t p1 = min64(end, p0 + sp->tile_block / KL_SGEMM_NR);
  *t0 = min64(T, p0 * KL_SGEMM_NR);
  *t1 = p1 > p0 ? min64(T, p1 * KL_SGEMM_NR) : *t0;
}

/* ---- transforms ------------------------------------------------------------------------- */

/* What a task's transforms share. The padded copy holds rows [row0, row0 + rows) of the input
 * (row0 = 2 * first tile row - pad top) at columns shifted by the left padding, zero outside
 * the image, each row wp floats wide; V (16, Cin, tb) and M (16, Cout, tb) hold tile t of the
 * block at column t - t0. */
typedef struct wino_task {
  const kl_rt_conv2d_dims *d;
  int64_t TW, t0, t1, tb;
  int64_t row0, rows, wp;
  float *pad, *V, *M;
} wino_task;

static void pad_rows(const wino_task *k, const float *x, int64_t pad_left) {
  const kl_rt_conv2d_dims *d = k->d;
  for (int64_t c = 0; c < d->Cin; c++)
    for (int64_t r = 0; r < k->rows; r++) {
      float *dst = k->pad + (c * k->rows + r) * k->wp;
      int64_t ih = k->row0 + r;
      if (ih < 0 || ih >= d->H) {
        memset(dst, 0, (size_t)k->wp * sizeof(float));
        continue;
      }
      memset(dst, 0, (size_t)pad_left * sizeof(float));
      memcpy(dst + pad_left, x + (c * d->H + ih) * d->W, (size_t)d->W * sizeof(float));
      memset(dst + pad_left + d->W, 0, (size_t)(k->wp - pad_left - d->W) * sizeof(float));
    }
}

/* Runs body for the tiles of the block as runs of at most LANES tiles of one tile row: ty, tx
 * the first tile's row and column, count the tiles, col the first tile's column in V and M. */
#define FOR_EACH_RUN(k, body)                                                                   \
  for (int64_t t_ = (k)->t0; t_ < (k)->t1;) {                                                  \
    int64_t ty = t_ / (k)->TW, tx = t_ % (k)->TW;                                              \
    int64_t count = min64(LANES, min64((k)->TW - tx, (k)->t1 - t_)), col = t_ - (k)->t0;     \
    body;                                                                                      \
    t_ += count;                                                                               \
  }

/* V[xi][c] for count tiles of tile row ty from column tx on: B^T d B of each 4x4 patch d. */
static void input_tiles_scalar(const wino_task *k, int64_t c, int64_t ty, int64_t tx,
                               int64_t count, int64_t col) {
  int64_t tb = k->tb, cin = k->d->Cin;
  for (int64_t l = 0; l < count; l++) {
    float t[4][4];
    for (int i = 0; i < 4; i++) {
      const float *row =
          k->pad + (c * k->rows + 2 * (ty - k->t0 / k->TW) + i) * k->wp + 2 * (tx + l);
      t[i][0] = row[0] - row[2];
      t[i][1] = row[1] + row[2];
      t[i][2] = row[2] - row[1];
      t[i][3] = row[1] - row[3];
    }
    for (int j = 0; j < 4; j++) {
      float v0 = t[0][j] - t[2][j], v1 = t[1][j] + t[2][j];
      float v2 = t[2][j] - t[1][j], v3 = t[1][j] - t[3][j];
      k->V[((0 * 4 + j) * cin + c) * tb + col + l] = v0;
      k->V[((1 * 4 + j) * cin + c) * tb + col + l] = v1;
      k->V[((2 * 4 + j) * cin + c) * tb + col + l] = v2;
      k->V[((3 * 4 + j) * cin + c) * tb + col + l] = v3;
    }
  }
}

/* y[co] (Ho, Wo) for count tiles of tile row ty from column tx on: A^T m A + bias. */
static void output_tiles_scalar(const wino_task *k, int64_t co, float bias, float *y,
                                int64_t ty, int64_t tx, int64_t count, int64_t col) {
  const kl_rt_conv2d_dims *d = k->d;
  int64_t tb = k->tb, cout = d->Cout;
  for (int64_t l = 0; l < count; l++) {
    float m[16];
    for (int xi = 0; xi < XI; xi++)
      m[xi] = k->M[(xi * cout + co) * tb + col + l];
    float s[2][4];
    for (int j = 0; j < 4; j++) {
      s[0][j] = m[0 * 4 + j] + m[1 * 4 + j] + m[2 * 4 + j];
      s[1][j] = m[1 * 4 + j] - m[2 * 4 + j] - m[3 * 4 + j];
    }
    for (int a = 0; a < 2; a++) {
      int64_t oh = 2 * ty + a;
      if (oh >= d->Ho)
        continue;
      float *out = y + (co * d->Ho + oh) * d->Wo;
      int64_t ow = 2 * (tx + l);
      out[ow] = s[a][0] + s[a][1] + s[a][2] + bias;
      if (ow + 1 < d->Wo)
        out[ow + 1] = s[a][1] - s[a][2] - s[a][3] + bias;
    }
  }
}

#ifdef KL_WINO_X86
static inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* input_tiles_scalar for 16 tiles at once: each patch row is read as 32 + 2 contiguous floats
 * of the padded copy and split into its even and odd columns. */
__attribute__((target("avx512f"))) static void input_tiles_avx512(const wino_task *k, int64_t c,
                                                                   int64_t ty, int64_t tx,
                                                                   int64_t count, int64_t col) {
  int64_t tb = k->tb, cin = k->d->Cin;
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  __m512 t[4][4];
  for (int i = 0; i < 4; i++) {
    const float *row = k->pad + (c * k->rows + 2 * (ty - k->t0 / k->TW) + i) * k->wp + 2 * tx;
    __m512 a0 = _mm512_loadu_ps(row), a1 = _mm512_loadu_ps(row + 16);
    __m512 b0 = _mm512_loadu_ps(row + 2), b1 = _mm512_loadu_ps(row + 18);
    __m512 d0 = _mm512_permutex2var_ps(a0, even, a1), d1 = _mm512_permutex2var_ps(a0, odd, a1);
    __m512 d2 = _mm512_permutex2var_ps(b0, even, b1), d3 = _mm512_permutex2var_ps(b0, odd, b1);
    t[i][0] = _mm512_sub_ps(d0, d2);
    t[i][1] = _mm512_add_ps(d1, d2);
    t[i][2] = _mm512_sub_ps(d2, d1);
    t[i][3] = _mm512_sub_ps(d1, d3);
  }
  __mmask16 m = first_lanes(count);
  for (int j = 0; j < 4; j++) {
    _mm512_mask_storeu_ps(k->V + ((0 * 4 + j) * cin + c) * tb + col, m,
                          _mm512_sub_ps(t[0][j], t[2][j]));
    _mm512_mask_storeu_ps(k->V + ((1 * 4 + j) * cin + c) * tb + col, m,
                          _mm512_add_ps(t[1][j], t[2][j]));
    _mm512_mask_storeu_ps(k->V + ((2 * 4 + j) * cin + c) * tb + col, m,
                          _mm512_sub_ps(t[2][j], t[1][j]));
    _mm512_mask_storeu_ps(k->V + ((3 * 4 + j) * cin + c) * tb + col, m,
                          _mm512_sub_ps(t[1][j], t[3][j]));
  }
}

/* output_tiles_scalar for 16 tiles at once: the two columns of each tile row are interleaved
 * back into 32 output columns by permutes. */
__attribute__((target("avx512f"))) static void output_tiles_avx512(const wino_task *k,
                                                                    int64_t co, float bias,
                                                                    float *y, int64_t ty,
                                                                    int64_t tx, int64_t count,
                                                                    int64_t col) {
  const kl_rt_conv2d_dims *d = k->d;
  int64_t tb = k->tb, cout = d->Cout;
  const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  __mmask16 lanes = first_lanes(count);
  __m512 m[16];
  for (int xi = 0; xi < XI; xi++)
    m[xi] = _mm512_maskz_loadu_ps(lanes, k->M + (xi * cout + co) * tb + col);
  __m512 b = _mm512_set1_ps(bias);
  int64_t ow = 2 * tx, cols = min64(2 * count, d->Wo - ow);
  __mmask16 m_lo = first_lanes(cols), m_hi = first_lanes(cols > 16 ? cols - 16 : 0);
  for (int a = 0; a < 2; a++) {
    int64_t oh = 2 * ty + a;
    if (oh >= d->Ho)
      break;
    __m512 s0, s1, s2, s3;
    if (a == 0) {
      s0 = _mm512_add_ps(_mm512_add_ps(m[0], m[4]), m[8]);
      s1 = _mm512_add_ps(_mm512_add_ps(m[1], m[5]), m[9]);
      s2 = _mm512_add_ps(_mm512_add_ps(m[2], m[6]), m[10]);
      s3 = _mm512_add_ps(_mm512_add_ps(m[3], m[7]), m[11]);
    } else {
      s0 = _mm512_sub_ps(_mm512_sub_ps(m[4], m[8]), m[12]);
      s1 = _mm512_sub_ps(_mm512_sub_ps(m[5], m[9]), m[13]);
      s2 = _mm512_sub_ps(_mm512_sub_ps(m[6], m[10]), m[14]);
      s3 = _mm512_sub_ps(_mm512_sub_ps(m[7], m[11]), m[15]);
    }
    __m512 y0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), s2), b);
    __m512 y1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s1, s2), s3), b);
    float *out = y + (co * d->Ho + oh) * d->Wo + ow;
    _mm512_mask_storeu_ps(out, m_lo, _mm512_permutex2var_ps(y0, lo, y1));
    if (m_hi)
      _mm512_mask_storeu_ps(out + 16, m_hi, _mm512_permutex2var_ps(y0, hi, y1));
  }
}

/* input_tiles_avx512 for 8 tiles at once (count <= 8), the same operations lane for lane (so
 * the same bits as the scalar form): each patch row is read as 16 + 2 contiguous floats. */
__attribute__((target("avx2,fma"))) static void input_tiles_avx2(const wino_task *k, int64_t c,
                                                                 int64_t ty, int64_t tx,
                                                                 int64_t count, int64_t col) {
  int64_t tb = k->tb, cin = k->d->Cin;
  __m256 t[4][4];
  for (int i = 0; i < 4; i++) {
    const float *row = k->pad + (c * k->rows + 2 * (ty - k->t0 / k->TW) + i) * k->wp + 2 * tx;
    __m256 a0 = _mm256_loadu_ps(row), a1 = _mm256_loadu_ps(row + 8);
    __m256 b0 = _mm256_loadu_ps(row + 2), b1 = _mm256_loadu_ps(row + 10);
    __m256 d0 = kl_avx2_evens(a0, a1), d1 = kl_avx2_odds(a0, a1), d2 = kl_avx2_evens(b0, b1), d3 = kl_avx2_odds(b0, b1);
    t[i][0] = _mm256_sub_ps(d0, d2);
    t[i][1] = _mm256_add_ps(d1, d2);
    t[i][2] = _mm256_sub_ps(d2, d1);
    t[i][3] = _mm256_sub_ps(d1, d3);
  }
  for (int j = 0; j < 4; j++) {
    kl_avx2_storen(k->V + ((0 * 4 + j) * cin + c) * tb + col, _mm256_sub_ps(t[0][j], t[2][j]),
                   count);
    kl_avx2_storen(k->V + ((1 * 4 + j) * cin + c) * tb + col, _mm256_add_ps(t[1][j], t[2][j]),
                   count);
    kl_avx2_storen(k->V + ((2 * 4 + j) * cin + c) * tb + col, _mm256_sub_ps(t[2][j], t[1][j]),
                   count);
    kl_avx2_storen(k->V + ((3 * 4 + j) * cin + c) * tb + col, _mm256_sub_ps(t[1][j], t[3][j]),
                   count);
  }
}

/* output_tiles_avx512 for 8 tiles at once (count <= 8): each tile row's two columns are
 * interleaved back into 16 output columns by unpacks and a lane permute. */
__attribute__((target("avx2,fma"))) static void output_tiles_avx2(const wino_task *k, int64_t co,
                                                                  float bias, float *y,
                                                                  int64_t ty, int64_t tx,
                                                                  int64_t count, int64_t col) {
  const kl_rt_conv2d_dims *d = k->d;
  int64_t tb = k->tb, cout = d->Cout;
  __m256i lanes = kl_avx2_first(count);
  __m256 m[16];
  for (int xi = 0; xi < XI; xi++) {
    const float *src = k->M + (xi * cout + co) * tb + col;
    m[xi] = count >= 8 ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, lanes);
  }
  __m256 b = _mm256_set1_ps(bias);
  int64_t ow = 2 * tx, cols = min64(2 * count, d->Wo - ow);
  for (int a = 0; a < 2; a++) {
    int64_t oh = 2 * ty + a;
    if (oh >= d->Ho)
      break;
    __m256 s0, s1, s2, s3;
    if (a == 0) {
      s0 = _mm256_add_ps(_mm256_add_ps(m[0], m[4]), m[8]);
      s1 = _mm256_add_ps(_mm256_add_ps(m[1], m[5]), m[9]);
      s2 = _mm256_add_ps(_mm256_add_ps(m[2], m[6]), m[10]);
      s3 = _mm256_add_ps(_mm256_add_ps(m[3], m[7]), m[11]);
    } else {
      s0 = _mm256_sub_ps(_mm256_sub_ps(m[4], m[8]), m[12]);
      s1 = _mm256_sub_ps(_mm256_sub_ps(m[5], m[9]), m[13]);
      s2 = _mm256_sub_ps(_mm256_sub_ps(m[6], m[10]), m[14]);
      s3 = _mm256_sub_ps(_mm256_sub_ps(m[7], m[11]), m[15]);
    }
    __m256 y0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), s2), b);
    __m256 y1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s1, s2), s3), b);
    __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
    float *out = y + (co * d->Ho + oh) * d->Wo + ow;
    kl_avx2_storen(out, _mm256_permute2f128_ps(lo, hi, 0x20), cols);
    if (cols > 8)
      kl_avx2_storen(out + 8, _mm256_permute2f128_ps(lo, hi, 0x31), cols - 8);
  }
}
#endif

/* ---- a task ----------------------------------------------------------------------------- */

bool kl_rt_conv2d_winograd_part(const kl_rt_conv2d_dims *d, const kl_rt_conv2d_params *p,
                                const kl_rt_winograd_split *sp, const float *x,
                                const float *u_packed, const float *bias, float *y, int64_t n,
                                int64_t block, int64_t co_block, const kl_sgemm_epilogue *epi) {
  wino_task k = {.d = d, .TW = sp->tiles_w, .tb = sp->tile_block};
  block_tiles(sp, block, &k.t0, &k.t1);
  int64_t co0 = co_block * sp->co_block, co1 = min64(d->Cout, co0 + sp->co_block);
  if (k.t0 >= k.t1 || co0 >= co1)
    return true;
  int64_t ty0 = k.t0 / k.TW, ty1 = (k.t1 - 1) / k.TW; /* first and last tile rows */
  k.row0 = 2 * ty0 - p->pad[0];
  k.rows = 2 * (ty1 - ty0) + 4;
  k.wp = 2 * k.TW + 2 + 32; /* the last run of a tile row reads up to 34 floats on */
  size_t pad_floats = (size_t)(d->Cin * k.rows * k.wp);
  size_t v_floats = (size_t)(XI * d->Cin * k.tb), m_floats = (size_t)(XI * d->Cout * k.tb);
  float *work = kl_rt_scratch(KL_SCRATCH_WINOGRAD, pad_floats + v_floats + m_floats);
  if (!work)
    return false;
  k.pad = work, k.V = work + pad_floats, k.M = k.V + v_floats;
  const float *xn = x + n * d->Cin * d->H * d->W;
  float *yn = y + n * d->Cout * d->Ho * d->Wo;
  pad_rows(&k, xn, p->pad[1]);
#ifdef KL_WINO_X86
  bool avx512 = !strcmp(kl_sgemm_isa(), "avx512"), avx2 = !strcmp(kl_sgemm_isa(), "avx2");
#else
  bool avx512 = false, avx2 = false;
#endif
  for (int64_t c = 0; c < d->Cin; c++) {
    FOR_EACH_RUN(&k, {
#ifdef KL_WINO_X86
      if (avx512) {
        input_tiles_avx512(&k, c, ty, tx, count, col);
      } else if (avx2) {
        input_tiles_avx2(&k, c, ty, tx, min64(count, 8), col);
        if (count > 8)
          input_tiles_avx2(&k, c, ty, tx + 8, count - 8, col + 8);
      } else
#endif
        input_tiles_scalar(&k, c, ty, tx, count, col);
    });
  }
  size_t per = kl_sgemm_packed_a_floats(d->Cout, d->Cin);
  for (int xi = 0; xi < XI; xi++) {
    kl_sgemm_problem pr = {.M = d->Cout,
                           .N = k.t1 - k.t0,
                           .K = d->Cin,
                           .packed_a = u_packed + (size_t)xi * per,
                           .b = {k.V + (size_t)xi * (size_t)(d->Cin * k.tb), k.tb, false},
                           .C = k.M + (size_t)xi * (size_t)(d->Cout * k.tb),
                           .ldc = k.tb};
    if (!kl_sgemm_run(&pr, co0, co1, 0, k.t1 - k.t0))
      return false;
  }
  for (int64_t co = co0; co < co1; co++) {
    float b = bias ? bias[co] : 0.0f;
    FOR_EACH_RUN(&k, {
#ifdef KL_WINO_X86
      if (avx512) {
        output_tiles_avx512(&k, co, b, yn, ty, tx, count, col);
      } else if (avx2) {
        output_tiles_avx2(&k, co, b, yn, ty, tx, min64(count, 8), col);
        if (count > 8)
          output_tiles_avx2(&k, co, b, yn, ty, tx + 8, count - 8, col + 8);
      } else
#endif
        output_tiles_scalar(&k, co, b, yn, ty, tx, count, col);
      if (epi) { /* the two output rows just written */
        int64_t oh = 2 * ty;
        int64_t ow = 2 * tx;
        int64_t off = ((n * d->Cout + co) * d->Ho + oh) * d->Wo + ow;
        kl_sgemm_epilogue_apply(epi, y + off, off, min64(2, d->Ho - oh),
                                min64(2 * count, d->Wo - ow), d->Wo);
      }
    });
  }
  (void)avx512, (void)avx2;
  return true;
}
