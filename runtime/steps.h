/* Steps: every op the runtime can execute, as one uniform call.
 *
 * A step is an op's kernel behind a fixed signature taking a plain-old-data parameter block:
 *
 *     kl_status kl_step_<kernel>(const kl_step_env *env, const void *params,
 *                                kl_tensor *const *in, int n_in, kl_tensor *const *out, int n_out)
 *
 * where <kernel> is a value of the kernel column of ir/ops.def (unary, binary, conv2d, ...). The
 * parameter block is a struct of fixed-size fields (integers, doubles, bools, enums, fixed
 * arrays; never a pointer), so a compiler can compute it from the IR at compile time and embed
 * its bytes in an artifact, and the interpreter computes the same block at run time. The IR side
 * (attributes to parameter block, with every default and rule of ir/op_params.h) lives in
 * runtime/interp_encode.c and is not part of what artifacts link; the step side here needs libc
 * only.
 *
 * Inputs and outputs are dense C-ordered tensors; outputs are allocated by the caller with the
 * inferred dtypes and shapes and the step only fills them (kernels.h's contract). An optional
 * input that is absent is a NULL entry of in (n_in counts the node's inputs). Steps check what
 * they rely on (operand counts, a block computed for another rank, enum values) and return
 * statuses for those and for data-dependent errors (an index out of range); the messages name
 * the step, and the caller adds the node. A step keeps no state: one block may be run from
 * several threads at once. */
#ifndef KL_RUNTIME_STEPS_H
#define KL_RUNTIME_STEPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "status.h"
#include "tensor.h"
#include "threadpool.h"

/* What a step may use besides its operands. pool may be NULL (run on the calling thread);
 * matmul, linear, conv2d, attention and the pools split their work across it
 * (steps_parallel.c), with results bit-identical to a run
 * without one. */
typedef struct kl_step_env {
  kl_threadpool *pool;
} kl_step_env;

/* The largest parameter block of any step, in bytes (a compile-time bound for buffers). */
#define KL_STEP_PARAMS_MAX 1024

typedef kl_status (*kl_step_fn)(const kl_step_env *env, const void *params, kl_tensor *const *in,
                                int n_in, kl_tensor *const *out, int n_out);

typedef struct kl_step_info {
  const char *kernel;    /* the kernel column value: "conv2d" */
  const char *symbol;    /* the C symbol an artifact calls: "kl_step_conv2d" */
  kl_step_fn fn;         /* NULL for "control" (If, Loop, FusionGroup, Param, Constant) */
  size_t params_size;    /* sizeof its parameter block (<= KL_STEP_PARAMS_MAX); 0 if none */
} kl_step_info;

/* The step of a kernel column value, or NULL for an unknown name. "control" has an entry with
 * fn NULL (kl_step_control exists, for tables built from the op table, and returns
 * KL_ERR_INTERNAL). */
const kl_step_info *kl_step_lookup(const char *kernel);

/* Parameter blocks: kl_step_<kernel>_params for each kernel that has parameters, and
 * KL_STEP_PARAMS_SIZE_<kernel> (its sizeof, or 0) for every kernel of the op table, so that a
 * new kernel without one fails to compile. Enums are stored as int32_t and flags as bool, so a
 * block's layout is the C ABI's for these plain fields on every target kiln builds for. Steps
 * read a block with memcpy: an artifact may embed it at any alignment. Everything a step needs
 * that depends on the operands' ranks (a permutation, a reduce mask, pads per dim) is
 * precomputed by the encoder; steps still check what they rely on. */

/* unary: y = op(x) with the op's parameters a, b (kernels.h, kl_rt_unary). */
typedef struct kl_step_unary_params {
  int32_t op; /* kl_rt_unary_op */
  double a, b;
} kl_step_unary_params;

/* binary: y = op(a, b), broadcasting (kl_rt_binary). */
typedef struct kl_step_binary_params {
  int32_t op; /* kl_rt_binary_op */
} kl_step_binary_params;

/* conv2d: in = x, w, bias?, residual? (kl_rt_conv2d). With w_packed (set by a compiler, never by the
 * encoder), in[1] is instead a 1-D f32 tensor of the weights packed by kl_rt_conv2d_pack
 * (KL_STEP_CONV_GEMM; f32 GEMM convolutions, kl_rt_conv2d_uses_gemm) or transformed by
 * kl_rt_conv2d_winograd_pack (KL_STEP_CONV_WINOGRAD; kl_rt_conv2d_winograd_fits), and w_shape
 * their own shape (Cout, Cin/groups, Kh, Kw). */
