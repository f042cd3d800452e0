/* The f32 convolution (runtime/kernels/conv_gemm.c, the implicit GEMM) against a double
 * reference over geometries that reach every path of its panel packing: runs clipped at the
 * left and right image edges, rows above and below it, output rows narrower and wider than a
 * panel, strides 1-3 (masked loads and gathers), dilation, asymmetric padding, groups, 1x1
 * convolutions (x itself is B), and a bias or none. Then the weights packed ahead of time and
 * the output computed in column pieces must give the very same bits. Winograd's F(2x2, 3x3)
 * with transformed weights likewise, with the tolerance of its reordered sums. Registered once per
 * micro-kernel (KILN_SGEMM_ISA selects the packing path too). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "runtime/gemm.h"
#include "runtime/kernels.h"
#include "runtime/tensor.h"

static uint32_t rng = 777;
static float rnd(void) {
  rng = rng * 1664525u + 1013904223u;
  return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static kl_tensor *random_tensor(const int64_t *shape, int rank) {
  kl_tensor *t = NULL;
  CHECK(!kl_tensor_create(KL_F32, rank, shape, &t));
  float *d = t->data;
  for (int64_t i = 0; i < t->numel; i++)
    d[i] = rnd();
  return t;
}

/* y[n][o][oh][ow] in double, straight from the definition. */
static double reference(const kl_tensor *x, const kl_tensor *w, const kl_tensor *bias,
                        const kl_rt_conv2d_params *p, int64_t n, int64_t o, int64_t oh,
                        int64_t ow) {
  const float *xd = x->data, *wd = w->data;
  int64_t Cin = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t Cout = w->shape[0], Cg = w->shape[1], Kh = w->shape[2], Kw = w->shape[3];
  int64_t g = o / (Cout / p->groups);
  double s = bias ? ((const float *)bias->data)[o] : 0.0;
  for (int64_t c = 0; c < Cg; c++)
    for (int64_t ki = 0; ki < Kh; ki++)
      for (int64_t kj = 0; kj < Kw; kj++) {
        int64_t ih = oh * p->stride[0] - p->pad[0] + ki * p->dilation[0];
        int64_t iw = ow * p->stride[1] - p->pad[1] + kj * p->dilation[1];
        if (ih < 0 || ih >= H || iw < 0 || iw >= W)
          continue;
        s += (double)xd[((n * Cin + g * Cg + c) * H + ih) * W + iw] *
             wd[((o * Cg + c) * Kh + ki) * Kw + kj];
      }
  return s;
}

static int64_t out_size(int64_t in, int64_t p0, int64_t p1, int64_t k, int64_t s, int64_t d) {
  return (in + p0 + p1 - d * (k - 1) - 1) / s + 1;
}

