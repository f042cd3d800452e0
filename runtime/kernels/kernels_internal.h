/* Helpers shared by the reference kernels in runtime/kernels/: error messages that name the op
 * and shapes, broadcast strides, and buffers of slow dtypes (f16, bf16, integers) widened to
 * double so one loop serves every dtype. Nothing here is part of the public runtime API. */
#ifndef KL_RUNTIME_KERNELS_INTERNAL_H
#define KL_RUNTIME_KERNELS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "../checked.h"
#include "../kernels.h"

/* A shape as "[2, 3]" in a buffer on the caller's stack. */
typedef struct kl_shape_str {
  char s[160];
} kl_shape_str;

static inline kl_shape_str kl_shape_str_of(const kl_tensor *t) {
  kl_shape_str r;
  kl_shape_format(t->shape, t->rank, r.s, sizeof r.s);
  return r;
}
#define KL_SHAPE(t) (kl_shape_str_of(t).s)

/* Element strides of a dense C-ordered shape (stride of dim d = product of later dims). */
static inline void kl_dense_strides(const int64_t *shape, int rank, int64_t *out_strides) {
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; d--) {
    out_strides[d] = s;
    s *= shape[d];
  }
}

/* Strides that read x as if broadcast (numpy rules, right-aligned) to out_shape of out_rank:
 * broadcast dims get stride 0. Returns false if x does not broadcast to that shape. */
static inline bool kl_broadcast_strides(const kl_tensor *x, const int64_t *out_shape, int out_rank,
                                        int64_t *out_strides) {
  if (x->rank > out_rank)
    return false;
  int64_t xs[KL_MAX_RANK];
  kl_dense_strides(x->shape, x->rank, xs);
  int off = out_rank - x->rank;
  for (int d = 0; d < out_rank; d++) {
    if (d < off) {
      out_strides[d] = 0;
      continue;
    }
    int64_t n = x->shape[d - off];
    if (n == out_shape[d])
      out_strides[d] = n == 1 ? 0 : xs[d - off];
    else if (n == 1)
      out_strides[d] = 0;
    else
      return false;
  }
  return true;
}

/* Advances a multi-index over shape[0..rank) (last dim fastest) and moves up to three offsets by
 * their strides; the caller stops after numel steps. */
static inline void kl_index_next(int rank, const int64_t *shape, int64_t *idx, const int64_t *s0,
                                 int64_t *o0, const int64_t *s1, int64_t *o1, const int64_t *s2,
                                 int64_t *o2) {
  for (int d = rank - 1; d >= 0; d--) {
    idx[d]++;
    if (o0)
      *o0 += s0[d];
    if (o1)
      *o1 += s1[d];
    if (o2)
      *o2 += s2[d];
    if (idx[d] < shape[d])
      return;
    if (o0)
      *o0 -= s0[d] * shape[d];
    if (o1)
      *o1 -= s1[d] * shape[d];
    if (o2)
      *o2 -= s2[d] * shape[d];
    idx[d] = 0;
  }
}

/* Loads all of t widened to double into a new malloc'd buffer (NULL when out of memory). */
static inline double *kl_load_all_f64(const kl_tensor *t) {
  double *buf = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *buf);
  if (!buf)
    return NULL;
  for (int64_t i = 0; i < t->numel; i++)
    buf[i] = kl_dtype_load_f64(t->dtype, t->data, (size_t)i);
  return buf;
}

/* Element i of t as a double: a direct read for f32/f64, the converter otherwise. */
static inline double kl_ld(const kl_tensor *t, int64_t i) {
  if (t->dtype == KL_F32)
    return ((const float *)t->data)[i];
  if (t->dtype == KL_F64)
    return ((const double *)t->data)[i];
  return kl_dtype_load_f64(t->dtype, t->data, (size_t)i);
}

static inline void kl_st(kl_tensor *t, int64_t i, double v) {
  if (t->dtype == KL_F32)
    ((float *)t->data)[i] = (float)v;
  else if (t->dtype == KL_F64)
    ((double *)t->data)[i] = v;
  else
    kl_dtype_store_f64(t->dtype, t->data, (size_t)i, v);
}

static inline kl_status kl_rt_oom(const char *op) {
  return kl_status_create(KL_ERR_OUT_OF_MEMORY, "%s: out of memory for a scratch buffer", op);
}

/* C (M, N) += A (M, K) @ B (K, N), rows lda/ldb/ldc elements apart (matmul.c; conv.c uses them). */
void kl_rt_gemm_f32(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                    int64_t ldb, float *C, int64_t ldc);
void kl_rt_gemm_f64(int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, const double *B,
                    int64_t ldb, double *C, int64_t ldc);

/* The direct f32 convolution (conv_depthwise.c) kl_rt_conv2d uses for depthwise convs (one input
 * channel per group) and narrow grouped ones. fits says whether it applies, from x's dtype, w's
 * shape and groups only; the conv2d step asks it of the whole conv and then splits the output
 * channels itself (its groups = 1 views of other convs would decide differently). The kernel
 * trusts operands kl_rt_conv2d has checked; it fails only for memory. epi (runtime/gemm.h, NULL
 * for none, its residual indexed like y's data) is applied to each output plane as it is done. */
bool kl_rt_conv2d_direct_fits(const kl_tensor *x, const kl_tensor *w, int64_t groups);
/* The shape part of fits: weights (Cout, Cin/groups, Kh, Kw) in groups. */
bool kl_rt_conv2d_direct_shape(const int64_t *w_shape, int64_t groups);
kl_status kl_rt_conv2d_direct_f32(const kl_tensor *x, const kl_tensor *w, const kl_tensor *bias,
                                  const kl_rt_conv2d_params *p, kl_tensor *y,
                                  const kl_sgemm_epilogue *epi);

/* The direct conv's AVX-512 path for depthwise planes at most 16 outputs wide
 * (conv_depthwise_flat.c): a plane's input split into its stride phases, its outputs computed
 * as consecutive vectors. When planes of shape s go this way (the caller checks the CPU has
 * AVX-512F), kl_dw_flat_f32 computes y (N, Cout, Ho, Wo) from x (N, Cin, H, W) with Cout / Cin
 * outputs per input channel, weights (Cout, 1, Kh, Kw), bias (NULL: none) and the fused
 * epilogue (NULL: none), with the bits of the other direct paths, and returns true; otherwise
 * it does nothing and returns false. */
typedef struct kl_dw_flat_shape {
  int64_t H, W, Kh, Kw, Ho, Wo, sh, sw, ph, pw, dh, dw;
} kl_dw_flat_shape;
bool kl_dw_flat_f32(const kl_dw_flat_shape *s, int64_t N, int64_t Cin, int64_t Cout,
                    const float *x, const float *w, const float *bias, float *y,
                    const kl_sgemm_epilogue *epi);
/* Per-thread scratch memory (scratch.c): at least n floats, 64-byte aligned, owned by the
 * calling thread and kept for its next call, or NULL when out of memory. A kernel that holds
 * its buffer while calling another kernel uses a slot of its own. */
typedef enum kl_scratch_slot {
  KL_SCRATCH_GEMM,     /* kl_sgemm_run's packed panels */
  KL_SCRATCH_WINOGRAD, /* a Winograd task's padded input and transforms (it calls the GEMM) */
  KL_SCRATCH_VEC,      /* vec_f32.c's users: attention's scores (it calls the GEMM) */
  KL_SCRATCH_CONV_COL, /* a conv step's patch matrix, shared by the tasks it runs */
  KL_SCRATCH_SLOTS
} kl_scratch_slot;
float *kl_rt_scratch(kl_scratch_slot slot, size_t n);

#endif
