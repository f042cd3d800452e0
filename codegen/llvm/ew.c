/* Elementwise regions as one LLVM loop nest (see ew.h for the contract).
 *
 * Every value of the region is an expression of a point of the iteration space. A point is a
 * coordinate vector in some value's shape, kept as LLVM values; each coordinate and the point's
 * linear (C-order) index are made on demand from whichever is known. The root point is the loop
 * nest's own (row coordinates, computed once per row, and the inner index j); broadcasting
 * drops or zeroes coordinates, permute/slice/pad/cat rewrite them, and reshape-like ops pass the
 * linear index through. Loads of region inputs then index with the point's linear index, which
 * for the root point and its broadcasts is affine in j: unit stride or stride 0, as the loop
 * vectorizer wants. Values are memoized per (value, point), so a diamond is computed once.
 *
 * The arithmetic mirrors runtime/kernels/unary.c and binary.c: integers compute in int64 and
 * are truncated to their dtype (wrapping), float32 rounds at each node, NaN handling of
 * max/min/relu/clamp/sign matches, round is half to even. Operations whose float32 result the
 * interpreter gets by rounding a double are done in double where that is cheap (so they agree
 * exactly); exp, sigmoid, tanh, erf, GELU and SiLU use the vectorizable float math of vmath.c;
 * other transcendental functions call libm's double functions. Integer division, remainder,
 * fmod and pow are left out: the interpreter reports division by zero and negative powers as
 * errors, which a loop cannot. */
#include "ew.h"

#include <llvm-c/DebugInfo.h>
#include <llvm-c/IRReader.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ir/op_params.h"
#include "../../runtime/checked.h"
#include "vmath.h"

/* ---- which nodes a region may hold ---------------------------------------------------------- */

typedef enum ew_kind { EW_NONE, EW_UNARY, EW_BINARY, EW_CAST, EW_WHERE, EW_COPY, EW_EXPAND,
                       EW_PERMUTE, EW_SLICE, EW_PAD, EW_CAT } ew_kind;

/* The reference kernel column of ops.def, per op: a region takes the ops whose kernel it
 * generates, so a new op row with one of these kernels joins regions with no edit here. */
static const char *const op_kernel[] = {
#define KL_OP(id, name, in_min, in_max, out_min, out_max, blocks, category, attrs, shape, kernel) \
  #kernel,
#include "../../ir/ops.def"
#undef KL_OP
};

static ew_kind kind_of(kl_op op) {
  static const struct {
    const char *kernel;
    ew_kind kind;
  } kinds[] = {{"unary", EW_UNARY},     {"binary", EW_BINARY},   {"cast", EW_CAST},
               {"where", EW_WHERE},     {"copy", EW_COPY},       {"expand", EW_EXPAND},
               {"permute", EW_PERMUTE}, {"slice", EW_SLICE},     {"constant_pad", EW_PAD},
               {"cat", EW_CAT}};
  if ((unsigned)op >= sizeof op_kernel / sizeof op_kernel[0])
    return EW_NONE;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (strcmp(op_kernel[op], kinds[i].kernel) == 0)
      return kinds[i].kind;
  return EW_NONE;
}

static bool is_float(kl_dtype dt) { return dt == KL_F32 || dt == KL_F64; }

static const char *dtype_why(kl_dtype dt) {
  switch (dt) {
  case KL_F32: case KL_F64: case KL_I32: case KL_I64: case KL_BOOL: return NULL;
  case KL_F16: return "dtype Half (regions compute Float, Double, Int, Long, Bool)";
  case KL_BF16: return "dtype BFloat16 (regions compute Float, Double, Int, Long, Bool)";
  case KL_I8: return "dtype Char (regions compute Float, Double, Int, Long, Bool)";
  case KL_U8: return "dtype Byte (regions compute Float, Double, Int, Long, Bool)";
  default: return "unknown dtype";
  }
}

static bool unary_accepts_int(kl_rt_unary_op op) {
  return op == KL_UNARY_RELU || op == KL_UNARY_CLAMP || op == KL_UNARY_NEG || op == KL_UNARY_ABS ||
         op == KL_UNARY_IDENTITY || op == KL_UNARY_SIGN || op == KL_UNARY_BITWISE_NOT;
}

static bool is_compare(kl_rt_binary_op op) { return op >= KL_BINARY_EQ && op <= KL_BINARY_GE; }

/* The reason a node cannot be in a region, or NULL when it can. */
static const char *unsupported_reason(const kl_ir_node *node) {
  static _Thread_local char op_buf[96];
  ew_kind kind = kind_of(node->op);
  if (kind == EW_NONE) {
    snprintf(op_buf, sizeof op_buf, "op %s", kl_ir_node_op_name(node));
    return op_buf;
  }
  if (node->n_outputs != 1)
    return "not one output";
  for (int i = 0; i <= node->n_inputs; i++) {
    const kl_ir_type *t = i < node->n_inputs ? &node->inputs[i]->type : &node->outputs[0]->type;
    if (!kl_ir_type_is_static(t))
      return "shape not static";
    const char *why = dtype_why(t->dtype);
    if (why)
      return why;
  }
  kl_dtype dt = node->n_inputs ? node->inputs[0]->type.dtype : node->outputs[0]->type.dtype;
  kl_dtype out_dt = node->outputs[0]->type.dtype;
  kl_status s = NULL;
  switch (kind) {
  case EW_UNARY: {
    kl_rt_unary_op op;
    double a, b;
    s = kl_ir_unary_params(node, &op, &a, &b);
    if (s)
      break;
    if (op > KL_UNARY_BITWISE_NOT) /* the last kernel op this file generates */
      return "unary op not generated in regions";
    if (out_dt != dt)
      return "output dtype differs from input";
    if (!is_float(dt) && !unary_accepts_int(op))
      return "needs a floating-point input";
    if (op == KL_UNARY_BITWISE_NOT && is_float(dt))
      return "bitwise_not of a float";
    break;
  }
  case EW_BINARY: {
    kl_rt_binary_op op;
    s = kl_ir_binary_params(node, &op);
    if (s)
      break;
    if (op > KL_BINARY_XOR) /* the last kernel op this file generates */
      return "binary op not generated in regions";
    if (node->inputs[1]->type.dtype != dt)
      return "input dtypes differ";
    if (out_dt != (is_compare(op) ? KL_BOOL : dt))
      return "unexpected output dtype";
    if (!is_float(dt) && (op == KL_BINARY_DIV || op == KL_BINARY_REMAINDER ||
                          op == KL_BINARY_FMOD))
      return "integer division (division by zero is a run-time error)";
    if (!is_float(dt) && op == KL_BINARY_POW)
      return "integer pow (a negative power is a run-time error)";
    if ((op == KL_BINARY_SHL || op == KL_BINARY_SHR) && (is_float(dt) || dt == KL_BOOL))
      return "shift needs integer inputs";
    if (op >= KL_BINARY_AND && op <= KL_BINARY_XOR && is_float(dt))
      return "bitwise op on floats";
    break;
  }
  case EW_CAST: break;
  case EW_WHERE:
    if (dt != KL_BOOL)
      return "where's condition is not Bool";
    if (node->inputs[1]->type.dtype != out_dt || node->inputs[2]->type.dtype != out_dt)
      return "where's value dtypes differ from its output";
    break;
  case EW_CAT:
    for (int i = 0; i < node->n_inputs; i++)
      if (node->inputs[i]->type.dtype != out_dt)
        return "cat of differing dtypes";
    break;
  default:
    if (out_dt != dt)
      return "output dtype differs from input";
    break;
  }
  if (s) {
    snprintf(op_buf, sizeof op_buf, "attributes of %s", kl_ir_node_op_name(node));
    kl_status_destroy(s);
    return op_buf;
  }
  return NULL;
}

