/* The CUDA backend's graph walk: a graph with static shapes to CUDA C and a launch list.
 *
 * Every operand lives in the caller's input or output buffers, the weight blob (prim::Param and
 * prim::Constant tensors, each 256-byte aligned) or the workspace (the memory plan's arena, then
 * scratch space for the intermediates of fusion groups, reused by every group). Every shape is
 * static and baked into the kernels as constants, so kernels take device pointers only.
 *
 * A run of consecutive elementwise nodes (unary, binary, where, cast, expand) of one output
 * shape, at the top level or in a fusion group's body, is one kernel (this file): a grid-stride
 * loop over the output's elements that loads each input at its broadcast index, computes every
 * node's value in registers and stores the values read outside the run. Such a run right after
 * a matmul, linear or conv2d of its shape (bias + ReLU, a residual add, GELU) is that kernel's
 * epilogue, computed from the accumulator in registers, so the anchor's output is never written
 * unless something else reads it. Every other node is one kernel of its own (ops.c): matmul
 * and linear a 16x16 shared-memory tiled FP32 GEMM (batch matrices on blockIdx.z, broadcast
 * batch dims), conv2d the same tiles as an implicit GEMM per image and group (direct, one
 * output element per thread, when a group has fewer than 16 channels), softmax, layer_norm and
 * attention one block per row with warp-shuffle block reductions, pooling, reductions and data
 * movement one output element per thread. Elementwise math follows the reference kernels
 * (runtime/kernels/unary.c, binary.c) in the value's own precision; reductions accumulate in
 * float for Float data, so results agree with the CPU to rounding (not bit for bit). */
#include <stdarg.h>

#include "cuda_internal.h"

#define WEIGHT_ALIGN 256

static const char prelude[] =
    "// kiln: generated CUDA kernels\n"
    "#define KD static __device__ __forceinline__\n"
    "#define K1(n) KD float k_##n(float x) { return n##f(x); } "
    "KD double k_##n(double x) { return n(x); }\n"
    "K1(exp) K1(log) K1(sqrt) K1(tanh) K1(erf) K1(sin) K1(cos) K1(tan) K1(asin) K1(acos)\n"
    "K1(atan) K1(sinh) K1(cosh) K1(asinh) K1(acosh) K1(atanh) K1(floor) K1(ceil) K1(rint)\n"
    "K1(fabs)\n"
    "KD float k_pow(float a, float b) { return powf(a, b); }\n"
    "KD double k_pow(double a, double b) { return pow(a, b); }\n"
    "KD float k_fmod(float a, float b) { return fmodf(a, b); }\n"
    "KD double k_fmod(double a, double b) { return fmod(a, b); }\n"
    "template <typename T> KD T k_max(T a, T b) { return (a != a || a > b) ? a : b; }\n"
    "template <typename T> KD T k_min(T a, T b) { return (a != a || a < b) ? a : b; }\n"
    "#define K_INF __longlong_as_double(0x7ff0000000000000LL)\n"
    "#define K_NAN __longlong_as_double(0x7ff8000000000000LL)\n"
    "// Block-wide reduction of v (blockDim.x threads, a power of two <= 1024); every thread\n"
    "// gets the result. op 0: sum, 1: max.\n"
    "KD float k_block_reduce(float v, int op) {\n"
    "  __shared__ float buf[32];\n"
    "  for (int o = 16; o > 0; o >>= 1) {\n"
    "    float w = __shfl_xor_sync(0xffffffffu, v, o);\n"
    "    v = op ? k_max(v, w) : v + w;\n"
    "  }\n"
    "  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;\n"
    "  __syncthreads();\n"
    "  if (lane == 0) buf[warp] = v;\n"
    "  __syncthreads();\n"
    "  v = lane < nw ? buf[lane] : (op ? -(float)K_INF : 0.0f);\n"
    "  for (int o = 16; o > 0; o >>= 1) {\n"
    "    float w = __shfl_xor_sync(0xffffffffu, v, o);\n"
    "    v = op ? k_max(v, w) : v + w;\n"
    "  }\n"
    "  return v;\n"
    "}\n\n";

/* ---- helpers --------------------------------------------------------------------------- */




static const char *node_what(const kl_ir_node *n, char *buf, size_t size) {
  snprintf(buf, size, "%s %%%s", kl_ir_node_op_name(n),
           n->n_outputs > 0 && n->outputs[0] ? n->outputs[0]->name : "?");
  return buf;
}

