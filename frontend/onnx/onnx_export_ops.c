/* ONNX export of the leaf IR ops: one switch over ir/ops.def, each case writing the ONNX
 * node(s) that compute the op at the chosen opset. Where ONNX has no single op, or only a
 * newer one (Gelu is opset 20, LayerNormalization 17, HardSwish 14), the op is written as the
 * formula it stands for, so a model stays loadable by older runtimes. List-valued IR
 * attributes that ONNX takes as inputs (Reshape's shape, Squeeze's axes, Pad's pads, ...)
 * become int64 initializers. Parameters are read through ir/op_params.h, so defaults are the
 * ones the interpreter applies. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../ir/op_params.h"
#include "onnx_export_internal.h"

static const char *in_name(kl_onnx_exporter *ex, const kl_ir_node *n, int i) {
  return kl_onnx_ex_name(ex, n->inputs[i]);
}
static const char *out_name(kl_onnx_exporter *ex, const kl_ir_node *n) {
  return kl_onnx_ex_name(ex, n->outputs[0]);
}

static kl_status no_form(kl_onnx_exporter *ex, const kl_ir_node *n, const char *why) {
  return kl_status_create(KL_ERR_UNSUPPORTED, "%s (defining %%%s) has no ONNX form at opset %d%s%s",
                          kl_ir_node_op_name(n), n->outputs[0]->name, kl_onnx_ex_opset(ex),
                          why ? ": " : "", why ? why : "");
}

/* A binary node whose second operand is a scalar constant of the first's dtype. */
static const char *with_scalar(kl_onnx_exporter *ex, kl_onnx_scope *scope, const char *op,
                               const char *x, kl_dtype dt, double c, const char *out) {
  if (!out)
    out = kl_onnx_ex_tmp(ex);
  kl_onnx_ex_node2(ex, scope, op, x, kl_onnx_ex_const_scalar(ex, dt, c), out);
  return out;
}

/* op(x) into a fresh name; the node is put in *out_node when that is not NULL. */
static const char *unary_tmp_node(kl_onnx_exporter *ex, kl_onnx_scope *scope, const char *op,
                                  const char *x, Onnx__NodeProto **out_node) {
  const char *out = kl_onnx_ex_tmp(ex);
  Onnx__NodeProto *node = kl_onnx_ex_node1(ex, scope, op, x, out);
  if (out_node)
    *out_node = node;
  return out;
}

static const char *unary_tmp(kl_onnx_exporter *ex, kl_onnx_scope *scope, const char *op,
                             const char *x) {
  return unary_tmp_node(ex, scope, op, x, NULL);
}

/* ---- matrix products, convolution, pooling ---------------------------------------------- */

/* aten::linear: Gemm(transB=1) for a 2-D input, else MatMul with the transposed weight. */
static kl_status export_linear(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  const char *x = in_name(ex, n, 0), *w = in_name(ex, n, 1);
  const char *b = n->n_inputs > 2 ? in_name(ex, n, 2) : NULL;
  if (n->inputs[0]->type.rank == 2 && n->inputs[1]->type.rank == 2 &&
      (!b || n->inputs[2]->type.rank == 1)) {
    const char *in[3] = {x, w, b};
    const char *out = out_name(ex, n);
    Onnx__NodeProto *gemm = kl_onnx_ex_node(ex, scope, "Gemm", in, b ? 3 : 2, &out, 1);
    kl_onnx_ex_attr_int(ex, gemm, "transB", 1);
    return NULL;
  }
  if (n->inputs[1]->type.rank != 2)
    return no_form(ex, n, "the weight is not 2-D");
  const int64_t perm[2] = {1, 0};
  Onnx__NodeProto *wt_node;
  const char *wt = unary_tmp_node(ex, scope, "Transpose", w, &wt_node);
  kl_onnx_ex_attr_ints(ex, wt_node, "perm", perm, 2);
  if (!b) {
    kl_onnx_ex_node2(ex, scope, "MatMul", x, wt, out_name(ex, n));
    return NULL;
  }
  const char *prod = kl_onnx_ex_tmp(ex);
  kl_onnx_ex_node2(ex, scope, "MatMul", x, wt, prod);
  kl_onnx_ex_node2(ex, scope, "Add", prod, b, out_name(ex, n));
  return NULL;
}

static kl_status export_conv2d(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  kl_rt_conv2d_params p;
  KL_RETURN_IF_ERROR(kl_ir_conv2d_params(n, &p));
  const char *in[3] = {in_name(ex, n, 0), in_name(ex, n, 1),
                       n->n_inputs > 2 ? in_name(ex, n, 2) : NULL};
  const char *out = out_name(ex, n);
  Onnx__NodeProto *conv = kl_onnx_ex_node(ex, scope, "Conv", in, n->n_inputs, &out, 1);
  kl_onnx_ex_attr_ints(ex, conv, "strides", p.stride, 2);
  /* kiln's (top, left, bottom, right) is ONNX's (h_begin, w_begin, h_end, w_end). */
  kl_onnx_ex_attr_ints(ex, conv, "pads", p.pad, 4);
  kl_onnx_ex_attr_ints(ex, conv, "dilations", p.dilation, 2);
  kl_onnx_ex_attr_int(ex, conv, "group", p.groups);
  return NULL;
}

