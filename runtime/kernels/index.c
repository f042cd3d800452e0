/* Indexing kernels: cumulative sum, scatter along an axis (aten::scatter / ONNX
 * ScatterElements), ScatterND and GatherND. Floats are combined in double and integers in
 * int64, so one loop serves every dtype; plain copies move raw element bytes, so Bool and
 * every other dtype scatter and gather unchanged. Every index is checked against its bound
 * before it is used, and negative indices count from the end, as ONNX specifies. */
#include <string.h>

#include "kernels_internal.h"

/* Index v along a dim of size n, with negatives counted from the end; false if out of range. */
static bool norm_index(int64_t v, int64_t n, int64_t *out) {
  if (v < 0)
    v += n;
  if (v < 0 || v >= n)
    return false;
  *out = v;
  return true;
}

static bool is_index_dtype(kl_dtype dt) {
  return dt == KL_I32 || dt == KL_I64;
}

/* ---- cumulative sum ---------------------------------------------------------------------- */

kl_status kl_rt_cumsum(const kl_tensor *x, int axis, bool exclusive, bool reverse, kl_tensor *y) {
  if (x->dtype != y->dtype || x->numel != y->numel || axis < 0 || axis >= (x->rank ? x->rank : 1))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "cumsum: x %s %s, y %s %s, axis %d",
                            kl_dtype_ir_name(x->dtype), KL_SHAPE(x), kl_dtype_ir_name(y->dtype),
                            KL_SHAPE(y), axis);
  /* x viewed as (outer, len, inner) */
  int64_t len = x->rank ? x->shape[axis] : 1, inner = 1, outer = 1;
  for (int d = 0; d < x->rank; d++) {
    if (d < axis)
      outer *= x->shape[d];
    else if (d > axis)
      inner *= x->shape[d];
  }
  bool is_float = kl_dtype_is_float(x->dtype);
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t in = 0; in < inner; in++) {
      double acc = 0.0;
      int64_t iacc = 0;
      for (int64_t k = 0; k < len; k++) {
        int64_t j = reverse ? len - 1 - k : k;
        int64_t i = (o * len + j) * inner + in;
        if (is_float) {
          double v = kl_ld(x, i);
          if (!exclusive)
            acc += v;
          kl_st(y, i, acc);
          if (exclusive)
            acc += v;
        } else {
          int64_t v = kl_dtype_load_i64(x->dtype, x->data, (size_t)i);
          if (!exclusive)
            iacc = (int64_t)((uint64_t)iacc + (uint64_t)v);
          kl_dtype_store_i64(y->dtype, y->data, (size_t)i, iacc);
          if (exclusive)
            iacc = (int64_t)((uint64_t)iacc + (uint64_t)v);
        }
      }
    }
  }
  return NULL;
}

/* ---- scatter ----------------------------------------------------------------------------- */

/* y[yi] = y[yi] (reduction) src[si]. */
static void combine(kl_tensor *y, int64_t yi, const kl_tensor *src, int64_t si,
                    kl_rt_scatter_reduce r) {
  size_t es = kl_dtype_size(y->dtype);
  if (r == KL_SCATTER_NONE) {
    memcpy((char *)y->data + (size_t)yi * es, (const char *)src->data + (size_t)si * es, es);
    return;
  }
  if (kl_dtype_is_float(y->dtype)) {
    double a = kl_ld(y, yi), b = kl_ld(src, si);
    double v = r == KL_SCATTER_ADD   ? a + b
               : r == KL_SCATTER_MUL ? a * b
               : r == KL_SCATTER_MAX ? (b > a || b != b ? b : a)
                                     : (b < a || b != b ? b : a);
    kl_st(y, yi, v);
    return;
  }
  int64_t a = kl_dtype_load_i64(y->dtype, y->data, (size_t)yi);
  int64_t b = kl_dtype_load_i64(src->dtype, src->data, (size_t)si);
  int64_t v = r == KL_SCATTER_ADD   ? (int64_t)((uint64_t)a + (uint64_t)b)
              : r == KL_SCATTER_MUL ? (int64_t)((uint64_t)a * (uint64_t)b)
              : r == KL_SCATTER_MAX ? (b > a ? b : a)
                                    : (b < a ? b : a);
  kl_dtype_store_i64(y->dtype, y->data, (size_t)yi, v);
}

