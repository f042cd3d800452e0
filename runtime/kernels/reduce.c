/* Reductions (sum, mean, max, min, product) over any set of dims. x is walked once in memory order;
 * each element's output slot comes from strides that are zero on the reduced dims, so one loop
 * serves every combination of dims. Float sums accumulate in double; integer sums, maxima and
 * minima stay exact in int64 (integer mean truncates toward zero). */
#include <math.h>
#include <string.h>

#include "kernels_internal.h"

static const char *reduce_name(kl_rt_reduce_op op) {
  switch (op) {
  case KL_REDUCE_SUM: return "sum";
  case KL_REDUCE_MEAN: return "mean";
  case KL_REDUCE_MAX: return "amax";
  case KL_REDUCE_MIN: return "amin";
  case KL_REDUCE_PROD: return "prod";
  }
  return "reduce";
}

kl_status kl_rt_reduce(kl_rt_reduce_op op, const kl_tensor *x, const bool *reduce_dim,
                       kl_tensor *y) {
  const char *name = reduce_name(op);
  if ((unsigned)op > KL_REDUCE_PROD)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "reduce: unknown op %d", (int)op);
  /* integer sums widen to Long, as PyTorch's do; otherwise the dtype is kept */
  bool widened = !kl_dtype_is_float(x->dtype) && y->dtype == KL_I64;
  if (x->dtype != y->dtype && !widened)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: input is %s but output is %s", name,
                            kl_dtype_ir_name(x->dtype), kl_dtype_ir_name(y->dtype));
  /* out_stride[d]: where a step along dim d of x moves in y (0 on reduced dims). */
  int64_t kept = 1, group = 1, out_stride[KL_MAX_RANK];
  for (int d = x->rank - 1; d >= 0; d--) {
    if (reduce_dim[d]) {
      out_stride[d] = 0;
      group *= x->shape[d];
    } else {
      out_stride[d] = kept;
      kept *= x->shape[d];
    }
  }
  if (kept != y->numel)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: reducing %s keeps %lld elements but output %s has %lld", name,
                            KL_SHAPE(x), (long long)kept, KL_SHAPE(y), (long long)y->numel);
  /* float max and min of nothing are -inf and +inf (as ONNX has it); integers have no such value */
  if ((op == KL_REDUCE_MAX || op == KL_REDUCE_MIN) && group == 0 && kept > 0 &&
      !kl_dtype_is_float(x->dtype))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: reducing over an empty dim of %s has no identity", name,
                            KL_SHAPE(x));
  bool is_float = kl_dtype_is_float(x->dtype);
  size_t n_out = (size_t)(kept ? kept : 1);
  double *acc = is_float ? malloc(n_out * sizeof *acc) : NULL;    /* acc (kept,) */
  int64_t *iacc = is_float ? NULL : malloc(n_out * sizeof *iacc); /* iacc (kept,) */
  if (!acc && !iacc)
    return kl_rt_oom(name);
  for (int64_t o = 0; o < kept; o++) {
    if (is_float)
      acc[o] = op == KL_REDUCE_MAX   ? -INFINITY
               : op == KL_REDUCE_MIN ? INFINITY
               : op == KL_REDUCE_PROD ? 1.0
                                      : 0.0;
    else
      iacc[o] = op == KL_REDUCE_MAX   ? INT64_MIN
                : op == KL_REDUCE_MIN ? INT64_MAX
                : op == KL_REDUCE_PROD ? 1
                                       : 0;
  }
  int64_t idx[KL_MAX_RANK] = {0}, o = 0;
  for (int64_t i = 0; i < x->numel; i++) {
    if (is_float) {
      double v = kl_ld(x, i);
      double *a = &acc[o];
      if (op == KL_REDUCE_SUM || op == KL_REDUCE_MEAN)
        *a += v;
      else if (op == KL_REDUCE_PROD)
        *a *= v;
      else if (v != v || (op == KL_REDUCE_MAX ? v > *a : v < *a))
        *a = *a != *a ? *a : v; /* nan sticks */
    } else {
      int64_t v = kl_dtype_load_i64(x->dtype, x->data, (size_t)i);
      int64_t *a = &iacc[o];
      if (op == KL_REDUCE_SUM || op == KL_REDUCE_MEAN)
        *a = (int64_t)((uint64_t)*a + (uint64_t)v);
      else if (op == KL_REDUCE_PROD)
        *a = (int64_t)((uint64_t)*a * (uint64_t)v);
      else if (op == KL_REDUCE_MAX ? v > *a : v < *a)
        *a = v;
    }
    kl_index_next(x->rank, x->shape, idx, out_stride, &o, NULL, NULL, NULL, NULL);
  }
  for (int64_t k = 0; k < kept; k++) {
    if (is_float)
      kl_st(y, k, op == KL_REDUCE_MEAN ? acc[k] / (double)group : acc[k]);
    else
      kl_dtype_store_i64(y->dtype, y->data, (size_t)k,
                         op == KL_REDUCE_MEAN ? (group ? iacc[k] / group : 0) : iacc[k]);
  }
  free(acc);
  free(iacc);
  return NULL;
}
