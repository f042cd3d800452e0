/* Tensor allocation and reference counting. */
#include "tensor.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"

static size_t max_tensor_bytes = (size_t)16 << 30;

size_t kl_tensor_max_bytes(void) { return max_tensor_bytes; }
void kl_tensor_set_max_bytes(size_t max_bytes) { max_tensor_bytes = max_bytes; }

static kl_status check_shape(kl_dtype dtype, int rank, const int64_t *shape, int64_t *out_numel,
                             size_t *out_nbytes) {
  char buf[256];
  if (!kl_dtype_is_valid((int)dtype))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "invalid dtype %d", (int)dtype);
  if (rank < 0 || rank > KL_MAX_RANK)
    return kl_status_create(KL_ERR_LIMIT, "rank %d is outside 0..%d", rank, KL_MAX_RANK);
  for (int i = 0; i < rank; i++) {
    if (shape[i] < 0) {
      kl_shape_format(shape, rank, buf, sizeof buf);
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "shape %s has a negative dim", buf);
    }
  }
  int64_t numel;
  size_t nbytes;
  if (!kl_shape_numel(shape, rank, &numel) ||
      !kl_mul_size((size_t)numel, kl_dtype_size(dtype), &nbytes)) {
    kl_shape_format(shape, rank, buf, sizeof buf);
    return kl_status_create(KL_ERR_LIMIT, "shape %s: element count overflows", buf);
  }
  *out_numel = numel;
  *out_nbytes = nbytes;
  return NULL;
}

static kl_tensor *tensor_header(kl_dtype dtype, int rank, const int64_t *shape, int64_t numel,
                                size_t nbytes) {
  kl_tensor *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->dtype = dtype;
  t->rank = rank;
  if (rank > 0)
    memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
  t->numel = numel;
  t->nbytes = nbytes;
  t->refcount = 1;
  return t;
}

kl_status kl_tensor_create(kl_dtype dtype, int rank, const int64_t *shape,
                           kl_tensor **out_tensor) {
  int64_t numel;
  size_t nbytes;
  KL_RETURN_IF_ERROR(check_shape(dtype, rank, shape, &numel, &nbytes));
  if (nbytes > max_tensor_bytes) {
    char buf[256];
    kl_shape_format(shape, rank, buf, sizeof buf);
    return kl_status_create(KL_ERR_LIMIT, "tensor %s %s needs %zu bytes, over the limit of %zu",
                            kl_dtype_ir_name(dtype), buf, nbytes, max_tensor_bytes);
  }
  kl_tensor *t = tensor_header(dtype, rank, shape, numel, nbytes);
  if (!t)
    return kl_status_create(KL_ERR_OUT_OF_MEMORY, "out of memory allocating a tensor header");
  size_t alloc = (nbytes + 63) & ~(size_t)63;
  if (alloc == 0)
    alloc = 64;
  t->data = aligned_alloc(64, alloc);
  if (!t->data) {
    free(t);
    return kl_status_create(KL_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes", nbytes);
  }
  memset(t->data, 0, alloc);
  t->owns_data = true;
  *out_tensor = t;
  return NULL;
}

kl_status kl_tensor_wrap(kl_dtype dtype, int rank, const int64_t *shape, void *data,
                         size_t nbytes, kl_tensor **out_tensor) {
  int64_t numel;
  size_t want;
  KL_RETURN_IF_ERROR(check_shape(dtype, rank, shape, &numel, &want));
  if (want != nbytes)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "buffer of %zu bytes does not match shape (%zu bytes)", nbytes, want);
  kl_tensor *t = tensor_header(dtype, rank, shape, numel, nbytes);
  if (!t)
    return kl_status_create(KL_ERR_OUT_OF_MEMORY, "out of memory allocating a tensor header");
  t->data = data;
  *out_tensor = t;
  return NULL;
}

kl_status kl_tensor_clone(const kl_tensor *src, kl_tensor **out_tensor) {
  kl_tensor *t;
  KL_RETURN_IF_ERROR(kl_tensor_create(src->dtype, src->rank, src->shape, &t));
  if (src->nbytes)
    memcpy(t->data, src->data, src->nbytes);
  *out_tensor = t;
  return NULL;
}

kl_tensor *kl_tensor_retain(kl_tensor *t) {
  if (t)
    atomic_fetch_add_explicit((_Atomic int *)&t->refcount, 1, memory_order_relaxed);
  return t;
}

void kl_tensor_release(kl_tensor *t) {
  if (!t)
    return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&t->refcount, 1, memory_order_acq_rel) != 1)
    return;
  if (t->owns_data)
    free(t->data);
  free(t);
}

bool kl_tensor_same_shape(const kl_tensor *a, const kl_tensor *b) {
  if (a->rank != b->rank)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (a->shape[i] != b->shape[i])
      return false;
  return true;
}

void kl_shape_format(const int64_t *shape, int rank, char *buf, size_t size) {
  size_t n = 0;
  if (size == 0)
    return;
  buf[0] = '\0';
  n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "[");
  for (int i = 0; i < rank && n < size; i++)
    n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (n < size)
    snprintf(buf + n, size - n, "]");
}
