/* The f32 fast paths of runtime/kernels/ (vec_f32.c behind softmax, log_softmax, layer norm,
 * batch norm; the blocked attention of attention.c) against their double-precision reference:
 * the same kernel run on f64 copies of the same inputs, whose loops compute in double. Sizes
 * are odd on purpose (1, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, ...) so that every
 * whole-vector loop, unrolled pair and masked remainder of each ISA is reached; masks come
 * float, Bool and broadcast, with causal, fully masked rows, inf and nan inputs. The exp of
 * vmath.h is checked in ulps on its own. Registered once per ISA (KILN_VEC_ISA and
 * KILN_SGEMM_ISA set alike; an ISA the CPU lacks falls back to one it has, and the test says
 * which ran). Tolerances are tighter than the kernels' contract (rtol 1e-4, atol 1e-5), so a
 * lost term or a sum in the wrong order shows. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "runtime/gemm.h"
#include "runtime/kernels.h"
#include "runtime/kernels/vec_f32.h"
#include "runtime/kernels/vmath.h"
#include "runtime/steps.h"

static uint32_t rng = 2024;
static double uniform(void) { /* [-1, 1) */
  rng = rng * 1664525u + 1013904223u;
  return (double)(rng >> 8) / (double)(1u << 23) - 1.0;
}

static kl_tensor *made[256];
static int n_made;

static void release_all(void) {
  for (int i = 0; i < n_made; i++)
    kl_tensor_release(made[i]);
  n_made = 0;
}

static kl_tensor *make(kl_dtype dt, int rank, const int64_t *shape) {
  kl_tensor *t = NULL;
  if (n_made == (int)(sizeof made / sizeof made[0]))
    release_all();
  kl_status s = kl_tensor_create(dt, rank, shape, &t);
  if (s) {
    fprintf(stderr, "tensor_create: %s\n", kl_status_message(s));
    exit(2);
  }
  made[n_made++] = t;
  return t;
}

static float *f32(const kl_tensor *t) { return (float *)t->data; }

/* An f32 tensor of uniform values in [lo, hi). */
static kl_tensor *rand_f32(int rank, const int64_t *shape, double lo, double hi) {
  kl_tensor *t = make(KL_F32, rank, shape);
  for (int64_t i = 0; i < t->numel; i++)
    f32(t)[i] = (float)(lo + (hi - lo) * (uniform() + 1.0) / 2.0);
  return t;
}

/* The same values as f64 (exactly). */
static kl_tensor *as_f64(const kl_tensor *t) {
  if (!t || t->dtype != KL_F32)
    return (kl_tensor *)t;
  kl_tensor *d = make(KL_F64, t->rank, t->shape);
  for (int64_t i = 0; i < t->numel; i++)
    ((double *)d->data)[i] = f32(t)[i];
  return d;
}

static kl_tensor *like(kl_dtype dt, const kl_tensor *t) { return make(dt, t->rank, t->shape); }

/* got (f32) against want (f64): nan where want is nan, else |got - want| <= atol + rtol |want|;
 * reports the first miss under what. */
static bool close_to(const kl_tensor *got, const kl_tensor *want, double rtol, double atol,
                     const char *what) {
  for (int64_t i = 0; i < got->numel; i++) {
    double g = f32(got)[i], w = ((const double *)want->data)[i];
    bool ok = isnan(w) ? isnan(g) : (g == w || fabs(g - w) <= atol + rtol * fabs(w));
    if (!ok) {
      fprintf(stderr, "  %s: element %lld is %.9g, the double reference %.9g\n", what,
              (long long)i, g, w);
      return false;
    }
  }
  return true;
}

static const int64_t sizes[] = {1, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, 1025, 2113};
enum { N_SIZES = sizeof sizes / sizeof sizes[0] };

/* ---- exp ------------------------------------------------------------------------------------ */

/* ulps between a float result and the exact value, for normal results */
static double ulps(float got, double exact) {
  double ulp = ldexp(1.0, ilogb(exact) - 23);
  return fabs((double)got - exact) / ulp;
}