kl_status kl_cuda_unsupported(const kl_ir_node *n, const char *fmt, ...) {
  char why[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return kl_status_create(KL_ERR_UNSUPPORTED, "--target cuda does not support %s (%%%s) yet%s%s",
                          kl_ir_node_op_name(n),
                          n->n_outputs > 0 && n->outputs[0] ? n->outputs[0]->name : "?",
                          why[0] ? ": " : "", why);
}




static int next_kernel_id(emitter *E) { return E->p->n_launches; }

/* Records a launch of kernel k<id> with the locations of vals (NULL entries are skipped: the
 * kernel was written without them). */
void kl_cuda_add_launch(emitter *E, const char *what, int64_t grid_x, int64_t grid_y,
                       int64_t grid_z, int64_t block_x, int64_t block_y, int64_t shared,
                       const kl_ir_value *const *vals, int n_vals) {
  kl_cuda_program *p = E->p;
  if (p->n_launches == p->cap_launches) {
    p->cap_launches = p->cap_launches ? 2 * p->cap_launches : 32;
    p->launches = realloc(p->launches, (size_t)p->cap_launches * sizeof *p->launches);
    if (!p->launches)
      kl_fatal_oom();
  }
  kl_cuda_emit_launch *l = &p->launches[p->n_launches];
  memset(l, 0, sizeof *l);
  snprintf(l->kernel, sizeof l->kernel, "k%d", p->n_launches);
  l->grid[0] = grid_x;
  l->grid[1] = grid_y;
  l->grid[2] = grid_z;
  l->block[0] = block_x;
  l->block[1] = block_y;
  l->block[2] = 1;
  l->shared_bytes = shared;
  l->args = calloc((size_t)n_vals + 1, sizeof *l->args);
  l->what = strdup(what);
  if (!l->args || !l->what)
    kl_fatal_oom();
  if (!E->too_big && (n_vals > KL_CUDA_MAX_KERNEL_ARGS || grid_x > INT32_MAX ||
                      grid_y > 65535 || grid_z > 65535)) {
    E->too_big = strdup(what);
    if (!E->too_big)
      kl_fatal_oom();
  }
  for (int i = 0; i < n_vals; i++) {
    if (!vals[i])
      continue;
    const loc *L = &E->locs[vals[i]->id];
    l->args[l->n_args].kind = L->kind;
    l->args[l->n_args].index = L->index;
    l->args[l->n_args].offset = L->offset;
    l->n_args++;
  }
  p->n_launches++;
}

/* Writes the kernel's signature: vals[i] becomes parameter p<i> (inputs const); NULL entries
 * are left out (p<i> is then not declared). */
void kl_cuda_signature(emitter *E, const char *what, const kl_ir_value *const *vals, int n_vals,
                      int n_outputs_at_end) {
  fprintf(E->src, "// %s\nextern \"C\" __global__ void __launch_bounds__(1024) k%d(", what,
          next_kernel_id(E));
  bool first = true;
  for (int i = 0; i < n_vals; i++) {
    if (!vals[i])
      continue;
    bool is_out = i >= n_vals - n_outputs_at_end || i == E->out_pos;
    fprintf(E->src, "%s%s%s *p%d", first ? "" : ", ", is_out ? "" : "const ",
            storage_type(vals[i]->type.dtype), i);
    first = false;
  }
  fprintf(E->src, ") {\n");
}





/* ---- operand locations -------------------------------------------------------------------- */

static kl_status add_weight(emitter *E, const kl_ir_node *n) {
  const kl_ir_value *v = n->outputs[0];
  const kl_tensor *t;
  if (n->op == KL_OP_PARAM) {
    const char *pname = kl_ir_node_string(n, "name", "");
    t = kl_ir_graph_weight(E->g, pname);
    if (!t)
      return kl_status_create(KL_ERR_NOT_FOUND, "parameter \"%s\" (%%%s) has no value", pname,
                              v->name);
  } else {
    const kl_ir_attr *a = kl_ir_node_attr(n, "value");
    if (!a || a->kind != KL_ATTR_TENSOR || !a->u.t)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "prim::Constant %%%s has no tensor value",
                              v->name);
    t = a->u.t;
  }
  kl_ir_type tt = kl_ir_type_of_tensor(t);
  if (tt.dtype != v->type.dtype || !same_shape(&tt, &v->type))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "the tensor of %%%s does not have the value's declared type",
                            v->name);
  kl_cuda_program *p = E->p;
  uint64_t at = (p->weights_size + WEIGHT_ALIGN - 1) / WEIGHT_ALIGN * WEIGHT_ALIGN;
  uint64_t end = at + t->nbytes;
  if (end < at)
    return kl_status_create(KL_ERR_LIMIT, "the weights are too large");
  if (end > p->weights_cap) {
    uint64_t cap = p->weights_cap ? p->weights_cap : 4096;
    while (cap < end)
      cap *= 2;
    p->weights = realloc(p->weights, cap);
    if (!p->weights)
      kl_fatal_oom();
    p->weights_cap = cap;
  }
  memset(p->weights + p->weights_size, 0, at - p->weights_size);
  if (t->nbytes)
    memcpy(p->weights + at, t->data, t->nbytes);
  p->weights_size = end;
  E->locs[v->id] = (loc){KL_CUDA_ARG_WEIGHTS, 0, (int64_t)at};
  return NULL;
}

static kl_status add_scratch(emitter *E, const kl_ir_value *v) {
  int64_t bytes = 0, numel = 0;
  if (!kl_ir_type_numel(&v->type, &numel) ||
      !kl_mul_i64(numel, (int64_t)kl_dtype_size(v->type.dtype), &bytes))
    return kl_status_create(KL_ERR_LIMIT, "value %%%s is too large", v->name);
  int64_t end;
  if (!kl_add_i64(E->scratch_cur, bytes, &end) || end > INT64_MAX / 2)
    return kl_status_create(KL_ERR_LIMIT, "the workspace for value %%%s is too large", v->name);
  E->locs[v->id] = (loc){KL_CUDA_ARG_WORKSPACE, 0, E->scratch_cur};
  E->scratch_cur = (end + KL_MEMORY_ALIGN - 1) / KL_MEMORY_ALIGN * KL_MEMORY_ALIGN;
  if (E->scratch_cur > E->scratch_end)
    E->scratch_end = E->scratch_cur;
  return NULL;
}