static kl_status export_pool(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  kl_rt_pool2d_params p;
  bool ceil_mode = false;
  KL_RETURN_IF_ERROR(kl_ir_pool2d_params(n, &p, &ceil_mode));
  bool is_max = n->op == KL_OP_MAX_POOL2D;
  Onnx__NodeProto *pool = kl_onnx_ex_node1(ex, scope, is_max ? "MaxPool" : "AveragePool",
                                           in_name(ex, n, 0), out_name(ex, n));
  kl_onnx_ex_attr_ints(ex, pool, "kernel_shape", p.kernel, 2);
  kl_onnx_ex_attr_ints(ex, pool, "strides", p.stride, 2);
  kl_onnx_ex_attr_ints(ex, pool, "pads", p.pad, 4);
  if (ceil_mode)
    kl_onnx_ex_attr_int(ex, pool, "ceil_mode", 1);
  if (is_max) {
    if (p.dilation[0] != 1 || p.dilation[1] != 1)
      kl_onnx_ex_attr_ints(ex, pool, "dilations", p.dilation, 2);
  } else {
    kl_onnx_ex_attr_int(ex, pool, "count_include_pad", p.count_include_pad ? 1 : 0);
  }
  return NULL;
}

/* Adaptive pooling is GlobalAveragePool for a 1x1 output and a plain AveragePool when the
 * output evenly divides a static input; other cases have uneven bins ONNX cannot express. */
static kl_status export_adaptive_pool(kl_onnx_exporter *ex, kl_onnx_scope *scope,
                                      const kl_ir_node *n) {
  const kl_ir_attr *size = kl_ir_node_attr(n, "output_size");
  if (!size || size->kind != KL_ATTR_INTS || size->n != 2)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: output_size must be 2 ints",
                            kl_ir_node_op_name(n));
  if (size->u.is[0] == 1 && size->u.is[1] == 1) {
    kl_onnx_ex_node1(ex, scope, "GlobalAveragePool", in_name(ex, n, 0), out_name(ex, n));
    return NULL;
  }
  const kl_ir_type *x = &n->inputs[0]->type;
  int64_t k[2];
  for (int i = 0; i < 2; i++) {
    kl_ir_dim d = x->rank == 4 ? x->dims[2 + i] : kl_ir_dim_static(0);
    if (!kl_ir_dim_is_static(d) || size->u.is[i] <= 0 || d.size % size->u.is[i] != 0)
      return no_form(ex, n, "the output size does not evenly divide a static input size");
    k[i] = d.size / size->u.is[i];
  }
  Onnx__NodeProto *pool =
      kl_onnx_ex_node1(ex, scope, "AveragePool", in_name(ex, n, 0), out_name(ex, n));
  kl_onnx_ex_attr_ints(ex, pool, "kernel_shape", k, 2);
  kl_onnx_ex_attr_ints(ex, pool, "strides", k, 2);
  return NULL;
}

/* ---- normalization and attention ------------------------------------------------------- */