enum { KL_STEP_CONV_PLAIN = 0, KL_STEP_CONV_GEMM = 1, KL_STEP_CONV_WINOGRAD = 2 };
typedef struct kl_step_conv2d_params {
  kl_rt_conv2d_params conv;
  int32_t w_packed; /* KL_STEP_CONV_* */
  int64_t w_shape[4];
  /* A fused epilogue (set by a compiler, never by the encoder; f32 only): with residual, in[3]
   * is a tensor of y's shape added to each output element, then act (kl_sgemm_act of
   * runtime/gemm.h) with lo, hi is applied. */
  int32_t act;
  float lo, hi;
  bool residual;
} kl_step_conv2d_params;

/* matmul: in = a, b (kl_rt_matmul). With b_packed (set by a compiler, never by the encoder, for
 * f32 with b 2-D), in[1] is instead a 1-D f32 tensor of b packed by kl_rt_matmul_pack_b, and
 * b_shape its shape (K, N). */
typedef struct kl_step_matmul_params {
  bool b_packed;
  int64_t b_shape[2];
} kl_step_matmul_params;

/* linear: in = x, w, bias? (kl_rt_linear). With w_packed (set by a compiler, never by the
 * encoder, for f32 with at least KL_RT_LINEAR_GEMM_ROWS rows), in[1] is instead a 1-D f32
 * tensor of the weights packed by kl_rt_linear_pack, and w_shape their shape (out, in). */
typedef struct kl_step_linear_params {
  bool w_packed;
  int64_t w_shape[2];
} kl_step_linear_params;

/* batch_norm: in = x, weight, bias, running_mean, running_var. */
typedef struct kl_step_batch_norm_params {
  double eps;
} kl_step_batch_norm_params;

/* layer_norm: in = x, weight?, bias?; normalizes over the last n_norm_dims dims. */
typedef struct kl_step_layer_norm_params {
  int32_t n_norm_dims;
  double eps;
} kl_step_layer_norm_params;

/* softmax and log_softmax along dim (0 .. rank-1). */
typedef struct kl_step_softmax_params {
  int32_t dim;
  bool log;
} kl_step_softmax_params;

/* attention: in = q, k, v, mask?. */
typedef struct kl_step_attention_params {
  double scale;
  bool is_causal;
} kl_step_attention_params;

/* max_pool2d and avg_pool2d. */
typedef struct kl_step_pool2d_params {
  kl_rt_pool2d_params pool;
} kl_step_pool2d_params;
typedef kl_step_pool2d_params kl_step_max_pool2d_params;
typedef kl_step_pool2d_params kl_step_avg_pool2d_params;

/* reduce: which of the input's rank dims are reduced (the rest of mask is false). */
typedef struct kl_step_reduce_params {
  int32_t op; /* kl_rt_reduce_op */
  int32_t rank;
  bool mask[KL_MAX_RANK];
} kl_step_reduce_params;

/* permute: y.shape[i] = x.shape[perm[i]] for i < rank. */
typedef struct kl_step_permute_params {
  int32_t rank;
  int32_t perm[KL_MAX_RANK];
} kl_step_permute_params;

/* cat and split along dim. */
typedef struct kl_step_dim_params {
  int32_t dim;
} kl_step_dim_params;
typedef kl_step_dim_params kl_step_cat_params;
typedef kl_step_dim_params kl_step_split_params;

/* slice: y = x[start : start + step * len : step] along dim. */
typedef struct kl_step_slice_params {
  int32_t dim;
  int64_t start, step, len;
} kl_step_slice_params;

/* constant_pad: (before, after) per dim from dim 0, for an input of rank dims. */
typedef struct kl_step_constant_pad_params {
  int32_t rank;
  int64_t pad[2 * KL_MAX_RANK];
  double value;
} kl_step_constant_pad_params;

/* gather (embedding, index_select, onnx::Gather): in = data, indices. */
typedef struct kl_step_gather_params {
  int32_t axis;
  bool allow_negative;
  bool indices_1d; /* index_select: indices must be 1-D */
} kl_step_gather_params;

typedef struct kl_step_cumsum_params {
  int32_t dim;
  bool exclusive, reverse;
} kl_step_cumsum_params;

/* scatter: in = data, index, src; scatter_nd: in = data, indices, updates (dim unused). */
typedef struct kl_step_scatter_params {
  int32_t dim;
  int32_t reduce; /* kl_rt_scatter_reduce */
} kl_step_scatter_params;
typedef kl_step_scatter_params kl_step_scatter_nd_params;

