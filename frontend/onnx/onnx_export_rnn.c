/* ONNX export of onnx::RNN, onnx::GRU and onnx::LSTM: one ONNX node of the same name with the
 * same attributes. The size-0 placeholders that stand for omitted optional inputs go back to
 * being omitted (""). The batch-major layout (layout=1) is written as Transposes around a
 * layout-0 node, since ONNX Runtime 1.23 refuses layout=1 and opsets before 14 lack it. */
#include <string.h>

#include "onnx_export_internal.h"

bool kl_onnx_ex_is_rnn_placeholder(const kl_ir_value *v) {
  return v->type.rank == 1 && kl_ir_dim_is_static(v->type.dims[0]) && v->type.dims[0].size == 0;
}

/* Transpose(x, perm) into out (a fresh name when NULL); returns the output name. */
static const char *transpose(kl_onnx_exporter *ex, kl_onnx_scope *scope, const char *x,
                             const int64_t *perm, int rank, const char *out) {
  if (!out)
    out = kl_onnx_ex_tmp(ex);
  Onnx__NodeProto *node = kl_onnx_ex_node1(ex, scope, "Transpose", x, out);
  kl_onnx_ex_attr_ints(ex, node, "perm", perm, rank);
  return out;
}

kl_status kl_onnx_export_rnn(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  const char *op_type = n->op == KL_OP_LSTM ? "LSTM" : n->op == KL_OP_GRU ? "GRU" : "RNN";
  bool batch_major = kl_ir_node_int(n, "layout", 0) == 1;
  static const int64_t swap01[3] = {1, 0, 2}, y_back[4] = {2, 0, 1, 3};
  const char *in[8] = {NULL};
  int n_in = n->n_inputs < 8 ? n->n_inputs : 8;
  for (int i = 0; i < n_in; i++)
    in[i] = i >= 3 && kl_onnx_ex_is_rnn_placeholder(n->inputs[i]) ? NULL : kl_onnx_ex_name(ex, n->inputs[i]);
  /* X, initial_h and initial_c to the sequence-major layout */
  for (int i = 0; batch_major && i < n_in; i++)
    if (in[i] && (i == 0 || i == 5 || i == 6))
      in[i] = transpose(ex, scope, in[i], swap01, 3, NULL);
  while (n_in > 3 && !in[n_in - 1])
    n_in--;
  const char **out = kl_onnx_ex_names(ex, n->outputs, n->n_outputs);
  const char *direct[3];
  for (int k = 0; k < n->n_outputs && k < 3; k++)
    direct[k] = batch_major ? kl_onnx_ex_tmp(ex) : out[k];
  Onnx__NodeProto *node = kl_onnx_ex_node(ex, scope, op_type, in, n_in, direct, n->n_outputs);
  for (int k = 0; batch_major && k < n->n_outputs && k < 3; k++)
    transpose(ex, scope, direct[k], k == 0 ? y_back : swap01, k == 0 ? 4 : 3, out[k]);
  for (int i = 0; i < n->n_attrs; i++) {
    const kl_ir_attr *a = &n->attrs[i];
    if (!strcmp(a->name, "layout"))
      continue;
    switch (a->kind) {
    case KL_ATTR_INT: kl_onnx_ex_attr_int(ex, node, a->name, a->u.i); break;
    case KL_ATTR_FLOAT: kl_onnx_ex_attr_float(ex, node, a->name, a->u.f); break;
    case KL_ATTR_STRING: kl_onnx_ex_attr_string(ex, node, a->name, a->u.s); break;
    case KL_ATTR_FLOATS: kl_onnx_ex_attr_floats(ex, node, a->name, a->u.fs, a->n); break;
    case KL_ATTR_STRINGS: kl_onnx_ex_attr_strings(ex, node, a->name, a->u.ss, a->n); break;
    default:
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: attribute %s has the unexpected "
                              "kind %s", kl_ir_node_op_name(n), a->name,
                              kl_ir_attr_kind_name(a->kind));
    }
  }
  return NULL;
}