bool kl_ew_node_supported(const kl_ir_node *node, const char **why) {
  const char *reason = node ? unsupported_reason(node) : "no node";
  if (why)
    *why = reason;
  return reason == NULL;
}

static int64_t inner_len(const kl_ir_type *t) { return t->rank ? t->dims[t->rank - 1].size : 1; }

int64_t kl_ew_region_rows(const kl_ew_region *r) {
  const kl_ir_type *t = &r->outputs[0]->type;
  int64_t rows = 1;
  for (int d = 0; d + 1 < t->rank; d++)
    rows *= t->dims[d].size;
  return rows;
}

/* ---- points --------------------------------------------------------------------------------- */

typedef struct ew_point {
  int rank;
  int64_t shape[KL_MAX_RANK];
  int64_t stride[KL_MAX_RANK];       /* dense C-order strides of shape */
  LLVMValueRef coord[KL_MAX_RANK];   /* NULL until known */
  LLVMValueRef linear;               /* NULL until known */
} ew_point;

typedef struct ew_memo {
  const void *key; /* a kl_ir_value (values) or a kl_ir_node (derived points) */
  int index;       /* input index for derived points */
  const ew_point *at;
  LLVMValueRef value;
  ew_point *point;
} ew_memo;

typedef struct ew_emitter {
  LLVMContextRef ctx;
  LLVMModuleRef m;
  LLVMBuilderRef b;
  const kl_ew_region *r;
  LLVMValueRef *in_ptrs;
  LLVMTypeRef i1, i8, i32, i64, f32, f64;
  ew_memo *memo;
  int n_memo, cap_memo;
  ew_point **points;
  int n_points, cap_points;
  LLVMValueRef *out_ptrs, *out_vals; /* n_outputs each */
  LLVMMetadataRef access_group;      /* the inner loop's loads and stores; may be NULL */
} ew_emitter;

static kl_status oom(void) {
  return kl_status_create(KL_ERR_OUT_OF_MEMORY, "elementwise region: out of memory");
}

static kl_status new_point(ew_emitter *e, int rank, const int64_t *shape, ew_point **out) {
  if (e->n_points == e->cap_points) {
    int cap = e->cap_points ? 2 * e->cap_points : 16;
    ew_point **grown = realloc(e->points, (size_t)cap * sizeof *grown);
    if (!grown)
      return oom();
    e->points = grown;
    e->cap_points = cap;
  }
  ew_point *p = calloc(1, sizeof *p);
  if (!p)
    return oom();
  e->points[e->n_points++] = p;
  p->rank = rank;
  int64_t stride = 1;
  for (int d = rank - 1; d >= 0; d--) {
    p->shape[d] = shape[d];
    p->stride[d] = stride;
    stride *= shape[d] ? shape[d] : 1;
  }
  *out = p;
  return NULL;
}

static kl_status memo_add(ew_emitter *e, ew_memo entry) {
  if (e->n_memo == e->cap_memo) {
    int cap = e->cap_memo ? 2 * e->cap_memo : 64;
    ew_memo *grown = realloc(e->memo, (size_t)cap * sizeof *grown);
    if (!grown)
      return oom();
    e->memo = grown;
    e->cap_memo = cap;
  }
  e->memo[e->n_memo++] = entry;
  return NULL;
}

static ew_memo *memo_find(ew_emitter *e, const void *key, int index, const ew_point *at) {
  for (int i = 0; i < e->n_memo; i++)
    if (e->memo[i].key == key && e->memo[i].index == index && e->memo[i].at == at)
      return &e->memo[i];
  return NULL;
}

static LLVMValueRef c64(ew_emitter *e, int64_t v) {
  return LLVMConstInt(e->i64, (unsigned long long)v, 1);
}

static LLVMValueRef point_linear(ew_emitter *e, ew_point *p);

static LLVMValueRef point_coord(ew_emitter *e, ew_point *p, int d) {
  if (p->coord[d])
    return p->coord[d];
  if (p->shape[d] == 1) {
    p->coord[d] = c64(e, 0);
  } else {
    LLVMValueRef q = LLVMBuildUDiv(e->b, point_linear(e, p), c64(e, p->stride[d]), "");
    p->coord[d] = d == 0 ? q : LLVMBuildURem(e->b, q, c64(e, p->shape[d]), "");
  }
  return p->coord[d];
}

static LLVMValueRef point_linear(ew_emitter *e, ew_point *p) {
  if (p->linear)
    return p->linear;
  LLVMValueRef sum = NULL;
  for (int d = 0; d < p->rank; d++) {
    if (p->shape[d] == 1)
      continue;
    LLVMValueRef term = point_coord(e, p, d);
    if (p->stride[d] != 1)
      term = LLVMBuildNUWMul(e->b, term, c64(e, p->stride[d]), "");
    sum = sum ? LLVMBuildNUWAdd(e->b, sum, term, "") : term;
  }
  p->linear = sum ? sum : c64(e, 0);
  return p->linear;
}

static void type_shape(const kl_ir_type *t, int64_t *shape) {
  for (int d = 0; d < t->rank; d++)
    shape[d] = t->dims[d].size;
}

static bool same_shape(const ew_point *p, const kl_ir_type *t) {
  if (p->rank != t->rank)
    return false;
  for (int d = 0; d < t->rank; d++)
    if (p->shape[d] != t->dims[d].size)
      return false;
  return true;
}

/* The point of `to` (input `index` of node) that p reads under numpy broadcasting. */
static kl_status broadcast_point(ew_emitter *e, const void *key, int index, ew_point *p,
                                 const kl_ir_type *to, ew_point **out) {
  if (same_shape(p, to)) {
    *out = p;
    return NULL;
  }
  ew_memo *hit = memo_find(e, key, -1 - index, p);
  if (hit) {
    *out = hit->point;
    return NULL;
  }
  if (to->rank > p->rank)
    return kl_status_create(KL_ERR_INTERNAL, "elementwise region: rank %d does not broadcast "
                            "to rank %d", to->rank, p->rank);
  int64_t shape[KL_MAX_RANK];
  type_shape(to, shape);
  ew_point *q;
  KL_RETURN_IF_ERROR(new_point(e, to->rank, shape, &q));
  for (int i = 0; i < to->rank; i++) {
    int d = p->rank - to->rank + i;
    if (shape[i] == 1)
      q->coord[i] = c64(e, 0);
    else if (shape[i] == p->shape[d])
      q->coord[i] = point_coord(e, p, d);
    else
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "elementwise region: dim %d of size %lld "
                              "does not broadcast to %lld", i, (long long)shape[i],
                              (long long)p->shape[d]);
  }
  *out = q;
  ew_memo m = {key, -1 - index, p, NULL, q};
  return memo_add(e, m);
}

/* ---- scalar helpers ------------------------------------------------------------------------- */

static LLVMTypeRef reg_type(ew_emitter *e, kl_dtype dt) {
  switch (dt) {
  case KL_F32: return e->f32;
  case KL_F64: return e->f64;
  case KL_I32: return e->i32;
  case KL_I64: return e->i64;
  default: return e->i1; /* Bool; other dtypes never reach the emitter */
  }
}