/* ---- kernels ---------------------------------------------------------------------------- */

/* dst = src, element by element (same numel). */
static kl_status emit_copy(emitter *E, const kl_ir_value *src, const kl_ir_value *dst,
                           const char *what) {
  const kl_ir_value *vals[2] = {src, dst};
  int64_t n = numel_of(&dst->type);
  kl_cuda_signature(E, what, vals, 2, 1);
  fprintf(E->src,
          "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < %lldLL;\n"
          "       i += (long long)gridDim.x * blockDim.x)\n"
          "    p1[i] = p0[i];\n}\n\n",
          (long long)n);
  kl_cuda_add_launch(E, what, grid_for(n, EW_BLOCK), 1, 1, EW_BLOCK, 1, 0, vals, 2);
  return NULL;
}


static kl_status encode(const kl_ir_node *n, encoded *e) {
  int n_ops = n->n_inputs + n->n_outputs;
  kl_step_operand ops[64];
  int64_t shapes[64][KL_MAX_RANK];
  if (n_ops > 64)
    return kl_cuda_unsupported(n, "more than 64 operands");
  for (int i = 0; i < n_ops; i++) {
    const kl_ir_value *v = i < n->n_inputs ? n->inputs[i] : n->outputs[i - n->n_inputs];
    memset(&ops[i], 0, sizeof ops[i]);
    if (!v) {
      ops[i].rank = -1;
      continue;
    }
    if (!kl_ir_type_is_static(&v->type))
      return kl_status_create(KL_ERR_UNSUPPORTED,
                              "--target cuda needs static shapes: %%%s of %s is not static",
                              v->name, kl_ir_node_op_name(n));
    if (!ctype(v->type.dtype))
      return kl_cuda_unsupported(n, "dtype %s of %%%s", kl_dtype_ir_name(v->type.dtype), v->name);
    int64_t numel = 0, bytes = 0;
    if (!kl_ir_type_numel(&v->type, &numel) ||
        !kl_mul_i64(numel, (int64_t)kl_dtype_size(v->type.dtype), &bytes) ||
        bytes > INT64_MAX / 4)
      return kl_status_create(KL_ERR_LIMIT, "%s: %%%s is too large", kl_ir_node_op_name(n),
                              v->name);
    ops[i].dtype = v->type.dtype;
    ops[i].rank = v->type.rank;
    shape_of(&v->type, shapes[i]);
    ops[i].shape = shapes[i];
  }
  return kl_step_encode(n, ops, n->n_inputs, ops + n->n_inputs, n->n_outputs, &e->info,
                        e->params);
}

/* The value of node n (an elementwise node of a region) as a CUDA expression of the variables
 * v<id> of its inputs. */
