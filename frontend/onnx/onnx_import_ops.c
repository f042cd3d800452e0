/* The per-op mapping of ONNX import: one function per ONNX op (or family), found by op_type
 * and opset in the table at the end of this file; data movement and shape ops live in
 * onnx_import_shape.c, ops built from several IR ops in onnx_import_compose.c. Each emits one
 * or a few IR ops of ir/ops.def (Gemm -> linear or matmul + mul + add; opset<13 Softmax ->
 * flatten + softmax + reshape). Inputs that ONNX allows to be computed but kiln needs as
 * numbers (Reshape's shape, Slice's starts, ...) must be constants: initializers, Constant
 * nodes, or small nodes of constants, which are evaluated at import; otherwise the node gets
 * a "needs a constant" error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../runtime/checked.h"
#include "../../runtime/interp.h"
#include "onnx_internal.h"

/* ---- attributes ---------------------------------------------------------------------------- */

const Onnx__AttributeProto *kl_onnx_attr(const Onnx__NodeProto *node, const char *name) {
  for (size_t i = 0; i < node->n_attribute; i++)
    if (node->attribute[i]->name && !strcmp(node->attribute[i]->name, name))
      return node->attribute[i];
  return NULL;
}

int64_t kl_onnx_attr_int(const kl_onnx_node_ctx *c, const char *name, int64_t dflt) {
  const Onnx__AttributeProto *a = kl_onnx_attr(c->node, name);
  return a && a->has_i ? a->i : dflt;
}

double kl_onnx_attr_float(const kl_onnx_node_ctx *c, const char *name, double dflt) {
  const Onnx__AttributeProto *a = kl_onnx_attr(c->node, name);
  return a && a->has_f ? a->f : dflt;
}

/* The string attribute name into buf, or dflt. */
const char *kl_onnx_attr_string(const kl_onnx_node_ctx *c, const char *name, const char *dflt,
                               char *buf, size_t size) {
  const Onnx__AttributeProto *a = kl_onnx_attr(c->node, name);
  if (!a || !a->has_s)
    return dflt;
  size_t n = a->s.len < size - 1 ? a->s.len : size - 1;
  memcpy(buf, a->s.data, n);
  buf[n] = '\0';
  return buf;
}

/* The ints attribute name; *out_n = -1 when absent. */
const int64_t *kl_onnx_attr_ints(const kl_onnx_node_ctx *c, const char *name, int *out_n) {
  const Onnx__AttributeProto *a = kl_onnx_attr(c->node, name);
  bool other_kind = a && a->n_ints == 0 && a->has_type &&
                    a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  if (!a || other_kind) {
    *out_n = -1;
    return NULL;
  }
  *out_n = (int)a->n_ints;
  return a->ints;
}

kl_status kl_onnx_missing_attr(kl_onnx_node_ctx *c, const char *name) {
  return kl_onnx_node_error(c, KL_ERR_FORMAT, "missing required attribute '%s'", name);
}

kl_ir_value *kl_onnx_input(const kl_onnx_node_ctx *c, int i) {
  return i < c->n_in ? c->in[i] : NULL;
}

/* Input i as integers (at most max of them); it must be a constant. */
kl_status kl_onnx_const_ints(kl_onnx_node_ctx *c, int i, int64_t *out, int max, int *out_n) {
  kl_ir_value *v = kl_onnx_input(c, i);
  kl_tensor *t = kl_onnx_const_tensor(c, v);
  *out_n = 0;
  if (!t && v && kl_onnx_probe_value(c, v))
    return NULL;
  if (!t && v)
    c->imp->needs_run_time = true;
  if (!v) /* absent: the node may have fewer than i + 1 inputs, so no name to print */
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input %d is missing", i);
  if (!t)
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "input %d ('%s') needs a constant (an "
                              "initializer or a Constant node); kiln does not support shapes "
                              "computed at run time", i, c->node->input[i]);
  if (kl_dtype_is_float(t->dtype) || t->numel > max)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "input %d ('%s') must hold at most %d "
                              "integers", i, c->node->input[i], max);
  for (int64_t k = 0; k < t->numel; k++)
    out[k] = kl_dtype_load_i64(t->dtype, t->data, (size_t)k);
  *out_n = (int)t->numel;
  return NULL;
}

/* Input i as one number (a constant), or dflt when the input is omitted. */
kl_status kl_onnx_const_scalar(kl_onnx_node_ctx *c, int i, double dflt, double *out) {
  kl_ir_value *v = kl_onnx_input(c, i);
  *out = dflt;
  if (!v)
    return NULL;
  kl_tensor *t = kl_onnx_const_tensor(c, v);
  if (!t && kl_onnx_probe_value(c, v))
    return NULL;
  if (!t)
    c->imp->needs_run_time = true;
  if (!t)
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "input %d ('%s') needs a constant (an "
                              "initializer or a Constant node)", i, c->node->input[i]);
  if (t->numel != 1)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "input %d ('%s') must have one "
                              "element", i, c->node->input[i]);
  *out = kl_dtype_load_f64(t->dtype, t->data, 0);
  return NULL;
}

/* ---- emitting ------------------------------------------------------------------------------ */

/* op(inputs) with one output, attributes set by the caller afterwards; infer is separate. */
kl_status kl_onnx_add(kl_onnx_node_ctx *c, kl_op op, kl_ir_value *const *in, int n,
                     kl_ir_node **out) {
  return kl_onnx_emit(c, op, in, n, 1, out);
}

/* Shape arithmetic in exported models (Shape -> Gather -> Concat -> Reshape) only has
 * constants as inputs once Shape is folded; evaluating such small nodes at import lets the
 * ops that need constant inputs see them. Float parameters (weights) are never folded: they
 * keep their names for the passes; integer ones (indices, shapes) are. Large results are
 * left to the constant folding pass. */
#define FOLD_MAX_ELEMENTS 4096

static kl_ir_value *try_fold(kl_onnx_node_ctx *c, kl_ir_node *n) {
  if (n->n_outputs != 1 || n->n_blocks || n->n_inputs == 0 || n->op == KL_OP_CONSTANT ||
      n->op == KL_OP_PARAM)
    return NULL;
  kl_tensor *in[8];
  if (n->n_inputs > 8)
    return NULL;
  for (int i = 0; i < n->n_inputs; i++) {
    kl_ir_node *def = n->inputs[i]->node;
    bool shape_like_param = def && def->op == KL_OP_PARAM &&
                            !kl_dtype_is_float(n->inputs[i]->type.dtype);
    if (!def || (def->op != KL_OP_CONSTANT && !shape_like_param) ||
        !(in[i] = kl_onnx_const_tensor(c, n->inputs[i])))
      return NULL;
    if (in[i]->numel > FOLD_MAX_ELEMENTS)
      return NULL;
  }
  int64_t shape[KL_MAX_RANK], numel;
  const kl_ir_type *t = &n->outputs[0]->type;
  kl_interp_kernel_fn kernel = kl_interp_kernel(n->op);
  if (!kernel || !kl_ir_type_shape(t, shape) || !kl_ir_type_numel(t, &numel) ||
      numel > FOLD_MAX_ELEMENTS)
    return NULL;
  kl_tensor *out;
  if (kl_tensor_create(t->dtype, t->rank, shape, &out))
    kl_fatal_oom(); /* at most FOLD_MAX_ELEMENTS elements */
  kl_status s = kernel(c->imp->g, n, in, &out);
  if (s) { /* left to fail at run time, where the message has the real inputs */
    kl_status_destroy(s);
    kl_tensor_release(out);
    return NULL;
  }
  kl_ir_node_remove(n);
  kl_ir_value *v = kl_onnx_emit_constant(c, out);
  kl_tensor_release(out);
  return v;
}

