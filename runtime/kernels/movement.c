/* Data movement: copy (reshape and friends), permute, expand, cat, split, slice, constant pad
 * and gather. None of these look at values, so they move elements of dtype size bytes and work
 * for every dtype alike. Where the innermost run of elements is contiguous on both sides it is
 * moved with one memcpy; the outer dims are walked with the strided index helper. */
#include <string.h>

#include "kernels_internal.h"

kl_status kl_rt_copy(const kl_tensor *x, kl_tensor *y) {
  if (x->dtype != y->dtype || x->numel != y->numel)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "copy: input %s %s and output %s %s differ in dtype or element count",
                            kl_dtype_ir_name(x->dtype), KL_SHAPE(x), kl_dtype_ir_name(y->dtype),
                            KL_SHAPE(y));
  if (x->nbytes)
    memmove(y->data, x->data, x->nbytes);
  return NULL;
}

/* Copies into dense y from x read at element strides xs (over y's shape), starting at x0.
 * Rows of y's last dim are memcpy'd when x is contiguous along it. */
static void strided_gather(const kl_tensor *x, int64_t x0, const int64_t *xs, kl_tensor *y) {
  size_t es = kl_dtype_size(y->dtype);
  if (y->numel == 0)
    return;
  const char *px = x->data;
  char *py = y->data;
  if (y->rank == 0) {
    memcpy(py, px + (size_t)x0 * es, es);
    return;
  }
  int last = y->rank - 1;
  int64_t len = y->shape[last], rows = y->numel / len, sx = xs[last];
  int64_t idx[KL_MAX_RANK] = {0}, o = x0;
  for (int64_t r = 0; r < rows; r++) {
    char *dst = py + (size_t)(r * len) * es;
    if (sx == 1) {
      memcpy(dst, px + (size_t)o * es, (size_t)len * es);
    } else {
      for (int64_t j = 0; j < len; j++)
        memcpy(dst + (size_t)j * es, px + (size_t)(o + j * sx) * es, es);
    }
    kl_index_next(last, y->shape, idx, xs, &o, NULL, NULL, NULL, NULL);
  }
}

kl_status kl_rt_permute(const kl_tensor *x, const int *perm, kl_tensor *y) {
  bool ok = x->dtype == y->dtype && x->rank == y->rank;
  bool seen[KL_MAX_RANK] = {false};
  for (int d = 0; ok && d < x->rank; d++) {
    ok = perm[d] >= 0 && perm[d] < x->rank && !seen[perm[d]] && y->shape[d] == x->shape[perm[d]];
    if (ok)
      seen[perm[d]] = true;
  }
  if (!ok)
    return kl_status_create(
        KL_ERR_INVALID_ARGUMENT, "permute: output %s %s is not a permutation of input %s %s",
        kl_dtype_ir_name(y->dtype), KL_SHAPE(y), kl_dtype_ir_name(x->dtype), KL_SHAPE(x));
  int64_t xstr[KL_MAX_RANK], xs[KL_MAX_RANK];
  kl_dense_strides(x->shape, x->rank, xstr);
  for (int d = 0; d < y->rank; d++)
    xs[d] = xstr[perm[d]];
  strided_gather(x, 0, xs, y);
  return NULL;
}

kl_status kl_rt_expand(const kl_tensor *x, kl_tensor *y) {
  int64_t xs[KL_MAX_RANK];
  if (x->dtype != y->dtype || !kl_broadcast_strides(x, y->shape, y->rank, xs))
    return kl_status_create(
        KL_ERR_INVALID_ARGUMENT, "expand: input %s %s does not broadcast to output %s %s",
        kl_dtype_ir_name(x->dtype), KL_SHAPE(x), kl_dtype_ir_name(y->dtype), KL_SHAPE(y));
  strided_gather(x, 0, xs, y);
  return NULL;
}

/* Views y (or x) as (outer, dim, inner) around dim. */
static void around(const kl_tensor *t, int dim, int64_t *outer, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int d = 0; d < dim; d++)
    *outer *= t->shape[d];
  for (int d = dim + 1; d < t->rank; d++)
    *inner *= t->shape[d];
}

/* Checks that a and b agree on every dim except dim. */
static bool same_except(const kl_tensor *a, const kl_tensor *b, int dim) {
  if (a->rank != b->rank || a->dtype != b->dtype)
    return false;
  for (int d = 0; d < a->rank; d++)
    if (d != dim && a->shape[d] != b->shape[d])
      return false;
  return true;
}