static kl_status export_layer_norm(kl_onnx_exporter *ex, kl_onnx_scope *scope,
                                   const kl_ir_node *n) {
  const kl_ir_attr *shape = kl_ir_node_attr(n, "normalized_shape");
  if (!shape || shape->kind != KL_ATTR_INTS || shape->n < 1 ||
      shape->n > n->inputs[0]->type.rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "%s: normalized_shape must name 1 to rank dims",
                            kl_ir_node_op_name(n));
  double eps = kl_ir_node_float(n, "eps", 1e-5);
  kl_dtype dt = n->inputs[0]->type.dtype;
  const char *x = in_name(ex, n, 0);
  const char *w = n->n_inputs > 1 ? in_name(ex, n, 1) : NULL;
  const char *b = n->n_inputs > 2 ? in_name(ex, n, 2) : NULL;
  if (kl_onnx_ex_opset(ex) >= 17) {
    if (!w) { /* LayerNormalization's scale is required: ones */
      kl_tensor *ones;
      KL_RETURN_IF_ERROR(kl_tensor_create(dt, shape->n, shape->u.is, &ones));
      for (int64_t i = 0; i < ones->numel; i++)
        kl_dtype_store_f64(dt, ones->data, (size_t)i, 1.0);
      w = kl_onnx_ex_const_tensor(ex, ones);
    }
    const char *in[3] = {x, w, b};
    const char *out = out_name(ex, n);
    Onnx__NodeProto *ln = kl_onnx_ex_node(ex, scope, "LayerNormalization", in, b ? 3 : 2, &out, 1);
    kl_onnx_ex_attr_int(ex, ln, "axis", -shape->n);
    kl_onnx_ex_attr_float(ex, ln, "epsilon", eps);
    return NULL;
  }
  /* (x - mean) / sqrt(var + eps) * w + b over the last dims. ReduceMean takes axes as an
   * attribute below opset 18, and every opset written here is below 17. */
  int64_t axes[KL_MAX_RANK];
  for (int i = 0; i < shape->n; i++)
    axes[i] = i - shape->n;
  Onnx__NodeProto *mean_node;
  const char *mean = unary_tmp_node(ex, scope, "ReduceMean", x, &mean_node);
  kl_onnx_ex_attr_ints(ex, mean_node, "axes", axes, shape->n);
  const char *d = kl_onnx_ex_tmp(ex);
  kl_onnx_ex_node2(ex, scope, "Sub", x, mean, d);
  const char *d2 = kl_onnx_ex_tmp(ex);
  kl_onnx_ex_node2(ex, scope, "Mul", d, d, d2);
  Onnx__NodeProto *var_node;
  const char *var = unary_tmp_node(ex, scope, "ReduceMean", d2, &var_node);
  kl_onnx_ex_attr_ints(ex, var_node, "axes", axes, shape->n);
  const char *den = unary_tmp(ex, scope, "Sqrt", with_scalar(ex, scope, "Add", var, dt, eps, NULL));
  const char *y = w || b ? kl_onnx_ex_tmp(ex) : out_name(ex, n);
  kl_onnx_ex_node2(ex, scope, "Div", d, den, y);
  if (w) {
    const char *yw = b ? kl_onnx_ex_tmp(ex) : out_name(ex, n);
    kl_onnx_ex_node2(ex, scope, "Mul", y, w, yw);
    y = yw;
  }
  if (b)
    kl_onnx_ex_node2(ex, scope, "Add", y, b, out_name(ex, n));
  return NULL;
}

/* softmax(q @ k^T * scale + mask) @ v written op by op (ONNX's Attention op is opset 23). */
static kl_status export_attention(kl_onnx_exporter *ex, kl_onnx_scope *scope,
                                  const kl_ir_node *n) {
  const kl_ir_type *q = &n->inputs[0]->type, *k = &n->inputs[1]->type;
  if (q->rank < 2 || k->rank < 2)
    return no_form(ex, n, "q and k need at least 2 dims");
  kl_dtype dt = q->dtype;
  double scale;
  const kl_ir_attr *scale_attr = kl_ir_node_attr(n, "scale");
  if (scale_attr && scale_attr->kind == KL_ATTR_FLOAT) {
    scale = scale_attr->u.f;
  } else {
    kl_ir_dim e = q->dims[q->rank - 1];
    if (!kl_ir_dim_is_static(e) || e.size <= 0)
      return no_form(ex, n, "the default scale needs a static last dim of q");
    scale = 1.0 / sqrt((double)e.size);
  }
  int64_t perm[KL_MAX_RANK];
  for (int i = 0; i < k->rank; i++)
    perm[i] = i;
  perm[k->rank - 2] = k->rank - 1;
  perm[k->rank - 1] = k->rank - 2;
  Onnx__NodeProto *kt_node;
  const char *kt = unary_tmp_node(ex, scope, "Transpose", in_name(ex, n, 1), &kt_node);
  kl_onnx_ex_attr_ints(ex, kt_node, "perm", perm, k->rank);
  const char *scores = kl_onnx_ex_tmp(ex);
  kl_onnx_ex_node2(ex, scope, "MatMul", in_name(ex, n, 0), kt, scores);
  scores = with_scalar(ex, scope, "Mul", scores, dt, scale, NULL);
  if (n->n_inputs > 3) {
    const char *masked = kl_onnx_ex_tmp(ex);
    if (n->inputs[3]->type.dtype == KL_BOOL) {
      const char *in[3] = {in_name(ex, n, 3), scores, kl_onnx_ex_const_scalar(ex, dt, -INFINITY)};
      kl_onnx_ex_node(ex, scope, "Where", in, 3, &masked, 1);
    } else {
      kl_onnx_ex_node2(ex, scope, "Add", scores, in_name(ex, n, 3), masked);
    }
    scores = masked;
  }
  if (kl_ir_node_int(n, "is_causal", 0)) {
    kl_ir_dim l = q->dims[q->rank - 2], s = k->dims[k->rank - 2];
    if (!kl_ir_dim_is_static(l) || !kl_ir_dim_is_static(s))
      return no_form(ex, n, "a causal mask needs static query and key lengths");
    int64_t shape[2] = {l.size, s.size};
    kl_tensor *mask;
    KL_RETURN_IF_ERROR(kl_tensor_create(dt, 2, shape, &mask));
    for (int64_t i = 0; i < l.size; i++)
      for (int64_t j = 0; j < s.size; j++)
        kl_dtype_store_f64(dt, mask->data, (size_t)(i * s.size + j), j > i ? -INFINITY : 0.0);
    const char *causal = kl_onnx_ex_tmp(ex);
    kl_onnx_ex_node2(ex, scope, "Add", scores, kl_onnx_ex_const_tensor(ex, mask), causal);
    scores = causal;
  }
  Onnx__NodeProto *probs_node;
  const char *probs = unary_tmp_node(ex, scope, "Softmax", scores, &probs_node);
  kl_onnx_ex_attr_int(ex, probs_node, "axis", -1);
  kl_onnx_ex_node2(ex, scope, "MatMul", probs, in_name(ex, n, 2), out_name(ex, n));
  return NULL;
}