kl_status kl_onnx_finish(kl_onnx_node_ctx *c, kl_ir_node *n, kl_ir_value **out_value) {
  KL_RETURN_IF_ERROR(kl_onnx_infer(c, n));
  kl_ir_value *folded = try_fold(c, n);
  if (out_value)
    *out_value = folded ? folded : n->outputs[0];
  return NULL;
}

kl_status kl_onnx_emit1(kl_onnx_node_ctx *c, kl_op op, kl_ir_value *x, kl_ir_value **out) {
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, op, &x, 1, &n));
  return kl_onnx_finish(c, n, out);
}

kl_status kl_onnx_emit2(kl_onnx_node_ctx *c, kl_op op, kl_ir_value *a, kl_ir_value *b,
                       kl_ir_value **out) {
  kl_ir_value *in[2] = {a, b};
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, op, in, 2, &n));
  return kl_onnx_finish(c, n, out);
}

/* A rank-0 constant of dtype holding v. */
kl_ir_value *kl_onnx_scalar_const(kl_onnx_node_ctx *c, kl_dtype dtype, double v) {
  kl_tensor *t;
  kl_status s = kl_tensor_create(dtype, 0, NULL, &t);
  if (s)
    kl_fatal_oom(); /* a one-element tensor */
  kl_dtype_store_f64(dtype, t->data, 0, v);
  kl_ir_value *out = kl_onnx_emit_constant(c, t);
  kl_tensor_release(t);
  return out;
}

kl_status kl_onnx_need_static(kl_onnx_node_ctx *c, kl_ir_value *v, int64_t *shape) {
  if (!kl_ir_type_shape(&v->type, shape)) {
    c->imp->needs_run_time = true;
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "input '%s' needs a static shape here",
                              v->name);
  }
  return NULL;
}

kl_status kl_onnx_reshape_to(kl_onnx_node_ctx *c, kl_ir_value *x, const int64_t *shape, int rank,
                            kl_ir_value **out) {
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_RESHAPE, &x, 1, &n));
  kl_ir_node_set_ints(n, "shape", shape, rank);
  return kl_onnx_finish(c, n, out);
}

/* ---- constants and identity ------------------------------------------------------------- */

static kl_status map_constant(kl_onnx_node_ctx *c) {
  const Onnx__NodeProto *node = c->node;
  kl_tensor *t = NULL;
  kl_status s = NULL;
  const Onnx__AttributeProto *a;
  if ((a = kl_onnx_attr(node, "value")) && a->t) {
    kl_onnx_tensor_source src = {c->imp->base_dir, &c->imp->budget};
    char what[300];
    snprintf(what, sizeof what, "%s: Constant '%s' value", c->imp->name,
             node->n_output ? node->output[0] : "");
    s = kl_onnx_tensor_from_proto(a->t, &src, what, &t);
  } else if ((a = kl_onnx_attr(node, "value_float")) && a->has_f) {
    s = kl_tensor_create(KL_F32, 0, NULL, &t);
    if (!s)
      ((float *)t->data)[0] = a->f;
  } else if ((a = kl_onnx_attr(node, "value_int")) && a->has_i) {
    s = kl_tensor_create(KL_I64, 0, NULL, &t);
    if (!s)
      ((int64_t *)t->data)[0] = a->i;
  } else if ((a = kl_onnx_attr(node, "value_floats"))) {
    int64_t n = (int64_t)a->n_floats;
    s = kl_tensor_create(KL_F32, 1, &n, &t);
    for (size_t k = 0; !s && k < a->n_floats; k++)
      ((float *)t->data)[k] = a->floats[k];
  } else if ((a = kl_onnx_attr(node, "value_ints"))) {
    int64_t n = (int64_t)a->n_ints;
    s = kl_tensor_create(KL_I64, 1, &n, &t);
    for (size_t k = 0; !s && k < a->n_ints; k++)
      ((int64_t *)t->data)[k] = a->ints[k];
  } else if (kl_onnx_attr(node, "value_string") || kl_onnx_attr(node, "value_strings") ||
             kl_onnx_attr(node, "sparse_value")) {
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "string and sparse constants are not "
                              "supported");
  } else {
    return kl_onnx_missing_attr(c, "value");
  }
  if (s)
    return s;
  c->out[0] = kl_onnx_emit_constant(c, t);
  kl_tensor_release(t);
  return NULL;
}

static kl_status map_identity(kl_onnx_node_ctx *c) {
  if (!kl_onnx_input(c, 0))
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  if (!strcmp(c->node->op_type, "Dropout") && kl_onnx_input(c, 2)) {
    double training = 0;
    KL_RETURN_IF_ERROR(kl_onnx_const_scalar(c, 2, 0, &training));
    if (training != 0)
      return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "training_mode=true is not supported");
  }
  c->out[0] = c->in[0];
  return NULL;
}

/* ---- elementwise ---------------------------------------------------------------------------- */

typedef struct op_pair {
  const char *onnx;
  kl_op op;
} op_pair;

static const op_pair unary_ops[] = {
    {"Relu", KL_OP_RELU},       {"Sigmoid", KL_OP_SIGMOID}, {"Tanh", KL_OP_TANH},
    {"Erf", KL_OP_ERF},         {"Sqrt", KL_OP_SQRT},       {"Reciprocal", KL_OP_RECIPROCAL},
    {"Exp", KL_OP_EXP},         {"Log", KL_OP_LOG},         {"Neg", KL_OP_NEG},
    {"Abs", KL_OP_ABS},         {"HardSwish", KL_OP_HARDSWISH},
};
static const op_pair binary_ops[] = {
    {"Add", KL_OP_ADD},         {"Sub", KL_OP_SUB},         {"Mul", KL_OP_MUL},
    {"Div", KL_OP_DIV},         {"Pow", KL_OP_POW},         {"Max", KL_OP_MAXIMUM},
    {"Min", KL_OP_MINIMUM},     {"Sum", KL_OP_ADD},         {"Equal", KL_OP_EQ},
    {"Less", KL_OP_LT},         {"LessOrEqual", KL_OP_LE},  {"Greater", KL_OP_GT},
    {"GreaterOrEqual", KL_OP_GE},
};

