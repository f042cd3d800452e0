/* Elementwise kernels of two and three inputs with numpy broadcasting: arithmetic, comparisons
 * (kl_rt_binary) and selection (kl_rt_where). Broadcasting is done with stride-0 dims: the
 * output is walked row by row (its last dim), and each input contributes a row pointer and an
 * inner stride (0 or 1), so the common cases (same shape, scalar, bias row) run tight loops.
 * Floats compute in double (f32 rounds once at the store); integers compute exactly in int64. */
#include <math.h>
#include <string.h>

#include "kernels_internal.h"

static const char *binary_name(kl_rt_binary_op op) {
  static const char *const names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                      "eq",  "ne",  "lt",  "le",  "gt",  "ge",
                                      /* elementwise math (issue 4) */
                                      "remainder", "fmod", "bitwise_left_shift",
                                      "bitwise_right_shift",
                                      /* bitwise (issue 4) */
                                      "bitwise_and", "bitwise_or", "bitwise_xor"};
  _Static_assert(sizeof names / sizeof names[0] == KL_BINARY_OP_COUNT, "one name per binary op");
  return (unsigned)op < sizeof names / sizeof names[0] ? names[op] : "binary";
}

static bool is_compare(kl_rt_binary_op op) { return op >= KL_BINARY_EQ && op <= KL_BINARY_GE; }
static bool is_shift(kl_rt_binary_op op) { return op == KL_BINARY_SHL || op == KL_BINARY_SHR; }
static bool is_bitwise(kl_rt_binary_op op) { return op >= KL_BINARY_AND && op <= KL_BINARY_XOR; }

/* Python's %: fmod, moved into the divisor's sign when the signs differ (torch.remainder). */
static inline double remainder_f64(double a, double b) {
  double r = fmod(a, b);
  if (r != 0 && (r < 0) != (b < 0))
    r += b;
  return r;
}

static inline double binary_f64(kl_rt_binary_op op, double a, double b) {
  switch (op) {
  case KL_BINARY_ADD: return a + b;
  case KL_BINARY_SUB: return a - b;
  case KL_BINARY_MUL: return a * b;
  case KL_BINARY_DIV: return a / b;
  case KL_BINARY_POW: return pow(a, b);
  /* torch.maximum/minimum propagate nan from either side */
  case KL_BINARY_MAX: return a != a || b != b ? a + b : (a > b ? a : b);
  case KL_BINARY_MIN: return a != a || b != b ? a + b : (a < b ? a : b);
  case KL_BINARY_EQ: return a == b;
  case KL_BINARY_NE: return a != b;
  case KL_BINARY_LT: return a < b;
  case KL_BINARY_LE: return a <= b;
  case KL_BINARY_GT: return a > b;
  case KL_BINARY_GE: return a >= b;
  case KL_BINARY_REMAINDER: return remainder_f64(a, b);
  case KL_BINARY_FMOD: return fmod(a, b);
  case KL_BINARY_SHL:
  case KL_BINARY_SHR:
  case KL_BINARY_AND:
  case KL_BINARY_OR:
  case KL_BINARY_XOR:
  case KL_BINARY_OP_COUNT: break; /* shifts and bitwise ops take integers only (checked before) */
  }
  return 0;
}

/* Integer arithmetic wraps through uint64_t (defined behaviour); errors are reported through
 * *err: 1 division by zero, 2 a negative exponent. */
static inline int64_t binary_i64(kl_rt_binary_op op, int64_t a, int64_t b, int *err) {
  switch (op) {
  case KL_BINARY_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
  case KL_BINARY_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
  case KL_BINARY_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
  case KL_BINARY_DIV:
    if (b == 0) {
      *err = 1;
      return 0;
    }
    if (b == -1)
      return (int64_t)(0 - (uint64_t)a); /* INT64_MIN / -1 wraps instead of trapping */
    return a / b;
  case KL_BINARY_POW: {
    if (b < 0) {
      if (a == 1 || a == -1)
        return (b & 1) ? a : 1;
      *err = 2;
      return 0;
    }
    uint64_t r = 1, base = (uint64_t)a;
    for (uint64_t e = (uint64_t)b; e; e >>= 1) {
      if (e & 1)
        r *= base;
      base *= base;
    }
    return (int64_t)r;
  }
  case KL_BINARY_MAX: return a > b ? a : b;
  case KL_BINARY_MIN: return a < b ? a : b;
  case KL_BINARY_EQ: return a == b;
  case KL_BINARY_NE: return a != b;
  case KL_BINARY_LT: return a < b;
  case KL_BINARY_LE: return a <= b;
  case KL_BINARY_GT: return a > b;
  case KL_BINARY_GE: return a >= b;
  case KL_BINARY_REMAINDER:
  case KL_BINARY_FMOD: {
    if (b == 0) {
      *err = 1;
      return 0;
    }
    if (b == -1)
      return 0; /* INT64_MIN % -1 traps in C; the remainder is 0 for every a */
    int64_t r = a % b; /* C: the dividend's sign */
    if (op == KL_BINARY_REMAINDER && r != 0 && (r < 0) != (b < 0))
      r += b;
    return r;
  }
  /* Shifts by a negative amount or by 64 or more (where C is undefined) give 0, or -1 for a
   * negative a shifted right; between the dtype's width and 63 the store truncates to 0. */
  case KL_BINARY_SHL: return b < 0 || b >= 64 ? 0 : (int64_t)((uint64_t)a << b);
  case KL_BINARY_SHR: return b < 0 || b >= 64 ? (a < 0 ? -1 : 0) : a >> b;
  /* Bitwise on the sign-extended (or zero-extended) int64: the store keeps the dtype's bits,
   * and Bool's 0/1 stays 0/1. */
  case KL_BINARY_AND: return a & b;
  case KL_BINARY_OR: return a | b;
  case KL_BINARY_XOR: return a ^ b;
  case KL_BINARY_OP_COUNT: break;
  }
  return 0;
}