/* ---- elementwise ----------------------------------------------------------------------- */

static kl_status export_clip(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  kl_dtype dt = n->inputs[0]->type.dtype;
  const char *lo = NULL, *hi = NULL;
  if (n->op == KL_OP_CLAMP) {
    const kl_ir_attr *a = kl_ir_node_attr(n, "min"), *b = kl_ir_node_attr(n, "max");
    if (a && a->kind == KL_ATTR_FLOAT)
      lo = kl_onnx_ex_const_scalar(ex, dt, a->u.f);
    if (b && b->kind == KL_ATTR_FLOAT)
      hi = kl_onnx_ex_const_scalar(ex, dt, b->u.f);
  } else {
    kl_rt_unary_op op;
    double a, b;
    KL_RETURN_IF_ERROR(kl_ir_unary_params(n, &op, &a, &b));
    lo = kl_onnx_ex_const_scalar(ex, dt, a);
    hi = kl_onnx_ex_const_scalar(ex, dt, b);
  }
  const char *in[3] = {in_name(ex, n, 0), lo, hi};
  const char *out = out_name(ex, n);
  kl_onnx_ex_node(ex, scope, "Clip", in, hi ? 3 : lo ? 2 : 1, &out, 1);
  return NULL;
}

/* Gelu is an ONNX op from opset 20; before, its formula:
 *   none: x * 0.5 * (1 + erf(x / sqrt(2)))
 *   tanh: x * 0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) */
static kl_status export_gelu(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  const char *approx = kl_ir_node_string(n, "approximate", "none");
  bool use_tanh = strcmp(approx, "tanh") == 0;
  if (!use_tanh && strcmp(approx, "none") != 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: approximate must be \"none\" or \"tanh\"",
                            kl_ir_node_op_name(n));
  const char *x = in_name(ex, n, 0);
  if (kl_onnx_ex_opset(ex) >= 20) {
    Onnx__NodeProto *g = kl_onnx_ex_node1(ex, scope, "Gelu", x, out_name(ex, n));
    if (use_tanh)
      kl_onnx_ex_attr_string(ex, g, "approximate", "tanh");
    return NULL;
  }
  kl_dtype dt = n->inputs[0]->type.dtype;
  const char *inner;
  if (use_tanh) {
    const char *x2 = kl_onnx_ex_tmp(ex), *x3 = kl_onnx_ex_tmp(ex), *sum = kl_onnx_ex_tmp(ex);
    kl_onnx_ex_node2(ex, scope, "Mul", x, x, x2);
    kl_onnx_ex_node2(ex, scope, "Mul", x2, x, x3);
    kl_onnx_ex_node2(ex, scope, "Add", x, with_scalar(ex, scope, "Mul", x3, dt, 0.044715, NULL), sum);
    inner = unary_tmp(ex, scope, "Tanh",
                      with_scalar(ex, scope, "Mul", sum, dt, sqrt(2.0 / M_PI), NULL));
  } else {
    inner = unary_tmp(ex, scope, "Erf", with_scalar(ex, scope, "Div", x, dt, sqrt(2.0), NULL));
  }
  const char *one_plus = with_scalar(ex, scope, "Add", inner, dt, 1.0, NULL);
  const char *prod = kl_onnx_ex_tmp(ex);
  kl_onnx_ex_node2(ex, scope, "Mul", x, one_plus, prod);
  with_scalar(ex, scope, "Mul", prod, dt, 0.5, out_name(ex, n));
  return NULL;
}

/* ---- data movement --------------------------------------------------------------------- */

/* aten::flatten merges dims start..end; ONNX's Flatten always makes 2-D, so only (1, -1) on a
 * rank >= 2 input maps to it. Otherwise a Reshape whose target copies the leading dims (0),
 * infers the merged one (-1) and spells out the trailing ones, which must be static. */