static kl_status ew_expr(const kl_ir_node *n, const encoded *e, char *buf, size_t size) {
  const char *k = e->info->kernel;
  kl_dtype ot = n->outputs[0]->type.dtype;
  const char *T = ctype(ot);
  int x = n->n_inputs > 0 && n->inputs[0] ? n->inputs[0]->id : -1;
  if (strcmp(k, "expand") == 0) {
    snprintf(buf, size, "v%d", x);
    return NULL;
  }
  if (strcmp(k, "cast") == 0) {
    if (ot == KL_BOOL)
      snprintf(buf, size, "(unsigned char)(v%d != 0)", x);
    else
      snprintf(buf, size, "(%s)v%d", T, x);
    return NULL;
  }
  if (strcmp(k, "where") == 0) {
    snprintf(buf, size, "(v%d ? v%d : v%d)", x, n->inputs[1]->id, n->inputs[2]->id);
    return NULL;
  }
  if (strcmp(k, "unary") == 0) {
    kl_step_unary_params up;
    memcpy(&up, e->params, sizeof up);
    char a[64], b[64];
    fmt_double(a, sizeof a, up.a);
    fmt_double(b, sizeof b, up.b);
    bool f = is_float(ot);
    const char *fn = NULL;
    switch ((kl_rt_unary_op)up.op) {
    case KL_UNARY_RELU: snprintf(buf, size, "(v%d > (%s)0 ? v%d : (%s)0)", x, T, x, T); return NULL;
    case KL_UNARY_IDENTITY: snprintf(buf, size, "v%d", x); return NULL;
    case KL_UNARY_NEG: snprintf(buf, size, "(%s)(-v%d)", T, x); return NULL;
    case KL_UNARY_ABS:
      if (f)
        snprintf(buf, size, "k_fabs(v%d)", x);
      else
        snprintf(buf, size, "(%s)(v%d < 0 ? -v%d : v%d)", T, x, x, x);
      return NULL;
    case KL_UNARY_CLAMP:
      if (f)
        snprintf(buf, size, "k_min(k_max(v%d, (%s)(%s)), (%s)(%s))", x, T, a, T, b);
      else
        snprintf(buf, size, "(%s)(v%d < (%s) ? (%s) : (v%d > (%s) ? (%s) : v%d))", T, x, a, a,
                 x, b, b, x);
      return NULL;
    case KL_UNARY_SIGN:
      snprintf(buf, size, "(%s)(v%d > 0 ? 1 : (v%d < 0 ? -1 : v%d))", T, x, x, x);
      return NULL;
    case KL_UNARY_BITWISE_NOT:
      if (f)
        break;
      if (ot == KL_BOOL)
        snprintf(buf, size, "(unsigned char)!v%d", x);
      else
        snprintf(buf, size, "(%s)~v%d", T, x);
      return NULL;
    default: break;
    }
    if (!f)
      return kl_cuda_unsupported(n, "integer dtype %s", kl_dtype_ir_name(ot));
    switch ((kl_rt_unary_op)up.op) {
    case KL_UNARY_LEAKY_RELU:
      snprintf(buf, size, "(v%d >= 0 ? v%d : (%s)(%s) * v%d)", x, x, T, a, x);
      return NULL;
    case KL_UNARY_SIGMOID:
      snprintf(buf, size, "((%s)1 / ((%s)1 + k_exp(-v%d)))", T, T, x);
      return NULL;
    case KL_UNARY_HARDSIGMOID:
      snprintf(buf, size, "k_min(k_max(v%d / (%s)6 + (%s)0.5, (%s)0), (%s)1)", x, T, T, T, T);
      return NULL;
    case KL_UNARY_HARDSWISH:
      snprintf(buf, size, "(v%d * k_min(k_max(v%d / (%s)6 + (%s)0.5, (%s)0), (%s)1))", x, x, T,
               T, T, T);
      return NULL;
    case KL_UNARY_GELU:
      snprintf(buf, size, "(v%d * (%s)0.5 * ((%s)1 + k_erf(v%d * (%s)0.70710678118654752440)))",
               x, T, T, x, T);
      return NULL;
    case KL_UNARY_GELU_TANH:
      snprintf(buf, size,
               "((%s)0.5 * v%d * ((%s)1 + k_tanh((%s)0.79788456080286535588 * (v%d + "
               "(%s)0.044715 * v%d * v%d * v%d))))",
               T, x, T, T, x, T, x, x, x);
      return NULL;
    case KL_UNARY_SILU: snprintf(buf, size, "(v%d / ((%s)1 + k_exp(-v%d)))", x, T, x); return NULL;
    case KL_UNARY_RSQRT: snprintf(buf, size, "((%s)1 / k_sqrt(v%d))", T, x); return NULL;
    case KL_UNARY_RECIPROCAL: snprintf(buf, size, "((%s)1 / v%d)", T, x); return NULL;
    case KL_UNARY_TANH: fn = "tanh"; break;
    case KL_UNARY_SQRT: fn = "sqrt"; break;
    case KL_UNARY_EXP: fn = "exp"; break;
    case KL_UNARY_LOG: fn = "log"; break;
    case KL_UNARY_ERF: fn = "erf"; break;
    case KL_UNARY_SIN: fn = "sin"; break;
    case KL_UNARY_COS: fn = "cos"; break;
    case KL_UNARY_TAN: fn = "tan"; break;
    case KL_UNARY_ASIN: fn = "asin"; break;
    case KL_UNARY_ACOS: fn = "acos"; break;
    case KL_UNARY_ATAN: fn = "atan"; break;
    case KL_UNARY_SINH: fn = "sinh"; break;
    case KL_UNARY_COSH: fn = "cosh"; break;
    case KL_UNARY_ASINH: fn = "asinh"; break;
    case KL_UNARY_ACOSH: fn = "acosh"; break;
    case KL_UNARY_ATANH: fn = "atanh"; break;
    case KL_UNARY_FLOOR: fn = "floor"; break;
    case KL_UNARY_CEIL: fn = "ceil"; break;
    case KL_UNARY_ROUND: fn = "rint"; break;
    default: return kl_cuda_unsupported(n, "unary op %d", (int)up.op);
    }
    snprintf(buf, size, "k_%s(v%d)", fn, x);
    return NULL;
  }
  if (strcmp(k, "binary") == 0) {
    kl_step_binary_params bp;
    memcpy(&bp, e->params, sizeof bp);
    kl_dtype it = n->inputs[0]->type.dtype;
    const char *IT = ctype(it);
    int y = n->inputs[1]->id;
    bool f = is_float(it);
    const char *op = NULL;
    switch ((kl_rt_binary_op)bp.op) {
    case KL_BINARY_ADD: op = "+"; break;
    case KL_BINARY_SUB: op = "-"; break;
    case KL_BINARY_MUL: op = "*"; break;
    case KL_BINARY_EQ: op = "=="; break;
    case KL_BINARY_NE: op = "!="; break;
    case KL_BINARY_LT: op = "<"; break;
    case KL_BINARY_LE: op = "<="; break;
    case KL_BINARY_GT: op = ">"; break;
    case KL_BINARY_GE: op = ">="; break;
    case KL_BINARY_MAX: snprintf(buf, size, "k_max<%s>(v%d, v%d)", IT, x, y); return NULL;
    case KL_BINARY_MIN: snprintf(buf, size, "k_min<%s>(v%d, v%d)", IT, x, y); return NULL;
    case KL_BINARY_AND: if (!f) op = "&"; break;
    case KL_BINARY_OR: if (!f) op = "|"; break;
    case KL_BINARY_XOR: if (!f) op = "^"; break;
    case KL_BINARY_DIV: if (f) op = "/"; break;
    case KL_BINARY_POW:
      if (f) {
        snprintf(buf, size, "k_pow(v%d, v%d)", x, y);
        return NULL;
      }
      break;
    case KL_BINARY_FMOD:
      if (f) {
        snprintf(buf, size, "k_fmod(v%d, v%d)", x, y);
        return NULL;
      }
      break;
    case KL_BINARY_REMAINDER:
      if (f) {
        snprintf(buf, size, "(v%d - k_floor(v%d / v%d) * v%d)", x, x, y, y);
        return NULL;
      }
      break;
    default: break;
    }
    if (!op)
      return kl_cuda_unsupported(n, "binary op %d on %s", (int)bp.op, kl_dtype_ir_name(it));
    snprintf(buf, size, "(%s)(v%d %s v%d)", T, x, op, y);
    return NULL;
  }
  return kl_cuda_unsupported(n, "kernel %s in an elementwise kernel", k);
}