/* Row iteration over y: for each output row (last dim), the element offsets of each input's
 * row start; inner strides are the last entries of the stride arrays. */
typedef struct bcast_iter {
  int rank;
  int64_t shape[KL_MAX_RANK];
  int64_t s[3][KL_MAX_RANK]; /* element strides of each input over y's shape, 0 if broadcast */
  int64_t rows, row_len;
  int64_t idx[KL_MAX_RANK]; /* the current row's index (last dim unused) */
  int64_t o[3];             /* each input's element offset at the current row's start */
} bcast_iter;

static kl_status bcast_setup(const char *name, const kl_tensor *const *xs, int n_x,
                             const kl_tensor *y, bcast_iter *it) {
  memset(it, 0, sizeof *it);
  it->rank = y->rank;
  memcpy(it->shape, y->shape, sizeof y->shape);
  for (int i = 0; i < n_x; i++) {
    if (!kl_broadcast_strides(xs[i], y->shape, y->rank, it->s[i]))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "%s: input %d of shape %s does not broadcast to output shape %s",
                              name, i, KL_SHAPE(xs[i]), KL_SHAPE(y));
  }
  if (y->rank == 0) {
    it->rows = 1;
    it->row_len = 1;
    for (int i = 0; i < 3; i++)
      it->s[i][0] = 0;
    it->shape[0] = 1;
    it->rank = 1;
  } else {
    it->row_len = y->shape[y->rank - 1];
    it->rows = it->row_len ? y->numel / it->row_len : 0;
  }
  return NULL;
}

/* Moves the iterator to the next output row, updating each input's row offset. */
static inline void bcast_next(bcast_iter *it) {
  kl_index_next(it->rank - 1, it->shape, it->idx, it->s[0], &it->o[0], it->s[1], &it->o[1],
                it->s[2], &it->o[2]);
}