typedef void (*exp_fn)(const float *x, float *y, int n);

static void exp_c(const float *x, float *y, int n) {
  for (int i = 0; i < n; i++)
    y[i] = kl_vm_expf(x[i]);
}

#ifdef KL_VMATH_X86
__attribute__((target("avx512f"))) static void exp_avx512(const float *x, float *y, int n) {
  for (int i = 0; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, kl_vm_exp512(_mm512_loadu_ps(x + i)));
}

__attribute__((target("avx2,fma"))) static void exp_avx2(const float *x, float *y, int n) {
  for (int i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, kl_vm_exp256(_mm256_loadu_ps(x + i)));
}
#endif

static void check_exp(const char *name, exp_fn fn) {
  enum { N = 1 << 16 };
  static float x[N], y[N];
  double worst = 0.0;
  bool specials = true;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < N; i++) /* all of [-103, 88.7], then finer sweeps near 0 */
      x[i] = round == 0 ? (float)(-103.0 + 191.7 * i / N) : (float)(uniform() * 10.0 / round);
    fn(x, y, N);
    for (int i = 0; i < N; i++) {
      double e = exp((double)x[i]);
      if (e >= 0x1p-126 && e <= 0x1.fffffep127)
        worst = fmax(worst, ulps(y[i], e));
      else if (fabs((double)y[i] - e) > 0x1p-148) /* subnormal: within two of the last unit */
        worst = fmax(worst, 99.0);
    }
  }
  static const float special_in[16] = {NAN, INFINITY, -INFINITY, -104.0f, -103.98f, 88.73f,
                                       88.72f, 0.0f, -0.0f, 1e-30f, -87.5f, -100.0f, 1.0f,
                                       -1.0f, 1000.0f, -1000.0f};
  float out[16];
  fn(special_in, out, 16);
  specials = isnan(out[0]) && out[1] == INFINITY && out[2] == 0.0f && out[3] == 0.0f &&
             out[4] == 0.0f && out[5] == INFINITY && isfinite(out[6]) && out[6] > 3.3e38f &&
             out[7] == 1.0f && out[8] == 1.0f && out[9] == 1.0f && out[14] == INFINITY &&
             out[15] == 0.0f && ulps(out[12], exp(1.0)) <= 2.0;
  if (worst > 2.0 || !specials)
    fprintf(stderr, "  exp (%s): worst %.2f ulp, special values %s\n", name, worst,
            specials ? "right" : "wrong");
  CHECK(worst <= 2.0);
  CHECK(specials);
}

static void test_exp(void) {
  check_exp("C", exp_c);
#ifdef KL_VMATH_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    check_exp("avx512", exp_avx512);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    check_exp("avx2", exp_avx2);
#endif
}

/* ---- softmax, log_softmax --------------------------------------------------------------- */

static void check_softmax(int rank, const int64_t *shape, int dim, kl_tensor *x) {
  kl_tensor *xd = as_f64(x);
  for (int lg = 0; lg < 2; lg++) {
    kl_tensor *y = like(KL_F32, x), *yd = like(KL_F64, x);
    CHECK_OK(kl_rt_softmax(x, dim, lg, y));
    CHECK_OK(kl_rt_softmax(xd, dim, lg, yd));
    char what[96];
    snprintf(what, sizeof what, "%s dim %d of [%lld, %lld, %lld]", lg ? "log_softmax" : "softmax",
             dim, (long long)shape[0], (long long)(rank > 1 ? shape[1] : 1),
             (long long)(rank > 2 ? shape[2] : 1));
    CHECK(close_to(y, yd, 2e-6, lg ? 2e-6 : 1e-8, what));
  }
}