static void check_conv(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t Kh,
                       int64_t Kw, int64_t stride, int64_t pad_lo, int64_t pad_hi,
                       int64_t dilation, int64_t groups, bool with_bias) {
  kl_rt_conv2d_params p = {{stride, stride}, {pad_lo, pad_lo, pad_hi, pad_hi},
                           {dilation, dilation}, groups};
  int64_t Ho = out_size(H, pad_lo, pad_hi, Kh, stride, dilation);
  int64_t Wo = out_size(W, pad_lo, pad_hi, Kw, stride, dilation);
  int64_t xs[4] = {N, Cin, H, W}, ws[4] = {Cout, Cin / groups, Kh, Kw}, bs[1] = {Cout};
  int64_t ys[4] = {N, Cout, Ho, Wo};
  kl_tensor *x = random_tensor(xs, 4), *w = random_tensor(ws, 4);
  kl_tensor *bias = with_bias ? random_tensor(bs, 1) : NULL;
  kl_tensor *y = random_tensor(ys, 4), *y2 = random_tensor(ys, 4);
  CHECK(!kl_rt_conv2d(x, w, bias, &p, y));
  const float *yd = y->data;
  int64_t K = (Cin / groups) * Kh * Kw;
  bool close = true;
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < Cout; o++)
      for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++) {
          double ref = reference(x, w, bias, &p, n, o, oh, ow);
          float got = yd[((n * Cout + o) * Ho + oh) * Wo + ow];
          if (!(fabs(ref - got) <= 1e-6 * (double)K + 1e-6))
            close = false;
        }
  if (!close)
    fprintf(stderr,
            "conv x [%lld, %lld, %lld, %lld] w [%lld, %lld, %lld, %lld] stride %lld pad %lld/%lld "
            "dilation %lld groups %lld: result off\n",
            (long long)N, (long long)Cin, (long long)H, (long long)W, (long long)Cout,
            (long long)(Cin / groups), (long long)Kh, (long long)Kw, (long long)stride,
            (long long)pad_lo, (long long)pad_hi, (long long)dilation, (long long)groups);
  CHECK(close);

  /* the GEMM convolution whole (kl_rt_conv2d may have taken the direct kernel), then with
   * packed weights in tiles of one micro-tile row block by one panel each: the same bits */
  kl_rt_conv2d_dims d;
  CHECK(!kl_rt_conv2d_check(x, w, bias, &p, y2, &d));
  float *packed = malloc(kl_rt_conv2d_packed_floats(ws, groups) * sizeof(float) + 4);
  kl_rt_conv2d_pack(w->data, ws, groups, packed);
  int64_t P = Ho * Wo;
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < groups; g++)
      CHECK(kl_rt_conv2d_f32_part(&d, &p, x->data, w->data, NULL, NULL,
                                  bias ? bias->data : NULL, y->data, n, g, 0, d.Cog, 0, P,
                                  NULL));
  close = true;
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < Cout; o++)
      for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++) {
          double ref = reference(x, w, bias, &p, n, o, oh, ow);
          float got = yd[((n * Cout + o) * Ho + oh) * Wo + ow];
          if (!(fabs(ref - got) <= 1e-6 * (double)K + 1e-6))
            close = false;
        }
  CHECK(close);
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < groups; g++)
      for (int64_t m0 = 0; m0 < d.Cog; m0 += KL_SGEMM_MR)
        for (int64_t p0 = 0; p0 < P; p0 += KL_SGEMM_NR)
          CHECK(kl_rt_conv2d_f32_part(&d, &p, x->data, NULL, packed, NULL,
                                      bias ? bias->data : NULL, y2->data, n, g, m0,
                                      m0 + KL_SGEMM_MR, p0, p0 + KL_SGEMM_NR, NULL));
  CHECK(memcmp(y->data, y2->data, y->nbytes) == 0);
  /* and unpacked weights in row blocks (A packed per block) */
  memset(y2->data, 0, y2->nbytes);
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < groups; g++)
      for (int64_t m0 = 0; m0 < d.Cog; m0 += 2 * KL_SGEMM_MR)
        CHECK(kl_rt_conv2d_f32_part(&d, &p, x->data, w->data, NULL, NULL,
                                    bias ? bias->data : NULL, y2->data, n, g, m0,
                                    m0 + 2 * KL_SGEMM_MR, 0, P, NULL));
  CHECK(memcmp(y->data, y2->data, y->nbytes) == 0);
  /* and the patch matrix packed ahead, its panels in two calls (as two threads share it),
   * read by row blocks of packed weights: the same bits */
  memset(y2->data, 0, y2->nbytes);
  float *col = malloc(kl_rt_conv2d_col_floats(&d) * sizeof(float) + 4);
  int64_t panels = (P + KL_SGEMM_NR - 1) / KL_SGEMM_NR;
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < groups; g++) {
      kl_rt_conv2d_pack_col(&d, &p, x->data, n, g, 0, panels / 2, col);
      kl_rt_conv2d_pack_col(&d, &p, x->data, n, g, panels / 2, panels, col);
      for (int64_t m0 = 0; m0 < d.Cog; m0 += KL_SGEMM_MR)
        CHECK(kl_rt_conv2d_f32_part(&d, &p, x->data, NULL, packed, col,
                                    bias ? bias->data : NULL, y2->data, n, g, m0,
                                    m0 + KL_SGEMM_MR, 0, P, NULL));
    }
  CHECK(memcmp(y->data, y2->data, y->nbytes) == 0);
  free(col);
  free(packed);
  kl_tensor_release(x);
  kl_tensor_release(w);
  kl_tensor_release(bias);
  kl_tensor_release(y);
  kl_tensor_release(y2);
}

/* Winograd F(2x2, 3x3) with transformed weights, against the double reference, for splits
 * into one task and into the split a 3-thread pool would use: the same bits. */
