/* ONNX RNN, GRU and LSTM (opset 7 on; layout from 14; 22 only widens the types) to the IR ops
 * onnx::RNN, onnx::GRU and onnx::LSTM, which keep ONNX's inputs and attributes. An omitted
 * optional input before a present one becomes a 1-D constant of size 0 (the IR has no absent
 * value); omitted trailing inputs are left off. The IR node always has every output (Y, Y_h
 * and, for LSTM, Y_c); the ONNX outputs that are asked for map onto them. */
#include <stdio.h>
#include <string.h>

#include "onnx_internal.h"

/* A size-0 1-D constant of dtype standing for an omitted input. */
static kl_ir_value *placeholder(kl_onnx_node_ctx *c, kl_dtype dtype, int index) {
  int64_t zero = 0;
  kl_tensor *t;
  kl_status s = kl_tensor_create(dtype, 1, &zero, &t);
  if (s) { /* a 0-byte tensor cannot fail but for memory */
    kl_status_destroy(s);
    kl_fatal_oom();
  }
  kl_ir_value *v = kl_onnx_emit_constant(c, t);
  kl_tensor_release(t);
  /* Named after the node, not numbered: the export omits placeholders, and a re-import must
   * spell them the same although it numbers other values differently. */
  static const char *const roles[8] = {"X", "W", "R", "B", "sequence_lens", "initial_h",
                                       "initial_c", "P"};
  const char *out0 = c->node->n_output ? c->node->output[0] : NULL;
  if (out0 && *out0 && index >= 0 && index < 8) {
    char name[512];
    snprintf(name, sizeof name, "%s.%s", out0, roles[index]);
    kl_ir_value_set_name(v, name);
  }
  return v;
}

/* Copies the strings attribute `name` (at most max entries) onto n. */
static kl_status copy_strings(kl_onnx_node_ctx *c, kl_ir_node *n, const char *name) {
  const Onnx__AttributeProto *a = kl_onnx_attr(c->node, name);
  if (!a || a->n_strings == 0)
    return NULL;
  if (a->n_strings > 6)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "attribute %s has %zu entries; at most 6",
                              name, a->n_strings);
  char buf[6][40];
  const char *ptrs[6];
  for (size_t i = 0; i < a->n_strings; i++) {
    size_t len = a->strings[i].len;
    if (len >= sizeof buf[i] || memchr(a->strings[i].data, 0, len))
      return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "attribute %s: entry %zu is not a "
                                "known activation name", name, i);
    memcpy(buf[i], a->strings[i].data, len);
    buf[i][len] = '\0';
    ptrs[i] = buf[i];
  }
  kl_ir_node_set_strings(n, name, ptrs, (int)a->n_strings);
  return NULL;
}

static kl_status copy_floats(kl_onnx_node_ctx *c, kl_ir_node *n, const char *name) {
  const Onnx__AttributeProto *a = kl_onnx_attr(c->node, name);
  if (!a || a->n_floats == 0)
    return NULL;
  if (a->n_floats > 64)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "attribute %s has %zu entries; at most 64",
                              name, a->n_floats);
  double v[64];
  for (size_t i = 0; i < a->n_floats; i++)
    v[i] = a->floats[i];
  kl_ir_node_set_floats(n, name, v, (int)a->n_floats);
  return NULL;
}

kl_status kl_onnx_map_rnn(kl_onnx_node_ctx *c) {
  const char *type = c->node->op_type;
  bool lstm = !strcmp(type, "LSTM"), gru = !strcmp(type, "GRU");
  kl_op op = lstm ? KL_OP_LSTM : gru ? KL_OP_GRU : KL_OP_RNN;
  int max_in = lstm ? 8 : 6;
  kl_ir_value *x = kl_onnx_input(c, 0), *r = kl_onnx_input(c, 2);
  if (!x || !kl_onnx_input(c, 1) || !r)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "inputs X, W and R are required");
  if (c->n_in > max_in)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "%s takes at most %d inputs, not %d", type,
                              max_in, c->n_in);
  int64_t hidden = kl_onnx_attr_int(c, "hidden_size", -1);
  if (hidden < 0) {
    if (r->type.rank != 3 || !kl_ir_dim_is_static(r->type.dims[2]))
      return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "hidden_size is absent and R's shape "
                                "does not give it");
    hidden = r->type.dims[2].size;
  }
  int n_given = 3;
  for (int i = 3; i < c->n_in; i++)
    if (kl_onnx_input(c, i))
      n_given = i + 1;
  kl_ir_value *in[8];
  for (int i = 0; i < n_given; i++) {
    in[i] = kl_onnx_input(c, i);
    if (!in[i])
      in[i] = placeholder(c, i == 4 ? KL_I32 : x->type.dtype, i);
  }
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_emit(c, op, in, n_given, lstm ? 3 : 2, &n));
  kl_ir_node_set_int(n, "hidden_size", hidden);
  char buf[32];
  const char *dir = kl_onnx_attr_string(c, "direction", "forward", buf, sizeof buf);
  if (strcmp(dir, "forward"))
    kl_ir_node_set_string(n, "direction", dir);
  KL_RETURN_IF_ERROR(copy_strings(c, n, "activations"));
  KL_RETURN_IF_ERROR(copy_floats(c, n, "activation_alpha"));
  KL_RETURN_IF_ERROR(copy_floats(c, n, "activation_beta"));
  if (kl_onnx_attr(c->node, "clip"))
    kl_ir_node_set_float(n, "clip", kl_onnx_attr_float(c, "clip", 0));
  int64_t layout = kl_onnx_attr_int(c, "layout", 0);
  if (layout)
    kl_ir_node_set_int(n, "layout", layout);
  if (gru && kl_onnx_attr_int(c, "linear_before_reset", 0))
    kl_ir_node_set_int(n, "linear_before_reset", kl_onnx_attr_int(c, "linear_before_reset", 0));
  if (lstm && kl_onnx_attr_int(c, "input_forget", 0))
    kl_ir_node_set_int(n, "input_forget", kl_onnx_attr_int(c, "input_forget", 0));
  KL_RETURN_IF_ERROR(kl_onnx_infer(c, n));
  for (int k = 0; k < c->n_out && k < n->n_outputs; k++)
    c->out[k] = n->outputs[k];
  return NULL;
}
