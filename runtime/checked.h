/* Overflow-checked size arithmetic. Every size or shape read from a file goes through these
 * before anything is allocated: they return false (and leave *out unspecified) on overflow. */
#ifndef KL_RUNTIME_CHECKED_H
#define KL_RUNTIME_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool kl_add_i64(int64_t a, int64_t b, int64_t *out) {
  return !__builtin_add_overflow(a, b, out);
}
static inline bool kl_mul_i64(int64_t a, int64_t b, int64_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}
static inline bool kl_add_size(size_t a, size_t b, size_t *out) {
  return !__builtin_add_overflow(a, b, out);
}
static inline bool kl_mul_size(size_t a, size_t b, size_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}

/* Product of n non-negative dims; false if any dim is negative or the product overflows. */
static inline bool kl_shape_numel(const int64_t *dims, int n, int64_t *out) {
  int64_t p = 1;
  for (int i = 0; i < n; i++) {
    if (dims[i] < 0 || !kl_mul_i64(p, dims[i], &p))
      return false;
  }
  *out = p;
  return true;
}

#endif