static kl_op find_pair(const op_pair *pairs, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(pairs[i].onnx, name))
      return pairs[i].op;
  return KL_OP_COUNT;
}

static kl_status map_unary(kl_onnx_node_ctx *c) {
  kl_op op = find_pair(unary_ops, sizeof unary_ops / sizeof *unary_ops, c->node->op_type);
  return kl_onnx_emit1(c, op, kl_onnx_input(c, 0), &c->out[0]);
}

/* Binary ops; Max, Min and Sum take any number of inputs and are chained left to right. */
static kl_status map_binary(kl_onnx_node_ctx *c) {
  kl_op op = find_pair(binary_ops, sizeof binary_ops / sizeof *binary_ops, c->node->op_type);
  if (c->n_in < 1 || !c->in[0])
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  kl_ir_value *acc = c->in[0];
  bool variadic = op == KL_OP_MAXIMUM || op == KL_OP_MINIMUM || !strcmp(c->node->op_type, "Sum");
  if (!variadic && c->n_in != 2)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "expected 2 inputs, got %d", c->n_in);
  for (int i = 1; i < c->n_in; i++) {
    kl_ir_value *rhs = c->in[i];
    if (op == KL_OP_POW && rhs && rhs->type.dtype != acc->type.dtype) {
      /* ONNX Pow lets the exponent's type differ; the result has the base's type. */
      kl_ir_node *n;
      KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CAST, &rhs, 1, &n));
      kl_ir_node_set_dtype(n, "dtype", acc->type.dtype);
      KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &rhs));
    }
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, op, acc, rhs, &acc));
  }
  c->out[0] = acc;
  return NULL;
}

static kl_status map_where(kl_onnx_node_ctx *c) {
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_WHERE, c->in, 3, &n));
  return kl_onnx_finish(c, n, &c->out[0]);
}

static kl_status map_leaky_relu(kl_onnx_node_ctx *c) {
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_LEAKY_RELU, c->in, 1, &n));
  kl_ir_node_set_float(n, "negative_slope", kl_onnx_attr_float(c, "alpha", 0.01));
  return kl_onnx_finish(c, n, &c->out[0]);
}

/* HardSigmoid max(0, min(1, alpha x + beta)): aten::hardsigmoid when alpha = 1/6 and beta = 0.5
 * (PyTorch's export), else mul + add + clamp. */
static kl_status map_hard_sigmoid(kl_onnx_node_ctx *c) {
  double alpha = kl_onnx_attr_float(c, "alpha", 0.2), beta = kl_onnx_attr_float(c, "beta", 0.5);
  kl_ir_value *x = kl_onnx_input(c, 0);
  if (fabs(alpha - 1.0 / 6.0) < 1e-6 && beta == 0.5)
    return kl_onnx_emit1(c, KL_OP_HARDSIGMOID, x, &c->out[0]);
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  kl_ir_value *y;
  kl_dtype dt = x->type.dtype;
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, x, kl_onnx_scalar_const(c, dt, alpha), &y));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, y, kl_onnx_scalar_const(c, dt, beta), &y));
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CLAMP, &y, 1, &n));
  kl_ir_node_set_float(n, "min", 0);
  kl_ir_node_set_float(n, "max", 1);
  return kl_onnx_finish(c, n, &c->out[0]);
}

static kl_status map_gelu(kl_onnx_node_ctx *c) {
  char buf[32];
  const char *approx = kl_onnx_attr_string(c, "approximate", "none", buf, sizeof buf);
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_GELU, c->in, 1, &n));
  if (strcmp(approx, "none"))
    kl_ir_node_set_string(n, "approximate", approx);
  return kl_onnx_finish(c, n, &c->out[0]);
}

/* Clip: min and max are attributes before opset 11, optional inputs after: constants become
 * clamp's attributes, computed bounds a maximum and a minimum. */
static kl_status map_clip(kl_onnx_node_ctx *c) {
  double lo = -INFINITY, hi = INFINITY;
  kl_ir_value *x = kl_onnx_input(c, 0);
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  if (c->opset < 11) {
    lo = kl_onnx_attr_float(c, "min", -INFINITY);
    hi = kl_onnx_attr_float(c, "max", INFINITY);
  } else {
    for (int i = 1; i <= 2; i++) {
      kl_ir_value *bound = kl_onnx_input(c, i);
      if (!bound || kl_onnx_const_tensor(c, bound))
        continue;
      KL_RETURN_IF_ERROR(kl_onnx_emit2(c, i == 1 ? KL_OP_MAXIMUM : KL_OP_MINIMUM, x, bound, &x));
    }
    kl_ir_value *min_in = kl_onnx_input(c, 1), *max_in = kl_onnx_input(c, 2);
    if (min_in && kl_onnx_const_tensor(c, min_in))
      KL_RETURN_IF_ERROR(kl_onnx_const_scalar(c, 1, -INFINITY, &lo));
    if (max_in && kl_onnx_const_tensor(c, max_in))
      KL_RETURN_IF_ERROR(kl_onnx_const_scalar(c, 2, INFINITY, &hi));
  }
  if (!isfinite(lo) && !isfinite(hi) && x != c->in[0]) {
    c->out[0] = x;
    return NULL;
  }
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CLAMP, &x, 1, &n));
  if (isfinite(lo))
    kl_ir_node_set_float(n, "min", lo);
  if (isfinite(hi))
    kl_ir_node_set_float(n, "max", hi);
  return kl_onnx_finish(c, n, &c->out[0]);
}

static kl_status map_cast(kl_onnx_node_ctx *c) {
  const Onnx__AttributeProto *to = kl_onnx_attr(c->node, "to");
  if (!to || !to->has_i)
    return kl_onnx_missing_attr(c, "to");
  kl_dtype dtype;
  kl_status s = kl_onnx_dtype_from_onnx((int32_t)to->i, &dtype);
  if (s) {
    kl_status e = kl_onnx_node_error(c, kl_status_code_of(s), "attribute to: %s",
                                     kl_status_message(s));
    kl_status_destroy(s);
    return e;
  }
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CAST, c->in, 1, &n));
  kl_ir_node_set_dtype(n, "dtype", dtype);
  return kl_onnx_finish(c, n, &c->out[0]);
}

/* ---- softmax ------------------------------------------------------------------------------- */

/* Opset 13 normalizes along one axis (default -1); earlier opsets coerce the input to 2-D at
 * axis (default 1) and normalize whole rows: flatten + softmax + reshape back. */
