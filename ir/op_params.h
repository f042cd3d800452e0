/* Reading an op's attributes into the parameters its kernel wants, with defaults applied and
 * values checked. Shape functions, the interpreter's kernel adapters and (later) code
 * generators all call these, so each default and each rule is written once.
 *
 * Attribute semantics (defaults in brackets):
 *   aten::conv2d       stride [1,1], padding [0,0] (2 ints: symmetric h, w; 4 ints: top, left,
 *                      bottom, right), dilation [1,1], groups [1]
 *   aten::max_pool2d,  kernel_size (2 ints, required), stride [= kernel_size], padding as conv,
 *   aten::avg_pool2d   dilation [1,1] (max only), ceil_mode [0], count_include_pad [1] (avg only)
 *   aten::hardtanh     min_val [-1], max_val [1];  aten::relu6: clamp to [0, 6]
 *   aten::clamp        min, max [unbounded];  aten::leaky_relu negative_slope [0.01]
 *   aten::gelu         approximate ["none"] or "tanh"
 *   aten::sum/mean/amax/amin  dim [all dims; [] also means all], keepdim [0]
 *   aten::slice        dim [0], start [0], end [INT64_MAX], step [1] (python slicing, clamped;
 *                      step may be negative, never 0)
 *   aten::constant_pad_nd  pad: pairs (before, after) starting from the LAST dim, as PyTorch
 *                      F.pad; value [0]
 * Negative dims count from the end everywhere a dim is named. */
#ifndef KL_IR_OP_PARAMS_H
#define KL_IR_OP_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "../runtime/kernels.h"
#include "ir.h"

/* Normalizes dim (may be negative) for a tensor of rank; an error names the node's op. */
kl_status kl_ir_normalize_dim(const kl_ir_node *n, int64_t dim, int rank, int *out_dim);

kl_status kl_ir_conv2d_params(const kl_ir_node *n, kl_rt_conv2d_params *out);
/* Max and avg pooling; out_ceil_mode may be NULL. */
kl_status kl_ir_pool2d_params(const kl_ir_node *n, kl_rt_pool2d_params *out, bool *out_ceil_mode);
/* The unary kernel op and its parameters a, b for any op whose kernel column is "unary". */
kl_status kl_ir_unary_params(const kl_ir_node *n, kl_rt_unary_op *out_op, double *out_a,
                             double *out_b);
/* The binary kernel op for any op whose kernel column is "binary". */
kl_status kl_ir_binary_params(const kl_ir_node *n, kl_rt_binary_op *out_op);
/* Reduction op, which of the rank dims are reduced (out_mask: rank entries), and keepdim. */
kl_status kl_ir_reduce_params(const kl_ir_node *n, int rank, kl_rt_reduce_op *out_op,
                              bool *out_mask, bool *out_keepdim);
/* The permutation of aten::transpose or aten::permute for an input of rank (out_perm: rank). */
kl_status kl_ir_permute_params(const kl_ir_node *n, int rank, int *out_perm);
/* aten::slice for an input dim of size dim_size: normalized dim, first index, step, length. */
kl_status kl_ir_slice_params(const kl_ir_node *n, int rank, const int64_t *in_shape, int *out_dim,
                             int64_t *out_start, int64_t *out_step, int64_t *out_len);
/* aten::constant_pad_nd as (before, after) per dim from dim 0 (out_pad: 2*rank) and value. */
kl_status kl_ir_pad_params(const kl_ir_node *n, int rank, int64_t *out_pad, double *out_value);
/* Gather-like ops (embedding, index_select, onnx::Gather): the data input index (embedding's
 * data is its weight, input 0), the axis for data of rank data_rank, whether negative indices
 * wrap, and whether indices must be 1-D (index_select). */
kl_status kl_ir_gather_params(const kl_ir_node *n, int data_rank, int *out_axis,
                              bool *out_allow_negative, bool *out_indices_1d);

/* ---- recurrent (issue 4), in ir/shape_rnn.c ----
 * onnx::RNN, onnx::GRU, onnx::LSTM take ONNX's attributes and inputs (X, W, R, B, sequence_lens,
 * initial_h, initial_c, P); an omitted optional input is left off the end or, before a present
 * one, given as a 1-D tensor of size 0. hidden_size (required), direction ["forward"] or
 * "reverse" or "bidirectional", activations [RNN: Tanh; GRU: Sigmoid, Tanh; LSTM: Sigmoid,
 * Tanh, Tanh] per direction (one direction's list serves both when bidirectional),
 * activation_alpha / activation_beta: GRU and LSTM consume them in order, by the activations
 * that take one (the spec's wording, ONNX Runtime's reading); RNN gives entry i to activation
 * i (ONNX's reference and ONNX Runtime); past the end, ONNX's default for the activation, clip [none], layout [0], linear_before_reset [0] (GRU),
 * input_forget [0] (LSTM). Names of activations are matched without regard to case. */
kl_status kl_ir_rnn_params(const kl_ir_node *n, kl_rt_rnn_params *out);

/* ---- reductions and indexing (issue 4), in ir/shape_index.c ----
 * aten::prod as aten::sum (kl_ir_reduce_params). aten::cumsum: dim (required), exclusive [0],
 * reverse [0] as ONNX CumSum. aten::scatter: dim (required), reduce ["none"]; onnx::ScatterND:
 * reduction ["none"]; both take "none", "add", "mul", "max", "min". onnx::GatherND: batch_dims
 * [0]. */
kl_status kl_ir_cumsum_params(const kl_ir_node *n, int rank, int *out_dim, bool *out_exclusive,
                              bool *out_reverse);
/* out_dim is left alone for onnx::ScatterND (it has none); out_dim may be NULL. */
kl_status kl_ir_scatter_params(const kl_ir_node *n, int rank, int *out_dim,
                               kl_rt_scatter_reduce *out_reduce);
kl_status kl_ir_gather_nd_params(const kl_ir_node *n, int *out_batch_dims);


/* ---- resize and grid sample (issue 4), in ir/shape_resize.c ----
 * onnx::Resize: size (required, one per dim), scales [size / input size], roi [0s then 1s],
 * mode ["nearest"], coordinate_transformation_mode ["half_pixel"], nearest_mode
 * ["round_prefer_floor"], cubic_coeff_a [-0.75], exclude_outside [0], extrapolation_value [0],
 * antialias [0]. onnx::GridSample: mode ["linear"], padding_mode ["zeros"], align_corners [0]. */
kl_status kl_ir_resize_params(const kl_ir_node *n, int rank, const int64_t *in_shape,
                              kl_rt_resize_params *out);
kl_status kl_ir_grid_sample_params(const kl_ir_node *n, kl_rt_resize_mode *out_mode,
                                   kl_rt_grid_padding *out_padding, bool *out_align_corners);

#endif