kl_status kl_rt_cat(const kl_tensor *const *xs, int n, int dim, kl_tensor *y) {
  if (dim < 0 || dim >= y->rank || n < 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "cat: dim %d of output %s with %d inputs", dim,
                            KL_SHAPE(y), n);
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    if (!same_except(xs[i], y, dim))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "cat: input %d %s %s does not match output %s %s outside dim %d", i,
                              kl_dtype_ir_name(xs[i]->dtype), KL_SHAPE(xs[i]),
                              kl_dtype_ir_name(y->dtype), KL_SHAPE(y), dim);
    total += xs[i]->shape[dim];
  }
  if (total != y->shape[dim])
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "cat: inputs add up to %lld along dim %d but output %s has %lld",
                            (long long)total, dim, KL_SHAPE(y), (long long)y->shape[dim]);
  int64_t outer, inner;
  around(y, dim, &outer, &inner);
  size_t es = kl_dtype_size(y->dtype), row = (size_t)(y->shape[dim] * inner) * es;
  size_t at = 0; /* byte offset of input i's block within an output row */
  for (int i = 0; i < n; i++) {
    size_t chunk = (size_t)(xs[i]->shape[dim] * inner) * es; /* x_i (outer, chunk) */
    for (int64_t o = 0; o < outer && chunk; o++)
      memcpy((char *)y->data + (size_t)o * row + at, (const char *)xs[i]->data + (size_t)o * chunk,
             chunk);
    at += chunk;
  }
  return NULL;
}

kl_status kl_rt_split(const kl_tensor *x, int dim, kl_tensor *const *ys, int n) {
  if (dim < 0 || dim >= x->rank || n < 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "split: dim %d of input %s into %d outputs",
                            dim, KL_SHAPE(x), n);
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    if (!same_except(ys[i], x, dim))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "split: output %d %s %s does not match input %s %s outside dim %d", i,
                              kl_dtype_ir_name(ys[i]->dtype), KL_SHAPE(ys[i]),
                              kl_dtype_ir_name(x->dtype), KL_SHAPE(x), dim);
    total += ys[i]->shape[dim];
  }
  if (total != x->shape[dim])
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "split: outputs add up to %lld along dim %d but input %s has %lld",
                            (long long)total, dim, KL_SHAPE(x), (long long)x->shape[dim]);
  int64_t outer, inner;
  around(x, dim, &outer, &inner);
  size_t es = kl_dtype_size(x->dtype), row = (size_t)(x->shape[dim] * inner) * es, at = 0;
  for (int i = 0; i < n; i++) {
    size_t chunk = (size_t)(ys[i]->shape[dim] * inner) * es;
    for (int64_t o = 0; o < outer && chunk; o++)
      memcpy((char *)ys[i]->data + (size_t)o * chunk, (const char *)x->data + (size_t)o * row + at,
             chunk);
    at += chunk;
  }
  return NULL;
}

kl_status kl_rt_slice(const kl_tensor *x, int dim, int64_t start, int64_t step, kl_tensor *y) {
  if (dim < 0 || dim >= x->rank || !same_except(x, y, dim) || step == 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "slice: dim %d, step %lld of input %s %s cannot give output %s %s", dim,
                            (long long)step, kl_dtype_ir_name(x->dtype), KL_SHAPE(x),
                            kl_dtype_ir_name(y->dtype), KL_SHAPE(y));
  int64_t len = y->shape[dim], n = x->shape[dim];
  if (len > 0) {
    /* first and last index read must both lie in [0, n) (checked: step comes from a file) */
    int64_t last = 0;
    bool fits = kl_mul_i64(step, len - 1, &last) && kl_add_i64(last, start, &last);
    if (!fits || start < 0 || start >= n || last < 0 || last >= n)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "slice: start %lld, step %lld, length %lld leave dim %d of input "
                              "%s (size %lld)",
                              (long long)start, (long long)step, (long long)len, dim, KL_SHAPE(x),
                              (long long)n);
  }
  int64_t xstr[KL_MAX_RANK], xs[KL_MAX_RANK];
  kl_dense_strides(x->shape, x->rank, xstr);
  memcpy(xs, xstr, sizeof xs);
  xs[dim] = xstr[dim] * step;
  strided_gather(x, len > 0 ? start * xstr[dim] : 0, xs, y);
  return NULL;
}