static kl_status map_softmax(kl_onnx_node_ctx *c) {
  kl_op op = !strcmp(c->node->op_type, "Softmax") ? KL_OP_SOFTMAX : KL_OP_LOG_SOFTMAX;
  kl_ir_value *x = kl_onnx_input(c, 0);
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  int rank = x->type.rank;
  int64_t axis = kl_onnx_attr_int(c, "axis", c->opset >= 13 ? -1 : 1);
  if (axis < -rank || axis > (rank ? rank - 1 : 0))
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "axis %lld is out of range for rank "
                              "%d", (long long)axis, rank);
  if (axis < 0)
    axis += rank;
  kl_ir_node *n;
  if (c->opset >= 13 || axis == rank - 1 || rank == 0) {
    KL_RETURN_IF_ERROR(kl_onnx_add(c, op, &x, 1, &n));
    kl_ir_node_set_int(n, "dim", c->opset >= 13 ? axis : -1);
    return kl_onnx_finish(c, n, &c->out[0]);
  }
  int64_t shape[KL_MAX_RANK];
  KL_RETURN_IF_ERROR(kl_onnx_need_static(c, x, shape));
  kl_ir_value *flat;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_FLATTEN, &x, 1, &n));
  kl_ir_node_set_int(n, "start_dim", axis);
  KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &flat));
  KL_RETURN_IF_ERROR(kl_onnx_add(c, op, &flat, 1, &n));
  kl_ir_node_set_int(n, "dim", -1);
  KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &flat));
  return kl_onnx_reshape_to(c, flat, shape, rank, &c->out[0]);
}

/* ---- products ------------------------------------------------------------------------------ */

static kl_status map_matmul(kl_onnx_node_ctx *c) {
  return kl_onnx_emit2(c, KL_OP_MATMUL, kl_onnx_input(c, 0), kl_onnx_input(c, 1), &c->out[0]);
}

static kl_status transpose2(kl_onnx_node_ctx *c, kl_ir_value *x, kl_ir_value **out) {
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_TRANSPOSE, &x, 1, &n));
  kl_ir_node_set_int(n, "dim0", 0);
  kl_ir_node_set_int(n, "dim1", 1);
  return kl_onnx_finish(c, n, out);
}

/* Gemm alpha * A' B' + beta * C: linear (B transposed) or matmul, then mul and add as needed;
 * a 1-D C with alpha = beta = 1 becomes linear's bias. */
static kl_status map_gemm(kl_onnx_node_ctx *c) {
  kl_ir_value *a = kl_onnx_input(c, 0), *b = kl_onnx_input(c, 1), *bias = kl_onnx_input(c, 2);
  double alpha = kl_onnx_attr_float(c, "alpha", 1), beta = kl_onnx_attr_float(c, "beta", 1);
  if (!a || !b)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "inputs A and B are required");
  if (kl_onnx_attr_int(c, "transA", 0))
    KL_RETURN_IF_ERROR(transpose2(c, a, &a));
  bool trans_b = kl_onnx_attr_int(c, "transB", 0) != 0;
  bool fold_bias = bias && alpha == 1 && beta == 1 && bias->type.rank == 1 && trans_b;
  kl_ir_value *y;
  kl_ir_value *in[3] = {a, b, bias};
  kl_ir_node *n;
  if (trans_b) {
    KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_LINEAR, in, fold_bias ? 3 : 2, &n));
    KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &y));
  } else {
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MATMUL, a, b, &y));
  }
  if (alpha != 1)
    KL_RETURN_IF_ERROR(
        kl_onnx_emit2(c, KL_OP_MUL, y, kl_onnx_scalar_const(c, y->type.dtype, alpha), &y));
  if (bias && !fold_bias && beta != 0) {
    kl_ir_value *cb = bias;
    if (beta != 1)
      KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, bias,
                                       kl_onnx_scalar_const(c, bias->type.dtype, beta), &cb));
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, y, cb, &y));
  }
  c->out[0] = y;
  return NULL;
}

/* ---- convolution and pooling ------------------------------------------------------------- */

/* The explicit (top, left, bottom, right) pads of a 2-D conv or pool from pads or auto_pad;
 * a 1-D op (one_d, x already given a height of 1) has pads (begin, end) on the width. */
static kl_status pads_2d(kl_onnx_node_ctx *c, kl_ir_value *x, const int64_t *kernel,
                         const int64_t *stride, const int64_t *dilation, bool one_d,
                         int64_t *out_pads) {
  char buf[32];
  const char *auto_pad = kl_onnx_attr_string(c, "auto_pad", "NOTSET", buf, sizeof buf);
  int n = 0;
  const int64_t *pads = kl_onnx_attr_ints(c, "pads", &n);
  memset(out_pads, 0, 4 * sizeof *out_pads);
  if (!strcmp(auto_pad, "NOTSET") || !strcmp(auto_pad, "")) {
    if (n >= 0 && n != (one_d ? 2 : 4))
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "pads has %d entries; a %d-D op "
                                "needs %d", n, one_d ? 1 : 2, one_d ? 2 : 4);
    for (int i = 0; i < n; i++)
      out_pads[one_d ? 1 + 2 * i : i] = pads[i];
    return NULL;
  }
  if (!strcmp(auto_pad, "VALID"))
    return NULL;
  bool upper = !strcmp(auto_pad, "SAME_UPPER");
  if (!upper && strcmp(auto_pad, "SAME_LOWER"))
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "unknown auto_pad '%s'", auto_pad);
  for (int d = 0; d < 2; d++) {
    kl_ir_dim dim = x->type.dims[2 + d];
    if (!kl_ir_dim_is_static(dim))
      return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "auto_pad %s needs a static spatial "
                                "size", auto_pad);
    if (stride[d] < 1 || dilation[d] < 1 || kernel[d] < 1)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "auto_pad %s: strides, dilations "
                                "and the kernel size must be positive", auto_pad);
    /* out = ceil(in / stride); total = (out - 1) * stride + (kernel - 1) * dilation + 1 - in */
    int64_t in = dim.size, out = in / stride[d] + (in % stride[d] != 0), total, reach;
    if (!kl_mul_i64(out - 1, stride[d], &total) ||
        !kl_mul_i64(kernel[d] - 1, dilation[d], &reach) || !kl_add_i64(total, reach, &total) ||
        !kl_add_i64(total, 1 - in, &total))
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "auto_pad %s: the padding of "
                                "spatial dim %d overflows", auto_pad, d);
    if (total < 0)
      total = 0;
    int64_t small = total / 2, big = total - small;
    out_pads[d] = upper ? small : big;
    out_pads[2 + d] = upper ? big : small;
  }
  return NULL;
}

/* A per-spatial-dim attribute (strides, dilations) as 2 entries; a 1-D op's single entry is
 * the width, its height 1. */
static kl_status ints2(kl_onnx_node_ctx *c, const char *name, int64_t dflt, bool one_d,
                      int64_t *out) {
  int n;
  const int64_t *v = kl_onnx_attr_ints(c, name, &n);
  out[0] = out[1] = dflt;
  if (n < 0)
    return NULL;
  if (n != (one_d ? 1 : 2))
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "attribute %s has %d entries; kiln supports "
                              "1-D and 2-D only", name, n);
  out[0] = one_d ? 1 : v[0];
  out[1] = v[one_d ? 0 : 1];
  return NULL;
}