static void check_winograd(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout,
                           int64_t pad_lo, int64_t pad_hi, bool with_bias) {
  kl_rt_conv2d_params p = {{1, 1}, {pad_lo, pad_lo, pad_hi, pad_hi}, {1, 1}, 1};
  int64_t Ho = out_size(H, pad_lo, pad_hi, 3, 1, 1), Wo = out_size(W, pad_lo, pad_hi, 3, 1, 1);
  int64_t xs[4] = {N, Cin, H, W}, ws[4] = {Cout, Cin, 3, 3}, bs[1] = {Cout};
  int64_t ys[4] = {N, Cout, Ho, Wo};
  kl_tensor *x = random_tensor(xs, 4), *w = random_tensor(ws, 4);
  kl_tensor *bias = with_bias ? random_tensor(bs, 1) : NULL;
  kl_tensor *y = random_tensor(ys, 4), *y2 = random_tensor(ys, 4);
  kl_rt_conv2d_dims d;
  CHECK(!kl_rt_conv2d_check(x, w, bias, &p, y, &d));
  float *u = malloc(kl_rt_conv2d_winograd_floats(Cout, Cin) * sizeof(float) + 4);
  CHECK(kl_rt_conv2d_winograd_pack(w->data, Cout, Cin, u));
  const int threads[2] = {1, 3};
  for (int r = 0; r < 2; r++) {
    kl_rt_winograd_split sp;
    kl_rt_conv2d_winograd_split(&d, threads[r], &sp);
    kl_tensor *out = r ? y2 : y;
    for (int64_t n = 0; n < N; n++)
      for (int64_t b = 0; b < sp.n_tile_blocks; b++)
        for (int64_t c = 0; c < sp.n_co_blocks; c++)
          CHECK(kl_rt_conv2d_winograd_part(&d, &p, &sp, x->data, u, bias ? bias->data : NULL,
                                           out->data, n, b, c, NULL));
  }
  CHECK(memcmp(y->data, y2->data, y->nbytes) == 0);
  const float *yd = y->data;
  bool close = true;
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < Cout; o++)
      for (int64_t oh = 0; oh < Ho; oh++)
        for (int64_t ow = 0; ow < Wo; ow++) {
          double ref = reference(x, w, bias, &p, n, o, oh, ow);
          float got = yd[((n * Cout + o) * Ho + oh) * Wo + ow];
          if (!(fabs(ref - got) <= 4e-6 * (double)(Cin * 9) + 1e-5))
            close = false;
        }
  if (!close)
    fprintf(stderr, "winograd x [%lld, %lld, %lld, %lld] Cout %lld pad %lld/%lld: result off\n",
            (long long)N, (long long)Cin, (long long)H, (long long)W, (long long)Cout,
            (long long)pad_lo, (long long)pad_hi);
  CHECK(close);
  free(u);
  kl_tensor_release(x);
  kl_tensor_release(w);
  kl_tensor_release(bias);
  kl_tensor_release(y);
  kl_tensor_release(y2);
}

