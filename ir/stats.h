/* Graph statistics for `kiln show --stats` and for reports: how many nodes of each op, how many
 * parameters and bytes of weights, and an estimate of the floating-point work of one run.
 *
 * FLOP conventions (one multiply-add counts as 2 FLOPs; out = output elements):
 *   aten::linear          2 * out * in_features, + out when there is a bias
 *   aten::matmul          2 * out * K (K: the contracted dim)
 *   aten::conv2d          2 * out * (Cin / groups) * Kh * Kw, + out when there is a bias
 *   aten::batch_norm      2 * out (inference form: one scale and one shift per element)
 *   aten::layer_norm      5 * out (mean, subtract, square-accumulate, scale), + out per affine input
 *   aten::softmax, log_softmax  5 * out (max, subtract, exp, sum, divide)
 *   aten::scaled_dot_product_attention  with scores = batch * L * S: 2 * scores * (E + Ev) for
 *                         the two products, + 6 * scores (scale, softmax), + scores with a mask
 *   max_pool2d, avg_pool2d      out * Kh * Kw; adaptive_avg_pool2d: input elements + out
 *   elementwise and broadcast ops (relu, gelu, add, eq, where, ...)  out
 *   reductions            input elements
 *   aten::to, aten::dropout, data movement (reshape, permute, cat, gather, ...), prim::*   0
 *   onnx::RNN, GRU, LSTM (issue 4)  with G gates (1, 3, 4), steps = out / H (time steps times
 *                         directions times batch): steps * (2 * G * H * (in + H) for the gate
 *                         products + 4 * G * H for biases, adds and activations + a state
 *                         update of 4 * H (GRU) or 5 * H (LSTM)); sequence_lens is ignored
 *   onnx::Resize (issue 4)  2 * out * taps * (dims whose size changes); taps 2 (linear) or
 *                         4 (cubic), 0 for nearest (copies); antialias's wider filter not counted
 *   onnx::GridSample (issue 4)  2 * out * taps^k (k spatial dims; taps as Resize)
 * Sub-blocks are counted once each: both branches of a prim::If, one trip of a prim::Loop (whose
 * trip count is not static, which makes the estimate partial). A node whose needed dims are not
 * static adds nothing and makes the estimate partial. */
#ifndef KL_IR_STATS_H
#define KL_IR_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "ir.h"

typedef struct kl_ir_stats {
  int64_t n_nodes;                 /* every node, sub-blocks included */
  int64_t op_counts[KL_OP_COUNT];  /* nodes per op, sub-blocks included */
  int64_t n_weights;               /* weight tensors (prim::Param values) */
  int64_t n_constants;             /* prim::Constant tensors */
  int64_t param_elements;          /* elements of weights and constants together */
  int64_t param_bytes;             /* their bytes */
  int64_t flops;                   /* the estimate; see the conventions above */
  int64_t n_partial_nodes;         /* nodes not (fully) counted because of non-static shapes */
  bool flops_partial;              /* n_partial_nodes > 0 or a prim::Loop was seen */
} kl_ir_stats;

/* Fills out for g. Weights come from g->weights; a prim::Param without a weight tensor (a text
 * IR file) counts with its declared static type. Fails only when a total overflows int64. */
kl_status kl_ir_graph_stats(const kl_ir_graph *g, kl_ir_stats *out);

/* The FLOP estimate of one node alone (its sub-blocks not included). out_static is false when
 * the node's needed dims are not all static; the count is then 0. */
kl_status kl_ir_node_flops(const kl_ir_node *n, int64_t *out_flops, bool *out_static);

#endif