/* 1-D ops run as 2-D ones on (N, C, 1, L): unsqueeze before, squeeze after. */
static kl_status add_height(kl_onnx_node_ctx *c, kl_ir_value **x) {
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_UNSQUEEZE, x, 1, &n));
  kl_ir_node_set_int(n, "dim", 2);
  return kl_onnx_finish(c, n, x);
}

static kl_status drop_height(kl_onnx_node_ctx *c, kl_ir_value *y, kl_ir_value **out) {
  kl_ir_node *n;
  int64_t dim = 2;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_SQUEEZE, &y, 1, &n));
  kl_ir_node_set_ints(n, "dim", &dim, 1);
  return kl_onnx_finish(c, n, out);
}

static kl_status map_conv(kl_onnx_node_ctx *c) {
  kl_ir_value *x = kl_onnx_input(c, 0), *w = kl_onnx_input(c, 1);
  if (!x || !w)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "inputs X and W are required");
  bool one_d = x->type.rank == 3 && w->type.rank == 3;
  if (!one_d && (x->type.rank != 4 || w->type.rank != 4))
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "only 1-D and 2-D convolution (3-D or 4-D "
                              "input and weight) are supported; input has rank %d", x->type.rank);
  int64_t stride[2], dilation[2], kernel[2], pads[4];
  KL_RETURN_IF_ERROR(ints2(c, "strides", 1, one_d, stride));
  KL_RETURN_IF_ERROR(ints2(c, "dilations", 1, one_d, dilation));
  if (one_d) {
    KL_RETURN_IF_ERROR(add_height(c, &x));
    KL_RETURN_IF_ERROR(add_height(c, &w));
  }
  for (int d = 0; d < 2; d++) {
    if (!kl_ir_dim_is_static(w->type.dims[2 + d]))
      return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "the weight needs a static kernel size");
    kernel[d] = w->type.dims[2 + d].size;
  }
  KL_RETURN_IF_ERROR(pads_2d(c, x, kernel, stride, dilation, one_d, pads));
  kl_ir_node *n;
  kl_ir_value *in[3] = {x, w, kl_onnx_input(c, 2)}, *y;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CONV2D, in, in[2] ? 3 : 2, &n));
  kl_ir_node_set_ints(n, "stride", stride, 2);
  kl_ir_node_set_ints(n, "padding", pads, 4);
  kl_ir_node_set_ints(n, "dilation", dilation, 2);
  kl_ir_node_set_int(n, "groups", kl_onnx_attr_int(c, "group", 1));
  KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &y));
  return one_d ? drop_height(c, y, &c->out[0]) : (c->out[0] = y, NULL);
}

/* MaxPool, AveragePool and LpPool (as an average of |x|^p times the window area, to the
 * power 1/p). Pads beyond half the kernel, which aten's pools refuse, become an explicit
 * constant_pad first where that is exact (max: -inf; average counting the pads: 0). */
static kl_status map_pool(kl_onnx_node_ctx *c) {
  bool is_max = !strcmp(c->node->op_type, "MaxPool");
  bool is_lp = !strcmp(c->node->op_type, "LpPool");
  kl_ir_value *x = kl_onnx_input(c, 0);
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  bool one_d = x->type.rank == 3;
  if (!one_d && x->type.rank != 4)
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "only 1-D and 2-D pooling (3-D or 4-D "
                              "input) are supported; input has rank %d", x->type.rank);
  int n_kernel;
  const int64_t *k = kl_onnx_attr_ints(c, "kernel_shape", &n_kernel);
  if (n_kernel < 0)
    return kl_onnx_missing_attr(c, "kernel_shape");
  if (n_kernel != (one_d ? 1 : 2))
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "kernel_shape has %d entries for a "
                              "%d-D input", n_kernel, x->type.rank);
  int64_t kernel[2] = {one_d ? 1 : k[0], one_d ? k[0] : k[1]}, stride[2], dilation[2], pads[4];
  KL_RETURN_IF_ERROR(ints2(c, "strides", 1, one_d, stride));
  KL_RETURN_IF_ERROR(ints2(c, "dilations", 1, one_d, dilation));
  if (one_d)
    KL_RETURN_IF_ERROR(add_height(c, &x));
  if (!is_max && (dilation[0] != 1 || dilation[1] != 1))
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "%s with dilations", c->node->op_type);
  if (is_max && kl_onnx_attr_int(c, "storage_order", 0) != 0)
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "storage_order=1 is not supported");
  KL_RETURN_IF_ERROR(pads_2d(c, x, kernel, stride, dilation, one_d, pads));
  int64_t ceil_mode = kl_onnx_attr_int(c, "ceil_mode", 0);
  int64_t count_pad = is_lp ? 1 : kl_onnx_attr_int(c, "count_include_pad", 0);
  double p = (double)kl_onnx_attr_int(c, "p", 2);
  kl_ir_node *n;
  kl_ir_value *y;
  if (is_lp) {
    if (p <= 0)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "p must be positive");
    KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_ABS, x, &x));
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_POW, x, kl_onnx_scalar_const(c, x->type.dtype, p),
                                     &x));
  }
  bool big_pads = false;
  for (int i = 0; i < 4; i++)
    big_pads |= pads[i] * 2 > kernel[i % 2];
  if (big_pads && !ceil_mode && (is_max || count_pad)) {
    int64_t pad[4] = {pads[1], pads[3], pads[0], pads[2]}; /* (left, right), (top, bottom) */
    KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CONSTANT_PAD, &x, 1, &n));
    kl_ir_node_set_ints(n, "pad", pad, 4);
    if (is_max)
      kl_ir_node_set_float(n, "value", -INFINITY);
    KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &x));
    memset(pads, 0, sizeof pads);
  }
  KL_RETURN_IF_ERROR(kl_onnx_add(c, is_max ? KL_OP_MAX_POOL2D : KL_OP_AVG_POOL2D, &x, 1, &n));
  kl_ir_node_set_ints(n, "kernel_size", kernel, 2);
  kl_ir_node_set_ints(n, "stride", stride, 2);
  kl_ir_node_set_ints(n, "padding", pads, 4);
  if (is_max)
    kl_ir_node_set_ints(n, "dilation", dilation, 2);
  kl_ir_node_set_int(n, "ceil_mode", ceil_mode);
  if (!is_max)
    kl_ir_node_set_int(n, "count_include_pad", count_pad);
  KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &y));
  if (is_lp) {
    kl_dtype dt = y->type.dtype;
    double area = (double)(kernel[0] * kernel[1]);
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, y, kl_onnx_scalar_const(c, dt, area), &y));
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_POW, y, kl_onnx_scalar_const(c, dt, 1 / p), &y));
  }
  return one_d ? drop_height(c, y, &c->out[0]) : (c->out[0] = y, NULL);
}