static bool region_capable(const kl_ir_node *n) {
  if (n->n_outputs != 1 || n->op == KL_OP_PARAM || n->op == KL_OP_CONSTANT || n->n_blocks)
    return false;
  encoded e;
  kl_status s = encode(n, &e);
  if (s) {
    kl_status_destroy(s);
    return false;
  }
  const char *k = e.info->kernel;
  if (!(strcmp(k, "unary") == 0 || strcmp(k, "binary") == 0 || strcmp(k, "where") == 0 ||
        strcmp(k, "cast") == 0 || strcmp(k, "expand") == 0))
    return false;
  char buf[512];
  s = ew_expr(n, &e, buf, sizeof buf);
  if (s) {
    kl_status_destroy(s);
    return false;
  }
  return true;
}


static void region_plan_init(region_plan *rp, kl_ir_node *const *nodes, int n,
                             const kl_ir_value *given) {
  int cap = 8;
  for (int i = 0; i < n; i++)
    cap += nodes[i]->n_inputs + nodes[i]->n_outputs;
  rp->nodes = nodes;
  rp->n = n;
  rp->ins = malloc((size_t)cap * sizeof *rp->ins);
  rp->outs = malloc((size_t)cap * sizeof *rp->outs);
  if (!rp->ins || !rp->outs)
    kl_fatal_oom();
  rp->n_ins = rp->n_outs = 0;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < nodes[i]->n_inputs; j++) {
      const kl_ir_value *v = nodes[i]->inputs[j];
      bool inside = v == given, seen = false;
      for (int k = 0; k < i && !inside; k++)
        inside = v->node == nodes[k];
      for (int k = 0; k < rp->n_ins && !seen; k++)
        seen = rp->ins[k] == v;
      if (!inside && !seen)
        rp->ins[rp->n_ins++] = v;
    }
    const kl_ir_value *v = nodes[i]->outputs[0];
    bool escapes = false;
    for (int u = 0; u < v->n_uses && !escapes; u++) {
      const kl_ir_node *user = v->uses[u].user;
      escapes = true;
      for (int k = 0; k < n && user; k++)
        if (user == nodes[k])
          escapes = false;
    }
    if (escapes)
      rp->outs[rp->n_outs++] = v;
  }
}

static void region_plan_free(region_plan *rp) {
  free(rp->ins);
  free(rp->outs);
}

/* Whether v is read or written only by the nodes of rp (and nowhere else). */
static bool used_only_by(const kl_ir_value *v, const region_plan *rp) {
  for (int u = 0; u < v->n_uses; u++) {
    const kl_ir_node *user = v->uses[u].user;
    bool inside = false;
    for (int k = 0; k < rp->n && user && !inside; k++)
      inside = user == rp->nodes[k];
    if (!inside)
      return false;
  }
  return true;
}

/* The region's code for element `i` of the output shape ot: loads of its inputs (parameters
 * p<first_param>..), every node's value, stores of its outputs (the parameters after the
 * inputs). */
kl_status kl_cuda_region_code(FILE *f, const region_plan *rp, const kl_ir_type *ot,
                             int first_param) {
  int64_t shape[KL_MAX_RANK];
  shape_of(ot, shape);
  emit_coords(f, shape, ot->rank, "i", "c");
  for (int i = 0; i < rp->n_ins; i++) {
    char off[1024];
    if (same_shape(&rp->ins[i]->type, ot))
      snprintf(off, sizeof off, "i");
    else
      bcast_offset(off, sizeof off, &rp->ins[i]->type, ot->rank, "c");
    fprintf(f, "    const %s v%d = p%d[%s];\n", ctype(rp->ins[i]->type.dtype), rp->ins[i]->id,
            first_param + i, off);
  }
  for (int i = 0; i < rp->n; i++) {
    encoded e;
    char expr[1024];
    KL_RETURN_IF_ERROR(encode(rp->nodes[i], &e));
    KL_RETURN_IF_ERROR(ew_expr(rp->nodes[i], &e, expr, sizeof expr));
    fprintf(f, "    const %s v%d = %s;\n", ctype(rp->nodes[i]->outputs[0]->type.dtype),
            rp->nodes[i]->outputs[0]->id, expr);
  }
  for (int i = 0; i < rp->n_outs; i++)
    fprintf(f, "    p%d[i] = v%d;\n", first_param + rp->n_ins + i, rp->outs[i]->id);
  return NULL;
}

