/* Tensor types of the IR: construction, comparison, element counts and the printed form
 * "Float(1, N, *)" shared by the text printer and every error message. */
#include <stdio.h>
#include <string.h>

#include "../runtime/checked.h"
#include "ir.h"

kl_ir_type kl_ir_type_make(kl_dtype dtype, int rank, const int64_t *dims) {
  kl_ir_type t;
  memset(&t, 0, sizeof t);
  KL_ASSERT(rank >= 0 && rank <= KL_MAX_RANK);
  t.dtype = dtype;
  t.rank = rank;
  for (int i = 0; i < rank; i++)
    t.dims[i] = kl_ir_dim_static(dims[i]);
  return t;
}

kl_ir_type kl_ir_type_of_tensor(const kl_tensor *t) {
  return kl_ir_type_make(t->dtype, t->rank, t->shape);
}

bool kl_ir_type_is_static(const kl_ir_type *t) {
  for (int i = 0; i < t->rank; i++)
    if (!kl_ir_dim_is_static(t->dims[i]))
      return false;
  return true;
}

bool kl_ir_type_equal(const kl_ir_type *a, const kl_ir_type *b) {
  if (a->dtype != b->dtype || a->rank != b->rank)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (!kl_ir_dim_equal(a->dims[i], b->dims[i]))
      return false;
  return true;
}

bool kl_ir_type_shape(const kl_ir_type *t, int64_t *out_shape) {
  for (int i = 0; i < t->rank; i++) {
    if (!kl_ir_dim_is_static(t->dims[i]))
      return false;
    out_shape[i] = t->dims[i].size;
  }
  return true;
}

bool kl_ir_type_numel(const kl_ir_type *t, int64_t *out_numel) {
  int64_t shape[KL_MAX_RANK];
  return kl_ir_type_shape(t, shape) && kl_shape_numel(shape, t->rank, out_numel);
}

void kl_ir_type_format(const kl_ir_graph *g, const kl_ir_type *t, char *buf, size_t size) {
  if (!size)
    return;
  if (t->rank < 0 || t->rank > KL_MAX_RANK) {
    snprintf(buf, size, "%s(<invalid rank %d>)", kl_dtype_ir_name(t->dtype), t->rank);
    return;
  }
  size_t n = (size_t)snprintf(buf, size, "%s(", kl_dtype_ir_name(t->dtype));
  for (int i = 0; i < t->rank && n < size; i++) {
    const char *sep = i ? ", " : "";
    kl_ir_dim d = t->dims[i];
    if (kl_ir_dim_is_static(d))
      n += (size_t)snprintf(buf + n, size - n, "%s%lld", sep, (long long)d.size);
    else if (d.sym == KL_DIM_UNKNOWN)
      n += (size_t)snprintf(buf + n, size - n, "%s*", sep);
    else if (g && d.sym >= 0 && d.sym < g->n_symbols)
      n += (size_t)snprintf(buf + n, size - n, "%s%s", sep, g->symbols[d.sym].name);
    else
      n += (size_t)snprintf(buf + n, size - n, "%s$%d", sep, (int)d.sym);
  }
  if (n < size)
    snprintf(buf + n, size - n, ")");
}

const char *kl_ir_attr_kind_name(kl_ir_attr_kind kind) {
  static const char *const names[KL_ATTR_KIND_COUNT] = {
      [KL_ATTR_INT] = "int",         [KL_ATTR_FLOAT] = "float",   [KL_ATTR_STRING] = "string",
      [KL_ATTR_INTS] = "ints",       [KL_ATTR_FLOATS] = "floats", [KL_ATTR_STRINGS] = "strings",
      [KL_ATTR_DTYPE] = "dtype",     [KL_ATTR_TENSOR] = "tensor",
  };
  return (kind >= 0 && kind < KL_ATTR_KIND_COUNT) ? names[kind] : "?";
}