/* GlobalAveragePool / GlobalMaxPool: mean or amax over every spatial dim, kept. */
static kl_status map_global_pool(kl_onnx_node_ctx *c) {
  kl_ir_value *x = kl_onnx_input(c, 0);
  if (!x || x->type.rank < 3)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "input must have rank 3 or more");
  kl_ir_node *n;
  bool is_max = !strcmp(c->node->op_type, "GlobalMaxPool");
  if (!is_max && x->type.rank == 4) {
    KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_ADAPTIVE_AVG_POOL2D, &x, 1, &n));
    int64_t one[2] = {1, 1};
    kl_ir_node_set_ints(n, "output_size", one, 2);
    return kl_onnx_finish(c, n, &c->out[0]);
  }
  int64_t dims[KL_MAX_RANK];
  int nd = 0;
  for (int d = 2; d < x->type.rank; d++)
    dims[nd++] = d;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, is_max ? KL_OP_AMAX : KL_OP_MEAN, &x, 1, &n));
  kl_ir_node_set_ints(n, "dim", dims, nd);
  kl_ir_node_set_int(n, "keepdim", 1);
  return kl_onnx_finish(c, n, &c->out[0]);
}

/* ---- normalization ------------------------------------------------------------------------- */

static kl_status map_batch_norm(kl_onnx_node_ctx *c) {
  if (kl_onnx_attr_int(c, "training_mode", 0))
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "training_mode=1 is not supported");
  if (c->n_in != 5)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "expected 5 inputs, got %d", c->n_in);
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_BATCH_NORM, c->in, 5, &n));
  kl_ir_node_set_float(n, "eps", kl_onnx_attr_float(c, "epsilon", 1e-5));
  return kl_onnx_finish(c, n, &c->out[0]);
}

static kl_status map_layer_norm(kl_onnx_node_ctx *c) {
  kl_ir_value *x = kl_onnx_input(c, 0);
  if (!x)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 0 is missing");
  int rank = x->type.rank;
  int64_t axis = kl_onnx_attr_int(c, "axis", -1);
  if (axis < -rank || axis >= rank)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "axis %lld is out of range for rank "
                              "%d", (long long)axis, rank);
  if (axis < 0)
    axis += rank;
  int64_t shape[KL_MAX_RANK];
  for (int d = (int)axis; d < rank; d++) {
    if (!kl_ir_dim_is_static(x->type.dims[d]))
      return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "the normalized dims need static sizes");
    shape[d - axis] = x->type.dims[d].size;
  }
  kl_ir_value *in[3] = {x, kl_onnx_input(c, 1), kl_onnx_input(c, 2)};
  int n_in = in[2] ? 3 : in[1] ? 2 : 1;
  if (in[2] && !in[1])
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "a bias without a scale");
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_LAYER_NORM, in, n_in, &n));
  kl_ir_node_set_ints(n, "normalized_shape", shape, rank - (int)axis);
  double eps = kl_onnx_attr_float(c, "epsilon", 1e-5);
  kl_ir_node_set_float(n, "eps", eps);
  KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &c->out[0]));
  if (c->n_out < 2)
    return NULL;
  /* Mean and InvStdDev, asked for by training graphs and ONNX's tests: computed apart. */
  int64_t dims[KL_MAX_RANK];
  for (int d = (int)axis; d < rank; d++)
    dims[d - axis] = d;
  kl_ir_value *mean, *dev, *var;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_MEAN, &x, 1, &n));
  kl_ir_node_set_ints(n, "dim", dims, rank - (int)axis);
  kl_ir_node_set_int(n, "keepdim", 1);
  KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &mean));
  c->out[1] = mean;
  if (c->n_out < 3)
    return NULL;
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_SUB, x, mean, &dev));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, dev, dev, &var));
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_MEAN, &var, 1, &n));
  kl_ir_node_set_ints(n, "dim", dims, rank - (int)axis);
  kl_ir_node_set_int(n, "keepdim", 1);
  KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &var));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, var, kl_onnx_scalar_const(c, x->type.dtype, eps),
                                   &var));
  KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_RSQRT, var, &c->out[2]));
  return NULL;
}

/* ---- control flow ------------------------------------------------------------------------- */

static const Onnx__GraphProto *graph_attr(const kl_onnx_node_ctx *c, const char *name) {
  const Onnx__AttributeProto *a = kl_onnx_attr(c->node, name);
  return a ? a->g : NULL;
}

static kl_status map_if(kl_onnx_node_ctx *c) {
  const Onnx__GraphProto *then_g = graph_attr(c, "then_branch");
  const Onnx__GraphProto *else_g = graph_attr(c, "else_branch");
  if (!then_g)
    return kl_onnx_missing_attr(c, "then_branch");
  if (!else_g)
    return kl_onnx_missing_attr(c, "else_branch");
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_emit(c, KL_OP_IF, c->in, 1, c->n_out, &n));
  KL_RETURN_IF_ERROR(kl_onnx_import_subgraph(c, then_g, kl_ir_node_add_block(n), NULL, 0));
  KL_RETURN_IF_ERROR(kl_onnx_import_subgraph(c, else_g, kl_ir_node_add_block(n), NULL, 0));
  KL_RETURN_IF_ERROR(kl_onnx_infer(c, n));
  for (int i = 0; i < c->n_out; i++)
    c->out[i] = n->outputs[i];
  return NULL;
}

/* True when any node of g (or of its subgraphs) reads name. */
static bool graph_reads(const Onnx__GraphProto *g, const char *name, int depth) {
  if (depth > 64)
    return true;
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *node = g->node[i];
    for (size_t k = 0; k < node->n_input; k++)
      if (node->input[k] && !strcmp(node->input[k], name))
        return true;
    for (size_t a = 0; a < node->n_attribute; a++)
      if (node->attribute[a]->g && graph_reads(node->attribute[a]->g, name, depth + 1))
        return true;
  }
  for (size_t i = 0; i < g->n_output; i++)
    if (g->output[i]->name && !strcmp(g->output[i]->name, name))
      return true;
  return false;
}

/* ONNX Loop(M?, cond?, v...) with body (iter, cond, v...) -> (cond, v..., scans...) becomes
 * prim::Loop(M, cond, [cond,] v...) with body (iter, [cond,] v...) -> (cond, [cond,] v...):
 * the condition is carried as a value only where the body reads it. */
