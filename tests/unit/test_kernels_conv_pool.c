/* The f32 fast paths of conv2d (runtime/kernels/conv_depthwise.c: depthwise and narrow grouped
 * convs) and of pooling (runtime/kernels/pool.c) against the reference: the same kernel on f64
 * copies of the operands takes the reference loops (im2col and the GEMM, windows in double).
 * Sizes are odd so that every lane remainder, row tile, padding, stride phase and ceil-mode clip
 * is reached: H and W over {1, 2, 3, 7, 15, 16, 17, 31, 33, 65} (and wider rows for the
 * four-vector tiles), kernels 1/3/5/7, strides 1/2/3, paddings 0..3, dilation 2, channel
 * multiplier 2, with and without bias, each once more with a fused epilogue (residual and clamp
 * or silu) against the epilogue applied after the conv; max pool with nan inputs, average pool with and without
 * the padding counted, global and other adaptive averages. The steps on a pool of 3 threads must
 * give the bits of a single-threaded run. Registered once per ISA (KILN_CONV_ISA), so the
 * AVX-512, AVX2 and portable paths are each covered where the CPU has them. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "runtime/gemm.h"
#include "runtime/kernels.h"
#include "runtime/steps.h"
#include "runtime/threadpool.h"

static const int64_t SIZES[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 65};
enum { N_SIZES = sizeof SIZES / sizeof SIZES[0] };

static uint32_t rng = 2463534242u;
static double rnd(void) { /* in [-1, 1), never exactly 0 */
  rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
  return ((double)(rng >> 8) + 0.5) / (1 << 23) - 1.0;
}

static kl_tensor *make(kl_dtype dt, int rank, const int64_t *shape) {
  kl_tensor *t = NULL;
  kl_status s = kl_tensor_create(dt, rank, shape, &t);
  if (s) {
    fprintf(stderr, "tensor: %s\n", kl_status_message(s));
    exit(2);
  }
  return t;
}

/* A random f32 tensor (a fraction nan_frac of nans) and its f64 copy. */
static kl_tensor *random_pair(int rank, const int64_t *shape, double nan_frac, kl_tensor **f64) {
  kl_tensor *t = make(KL_F32, rank, shape);
  *f64 = make(KL_F64, rank, shape);
  for (int64_t i = 0; i < t->numel; i++) {
    float v = (float)rnd();
    if (nan_frac > 0 && (rnd() + 1) / 2 < nan_frac)
      v = NAN;
    ((float *)t->data)[i] = v;
    ((double *)(*f64)->data)[i] = v;
  }
  return t;
}

/* Largest |a - b| over y (f32) and ref (f64); nan where exactly one side is nan, 0 where both. */
static double max_diff(const kl_tensor *y, const kl_tensor *ref) {
  double worst = 0;
  for (int64_t i = 0; i < y->numel; i++) {
    double a = ((const float *)y->data)[i], b = (float)((const double *)ref->data)[i];
    if (isnan(a) || isnan(b)) {
      if (isnan(a) != isnan(b))
        return NAN;
      continue;
    }
    if (isinf(a) || isinf(b)) {
      if (a != b)
        return INFINITY;
      continue;
    }
    if (fabs(a - b) > worst)
      worst = fabs(a - b);
  }
  return worst;
}

static bool same_bits(const kl_tensor *a, const kl_tensor *b) {
  return a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0;
}

static int64_t out_size(int64_t in, int64_t p0, int64_t p1, int64_t k, int64_t s, int64_t d,
                        bool ceil_mode) {
  int64_t num = in + p0 + p1 - d * (k - 1) - 1;
  if (num < 0)
    return 0;
  int64_t size = (num + (ceil_mode ? s - 1 : 0)) / s + 1;
  if (ceil_mode && (size - 1) * s >= in + p0)
    size--;
  return size;
}

/* ---- conv2d ----------------------------------------------------------------------------- */

typedef struct conv_case {
  int64_t N, Cin, H, W, groups, Cout, Kh, Kw, sh, sw, pad[4], dh, dw;
  bool bias;
} conv_case;

static kl_threadpool *pool3;
static int n_conv_cases;