static LLVMTypeRef mem_type(ew_emitter *e, kl_dtype dt) {
  return dt == KL_BOOL ? e->i8 : reg_type(e, dt);
}

static LLVMValueRef intrinsic(ew_emitter *e, const char *name, LLVMTypeRef *types, int n_types,
                              LLVMValueRef *args, int n_args) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->m, id, types, (size_t)n_types);
  LLVMTypeRef fn_type = LLVMIntrinsicGetType(e->ctx, id, types, (size_t)n_types);
  return LLVMBuildCall2(e->b, fn_type, fn, args, (unsigned)n_args, "");
}

static LLVMValueRef intrinsic1(ew_emitter *e, const char *name, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  return intrinsic(e, name, &t, 1, &x, 1);
}

static LLVMValueRef intrinsic2(ew_emitter *e, const char *name, LLVMValueRef x, LLVMValueRef y) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef args[2] = {x, y};
  return intrinsic(e, name, &t, 1, args, 2);
}

/* A call to libm's double function name of n_args double arguments (declared on first use). */
static LLVMValueRef libm(ew_emitter *e, const char *name, LLVMValueRef *args, int n_args) {
  LLVMTypeRef params[2] = {e->f64, e->f64};
  LLVMTypeRef fn_type = LLVMFunctionType(e->f64, params, (unsigned)n_args, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(e->m, name);
  if (!fn) {
    fn = LLVMAddFunction(e->m, name, fn_type);
    LLVMAddAttributeAtIndex(
        fn, LLVMAttributeFunctionIndex,
        LLVMCreateEnumAttribute(e->ctx, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
  }
  return LLVMBuildCall2(e->b, fn_type, fn, args, (unsigned)n_args, "");
}

static LLVMValueRef libm1(ew_emitter *e, const char *name, LLVMValueRef x) {
  return libm(e, name, &x, 1);
}

static LLVMValueRef cfp(LLVMTypeRef t, double v) { return LLVMConstReal(t, v); }

/* Integer register value of dtype dt to int64 (as kl_dtype_load_i64 reads it). */
static LLVMValueRef int_to_i64(ew_emitter *e, LLVMValueRef v, kl_dtype dt) {
  if (dt == KL_I64)
    return v;
  if (dt == KL_BOOL)
    return LLVMBuildZExt(e->b, v, e->i64, "");
  return LLVMBuildSExt(e->b, v, e->i64, "");
}

/* int64 to dtype dt as kl_dtype_store_i64 stores it (truncation; Bool: != 0). */
static LLVMValueRef i64_to_int(ew_emitter *e, LLVMValueRef v, kl_dtype dt) {
  if (dt == KL_I64)
    return v;
  if (dt == KL_BOOL)
    return LLVMBuildICmp(e->b, LLVMIntNE, v, c64(e, 0), "");
  return LLVMBuildTrunc(e->b, v, reg_type(e, dt), "");
}

/* Any value to double, as kl_dtype_load_f64 reads it. */
static LLVMValueRef to_f64(ew_emitter *e, LLVMValueRef v, kl_dtype dt) {
  switch (dt) {
  case KL_F32: return LLVMBuildFPExt(e->b, v, e->f64, "");
  case KL_F64: return v;
  case KL_BOOL: return LLVMBuildUIToFP(e->b, v, e->f64, "");
  default: return LLVMBuildSIToFP(e->b, v, e->f64, "");
  }
}

/* A double to dtype dt as kl_dtype_store_f64 stores it: floats round, Bool tests != 0 (nan is
 * true), integers convert toward zero with nan to 0 and saturation (fptosi.sat does exactly). */
static LLVMValueRef from_f64(ew_emitter *e, LLVMValueRef v, kl_dtype dt) {
  switch (dt) {
  case KL_F32: return LLVMBuildFPTrunc(e->b, v, e->f32, "");
  case KL_F64: return v;
  case KL_BOOL: return LLVMBuildFCmp(e->b, LLVMRealUNE, v, cfp(e->f64, 0.0), "");
  default: {
    LLVMTypeRef types[2] = {e->i64, e->f64};
    LLVMValueRef i = intrinsic(e, "llvm.fptosi.sat", types, 2, &v, 1);
    return i64_to_int(e, i, dt);
  }
  }
}

/* ---- unary ---------------------------------------------------------------------------------- */

static LLVMValueRef select_(ew_emitter *e, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(e->b, c, a, b, "");
}

static LLVMValueRef fcmp(ew_emitter *e, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(e->b, p, a, b, "");
}

static LLVMValueRef unary_int(ew_emitter *e, kl_rt_unary_op op, double a, double b,
                              LLVMValueRef x, kl_dtype dt) {
  if (op == KL_UNARY_BITWISE_NOT)
    return LLVMBuildNot(e->b, x, ""); /* Bool is i1: logical not */
  if (op == KL_UNARY_IDENTITY)
    return x;
  LLVMValueRef v = int_to_i64(e, x, dt), zero = c64(e, 0);
  switch (op) {
  case KL_UNARY_RELU:
    v = select_(e, LLVMBuildICmp(e->b, LLVMIntSGT, v, zero, ""), v, zero);
    break;
  case KL_UNARY_CLAMP:
    /* as the kernel: x < a raises x to ceil(a) unless a is below the int64 range, then x > b */
    if (a > -9.2e18) {
      int64_t lo = a >= 9.2e18 ? INT64_MAX : (int64_t)ceil(a);
      v = select_(e, LLVMBuildICmp(e->b, LLVMIntSLT, v, c64(e, lo), ""), c64(e, lo), v);
    }
    if (b < 9.2e18) {
      int64_t hi = b <= -9.2e18 ? INT64_MIN : (int64_t)floor(b);
      v = select_(e, LLVMBuildICmp(e->b, LLVMIntSGT, v, c64(e, hi), ""), c64(e, hi), v);
    }
    break;
  case KL_UNARY_NEG: v = LLVMBuildSub(e->b, zero, v, ""); break;
  case KL_UNARY_ABS:
    v = select_(e, LLVMBuildICmp(e->b, LLVMIntSLT, v, zero, ""), LLVMBuildSub(e->b, zero, v, ""),
                v);
    break;
  case KL_UNARY_SIGN:
    v = LLVMBuildSub(e->b,
                     LLVMBuildZExt(e->b, LLVMBuildICmp(e->b, LLVMIntSGT, v, zero, ""), e->i64, ""),
                     LLVMBuildZExt(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, v, zero, ""), e->i64, ""),
                     "");
    break;
  default: break;
  }
  return i64_to_int(e, v, dt);
}

/* Whether v survives a round trip through float (so a float compare against it is exact). */
static bool fits_f32(double v) { return isinf(v) || (double)(float)v == v; }

static LLVMValueRef unary_float(ew_emitter *e, kl_rt_unary_op op, double a, double b,
                                LLVMValueRef x, kl_dtype dt) {
  LLVMTypeRef t = reg_type(e, dt);
  bool f32 = dt == KL_F32;
  LLVMValueRef zero = cfp(t, 0.0), one = cfp(t, 1.0);
  switch (op) {
  case KL_UNARY_RELU: /* x > 0 ? x : (x == x ? 0 : x) */
    return select_(e, fcmp(e, LLVMRealOGT, x, zero), x,
                   select_(e, fcmp(e, LLVMRealORD, x, x), zero, x));
  case KL_UNARY_CLAMP: {
    if (f32 && !(fits_f32(a) && fits_f32(b)))
      return from_f64(e, unary_float(e, op, a, b, to_f64(e, x, dt), KL_F64), KL_F32);
    LLVMValueRef c = intrinsic2(e, "llvm.minnum", intrinsic2(e, "llvm.maxnum", x, cfp(t, a)),
                                cfp(t, b));
    return select_(e, fcmp(e, LLVMRealUNO, x, x), x, c);
  }
  case KL_UNARY_NEG: return LLVMBuildFNeg(e->b, x, "");
  case KL_UNARY_ABS: return intrinsic1(e, "llvm.fabs", x);
  case KL_UNARY_IDENTITY: return x;
  case KL_UNARY_FLOOR: return intrinsic1(e, "llvm.floor", x);
  case KL_UNARY_CEIL: return intrinsic1(e, "llvm.ceil", x);
  case KL_UNARY_ROUND: return intrinsic1(e, "llvm.roundeven", x);
  case KL_UNARY_SIGN: /* x > 0 ? 1 : x < 0 ? -1 : x */
    return select_(e, fcmp(e, LLVMRealOGT, x, zero), one,
                   select_(e, fcmp(e, LLVMRealOLT, x, zero), cfp(t, -1.0), x));
  case KL_UNARY_SQRT: return intrinsic1(e, "llvm.sqrt", x);
  case KL_UNARY_RECIPROCAL: return LLVMBuildFDiv(e->b, one, x, "");
  default: break;
  }
  if (f32) {
    switch (op) {
    case KL_UNARY_EXP: return kl_vmath_expf(e->b, x);
    case KL_UNARY_SIGMOID: return kl_vmath_sigmoidf(e->b, x);
    case KL_UNARY_SILU: return kl_vmath_siluf(e->b, x);
    case KL_UNARY_TANH: return kl_vmath_tanhf(e->b, x);
    case KL_UNARY_ERF: return kl_vmath_erff(e->b, x);
    case KL_UNARY_GELU: return kl_vmath_geluf(e->b, x);
    case KL_UNARY_GELU_TANH: return kl_vmath_gelu_tanhf(e->b, x);
    default: /* the rest computes in double and rounds, as the interpreter does */
      return from_f64(e, unary_float(e, op, a, b, to_f64(e, x, dt), KL_F64), KL_F32);
    }
  }
  /* double */
  switch (op) {
  case KL_UNARY_LEAKY_RELU:
    return select_(e, fcmp(e, LLVMRealOGE, x, zero), x, LLVMBuildFMul(e->b, cfp(t, a), x, ""));
  case KL_UNARY_HARDSIGMOID:
  case KL_UNARY_HARDSWISH: {
    LLVMValueRef v = LLVMBuildFAdd(e->b, LLVMBuildFDiv(e->b, x, cfp(t, 6.0), ""), cfp(t, 0.5), "");
    v = intrinsic2(e, "llvm.minnum", intrinsic2(e, "llvm.maxnum", v, zero), one);
    return op == KL_UNARY_HARDSWISH ? LLVMBuildFMul(e->b, x, v, "") : v;
  }
  case KL_UNARY_SIGMOID:
  case KL_UNARY_SILU: {
    LLVMValueRef d = LLVMBuildFAdd(e->b, one, libm1(e, "exp", LLVMBuildFNeg(e->b, x, "")), "");
    return LLVMBuildFDiv(e->b, op == KL_UNARY_SIGMOID ? one : x, d, "");
  }
  case KL_UNARY_GELU: {
    LLVMValueRef er = libm1(e, "erf", LLVMBuildFMul(e->b, x, cfp(t, M_SQRT1_2), ""));
    return LLVMBuildFMul(e->b, LLVMBuildFMul(e->b, cfp(t, 0.5), x, ""),
                         LLVMBuildFAdd(e->b, one, er, ""), "");
  }
  case KL_UNARY_GELU_TANH: {
    LLVMValueRef x3 = LLVMBuildFMul(e->b, LLVMBuildFMul(e->b, LLVMBuildFMul(e->b, cfp(t, 0.044715),
                                                                          x, ""), x, ""), x, "");
    LLVMValueRef u = LLVMBuildFMul(e->b, cfp(t, 0.7978845608028654),
                                   LLVMBuildFAdd(e->b, x, x3, ""), "");
    return LLVMBuildFMul(e->b, LLVMBuildFMul(e->b, cfp(t, 0.5), x, ""),
                         LLVMBuildFAdd(e->b, one, libm1(e, "tanh", u), ""), "");
  }
  case KL_UNARY_RSQRT: return LLVMBuildFDiv(e->b, one, intrinsic1(e, "llvm.sqrt", x), "");
  case KL_UNARY_EXP: return libm1(e, "exp", x);
  case KL_UNARY_LOG: return libm1(e, "log", x);
  case KL_UNARY_TANH: return libm1(e, "tanh", x);
  case KL_UNARY_ERF: return libm1(e, "erf", x);
  case KL_UNARY_SIN: return libm1(e, "sin", x);
  case KL_UNARY_COS: return libm1(e, "cos", x);
  case KL_UNARY_TAN: return libm1(e, "tan", x);
  case KL_UNARY_ASIN: return libm1(e, "asin", x);
  case KL_UNARY_ACOS: return libm1(e, "acos", x);
  case KL_UNARY_ATAN: return libm1(e, "atan", x);
  case KL_UNARY_SINH: return libm1(e, "sinh", x);
  case KL_UNARY_COSH: return libm1(e, "cosh", x);
  case KL_UNARY_ASINH: return libm1(e, "asinh", x);
  case KL_UNARY_ACOSH: return libm1(e, "acosh", x);
  case KL_UNARY_ATANH: return libm1(e, "atanh", x);
  default: return x; /* handled above */
  }
}

/* ---- binary --------------------------------------------------------------------------------- */

static LLVMValueRef binary_int(ew_emitter *e, kl_rt_binary_op op, LLVMValueRef a, LLVMValueRef b,
                               kl_dtype dt) {
  static const LLVMIntPredicate preds[] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE,
                                            LLVMIntSGT, LLVMIntSGE};
  static const LLVMIntPredicate upreds[] = {LLVMIntEQ, LLVMIntNE, LLVMIntULT, LLVMIntULE,
                                             LLVMIntUGT, LLVMIntUGE};
  /* Comparisons, and everything but shifts, give the same bits computed in the dtype's own
   * width as in int64 then truncated; Bool (0 or 1, unsigned) maps + - * max min to logic. */
  if (is_compare(op))
    return LLVMBuildICmp(e->b, (dt == KL_BOOL ? upreds : preds)[op - KL_BINARY_EQ], a, b, "");
  if (dt == KL_BOOL) {
    switch (op) {
    case KL_BINARY_ADD: case KL_BINARY_MAX: case KL_BINARY_OR: return LLVMBuildOr(e->b, a, b, "");
    case KL_BINARY_SUB: case KL_BINARY_XOR: return LLVMBuildXor(e->b, a, b, "");
    case KL_BINARY_MUL: case KL_BINARY_MIN: case KL_BINARY_AND: return LLVMBuildAnd(e->b, a, b, "");
    default: break;
    }
  } else {
    switch (op) {
    case KL_BINARY_ADD: return LLVMBuildAdd(e->b, a, b, "");
    case KL_BINARY_SUB: return LLVMBuildSub(e->b, a, b, "");
    case KL_BINARY_MUL: return LLVMBuildMul(e->b, a, b, "");
    case KL_BINARY_AND: return LLVMBuildAnd(e->b, a, b, "");
    case KL_BINARY_OR: return LLVMBuildOr(e->b, a, b, "");
    case KL_BINARY_XOR: return LLVMBuildXor(e->b, a, b, "");
    default: break;
    }
  }
  a = int_to_i64(e, a, dt);
  b = int_to_i64(e, b, dt);
  LLVMValueRef v;
  switch (op) {
  case KL_BINARY_ADD: v = LLVMBuildAdd(e->b, a, b, ""); break;
  case KL_BINARY_SUB: v = LLVMBuildSub(e->b, a, b, ""); break;
  case KL_BINARY_MUL: v = LLVMBuildMul(e->b, a, b, ""); break;
  case KL_BINARY_MAX: v = select_(e, LLVMBuildICmp(e->b, LLVMIntSGT, a, b, ""), a, b); break;
  case KL_BINARY_MIN: v = select_(e, LLVMBuildICmp(e->b, LLVMIntSLT, a, b, ""), a, b); break;
  case KL_BINARY_AND: v = LLVMBuildAnd(e->b, a, b, ""); break;
  case KL_BINARY_OR: v = LLVMBuildOr(e->b, a, b, ""); break;
  case KL_BINARY_XOR: v = LLVMBuildXor(e->b, a, b, ""); break;
  case KL_BINARY_SHL:
  case KL_BINARY_SHR: {
    /* b outside [0, 64) gives 0 (or -1 for a negative a shifted right); the amount is masked
     * so the shift itself is always defined */
    LLVMValueRef in_range = LLVMBuildICmp(e->b, LLVMIntULT, b, c64(e, 64), "");
    LLVMValueRef amount = LLVMBuildAnd(e->b, b, c64(e, 63), "");
    if (op == KL_BINARY_SHL) {
      v = select_(e, in_range, LLVMBuildShl(e->b, a, amount, ""), c64(e, 0));
    } else {
      LLVMValueRef sat = LLVMBuildAShr(e->b, a, c64(e, 63), ""); /* -1 or 0 */
      v = select_(e, in_range, LLVMBuildAShr(e->b, a, amount, ""), sat);
    }
    break;
  }
  default: v = a; break; /* excluded by kl_ew_node_supported */
  }
  return i64_to_int(e, v, dt);
}

static LLVMValueRef binary_float(ew_emitter *e, kl_rt_binary_op op, LLVMValueRef a,
                                 LLVMValueRef b, kl_dtype dt) {
  static const LLVMRealPredicate preds[] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT,
                                            LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
  if (is_compare(op))
    return fcmp(e, preds[op - KL_BINARY_EQ], a, b);
  switch (op) {
  /* float32 + - * / rounded once equals the double result rounded to float */
  case KL_BINARY_ADD: return LLVMBuildFAdd(e->b, a, b, "");
  case KL_BINARY_SUB: return LLVMBuildFSub(e->b, a, b, "");
  case KL_BINARY_MUL: return LLVMBuildFMul(e->b, a, b, "");
  case KL_BINARY_DIV: return LLVMBuildFDiv(e->b, a, b, "");
  case KL_BINARY_MAX:
  case KL_BINARY_MIN: { /* nan from either side propagates (as a + b); else a > b ? a : b */
    LLVMValueRef pick = fcmp(e, op == KL_BINARY_MAX ? LLVMRealOGT : LLVMRealOLT, a, b);
    return select_(e, fcmp(e, LLVMRealUNO, a, b), LLVMBuildFAdd(e->b, a, b, ""),
                   select_(e, pick, a, b));
  }
  default: break;
  }
  /* pow, remainder, fmod: in double, as the interpreter */
  LLVMValueRef da = to_f64(e, a, dt), db = to_f64(e, b, dt), v;
  if (op == KL_BINARY_POW) {
    LLVMValueRef args[2] = {da, db};
    v = libm(e, "pow", args, 2);
  } else {
    v = LLVMBuildFRem(e->b, da, db, ""); /* C fmod */
    if (op == KL_BINARY_REMAINDER) {     /* r != 0 && (r < 0) != (b < 0): r += b */
      LLVMValueRef zero = cfp(e->f64, 0.0);
      LLVMValueRef fix = LLVMBuildAnd(
          e->b, fcmp(e, LLVMRealUNE, v, zero),
          LLVMBuildXor(e->b, fcmp(e, LLVMRealOLT, v, zero), fcmp(e, LLVMRealOLT, db, zero), ""),
          "");
      v = select_(e, fix, LLVMBuildFAdd(e->b, v, db, ""), v);
    }
  }
  return from_f64(e, v, dt);
}

/* The inner loop's iterations are independent: an output aliases an input only when read at
 * the same index (ew.h), so no iteration reads what another writes. Saying so with
 * llvm.loop.parallel_accesses lets the vectorizer skip its runtime overlap checks, which would
 * otherwise send every in-place region down the scalar path. The access group must be a
 * distinct node with no operands, which the C API cannot build directly; it is parsed. */
static LLVMMetadataRef make_access_group(LLVMContextRef ctx) {
  static const char text[] = "!kl.access_group = !{!0}\n!0 = distinct !{}\n";
  LLVMMemoryBufferRef buf =
      LLVMCreateMemoryBufferWithMemoryRangeCopy(text, sizeof text - 1, "access_group");
  LLVMModuleRef tmp = NULL;
  char *err = NULL;
  LLVMMetadataRef group = NULL;
  if (buf && !LLVMParseIRInContext(ctx, buf, &tmp, &err)) { /* takes buf */
    LLVMValueRef node = NULL;
    if (LLVMGetNamedMetadataNumOperands(tmp, "kl.access_group") == 1) {
      LLVMGetNamedMetadataOperands(tmp, "kl.access_group", &node);
      if (node && LLVMGetMDNodeNumOperands(node) == 0)
        group = LLVMValueAsMetadata(node); /* distinct nodes live as long as the context */
    }
    LLVMDisposeModule(tmp);
  }
  LLVMDisposeMessage(err);
  return group;
}

static void tag_access(ew_emitter *e, LLVMValueRef inst) {
  if (e->access_group)
    LLVMSetMetadata(inst, LLVMGetMDKindIDInContext(e->ctx, "llvm.access.group", 17),
                    LLVMMetadataAsValue(e->ctx, e->access_group));
}

/* ---- evaluation ----------------------------------------------------------------------------- */

static kl_status eval(ew_emitter *e, const kl_ir_value *v, ew_point *p, LLVMValueRef *out);

static int input_index(const kl_ew_region *r, const kl_ir_value *v) {
  for (int i = 0; i < r->n_inputs; i++)
    if (r->inputs[i] == v)
      return i;
  return -1;
}

static bool in_region(const kl_ew_region *r, const kl_ir_node *n) {
  for (int i = 0; i < r->n_nodes; i++)
    if (r->nodes[i] == n)
      return true;
  return false;
}

/* A point of input `index` of node derived from p by a coordinate map; memoized so each map
 * is built once per point. The caller fills the new point (fresh is set) or reuses it. */
static kl_status derived_point(ew_emitter *e, const kl_ir_node *n, int index, ew_point *p,
                               ew_point **out, bool *fresh) {
  ew_memo *hit = memo_find(e, n, -1000 - index, p);
  if (hit) {
    *out = hit->point;
    *fresh = false;
    return NULL;
  }
  int64_t shape[KL_MAX_RANK];
  const kl_ir_type *t = &n->inputs[index]->type;
  type_shape(t, shape);
  KL_RETURN_IF_ERROR(new_point(e, t->rank, shape, out));
  *fresh = true;
  ew_memo m = {n, -1000 - index, p, NULL, *out};
  return memo_add(e, m);
}

/* clamp(v, 0, hi) for an index (hi >= 0). */
static LLVMValueRef clamp_index(ew_emitter *e, LLVMValueRef v, int64_t hi) {
  v = select_(e, LLVMBuildICmp(e->b, LLVMIntSLT, v, c64(e, 0), ""), c64(e, 0), v);
  return select_(e, LLVMBuildICmp(e->b, LLVMIntSGT, v, c64(e, hi), ""), c64(e, hi), v);
}

static kl_status node_error(const kl_ir_node *n, const char *what) {
  return kl_status_create(KL_ERR_UNSUPPORTED, "elementwise region: node %s (%%%s): %s",
                          kl_ir_node_op_name(n), n->outputs[0]->name, what);
}

static kl_status eval_movement(ew_emitter *e, const kl_ir_node *n, ew_kind kind, ew_point *p,
                               LLVMValueRef *out) {
  const kl_ir_type *xt = &n->inputs[0]->type;
  ew_point *q;
  bool fresh;
  switch (kind) {
  case EW_COPY:
    KL_RETURN_IF_ERROR(derived_point(e, n, 0, p, &q, &fresh));
    if (fresh)
      q->linear = point_linear(e, p);
    return eval(e, n->inputs[0], q, out);
  case EW_EXPAND:
    KL_RETURN_IF_ERROR(broadcast_point(e, n, 0, p, xt, &q));
    return eval(e, n->inputs[0], q, out);
  case EW_PERMUTE: {
    int perm[KL_MAX_RANK];
    KL_RETURN_IF_ERROR(kl_ir_permute_params(n, xt->rank, perm));
    KL_RETURN_IF_ERROR(derived_point(e, n, 0, p, &q, &fresh));
    if (fresh)
      for (int d = 0; d < p->rank; d++)
        q->coord[perm[d]] = point_coord(e, p, d);
    return eval(e, n->inputs[0], q, out);
  }
  case EW_SLICE: {
    int64_t in_shape[KL_MAX_RANK], start, step, len;
    int dim;
    type_shape(xt, in_shape);
    KL_RETURN_IF_ERROR(kl_ir_slice_params(n, xt->rank, in_shape, &dim, &start, &step, &len));
    if (len != p->shape[dim])
      return node_error(n, "slice length differs from the output's dim");
    int64_t last = 0;
    if (len > 0 && (!kl_mul_i64(step, len - 1, &last) || !kl_add_i64(last, start, &last) ||
                    start < 0 || start >= in_shape[dim] || last < 0 || last >= in_shape[dim]))
      return node_error(n, "slice reads outside its input");
    KL_RETURN_IF_ERROR(derived_point(e, n, 0, p, &q, &fresh));
    if (fresh)
      for (int d = 0; d < p->rank; d++) {
        LLVMValueRef c = point_coord(e, p, d);
        if (d == dim)
          c = LLVMBuildAdd(e->b, c64(e, start), LLVMBuildMul(e->b, c, c64(e, step), ""), "");
        q->coord[d] = c;
      }
    return eval(e, n->inputs[0], q, out);
  }
  case EW_PAD: {
    int64_t pad[2 * KL_MAX_RANK];
    double value;
    KL_RETURN_IF_ERROR(kl_ir_pad_params(n, xt->rank, pad, &value));
    kl_dtype dt = n->outputs[0]->type.dtype;
    LLVMValueRef fill = is_float(dt) ? cfp(reg_type(e, dt), dt == KL_F32 ? (float)value : value)
                                     : NULL;
    if (!fill) { /* integers as kl_dtype_store_f64: saturating, toward zero; Bool: != 0 */
      int64_t iv = isnan(value) ? 0 : value >= 9.2e18 ? INT64_MAX
                                    : value <= -9.2e18 ? INT64_MIN : (int64_t)value;
      fill = dt == KL_BOOL ? LLVMConstInt(e->i1, value != 0, 0)
                           : LLVMConstInt(reg_type(e, dt), (unsigned long long)iv, 1);
    }
    bool empty = false;
    for (int d = 0; d < xt->rank; d++) {
      empty = empty || xt->dims[d].size == 0;
      if (xt->dims[d].size + pad[2 * d] + pad[2 * d + 1] != p->shape[d])
        return node_error(n, "padding does not give the output's shape");
    }
    if (empty) {
      *out = fill;
      return NULL;
    }
    KL_RETURN_IF_ERROR(derived_point(e, n, 0, p, &q, &fresh));
    LLVMValueRef inside = LLVMConstInt(e->i1, 1, 0);
    for (int d = 0; d < p->rank; d++) {
      LLVMValueRef c = point_coord(e, p, d);
      int64_t size = xt->dims[d].size;
      if (pad[2 * d] == 0 && pad[2 * d + 1] <= 0) { /* never below 0, never past the end */
        if (fresh)
          q->coord[d] = c;
        continue;
      }
      LLVMValueRef src = LLVMBuildSub(e->b, c, c64(e, pad[2 * d]), "");
      inside = LLVMBuildAnd(e->b, inside, LLVMBuildICmp(e->b, LLVMIntULT, src, c64(e, size), ""),
                            "");
      if (fresh)
        q->coord[d] = clamp_index(e, src, size - 1);
    }
    LLVMValueRef x;
    KL_RETURN_IF_ERROR(eval(e, n->inputs[0], q, &x));
    *out = select_(e, inside, x, fill);
    return NULL;
  }
  case EW_CAT: {
    const kl_ir_attr *attr = kl_ir_node_attr(n, "dim");
    int dim;
    KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, attr ? attr->u.i : 0, p->rank, &dim));
    LLVMValueRef c = point_coord(e, p, dim), acc = NULL;
    int64_t total = 0;
    for (int i = 0; i < n->n_inputs; i++)
      if (!kl_add_i64(total, n->inputs[i]->type.dims[dim].size, &total))
        return node_error(n, "cat's output is too large");
    if (total != p->shape[dim])
      return node_error(n, "cat's inputs do not add up to its output");
    int64_t end = total; /* input i covers [end - size, end) along dim */
    for (int i = n->n_inputs - 1; i >= 0; i--) {
      int64_t size = n->inputs[i]->type.dims[dim].size, begin = end - size;
      if (size == 0)
        continue;
      KL_RETURN_IF_ERROR(derived_point(e, n, i, p, &q, &fresh));
      if (fresh)
        for (int d = 0; d < p->rank; d++)
          q->coord[d] = d != dim ? point_coord(e, p, d)
                                 : clamp_index(e, LLVMBuildSub(e->b, c, c64(e, begin), ""),
                                               size - 1);
      LLVMValueRef x;
      KL_RETURN_IF_ERROR(eval(e, n->inputs[i], q, &x));
      acc = acc ? select_(e, LLVMBuildICmp(e->b, LLVMIntSLT, c, c64(e, end), ""), x, acc) : x;
      end = begin;
    }
    if (!acc)
      return node_error(n, "cat of empty inputs");
    *out = acc;
    return NULL;
  }
  default: return node_error(n, "not a movement op");
  }
}