/* nodes[0 .. n-1]: consecutive elementwise nodes of one output shape, as one kernel. */
static kl_status emit_region(emitter *E, kl_ir_node *const *nodes, int n) {
  region_plan rp;
  region_plan_init(&rp, nodes, n, NULL);
  kl_status s = NULL;
  if (rp.n_outs == 0)
    goto done;
  const kl_ir_value **vals = malloc(((size_t)rp.n_ins + (size_t)rp.n_outs) * sizeof *vals);
  if (!vals)
    kl_fatal_oom();
  for (int i = 0; i < rp.n_ins; i++)
    vals[i] = rp.ins[i];
  for (int i = 0; i < rp.n_outs; i++)
    vals[rp.n_ins + i] = rp.outs[i];
  const kl_ir_type *ot = &nodes[0]->outputs[0]->type;
  int64_t total = numel_of(ot);
  char what[160];
  node_what(nodes[n - 1], what, sizeof what);
  if (n > 1) {
    size_t len = strlen(what);
    snprintf(what + len, sizeof what - len, " (and %d more)", n - 1);
  }
  /* Generate into a temporary stream first: a node may still fail. */
  char *body = NULL;
  size_t body_len = 0;
  FILE *f = open_memstream(&body, &body_len);
  if (!f)
    kl_fatal_oom();
  fprintf(f,
          "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < %lldLL;\n"
          "       i += (long long)gridDim.x * blockDim.x) {\n",
          (long long)total);
  s = kl_cuda_region_code(f, &rp, ot, 0);
  fprintf(f, "  }\n}\n\n");
  fclose(f);
  if (!s) {
    kl_cuda_signature(E, what, vals, rp.n_ins + rp.n_outs, rp.n_outs);
    fwrite(body, 1, body_len, E->src);
    kl_cuda_add_launch(E, what, grid_for(total, EW_BLOCK), 1, 1, EW_BLOCK, 1, 0, vals,
               rp.n_ins + rp.n_outs);
  }
  free(body);
  free(vals);
done:
  region_plan_free(&rp);
  return s;
}

/* ---- walking blocks ------------------------------------------------------------------- */

static kl_status emit_block(emitter *E, const kl_ir_block *b, bool top);

static bool same_loc(const loc *a, const loc *b) {
  return a->kind == b->kind && a->index == b->index && a->offset == b->offset;
}

/* The elementwise nodes right after anchor n that can be its epilogue (computed in its kernel
 * from its value in registers): the run of region-capable nodes of n's output shape after n,
 * reading n's output, none of whose stored outputs lives where one of n's inputs does (an
 * in-place write would race with the anchor's reads of its neighbours). */
static int epilogue_run(emitter *E, const kl_ir_node *n, kl_ir_node ***out_run) {
  const kl_ir_value *y = n->outputs[0];
  int cap = 8, n_run = 0;
  kl_ir_node **run = malloc((size_t)cap * sizeof *run);
  if (!run)
    kl_fatal_oom();
  for (kl_ir_node *m = n->next; m && m->op != KL_OP_PARAM && m->op != KL_OP_CONSTANT &&
                                region_capable(m) &&
                                same_shape(&m->outputs[0]->type, &y->type);
       m = m->next) {
    if (n_run == cap) {
      cap *= 2;
      run = realloc(run, (size_t)cap * sizeof *run);
      if (!run)
        kl_fatal_oom();
    }
    run[n_run++] = m;
  }
  bool reads = false;
  for (int i = 0; i < n_run && !reads; i++)
    for (int j = 0; j < run[i]->n_inputs; j++)
      reads = reads || run[i]->inputs[j] == y;
  if (n_run > 0 && reads) {
    region_plan rp;
    region_plan_init(&rp, run, n_run, y);
    for (int i = 0; i < rp.n_outs && reads; i++)
      for (int j = 0; j < n->n_inputs && reads; j++)
        if (n->inputs[j] && same_loc(&E->locs[rp.outs[i]->id], &E->locs[n->inputs[j]->id]))
          reads = false;
    region_plan_free(&rp);
  }
  if (!reads || n_run == 0) {
    free(run);
    *out_run = NULL;
    return 0;
  }
  *out_run = run;
  return n_run;
}

