/* Elementwise kernels of one input: activations and math functions (kl_rt_unary) and dtype
 * conversion (kl_rt_cast). Every function is written once on doubles (unary_f64); f32 and f64
 * buffers run a native loop around it, the slow dtypes (f16, bf16) convert element by element,
 * and integer dtypes take an exact int64 path for the few ops that accept them. */
#include <math.h>
#include <string.h>

#include "kernels_internal.h"

static const char *unary_name(kl_rt_unary_op op) {
  static const char *const names[] = {
      "relu", "clamp",     "leaky_relu", "sigmoid", "hardsigmoid", "hardswish",  "tanh",
      "gelu", "gelu_tanh", "silu",       "sqrt",    "rsqrt",       "reciprocal", "exp",
      "log",  "erf",       "neg",        "abs",     "identity",
      /* elementwise math (issue 4) */
      "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
      "floor", "ceil", "round", "sign",
      /* bitwise (issue 4) */
      "bitwise_not"};
  _Static_assert(sizeof names / sizeof names[0] == KL_UNARY_OP_COUNT, "one name per unary op");
  return (unsigned)op < sizeof names / sizeof names[0] ? names[op] : "unary";
}

/* Round half to even, independent of the FP environment's rounding mode. */
static inline double round_half_even(double x) {
  double r = floor(x), frac = x - r; /* inf and nan fall through unchanged */
  if (frac > 0.5 || (frac == 0.5 && fmod(r, 2.0) != 0.0))
    r += 1.0;
  return r;
}

/* The math, on one double. a and b are the op's parameters (see kernels.h). */
static inline double unary_f64(kl_rt_unary_op op, double x, double a, double b) {
  switch (op) {
  case KL_UNARY_RELU: return x > 0 ? x : (x == x ? 0.0 : x); /* nan propagates */
  case KL_UNARY_CLAMP: return x != x ? x : fmin(fmax(x, a), b);
  case KL_UNARY_LEAKY_RELU: return x >= 0 ? x : a * x;
  case KL_UNARY_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case KL_UNARY_HARDSIGMOID: return fmin(fmax(x / 6.0 + 0.5, 0.0), 1.0);
  case KL_UNARY_HARDSWISH: return x * fmin(fmax(x / 6.0 + 0.5, 0.0), 1.0);
  case KL_UNARY_TANH: return tanh(x);
  case KL_UNARY_GELU: return 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
  case KL_UNARY_GELU_TANH: {
    const double k = 0.7978845608028654; /* sqrt(2 / pi) */
    return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
  }
  case KL_UNARY_SILU: return x / (1.0 + exp(-x));
  case KL_UNARY_SQRT: return sqrt(x);
  case KL_UNARY_RSQRT: return 1.0 / sqrt(x);
  case KL_UNARY_RECIPROCAL: return 1.0 / x;
  case KL_UNARY_EXP: return exp(x);
  case KL_UNARY_LOG: return log(x);
  case KL_UNARY_ERF: return erf(x);
  case KL_UNARY_NEG: return -x;
  case KL_UNARY_ABS: return fabs(x);
  case KL_UNARY_IDENTITY: return x;
  case KL_UNARY_SIN: return sin(x);
  case KL_UNARY_COS: return cos(x);
  case KL_UNARY_TAN: return tan(x);
  case KL_UNARY_ASIN: return asin(x);
  case KL_UNARY_ACOS: return acos(x);
  case KL_UNARY_ATAN: return atan(x);
  case KL_UNARY_SINH: return sinh(x);
  case KL_UNARY_COSH: return cosh(x);
  case KL_UNARY_ASINH: return asinh(x);
  case KL_UNARY_ACOSH: return acosh(x);
  case KL_UNARY_ATANH: return atanh(x);
  case KL_UNARY_FLOOR: return floor(x);
  case KL_UNARY_CEIL: return ceil(x);
  case KL_UNARY_ROUND: return round_half_even(x);
  case KL_UNARY_SIGN: return x > 0 ? 1.0 : x < 0 ? -1.0 : x; /* keeps 0 and nan */
  case KL_UNARY_BITWISE_NOT: /* integers only (checked before) */
  case KL_UNARY_OP_COUNT: break;
  }
  return x;
}

/* Integer forms; only the ops that accept integer dtypes reach here. Negation wraps as the
 * two's complement machine does (through uint64_t, so it is not undefined behaviour). */
static inline int64_t unary_i64(kl_rt_unary_op op, int64_t x, double a, double b) {
  switch (op) {
  case KL_UNARY_RELU: return x > 0 ? x : 0;
  case KL_UNARY_CLAMP:
    if (x < a)
      x = a <= -9.2e18 ? x : (int64_t)ceil(a);
    if (x > b)
      x = b >= 9.2e18 ? x : (int64_t)floor(b);
    return x;
  case KL_UNARY_NEG: return (int64_t)(0 - (uint64_t)x);
  case KL_UNARY_ABS: return x < 0 ? (int64_t)(0 - (uint64_t)x) : x;
  case KL_UNARY_SIGN: return (x > 0) - (x < 0);
  case KL_UNARY_BITWISE_NOT: return ~x; /* the store keeps the dtype's bits (Bool: see below) */
  default: return x;
  }
}

