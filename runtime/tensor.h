/* kl_tensor: a dense, C-ordered (row-major) n-dimensional array.
 *
 * A tensor is reference counted (kl_tensor_retain/kl_tensor_release) and either owns its data
 * (allocated 64-byte aligned by kl_tensor_create) or borrows it (kl_tensor_wrap: the caller
 * keeps the buffer alive, e.g. an mmapped .kir file owned by a graph). Tensors are immutable
 * once shared: kernels write only into output tensors the caller allocated for them. */
#ifndef KL_RUNTIME_TENSOR_H
#define KL_RUNTIME_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "status.h"

#define KL_MAX_RANK 32 /* the most dims a tensor or IR type may have */

typedef struct kl_tensor {
  kl_dtype dtype;
  int rank;
  int64_t shape[KL_MAX_RANK];
  int64_t numel;  /* product of shape; 1 for rank 0 */
  size_t nbytes;  /* numel * dtype size */
  void *data;     /* 64-byte aligned when owned; may be NULL when nbytes == 0 */
  int refcount;
  bool owns_data;
} kl_tensor;

/* Allocates a zero-filled tensor. Checks rank, dims >= 0 and the byte size for overflow
 * before allocating; refuses more than max_bytes (see kl_tensor_max_bytes). */
kl_status kl_tensor_create(kl_dtype dtype, int rank, const int64_t *shape, kl_tensor **out_tensor);
/* A tensor that borrows data (nbytes must equal the shape's byte size). */
kl_status kl_tensor_wrap(kl_dtype dtype, int rank, const int64_t *shape, void *data, size_t nbytes,
                         kl_tensor **out_tensor);
/* A new tensor owning a copy of src's data. */
kl_status kl_tensor_clone(const kl_tensor *src, kl_tensor **out_tensor);
kl_tensor *kl_tensor_retain(kl_tensor *t);
void kl_tensor_release(kl_tensor *t); /* NULL is fine; frees at refcount zero */

/* The largest tensor kl_tensor_create will allocate (default 16 GiB); a limit, not a hint. */
size_t kl_tensor_max_bytes(void);
void kl_tensor_set_max_bytes(size_t max_bytes);

bool kl_tensor_same_shape(const kl_tensor *a, const kl_tensor *b);
/* Writes "[2, 3, 4]" into buf (always NUL-terminated, truncated to size). */
void kl_shape_format(const int64_t *shape, int rank, char *buf, size_t size);

#endif