static kl_status eval_node(ew_emitter *e, const kl_ir_node *n, ew_point *p, LLVMValueRef *out) {
  const char *why = unsupported_reason(n);
  if (why)
    return node_error(n, why);
  ew_kind kind = kind_of(n->op);
  kl_dtype dt = n->inputs[0]->type.dtype;
  LLVMValueRef x[3];
  if (kind == EW_UNARY || kind == EW_BINARY || kind == EW_CAST || kind == EW_WHERE) {
    for (int i = 0; i < n->n_inputs; i++) {
      ew_point *q;
      KL_RETURN_IF_ERROR(broadcast_point(e, n, i, p, &n->inputs[i]->type, &q));
      KL_RETURN_IF_ERROR(eval(e, n->inputs[i], q, &x[i]));
    }
  }
  switch (kind) {
  case EW_UNARY: {
    kl_rt_unary_op op;
    double a, b;
    KL_RETURN_IF_ERROR(kl_ir_unary_params(n, &op, &a, &b));
    *out = is_float(dt) ? unary_float(e, op, a, b, x[0], dt) : unary_int(e, op, a, b, x[0], dt);
    return NULL;
  }
  case EW_BINARY: {
    kl_rt_binary_op op;
    KL_RETURN_IF_ERROR(kl_ir_binary_params(n, &op));
    *out = is_float(dt) ? binary_float(e, op, x[0], x[1], dt) : binary_int(e, op, x[0], x[1], dt);
    return NULL;
  }
  case EW_CAST: {
    kl_dtype to = n->outputs[0]->type.dtype;
    if (to == dt)
      *out = x[0];
    else if (dt == KL_F32 && to == KL_F64)
      *out = LLVMBuildFPExt(e->b, x[0], e->f64, "");
    else if (!is_float(dt) && !is_float(to))
      *out = i64_to_int(e, int_to_i64(e, x[0], dt), to);
    else
      *out = from_f64(e, to_f64(e, x[0], dt), to);
    return NULL;
  }
  case EW_WHERE: *out = select_(e, x[0], x[1], x[2]); return NULL;
  default: return eval_movement(e, n, kind, p, out);
  }
}