static kl_status export_flatten(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  const kl_ir_type *x = &n->inputs[0]->type;
  int rank = x->rank > 0 ? x->rank : 1;
  int start, end;
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, kl_ir_node_int(n, "start_dim", 0), rank, &start));
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, kl_ir_node_int(n, "end_dim", -1), rank, &end));
  if (start == 1 && end == rank - 1 && x->rank >= 2) {
    Onnx__NodeProto *f = kl_onnx_ex_node1(ex, scope, "Flatten", in_name(ex, n, 0), out_name(ex, n));
    kl_onnx_ex_attr_int(ex, f, "axis", 1);
    return NULL;
  }
  int64_t shape[KL_MAX_RANK];
  int m = 0;
  for (int i = 0; i < start; i++)
    shape[m++] = 0;
  shape[m++] = -1;
  for (int i = end + 1; i < rank; i++) {
    if (!kl_ir_dim_is_static(x->dims[i]))
      return no_form(ex, n, "dims after end_dim must be static");
    shape[m++] = x->dims[i].size;
  }
  kl_onnx_ex_node2(ex, scope, "Reshape", in_name(ex, n, 0), kl_onnx_ex_const_ints(ex, shape, m),
                   out_name(ex, n));
  return NULL;
}

static kl_status export_slice(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  int64_t dim = kl_ir_node_int(n, "dim", 0), start = kl_ir_node_int(n, "start", 0);
  int64_t end = kl_ir_node_int(n, "end", INT64_MAX), step = kl_ir_node_int(n, "step", 1);
  if (step < 0) {
    /* Python's defaults for a negative step differ from ONNX's clamping: resolve the slice on
     * the static input shape and write its exact bounds. */
    const kl_ir_type *x = &n->inputs[0]->type;
    int64_t shape[KL_MAX_RANK], len;
    int d;
    if (!kl_ir_type_shape(x, shape))
      return no_form(ex, n, "a negative step needs a static input shape");
    KL_RETURN_IF_ERROR(kl_ir_slice_params(n, x->rank, shape, &d, &start, &step, &len));
    dim = d;
    end = start + len * step;
    if (end < 0)
      end = INT64_MIN;
  }
  const char *in[5] = {in_name(ex, n, 0), kl_onnx_ex_const_ints(ex, &start, 1),
                       kl_onnx_ex_const_ints(ex, &end, 1), kl_onnx_ex_const_ints(ex, &dim, 1),
                       kl_onnx_ex_const_ints(ex, &step, 1)};
  const char *out = out_name(ex, n);
  kl_onnx_ex_node(ex, scope, "Slice", in, 5, &out, 1);
  return NULL;
}

static kl_status export_pad(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  int rank = n->inputs[0]->type.rank;
  int64_t pad[2 * KL_MAX_RANK], pads[2 * KL_MAX_RANK];
  double value;
  KL_RETURN_IF_ERROR(kl_ir_pad_params(n, rank, pad, &value));
  for (int d = 0; d < rank; d++) { /* (before, after) per dim -> all befores, then afters */
    pads[d] = pad[2 * d];
    pads[rank + d] = pad[2 * d + 1];
  }
  const char *in[3] = {in_name(ex, n, 0), kl_onnx_ex_const_ints(ex, pads, 2 * rank),
                       kl_onnx_ex_const_scalar(ex, n->inputs[0]->type.dtype, value)};
  const char *out = out_name(ex, n);
  Onnx__NodeProto *p = kl_onnx_ex_node(ex, scope, "Pad", in, 3, &out, 1);
  kl_onnx_ex_attr_string(ex, p, "mode", "constant");
  return NULL;
}

static kl_status export_reduce(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n,
                               const char *op_type) {
  const kl_ir_attr *dims = kl_ir_node_attr(n, "dim");
  bool has_axes = dims && dims->kind == KL_ATTR_INTS && dims->n > 0;
  /* ReduceSum takes axes as an input from opset 13, the others from 18. */
  bool axes_input = n->op == KL_OP_SUM || kl_onnx_ex_opset(ex) >= 18;
  const char *in[2] = {in_name(ex, n, 0), NULL};
  if (has_axes && axes_input)
    in[1] = kl_onnx_ex_const_ints(ex, dims->u.is, dims->n);
  const char *out = out_name(ex, n);
  Onnx__NodeProto *r = kl_onnx_ex_node(ex, scope, op_type, in, in[1] ? 2 : 1, &out, 1);
  if (has_axes && !axes_input)
    kl_onnx_ex_attr_ints(ex, r, "axes", dims->u.is, dims->n);
  kl_onnx_ex_attr_int(ex, r, "keepdims", kl_ir_node_int(n, "keepdim", 0) ? 1 : 0);
  return NULL;
}

static kl_status export_gather(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  int axis = 0;
  bool allow_negative, indices_1d;
  /* The data is input 0 for all three (embedding's weight), the indices input 1. */
  KL_RETURN_IF_ERROR(kl_ir_gather_params(n, n->inputs[0]->type.rank, &axis, &allow_negative,
                                         &indices_1d));
  Onnx__NodeProto *g = kl_onnx_ex_node2(ex, scope, "Gather", in_name(ex, n, 0),
                                        in_name(ex, n, 1), out_name(ex, n));
  kl_onnx_ex_attr_int(ex, g, "axis", axis);
  return NULL;
}