/* Runs c on f32 (the fast path) and f64 (the reference) and, through the step, on 3 threads. */
static void check_conv(conv_case c) {
  int64_t Ho = out_size(c.H, c.pad[0], c.pad[2], c.Kh, c.sh, c.dh, false);
  int64_t Wo = out_size(c.W, c.pad[1], c.pad[3], c.Kw, c.sw, c.dw, false);
  if (Ho < 1 || Wo < 1)
    return;
  n_conv_cases++;
  int64_t xs[4] = {c.N, c.Cin, c.H, c.W}, ws[4] = {c.Cout, c.Cin / c.groups, c.Kh, c.Kw},
          ys[4] = {c.N, c.Cout, Ho, Wo};
  kl_tensor *xd, *wd, *bd = NULL;
  kl_tensor *x = random_pair(4, xs, 0, &xd), *w = random_pair(4, ws, 0, &wd);
  kl_tensor *b = c.bias ? random_pair(1, &c.Cout, 0, &bd) : NULL;
  kl_tensor *y = make(KL_F32, 4, ys), *yd = make(KL_F64, 4, ys), *yt = make(KL_F32, 4, ys);
  kl_rt_conv2d_params p = {{c.sh, c.sw}, {c.pad[0], c.pad[1], c.pad[2], c.pad[3]},
                           {c.dh, c.dw}, c.groups};
  CHECK_OK(kl_rt_conv2d(x, w, b, &p, y));
  CHECK_OK(kl_rt_conv2d(xd, wd, bd, &p, yd));
  double taps = (double)(c.Cin / c.groups * c.Kh * c.Kw);
  double diff = max_diff(y, yd);
  if (!(diff <= 4e-6 * (taps + 1))) {
    fprintf(stderr,
            "conv N=%lld Cin=%lld %lldx%lld groups=%lld Cout=%lld k=%lldx%lld s=%lld,%lld "
            "pad=%lld,%lld,%lld,%lld d=%lld,%lld bias=%d: max difference %g\n",
            (long long)c.N, (long long)c.Cin, (long long)c.H, (long long)c.W,
            (long long)c.groups, (long long)c.Cout, (long long)c.Kh, (long long)c.Kw,
            (long long)c.sh, (long long)c.sw, (long long)c.pad[0], (long long)c.pad[1],
            (long long)c.pad[2], (long long)c.pad[3], (long long)c.dh, (long long)c.dw, c.bias,
            diff);
    CHECK(false);
  }
  kl_step_conv2d_params sp = {.conv = p};
  kl_tensor *in[3] = {x, w, b};
  kl_step_env env = {pool3};
  CHECK_OK(kl_step_conv2d(&env, &sp, in, b ? 3 : 2, &yt, 1));
  if (!same_bits(y, yt))
    fprintf(stderr, "conv N=%lld Cin=%lld %lldx%lld groups=%lld Cout=%lld k=%lld s=%lld: threads "
            "change the bits\n", (long long)c.N, (long long)c.Cin, (long long)c.H,
            (long long)c.W, (long long)c.groups, (long long)c.Cout, (long long)c.Kh,
            (long long)c.sh);
  CHECK(same_bits(y, yt));
  /* a fused epilogue (a residual, then a clamp or silu) gives the bits of the plain result with
   * the epilogue applied after it */
  kl_tensor *rd, *r = random_pair(4, ys, 0, &rd);
  kl_step_conv2d_params ep = sp;
  ep.act = n_conv_cases % 2 ? KL_SGEMM_ACT_SILU : KL_SGEMM_ACT_CLAMP;
  ep.lo = -0.5f, ep.hi = 0.75f, ep.residual = true;
  kl_sgemm_epilogue e = {r->data, (kl_sgemm_act)ep.act, ep.lo, ep.hi};
  kl_sgemm_epilogue_apply(&e, y->data, 0, 1, y->numel, y->numel);
  kl_tensor *ein[4] = {x, w, b, r};
  CHECK_OK(kl_step_conv2d(&env, &ep, ein, 4, &yt, 1));
  if (!same_bits(y, yt))
    fprintf(stderr, "conv N=%lld Cin=%lld %lldx%lld groups=%lld Cout=%lld k=%lld s=%lld: the "
            "fused epilogue changes the bits\n", (long long)c.N, (long long)c.Cin,
            (long long)c.H, (long long)c.W, (long long)c.groups, (long long)c.Cout,
            (long long)c.Kh, (long long)c.sh);
  CHECK(same_bits(y, yt));
  kl_tensor_release(r), kl_tensor_release(rd);
  kl_tensor *all[] = {x, xd, w, wd, b, bd, y, yd, yt};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    kl_tensor_release(all[i]);
}