static void test_softmax(void) {
  for (int s = 0; s < N_SIZES; s++) {
    int64_t n = sizes[s];
    /* rows along the last dim; then along a middle dim with 1, 3 or 17 columns beside it */
    int64_t rows[2] = {3, n};
    kl_tensor *x = rand_f32(2, rows, -8.0, 8.0);
    check_softmax(2, rows, 1, x);
    for (int c = 0; c < 3; c++) {
      int64_t inner = (int64_t[]){3, 17, 33}[c], shp[3] = {2, n, inner};
      if (n > 200 && inner > 3)
        continue;
      check_softmax(3, shp, 1, rand_f32(3, shp, -8.0, 8.0));
    }
    /* large values (the max must be subtracted), -inf, a row of -inf, nan, +inf */
    kl_tensor *odd = rand_f32(2, (int64_t[]){6, n}, 1000.0, 1010.0);
    float *p = f32(odd);
    p[n + n / 2] = -INFINITY;
    for (int64_t j = 0; j < n; j++)
      p[2 * n + j] = -INFINITY;
    p[3 * n + n / 3] = NAN;
    p[4 * n + n - 1] = INFINITY;
    p[5 * n] = -INFINITY;
    check_softmax(2, (int64_t[]){6, n}, 1, odd);
    /* the same rows as columns, normalized along dim 1 */
    kl_tensor *t = make(KL_F32, 3, (int64_t[]){1, n, 6});
    for (int64_t i = 0; i < 6; i++)
      for (int64_t j = 0; j < n; j++)
        f32(t)[j * 6 + i] = p[i * n + j];
    check_softmax(3, (int64_t[]){1, n, 6}, 1, t);
    release_all();
  }
  /* rank 0 and a dim of 1 */
  kl_tensor *x0 = make(KL_F32, 0, NULL), *y0 = make(KL_F32, 0, NULL);
  f32(x0)[0] = 3.0f;
  CHECK_OK(kl_rt_softmax(x0, 0, false, y0));
  CHECK(f32(y0)[0] == 1.0f);
  CHECK_OK(kl_rt_softmax(x0, 0, true, y0));
  CHECK(f32(y0)[0] == 0.0f);
  release_all();
}

/* ---- layer norm, batch norm --------------------------------------------------------------- */

static void test_layer_norm(void) {
  for (int s = 0; s < N_SIZES; s++) {
    int64_t d = sizes[s], shp[2] = {4, d};
    for (int variant = 0; variant < 4; variant++) { /* weight and bias, each or not */
      double mid = variant == 3 ? 1000.0 : 0.0; /* a mean far from 0 against the spread */
      kl_tensor *x = rand_f32(2, shp, mid - 3.0, mid + 3.0);
      if (variant == 2)
        f32(x)[d + d / 2] = NAN; /* row 1 all nan */
      kl_tensor *w = variant & 1 ? rand_f32(1, &d, 0.5, 2.0) : NULL;
      kl_tensor *b = variant & 2 ? rand_f32(1, &d, -1.0, 1.0) : NULL;
      kl_tensor *y = like(KL_F32, x), *yd = like(KL_F64, x);
      CHECK_OK(kl_rt_layer_norm(x, w, b, 1, 1e-5, y));
      CHECK_OK(kl_rt_layer_norm(as_f64(x), as_f64(w), as_f64(b), 1, 1e-5, yd));
      char what[64];
      snprintf(what, sizeof what, "layer_norm d %lld variant %d", (long long)d, variant);
      CHECK(close_to(y, yd, 2e-6, 2e-6, what));
    }
    /* a constant row: variance 0, output bias exactly (eps keeps it finite) */
    kl_tensor *c = make(KL_F32, 2, shp), *y = make(KL_F32, 2, shp);
    for (int64_t i = 0; i < c->numel; i++)
      f32(c)[i] = 7.25f;
    CHECK_OK(kl_rt_layer_norm(c, NULL, NULL, 1, 1e-5, y));
    bool zero = true;
    for (int64_t i = 0; i < y->numel; i++)
      zero = zero && f32(y)[i] == 0.0f;
    CHECK(zero);
    release_all();
  }
  /* over the last two dims */
  int64_t shp[3] = {3, 5, 13};
  kl_tensor *x = rand_f32(3, shp, -2.0, 2.0), *w = rand_f32(2, shp + 1, -1.0, 1.0);
  kl_tensor *y = like(KL_F32, x), *yd = like(KL_F64, x);
  CHECK_OK(kl_rt_layer_norm(x, w, NULL, 2, 1e-3, y));
  CHECK_OK(kl_rt_layer_norm(as_f64(x), as_f64(w), NULL, 2, 1e-3, yd));
  CHECK(close_to(y, yd, 2e-6, 2e-6, "layer_norm over 2 dims"));
  release_all();
}