kl_status kl_rt_scatter(const kl_tensor *data, const kl_tensor *index, const kl_tensor *src,
                        int axis, kl_rt_scatter_reduce reduction, kl_tensor *y) {
  if (data->dtype != y->dtype || data->dtype != src->dtype || data->numel != y->numel ||
      !is_index_dtype(index->dtype))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "scatter: data is %s, src %s, index %s and output %s",
                            kl_dtype_ir_name(data->dtype), kl_dtype_ir_name(src->dtype),
                            kl_dtype_ir_name(index->dtype), kl_dtype_ir_name(y->dtype));
  int rank = data->rank;
  if (index->rank != rank || src->rank != rank || axis < 0 || axis >= rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "scatter: data %s, index %s and src %s must have one rank; axis %d",
                            KL_SHAPE(data), KL_SHAPE(index), KL_SHAPE(src), axis);
  for (int d = 0; d < rank; d++)
    if (index->shape[d] > src->shape[d] || (d != axis && index->shape[d] > data->shape[d]))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "scatter: index %s is larger than src %s or data %s in dim %d",
                              KL_SHAPE(index), KL_SHAPE(src), KL_SHAPE(data), d);
  if (data->nbytes && y->data != data->data)
    memcpy(y->data, data->data, data->nbytes);
  int64_t ys[KL_MAX_RANK], ss[KL_MAX_RANK], idx[KL_MAX_RANK] = {0};
  kl_dense_strides(data->shape, rank, ys);
  kl_dense_strides(src->shape, rank, ss);
  for (int64_t i = 0; i < index->numel; i++) {
    int64_t at, yi = 0, si = 0;
    int64_t raw = kl_dtype_load_i64(index->dtype, index->data, (size_t)i);
    if (!norm_index(raw, data->shape[axis], &at))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "scatter: index %lld at element %lld is out of range for dim %d "
                              "of size %lld", (long long)raw, (long long)i, axis,
                              (long long)data->shape[axis]);
    for (int d = 0; d < rank; d++) {
      yi += (d == axis ? at : idx[d]) * ys[d];
      si += idx[d] * ss[d];
    }
    combine(y, yi, src, si, reduction);
    kl_index_next(rank, index->shape, idx, NULL, NULL, NULL, NULL, NULL, NULL);
  }
  return NULL;
}

kl_status kl_rt_scatter_nd(const kl_tensor *data, const kl_tensor *indices,
                           const kl_tensor *updates, kl_rt_scatter_reduce reduction,
                           kl_tensor *y) {
  if (data->dtype != y->dtype || data->dtype != updates->dtype || data->numel != y->numel ||
      !is_index_dtype(indices->dtype) || indices->rank < 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "ScatterND: data is %s, updates %s, indices %s %s and output %s",
                            kl_dtype_ir_name(data->dtype), kl_dtype_ir_name(updates->dtype),
                            kl_dtype_ir_name(indices->dtype), KL_SHAPE(indices),
                            kl_dtype_ir_name(y->dtype));
  if (indices->shape[indices->rank - 1] > data->rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "ScatterND: indices %s index more dims than data %s has",
                            KL_SHAPE(indices), KL_SHAPE(data));
  int k = (int)indices->shape[indices->rank - 1];
  int64_t n_idx = 1, slice = 1; /* n_idx: index tuples, the product of indices.shape[:-1] */
  for (int d = 0; d < indices->rank - 1; d++)
    n_idx *= indices->shape[d];
  for (int d = k; d < data->rank; d++)
    slice *= data->shape[d];
  int64_t n_upd;
  if (!kl_mul_i64(n_idx, slice, &n_upd) || n_upd != updates->numel)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "ScatterND: updates %s do not match indices %s into data %s",
                            KL_SHAPE(updates), KL_SHAPE(indices), KL_SHAPE(data));
  if (data->nbytes && y->data != data->data)
    memcpy(y->data, data->data, data->nbytes);
  int64_t ds[KL_MAX_RANK];
  kl_dense_strides(data->shape, data->rank, ds);
  for (int64_t n = 0; n < n_idx; n++) {
    int64_t base = 0;
    for (int j = 0; j < k; j++) {
      int64_t at, raw = kl_dtype_load_i64(indices->dtype, indices->data, (size_t)(n * k + j));
      if (!norm_index(raw, data->shape[j], &at))
        return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                "ScatterND: index %lld of tuple %lld is out of range for dim "
                                "%d of size %lld", (long long)raw, (long long)n, j,
                                (long long)data->shape[j]);
      base += at * ds[j];
    }
    for (int64_t e = 0; e < slice; e++)
      combine(y, base + e, updates, n * slice + e, reduction);
  }
  return NULL;
}