static kl_status map_loop(kl_onnx_node_ctx *c) {
  const Onnx__GraphProto *body = graph_attr(c, "body");
  if (!body)
    return kl_onnx_missing_attr(c, "body");
  int n_carried = c->n_in - 2;
  if (n_carried < 0 || body->n_input != (size_t)n_carried + 2)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "the body takes %zu inputs; expected %d "
                              "(iteration, condition, %d carried)", body->n_input, n_carried + 2,
                              n_carried < 0 ? 0 : n_carried);
  if (body->n_output != (size_t)n_carried + 1)
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "the body has %zu outputs for %d carried "
                              "values: scan outputs are not supported", body->n_output,
                              n_carried);
  kl_ir_value *max_trip = kl_onnx_input(c, 0), *cond = kl_onnx_input(c, 1);
  if (!max_trip) { /* no trip count: only the condition ends the loop */
    int64_t unbounded = INT64_MAX;
    KL_RETURN_IF_ERROR(kl_onnx_emit_i64_vector(c, &unbounded, 1, 0));
    max_trip = c->out[0];
    c->out[0] = NULL;
  }
  if (!cond)
    cond = kl_onnx_scalar_const(c, KL_BOOL, 1);
  bool carry_cond = body->input[1]->name && graph_reads(body, body->input[1]->name, 0);
  int n_extra = carry_cond ? 1 : 0;
  int n_ir_in = 2 + n_extra + n_carried;
  kl_ir_value **ins = calloc((size_t)n_ir_in, sizeof *ins);
  kl_ir_value **binds = calloc((size_t)n_carried + 2, sizeof *binds);
  if (!ins || !binds)
    kl_fatal_oom();
  ins[0] = max_trip;
  ins[1] = cond;
  if (carry_cond)
    ins[2] = cond;
  for (int i = 0; i < n_carried; i++)
    ins[2 + n_extra + i] = c->in[2 + i];
  kl_ir_node *n;
  kl_status s = kl_onnx_emit(c, KL_OP_LOOP, ins, n_ir_in, n_ir_in - 2, &n);
  if (!s) {
    kl_ir_block *b = kl_ir_node_add_block(n);
    kl_ir_type iter_type = kl_ir_type_make(KL_I64, 0, NULL);
    binds[0] = kl_ir_block_add_param(b, body->input[0]->name, &iter_type);
    binds[1] = carry_cond ? kl_ir_block_add_param(b, body->input[1]->name, &cond->type) : NULL;
    for (int i = 0; i < n_carried; i++)
      binds[2 + i] = kl_ir_block_add_param(b, body->input[2 + i]->name, &c->in[2 + i]->type);
    s = kl_onnx_import_subgraph(c, body, b, binds, n_carried + 2);
    if (!s && carry_cond) {
      /* returns are (cond, v...); carry the condition too: (cond, cond, v...) */
      kl_ir_value *cond_out = b->returns[0];
      int n_ret = b->n_returns;
      kl_ir_block_add_return(b, b->returns[n_ret - 1]);
      for (int i = n_ret - 1; i >= 2; i--)
        kl_ir_block_set_return(b, i, b->returns[i - 1]);
      kl_ir_block_set_return(b, 1, cond_out);
    }
    if (!s)
      s = kl_onnx_infer(c, n);
    for (int i = 0; !s && i < n_carried; i++)
      c->out[i] = n->outputs[n_extra + i];
  }
  free(ins);
  free(binds);
  return s;
}

/* ---- the table ------------------------------------------------------------------------------ */

typedef struct op_entry {
  const char *op_type;
  int min_opset; /* the first opset where kiln's mapping holds */
  kl_onnx_op_fn fn;
} op_entry;