static void test_batch_norm(void) {
  for (int s = 0; s < 8; s++) {
    int64_t hw = sizes[s], C = 3, shp[3] = {2, C, hw};
    kl_tensor *x = rand_f32(3, shp, -3.0, 3.0), *w = rand_f32(1, &C, 0.5, 2.0);
    kl_tensor *b = rand_f32(1, &C, -1.0, 1.0), *m = rand_f32(1, &C, -1.0, 1.0);
    kl_tensor *v = rand_f32(1, &C, 0.1, 2.0);
    kl_tensor *y = like(KL_F32, x), *yd = like(KL_F64, x);
    CHECK_OK(kl_rt_batch_norm(x, w, b, m, v, 1e-5, y));
    CHECK_OK(kl_rt_batch_norm(as_f64(x), as_f64(w), as_f64(b), as_f64(m), as_f64(v), 1e-5, yd));
    CHECK(close_to(y, yd, 1e-6, 1e-6, "batch_norm"));
    release_all();
  }
}

/* ---- attention ------------------------------------------------------------------------------ */

static kl_threadpool *pool3;

/* y = attention(q, k, v, mask) in f32 against the f64 reference; then the same rows computed in
 * uneven pieces by kl_rt_attention_rows, and by the step on a pool of 3 threads, bit for bit. */
static void check_attention(kl_tensor *q, kl_tensor *k, kl_tensor *v, kl_tensor *mask,
                            double scale, bool causal, const char *what) {
  int nb = q->rank - 2;
  int64_t ys[KL_MAX_RANK];
  for (int d = 0; d < nb; d++)
    ys[d] = q->shape[d] > k->shape[d] ? q->shape[d] : k->shape[d];
  ys[nb] = q->shape[nb];
  ys[nb + 1] = v->shape[nb + 1];
  kl_tensor *y = make(KL_F32, nb + 2, ys), *yd = make(KL_F64, nb + 2, ys);
  CHECK_OK(kl_rt_attention(q, k, v, mask, scale, causal, y));
  CHECK_OK(kl_rt_attention(as_f64(q), as_f64(k), as_f64(v), as_f64(mask), scale, causal, yd));
  CHECK(close_to(y, yd, 1e-5, 1e-6, what));

  int64_t Ev = ys[nb + 1], rows = Ev ? y->numel / Ev : 0;
  kl_tensor *y2 = make(KL_F32, nb + 2, ys);
  for (int64_t r = 0; r < rows;) {
    int64_t n = 1 + (int64_t)((uniform() + 1.0) * 20.0);
    n = n < rows - r ? n : rows - r;
    CHECK_OK(kl_rt_attention_rows(q, k, v, mask, scale, causal, y2, r, r + n));
    r += n;
  }
  bool same = memcmp(y->data, y2->data, y->nbytes) == 0;
  if (pool3) {
    kl_tensor *y3 = make(KL_F32, nb + 2, ys);
    kl_step_env env = {pool3};
    kl_step_attention_params p = {.scale = scale, .is_causal = causal};
    kl_tensor *in[4] = {q, k, v, mask};
    CHECK_OK(kl_step_attention(&env, &p, in, mask ? 4 : 3, &y3, 1));
    same = same && memcmp(y->data, y3->data, y->nbytes) == 0;
  }
  if (!same)
    fprintf(stderr, "  %s: rows computed in pieces differ from the whole\n", what);
  CHECK(same);
}