/* ---- GatherND ---------------------------------------------------------------------------- */

kl_status kl_rt_gather_nd(const kl_tensor *data, const kl_tensor *indices, int batch_dims,
                          kl_tensor *y) {
  if (data->dtype != y->dtype || !is_index_dtype(indices->dtype) || indices->rank < 1 ||
      batch_dims < 0 || batch_dims >= indices->rank || batch_dims > data->rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "GatherND: data %s %s, indices %s %s, batch_dims %d, output %s",
                            kl_dtype_ir_name(data->dtype), KL_SHAPE(data),
                            kl_dtype_ir_name(indices->dtype), KL_SHAPE(indices), batch_dims,
                            kl_dtype_ir_name(y->dtype));
  if (indices->shape[indices->rank - 1] > data->rank - batch_dims)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "GatherND: indices %s with batch_dims %d index past data %s",
                            KL_SHAPE(indices), batch_dims, KL_SHAPE(data));
  int k = (int)indices->shape[indices->rank - 1];
  if (batch_dims + k > data->rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "GatherND: indices %s with batch_dims %d index past data %s",
                            KL_SHAPE(indices), batch_dims, KL_SHAPE(data));
  int64_t batch = 1, per_batch = 1, slice = 1, data_batch = 1;
  for (int d = 0; d < batch_dims; d++) {
    if (data->shape[d] != indices->shape[d])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "GatherND: batch dim %d differs between data %s and indices %s", d,
                              KL_SHAPE(data), KL_SHAPE(indices));
    batch *= data->shape[d];
  }
  for (int d = batch_dims; d < indices->rank - 1; d++)
    per_batch *= indices->shape[d];
  for (int d = batch_dims + k; d < data->rank; d++)
    slice *= data->shape[d];
  for (int d = batch_dims; d < data->rank; d++)
    data_batch *= data->shape[d];
  int64_t n_out;
  if (!kl_mul_i64(batch, per_batch, &n_out) || !kl_mul_i64(n_out, slice, &n_out) ||
      n_out != y->numel)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "GatherND: output %s does not hold data %s gathered by indices %s",
                            KL_SHAPE(y), KL_SHAPE(data), KL_SHAPE(indices));
  int64_t ds[KL_MAX_RANK];
  kl_dense_strides(data->shape, data->rank, ds);
  size_t es = kl_dtype_size(data->dtype);
  for (int64_t b = 0; b < batch; b++) {
    for (int64_t n = 0; n < per_batch; n++) {
      int64_t t = b * per_batch + n, base = b * data_batch;
      for (int j = 0; j < k; j++) {
        int64_t at, raw = kl_dtype_load_i64(indices->dtype, indices->data, (size_t)(t * k + j));
        if (!norm_index(raw, data->shape[batch_dims + j], &at))
          return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "GatherND: index %lld of tuple %lld is out of range for dim "
                                  "%d of size %lld", (long long)raw, (long long)t,
                                  batch_dims + j, (long long)data->shape[batch_dims + j]);
        base += at * ds[batch_dims + j];
      }
      if (slice > 0)
        memcpy((char *)y->data + (size_t)(t * slice) * es,
               (const char *)data->data + (size_t)base * es, (size_t)slice * es);
    }
  }
  return NULL;
}