kl_status kl_rt_constant_pad(const kl_tensor *x, const int64_t *pad, double value, kl_tensor *y) {
  bool ok = x->dtype == y->dtype && x->rank == y->rank;
  for (int d = 0; ok && d < x->rank; d++) {
    int64_t size;
    ok = kl_add_i64(x->shape[d], pad[2 * d], &size) && kl_add_i64(size, pad[2 * d + 1], &size) &&
         size == y->shape[d];
  }
  if (!ok)
    return kl_status_create(
        KL_ERR_INVALID_ARGUMENT, "constant_pad: padding input %s %s does not give output %s %s",
        kl_dtype_ir_name(x->dtype), KL_SHAPE(x), kl_dtype_ir_name(y->dtype), KL_SHAPE(y));
  size_t es = kl_dtype_size(y->dtype);
  if (y->numel == 0)
    return NULL;
  /* fill with value, then copy the overlap of x and y (negative pads crop x) */
  kl_dtype_store_f64(y->dtype, y->data, 0, value);
  for (int64_t i = 1; i < y->numel; i++)
    memcpy((char *)y->data + (size_t)i * es, y->data, es);
  int64_t lo_x[KL_MAX_RANK], lo_y[KL_MAX_RANK], cnt[KL_MAX_RANK], ov = 1;
  for (int d = 0; d < x->rank; d++) {
    int64_t before = pad[2 * d];
    lo_x[d] = before < 0 ? -before : 0;
    lo_y[d] = before > 0 ? before : 0;
    int64_t hi_x = x->shape[d] + (pad[2 * d + 1] < 0 ? pad[2 * d + 1] : 0);
    cnt[d] = hi_x - lo_x[d];
    if (cnt[d] <= 0)
      return NULL; /* nothing of x survives the crop */
    ov *= cnt[d];
  }
  if (x->rank == 0) {
    memcpy(y->data, x->data, es);
    return NULL;
  }
  int64_t xstr[KL_MAX_RANK], ystr[KL_MAX_RANK], xo = 0, yo = 0;
  kl_dense_strides(x->shape, x->rank, xstr);
  kl_dense_strides(y->shape, y->rank, ystr);
  for (int d = 0; d < x->rank; d++) {
    xo += lo_x[d] * xstr[d];
    yo += lo_y[d] * ystr[d];
  }
  int last = x->rank - 1;
  int64_t run = cnt[last], rows = ov / run, idx[KL_MAX_RANK] = {0};
  for (int64_t r = 0; r < rows; r++) {
    memcpy((char *)y->data + (size_t)yo * es, (const char *)x->data + (size_t)xo * es,
           (size_t)run * es);
    kl_index_next(last, cnt, idx, xstr, &xo, ystr, &yo, NULL, NULL);
  }
  return NULL;
}

kl_status kl_rt_gather(const kl_tensor *x, const kl_tensor *indices, int axis, bool allow_negative,
                       kl_tensor *y) {
  if (indices->dtype != KL_I32 && indices->dtype != KL_I64)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "gather: indices are %s, expected Int or Long",
                            kl_dtype_ir_name(indices->dtype));
  if (axis < 0 || axis >= x->rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "gather: axis %d is out of range for %s", axis,
                            KL_SHAPE(x));
  /* y = x.shape[:axis] + indices.shape + x.shape[axis+1:] */
  bool ok = y->dtype == x->dtype && y->rank == x->rank - 1 + indices->rank;
  for (int d = 0; ok && d < y->rank; d++) {
    int64_t want = d < axis                   ? x->shape[d]
                   : d < axis + indices->rank ? indices->shape[d - axis]
                                              : x->shape[d - indices->rank + 1];
    ok = y->shape[d] == want;
  }
  if (!ok)
    return kl_status_create(
        KL_ERR_INVALID_ARGUMENT,
        "gather: x %s %s with indices %s along axis %d cannot give output %s %s",
        kl_dtype_ir_name(x->dtype), KL_SHAPE(x), KL_SHAPE(indices), axis,
        kl_dtype_ir_name(y->dtype), KL_SHAPE(y));
  int64_t outer, inner, n = x->shape[axis];
  around(x, axis, &outer, &inner);
  size_t es = kl_dtype_size(x->dtype), chunk = (size_t)inner * es;
  int64_t n_idx = indices->numel;
  for (int64_t k = 0; k < n_idx; k++) { /* check every index before writing anything */
    int64_t i = kl_dtype_load_i64(indices->dtype, indices->data, (size_t)k);
    if ((i < 0 && !allow_negative) || i < -n || i >= n)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "gather: index %lld (at position %lld) is out of range for axis %d "
                              "of size %lld%s",
                              (long long)i, (long long)k, axis, (long long)n,
                              allow_negative ? "" : " (negative indices are not allowed)");
  }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < n_idx; k++) {
      int64_t i = kl_dtype_load_i64(indices->dtype, indices->data, (size_t)k);
      if (i < 0)
        i += n;
      if (chunk)
        memcpy((char *)y->data + (size_t)(o * n_idx + k) * chunk,
               (const char *)x->data + (size_t)(o * n + i) * chunk, chunk);
    }
  return NULL;
}