static kl_status eval(ew_emitter *e, const kl_ir_value *v, ew_point *p, LLVMValueRef *out) {
  ew_memo *hit = memo_find(e, v, 0, p);
  if (hit) {
    *out = hit->value;
    return NULL;
  }
  if (!same_shape(p, &v->type))
    return kl_status_create(KL_ERR_INTERNAL, "elementwise region: %%%s evaluated at a point of "
                            "another shape", v->name);
  int in = input_index(e->r, v);
  if (in >= 0) {
    kl_dtype dt = v->type.dtype;
    LLVMTypeRef mt = mem_type(e, dt);
    LLVMValueRef idx = point_linear(e, p);
    LLVMValueRef addr = LLVMBuildInBoundsGEP2(e->b, mt, e->in_ptrs[in], &idx, 1, "");
    LLVMValueRef x = LLVMBuildLoad2(e->b, mt, addr, "");
    LLVMSetAlignment(x, (unsigned)kl_dtype_size(dt));
    tag_access(e, x);
    if (dt == KL_BOOL)
      x = LLVMBuildICmp(e->b, LLVMIntNE, x, LLVMConstInt(e->i8, 0, 0), "");
    *out = x;
  } else if (v->node && in_region(e->r, v->node)) {
    KL_RETURN_IF_ERROR(eval_node(e, v->node, p, out));
  } else {
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "elementwise region: value %%%s is neither "
                            "a region input nor computed by a region node", v->name);
  }
  ew_memo m = {v, 0, p, *out, NULL};
  return memo_add(e, m);
}