/* ---- the table ------------------------------------------------------------------------- */

/* Ops that are one ONNX op with the same inputs and no attributes. */
static const char *direct_op(kl_op op) {
  switch (op) {
  case KL_OP_MATMUL: return "MatMul";
  case KL_OP_RELU: return "Relu";
  case KL_OP_SIGMOID: return "Sigmoid";
  case KL_OP_TANH: return "Tanh";
  case KL_OP_SQRT: return "Sqrt";
  case KL_OP_RECIPROCAL: return "Reciprocal";
  case KL_OP_EXP: return "Exp";
  case KL_OP_LOG: return "Log";
  case KL_OP_ERF: return "Erf";
  case KL_OP_NEG: return "Neg";
  case KL_OP_ABS: return "Abs";
  case KL_OP_DROPOUT: return "Identity"; /* inference: dropout passes its input through */
  case KL_OP_ADD: return "Add";
  case KL_OP_SUB: return "Sub";
  case KL_OP_MUL: return "Mul";
  case KL_OP_DIV: return "Div";
  case KL_OP_POW: return "Pow";
  case KL_OP_MAXIMUM: return "Max";
  case KL_OP_MINIMUM: return "Min";
  case KL_OP_EQ: return "Equal";
  case KL_OP_LT: return "Less";
  case KL_OP_LE: return "LessOrEqual";
  case KL_OP_GT: return "Greater";
  case KL_OP_GE: return "GreaterOrEqual";
  case KL_OP_WHERE: return "Where";
  default: return NULL;
  }
}