typedef struct kl_step_gather_nd_params {
  int32_t batch_dims;
} kl_step_gather_nd_params;

/* rnn: ONNX RNN, GRU, LSTM (kind in rnn.kind); in = X, W, R, B?, sequence_lens?, initial_h?,
 * initial_c?, P? where an absent input is NULL or a 1-D tensor of size 0; out = Y, Y_h, Y_c
 * (LSTM only). */
typedef struct kl_step_rnn_params {
  kl_rt_rnn_params rnn;
} kl_step_rnn_params;

typedef struct kl_step_resize_params {
  kl_rt_resize_params resize;
} kl_step_resize_params;

/* grid_sample: in = x, grid. */
typedef struct kl_step_grid_sample_params {
  int32_t mode;    /* kl_rt_resize_mode */
  int32_t padding; /* kl_rt_grid_padding */
  bool align_corners;
} kl_step_grid_sample_params;

#define KL_STEP_PARAMS_SIZE_control 0
#define KL_STEP_PARAMS_SIZE_unary sizeof(kl_step_unary_params)
#define KL_STEP_PARAMS_SIZE_cast 0
#define KL_STEP_PARAMS_SIZE_binary sizeof(kl_step_binary_params)
#define KL_STEP_PARAMS_SIZE_where 0
#define KL_STEP_PARAMS_SIZE_matmul sizeof(kl_step_matmul_params)
#define KL_STEP_PARAMS_SIZE_linear sizeof(kl_step_linear_params)
#define KL_STEP_PARAMS_SIZE_conv2d sizeof(kl_step_conv2d_params)
#define KL_STEP_PARAMS_SIZE_batch_norm sizeof(kl_step_batch_norm_params)
#define KL_STEP_PARAMS_SIZE_layer_norm sizeof(kl_step_layer_norm_params)
#define KL_STEP_PARAMS_SIZE_softmax sizeof(kl_step_softmax_params)
#define KL_STEP_PARAMS_SIZE_attention sizeof(kl_step_attention_params)
#define KL_STEP_PARAMS_SIZE_max_pool2d sizeof(kl_step_pool2d_params)
#define KL_STEP_PARAMS_SIZE_avg_pool2d sizeof(kl_step_pool2d_params)
#define KL_STEP_PARAMS_SIZE_adaptive_avg_pool2d 0
#define KL_STEP_PARAMS_SIZE_reduce sizeof(kl_step_reduce_params)
#define KL_STEP_PARAMS_SIZE_copy 0
#define KL_STEP_PARAMS_SIZE_permute sizeof(kl_step_permute_params)
#define KL_STEP_PARAMS_SIZE_expand 0
#define KL_STEP_PARAMS_SIZE_cat sizeof(kl_step_dim_params)
#define KL_STEP_PARAMS_SIZE_split sizeof(kl_step_dim_params)
#define KL_STEP_PARAMS_SIZE_slice sizeof(kl_step_slice_params)
#define KL_STEP_PARAMS_SIZE_constant_pad sizeof(kl_step_constant_pad_params)
#define KL_STEP_PARAMS_SIZE_gather sizeof(kl_step_gather_params)
#define KL_STEP_PARAMS_SIZE_cumsum sizeof(kl_step_cumsum_params)
#define KL_STEP_PARAMS_SIZE_scatter sizeof(kl_step_scatter_params)
#define KL_STEP_PARAMS_SIZE_scatter_nd sizeof(kl_step_scatter_params)
#define KL_STEP_PARAMS_SIZE_gather_nd sizeof(kl_step_gather_nd_params)
#define KL_STEP_PARAMS_SIZE_rnn sizeof(kl_step_rnn_params)
#define KL_STEP_PARAMS_SIZE_resize sizeof(kl_step_resize_params)
#define KL_STEP_PARAMS_SIZE_grid_sample sizeof(kl_step_grid_sample_params)

/* The step functions, declared by expanding the op table (a kernel named by several ops is
 * declared several times, which C allows). */
#define KL_OP(id, name, imin, imax, omin, omax, blocks, cat, attrs, shape, kernel)       \
  kl_status kl_step_##kernel(const kl_step_env *env, const void *params,                  \
                             kl_tensor *const *in, int n_in, kl_tensor *const *out, int n_out);
#include "../ir/ops.def"
#undef KL_OP

#endif