/* An anchor with its epilogue; *next becomes the node after the epilogue. */
static kl_status emit_anchor(emitter *E, const kl_ir_node *n, const encoded *e, const char *what,
                             kl_ir_node **next) {
  const char *k = e->info->kernel;
  bool gemm = strcmp(k, "conv2d") != 0;
  kl_ir_node **run = NULL;
  int n_run = n->n_outputs == 1 ? epilogue_run(E, n, &run) : 0;
  if (n_run == 0)
    return gemm ? kl_cuda_emit_gemm(E, n, strcmp(k, "linear") == 0, what, NULL, false)
                : kl_cuda_emit_conv2d(E, n, e, what, NULL, false);
  region_plan rp;
  region_plan_init(&rp, run, n_run, n->outputs[0]);
  bool y_escapes = !used_only_by(n->outputs[0], &rp);
  char full[200];
  snprintf(full, sizeof full, "%s + %d elementwise", what, n_run);
  kl_status s = gemm ? kl_cuda_emit_gemm(E, n, strcmp(k, "linear") == 0, full, &rp, y_escapes)
                     : kl_cuda_emit_conv2d(E, n, e, full, &rp, y_escapes);
  region_plan_free(&rp);
  *next = run[n_run - 1]->next;
  free(run);
  return s;
}

static kl_status emit_node(emitter *E, const kl_ir_node *n, kl_ir_node **next) {
  char what[160];
  node_what(n, what, sizeof what);
  if (n->op == KL_OP_IF || n->op == KL_OP_LOOP)
    return kl_cuda_unsupported(n, "control flow is not generated");
  encoded e;
  KL_RETURN_IF_ERROR(encode(n, &e));
  const char *k = e.info->kernel;
  if (strcmp(k, "copy") == 0)
    return emit_copy(E, n->inputs[0], n->outputs[0], what);
  if (strcmp(k, "permute") == 0)
    return kl_cuda_emit_permute(E, n, &e, what);
  if (strcmp(k, "matmul") == 0 || strcmp(k, "linear") == 0 || strcmp(k, "conv2d") == 0)
    return emit_anchor(E, n, &e, what, next);
  if (strcmp(k, "batch_norm") == 0)
    return kl_cuda_emit_batch_norm(E, n, &e, what);
  if (strcmp(k, "layer_norm") == 0)
    return kl_cuda_emit_layer_norm(E, n, &e, what);
  if (strcmp(k, "softmax") == 0)
    return kl_cuda_emit_softmax(E, n, &e, what);
  if (strcmp(k, "max_pool2d") == 0 || strcmp(k, "avg_pool2d") == 0 ||
      strcmp(k, "adaptive_avg_pool2d") == 0)
    return kl_cuda_emit_pool(E, n, &e, k, what);
  if (strcmp(k, "reduce") == 0)
    return kl_cuda_emit_reduce(E, n, &e, what);
  if (strcmp(k, "cat") == 0)
    return kl_cuda_emit_cat(E, n, &e, what);
  if (strcmp(k, "slice") == 0)
    return kl_cuda_emit_slice(E, n, &e, what);
  if (strcmp(k, "split") == 0)
    return kl_cuda_emit_split(E, n, &e, what);
  if (strcmp(k, "gather") == 0)
    return kl_cuda_emit_gather(E, n, &e, what);
  if (strcmp(k, "constant_pad") == 0)
    return kl_cuda_emit_constant_pad(E, n, &e, what);
  if (strcmp(k, "attention") == 0)
    return kl_cuda_emit_attention(E, n, &e, what);
  return kl_cuda_unsupported(n, "%s", "");
}

static kl_status emit_group(emitter *E, const kl_ir_node *gn) {
  if (gn->n_blocks != 1)
    return kl_cuda_unsupported(gn, "a fusion group without one body");
  const kl_ir_block *body = gn->blocks[0];
  if (body->n_params != gn->n_inputs || body->n_returns != gn->n_outputs)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "prim::FusionGroup %%%s: its body's parameters and returns do not "
                            "match its inputs and outputs",
                            gn->n_outputs ? gn->outputs[0]->name : "?");
  E->scratch_cur = E->scratch_base;
  for (int i = 0; i < body->n_params; i++)
    E->locs[body->params[i]->id] = E->locs[gn->inputs[i]->id];
  bool *late = calloc((size_t)body->n_returns + 1, sizeof *late);
  if (!late)
    kl_fatal_oom();
  for (int i = 0; i < body->n_returns; i++) {
    const kl_ir_value *r = body->returns[i];
    if (r->node && r->node->owner == body && r->node->op != KL_OP_PARAM &&
        r->node->op != KL_OP_CONSTANT && E->locs[r->id].kind < 0)
      E->locs[r->id] = E->locs[gn->outputs[i]->id];
    else
      late[i] = true;
  }
  kl_status s = emit_block(E, body, false);
  for (int i = 0; i < body->n_returns && !s; i++)
    if (late[i]) {
      char what[160];
      node_what(gn, what, sizeof what);
      s = emit_copy(E, body->returns[i], gn->outputs[i], what);
    }
  free(late);
  return s;
}