int main(void) {
  /* 3x3 stride 1 pad 1 over widths around the panel (32) and the 16-lane pieces */
  const int64_t widths[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 56, 65};
  for (size_t i = 0; i < sizeof widths / sizeof *widths; i++) {
    check_conv(1, 3, 5, widths[i], 7, 3, 3, 1, 1, 1, 1, 1, true);
    check_conv(1, 2, 3, widths[i], 13, 3, 3, 2, 1, 1, 1, 1, false);
  }
  check_conv(2, 5, 9, 9, 8, 3, 3, 1, 0, 0, 1, 1, true);     /* no padding, two images */
  check_conv(1, 3, 23, 23, 16, 7, 7, 2, 3, 3, 1, 1, true);  /* a stem: 7x7 stride 2 */
  check_conv(1, 4, 12, 19, 6, 3, 3, 3, 2, 0, 1, 1, true);   /* stride 3, asymmetric pad */
  check_conv(1, 4, 11, 20, 9, 3, 3, 1, 2, 2, 2, 1, true);   /* dilation 2 */
  check_conv(1, 6, 10, 10, 9, 3, 3, 1, 1, 1, 1, 3, true);   /* groups */
  check_conv(1, 6, 8, 9, 12, 3, 3, 1, 1, 1, 1, 6, false);   /* depthwise, multiplier 2 */
  check_conv(1, 8, 7, 7, 20, 1, 1, 1, 0, 0, 1, 1, true);    /* 1x1: x itself is B */
  check_conv(1, 8, 9, 9, 20, 1, 1, 2, 0, 0, 1, 1, true);    /* 1x1 stride 2 (packed) */
  check_conv(1, 3, 6, 40, 5, 1, 5, 1, 0, 4, 1, 1, true);    /* a wide window, pad right only */
  check_conv(1, 300, 6, 6, 7, 3, 3, 1, 1, 1, 1, 1, true);   /* K over two k blocks */
  check_conv(1, 2, 4, 4, 3, 3, 3, 1, 5, 5, 1, 1, true);     /* padding wider than the image */
  check_conv(1, 2, 5, 3, 3, 3, 3, 2, 6, 4, 1, 1, true);     /* stride 2, padding wider still */
  check_conv(1, 3, 9, 37, 5, 5, 5, 2, 4, 1, 2, 1, false);   /* stride 2, dilation 2, uneven pad */
  check_conv(1, 2, 8, 70, 4, 3, 3, 2, 1, 1, 1, 1, true);    /* stride 2 over two panels a row */
  /* few taps (K <= one k block) on rows of 16 outputs or more (8 with AVX2; the widths above
   * reach those too): the input read in place */
  check_conv(1, 3, 64, 64, 64, 7, 7, 2, 3, 3, 1, 1, true);  /* the stem, 32 outputs a row */
  check_conv(1, 3, 47, 45, 32, 3, 3, 2, 1, 1, 1, 1, false); /* 3x3 stride 2, 23-wide rows */
  check_conv(1, 1, 5, 16, 7, 3, 3, 1, 1, 1, 1, 1, true);    /* one channel, exactly 16 a row */
  check_conv(1, 2, 9, 70, 13, 3, 3, 3, 2, 2, 1, 1, true);   /* stride 3 */
  check_conv(2, 2, 9, 131, 5, 5, 5, 4, 7, 7, 1, 1, true);   /* stride 4, padding past 5 taps */
  check_conv(1, 4, 9, 50, 11, 3, 3, 1, 0, 0, 3, 1, false);  /* dilation 3 */
  check_conv(1, 28, 6, 40, 19, 3, 3, 1, 1, 1, 1, 1, true);  /* K = 252, just one block */
  /* Winograd: odd and even sizes (half tiles at the right and bottom), runs of 16 tiles and
   * their remainders, every padding it takes, several tile and channel blocks */
  const int64_t sides[] = {2, 3, 4, 5, 7, 14, 17, 33, 34, 36, 57};
  for (size_t i = 0; i < sizeof sides / sizeof *sides; i++)
    check_winograd(1, 8, sides[i], sides[(i + 3) % 11], 9, 1, 1, true);
  check_winograd(2, 16, 9, 11, 8, 0, 0, false);
  check_winograd(1, 8, 6, 6, 8, 2, 2, true);
  check_winograd(1, 8, 6, 7, 8, 0, 2, true);
  check_winograd(1, 300, 7, 7, 70, 1, 1, true); /* K past one k block, many channel blocks */
  check_winograd(1, 16, 60, 60, 16, 1, 1, true); /* several tile blocks */
  /* chosen where it beats the GEMM: ResNet's 56x56 and 14x14 convolutions, not its 7x7 ones */
  kl_rt_conv2d_params same = {{1, 1}, {1, 1, 1, 1}, {1, 1}, 1};
  CHECK(kl_rt_conv2d_winograd_fits((int64_t[]){1, 64, 56, 56}, (int64_t[]){64, 64, 3, 3}, &same));
  CHECK(kl_rt_conv2d_winograd_fits((int64_t[]){1, 256, 14, 14}, (int64_t[]){256, 256, 3, 3},
                                   &same));
  CHECK(!kl_rt_conv2d_winograd_fits((int64_t[]){1, 512, 7, 7}, (int64_t[]){512, 512, 3, 3},
                                    &same));
  CHECK(!kl_rt_conv2d_winograd_fits((int64_t[]){1, 4, 56, 56}, (int64_t[]){64, 4, 3, 3}, &same));
  fprintf(stderr, "micro-kernel: %s\n", kl_sgemm_isa());
  return check_finish();
}