/* A Bool tensor, true with probability 3/4. */
static kl_tensor *rand_bool(int rank, const int64_t *shape) {
  kl_tensor *t = make(KL_BOOL, rank, shape);
  for (int64_t i = 0; i < t->numel; i++)
    ((uint8_t *)t->data)[i] = uniform() > -0.5;
  return t;
}

static void test_attention(void) {
  static const int64_t Ls[] = {1, 3, 17, 65, 129}, Ss[] = {1, 7, 16, 33, 127};
  static const int64_t Es[] = {1, 3, 16, 17, 64};
  for (int a = 0; a < 5; a++)
    for (int b = 0; b < 5; b++)
      for (int m = 0; m < 8; m++) {
        int64_t L = Ls[a], S = Ss[b], E = Es[(a + b + m) % 5], Ev = Es[(a + 2 * b + m + 1) % 5];
        int64_t qs[3] = {2, L, E}, ks[3] = {m % 2 ? 1 : 2, S, E}, vs[3] = {m % 2 ? 1 : 2, S, Ev};
        kl_tensor *q = rand_f32(3, qs, -2.0, 2.0), *k = rand_f32(3, ks, -2.0, 2.0);
        kl_tensor *v = rand_f32(3, vs, -1.0, 1.0), *mask = NULL;
        static const char *kinds[] = {"none",       "float (L, S)",  "float (1, S)",
                                      "float (L, 1)", "Bool (L, S)", "Bool (S)",
                                      "Bool (L, 1)",  "Bool (2, L, S)"};
        switch (m) {
        case 1: mask = rand_f32(2, (int64_t[]){L, S}, -3.0, 3.0); break;
        case 2: mask = rand_f32(2, (int64_t[]){1, S}, -3.0, 3.0); break;
        case 3: mask = rand_f32(2, (int64_t[]){L, 1}, -3.0, 3.0); break;
        case 4: mask = rand_bool(2, (int64_t[]){L, S}); break;
        case 5: mask = rand_bool(1, &S); break;
        case 6: mask = rand_bool(2, (int64_t[]){L, 1}); break;
        case 7: mask = rand_bool(3, (int64_t[]){2, L, S}); break;
        }
        bool causal = (a + b + m) % 3 == 0;
        char what[128];
        snprintf(what, sizeof what, "attention L %lld S %lld E %lld Ev %lld mask %s%s",
                 (long long)L, (long long)S, (long long)E, (long long)Ev, kinds[m],
                 causal ? " causal" : "");
        check_attention(q, k, v, mask, 1.0 / sqrt((double)E), causal, what);
        release_all();
      }
}