static void test_depthwise(void) {
  /* every H x W with the MobileNet shapes: 3x3 pad 1 at strides 1 and 2 */
  for (int i = 0; i < N_SIZES; i++)
    for (int j = 0; j < N_SIZES; j++)
      for (int64_t s = 1; s <= 2; s++)
        check_conv((conv_case){1, 3, SIZES[i], SIZES[j], 3, 3, 3, 3, s, s, {1, 1, 1, 1}, 1, 1,
                               (i + j) % 2 == 0});
  /* every kernel, stride, padding, dilation, multiplier and bias on a few shapes */
  const int64_t hw[][2] = {{7, 17}, {16, 33}, {65, 3}, {2, 31}};
  for (size_t sz = 0; sz < sizeof hw / sizeof hw[0]; sz++)
    for (int64_t k = 1; k <= 7; k += 2)
      for (int64_t s = 1; s <= 3; s++)
        for (int64_t pad = 0; pad <= 3; pad++)
          for (int64_t d = 1; d <= 2; d++)
            for (int64_t mult = 1; mult <= 2; mult++)
              check_conv((conv_case){2, 2, hw[sz][0], hw[sz][1], 2, 2 * mult, k, k, s, s,
                                     {pad, pad, pad, pad}, d, d, (k + s + pad + mult) % 2});
  /* uneven padding, kernels and strides per axis */
  check_conv((conv_case){1, 4, 17, 33, 4, 4, 3, 5, 1, 2, {0, 2, 1, 3}, 1, 1, true});
  check_conv((conv_case){1, 4, 31, 15, 4, 8, 5, 3, 2, 1, {2, 0, 3, 1}, 2, 1, false});
  check_conv((conv_case){1, 1, 9, 9, 1, 3, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, true}); /* Cin 1 */
  /* rows wide enough for the unmasked four-vector blocks, strides 1, 2 and 3 */
  for (int64_t s = 1; s <= 3; s++)
    for (int64_t k = 3; k <= 5; k += 2) {
      check_conv((conv_case){1, 2, 5, 257, 2, 2, k, k, s, s, {k / 2, k / 2, k / 2, k / 2}, 1, 1,
                             true});
      check_conv((conv_case){1, 2, 4, 200, 2, 4, k, k, s, s, {0, 0, 0, 0}, 1, 2, false});
      check_conv((conv_case){1, 2, 3, 130, 2, 2, k, k, s, s, {1, 3, 2, 0}, 1, 1, true});
    }
  /* the MobileNetV2 and EfficientNet shapes at full size */
  check_conv((conv_case){1, 32, 112, 112, 32, 32, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, true});
  check_conv((conv_case){1, 16, 112, 112, 16, 16, 3, 3, 2, 2, {0, 0, 1, 1}, 1, 1, true});
  check_conv((conv_case){1, 8, 28, 28, 8, 8, 5, 5, 1, 1, {2, 2, 2, 2}, 1, 1, true});
  check_conv((conv_case){1, 24, 7, 7, 24, 24, 5, 5, 1, 1, {2, 2, 2, 2}, 1, 1, true});
}

static void test_grouped(void) {
  /* narrow groups take the direct path, wide ones im2col: both against f64 */
  const int64_t cfg[][3] = {{8, 4, 8},   {8, 4, 16},  {8, 2, 8},  {16, 2, 16},
                            {12, 3, 24}, {32, 2, 32}, {32, 2, 34}, {4, 1, 8}};
  for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++)
    for (int64_t s = 1; s <= 2; s++)
      for (int j = 2; j < N_SIZES; j += 3)
        check_conv((conv_case){2, cfg[i][0], SIZES[j], SIZES[N_SIZES - 1 - j], cfg[i][1],
                               cfg[i][2], 3, 3, s, s, {1, 1, 1, 1}, 1, 1, j % 2 == 0});
}