/* ---- the loop nest -------------------------------------------------------------------------- */

static kl_status check_region(const kl_ew_region *r) {
  if (!r || r->n_outputs < 1 || !r->outputs)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "elementwise region: no outputs");
  if (r->n_inputs < 0 || r->n_nodes < 0 || (r->n_inputs && !r->inputs) ||
      (r->n_nodes && !r->nodes))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "elementwise region: bad node or input "
                            "list");
  const kl_ir_type *t0 = &r->outputs[0]->type;
  for (int i = 0; i < r->n_outputs; i++) {
    const kl_ir_type *t = &r->outputs[i]->type;
    if (!kl_ir_type_is_static(t) || dtype_why(t->dtype))
      return kl_status_create(KL_ERR_UNSUPPORTED, "elementwise region: output %%%s is not a "
                              "static tensor of a supported dtype", r->outputs[i]->name);
    if (t->rank != t0->rank)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "elementwise region: outputs differ in "
                              "rank");
    for (int d = 0; d < t->rank; d++)
      if (t->dims[d].size != t0->dims[d].size)
        return kl_status_create(KL_ERR_INVALID_ARGUMENT, "elementwise region: output %%%s's shape "
                                "differs from %%%s's", r->outputs[i]->name, r->outputs[0]->name);
  }
  for (int i = 0; i < r->n_inputs; i++) {
    const kl_ir_type *t = &r->inputs[i]->type;
    int64_t numel;
    if (!kl_ir_type_numel(t, &numel) || dtype_why(t->dtype))
      return kl_status_create(KL_ERR_UNSUPPORTED, "elementwise region: input %%%s is not a "
                              "static tensor of a supported dtype and size",
                              r->inputs[i]->name);
  }
  for (int i = 0; i < r->n_nodes; i++) {
    const char *why = unsupported_reason(r->nodes[i]);
    if (why)
      return node_error(r->nodes[i], why);
  }
  int64_t numel;
  if (!kl_ir_type_numel(t0, &numel))
    return kl_status_create(KL_ERR_LIMIT, "elementwise region: output %%%s has too many "
                            "elements", r->outputs[0]->name);
  return NULL;
}