static const op_entry op_table[] = {
    {"Constant", 1, map_constant},
    {"Identity", 1, map_identity},
    {"Dropout", 1, map_identity},
    {"Add", 1, map_binary},
    {"Sub", 1, map_binary},
    {"Mul", 1, map_binary},
    {"Div", 1, map_binary},
    {"Pow", 1, map_binary},
    {"Max", 1, map_binary},
    {"Min", 1, map_binary},
    {"Sum", 1, map_binary},
    {"Equal", 1, map_binary},
    {"Less", 1, map_binary},
    {"LessOrEqual", 12, map_binary},
    {"Greater", 1, map_binary},
    {"GreaterOrEqual", 12, map_binary},
    {"Where", 9, map_where},
    {"Relu", 1, map_unary},
    {"Sigmoid", 1, map_unary},
    {"Tanh", 1, map_unary},
    {"Erf", 9, map_unary},
    {"Sqrt", 1, map_unary},
    {"Reciprocal", 1, map_unary},
    {"Exp", 1, map_unary},
    {"Log", 1, map_unary},
    {"Neg", 1, map_unary},
    {"Abs", 1, map_unary},
    {"HardSwish", 14, map_unary},
    {"LeakyRelu", 1, map_leaky_relu},
    {"HardSigmoid", 1, map_hard_sigmoid},
    {"Gelu", 20, map_gelu},
    {"Clip", 1, map_clip},
    {"Cast", 1, map_cast},
    {"Softmax", 1, map_softmax},
    {"LogSoftmax", 1, map_softmax},
    {"MatMul", 1, map_matmul},
    {"Gemm", 1, map_gemm},
    {"Conv", 1, map_conv},
    {"MaxPool", 1, map_pool},
    {"LpPool", 2, map_pool},
    {"AveragePool", 1, map_pool},
    {"GlobalAveragePool", 1, map_global_pool},
    {"GlobalMaxPool", 1, map_global_pool},
    {"BatchNormalization", 1, map_batch_norm},
    {"LayerNormalization", 17, map_layer_norm},
    {"Flatten", 1, kl_onnx_map_flatten},
    {"Reshape", 1, kl_onnx_map_reshape},
    {"Squeeze", 1, kl_onnx_map_squeeze},
    {"Unsqueeze", 1, kl_onnx_map_unsqueeze},
    {"Transpose", 1, kl_onnx_map_transpose},
    {"Concat", 1, kl_onnx_map_concat},
    {"Split", 1, kl_onnx_map_split},
    {"Slice", 1, kl_onnx_map_slice},
    {"Gather", 1, kl_onnx_map_gather},
    {"Expand", 8, kl_onnx_map_expand},
    {"Pad", 1, kl_onnx_map_pad},
    {"ReduceSum", 1, kl_onnx_map_reduce},
    {"ReduceMean", 1, kl_onnx_map_reduce},
    {"ReduceMax", 1, kl_onnx_map_reduce},
    {"ReduceMin", 1, kl_onnx_map_reduce},
    {"Shape", 1, kl_onnx_map_shape},
    {"Size", 1, kl_onnx_map_size},
    {"ConstantOfShape", 9, kl_onnx_map_constant_of_shape},
    {"Range", 11, kl_onnx_map_range},
    {"If", 1, map_if},
    {"Loop", 1, map_loop},
    /* several IR ops each (onnx_import_compose.c) */
    {"CastLike", 15, kl_onnx_map_cast_like},
    {"Elu", 1, kl_onnx_map_elu},
    {"Selu", 1, kl_onnx_map_selu},
    {"Celu", 12, kl_onnx_map_celu},
    {"ThresholdedRelu", 10, kl_onnx_map_thresholded_relu},
    {"Softplus", 1, kl_onnx_map_softplus},
    {"Softsign", 1, kl_onnx_map_softsign},
    {"PRelu", 1, kl_onnx_map_prelu},
    {"Mish", 18, kl_onnx_map_mish},
    {"IsNaN", 9, kl_onnx_map_is_nan},
    {"IsInf", 10, kl_onnx_map_is_inf},
    {"Not", 1, kl_onnx_map_not},
    {"And", 7, kl_onnx_map_logical},
    {"Or", 7, kl_onnx_map_logical},
    {"Xor", 7, kl_onnx_map_logical},
    {"Mean", 1, kl_onnx_map_mean},
    {"ReduceL1", 1, kl_onnx_map_reduce_composite},
    {"ReduceL2", 1, kl_onnx_map_reduce_composite},
    {"ReduceSumSquare", 1, kl_onnx_map_reduce_composite},
    {"ReduceLogSum", 1, kl_onnx_map_reduce_composite},
    {"ReduceLogSumExp", 1, kl_onnx_map_reduce_composite},
    {"Trilu", 14, kl_onnx_map_trilu},
    {"Tile", 6, kl_onnx_map_tile},
    {"DepthToSpace", 1, kl_onnx_map_depth_to_space},
    {"SpaceToDepth", 1, kl_onnx_map_space_to_depth},
    {"InstanceNormalization", 1, kl_onnx_map_instance_norm},
    {"GroupNormalization", 18, kl_onnx_map_group_norm},
    {"MeanVarianceNormalization", 9, kl_onnx_map_mvn},
    {"LpNormalization", 1, kl_onnx_map_lp_norm},
    {"Shrink", 9, kl_onnx_map_shrink},
    {"Resize", 10, kl_onnx_map_resize},
    {"Upsample", 7, kl_onnx_map_resize},
    {"ConvTranspose", 1, kl_onnx_map_conv_transpose},
    {"NegativeLogLikelihoodLoss", 12, kl_onnx_map_nll_loss},
    {"SoftmaxCrossEntropyLoss", 12, kl_onnx_map_softmax_cross_entropy},
    {"GatherElements", 11, kl_onnx_map_gather_elements},
    {"ArgMax", 1, kl_onnx_map_arg_extreme},
    {"ArgMin", 1, kl_onnx_map_arg_extreme},
    {"Hardmax", 1, kl_onnx_map_hardmax},
    {"DequantizeLinear", 10, kl_onnx_map_dequantize},
    /* ---- recurrent (issue 4) ---- */
    {"RNN", 7, kl_onnx_map_rnn},
    {"GRU", 7, kl_onnx_map_rnn},
    {"LSTM", 7, kl_onnx_map_rnn},
    /* ---- elementwise math (issue 4, onnx_import_math.c) ---- */
    {"Sin", 7, kl_onnx_map_math_unary},
    {"Cos", 7, kl_onnx_map_math_unary},
    {"Tan", 7, kl_onnx_map_math_unary},
    {"Asin", 7, kl_onnx_map_math_unary},
    {"Acos", 7, kl_onnx_map_math_unary},
    {"Atan", 7, kl_onnx_map_math_unary},
    {"Sinh", 9, kl_onnx_map_math_unary},
    {"Cosh", 9, kl_onnx_map_math_unary},
    {"Asinh", 9, kl_onnx_map_math_unary},
    {"Acosh", 9, kl_onnx_map_math_unary},
    {"Atanh", 9, kl_onnx_map_math_unary},
    {"Floor", 6, kl_onnx_map_math_unary},
    {"Ceil", 6, kl_onnx_map_math_unary},
    {"Round", 11, kl_onnx_map_math_unary},
    {"Sign", 9, kl_onnx_map_math_unary},
    {"Mod", 10, kl_onnx_map_mod},
    {"BitShift", 11, kl_onnx_map_bit_shift},
    /* ---- bitwise (issue 4, onnx_import_math.c) ---- */
    {"BitwiseAnd", 18, kl_onnx_map_bitwise},
    {"BitwiseOr", 18, kl_onnx_map_bitwise},
    {"BitwiseXor", 18, kl_onnx_map_bitwise},
    {"BitwiseNot", 18, kl_onnx_map_bitwise},
    /* ---- resize and grid sample (issue 4, onnx_import_resize.c) ---- */
    {"GridSample", 16, kl_onnx_map_grid_sample},
    /* ---- reductions and indexing (issue 4, onnx_import_index.c) ---- */
    {"ReduceProd", 1, kl_onnx_map_reduce_prod},
    {"CumSum", 11, kl_onnx_map_cumsum},
    {"ScatterElements", 11, kl_onnx_map_scatter_elements},
    {"Scatter", 9, kl_onnx_map_scatter_elements},
    {"ScatterND", 11, kl_onnx_map_scatter_nd},
    {"GatherND", 11, kl_onnx_map_gather_nd},
    {"Einsum", 12, kl_onnx_map_einsum},
    /* ---- windows, EyeLike, CenterCropPad, OneHot, LRN (issue 4, onnx_import_extra.c) ---- */
    {"HannWindow", 17, kl_onnx_map_hann_window},
    {"HammingWindow", 17, kl_onnx_map_hamming_window},
    {"BlackmanWindow", 17, kl_onnx_map_blackman_window},
    {"EyeLike", 9, kl_onnx_map_eye_like},
    {"CenterCropPad", 18, kl_onnx_map_center_crop_pad},
    {"OneHot", 9, kl_onnx_map_one_hot},
    {"LRN", 1, kl_onnx_map_lrn},
};
#define N_OPS (sizeof op_table / sizeof op_table[0])

/* Edit distance of two short names, case-insensitive, capped for speed. */
static int distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 40 || lb > 40)
    return 99;
  int row[41];
  for (size_t j = 0; j <= lb; j++)
    row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int prev = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int cur = row[j];
      int cost = (a[i - 1] | 32) == (b[j - 1] | 32) ? 0 : 1;
      int best = prev + cost;
      if (row[j] + 1 < best)
        best = row[j] + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      prev = cur;
    }
  }
  return row[lb];
}

kl_onnx_op_fn kl_onnx_find_op(const char *op_type, int64_t opset, const char **out_hint) {
  if (out_hint)
    *out_hint = NULL;
  for (size_t i = 0; i < N_OPS; i++)
    if (!strcmp(op_table[i].op_type, op_type) && opset >= op_table[i].min_opset)
      return op_table[i].fn;
  if (!out_hint)
    return NULL;
  int best = strlen(op_type) >= 5 ? 2 : 1; /* only a near-certain typo or case slip */
  for (size_t i = 0; i < N_OPS; i++) {
    int d = distance(op_type, op_table[i].op_type);
    if (!strcmp(op_table[i].op_type, op_type))
      d = 0; /* the op exists, at a later opset */
    if (d < best) {
      best = d;
      *out_hint = op_table[i].op_type;
    }
  }
  return NULL;
}