static kl_status emit_block(emitter *E, const kl_ir_block *b, bool top) {
  int cap = 16, n_run = 0;
  kl_ir_node **run = malloc((size_t)cap * sizeof *run);
  if (!run)
    kl_fatal_oom();
  kl_status s = NULL;
  for (kl_ir_node *n = b->first; n && !s;) {
    if (n->op == KL_OP_PARAM || n->op == KL_OP_CONSTANT) {
      s = add_weight(E, n);
      n = n->next;
      continue;
    }
    /* Every output gets a place before its kernel is written (for an anchor, those of the
     * elementwise run after it too, its possible epilogue). */
    for (kl_ir_node *m = n; m && !s; m = m->next) {
      if (m->op == KL_OP_PARAM || m->op == KL_OP_CONSTANT || (m != n && !region_capable(m)))
        break;
      for (int i = 0; i < m->n_outputs && !s; i++) {
        const kl_ir_value *v = m->outputs[i];
        if (E->locs[v->id].kind >= 0)
          continue;
        if (top && E->plan->offset[v->id] >= 0)
          E->locs[v->id] = (loc){KL_CUDA_ARG_WORKSPACE, 0, E->plan->offset[v->id]};
        else if (!top)
          s = add_scratch(E, v);
        else
          s = kl_status_create(KL_ERR_INTERNAL, "value %%%s has no place in the workspace",
                               v->name);
      }
    }
    if (s)
      break;
    if (!region_capable(n)) {
      kl_ir_node *next = n->next;
      s = n->op == KL_OP_FUSION_GROUP ? emit_group(E, n) : emit_node(E, n, &next);
      n = next;
      continue;
    }
    n_run = 0;
    kl_ir_node *m = n;
    while (m && m->op != KL_OP_PARAM && m->op != KL_OP_CONSTANT && region_capable(m) &&
           same_shape(&m->outputs[0]->type, &n->outputs[0]->type)) {
      if (n_run == cap) {
        cap *= 2;
        run = realloc(run, (size_t)cap * sizeof *run);
        if (!run)
          kl_fatal_oom();
      }
      run[n_run++] = m;
      m = m->next;
    }
    s = emit_region(E, run, n_run);
    n = m;
  }
  free(run);
  return s;
}

kl_status kl_cuda_emit(const kl_ir_graph *g, kl_cuda_program *out) {
  memset(out, 0, sizeof *out);
  const kl_ir_block *top = g->top;
  for (int i = 0; i < top->n_params; i++)
    if (!kl_ir_type_is_static(&top->params[i]->type))
      return kl_status_create(KL_ERR_UNSUPPORTED,
                              "--target cuda needs static shapes: input %%%s is not static",
                              top->params[i]->name);
  emitter E = {0};
  E.g = g;
  E.p = out;
  E.out_pos = -1;
  KL_RETURN_IF_ERROR(kl_memory_plan_create(g, &E.plan));
  int nv = E.plan->n_values;
  E.locs = malloc(((size_t)nv + 1) * sizeof *E.locs);
  if (!E.locs)
    kl_fatal_oom();
  for (int i = 0; i < nv; i++)
    E.locs[i].kind = -1;
  E.scratch_base = (E.plan->workspace_bytes + KL_MEMORY_ALIGN - 1) / KL_MEMORY_ALIGN *
                   KL_MEMORY_ALIGN;
  E.scratch_end = E.scratch_base;
  char *src = NULL;
  size_t src_len = 0;
  E.src = open_memstream(&src, &src_len);
  if (!E.src)
    kl_fatal_oom();
  fputs(prelude, E.src);
  for (int i = 0; i < top->n_params; i++)
    E.locs[top->params[i]->id] = (loc){KL_CUDA_ARG_INPUT, i, 0};
  bool *late = calloc((size_t)top->n_returns + 1, sizeof *late);
  if (!late)
    kl_fatal_oom();
  for (int i = 0; i < top->n_returns; i++) {
    const kl_ir_value *v = top->returns[i];
    if (v->node && v->node->op != KL_OP_PARAM && v->node->op != KL_OP_CONSTANT &&
        E.locs[v->id].kind < 0)
      E.locs[v->id] = (loc){KL_CUDA_ARG_OUTPUT, i, 0};
    else
      late[i] = true;
  }
  kl_status s = emit_block(&E, top, true);
  /* Outputs that are inputs, weights or repeats are copied at the end into a stand-in value
   * that lives in the output buffer. */
  for (int i = 0; i < top->n_returns && !s; i++) {
    if (!late[i])
      continue;
    kl_ir_value stand_in = *top->returns[i];
    stand_in.id = nv; /* the spare entry of locs */
    E.locs[nv] = (loc){KL_CUDA_ARG_OUTPUT, i, 0};
    char what[96];
    snprintf(what, sizeof what, "output %d", i);
    s = emit_copy(&E, top->returns[i], &stand_in, what);
  }
  free(late);
  if (!s && E.too_big)
    s = kl_status_create(KL_ERR_UNSUPPORTED,
                         "--target cuda cannot launch the kernel of %s: more than %d operands or "
                         "a grid beyond the device's limits",
                         E.too_big, KL_CUDA_MAX_KERNEL_ARGS);
  free(E.too_big);
  fclose(E.src);
  out->source = src;
  out->source_len = src_len;
  out->workspace_size = (uint64_t)E.scratch_end;
  free(E.locs);
  kl_memory_plan_destroy(E.plan);
  if (s)
    kl_cuda_program_free(out);
  return s;
}

void kl_cuda_program_free(kl_cuda_program *p) {
  if (!p)
    return;
  free(p->source);
  for (int i = 0; i < p->n_launches; i++) {
    free(p->launches[i].args);
    free(p->launches[i].what);
  }
  free(p->launches);
  free(p->weights);
  memset(p, 0, sizeof *p);
}