kl_status kl_onnx_export_op(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  const char *direct = direct_op(n->op);
  if (direct) {
    const char *in[3];
    for (int i = 0; i < n->n_inputs && i < 3; i++)
      in[i] = in_name(ex, n, i);
    const char *out = out_name(ex, n);
    kl_onnx_ex_node(ex, scope, direct, in, n->n_inputs < 3 ? n->n_inputs : 3, &out, 1);
    return NULL;
  }
  const char *x = n->n_inputs > 0 ? in_name(ex, n, 0) : NULL;
  const char *out = out_name(ex, n);
  Onnx__NodeProto *node;
  switch (n->op) {
  case KL_OP_LINEAR: return export_linear(ex, scope, n);
  case KL_OP_CONV2D: return export_conv2d(ex, scope, n);
  case KL_OP_BATCH_NORM: {
    const char *in[5];
    for (int i = 0; i < 5; i++)
      in[i] = in_name(ex, n, i);
    node = kl_onnx_ex_node(ex, scope, "BatchNormalization", in, 5, &out, 1);
    kl_onnx_ex_attr_float(ex, node, "epsilon", kl_ir_node_float(n, "eps", 1e-5));
    return NULL;
  }
  case KL_OP_LAYER_NORM: return export_layer_norm(ex, scope, n);
  case KL_OP_SOFTMAX:
  case KL_OP_LOG_SOFTMAX:
    /* From opset 13 Softmax's axis is one dim, as PyTorch's; kiln writes no older opset. */
    node = kl_onnx_ex_node1(ex, scope, n->op == KL_OP_SOFTMAX ? "Softmax" : "LogSoftmax", x, out);
    kl_onnx_ex_attr_int(ex, node, "axis", kl_ir_node_int(n, "dim", -1));
    return NULL;
  case KL_OP_ATTENTION: return export_attention(ex, scope, n);
  case KL_OP_MAX_POOL2D:
  case KL_OP_AVG_POOL2D: return export_pool(ex, scope, n);
  case KL_OP_ADAPTIVE_AVG_POOL2D: return export_adaptive_pool(ex, scope, n);
  case KL_OP_RELU6:
  case KL_OP_HARDTANH:
  case KL_OP_CLAMP: return export_clip(ex, scope, n);
  case KL_OP_LEAKY_RELU:
    node = kl_onnx_ex_node1(ex, scope, "LeakyRelu", x, out);
    kl_onnx_ex_attr_float(ex, node, "alpha", kl_ir_node_float(n, "negative_slope", 0.01));
    return NULL;
  case KL_OP_HARDSIGMOID:
  case KL_OP_HARDSWISH: {
    /* PyTorch's hardsigmoid is relu6(x + 3) / 6: ONNX's with alpha 1/6, beta 1/2. */
    bool swish = n->op == KL_OP_HARDSWISH;
    if (swish && kl_onnx_ex_opset(ex) >= 14) {
      kl_onnx_ex_node1(ex, scope, "HardSwish", x, out);
      return NULL;
    }
    const char *hs = swish ? kl_onnx_ex_tmp(ex) : out;
    node = kl_onnx_ex_node1(ex, scope, "HardSigmoid", x, hs);
    kl_onnx_ex_attr_float(ex, node, "alpha", 1.0 / 6.0);
    kl_onnx_ex_attr_float(ex, node, "beta", 0.5);
    if (swish)
      kl_onnx_ex_node2(ex, scope, "Mul", x, hs, out);
    return NULL;
  }
  case KL_OP_GELU: return export_gelu(ex, scope, n);
  case KL_OP_SILU:
    kl_onnx_ex_node2(ex, scope, "Mul", x, unary_tmp(ex, scope, "Sigmoid", x), out);
    return NULL;
  case KL_OP_RSQRT:
    kl_onnx_ex_node1(ex, scope, "Reciprocal", unary_tmp(ex, scope, "Sqrt", x), out);
    return NULL;
  case KL_OP_CAST:
    node = kl_onnx_ex_node1(ex, scope, "Cast", x, out);
    kl_onnx_ex_attr_int(ex, node, "to", kl_onnx_ex_elem_type(n->outputs[0]->type.dtype));
    return NULL;
  case KL_OP_NE: {
    /* ONNX has no NotEqual: (x == y) == false, which kiln's importer reads back as two eqs
     * (the IR has no logical not for a Not node to map onto). */
    const char *eq = kl_onnx_ex_tmp(ex);
    kl_onnx_ex_node2(ex, scope, "Equal", x, in_name(ex, n, 1), eq);
    kl_onnx_ex_node2(ex, scope, "Equal", eq, kl_onnx_ex_const_scalar(ex, KL_BOOL, 0.0), out);
    return NULL;
  }
  case KL_OP_RESHAPE: {
    const kl_ir_attr *shape = kl_ir_node_attr(n, "shape");
    if (!shape || shape->kind != KL_ATTR_INTS)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: shape must be ints",
                              kl_ir_node_op_name(n));
    bool zero = false;
    for (int i = 0; i < shape->n; i++)
      zero = zero || shape->u.is[i] == 0;
    /* ONNX reads a 0 in the target as "copy this dim" unless allowzero (opset 14) says not. */
    if (zero && kl_onnx_ex_opset(ex) < 14)
      return no_form(ex, n, "a 0 in the target shape needs opset 14 (allowzero)");
    node = kl_onnx_ex_node2(ex, scope, "Reshape", x,
                            kl_onnx_ex_const_ints(ex, shape->u.is, shape->n), out);
    if (zero)
      kl_onnx_ex_attr_int(ex, node, "allowzero", 1);
    return NULL;
  }
  case KL_OP_FLATTEN: return export_flatten(ex, scope, n);
  case KL_OP_SQUEEZE: {
    /* Without dim every size-1 dim goes, as in ONNX. A listed dim that is not 1 stays
     * (PyTorch) where ONNX would fail, so only the listed size-1 dims become axes. */
    const kl_ir_attr *dims = kl_ir_node_attr(n, "dim");
    const kl_ir_type *t = &n->inputs[0]->type;
    if (!dims) {
      kl_onnx_ex_node1(ex, scope, "Squeeze", x, out);
      return NULL;
    }
    if (dims->kind != KL_ATTR_INTS)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: dim must be ints",
                              kl_ir_node_op_name(n));
    int64_t axes[KL_MAX_RANK];
    int n_axes = 0;
    for (int i = 0; i < dims->n && t->rank > 0; i++) {
      int d;
      KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, dims->u.is[i], t->rank, &d));
      if (!kl_ir_dim_is_static(t->dims[d]) || t->dims[d].size == 1)
        axes[n_axes++] = d;
    }
    if (n_axes == 0)
      kl_onnx_ex_node1(ex, scope, "Identity", x, out);
    else
      kl_onnx_ex_node2(ex, scope, "Squeeze", x, kl_onnx_ex_const_ints(ex, axes, n_axes), out);
    return NULL;
  }
  case KL_OP_UNSQUEEZE: {
    /* PyTorch and ONNX both count a negative dim from the end of the output. */
    int64_t dim = kl_ir_node_int(n, "dim", 0);
    kl_onnx_ex_node2(ex, scope, "Unsqueeze", x, kl_onnx_ex_const_ints(ex, &dim, 1), out);
    return NULL;
  }
  case KL_OP_TRANSPOSE:
  case KL_OP_PERMUTE: {
    int rank = n->inputs[0]->type.rank, perm[KL_MAX_RANK];
    int64_t perm64[KL_MAX_RANK];
    KL_RETURN_IF_ERROR(kl_ir_permute_params(n, rank, perm));
    for (int i = 0; i < rank; i++)
      perm64[i] = perm[i];
    node = kl_onnx_ex_node1(ex, scope, "Transpose", x, out);
    kl_onnx_ex_attr_ints(ex, node, "perm", perm64, rank);
    return NULL;
  }
  case KL_OP_EXPAND: {
    /* aten's -1 keeps a dim; ONNX's Expand broadcasts, so 1 does the same. */
    const kl_ir_attr *size = kl_ir_node_attr(n, "size");
    if (!size || size->kind != KL_ATTR_INTS)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: size must be ints",
                              kl_ir_node_op_name(n));
    int64_t shape[KL_MAX_RANK];
    if (size->n > KL_MAX_RANK)
      return no_form(ex, n, "too many dims");
    for (int i = 0; i < size->n; i++)
      shape[i] = size->u.is[i] == -1 ? 1 : size->u.is[i];
    kl_onnx_ex_node2(ex, scope, "Expand", x, kl_onnx_ex_const_ints(ex, shape, size->n), out);
    return NULL;
  }
  case KL_OP_CAT: {
    const char **in = kl_onnx_ex_names(ex, n->inputs, n->n_inputs);
    node = kl_onnx_ex_node(ex, scope, "Concat", in, n->n_inputs, &out, 1);
    kl_onnx_ex_attr_int(ex, node, "axis", kl_ir_node_int(n, "dim", 0));
    return NULL;
  }
  case KL_OP_SPLIT: {
    const kl_ir_attr *sizes = kl_ir_node_attr(n, "sizes");
    if (!sizes || sizes->kind != KL_ATTR_INTS || sizes->n != n->n_outputs)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: sizes must have one entry per output",
                              kl_ir_node_op_name(n));
    const char *in[2] = {x, kl_onnx_ex_const_ints(ex, sizes->u.is, sizes->n)};
    const char **outs = kl_onnx_ex_names(ex, n->outputs, n->n_outputs);
    node = kl_onnx_ex_node(ex, scope, "Split", in, 2, outs, n->n_outputs);
    kl_onnx_ex_attr_int(ex, node, "axis", kl_ir_node_int(n, "dim", 0));
    return NULL;
  }
  case KL_OP_SLICE: return export_slice(ex, scope, n);
  case KL_OP_CONSTANT_PAD: return export_pad(ex, scope, n);
  case KL_OP_EMBEDDING:
  case KL_OP_INDEX_SELECT:
  case KL_OP_GATHER: return export_gather(ex, scope, n);
  case KL_OP_SUM: return export_reduce(ex, scope, n, "ReduceSum");
  case KL_OP_MEAN: return export_reduce(ex, scope, n, "ReduceMean");
  case KL_OP_AMAX: return export_reduce(ex, scope, n, "ReduceMax");
  case KL_OP_AMIN: return export_reduce(ex, scope, n, "ReduceMin");
  /* ---- elementwise math (issue 4, onnx_export_math.c) ---- */
  case KL_OP_SIN:
  case KL_OP_COS:
  case KL_OP_TAN:
  case KL_OP_ASIN:
  case KL_OP_ACOS:
  case KL_OP_ATAN:
  case KL_OP_SINH:
  case KL_OP_COSH:
  case KL_OP_ASINH:
  case KL_OP_ACOSH:
  case KL_OP_ATANH:
  case KL_OP_FLOOR:
  case KL_OP_CEIL:
  case KL_OP_ROUND:
  case KL_OP_SIGN:
  case KL_OP_REMAINDER:
  case KL_OP_FMOD:
  case KL_OP_BITWISE_LEFT_SHIFT:
  case KL_OP_BITWISE_RIGHT_SHIFT:
  /* ---- bitwise (issue 4, onnx_export_math.c) ---- */
  case KL_OP_BITWISE_AND:
  case KL_OP_BITWISE_OR:
  case KL_OP_BITWISE_XOR:
  case KL_OP_BITWISE_NOT: return kl_onnx_export_math(ex, scope, n);
  /* ---- reductions and indexing (issue 4, onnx_export_index.c) ---- */
  case KL_OP_PROD:
  case KL_OP_CUMSUM:
  case KL_OP_SCATTER:
  case KL_OP_SCATTER_ND:
  case KL_OP_GATHER_ND: return kl_onnx_export_index(ex, scope, n);
  /* ---- resize and grid sample (issue 4, onnx_export_resize.c) ---- */
  case KL_OP_RESIZE:
  case KL_OP_GRID_SAMPLE: return kl_onnx_export_resize(ex, scope, n);
  /* ---- recurrent (issue 4, onnx_export_rnn.c) ---- */
  case KL_OP_RNN:
  case KL_OP_GRU:
  case KL_OP_LSTM: return kl_onnx_export_rnn(ex, scope, n);
  /* ---- ONNX nodes kept for run time (onnx_import_deferred.c) ---- */
  case KL_OP_ONNX_DEFERRED: return kl_onnx_export_deferred(ex, scope, n);
  default: break;
  }
  return no_form(ex, n, NULL);
}