static void test_gemm_shared_patches(void) {
  /* one image with fewer pixel panels than tasks: the step packs the patches once for all
   * threads and splits the channels; channel counts off the micro-tile, pixels off the panel */
  const int64_t cfg[][6] = {/* Cin, H, Cout, k, stride, pad */
                            {64, 7, 130, 3, 1, 1}, {32, 14, 67, 3, 2, 1}, {40, 9, 96, 1, 1, 0},
                            {24, 5, 200, 1, 2, 0}, {3, 33, 64, 7, 2, 3},  {17, 3, 61, 3, 1, 0}};
  for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
    int64_t k = cfg[i][3], s = cfg[i][4], pad = cfg[i][5];
    check_conv((conv_case){1, cfg[i][0], cfg[i][1], cfg[i][1], 1, cfg[i][2], k, k, s, s,
                           {pad, pad, pad, pad}, 1, 1, i % 2 == 0});
  }
}

/* ---- pooling ---------------------------------------------------------------------------- */

typedef enum { MAX, AVG } pool_kind;

static void check_pool(pool_kind kind, int64_t H, int64_t W, int64_t k, int64_t s, int64_t pad,
                       int64_t d, bool ceil_mode, bool include_pad, double nan_frac) {
  int64_t Ho = out_size(H, pad, pad, k, s, d, ceil_mode);
  int64_t Wo = out_size(W, pad, pad, k, s, d, ceil_mode);
  if (Ho < 1 || Wo < 1)
    return;
  int64_t xs[4] = {2, 3, H, W}, ys[4] = {2, 3, Ho, Wo};
  kl_tensor *xd, *x = random_pair(4, xs, nan_frac, &xd);
  kl_tensor *y = make(KL_F32, 4, ys), *yd = make(KL_F64, 4, ys), *yt = make(KL_F32, 4, ys);
  kl_rt_pool2d_params p = {{k, k}, {s, s}, {pad, pad, pad, pad}, {d, d}, include_pad};
  kl_step_pool2d_params sp = {p};
  kl_step_env env = {pool3};
  kl_tensor *in[1] = {x};
  if (kind == MAX) {
    CHECK_OK(kl_rt_max_pool2d(x, &p, y));
    CHECK_OK(kl_rt_max_pool2d(xd, &p, yd));
    CHECK_OK(kl_step_max_pool2d(&env, &sp, in, 1, &yt, 1));
  } else {
    CHECK_OK(kl_rt_avg_pool2d(x, &p, y));
    CHECK_OK(kl_rt_avg_pool2d(xd, &p, yd));
    CHECK_OK(kl_step_avg_pool2d(&env, &sp, in, 1, &yt, 1));
  }
  double diff = max_diff(y, yd), tol = kind == MAX ? 0 : 1e-6;
  if (!(diff <= tol)) {
    fprintf(stderr, "%s pool %lldx%lld k=%lld s=%lld pad=%lld d=%lld ceil=%d incl=%d nan=%g: %g\n",
            kind == MAX ? "max" : "avg", (long long)H, (long long)W, (long long)k, (long long)s,
            (long long)pad, (long long)d, ceil_mode, include_pad, nan_frac, diff);
    CHECK(false);
  }
  CHECK(same_bits(y, yt));
  kl_tensor_release(x), kl_tensor_release(xd), kl_tensor_release(y), kl_tensor_release(yd);
  kl_tensor_release(yt);
}