kl_status kl_rt_binary(kl_rt_binary_op op, const kl_tensor *a, const kl_tensor *b, kl_tensor *y) {
  if ((unsigned)op >= KL_BINARY_OP_COUNT)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "binary: unknown op %d", (int)op);
  const char *name = binary_name(op);
  if (a->dtype != b->dtype)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: input dtypes differ (%s and %s)", name,
                            kl_dtype_ir_name(a->dtype), kl_dtype_ir_name(b->dtype));
  kl_dtype want = is_compare(op) ? KL_BOOL : a->dtype;
  if (y->dtype != want)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: output is %s, expected %s", name,
                            kl_dtype_ir_name(y->dtype), kl_dtype_ir_name(want));
  if (is_shift(op) && (kl_dtype_is_float(a->dtype) || a->dtype == KL_BOOL))
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s: needs integer inputs, got %s", name,
                            kl_dtype_ir_name(a->dtype));
  if (is_bitwise(op) && kl_dtype_is_float(a->dtype))
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s: needs integer or Bool inputs, got %s", name,
                            kl_dtype_ir_name(a->dtype));
  const kl_tensor *xs[2] = {a, b};
  bcast_iter it;
  KL_RETURN_IF_ERROR(bcast_setup(name, xs, 2, y, &it));
  int last = it.rank - 1;
  int64_t sa = it.s[0][last], sb = it.s[1][last], len = it.row_len;

  if (a->dtype == KL_F32 && !is_compare(op) && op != KL_BINARY_POW) {
    const float *pa = a->data, *pb = b->data; /* a, b broadcast to y */
    float *py = y->data;                      /* y (rows, row_len) */
    for (int64_t r = 0; r < it.rows; r++) {
      int64_t oy = r * len;
      const float *ra = pa + it.o[0], *rb = pb + it.o[1];
      float *ry = py + oy;
      if (op == KL_BINARY_ADD && sa == 1 && sb == 1) {
        for (int64_t j = 0; j < len; j++)
          ry[j] = ra[j] + rb[j];
      } else if (op == KL_BINARY_ADD && sa == 1 && sb == 0) {
        for (int64_t j = 0; j < len; j++)
          ry[j] = ra[j] + rb[0];
      } else if (op == KL_BINARY_MUL && sa == 1 && sb == 1) {
        for (int64_t j = 0; j < len; j++)
          ry[j] = ra[j] * rb[j];
      } else {
        for (int64_t j = 0; j < len; j++)
          ry[j] = (float)binary_f64(op, ra[j * sa], rb[j * sb]);
      }
      bcast_next(&it);
    }
    return NULL;
  }
  if (a->dtype == KL_F64) {
    const double *pa = a->data, *pb = b->data;
    for (int64_t r = 0; r < it.rows; r++) {
      int64_t oy = r * len;
      for (int64_t j = 0; j < len; j++) {
        double v = binary_f64(op, pa[it.o[0] + j * sa], pb[it.o[1] + j * sb]);
        kl_dtype_store_f64(y->dtype, y->data, (size_t)(oy + j), v);
      }
      bcast_next(&it);
    }
    return NULL;
  }
  if (kl_dtype_is_float(a->dtype)) { /* f32 comparisons and pow, f16, bf16 */
    for (int64_t r = 0; r < it.rows; r++) {
      int64_t oy = r * len;
      for (int64_t j = 0; j < len; j++) {
        double va = kl_dtype_load_f64(a->dtype, a->data, (size_t)(it.o[0] + j * sa));
        double vb = kl_dtype_load_f64(b->dtype, b->data, (size_t)(it.o[1] + j * sb));
        kl_dtype_store_f64(y->dtype, y->data, (size_t)(oy + j), binary_f64(op, va, vb));
      }
      bcast_next(&it);
    }
    return NULL;
  }
  int err = 0;
  int64_t bad_a = 0, bad_b = 0;
  for (int64_t r = 0; r < it.rows; r++) {
    int64_t oy = r * len;
    for (int64_t j = 0; j < len && !err; j++) {
      int64_t va = kl_dtype_load_i64(a->dtype, a->data, (size_t)(it.o[0] + j * sa));
      int64_t vb = kl_dtype_load_i64(b->dtype, b->data, (size_t)(it.o[1] + j * sb));
      int64_t v = binary_i64(op, va, vb, &err);
      if (err) {
        bad_a = va;
        bad_b = vb;
      }
      kl_dtype_store_i64(y->dtype, y->data, (size_t)(oy + j), v);
    }
    if (err)
      break;
    bcast_next(&it);
  }
  if (err == 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: integer division by zero (%lld / 0) for %s inputs %s and %s", name,
                            (long long)bad_a, kl_dtype_ir_name(a->dtype), KL_SHAPE(a), KL_SHAPE(b));
  if (err == 2)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: integer %lld raised to the negative power %lld", name,
                            (long long)bad_a, (long long)bad_b);
  return NULL;
}

kl_status kl_rt_where(const kl_tensor *cond, const kl_tensor *a, const kl_tensor *b, kl_tensor *y) {
  if (cond->dtype != KL_BOOL)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "where: condition is %s, expected Bool",
                            kl_dtype_ir_name(cond->dtype));
  if (a->dtype != y->dtype || b->dtype != y->dtype)
    return kl_status_create(
        KL_ERR_INVALID_ARGUMENT, "where: value dtypes %s and %s must both equal the output's %s",
        kl_dtype_ir_name(a->dtype), kl_dtype_ir_name(b->dtype), kl_dtype_ir_name(y->dtype));
  const kl_tensor *xs[3] = {cond, a, b};
  bcast_iter it;
  KL_RETURN_IF_ERROR(bcast_setup("where", xs, 3, y, &it));
  int last = it.rank - 1;
  int64_t sc = it.s[0][last], sa = it.s[1][last], sb = it.s[2][last], len = it.row_len;
  size_t es = kl_dtype_size(y->dtype);
  const uint8_t *pc = cond->data;
  const char *pa = a->data, *pb = b->data;
  char *py = y->data;
  for (int64_t r = 0; r < it.rows; r++) {
    int64_t oy = r * len;
    for (int64_t j = 0; j < len; j++) {
      const char *src = pc[it.o[0] + j * sc] ? pa + (size_t)(it.o[1] + j * sa) * es
                                             : pb + (size_t)(it.o[2] + j * sb) * es;
      memcpy(py + (size_t)(oy + j) * es, src, es);
    }
    bcast_next(&it);
  }
  return NULL;
}
