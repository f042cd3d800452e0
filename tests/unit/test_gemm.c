/* The blocked GEMM (runtime/gemm.h) over odd sizes that reach every edge path: partial
 * micro-tiles in M and N, a K that is not a multiple of the k block, transposed B, operands
 * packed ahead of time, accumulation, row and column biases, rows or columns computed by
 * separate calls, and the fused epilogues (residual, clamp, silu; nan passed through). Registered
 * once per micro-kernel (KILN_SGEMM_ISA), so each ISA path the CPU has is covered. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "runtime/gemm.h"

static uint32_t rng = 12345;
static float rnd(void) {
  rng = rng * 1664525u + 1013904223u;
  return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static float *random_floats(size_t n) {
  float *p = malloc(n * sizeof *p + 4);
  for (size_t i = 0; i < n; i++)
    p[i] = rnd();
  return p;
}

static bool same_bits(const float *a, const float *b, size_t n) {
  return memcmp(a, b, n * sizeof *a) == 0;
}

static void check_case(int64_t M, int64_t N, int64_t K, bool trans_b) {
  float *A = random_floats((size_t)(M * K)), *B = random_floats((size_t)(K * N));
  float *C0 = random_floats((size_t)(M * N));
  size_t mn = (size_t)(M * N);
  float *C = malloc(mn * sizeof *C + 4), *D = malloc(mn * sizeof *D + 4);
  kl_sgemm_operand a = {A, K, false}, b = {B, trans_b ? K : N, trans_b};

  /* against a double-precision reference, with the error bound of a K-term sum */
  CHECK(kl_sgemm(M, N, K, a, NULL, b, NULL, C, N, false));
  bool close = true;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double ref = 0;
      for (int64_t k = 0; k < K; k++)
        ref += (double)A[i * K + k] * (trans_b ? B[j * K + k] : B[k * N + j]);
      if (fabs(ref - C[i * N + j]) > 1e-6 * (double)K + 1e-6)
        close = false;
    }
  if (!close)
    fprintf(stderr, "M=%lld N=%lld K=%lld trans_b=%d: result off\n", (long long)M, (long long)N,
            (long long)K, trans_b);
  CHECK(close);

  /* packed ahead of time: the same bits */
  float *pa = malloc(kl_sgemm_packed_a_floats(M, K) * sizeof(float) + 4);
  float *pb = malloc(kl_sgemm_packed_b_floats(K, N) * sizeof(float) + 4);
  kl_sgemm_pack_a(M, K, a, pa);
  kl_sgemm_pack_b(K, N, b, pb);
  CHECK(kl_sgemm(M, N, K, a, pa, b, NULL, D, N, false) && same_bits(C, D, mn));
  CHECK(kl_sgemm(M, N, K, a, NULL, b, pb, D, N, false) && same_bits(C, D, mn));
  CHECK(kl_sgemm(M, N, K, a, pa, b, pb, D, N, false) && same_bits(C, D, mn));

  /* columns in pieces of KL_SGEMM_NR, and rows one at a time: the same bits */
  for (int64_t n0 = 0; n0 < N; n0 += KL_SGEMM_NR)
    CHECK(kl_sgemm_cols(M, N, K, a, NULL, b, pb, D, N, false, n0,
                        n0 + KL_SGEMM_NR < N ? n0 + KL_SGEMM_NR : N));
  CHECK(same_bits(C, D, mn));
  for (int64_t i = 0; i < M; i++) {
    kl_sgemm_operand row = {A + i * K, K, false};
    CHECK(kl_sgemm(1, N, K, row, NULL, b, NULL, D + i * N, N, false));
  }
  CHECK(same_bits(C, D, mn));

  /* accumulate adds onto what C held */
  memcpy(D, C0, mn * sizeof *D);
  CHECK(kl_sgemm(M, N, K, a, NULL, b, NULL, D, N, true));
  bool added = true;
  for (size_t i = 0; i < mn; i++)
    if (fabsf(D[i] - (C0[i] + C[i])) > 1e-5f * (float)K + 1e-5f)
      added = false;
  CHECK(added);

  /* biases per row and per column start the sums; tiles of one micro-tile each (A packed per
   * tile row block, B per panel) give the bits of one call */
  float *rb = random_floats((size_t)M), *cb = random_floats((size_t)N);
  kl_sgemm_problem pr = {.M = M, .N = N, .K = K, .a = a, .b = b, .row_bias = rb,
                         .col_bias = cb, .C = C, .ldc = N};
  CHECK(kl_sgemm_run(&pr, 0, M, 0, N));
  bool biased = true;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double ref = (double)rb[i] + cb[j];
      for (int64_t k = 0; k < K; k++)
        ref += (double)A[i * K + k] * (trans_b ? B[j * K + k] : B[k * N + j]);
      if (fabs(ref - C[i * N + j]) > 1e-6 * (double)K + 1e-5)
        biased = false;
    }
  CHECK(biased);
  pr.C = D;
  for (int64_t m0 = 0; m0 < M; m0 += KL_SGEMM_MR)
    for (int64_t n0 = 0; n0 < N; n0 += KL_SGEMM_NR)
      CHECK(kl_sgemm_run(&pr, m0, m0 + KL_SGEMM_MR, n0, n0 + KL_SGEMM_NR));
  CHECK(same_bits(C, D, mn));
  pr.packed_a = pa, pr.packed_b = pb;
  memset(D, 0, mn * sizeof *D);
  for (int64_t m0 = 0; m0 < M; m0 += 2 * KL_SGEMM_MR)
    CHECK(kl_sgemm_run(&pr, m0, m0 + 2 * KL_SGEMM_MR, 0, N));
  CHECK(same_bits(C, D, mn));

  /* epilogues: with a residual (one nan in it) and each activation, tile by tile and whole,
   * against the plain product followed by the epilogue's arithmetic here */
  float *R = random_floats(mn);
  R[mn / 2] = NAN;
  static const struct {
    kl_sgemm_act act;
    float lo, hi;
    bool residual;
  } epis[] = {{KL_SGEMM_ACT_CLAMP, 0.0f, INFINITY, true}, {KL_SGEMM_ACT_CLAMP, 0.0f, 6.0f, false},
              {KL_SGEMM_ACT_CLAMP, -0.25f, 0.5f, true}, {KL_SGEMM_ACT_SILU, 0, 0, false},
              {KL_SGEMM_ACT_SILU, 0, 0, true},          {KL_SGEMM_ACT_NONE, 0, 0, true}};
  pr.packed_a = NULL, pr.packed_b = NULL, pr.C = C;
  CHECK(kl_sgemm_run(&pr, 0, M, 0, N)); /* C: the plain biased product */
  for (size_t t = 0; t < sizeof epis / sizeof epis[0]; t++) {
    kl_sgemm_epilogue e = {epis[t].residual ? R : NULL, epis[t].act, epis[t].lo, epis[t].hi};
    kl_sgemm_problem pe = pr;
    pe.C = D;
    pe.epilogue = &e;
    CHECK(kl_sgemm_run(&pe, 0, M, 0, N));
    bool ok = true;
    for (size_t i = 0; i < mn; i++) {
      float v = e.residual ? C[i] + R[i] : C[i];
      if (e.act == KL_SGEMM_ACT_CLAMP && v == v)
        v = fminf(fmaxf(v, e.lo), e.hi);
      double want = e.act == KL_SGEMM_ACT_SILU ? (double)v / (1.0 + exp(-(double)v)) : v;
      double got = D[i];
      if (isnan(want) != isnan(got) || (!isnan(want) && fabs(got - want) > 1e-6 * fabs(want) +
                                                                          1e-7))
        ok = false;
    }
    if (!ok)
      fprintf(stderr, "M=%lld N=%lld K=%lld: epilogue %zu off\n", (long long)M, (long long)N,
              (long long)K, t);
    CHECK(ok);
    float *E = malloc(mn * sizeof *E + 4);
    pe.C = E;
    for (int64_t m0 = 0; m0 < M; m0 += KL_SGEMM_MR)
      for (int64_t n0 = 0; n0 < N; n0 += KL_SGEMM_NR)
        CHECK(kl_sgemm_run(&pe, m0, m0 + KL_SGEMM_MR, n0, n0 + KL_SGEMM_NR));
    CHECK(same_bits(D, E, mn));
    free(E);
  }

  free(A), free(B), free(C0), free(C), free(D), free(pa), free(pb), free(rb), free(cb), free(R);
}

int main(void) {
  fprintf(stderr, "micro-kernel: %s\n", kl_sgemm_isa());
  static const int64_t sizes[] = {1, 3, 7, 17, 63, 65};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
    for (size_t j = 0; j < sizeof sizes / sizeof *sizes; j++) {
      check_case(sizes[i], sizes[j], sizes[(i + j) % 6], false);
      check_case(sizes[j], sizes[i], 127, true);
    }
  check_case(13, 70, 300, false); /* K past one k block */
  check_case(6, 32, 513, true);   /* whole tiles, K = 2 blocks + 1 */
  check_case(2, 5, 0, false);     /* an empty sum */
  /* few rows under a wide B, which is read in place: edge panels of 12 and 1 columns, K past
   * one k block */
  check_case(17, 300, 65, false);
  check_case(48, 257, 300, false);
  return check_finish();
}