static void test_pools(void) {
  for (int i = 0; i < N_SIZES; i++)
    for (int j = 0; j < N_SIZES; j++) {
      bool ceil_mode = (i + j) % 2;
      /* ResNet's (its AVX-512 kernel), half of them with nans */
      check_pool(MAX, SIZES[i], SIZES[j], 3, 2, 1, 1, ceil_mode, false, i % 2 ? 0.03 : 0);
      check_pool(MAX, SIZES[i], SIZES[j], 2, 2, 0, 1, !ceil_mode, false, 0.05);
      check_pool(AVG, SIZES[i], SIZES[j], 3, 1, 1, 1, ceil_mode, (i + j) % 3 == 0, 0);
      check_pool(AVG, SIZES[i], SIZES[j], 2, 2, 0, 1, !ceil_mode, true, 0);
    }
  const int64_t hw[][2] = {{7, 17}, {16, 33}, {65, 3}, {31, 2}};
  for (size_t sz = 0; sz < sizeof hw / sizeof hw[0]; sz++)
    for (int64_t k = 1; k <= 7; k += 2)
      for (int64_t s = 1; s <= 3; s++)
        for (int64_t pad = 0; pad <= k / 2; pad++)
          for (int ceil_mode = 0; ceil_mode <= 1; ceil_mode++) {
            for (int64_t d = 1; d <= 2; d++)
              check_pool(MAX, hw[sz][0], hw[sz][1], k, s, pad, d, ceil_mode, false,
                         d == 2 ? 0.02 : 0);
            for (int incl = 0; incl <= 1; incl++)
              check_pool(AVG, hw[sz][0], hw[sz][1], k, s, pad, 1, ceil_mode, incl, 0);
          }
  /* all nan and all -inf windows */
  int64_t sh[4] = {1, 1, 3, 3};
  kl_tensor *x = make(KL_F32, 4, sh), *y = make(KL_F32, 4, (int64_t[]){1, 1, 2, 2});
  for (int i = 0; i < 9; i++)
    ((float *)x->data)[i] = i == 4 ? NAN : -INFINITY;
  kl_rt_pool2d_params p = {{2, 2}, {1, 1}, {0, 0, 0, 0}, {1, 1}, false};
  CHECK_OK(kl_rt_max_pool2d(x, &p, y));
  for (int i = 0; i < 4; i++)
    CHECK(isnan(((float *)y->data)[i]));
  kl_tensor_release(x), kl_tensor_release(y);
}

static void check_adaptive(int64_t H, int64_t W, int64_t Ho, int64_t Wo) {
  int64_t xs[4] = {2, 5, H, W}, ys[4] = {2, 5, Ho, Wo};
  kl_tensor *xd, *x = random_pair(4, xs, 0, &xd);
  kl_tensor *y = make(KL_F32, 4, ys), *yd = make(KL_F64, 4, ys), *yt = make(KL_F32, 4, ys);
  CHECK_OK(kl_rt_adaptive_avg_pool2d(x, y));
  CHECK_OK(kl_rt_adaptive_avg_pool2d(xd, yd));
  kl_step_env env = {pool3};
  kl_tensor *in[1] = {x};
  CHECK_OK(kl_step_adaptive_avg_pool2d(&env, NULL, in, 1, &yt, 1));
  double diff = max_diff(y, yd);
  if (!(diff <= 1e-6)) {
    fprintf(stderr, "adaptive %lldx%lld -> %lldx%lld: %g\n", (long long)H, (long long)W,
            (long long)Ho, (long long)Wo, diff);
    CHECK(false);
  }
  CHECK(same_bits(y, yt));
  kl_tensor_release(x), kl_tensor_release(xd), kl_tensor_release(y), kl_tensor_release(yd);
  kl_tensor_release(yt);
}

static void test_adaptive(void) {
  for (int i = 0; i < N_SIZES; i++)
    for (int j = 0; j < N_SIZES; j++) {
      check_adaptive(SIZES[i], SIZES[j], 1, 1);
      check_adaptive(SIZES[i], SIZES[j], SIZES[i] < 3 ? SIZES[i] : 3, SIZES[j] < 2 ? 1 : 2);
    }
  check_adaptive(112, 112, 1, 1);
  check_adaptive(13, 13, 7, 7);
}

int main(void) {
  CHECK_OK(kl_threadpool_create(3, &pool3));
  test_depthwise();
  test_grouped();
  test_gemm_shared_patches();
  test_pools();
  test_adaptive();
  printf("%d conv cases\n", n_conv_cases);
  kl_threadpool_destroy(pool3);
  return check_finish();
}