static void emitter_free(ew_emitter *e) {
  for (int i = 0; i < e->n_points; i++)
    free(e->points[i]);
  free(e->points);
  free(e->memo);
  free(e->in_ptrs);
  free(e->out_ptrs);
  free(e->out_vals);
  if (e->b)
    LLVMDisposeBuilder(e->b);
}

/* Attaches loop metadata {name: value} to a loop's latch branch (a distinct, self-referential
 * llvm.loop node, made with a temporary first operand). */
static void set_loop_property(ew_emitter *e, LLVMValueRef latch_br, const char *name,
                              LLVMMetadataRef value) {
  LLVMMetadataRef temp = LLVMTemporaryMDNode(e->ctx, NULL, 0);
  LLVMMetadataRef prop_ops[2] = {LLVMMDStringInContext2(e->ctx, name, strlen(name)), value};
  LLVMMetadataRef ops[2] = {temp, LLVMMDNodeInContext2(e->ctx, prop_ops, 2)};
  LLVMMetadataRef loop = LLVMMDNodeInContext2(e->ctx, ops, 2);
  LLVMMetadataReplaceAllUsesWith(temp, loop);
  LLVMSetMetadata(latch_br, LLVMGetMDKindIDInContext(e->ctx, "llvm.loop", 9),
                  LLVMMetadataAsValue(e->ctx, loop));
}

static void add_fn_attr(LLVMContextRef ctx, LLVMValueRef fn, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(ctx, kind, 0));
}

/* Emits the body: the row loop over [row_begin, row_end) clamped to [0, rows), the row's
 * coordinates, and the inner loop over the last dim computing and storing every output. */
