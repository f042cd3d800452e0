/* ONNX export of the reductions and indexing ops added for issue 4. aten::prod is ReduceProd
 * (axes an attribute before opset 18, an input from 18), with a Cast back when the IR widened an
 * integer input to Long; aten::cumsum is CumSum with a constant axis; aten::scatter is
 * ScatterElements; onnx::ScatterND and onnx::GatherND are themselves. ONNX has the reductions
 * add and mul of the scatters from opset 16 and max and min from 18; below that they are
 * refused with a message. */
#include <string.h>

#include "../../ir/op_params.h"
#include "onnx_export_internal.h"

static kl_status no_index_form(kl_onnx_exporter *ex, const kl_ir_node *n, const char *why) {
  return kl_status_create(KL_ERR_UNSUPPORTED, "%s (defining %%%s) has no ONNX form at opset %d: %s",
                          kl_ir_node_op_name(n), n->outputs[0]->name, kl_onnx_ex_opset(ex), why);
}

static kl_status export_prod(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  const kl_ir_attr *dims = kl_ir_node_attr(n, "dim");
  bool has_axes = dims && dims->kind == KL_ATTR_INTS && dims->n > 0;
  bool axes_input = kl_onnx_ex_opset(ex) >= 18;
  kl_dtype in_dt = n->inputs[0]->type.dtype, out_dt = n->outputs[0]->type.dtype;
  const char *in[2] = {kl_onnx_ex_name(ex, n->inputs[0]), NULL};
  if (has_axes && axes_input)
    in[1] = kl_onnx_ex_const_ints(ex, dims->u.is, dims->n);
  const char *out = kl_onnx_ex_name(ex, n->outputs[0]);
  const char *red = in_dt == out_dt ? out : kl_onnx_ex_tmp(ex);
  Onnx__NodeProto *r = kl_onnx_ex_node(ex, scope, "ReduceProd", in, in[1] ? 2 : 1, &red, 1);
  if (has_axes && !axes_input)
    kl_onnx_ex_attr_ints(ex, r, "axes", dims->u.is, dims->n);
  kl_onnx_ex_attr_int(ex, r, "keepdims", kl_ir_node_int(n, "keepdim", 0) ? 1 : 0);
  if (red != out) {
    Onnx__NodeProto *cast = kl_onnx_ex_node1(ex, scope, "Cast", red, out);
    kl_onnx_ex_attr_int(ex, cast, "to", kl_onnx_ex_elem_type(out_dt));
  }
  return NULL;
}

static kl_status export_cumsum(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  int dim;
  bool exclusive, reverse;
  KL_RETURN_IF_ERROR(
      kl_ir_cumsum_params(n, n->inputs[0]->type.rank, &dim, &exclusive, &reverse));
  const char *axis_name = kl_onnx_ex_const_scalar(ex, KL_I64, dim);
  Onnx__NodeProto *c = kl_onnx_ex_node2(ex, scope, "CumSum", kl_onnx_ex_name(ex, n->inputs[0]),
                                        axis_name, kl_onnx_ex_name(ex, n->outputs[0]));
  if (exclusive)
    kl_onnx_ex_attr_int(ex, c, "exclusive", 1);
  if (reverse)
    kl_onnx_ex_attr_int(ex, c, "reverse", 1);
  return NULL;
}

static kl_status export_scatter(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  static const char *const names[] = {"none", "add", "mul", "max", "min"};
  int dim = 0;
  kl_rt_scatter_reduce reduce;
  KL_RETURN_IF_ERROR(kl_ir_scatter_params(n, n->inputs[0]->type.rank, &dim, &reduce));
  int need = reduce == KL_SCATTER_NONE ? 0 : reduce <= KL_SCATTER_MUL ? 16 : 18;
  if (kl_onnx_ex_opset(ex) < need)
    return no_index_form(ex, n, reduce <= KL_SCATTER_MUL
                                    ? "the scatter reductions add and mul need opset 16"
                                    : "the scatter reductions max and min need opset 18");
  const char **in = kl_onnx_ex_names(ex, n->inputs, 3);
  const char *out = kl_onnx_ex_name(ex, n->outputs[0]);
  bool elements = n->op == KL_OP_SCATTER;
  Onnx__NodeProto *s =
      kl_onnx_ex_node(ex, scope, elements ? "ScatterElements" : "ScatterND", in, 3, &out, 1);
  if (elements)
    kl_onnx_ex_attr_int(ex, s, "axis", dim);
  if (reduce != KL_SCATTER_NONE)
    kl_onnx_ex_attr_string(ex, s, "reduction", names[reduce]);
  return NULL;
}

kl_status kl_onnx_export_index(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  switch (n->op) {
  case KL_OP_PROD: return export_prod(ex, scope, n);
  case KL_OP_CUMSUM: return export_cumsum(ex, scope, n);
  case KL_OP_SCATTER:
  case KL_OP_SCATTER_ND: return export_scatter(ex, scope, n);
  case KL_OP_GATHER_ND: {
    int batch_dims;
    KL_RETURN_IF_ERROR(kl_ir_gather_nd_params(n, &batch_dims));
    Onnx__NodeProto *g = kl_onnx_ex_node2(ex, scope, "GatherND", kl_onnx_ex_name(ex, n->inputs[0]),
                                          kl_onnx_ex_name(ex, n->inputs[1]),
                                          kl_onnx_ex_name(ex, n->outputs[0]));
    if (batch_dims)
      kl_onnx_ex_attr_int(ex, g, "batch_dims", batch_dims);
    return NULL;
  }
  default: return no_index_form(ex, n, "not an indexing op");
  }
}