static bool unary_accepts_int(kl_rt_unary_op op) {
  return op == KL_UNARY_RELU || op == KL_UNARY_CLAMP || op == KL_UNARY_NEG || op == KL_UNARY_ABS ||
         op == KL_UNARY_IDENTITY || op == KL_UNARY_SIGN || op == KL_UNARY_BITWISE_NOT;
}

kl_status kl_rt_unary(kl_rt_unary_op op, double a, double b, const kl_tensor *x, kl_tensor *y) {
  if ((unsigned)op >= KL_UNARY_OP_COUNT)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "unary: unknown op %d", (int)op);
  const char *name = unary_name(op);
  if (x->dtype != y->dtype)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: input is %s but output is %s", name,
                            kl_dtype_ir_name(x->dtype), kl_dtype_ir_name(y->dtype));
  if (!kl_tensor_same_shape(x, y))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: input shape %s differs from output %s",
                            name, KL_SHAPE(x), KL_SHAPE(y));
  if (!kl_dtype_is_float(x->dtype) && !unary_accepts_int(op))
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s: needs a floating-point input, got %s", name,
                            kl_dtype_ir_name(x->dtype));
  if (op == KL_UNARY_BITWISE_NOT && kl_dtype_is_float(x->dtype))
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s: needs an integer or Bool input, got %s", name,
                            kl_dtype_ir_name(x->dtype));
  int64_t n = x->numel;
  if (op == KL_UNARY_BITWISE_NOT && x->dtype == KL_BOOL) { /* ~ on 0/1 would store 1 for both */
    const uint8_t *xs = x->data;
    uint8_t *ys = y->data;
    for (int64_t i = 0; i < n; i++)
      ys[i] = !xs[i];
    return NULL;
  }
  if (op == KL_UNARY_IDENTITY) {
    if (x->nbytes)
      memmove(y->data, x->data, x->nbytes);
    return NULL;
  }
  switch (x->dtype) {
  case KL_F32: {
    const float *xs = x->data; /* x (numel,) */
    float *ys = y->data;       /* y (numel,) */
    if (op == KL_UNARY_RELU) { /* the common case: keep it a simple vectorizable loop */
      for (int64_t i = 0; i < n; i++)
        ys[i] = xs[i] > 0.0f ? xs[i] : (xs[i] == xs[i] ? 0.0f : xs[i]);
      return NULL;
    }
    for (int64_t i = 0; i < n; i++)
      ys[i] = (float)unary_f64(op, xs[i], a, b);
    return NULL;
  }
  case KL_F64: {
    const double *xs = x->data;
    double *ys = y->data;
    for (int64_t i = 0; i < n; i++)
      ys[i] = unary_f64(op, xs[i], a, b);
    return NULL;
  }
  case KL_F16:
  case KL_BF16:
    for (int64_t i = 0; i < n; i++)
      kl_dtype_store_f64(y->dtype, y->data, (size_t)i,
                         unary_f64(op, kl_dtype_load_f64(x->dtype, x->data, (size_t)i), a, b));
    return NULL;
  default:
    for (int64_t i = 0; i < n; i++)
      kl_dtype_store_i64(y->dtype, y->data, (size_t)i,
                         unary_i64(op, kl_dtype_load_i64(x->dtype, x->data, (size_t)i), a, b));
    return NULL;
  }
}

kl_status kl_rt_cast(const kl_tensor *x, kl_tensor *y) {
  if (x->numel != y->numel || !kl_tensor_same_shape(x, y))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "cast: input shape %s differs from output %s",
                            KL_SHAPE(x), KL_SHAPE(y));
  if (x->dtype == y->dtype) {
    if (x->nbytes)
      memmove(y->data, x->data, x->nbytes);
    return NULL;
  }
  int64_t n = x->numel;
  if (x->dtype == KL_F32 && y->dtype == KL_F64) {
    const float *xs = x->data;
    double *ys = y->data;
    for (int64_t i = 0; i < n; i++)
      ys[i] = xs[i];
    return NULL;
  }
  /* Integer to integer stays exact in int64; anything involving a float goes through double
   * (the store converts like a C cast, truncating toward zero, and to bool tests != 0). */
  bool exact = !kl_dtype_is_float(x->dtype) && !kl_dtype_is_float(y->dtype);
  for (int64_t i = 0; i < n; i++) {
    if (exact)
      kl_dtype_store_i64(y->dtype, y->data, (size_t)i,
                         kl_dtype_load_i64(x->dtype, x->data, (size_t)i));
    else
      kl_dtype_store_f64(y->dtype, y->data, (size_t)i,
                         kl_dtype_load_f64(x->dtype, x->data, (size_t)i));
  }
  return NULL;
}