static kl_status emit_body(ew_emitter *e, LLVMValueRef fn) {
  const kl_ew_region *r = e->r;
  const kl_ir_type *t = &r->outputs[0]->type;
  int64_t len = inner_len(t), rows = kl_ew_region_rows(r);
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(e->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(e->b, entry);
  if (len == 0 || rows == 0) {
    LLVMBuildRetVoid(e->b);
    return NULL;
  }
  LLVMTypeRef ptr = LLVMPointerTypeInContext(e->ctx, 0);
  LLVMValueRef bufs = LLVMGetParam(fn, 0);
  e->in_ptrs = calloc((size_t)r->n_inputs + 1, sizeof *e->in_ptrs);
  e->out_ptrs = calloc((size_t)r->n_outputs, sizeof *e->out_ptrs);
  e->out_vals = calloc((size_t)r->n_outputs, sizeof *e->out_vals);
  if (!e->in_ptrs || !e->out_ptrs || !e->out_vals)
    return oom();
  LLVMValueRef *out_ptrs = e->out_ptrs, *vals = e->out_vals;
  for (int i = 0; i < r->n_outputs + r->n_inputs; i++) {
    LLVMValueRef idx = c64(e, i);
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(e->b, ptr, bufs, &idx, 1, "");
    LLVMValueRef p = LLVMBuildLoad2(e->b, ptr, slot, i < r->n_outputs ? "out" : "in");
    LLVMSetAlignment(p, 8);
    if (i < r->n_outputs)
      out_ptrs[i] = p;
    else
      e->in_ptrs[i - r->n_outputs] = p;
  }
  LLVMValueRef begin = LLVMGetParam(fn, 1), end = LLVMGetParam(fn, 2);
  begin = select_(e, LLVMBuildICmp(e->b, LLVMIntSLT, begin, c64(e, 0), ""), c64(e, 0), begin);
  end = select_(e, LLVMBuildICmp(e->b, LLVMIntSGT, end, c64(e, rows), ""), c64(e, rows), end);

  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(e->ctx, fn, "row");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(e->ctx, fn, "row.body");
  LLVMBasicBlockRef inner = LLVMAppendBasicBlockInContext(e->ctx, fn, "col");
  LLVMBasicBlockRef latch = LLVMAppendBasicBlockInContext(e->ctx, fn, "row.next");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->ctx, fn, "done");
  LLVMBuildBr(e->b, head);

  LLVMPositionBuilderAtEnd(e->b, head);
  LLVMValueRef row = LLVMBuildPhi(e->b, e->i64, "r");
  LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, row, end, ""), body, done);

  /* the row's coordinates (all dims but the last), once per row */
  LLVMPositionBuilderAtEnd(e->b, body);
  ew_point *root;
  int64_t shape[KL_MAX_RANK];
  type_shape(t, shape);
  KL_RETURN_IF_ERROR(new_point(e, t->rank, shape, &root));
  LLVMValueRef rest = row;
  for (int d = t->rank - 2; d >= 0; d--) {
    if (shape[d] == 1) {
      root->coord[d] = c64(e, 0);
    } else if (d == 0) {
      root->coord[d] = rest;
    } else {
      root->coord[d] = LLVMBuildURem(e->b, rest, c64(e, shape[d]), "");
      rest = LLVMBuildUDiv(e->b, rest, c64(e, shape[d]), "");
    }
  }
  LLVMValueRef row_start = LLVMBuildNUWMul(e->b, row, c64(e, len), "");
  LLVMBuildBr(e->b, inner);

  /* the inner loop: values of every output at (row, j), then the stores */
  LLVMPositionBuilderAtEnd(e->b, inner);
  LLVMValueRef j = LLVMBuildPhi(e->b, e->i64, "j");
  if (t->rank)
    root->coord[t->rank - 1] = j;
  root->linear = LLVMBuildNUWAdd(e->b, row_start, j, "i");
  for (int i = 0; i < r->n_outputs; i++)
    KL_RETURN_IF_ERROR(eval(e, r->outputs[i], root, &vals[i]));
  for (int i = 0; i < r->n_outputs; i++) {
    kl_dtype dt = r->outputs[i]->type.dtype;
    LLVMValueRef v = vals[i];
    if (dt == KL_BOOL)
      v = LLVMBuildZExt(e->b, v, e->i8, "");
    LLVMValueRef addr =
        LLVMBuildInBoundsGEP2(e->b, mem_type(e, dt), out_ptrs[i], &root->linear, 1, "");
    LLVMValueRef st = LLVMBuildStore(e->b, v, addr);
    LLVMSetAlignment(st, (unsigned)kl_dtype_size(dt));
    tag_access(e, st);
  }
  LLVMValueRef j_next = LLVMBuildNUWAdd(e->b, j, c64(e, 1), "");
  LLVMBasicBlockRef inner_end = LLVMGetInsertBlock(e->b);
  LLVMValueRef inner_br =
      LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntULT, j_next, c64(e, len), ""), inner, latch);
  if (e->access_group)
    set_loop_property(e, inner_br, "llvm.loop.parallel_accesses", e->access_group);
  LLVMValueRef j_in[2] = {c64(e, 0), j_next};
  LLVMBasicBlockRef j_from[2] = {body, inner_end};
  LLVMAddIncoming(j, j_in, j_from, 2);

  LLVMPositionBuilderAtEnd(e->b, latch);
  LLVMValueRef row_next = LLVMBuildNSWAdd(e->b, row, c64(e, 1), "");
  /* Rows are not vectorized: when a short inner loop is unrolled away, vectorizing the row
   * loop instead gives gathers over rows and very long compile times. */
  set_loop_property(e, LLVMBuildBr(e->b, head), "llvm.loop.vectorize.enable",
                    LLVMValueAsMetadata(LLVMConstInt(e->i1, 0, 0)));
  LLVMValueRef r_in[2] = {begin, row_next};
  LLVMBasicBlockRef r_from[2] = {entry, latch};
  LLVMAddIncoming(row, r_in, r_from, 2);

  LLVMPositionBuilderAtEnd(e->b, done);
  LLVMBuildRetVoid(e->b);
  return NULL;
}

kl_status kl_ew_emit(LLVMModuleRef m, const kl_ew_region *r, const char *fn_name,
                     LLVMValueRef *out_fn) {
  KL_RETURN_IF_ERROR(check_region(r));
  ew_emitter e = {0};
  e.ctx = LLVMGetModuleContext(m);
  e.m = m;
  e.r = r;
  e.i1 = LLVMInt1TypeInContext(e.ctx);
  e.i8 = LLVMInt8TypeInContext(e.ctx);
  e.i32 = LLVMInt32TypeInContext(e.ctx);
  e.i64 = LLVMInt64TypeInContext(e.ctx);
  e.f32 = LLVMFloatTypeInContext(e.ctx);
  e.f64 = LLVMDoubleTypeInContext(e.ctx);
  LLVMTypeRef params[3] = {LLVMPointerTypeInContext(e.ctx, 0), e.i64, e.i64};
  LLVMTypeRef fn_type = LLVMFunctionType(LLVMVoidTypeInContext(e.ctx), params, 3, 0);
  LLVMValueRef fn = LLVMAddFunction(m, fn_name, fn_type);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  add_fn_attr(e.ctx, fn, "nounwind");
  /* the widest vectors the target has: LLVM's default for Intel cores keeps loops at 256 bits,
   * which halves the throughput of the math-heavy loops here (a preference: narrower targets
   * are unaffected) */
  LLVMAddTargetDependentFunctionAttr(fn, "prefer-vector-width", "512");
  e.b = LLVMCreateBuilderInContext(e.ctx);
  e.access_group = make_access_group(e.ctx);
  kl_status s = emit_body(&e, fn);
  emitter_free(&e);
  if (s) {
    LLVMDeleteFunction(fn);
    return s;
  }
  if (out_fn)
    *out_fn = fn;
  return NULL;
}
