/* The eager functions of the recurrent ops onnx::RNN, onnx::GRU and onnx::LSTM (kiln.h). They
 * build the node's attributes from kl_rnn_opts, leaving defaults out as the other eager ops
 * do, and stand a size-0 tensor in for an omitted optional input that precedes a given one
 * (the IR's convention, ir/op_params.h). */
#include <string.h>

#include "frontend_internal.h"

/* Outputs the caller did not ask for are released at once. */
static bool call(const char *fn, kl_op op, kl_tensor *const *given, int n_max, kl_dtype dtype,
                 const kl_rnn_opts *o, kl_tensor **outs[3], int n_out) {
  for (int k = 0; k < n_out; k++)
    if (outs[k])
      *outs[k] = NULL;
  for (int i = 0; i < 3; i++)
    if (!given[i])
      return false; /* an earlier failure, already reported (or a NULL X, W, R: see below) */
  if (!o || o->hidden_size <= 0) {
    kl_fe_report(kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: opts with hidden_size > 0 is "
                                  "required", fn));
    return false;
  }
  int n_in = 3;
  for (int i = 3; i < n_max; i++)
    if (given[i])
      n_in = i + 1;
  kl_tensor *in[8], *holes[8] = {NULL};
  for (int i = 0; i < n_in; i++) {
    in[i] = given[i];
    if (!in[i]) {
      int64_t zero = 0;
      kl_status s = kl_tensor_create(i == 4 ? KL_I32 : dtype, 1, &zero, &holes[i]);
      if (s) {
        kl_fe_report(s);
        for (int j = 0; j < i; j++)
          kl_tensor_release(holes[j]);
        return false;
      }
      in[i] = holes[i];
    }
  }
  kl_ir_attr attrs[9];
  int n = 0;
  attrs[n++] = (kl_ir_attr){.name = "hidden_size", .kind = KL_ATTR_INT, .u.i = o->hidden_size};
  if (o->direction && strcmp(o->direction, "forward"))
    attrs[n++] = (kl_ir_attr){.name = "direction", .kind = KL_ATTR_STRING, .u.s = o->direction};
  if (o->n_activations > 0 && o->activations)
    attrs[n++] = (kl_ir_attr){.name = "activations", .kind = KL_ATTR_STRINGS,
                              .n = o->n_activations, .u.ss = (const char **)o->activations};
  if (o->n_alpha > 0 && o->activation_alpha)
    attrs[n++] = (kl_ir_attr){.name = "activation_alpha", .kind = KL_ATTR_FLOATS,
                              .n = o->n_alpha, .u.fs = (double *)o->activation_alpha};
  if (o->n_beta > 0 && o->activation_beta)
    attrs[n++] = (kl_ir_attr){.name = "activation_beta", .kind = KL_ATTR_FLOATS,
                              .n = o->n_beta, .u.fs = (double *)o->activation_beta};
  if (o->clip > 0)
    attrs[n++] = (kl_ir_attr){.name = "clip", .kind = KL_ATTR_FLOAT, .u.f = o->clip};
  if (o->batch_first)
    attrs[n++] = (kl_ir_attr){.name = "layout", .kind = KL_ATTR_INT, .u.i = 1};
  if (op == KL_OP_GRU && o->linear_before_reset)
    attrs[n++] = (kl_ir_attr){.name = "linear_before_reset", .kind = KL_ATTR_INT, .u.i = 1};
  if (op == KL_OP_LSTM && o->input_forget)
    attrs[n++] = (kl_ir_attr){.name = "input_forget", .kind = KL_ATTR_INT, .u.i = 1};
  kl_tensor *res[3];
  kl_status s = kl_fe_call(op, in, n_in, attrs, n, res, n_out);
  for (int i = 0; i < n_in; i++)
    kl_tensor_release(holes[i]);
  if (s) {
    kl_fe_report(s);
    return false;
  }
  for (int k = 0; k < n_out; k++) {
    if (outs[k])
      *outs[k] = kl_fe_own(res[k]);
    else
      kl_tensor_release(res[k]);
  }
  return true;
}

bool kl_rnn(kl_tensor *x, kl_tensor *w, kl_tensor *r, kl_tensor *b, kl_tensor *seq_lens,
            kl_tensor *h0, const kl_rnn_opts *opts, kl_tensor **out_y, kl_tensor **out_h) {
  kl_tensor *in[6] = {x, w, r, b, seq_lens, h0};
  kl_tensor **outs[3] = {out_y, out_h, NULL};
  return call("kl_rnn", KL_OP_RNN, in, 6, x ? x->dtype : KL_F32, opts, outs, 2);
}

bool kl_gru(kl_tensor *x, kl_tensor *w, kl_tensor *r, kl_tensor *b, kl_tensor *seq_lens,
            kl_tensor *h0, const kl_rnn_opts *opts, kl_tensor **out_y, kl_tensor **out_h) {
  kl_tensor *in[6] = {x, w, r, b, seq_lens, h0};
  kl_tensor **outs[3] = {out_y, out_h, NULL};
  return call("kl_gru", KL_OP_GRU, in, 6, x ? x->dtype : KL_F32, opts, outs, 2);
}

bool kl_lstm(kl_tensor *x, kl_tensor *w, kl_tensor *r, kl_tensor *b, kl_tensor *seq_lens,
             kl_tensor *h0, kl_tensor *c0, kl_tensor *p, const kl_rnn_opts *opts,
             kl_tensor **out_y, kl_tensor **out_h, kl_tensor **out_c) {
  kl_tensor *in[8] = {x, w, r, b, seq_lens, h0, c0, p};
  kl_tensor **outs[3] = {out_y, out_h, out_c};
  return call("kl_lstm", KL_OP_LSTM, in, 8, x ? x->dtype : KL_F32, opts, outs, 3);
}
