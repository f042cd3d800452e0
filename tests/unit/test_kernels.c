/* Unit tests of the reference kernels (runtime/kernels/), called directly on small cases whose
 * answers were worked out by hand, plus conv2d against a naive seven-loop convolution on random
 * data for every combination of stride, padding, dilation and groups the kernel special-cases. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "ir/ir.h"
#include "runtime/interp.h"
#include "runtime/kernels.h"

/* ---- helpers --------------------------------------------------------------------------- */

/* Every tensor a test makes is kept here and released at the end, so error cases can build
 * their arguments inline without leaking. */
static kl_tensor *made[1024];
static int n_made;

static void release_all(void) {
  for (int i = 0; i < n_made; i++)
    kl_tensor_release(made[i]);
  n_made = 0;
}

static kl_tensor *make(kl_dtype dt, int rank, const int64_t *shape) {
  kl_tensor *t = NULL;
  if (n_made == (int)(sizeof made / sizeof made[0]))
    release_all(); /* never reached by these tests; keeps the array in bounds */
  kl_status s = kl_tensor_create(dt, rank, shape, &t);
  if (s) {
    fprintf(stderr, "tensor_create: %s\n", kl_status_message(s));
    exit(2);
  }
  made[n_made++] = t;
  return t;
}

/* A tensor of dtype dt filled from doubles (converted like a C cast). */
static kl_tensor *from(kl_dtype dt, int rank, const int64_t *shape, const double *v) {
  kl_tensor *t = make(dt, rank, shape);
  for (int64_t i = 0; i < t->numel; i++)
    kl_dtype_store_f64(dt, t->data, (size_t)i, v[i]);
  return t;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define VALS(...) ((const double[]){__VA_ARGS__})

static double at(const kl_tensor *t, int64_t i) {
  return kl_dtype_load_f64(t->dtype, t->data, (size_t)i);
}

/* Every element of t equals want[i] within tol (nan matches nan). */
static int close_all(const kl_tensor *t, const double *want, int64_t n, double tol) {
  if (t->numel != n) {
    fprintf(stderr, "  numel %lld, expected %lld\n", (long long)t->numel, (long long)n);
    return 0;
  }
  for (int64_t i = 0; i < n; i++) {
    double g = at(t, i);
    if ((isnan(want[i]) && !isnan(g)) ||
        (!isnan(want[i]) && !(fabs(g - want[i]) <= tol * (1 + fabs(want[i]))))) {
      fprintf(stderr, "  element %lld: got %.9g, expected %.9g\n", (long long)i, g, want[i]);
      return 0;
    }
  }
  return 1;
}
#define CHECK_VALS(t, tol, ...)                                                                    \
  CHECK(close_all(t, VALS(__VA_ARGS__), (int64_t)(sizeof(VALS(__VA_ARGS__)) / sizeof(double)), tol))

/* ---- elementwise ----------------------------------------------------------------------- */

static void test_unary(void) {
  kl_tensor *x = from(KL_F32, 1, SHAPE(5), VALS(-2, -0.5, 0, 0.5, 3));
  kl_tensor *y = make(KL_F32, 1, SHAPE(5));
  CHECK_OK(kl_rt_unary(KL_UNARY_RELU, 0, 0, x, y));
  CHECK_VALS(y, 0, 0, 0, 0, 0.5, 3);
  CHECK_OK(kl_rt_unary(KL_UNARY_CLAMP, 0, 1, x, y));
  CHECK_VALS(y, 0, 0, 0, 0, 0.5, 1);
  CHECK_OK(kl_rt_unary(KL_UNARY_CLAMP, -1, INFINITY, x, y));
  CHECK_VALS(y, 0, -1, -0.5, 0, 0.5, 3);
  CHECK_OK(kl_rt_unary(KL_UNARY_LEAKY_RELU, 0.1, 0, x, y));
  CHECK_VALS(y, 1e-6, -0.2, -0.05, 0, 0.5, 3);
  CHECK_OK(kl_rt_unary(KL_UNARY_HARDSIGMOID, 0, 0, x, y));
  CHECK_VALS(y, 1e-6, 1.0 / 6, 5.0 / 12, 0.5, 7.0 / 12, 1);
  CHECK_OK(kl_rt_unary(KL_UNARY_HARDSWISH, 0, 0, x, y));
  CHECK_VALS(y, 1e-6, -1.0 / 3, -5.0 / 24, 0, 7.0 / 24, 3);
  CHECK_OK(kl_rt_unary(KL_UNARY_SIGMOID, 0, 0, x, y));
  CHECK_VALS(y, 1e-6, 0.11920292, 0.37754067, 0.5, 0.62245933, 0.95257413);
  CHECK_OK(kl_rt_unary(KL_UNARY_GELU, 0, 0, x, y));
  CHECK_VALS(y, 1e-6, -0.04550026, -0.15426877, 0, 0.34573123, 2.99595031);
  CHECK_OK(kl_rt_unary(KL_UNARY_GELU_TANH, 0, 0, x, y));
  CHECK_VALS(y, 1e-6, -0.04540231, -0.15428599, 0, 0.34571401, 2.99636261);
  CHECK_OK(kl_rt_unary(KL_UNARY_SILU, 0, 0, x, y));
  CHECK_VALS(y, 1e-6, -0.23840584, -0.18877033, 0, 0.31122967, 2.85772238);
  CHECK_OK(kl_rt_unary(KL_UNARY_NEG, 0, 0, x, y));
  CHECK_VALS(y, 0, 2, 0.5, 0, -0.5, -3);
  CHECK_OK(kl_rt_unary(KL_UNARY_SQRT, 0, 0, x, y));
  CHECK(isnan(at(y, 0)) && at(y, 4) == (float)sqrt(3.0));
  CHECK_OK(kl_rt_unary(KL_UNARY_RECIPROCAL, 0, 0, x, y));
  CHECK(isinf(at(y, 2)) && at(y, 3) == 2.0);

  /* f64 keeps double precision; f16 rounds to half */
  kl_tensor *xd = from(KL_F64, 1, SHAPE(2), VALS(1.0, 2.0)), *yd = make(KL_F64, 1, SHAPE(2));
  CHECK_OK(kl_rt_unary(KL_UNARY_EXP, 0, 0, xd, yd));
  CHECK(at(yd, 1) == exp(2.0));
  kl_tensor *xh = from(KL_F16, 1, SHAPE(2), VALS(1.0, -4.0)), *yh = make(KL_F16, 1, SHAPE(2));
  CHECK_OK(kl_rt_unary(KL_UNARY_TANH, 0, 0, xh, yh));
  CHECK_VALS(yh, 1e-3, 0.76159416, -0.99932930);
  kl_tensor *bf = from(KL_BF16, 1, SHAPE(2), VALS(4, 16)), *ybf = make(KL_BF16, 1, SHAPE(2));
  CHECK_OK(kl_rt_unary(KL_UNARY_RSQRT, 0, 0, bf, ybf));
  CHECK_VALS(ybf, 0, 0.5, 0.25);
  CHECK_ERR(kl_rt_unary(KL_UNARY_RSQRT, 0, 0, bf, yh), KL_ERR_INVALID_ARGUMENT, "rsqrt");

  /* integers: relu, clamp, neg and abs are exact; transcendental ops are refused */
  kl_tensor *xi = from(KL_I32, 1, SHAPE(4), VALS(-5, -1, 2, 9)), *yi = make(KL_I32, 1, SHAPE(4));
  CHECK_OK(kl_rt_unary(KL_UNARY_ABS, 0, 0, xi, yi));
  CHECK_VALS(yi, 0, 5, 1, 2, 9);
  CHECK_OK(kl_rt_unary(KL_UNARY_CLAMP, -2, 6, xi, yi));
  CHECK_VALS(yi, 0, -2, -1, 2, 6);
  CHECK_ERR(kl_rt_unary(KL_UNARY_EXP, 0, 0, xi, yi), KL_ERR_UNSUPPORTED, "Int");
  CHECK_ERR(kl_rt_unary(KL_UNARY_RELU, 0, 0, x, make(KL_F32, 1, SHAPE(4))), KL_ERR_INVALID_ARGUMENT,
            "[5]");
}

static void test_cast(void) {
  kl_tensor *x = from(KL_F32, 1, SHAPE(4), VALS(-1.7, 0, 0.4, 2.9));
  kl_tensor *yi = make(KL_I32, 1, SHAPE(4)), *yb = make(KL_BOOL, 1, SHAPE(4));
  kl_tensor *yh = make(KL_F16, 1, SHAPE(4)), *y64 = make(KL_F64, 1, SHAPE(4));
  CHECK_OK(kl_rt_cast(x, yi));
  CHECK_VALS(yi, 0, -1, 0, 0, 2); /* truncation toward zero */
  CHECK_OK(kl_rt_cast(x, yb));
  CHECK_VALS(yb, 0, 1, 0, 1, 1);
  CHECK_OK(kl_rt_cast(x, yh));
  CHECK_VALS(yh, 1e-3, -1.7, 0, 0.4, 2.9);
  CHECK_OK(kl_rt_cast(x, y64));
  CHECK(at(y64, 0) == (double)-1.7f);
  kl_tensor *big = from(KL_I64, 1, SHAPE(2), VALS(300, -1)), *u8 = make(KL_U8, 1, SHAPE(2));
  CHECK_OK(kl_rt_cast(big, u8));
  CHECK_VALS(u8, 0, 44, 255); /* integer narrowing wraps like C */
  CHECK_ERR(kl_rt_cast(x, make(KL_I32, 1, SHAPE(3))), KL_ERR_INVALID_ARGUMENT, "[4]");
}

static void test_binary(void) {
  kl_tensor *a = from(KL_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
  kl_tensor *row = from(KL_F32, 1, SHAPE(3), VALS(10, 20, 30));
  kl_tensor *col = from(KL_F32, 2, SHAPE(2, 1), VALS(100, 200));
  kl_tensor *scalar = from(KL_F32, 0, NULL, VALS(2));
  kl_tensor *y = make(KL_F32, 2, SHAPE(2, 3));
  CHECK_OK(kl_rt_binary(KL_BINARY_ADD, a, row, y));
  CHECK_VALS(y, 0, 11, 22, 33, 14, 25, 36);
  CHECK_OK(kl_rt_binary(KL_BINARY_SUB, col, a, y)); /* (2,1) - (2,3) */
  CHECK_VALS(y, 0, 99, 98, 97, 196, 195, 194);
  CHECK_OK(kl_rt_binary(KL_BINARY_MUL, scalar, a, y));
  CHECK_VALS(y, 0, 2, 4, 6, 8, 10, 12);
  CHECK_OK(kl_rt_binary(KL_BINARY_DIV, a, scalar, y));
  CHECK_VALS(y, 0, 0.5, 1, 1.5, 2, 2.5, 3);
  CHECK_OK(kl_rt_binary(KL_BINARY_POW, a, scalar, y));
  CHECK_VALS(y, 0, 1, 4, 9, 16, 25, 36);
  /* (2,1) + (3,) -> (2,3): both sides broadcast */
  CHECK_OK(kl_rt_binary(KL_BINARY_ADD, col, row, y));
  CHECK_VALS(y, 0, 110, 120, 130, 210, 220, 230);
  /* rank-0 output from two scalars */
  kl_tensor *y0 = make(KL_F32, 0, NULL);
  CHECK_OK(kl_rt_binary(KL_BINARY_MAX, scalar, scalar, y0));
  CHECK(at(y0, 0) == 2);
  /* a 3-D output from (3,) and (2,1,1) */
  kl_tensor *c3 = from(KL_F32, 3, SHAPE(2, 1, 1), VALS(1, -1)),
            *y3 = make(KL_F32, 3, SHAPE(2, 2, 3));
  CHECK_OK(kl_rt_binary(KL_BINARY_MUL, row, c3, y3));
  CHECK_VALS(y3, 0, 10, 20, 30, 10, 20, 30, -10, -20, -30, -10, -20, -30);
  /* nan propagates through maximum and minimum from either side */
  kl_tensor *n1 = from(KL_F32, 1, SHAPE(2), VALS(NAN, 1)),
            *n2 = from(KL_F32, 1, SHAPE(2), VALS(0, NAN));
  kl_tensor *yn = make(KL_F32, 1, SHAPE(2));
  CHECK_OK(kl_rt_binary(KL_BINARY_MIN, n1, n2, yn));
  CHECK(isnan(at(yn, 0)) && isnan(at(yn, 1)));
  /* comparisons write Bool */
  kl_tensor *yb = make(KL_BOOL, 2, SHAPE(2, 3));
  CHECK_OK(kl_rt_binary(KL_BINARY_GT, a, from(KL_F32, 0, NULL, VALS(3)), yb));
  CHECK_VALS(yb, 0, 0, 0, 0, 1, 1, 1);
  CHECK_OK(kl_rt_binary(KL_BINARY_EQ, a, from(KL_F32, 1, SHAPE(3), VALS(1, 0, 6)), yb));
  CHECK_VALS(yb, 0, 1, 0, 0, 0, 0, 1);
  CHECK_ERR(kl_rt_binary(KL_BINARY_LT, a, row, y), KL_ERR_INVALID_ARGUMENT, "Bool");
  /* shapes that do not broadcast, and mixed dtypes */
  kl_tensor *two = from(KL_F32, 1, SHAPE(2), VALS(1, 2));
  CHECK_ERR(kl_rt_binary(KL_BINARY_ADD, a, two, y), KL_ERR_INVALID_ARGUMENT, "[2]");
  CHECK_ERR(kl_rt_binary(KL_BINARY_ADD, a, a, make(KL_F32, 2, SHAPE(3, 2))),
            KL_ERR_INVALID_ARGUMENT, "broadcast");
  kl_tensor *ai = from(KL_I64, 1, SHAPE(4), VALS(-7, 7, 9, -8));
  CHECK_ERR(kl_rt_binary(KL_BINARY_ADD, ai, row, y), KL_ERR_INVALID_ARGUMENT, "Long");
  /* integers: division truncates toward zero; zero divisors and negative powers are errors */
  kl_tensor *bi = from(KL_I64, 1, SHAPE(4), VALS(2, -2, 3, 3)), *yi = make(KL_I64, 1, SHAPE(4));
  CHECK_OK(kl_rt_binary(KL_BINARY_DIV, ai, bi, yi));
  CHECK_VALS(yi, 0, -3, -3, 3, -2);
  kl_tensor *ei = from(KL_I64, 1, SHAPE(4), VALS(2, 0, 3, 3));
  CHECK_OK(kl_rt_binary(KL_BINARY_POW, ai, ei, yi));
  CHECK_VALS(yi, 0, 49, 1, 729, -512);
  kl_tensor *zi = from(KL_I64, 1, SHAPE(4), VALS(1, 1, 0, 1));
  CHECK_ERR(kl_rt_binary(KL_BINARY_DIV, ai, zi, yi), KL_ERR_INVALID_ARGUMENT, "division by zero");
  CHECK_ERR(kl_rt_binary(KL_BINARY_POW, bi, ai, yi), KL_ERR_INVALID_ARGUMENT, "negative");
}

static void test_where(void) {
  kl_tensor *cond = from(KL_BOOL, 2, SHAPE(2, 1), VALS(1, 0));
  kl_tensor *a = from(KL_I32, 1, SHAPE(3), VALS(1, 2, 3));
  kl_tensor *b = from(KL_I32, 0, NULL, VALS(-1));
  kl_tensor *y = make(KL_I32, 2, SHAPE(2, 3));
  CHECK_OK(kl_rt_where(cond, a, b, y));
  CHECK_VALS(y, 0, 1, 2, 3, -1, -1, -1);
  CHECK_ERR(kl_rt_where(a, a, b, y), KL_ERR_INVALID_ARGUMENT, "Bool");
  CHECK_ERR(kl_rt_where(cond, a, b, make(KL_I32, 2, SHAPE(2, 4))), KL_ERR_INVALID_ARGUMENT,
            "[2, 4]");
}

static kl_tensor *random_tensor(kl_dtype dt, int rank, const int64_t *shape, unsigned *seed) {
  kl_tensor *t = make(dt, rank, shape);
  for (int64_t i = 0; i < t->numel; i++) {
    *seed = *seed * 1103515245u + 12345u;
    kl_dtype_store_f64(dt, t->data, (size_t)i, ((*seed >> 8) % 2001) / 1000.0 - 1.0);
  }
  return t;
}

/* ---- matrix products ------------------------------------------------------------------- */

static void test_matmul(void) {
  kl_tensor *a = from(KL_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
  kl_tensor *b = from(KL_F32, 2, SHAPE(3, 2), VALS(7, 8, 9, 10, 11, 12));
  kl_tensor *y = make(KL_F32, 2, SHAPE(2, 2));
  CHECK_OK(kl_rt_matmul(a, b, y));
  CHECK_VALS(y, 0, 58, 64, 139, 154);
  /* 1-D @ 2-D and 2-D @ 1-D drop the promoted dim */
  kl_tensor *v = from(KL_F32, 1, SHAPE(3), VALS(1, 0, -1)), *yv = make(KL_F32, 1, SHAPE(2));
  CHECK_OK(kl_rt_matmul(v, b, yv));
  CHECK_VALS(yv, 0, -4, -4);
  CHECK_OK(kl_rt_matmul(a, v, yv));
  CHECK_VALS(yv, 0, -2, -2);
  /* batch (2, 2, 3) @ (3, 2): b is broadcast over the batch */
  kl_tensor *ab = from(KL_F32, 3, SHAPE(2, 2, 3), VALS(1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0));
  kl_tensor *yb = make(KL_F32, 3, SHAPE(2, 2, 2));
  CHECK_OK(kl_rt_matmul(ab, b, yb));
  CHECK_VALS(yb, 0, 58, 64, 139, 154, 7, 8, 9, 10);
  /* f64 and integer paths */
  kl_tensor *ad = from(KL_F64, 2, SHAPE(1, 2), VALS(0.1, 0.2));
  kl_tensor *bd = from(KL_F64, 2, SHAPE(2, 1), VALS(0.3, 0.4)), *yd = make(KL_F64, 2, SHAPE(1, 1));
  CHECK_OK(kl_rt_matmul(ad, bd, yd));
  CHECK(at(yd, 0) == 0.1 * 0.3 + 0.2 * 0.4);
  kl_tensor *ai = from(KL_I32, 2, SHAPE(1, 2), VALS(3, -4));
  kl_tensor *bi = from(KL_I32, 2, SHAPE(2, 1), VALS(5, 6)), *yi = make(KL_I32, 2, SHAPE(1, 1));
  CHECK_OK(kl_rt_matmul(ai, bi, yi));
  CHECK(at(yi, 0) == -9);
  CHECK_ERR(kl_rt_matmul(a, a, y), KL_ERR_INVALID_ARGUMENT, "[2, 3] @ [2, 3]");
  CHECK_ERR(kl_rt_matmul(a, b, make(KL_F32, 2, SHAPE(2, 3))), KL_ERR_INVALID_ARGUMENT, "[2, 2]");

  /* linear: y = x @ w^T + bias, also for a 3-D x and without bias */
  kl_tensor *w = from(KL_F32, 2, SHAPE(2, 3), VALS(1, 0, 0, 0, 1, 1));
  kl_tensor *bias = from(KL_F32, 1, SHAPE(2), VALS(0.5, -0.5));
  CHECK_OK(kl_rt_linear(a, w, bias, y));
  CHECK_VALS(y, 0, 1.5, 4.5, 4.5, 10.5);
  kl_tensor *y3 = make(KL_F32, 3, SHAPE(2, 2, 2));
  CHECK_OK(kl_rt_linear(ab, w, NULL, y3));
  CHECK_VALS(y3, 0, 1, 5, 4, 11, 1, 0, 0, 1);
  /* both strategies (dot products for few rows, transpose + gemm for many) against the sum */
  unsigned seed = 3;
  for (int64_t rows = 1; rows <= 40; rows += 13) {
    for (int dt = 0; dt < 2; dt++) {
      kl_dtype t = dt ? KL_F64 : KL_F32;
      kl_tensor *lx = random_tensor(t, 2, SHAPE(rows, 19), &seed);
      kl_tensor *lw = random_tensor(t, 2, SHAPE(6, 19), &seed);
      kl_tensor *lb = random_tensor(t, 1, SHAPE(6), &seed), *ly = make(t, 2, SHAPE(rows, 6));
      CHECK_OK(kl_rt_linear(lx, lw, lb, ly));
      double worst = 0;
      for (int64_t m = 0; m < rows; m++)
        for (int64_t o = 0; o < 6; o++) {
          double want = at(lb, o);
          for (int64_t i = 0; i < 19; i++)
            want += at(lx, m * 19 + i) * at(lw, o * 19 + i);
          worst = fmax(worst, fabs(at(ly, m * 6 + o) - want));
        }
      CHECK(worst < (dt ? 1e-12 : 1e-5));
    }
  }
  /* one row (the dot products, in fours where the CPU has AVX2): odd sizes against the sum,
   * and each output's bits the same when the rows before it are dropped (it then falls at
   * another place in a four, or in the tail) */
  static const int64_t outs[] = {1, 3, 5, 7, 17}, ins[] = {1, 7, 8, 17, 65};
  for (size_t oi = 0; oi < sizeof outs / sizeof *outs; oi++)
    for (size_t ii = 0; ii < sizeof ins / sizeof *ins; ii++) {
      int64_t no = outs[oi], ni = ins[ii];
      kl_tensor *lx = random_tensor(KL_F32, 2, SHAPE(1, ni), &seed);
      kl_tensor *lw = random_tensor(KL_F32, 2, SHAPE(no, ni), &seed);
      kl_tensor *lb = random_tensor(KL_F32, 1, SHAPE(no), &seed);
      kl_tensor *ly = make(KL_F32, 2, SHAPE(1, no));
      CHECK_OK(kl_rt_linear(lx, lw, lb, ly));
      double worst = 0;
      for (int64_t o = 0; o < no; o++) {
        double want = at(lb, o);
        for (int64_t i = 0; i < ni; i++)
          want += at(lx, i) * at(lw, o * ni + i);
        worst = fmax(worst, fabs(at(ly, o) - want));
      }
      CHECK(worst < 1e-5);
      if (no > 1) { /* rows 1 .. no of w alone */
        kl_tensor *sw = make(KL_F32, 2, SHAPE(no - 1, ni)), *sb = make(KL_F32, 1, SHAPE(no - 1));
        kl_tensor *sy = make(KL_F32, 2, SHAPE(1, no - 1));
        memcpy(sw->data, (const float *)lw->data + ni, sw->nbytes);
        memcpy(sb->data, (const float *)lb->data + 1, sb->nbytes);
        CHECK_OK(kl_rt_linear(lx, sw, sb, sy));
        CHECK(memcmp(sy->data, (const float *)ly->data + 1, sy->nbytes) == 0);
      }
    }
  CHECK_ERR(kl_rt_linear(a, b, NULL, y), KL_ERR_INVALID_ARGUMENT, "features");
  CHECK_ERR(kl_rt_linear(a, w, v, y), KL_ERR_INVALID_ARGUMENT, "bias");
}

/* The plain definition of a convolution, for comparison. */
static void naive_conv(const kl_tensor *x, const kl_tensor *w, const kl_tensor *b,
                       const kl_rt_conv2d_params *p, kl_tensor *y) {
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t O = w->shape[0], Cg = w->shape[1], KH = w->shape[2], KW = w->shape[3];
  int64_t HO = y->shape[2], WO = y->shape[3], Og = O / p->groups;
  (void)C;
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t i = 0; i < HO; i++)
        for (int64_t j = 0; j < WO; j++) {
          double s = b ? at(b, o) : 0;
          int64_t g = o / Og;
          for (int64_t c = 0; c < Cg; c++)
            for (int64_t ki = 0; ki < KH; ki++)
              for (int64_t kj = 0; kj < KW; kj++) {
                int64_t ih = i * p->stride[0] - p->pad[0] + ki * p->dilation[0];
                int64_t iw = j * p->stride[1] - p->pad[1] + kj * p->dilation[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                  continue;
                s += at(x, ((n * C + g * Cg + c) * H + ih) * W + iw) *
                     at(w, ((o * Cg + c) * KH + ki) * KW + kj);
              }
          kl_dtype_store_f64(y->dtype, y->data, (size_t)(((n * O + o) * HO + i) * WO + j), s);
        }
}

static void test_conv2d(void) {
  /* hand case: 1x1x3x3 input, 2x2 kernel of ones, no padding -> window sums */
  kl_tensor *x = from(KL_F32, 4, SHAPE(1, 1, 3, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
  kl_tensor *w = from(KL_F32, 4, SHAPE(1, 1, 2, 2), VALS(1, 1, 1, 1));
  kl_tensor *b = from(KL_F32, 1, SHAPE(1), VALS(0.5));
  kl_tensor *y = make(KL_F32, 4, SHAPE(1, 1, 2, 2));
  kl_rt_conv2d_params p = {{1, 1}, {0, 0, 0, 0}, {1, 1}, 1};
  CHECK_OK(kl_rt_conv2d(x, w, b, &p, y));
  CHECK_VALS(y, 0, 12.5, 16.5, 24.5, 28.5);
  /* padding 1 and stride 2: corners see 4 inputs, each window clipped */
  kl_rt_conv2d_params p2 = {{2, 2}, {1, 1, 1, 1}, {1, 1}, 1};
  CHECK_OK(kl_rt_conv2d(x, w, NULL, &p2, y));
  CHECK_VALS(y, 0, 1, 5, 11, 28);
  CHECK_ERR(kl_rt_conv2d(x, w, NULL, &p2, make(KL_F32, 4, SHAPE(1, 1, 3, 3))),
            KL_ERR_INVALID_ARGUMENT, "[1, 1, 2, 2]");
  kl_rt_conv2d_params bad = {{1, 1}, {0, 0, 0, 0}, {1, 1}, 2};
  CHECK_ERR(kl_rt_conv2d(x, w, NULL, &bad, y), KL_ERR_INVALID_ARGUMENT, "groups");
  kl_rt_conv2d_params zero_stride = {{0, 1}, {0, 0, 0, 0}, {1, 1}, 1};
  CHECK_ERR(kl_rt_conv2d(x, w, NULL, &zero_stride, y), KL_ERR_INVALID_ARGUMENT, "stride");
  kl_rt_conv2d_params huge = {{1, 1}, {0, 0, 0, 0}, {INT64_MAX, 1}, 1};
  CHECK_ERR(kl_rt_conv2d(x, w, NULL, &huge, y), KL_ERR_INVALID_ARGUMENT, "gives");

  /* random cases against the naive loop: {Cin, Cout, groups, k, stride, pad(t,l,b,r), dil} */
  static const int64_t cases[][11] = {
      {3, 4, 1, 3, 1, 1, 1, 1, 1, 1, 0}, {4, 6, 2, 3, 2, 1, 0, 1, 2, 1, 0},
      {4, 4, 4, 3, 1, 1, 1, 1, 1, 2, 0}, {3, 5, 1, 1, 1, 0, 0, 0, 0, 1, 0},
      {2, 2, 1, 2, 3, 0, 2, 1, 0, 1, 1}, {6, 3, 3, 3, 2, 2, 2, 2, 2, 2, 1},
  };
  unsigned seed = 7;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int64_t *k = cases[c];
    kl_dtype dt = k[10] ? KL_F64 : KL_F32;
    kl_rt_conv2d_params q = {{k[4], k[4]}, {k[5], k[6], k[7], k[8]}, {k[9], k[9]}, k[2]};
    int64_t H = 7, W = 6, span = k[9] * (k[3] - 1) + 1;
    int64_t Ho = (H + k[5] + k[7] - span) / k[4] + 1, Wo = (W + k[6] + k[8] - span) / k[4] + 1;
    kl_tensor *cx = random_tensor(dt, 4, SHAPE(2, k[0], H, W), &seed);
    kl_tensor *cw = random_tensor(dt, 4, SHAPE(k[1], k[0] / k[2], k[3], k[3]), &seed);
    kl_tensor *cb = random_tensor(dt, 1, SHAPE(k[1]), &seed);
    kl_tensor *cy = make(dt, 4, SHAPE(2, k[1], Ho, Wo)), *ref = make(dt, 4, SHAPE(2, k[1], Ho, Wo));
    CHECK_OK(kl_rt_conv2d(cx, cw, c % 2 ? NULL : cb, &q, cy));
    naive_conv(cx, cw, c % 2 ? NULL : cb, &q, ref);
    double worst = 0;
    for (int64_t i = 0; i < cy->numel; i++)
      worst = fmax(worst, fabs(at(cy, i) - at(ref, i)));
    if (worst > 1e-5)
      fprintf(stderr, "  conv case %zu: max difference %g\n", c, worst);
    CHECK(worst <= 1e-5);
  }

  /* f16 goes through double and rounds once */
  kl_tensor *hx = from(KL_F16, 4, SHAPE(1, 1, 1, 2), VALS(1.5, 2));
  kl_tensor *hw = from(KL_F16, 4, SHAPE(1, 1, 1, 2), VALS(2, -1)),
            *hy = make(KL_F16, 4, SHAPE(1, 1, 1, 1));
  CHECK_OK(kl_rt_conv2d(hx, hw, NULL, &p, hy));
  CHECK(at(hy, 0) == 1.0);

  /* speed: a 3x3 conv on 1x64x56x56 must take well under a second */
  kl_tensor *bx = random_tensor(KL_F32, 4, SHAPE(1, 64, 56, 56), &seed);
  kl_tensor *bw = random_tensor(KL_F32, 4, SHAPE(64, 64, 3, 3), &seed);
  kl_tensor *by = make(KL_F32, 4, SHAPE(1, 64, 56, 56));
  kl_rt_conv2d_params pb = {{1, 1}, {1, 1, 1, 1}, {1, 1}, 1};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_OK(kl_rt_conv2d(bx, bw, NULL, &pb, by));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  printf("conv2d 3x3 1x64x56x56: %.3f s\n", secs);
  CHECK(secs < 2.0); /* generous: sanitizer builds run several times slower */
}

/* ---- normalization --------------------------------------------------------------------- */

static void test_norm(void) {
  kl_tensor *x = from(KL_F32, 3, SHAPE(1, 2, 2), VALS(1, 2, 3, 4));
  kl_tensor *w = from(KL_F32, 1, SHAPE(2), VALS(1, 2)), *b = from(KL_F32, 1, SHAPE(2), VALS(0, 1));
  kl_tensor *mean = from(KL_F32, 1, SHAPE(2), VALS(1, 3)),
            *var = from(KL_F32, 1, SHAPE(2), VALS(4, 1));
  kl_tensor *y = make(KL_F32, 3, SHAPE(1, 2, 2));
  CHECK_OK(kl_rt_batch_norm(x, w, b, mean, var, 0, y));
  CHECK_VALS(y, 1e-6, 0, 0.5, 1, 3);
  CHECK_ERR(kl_rt_batch_norm(x, w, b, mean, x, 0, y), KL_ERR_INVALID_ARGUMENT, "running_var");
  /* layer norm over the last dim: rows (1,2) and (3,4) both normalize to (-1, 1) */
  CHECK_OK(kl_rt_layer_norm(x, w, b, 1, 0, y));
  CHECK_VALS(y, 1e-6, -1, 3, -1, 3);
  CHECK_OK(kl_rt_layer_norm(x, NULL, NULL, 2, 0, y));
  CHECK_VALS(y, 1e-6, -1.34164079, -0.44721360, 0.44721360, 1.34164079);
  CHECK_ERR(kl_rt_layer_norm(x, mean, NULL, 2, 0, y), KL_ERR_INVALID_ARGUMENT, "weight");
  /* softmax along dims 1 and 2 */
  CHECK_OK(kl_rt_softmax(x, 2, false, y));
  CHECK_VALS(y, 1e-6, 0.26894142, 0.73105858, 0.26894142, 0.73105858);
  CHECK_OK(kl_rt_softmax(x, 1, false, y));
  CHECK_VALS(y, 1e-6, 0.11920292, 0.11920292, 0.88079708, 0.88079708);
  CHECK_OK(kl_rt_softmax(x, 2, true, y));
  CHECK_VALS(y, 1e-6, -1.31326169, -0.31326169, -1.31326169, -0.31326169);
  kl_tensor *huge = from(KL_F32, 1, SHAPE(2), VALS(1000, 1000)), *yh = make(KL_F32, 1, SHAPE(2));
  CHECK_OK(kl_rt_softmax(huge, 0, false, yh)); /* max subtraction keeps exp finite */
  CHECK_VALS(yh, 1e-6, 0.5, 0.5);
  CHECK_ERR(kl_rt_softmax(x, 3, false, y), KL_ERR_INVALID_ARGUMENT, "dim 3");
}

/* ---- pooling --------------------------------------------------------------------------- */

static void test_pool(void) {
  /* x (1, 1, 4, 4) = 1..16 */
  double v[16];
  for (int i = 0; i < 16; i++)
    v[i] = i + 1;
  kl_tensor *x = from(KL_F32, 4, SHAPE(1, 1, 4, 4), v);
  kl_tensor *y = make(KL_F32, 4, SHAPE(1, 1, 2, 2));
  kl_rt_pool2d_params p = {{2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, true};
  CHECK_OK(kl_rt_max_pool2d(x, &p, y));
  CHECK_VALS(y, 0, 6, 8, 14, 16);
  CHECK_OK(kl_rt_avg_pool2d(x, &p, y));
  CHECK_VALS(y, 0, 3.5, 5.5, 11.5, 13.5);
  /* kernel 3, stride 2, padding 1 -> 2x2 windows clipped at the top-left */
  kl_rt_pool2d_params q = {{3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, true};
  CHECK_OK(kl_rt_max_pool2d(x, &q, y));
  CHECK_VALS(y, 0, 6, 8, 14, 16);
  CHECK_OK(kl_rt_avg_pool2d(x, &q, y)); /* divides by 9, padding included */
  CHECK_VALS(y, 1e-6, 14.0 / 9, 30.0 / 9, 57.0 / 9, 99.0 / 9);
  q.count_include_pad = false;
  CHECK_OK(kl_rt_avg_pool2d(x, &q, y));
  CHECK_VALS(y, 1e-6, 14.0 / 4, 30.0 / 6, 57.0 / 6, 99.0 / 9);
  /* ceil mode: kernel 3 stride 2 on 4 gives 2 outputs (floor: 1); the last window hangs over
   * the edge and counts only what lies inside the padded input */
  kl_rt_pool2d_params c = {{3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, true};
  CHECK_OK(kl_rt_avg_pool2d(x, &c, y));
  CHECK_VALS(y, 1e-6, 6, 7.5, 12, 13.5);
  CHECK_OK(kl_rt_max_pool2d(x, &c, y));
  CHECK_VALS(y, 0, 11, 12, 15, 16);
  /* dilated max pool: kernel 2 dilation 2 picks (0,2) rows and cols */
  kl_rt_pool2d_params d = {{2, 2}, {1, 1}, {0, 0, 0, 0}, {2, 2}, true};
  CHECK_OK(kl_rt_max_pool2d(x, &d, y));
  CHECK_VALS(y, 0, 11, 12, 15, 16);
  kl_tensor *y1 = make(KL_F32, 4, SHAPE(1, 1, 3, 3));
  CHECK_OK(kl_rt_adaptive_avg_pool2d(x, y1)); /* bins [0,2) [1,3) [2,4) */
  CHECK_VALS(y1, 1e-6, 3.5, 4.5, 5.5, 7.5, 8.5, 9.5, 11.5, 12.5, 13.5);
  kl_tensor *y11 = make(KL_F32, 4, SHAPE(1, 1, 1, 1));
  CHECK_OK(kl_rt_adaptive_avg_pool2d(x, y11));
  CHECK_VALS(y11, 1e-6, 8.5);
  CHECK_ERR(kl_rt_max_pool2d(x, &p, make(KL_F32, 3, SHAPE(1, 2, 2))), KL_ERR_INVALID_ARGUMENT,
            "4-D");
  kl_rt_pool2d_params zero = {{0, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, true};
  CHECK_ERR(kl_rt_max_pool2d(x, &zero, y), KL_ERR_INVALID_ARGUMENT, "kernel");
  kl_rt_pool2d_params far = {{2, 2}, {INT64_MAX, 1}, {0, 0, 0, 0}, {1, 1}, true};
  CHECK_ERR(kl_rt_avg_pool2d(x, &far, y), KL_ERR_INVALID_ARGUMENT, "overflows");
}

/* ---- reductions ------------------------------------------------------------------------ */

static void test_reduce(void) {
  kl_tensor *x = from(KL_F32, 2, SHAPE(2, 3), VALS(1, 5, 3, 4, 2, 6));
  kl_tensor *y2 = make(KL_F32, 1, SHAPE(2)), *y3 = make(KL_F32, 2, SHAPE(1, 3));
  kl_tensor *y0 = make(KL_F32, 0, NULL);
  bool rows[] = {false, true}, cols[] = {true, false}, both[] = {true, true};
  CHECK_OK(kl_rt_reduce(KL_REDUCE_SUM, x, rows, y2));
  CHECK_VALS(y2, 0, 9, 12);
  CHECK_OK(kl_rt_reduce(KL_REDUCE_MAX, x, cols, y3)); /* keepdim-style output */
  CHECK_VALS(y3, 0, 4, 5, 6);
  CHECK_OK(kl_rt_reduce(KL_REDUCE_MIN, x, rows, y2));
  CHECK_VALS(y2, 0, 1, 2);
  CHECK_OK(kl_rt_reduce(KL_REDUCE_MEAN, x, both, y0));
  CHECK_VALS(y0, 1e-7, 3.5);
  CHECK_ERR(kl_rt_reduce(KL_REDUCE_SUM, x, rows, y3), KL_ERR_INVALID_ARGUMENT, "keeps 2");
  kl_tensor *xi = from(KL_I64, 1, SHAPE(3), VALS(4000000000.0, 4000000001.0, -3)),
            *yi = make(KL_I64, 0, NULL);
  bool one[] = {true};
  CHECK_OK(kl_rt_reduce(KL_REDUCE_SUM, xi, one, yi));
  CHECK(((int64_t *)yi->data)[0] == 7999999998LL);
  kl_tensor *empty = make(KL_F32, 2, SHAPE(2, 0));
  CHECK_OK(kl_rt_reduce(KL_REDUCE_SUM, empty, rows, y2));
  CHECK_VALS(y2, 0, 0, 0);
  /* issue 4: float max of nothing is -inf (ONNX); integers have no such value */
  CHECK_OK(kl_rt_reduce(KL_REDUCE_MAX, empty, rows, y2));
  CHECK(isinf(((float *)y2->data)[0]) && ((float *)y2->data)[1] < 0);
  kl_tensor *empty_i = make(KL_I32, 2, SHAPE(2, 0)), *y2i = make(KL_I32, 1, SHAPE(2));
  CHECK_ERR(kl_rt_reduce(KL_REDUCE_MAX, empty_i, rows, y2i), KL_ERR_INVALID_ARGUMENT, "empty");
  /* prod: of rows, of nothing (1), and of integers in int64 */
  CHECK_OK(kl_rt_reduce(KL_REDUCE_PROD, x, rows, y2));
  CHECK_VALS(y2, 0, 15, 48);
  CHECK_OK(kl_rt_reduce(KL_REDUCE_PROD, empty, rows, y2));
  CHECK_VALS(y2, 0, 1, 1);
  kl_tensor *xp = from(KL_I32, 1, SHAPE(3), VALS(100000, 100000, -3)), *yp = make(KL_I64, 0, NULL);
  CHECK_OK(kl_rt_reduce(KL_REDUCE_PROD, xp, one, yp));
  CHECK(((int64_t *)yp->data)[0] == -30000000000LL);
}

/* ---- data movement --------------------------------------------------------------------- */

static void test_movement(void) {
  double v[24];
  for (int i = 0; i < 24; i++)
    v[i] = i;
  kl_tensor *x = from(KL_F32, 3, SHAPE(2, 3, 4), v);
  kl_tensor *flat = make(KL_F32, 2, SHAPE(6, 4));
  CHECK_OK(kl_rt_copy(x, flat));
  CHECK(at(flat, 23) == 23);
  CHECK_ERR(kl_rt_copy(x, make(KL_F32, 1, SHAPE(5))), KL_ERR_INVALID_ARGUMENT, "[5]");
  /* permute (2,3,4) by (2,0,1) -> (4,2,3): y[k][i][j] = x[i][j][k] */
  kl_tensor *pt = make(KL_F32, 3, SHAPE(4, 2, 3));
  CHECK_OK(kl_rt_permute(x, (const int[]){2, 0, 1}, pt));
  CHECK(at(pt, 0) == 0 && at(pt, 1) == 4 && at(pt, 3) == 12 && at(pt, 6) == 1 && at(pt, 23) == 23);
  CHECK_ERR(kl_rt_permute(x, (const int[]){0, 0, 1}, pt), KL_ERR_INVALID_ARGUMENT, "permutation");
  /* expand (3,1) -> (2,3,2) */
  kl_tensor *e = from(KL_I8, 2, SHAPE(3, 1), VALS(1, 2, 3)), *ey = make(KL_I8, 3, SHAPE(2, 3, 2));
  CHECK_OK(kl_rt_expand(e, ey));
  CHECK_VALS(ey, 0, 1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3);
  CHECK_ERR(kl_rt_expand(e, make(KL_I8, 2, SHAPE(2, 2))), KL_ERR_INVALID_ARGUMENT, "broadcast");
  /* cat along dim 1 and split back */
  kl_tensor *a = from(KL_F32, 2, SHAPE(2, 1), VALS(1, 2));
  kl_tensor *b = from(KL_F32, 2, SHAPE(2, 2), VALS(3, 4, 5, 6)), *cy = make(KL_F32, 2, SHAPE(2, 3));
  const kl_tensor *parts[] = {a, b};
  CHECK_OK(kl_rt_cat(parts, 2, 1, cy));
  CHECK_VALS(cy, 0, 1, 3, 4, 2, 5, 6);
  CHECK_ERR(kl_rt_cat(parts, 2, 0, cy), KL_ERR_INVALID_ARGUMENT, "outside dim 0");
  kl_tensor *s0 = make(KL_F32, 2, SHAPE(2, 2)), *s1 = make(KL_F32, 2, SHAPE(2, 1));
  kl_tensor *outs[] = {s0, s1};
  CHECK_OK(kl_rt_split(cy, 1, outs, 2));
  CHECK_VALS(s0, 0, 1, 3, 2, 5);
  CHECK_VALS(s1, 0, 4, 6);
  kl_tensor *bad[] = {s0, s0};
  CHECK_ERR(kl_rt_split(cy, 1, bad, 2), KL_ERR_INVALID_ARGUMENT, "add up to 4");
  /* slice with a negative step: x[:, 2::-2, :] -> rows 2, 0 */
  kl_tensor *sl = make(KL_F32, 3, SHAPE(2, 2, 4));
  CHECK_OK(kl_rt_slice(x, 1, 2, -2, sl));
  CHECK(at(sl, 0) == 8 && at(sl, 4) == 0 && at(sl, 8) == 20 && at(sl, 15) == 15);
  kl_tensor *sl2 = make(KL_F32, 3, SHAPE(2, 3, 2)); /* x[..., 1::2] */
  CHECK_OK(kl_rt_slice(x, 2, 1, 2, sl2));
  CHECK_VALS(sl2, 0, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23);
  CHECK_ERR(kl_rt_slice(x, 1, 2, 2, sl), KL_ERR_INVALID_ARGUMENT, "start 2");
  CHECK_ERR(kl_rt_slice(x, 1, 0, 0, sl), KL_ERR_INVALID_ARGUMENT, "step 0");
  CHECK_ERR(kl_rt_slice(x, 1, 0, INT64_MAX, make(KL_F32, 3, SHAPE(2, 3, 4))),
            KL_ERR_INVALID_ARGUMENT, "start 0"); /* the last index overflows int64 */
  /* constant pad: dim 0 cropped by one in front, dim 1 padded (1 before, 2 after) */
  kl_tensor *px = from(KL_I32, 2, SHAPE(2, 2), VALS(1, 2, 3, 4)),
            *py = make(KL_I32, 2, SHAPE(1, 5));
  CHECK_OK(kl_rt_constant_pad(px, (const int64_t[]){-1, 0, 1, 2}, 9, py));
  CHECK_VALS(py, 0, 9, 3, 4, 9, 9);
  CHECK_ERR(kl_rt_constant_pad(px, (const int64_t[]){0, 0, 1, 2}, 9, py), KL_ERR_INVALID_ARGUMENT,
            "[1, 5]");
  CHECK_ERR(kl_rt_constant_pad(px, (const int64_t[]){INT64_MAX, INT64_MAX, 0, 0}, 0, py),
            KL_ERR_INVALID_ARGUMENT, "constant_pad");
  /* gather along axis 1 with 2-D indices, negative allowed */
  kl_tensor *g = from(KL_F32, 2, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
  kl_tensor *idx = from(KL_I64, 2, SHAPE(2, 2), VALS(0, -1, 2, 1));
  kl_tensor *gy = make(KL_F32, 3, SHAPE(2, 2, 2));
  CHECK_OK(kl_rt_gather(g, idx, 1, true, gy));
  CHECK_VALS(gy, 0, 1, 3, 3, 2, 4, 6, 6, 5);
  CHECK_ERR(kl_rt_gather(g, idx, 1, false, gy), KL_ERR_INVALID_ARGUMENT, "index -1");
  kl_tensor *idx32 = from(KL_I32, 1, SHAPE(2), VALS(1, 2)), *gy0 = make(KL_F32, 2, SHAPE(2, 3));
  CHECK_ERR(kl_rt_gather(g, idx32, 0, true, gy0), KL_ERR_INVALID_ARGUMENT, "index 2");
  CHECK_ERR(kl_rt_gather(g, g, 0, true, gy0), KL_ERR_INVALID_ARGUMENT, "Int or Long");
  kl_tensor *idx1 = from(KL_I32, 1, SHAPE(2), VALS(1, 0));
  CHECK_OK(kl_rt_gather(g, idx1, 0, false, gy0)); /* embedding-style: rows */
  CHECK_VALS(gy0, 0, 4, 5, 6, 1, 2, 3);
}

/* ---- interpreter adapters (runtime/interp_ops.c) -------------------------------------- */

static void test_adapters(void) {
  for (int op = 0; op < KL_OP_COUNT; op++)
    CHECK(kl_interp_kernel((kl_op)op) != NULL);
  CHECK(kl_interp_kernel(KL_OP_COUNT) == NULL);
  kl_ir_graph *g = kl_ir_graph_create();
  kl_ir_node *param = kl_ir_block_add_node(g->top, KL_OP_PARAM, NULL, 0, 1);
  kl_ir_node_set_string(param, "name", "fc.weight");
  kl_tensor *out = make(KL_F32, 1, SHAPE(3));
  /* parameters and constants are the interpreter's own business, not a kernel's */
  CHECK_ERR(kl_interp_kernel(KL_OP_PARAM)(g, param, NULL, &out), KL_ERR_INTERNAL, "prim::Param");
  kl_ir_node *cond = kl_ir_block_add_node(g->top, KL_OP_IF, param->outputs, 1, 0);
  CHECK_ERR(kl_interp_kernel(KL_OP_IF)(g, cond, &out, NULL), KL_ERR_INTERNAL, "prim::If");
  /* an adapter reads attributes: gelu's approximate picks the formula */
  kl_ir_node *gelu = kl_ir_block_add_node(g->top, KL_OP_GELU, param->outputs, 1, 1);
  kl_ir_node_set_string(gelu, "approximate", "tanh");
  kl_tensor *x = from(KL_F32, 1, SHAPE(1), VALS(-2)), *y = make(KL_F32, 1, SHAPE(1));
  CHECK_OK(kl_interp_kernel(KL_OP_GELU)(g, gelu, &x, &y));
  CHECK_VALS(y, 1e-6, -0.04540231);
  kl_ir_graph_destroy(g);
}

/* ---- elementwise math (issue 4) -------------------------------------------------------- */

static void test_math(void) {
  /* round is half to even, whatever the sign; sign keeps nan and zero */
  kl_tensor *x = from(KL_F32, 1, SHAPE(8), VALS(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.5000002, NAN));
  kl_tensor *y = make(KL_F32, 1, SHAPE(8));
  CHECK_OK(kl_rt_unary(KL_UNARY_ROUND, 0, 0, x, y));
  CHECK_VALS(y, 0, -2, -2, 0, 0, 2, 2, 3, NAN);
  CHECK_OK(kl_rt_unary(KL_UNARY_SIGN, 0, 0, x, y));
  CHECK_VALS(y, 0, -1, -1, -1, 1, 1, 1, 1, NAN);
  kl_tensor *xi = from(KL_I8, 1, SHAPE(3), VALS(-128, 0, 127)), *yi = make(KL_I8, 1, SHAPE(3));
  CHECK_OK(kl_rt_unary(KL_UNARY_SIGN, 0, 0, xi, yi));
  CHECK_VALS(yi, 0, -1, 0, 1);
  CHECK_ERR(kl_rt_unary(KL_UNARY_FLOOR, 0, 0, xi, yi), KL_ERR_UNSUPPORTED, "floor");
  CHECK_ERR(kl_rt_unary(KL_UNARY_OP_COUNT, 0, 0, x, y), KL_ERR_INVALID_ARGUMENT, "unknown op");

  /* remainder follows the divisor's sign, fmod the dividend's; floats and integers agree */
  kl_tensor *a = from(KL_F32, 1, SHAPE(4), VALS(-7, 7, -7, 7));
  kl_tensor *b = from(KL_F32, 1, SHAPE(4), VALS(3, -3, -3, 3)), *r = make(KL_F32, 1, SHAPE(4));
  CHECK_OK(kl_rt_binary(KL_BINARY_REMAINDER, a, b, r));
  CHECK_VALS(r, 0, 2, -2, -1, 1);
  CHECK_OK(kl_rt_binary(KL_BINARY_FMOD, a, b, r));
  CHECK_VALS(r, 0, -1, 1, -1, 1);
  kl_tensor *ai = from(KL_I64, 1, SHAPE(4), VALS(-7, 7, -7, 7));
  kl_tensor *bi = from(KL_I64, 1, SHAPE(4), VALS(3, -3, -3, 3)), *ri = make(KL_I64, 1, SHAPE(4));
  CHECK_OK(kl_rt_binary(KL_BINARY_REMAINDER, ai, bi, ri));
  CHECK_VALS(ri, 0, 2, -2, -1, 1);
  CHECK_OK(kl_rt_binary(KL_BINARY_FMOD, ai, bi, ri));
  CHECK_VALS(ri, 0, -1, 1, -1, 1);
  /* INT64_MIN % -1 is 0 (C would trap); a zero divisor is an error */
  kl_tensor *mn = make(KL_I64, 1, SHAPE(1)), *m1 = from(KL_I64, 1, SHAPE(1), VALS(-1));
  ((int64_t *)mn->data)[0] = INT64_MIN;
  kl_tensor *r1 = make(KL_I64, 1, SHAPE(1));
  CHECK_OK(kl_rt_binary(KL_BINARY_REMAINDER, mn, m1, r1));
  CHECK(((int64_t *)r1->data)[0] == 0);
  kl_tensor *z = from(KL_I64, 1, SHAPE(4), VALS(1, 0, 1, 1));
  CHECK_ERR(kl_rt_binary(KL_BINARY_REMAINDER, ai, z, ri), KL_ERR_INVALID_ARGUMENT,
            "division by zero");

  /* shifts wrap at the dtype's width; out-of-range amounts give 0 (or -1 shifting right) */
  kl_tensor *u = from(KL_U8, 1, SHAPE(4), VALS(200, 1, 255, 3));
  kl_tensor *n = from(KL_U8, 1, SHAPE(4), VALS(1, 7, 8, 0)), *yu = make(KL_U8, 1, SHAPE(4));
  CHECK_OK(kl_rt_binary(KL_BINARY_SHL, u, n, yu));
  CHECK_VALS(yu, 0, 144, 128, 0, 3);
  CHECK_OK(kl_rt_binary(KL_BINARY_SHR, u, n, yu));
  CHECK_VALS(yu, 0, 100, 0, 0, 3);
  kl_tensor *s = from(KL_I32, 1, SHAPE(4), VALS(-9, -9, 9, -1));
  kl_tensor *k = from(KL_I32, 1, SHAPE(4), VALS(1, 40, 40, -1)), *ys = make(KL_I32, 1, SHAPE(4));
  CHECK_OK(kl_rt_binary(KL_BINARY_SHR, s, k, ys));
  CHECK_VALS(ys, 0, -5, -1, 0, -1);
  CHECK_ERR(kl_rt_binary(KL_BINARY_SHL, a, b, r), KL_ERR_UNSUPPORTED, "needs integer inputs");
}

/* ---- bitwise (issue 4) ------------------------------------------------------------------ */

static void test_bitwise(void) {
  /* two's complement bits, broadcasting a row; Bool stays logical */
  kl_tensor *a = from(KL_I32, 2, SHAPE(2, 3), VALS(12, -1, 5, -8, 0, 7));
  kl_tensor *b = from(KL_I32, 1, SHAPE(3), VALS(10, 6, -3)), *y = make(KL_I32, 2, SHAPE(2, 3));
  CHECK_OK(kl_rt_binary(KL_BINARY_AND, a, b, y));
  CHECK_VALS(y, 0, 8, 6, 5, 8, 0, 5);
  CHECK_OK(kl_rt_binary(KL_BINARY_OR, a, b, y));
  CHECK_VALS(y, 0, 14, -1, -3, -6, 6, -1);
  CHECK_OK(kl_rt_binary(KL_BINARY_XOR, a, b, y));
  CHECK_VALS(y, 0, 6, -7, -8, -14, 6, -6);
  CHECK_OK(kl_rt_unary(KL_UNARY_BITWISE_NOT, 0, 0, a, y));
  CHECK_VALS(y, 0, -13, 0, -6, 7, -1, -8);
  kl_tensor *u = from(KL_U8, 1, SHAPE(3), VALS(0, 200, 255)), *yu = make(KL_U8, 1, SHAPE(3));
  CHECK_OK(kl_rt_unary(KL_UNARY_BITWISE_NOT, 0, 0, u, yu));
  CHECK_VALS(yu, 0, 255, 55, 0);
  kl_tensor *p = from(KL_BOOL, 1, SHAPE(4), VALS(0, 0, 1, 1));
  kl_tensor *q = from(KL_BOOL, 1, SHAPE(4), VALS(0, 1, 0, 1)), *yb = make(KL_BOOL, 1, SHAPE(4));
  CHECK_OK(kl_rt_binary(KL_BINARY_XOR, p, q, yb));
  CHECK_VALS(yb, 0, 0, 1, 1, 0);
  CHECK_OK(kl_rt_binary(KL_BINARY_AND, p, q, yb));
  CHECK_VALS(yb, 0, 0, 0, 0, 1);
  CHECK_OK(kl_rt_unary(KL_UNARY_BITWISE_NOT, 0, 0, p, yb));
  CHECK_VALS(yb, 0, 1, 1, 0, 0);
  /* floats are refused, as errors */
  kl_tensor *f = from(KL_F32, 1, SHAPE(2), VALS(1, 2)), *yf = make(KL_F32, 1, SHAPE(2));
  CHECK_ERR(kl_rt_binary(KL_BINARY_OR, f, f, yf), KL_ERR_UNSUPPORTED, "bitwise_or: needs integer");
  CHECK_ERR(kl_rt_unary(KL_UNARY_BITWISE_NOT, 0, 0, f, yf), KL_ERR_UNSUPPORTED, "bitwise_not");
}

int main(void) {
  test_unary();
  test_cast();
  test_bitwise(); /* issue 4 */
  test_binary();
  test_where();
  test_matmul();
  test_conv2d();
  test_norm();
  test_pool();
  test_reduce();
  test_movement();
  test_adapters();
  test_math(); /* issue 4 */
  release_all();
  return check_finish();
}