/* Masked rows, inf and nan, empty dims, and several query blocks per batch matrix. */
static void test_attention_edges(void) {
  int64_t L = 9, S = 33, E = 17, Ev = 5;
  int64_t qs[2] = {L, E}, ks[2] = {S, E}, vs[2] = {S, Ev}, ms[2] = {L, S};
  kl_tensor *q = rand_f32(2, qs, -1, 1), *k = rand_f32(2, ks, -1, 1), *v = rand_f32(2, vs, -1, 1);
  /* Bool: row 2 fully masked (nan); float: row 4 all -inf (nan), row 5 one +inf (nan) */
  kl_tensor *mb = rand_bool(2, ms), *mf = rand_f32(2, ms, -1, 1);
  for (int64_t j = 0; j < S; j++) {
    ((uint8_t *)mb->data)[2 * S + j] = 0;
    f32(mf)[4 * S + j] = -INFINITY;
  }
  f32(mf)[5 * S + 3] = INFINITY;
  check_attention(q, k, v, mb, 0.25, false, "Bool mask, a row fully masked");
  check_attention(q, k, v, mf, 0.25, false, "float mask, rows of -inf and +inf");
  /* causal, and key 0 masked for row 0: row 0 has no key left */
  ((uint8_t *)mb->data)[0] = 0;
  check_attention(q, k, v, mb, 0.25, true, "causal with row 0 fully masked");
  kl_tensor *y = make(KL_F32, 2, (int64_t[]){L, Ev});
  CHECK_OK(kl_rt_attention(q, k, v, mb, 0.25, true, y));
  CHECK(isnan(f32(y)[0]) && isnan(f32(y)[2 * Ev]) && !isnan(f32(y)[Ev]));
  /* nan in q row 3; nan in k row 20 (dropped by causal for queries < 20); nan in v row 30
   * (weight 0 for the queries that cannot see it, but 0 * nan is nan for every row) */
  kl_tensor *qn = rand_f32(2, qs, -1, 1), *kn = rand_f32(2, ks, -1, 1);
  f32(qn)[3 * E + 1] = NAN;
  f32(kn)[20 * E] = NAN;
  check_attention(qn, kn, v, NULL, 0.5, true, "nan in q and k");
  CHECK_OK(kl_rt_attention(qn, kn, v, NULL, 0.5, true, y));
  CHECK(isnan(f32(y)[3 * Ev]) && !isnan(f32(y)[4 * Ev]));
  kl_tensor *vn = rand_f32(2, vs, -1, 1);
  f32(vn)[30 * Ev] = NAN;
  check_attention(q, k, vn, NULL, 0.5, true, "nan in v");
  CHECK_OK(kl_rt_attention(q, k, vn, NULL, 0.5, true, y));
  CHECK(isnan(f32(y)[0]) && !isnan(f32(y)[1]));
  /* E = 0 (uniform weights), S = 0 (no keys: zeros) */
  check_attention(make(KL_F32, 2, (int64_t[]){L, 0}), make(KL_F32, 2, (int64_t[]){S, 0}), v,
                  NULL, 1.0, false, "E = 0");
  check_attention(q, make(KL_F32, 2, (int64_t[]){0, E}), make(KL_F32, 2, (int64_t[]){0, Ev}),
                  NULL, 1.0, false, "S = 0");
  release_all();
  /* more keys than one score block holds rows for: 3 blocks of query rows, causal or not */
  int64_t Lb = 70, Sb = 1100;
  kl_tensor *qb = rand_f32(2, (int64_t[]){Lb, 16}, -1, 1);
  kl_tensor *kb = rand_f32(2, (int64_t[]){Sb, 16}, -1, 1);
  kl_tensor *vb = rand_f32(2, (int64_t[]){Sb, 7}, -1, 1);
  check_attention(qb, kb, vb, NULL, 0.25, false, "S 1100");
  check_attention(qb, kb, vb, rand_bool(1, &Sb), 0.25, true, "S 1100 causal, Bool mask");
  /* a range outside the rows is an error; an empty one only checks */
  kl_tensor *yb = make(KL_F32, 2, (int64_t[]){Lb, 7});
  CHECK_ERR(kl_rt_attention_rows(qb, kb, vb, NULL, 1.0, false, yb, 60, 71),
            KL_ERR_INVALID_ARGUMENT, "rows [60, 71)");
  CHECK_OK(kl_rt_attention_rows(qb, kb, vb, NULL, 1.0, false, yb, 0, 0));
  CHECK_ERR(kl_rt_attention_rows(qb, vb, vb, NULL, 1.0, false, yb, 0, 0),
            KL_ERR_INVALID_ARGUMENT, "last dim");
  release_all();
}

int main(void) {
  const char *want = getenv("KILN_VEC_ISA");
  printf("vector ISA: %s (KILN_VEC_ISA=%s), GEMM: %s\n", kl_vec_f32()->name, want ? want : "",
         kl_sgemm_isa());
  CHECK_OK(kl_threadpool_create(3, &pool3));
  test_exp();
  test_softmax();
  test_layer_norm();
  test_batch_norm();
  test_attention();
  test_attention_edges();
  kl_threadpool_destroy(pool3);
  return check_finish();
}
