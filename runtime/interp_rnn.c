/* The interpreter's adapter for the recurrent ops onnx::RNN, onnx::GRU and onnx::LSTM: reads
 * the attributes through ir/op_params.h (the rules the shape function applies), turns the
 * size-0 placeholders of omitted optional inputs into NULL, and calls kl_rt_rnn. */
#include "../ir/op_params.h"
#include "interp_internal.h"
#include "kernels.h"

/* Input i, or NULL when the node has fewer inputs or input i is the size-0 placeholder. */
static const kl_tensor *given(const kl_ir_node *node, kl_tensor *const *in, int i) {
  if (i >= node->n_inputs)
    return NULL;
  const kl_tensor *t = in[i];
  return t->rank == 1 && t->shape[0] == 0 ? NULL : t;
}

KL_INTERP_ADAPTER(rnn) {
  (void)g;
  kl_rt_rnn_params p;
  KL_RETURN_IF_ERROR(kl_ir_rnn_params(node, &p));
  bool lstm = node->op == KL_OP_LSTM;
  return kl_rt_rnn(&p, in[0], in[1], in[2], given(node, in, 3), given(node, in, 4),
                   given(node, in, 5), lstm ? given(node, in, 6) : NULL,
                   lstm ? given(node, in, 7) : NULL, out[0], out[1], lstm ? out[2] : NULL);
}
