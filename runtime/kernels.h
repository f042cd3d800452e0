/* Reference kernels: one function per op family, reading like the math.
 *
 * Contract for every kernel: inputs are dense C-ordered tensors; outputs are allocated by the
 * caller with the right dtype and shape (the IR's shape functions compute them) and the kernel
 * only fills them. A kernel checks what it relies on (dtypes, ranks, matching sizes) and returns
 * a status rather than reading out of bounds; data-dependent errors (an index out of range, an
 * integer division by zero) are statuses too. Half and bfloat16 compute in float; float64 in
 * double. These kernels are the ground truth the compiled backends are tested against. */
#ifndef KL_RUNTIME_KERNELS_H
#define KL_RUNTIME_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "gemm.h"
#include "status.h"
#include "tensor.h"

/* ---- elementwise, one input: y = f(x), same shape ------------------------------------ */
typedef enum kl_rt_unary_op {
  KL_UNARY_RELU,
  KL_UNARY_CLAMP,      /* min(max(x, a), b): relu6, hardtanh, clamp */
  KL_UNARY_LEAKY_RELU, /* x >= 0 ? x : a * x */
  KL_UNARY_SIGMOID,
  KL_UNARY_HARDSIGMOID, /* clamp(x / 6 + 1/2, 0, 1) */
  KL_UNARY_HARDSWISH,   /* x * hardsigmoid(x) */
  KL_UNARY_TANH,
  KL_UNARY_GELU,      /* x/2 * (1 + erf(x / sqrt 2)) */
  KL_UNARY_GELU_TANH, /* x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) */
  KL_UNARY_SILU,
  KL_UNARY_SQRT,
  KL_UNARY_RSQRT,
  KL_UNARY_RECIPROCAL,
  KL_UNARY_EXP,
  KL_UNARY_LOG,
  KL_UNARY_ERF,
  KL_UNARY_NEG,
  KL_UNARY_ABS,
  KL_UNARY_IDENTITY,
  /* ---- elementwise math (issue 4) ---- */
  KL_UNARY_SIN,
  KL_UNARY_COS,
  KL_UNARY_TAN,
  KL_UNARY_ASIN,
  KL_UNARY_ACOS,
  KL_UNARY_ATAN,
  KL_UNARY_SINH,
  KL_UNARY_COSH,
  KL_UNARY_ASINH,
  KL_UNARY_ACOSH,
  KL_UNARY_ATANH,
  KL_UNARY_FLOOR,
  KL_UNARY_CEIL,
  KL_UNARY_ROUND, /* half to even */
  KL_UNARY_SIGN,  /* -1, 0 or 1 (nan stays nan) */
  /* ---- bitwise (issue 4) ---- */
  KL_UNARY_BITWISE_NOT, /* integers and Bool only: ~x (Bool: logical not) */
  KL_UNARY_OP_COUNT /* keep last: not an op */
} kl_rt_unary_op;

/* a, b: the op's parameters (CLAMP: min, max, +-INFINITY when unbounded; LEAKY_RELU: slope).
 * Integer dtypes are accepted by RELU, CLAMP, NEG, ABS, SIGN and IDENTITY; the rest need
 * floats. BITWISE_NOT takes integers and Bool only. */
kl_status kl_rt_unary(kl_rt_unary_op op, double a, double b, const kl_tensor *x, kl_tensor *y);

/* y = x converted to y->dtype (float to int truncates toward zero; to bool: x != 0). */
kl_status kl_rt_cast(const kl_tensor *x, kl_tensor *y);

/* ---- elementwise, two inputs, numpy broadcasting ------------------------------------- */
typedef enum kl_rt_binary_op {
  KL_BINARY_ADD,
  KL_BINARY_SUB,
  KL_BINARY_MUL,
  KL_BINARY_DIV, /* integers: truncates toward zero; division by zero is an error */
  KL_BINARY_POW,
  KL_BINARY_MAX,
  KL_BINARY_MIN,
  KL_BINARY_EQ, /* comparisons write a Bool y */
  KL_BINARY_NE,
  KL_BINARY_LT,
  KL_BINARY_LE,
  KL_BINARY_GT,
  KL_BINARY_GE,
  /* ---- elementwise math (issue 4) ---- */
  KL_BINARY_REMAINDER, /* a - floor(a / b) * b: the divisor's sign (Python %) */
  KL_BINARY_FMOD,      /* C fmod: the dividend's sign; integers: division by zero is an error */
  KL_BINARY_SHL,       /* integers only: a << b; b < 0 or >= the dtype's bits gives 0 */
  KL_BINARY_SHR,       /* integers only: a >> b, arithmetic for signed dtypes; b < 0 or >= the
                        * dtype's bits gives 0 (or -1 for a negative a) */
  /* ---- bitwise (issue 4) ---- */
  KL_BINARY_AND, /* integers and Bool only: a & b */
  KL_BINARY_OR,  /* integers and Bool only: a | b */
  KL_BINARY_XOR, /* integers and Bool only: a ^ b */
  KL_BINARY_OP_COUNT   /* keep last: not an op */
} kl_rt_binary_op;

/* a and b share a dtype; y has the broadcast shape (and Bool dtype for comparisons). */
kl_status kl_rt_binary(kl_rt_binary_op op, const kl_tensor *a, const kl_tensor *b, kl_tensor *y);
/* y = cond ? a : b, all three broadcast to y's shape; cond is Bool. */
kl_status kl_rt_where(const kl_tensor *cond, const kl_tensor *a, const kl_tensor *b, kl_tensor *y);

/* ---- matrix products and convolution ------------------------------------------------- */
/* numpy matmul: 1-D operands are promoted and the added dim removed; batch dims broadcast. */
kl_status kl_rt_matmul(const kl_tensor *a, const kl_tensor *b, kl_tensor *y);
/* y (..., out) = x (..., in) @ w (out, in)^T + bias (out); bias may be NULL. */
kl_status kl_rt_linear(const kl_tensor *x, const kl_tensor *w, const kl_tensor *bias,
                       kl_tensor *y);
/* f32 a (..., K) @ b (K, N) -> y (..., N) with b packed by kl_rt_matmul_pack_b: rows
 * [m_begin, m_end) and columns [n_begin, n_end) of y seen as (rows, N), rows = a's elements /
 * K (m_begin a multiple of KL_SGEMM_MR, n_begin of KL_SGEMM_NR). The bits of kl_rt_matmul. */
bool kl_rt_matmul_f32_part(const float *a, const float *b_packed, float *y, int64_t rows,
                           int64_t K, int64_t N, int64_t m_begin, int64_t m_end,
                           int64_t n_begin, int64_t n_end);
size_t kl_rt_matmul_packed_b_floats(int64_t K, int64_t N);
void kl_rt_matmul_pack_b(const float *b, int64_t K, int64_t N, float *packed);
/* From this many rows (x's elements / in) on, f32 linear is a GEMM; below, dot products. */
#define KL_RT_LINEAR_GEMM_ROWS 16
/* The GEMM form of f32 linear for rows [m_begin, m_end) and output features [n_begin, n_end)
 * of y (M, out) only (m_begin a multiple of KL_SGEMM_MR, n_begin of KL_SGEMM_NR; runtime/
 * gemm.h); the weights are w_packed (kl_rt_linear_pack, a compiler's) when not NULL, else w;
 * bias may be NULL. Any split gives the same bits. False when scratch memory cannot be had. */
bool kl_rt_linear_f32_part(const float *x, const float *w, const float *w_packed,
                           const float *bias, float *y, int64_t M, int64_t in, int64_t out,
                           int64_t m_begin, int64_t m_end, int64_t n_begin, int64_t n_end);
size_t kl_rt_linear_packed_floats(int64_t in, int64_t out);
void kl_rt_linear_pack(const float *w, int64_t in, int64_t out, float *packed);

typedef struct kl_rt_conv2d_params {
  int64_t stride[2];   /* h, w */
  int64_t pad[4];      /* top, left, bottom, right */
  int64_t dilation[2]; /* h, w */
  int64_t groups;
} kl_rt_conv2d_params;

/* y (N, Cout, Ho, Wo) = conv(x (N, Cin, H, W), w (Cout, Cin/groups, Kh, Kw)) + bias (Cout). */
kl_status kl_rt_conv2d(const kl_tensor *x, const kl_tensor *w, const kl_tensor *bias,
                       const kl_rt_conv2d_params *p, kl_tensor *y);

/* The sizes of a convolution, as kl_rt_conv2d_check finds them (Cg, Cog: channels per group). */
typedef struct kl_rt_conv2d_dims {
  int64_t N, Cin, H, W, Cout, Kh, Kw, Ho, Wo, groups, Cg, Cog;
} kl_rt_conv2d_dims;
/* Checks kl_rt_conv2d's operands (w's data is not read) and fills *out_dims. */
kl_status kl_rt_conv2d_check(const kl_tensor *x, const kl_tensor *w, const kl_tensor *bias,
                             const kl_rt_conv2d_params *p, const kl_tensor *y,
                             kl_rt_conv2d_dims *out_dims);
/* f32 weights (Cout, Cin/groups, Kh, Kw) packed ahead of time for kl_rt_conv2d_f32_part (a
 * compiler does it once): the floats it takes, and the packing. */
size_t kl_rt_conv2d_packed_floats(const int64_t *w_shape, int64_t groups);
void kl_rt_conv2d_pack(const float *w, const int64_t *w_shape, int64_t groups, float *out);
/* 3x3 stride-1 f32 convolutions by Winograd's F(2x2, 3x3) (runtime/kernels/conv_winograd.c),
 * for weights transformed ahead of time: whether a convolution of these shapes may go that
 * way (groups 1, dilation 1, at least 8 channels in and out, padding <= 2, enough tiles to
 * beat the GEMM convolution), the floats the
 * transformed weights take, and the transform (false when out of memory). */
bool kl_rt_conv2d_winograd_fits(const int64_t *x_shape, const int64_t *w_shape,
                                const kl_rt_conv2d_params *p);
size_t kl_rt_conv2d_winograd_floats(int64_t Cout, int64_t Cin);
bool kl_rt_conv2d_winograd_pack(const float *w, int64_t Cout, int64_t Cin, float *out);
/* How a Winograd convolution is cut into tasks: per image, n_tile_blocks blocks of at most
 * tile_block 2x2 output tiles (of tiles_h x tiles_w) times n_co_blocks blocks of co_block
 * output channels, chosen for threads. The tiles, in panels of KL_SGEMM_NR, are first cut into
 * n_ranges ranges of as equal a number of panels as can be (one per thread, so that a static
 * split of the tasks gives every thread the same work), each range into blocks_per_range
 * blocks (the last ones may be smaller or empty). */
typedef struct kl_rt_winograd_split {
  int64_t tiles_h, tiles_w, tile_block, n_tile_blocks, co_block, n_co_blocks;
  int64_t n_ranges, blocks_per_range;
} kl_rt_winograd_split;
void kl_rt_conv2d_winograd_split(const kl_rt_conv2d_dims *d, int threads,
                                 kl_rt_winograd_split *out);
/* One task: image n, tile block block, channel block co_block of checked operands; u_packed
 * from kl_rt_conv2d_winograd_pack; bias and epi (runtime/gemm.h, its residual indexed like y)
 * may be NULL. Any split gives the same bits. False when scratch memory cannot be had. */
bool kl_rt_conv2d_winograd_part(const kl_rt_conv2d_dims *d, const kl_rt_conv2d_params *p,
                                const kl_rt_winograd_split *sp, const float *x,
                                const float *u_packed, const float *bias, float *y, int64_t n,
                                int64_t block, int64_t co_block, const kl_sgemm_epilogue *epi);
/* True when kl_rt_conv2d computes an f32 convolution of these weights as a GEMM (all but the
 * depthwise and narrow grouped ones its direct kernel takes), so that packed weights serve it. */
bool kl_rt_conv2d_uses_gemm(const int64_t *w_shape, int64_t groups);
/* The f32 GEMM convolution of checked operands (d from kl_rt_conv2d_check) for image n, group
 * g, the output channels [m_begin, m_end) of the group and the output pixels [p_begin, p_end)
 * of Ho * Wo only; m_begin is a multiple of KL_SGEMM_MR and p_begin of KL_SGEMM_NR
 * (runtime/gemm.h). The weights are w_packed when not NULL, else w; the patches are col
 * (kl_rt_conv2d_pack_col) when not NULL, else packed as needed. Any split gives the same
 * bits. epi (NULL for none; its residual indexed like y) is applied to each output element.
 * Returns false when scratch memory cannot be had. */
bool kl_rt_conv2d_f32_part(const kl_rt_conv2d_dims *d, const kl_rt_conv2d_params *p,
                           const float *x, const float *w, const float *w_packed,
                           const float *col, const float *bias, float *y, int64_t n, int64_t g,
                           int64_t m_begin, int64_t m_end, int64_t p_begin, int64_t p_end,
                           const kl_sgemm_epilogue *epi);
/* The patch matrix (im2col, K = Cg * Kh * Kw rows by P = Ho * Wo columns) of image n, group g
 * of checked operands, packed the way the GEMM reads B (kl_sgemm_pack_b's layout, runtime/
 * gemm.h): kl_rt_conv2d_col_floats floats. kl_rt_conv2d_pack_col writes the panels [panel_begin,
 * panel_end) of KL_SGEMM_NR pixels (each panel's rows for every block of k), so tasks can
 * share the work; kl_rt_conv2d_f32_part given col reads it instead of packing its own panels,
 * with the same bits. When several tasks cover the same pixels (channel blocks), packing once
 * saves repeating it in each. kl_rt_conv2d_col_scratch is the calling thread's buffer for it
 * (NULL when out of memory), kept for its next call. */
size_t kl_rt_conv2d_col_floats(const kl_rt_conv2d_dims *d);
void kl_rt_conv2d_pack_col(const kl_rt_conv2d_dims *d, const kl_rt_conv2d_params *p,
                           const float *x, int64_t n, int64_t g, int64_t panel_begin,
                           int64_t panel_end, float *col);
float *kl_rt_conv2d_col_scratch(size_t floats);

/* ---- normalization ------------------------------------------------------------------- */
/* Inference batch norm over dim 1: y = (x - mean) / sqrt(var + eps) * weight + bias. */
kl_status kl_rt_batch_norm(const kl_tensor *x, const kl_tensor *weight, const kl_tensor *bias,
                           const kl_tensor *mean, const kl_tensor *var, double eps, kl_tensor *y);
/* Normalizes over the last n_norm_dims dims; weight and bias (that trailing shape) may be NULL. */
kl_status kl_rt_layer_norm(const kl_tensor *x, const kl_tensor *weight, const kl_tensor *bias,
                           int n_norm_dims, double eps, kl_tensor *y);
/* Softmax (or log-softmax) along dim (already normalized to 0..rank-1). */
kl_status kl_rt_softmax(const kl_tensor *x, int dim, bool log, kl_tensor *y);

/* ---- attention ----------------------------------------------------------------------- */
/* y (..., L, Ev) = softmax(q (..., L, E) @ k (..., S, E)^T * scale + mask) @ v (..., S, Ev).
 * The batch dims of q, k, v broadcast to y's. mask (may be NULL) broadcasts to (..., L, S): a
 * float mask (q's dtype) is added to the scores, a Bool mask keeps the scores where true and
 * drops the rest (PyTorch's convention). is_causal also drops key j > query i. A row with every
 * key dropped is nan, as softmax of all -inf is. */
kl_status kl_rt_attention(const kl_tensor *q, const kl_tensor *k, const kl_tensor *v,
                          const kl_tensor *mask, double scale, bool is_causal, kl_tensor *y);
/* The same for rows [row_begin, row_end) of y's (n_batch * L, Ev) stacked output rows only
 * (row r is query r % L of batch matrix r / L); the rest of y is left alone. Every row comes out
 * bit-identical to a whole call, so threads may split the rows (runtime/steps_parallel.c).
 * Checks everything kl_rt_attention checks, even for an empty range. */
kl_status kl_rt_attention_rows(const kl_tensor *q, const kl_tensor *k, const kl_tensor *v,
                               const kl_tensor *mask, double scale, bool is_causal, kl_tensor *y,
                               int64_t row_begin, int64_t row_end);

/* ---- pooling ------------------------------------------------------------------------- */
typedef struct kl_rt_pool2d_params {
  int64_t kernel[2];
  int64_t stride[2];
  int64_t pad[4]; /* top, left, bottom, right */
  int64_t dilation[2];
  bool count_include_pad; /* avg pool: divide by the full window, padding included */
} kl_rt_pool2d_params;

/* x (N, C, H, W) -> y (N, C, Ho, Wo); Ho and Wo come from y (ceil_mode is the shape's business).
 * Windows that start in the padding are clipped to the input; max ignores padding. */
kl_status kl_rt_max_pool2d(const kl_tensor *x, const kl_rt_pool2d_params *p, kl_tensor *y);
kl_status kl_rt_avg_pool2d(const kl_tensor *x, const kl_rt_pool2d_params *p, kl_tensor *y);
/* PyTorch adaptive average pooling to y's (Ho, Wo): bin i spans [floor(i*H/Ho), ceil((i+1)*H/Ho)). */
kl_status kl_rt_adaptive_avg_pool2d(const kl_tensor *x, kl_tensor *y);

/* ---- reductions ---------------------------------------------------------------------- */
typedef enum kl_rt_reduce_op {
  KL_REDUCE_SUM,
  KL_REDUCE_MEAN,
  KL_REDUCE_MAX,
  KL_REDUCE_MIN,
  KL_REDUCE_PROD, /* issue 4: aten::prod */
} kl_rt_reduce_op;

/* Reduces x over the dims where reduce_dim[d] is true; y holds the kept dims in order (with or
 * without size-1 placeholders: only y->numel matters). Sums accumulate in double. */
kl_status kl_rt_reduce(kl_rt_reduce_op op, const kl_tensor *x, const bool *reduce_dim,
                       kl_tensor *y);

/* ---- data movement ------------------------------------------------------------------- */
/* Copies x's elements in order into y (reshape, flatten, squeeze, unsqueeze, dropout). */
kl_status kl_rt_copy(const kl_tensor *x, kl_tensor *y);
/* y.shape[i] = x.shape[perm[i]]. */
kl_status kl_rt_permute(const kl_tensor *x, const int *perm, kl_tensor *y);
/* Broadcasts x (numpy rules, right-aligned) to y's shape. */
kl_status kl_rt_expand(const kl_tensor *x, kl_tensor *y);
/* Concatenates n tensors along dim. */
kl_status kl_rt_cat(const kl_tensor *const *xs, int n, int dim, kl_tensor *y);
/* Splits x along dim into n outputs whose sizes along dim come from their shapes. */
kl_status kl_rt_split(const kl_tensor *x, int dim, kl_tensor *const *ys, int n);
/* y = x[..., start : start + step * y.shape[dim] : step, ...] along dim; start is normalized
 * (0 <= start < x.shape[dim] unless y is empty); step may be negative, never 0. */
kl_status kl_rt_slice(const kl_tensor *x, int dim, int64_t start, int64_t step, kl_tensor *y);
/* pad: 2*rank entries, (before, after) per dim from dim 0; negative values crop. */
kl_status kl_rt_constant_pad(const kl_tensor *x, const int64_t *pad, double value, kl_tensor *y);
/* ONNX Gather: y = x.shape[:axis] + indices.shape + x.shape[axis+1:]; indices are Int or Long;
 * negative indices count from the end when allow_negative, else they are errors, as are
 * indices out of range (the message names the index and the bound). */
kl_status kl_rt_gather(const kl_tensor *x, const kl_tensor *indices, int axis, bool allow_negative,
                       kl_tensor *y);

/* ---- recurrent (issue 4): ONNX RNN, GRU, LSTM (runtime/kernels/rnn.c) ---------------- */
typedef enum kl_rt_rnn_kind { KL_RT_RNN, KL_RT_GRU, KL_RT_LSTM } kl_rt_rnn_kind;
typedef enum kl_rt_rnn_act {
  KL_RT_ACT_RELU, KL_RT_ACT_TANH, KL_RT_ACT_SIGMOID, KL_RT_ACT_AFFINE, KL_RT_ACT_LEAKY_RELU,
  KL_RT_ACT_THRESHOLDED_RELU, KL_RT_ACT_SCALED_TANH, KL_RT_ACT_HARD_SIGMOID, KL_RT_ACT_ELU,
  KL_RT_ACT_SOFTSIGN, KL_RT_ACT_SOFTPLUS
} kl_rt_rnn_act;
#define KL_RT_RNN_MAX_ACTS 6 /* 3 functions (LSTM's f, g, h) per direction, 2 directions */
typedef struct kl_rt_rnn_params {
  kl_rt_rnn_kind kind;
  int64_t hidden;      /* H */
  int num_directions;  /* 1 or 2 */
  bool reverse;        /* with num_directions 1: run from the last time step */
  bool layout_batch;   /* layout 1: X (batch, seq, in), Y (batch, seq, dirs, H), Y_h (batch, dirs, H) */
  bool has_clip;
  double clip;         /* gate pre-activations clamped to [-clip, clip] */
  bool linear_before_reset; /* GRU */
  bool input_forget;   /* LSTM: f = 1 - i */
  kl_rt_rnn_act act[KL_RT_RNN_MAX_ACTS]; /* per direction: f, g (GRU, LSTM), h (LSTM) */
  double alpha[KL_RT_RNN_MAX_ACTS], beta[KL_RT_RNN_MAX_ACTS];
} kl_rt_rnn_params;
/* One ONNX RNN/GRU/LSTM node (G gates: 1, 3, 4): X (seq, batch, in), W (dirs, G*H, in),
 * R (dirs, G*H, H), B (dirs, 2*G*H), seq_lens (batch) Int, h0 and c0 (dirs, batch, H),
 * P (dirs, 3*H); the batch-major layout swaps the first two dims of X, Y, h0, c0, Y_h, Y_c.
 * Optional inputs may be NULL. Y (seq, dirs, batch, H) is zero past a sequence's length;
 * Y_h and Y_c (LSTM only; NULL otherwise) hold the last state of each direction. */
kl_status kl_rt_rnn(const kl_rt_rnn_params *p, const kl_tensor *x, const kl_tensor *w,
                    const kl_tensor *r, const kl_tensor *b, const kl_tensor *seq_lens,
                    const kl_tensor *h0, const kl_tensor *c0, const kl_tensor *peep, kl_tensor *y,
                    kl_tensor *y_h, kl_tensor *y_c);

/* ---- indexing: cumsum, scatter, ScatterND, GatherND (issue 4, runtime/kernels/index.c) ---- */
/* Cumulative sum along axis; exclusive leaves out the element itself, reverse runs from the
 * end (ONNX CumSum). x and y have one dtype and shape. */
kl_status kl_rt_cumsum(const kl_tensor *x, int axis, bool exclusive, bool reverse, kl_tensor *y);
typedef enum kl_rt_scatter_reduce {
  KL_SCATTER_NONE,
  KL_SCATTER_ADD,
  KL_SCATTER_MUL,
  KL_SCATTER_MAX,
  KL_SCATTER_MIN,
} kl_rt_scatter_reduce;
/* y = data, then y[..., index[i..], ...] (op)= src[i..] along axis for every element of index
 * (aten::scatter, ONNX ScatterElements); index, data and src share a rank; negative indices
 * count from the end; out of range is an error. */
kl_status kl_rt_scatter(const kl_tensor *data, const kl_tensor *index, const kl_tensor *src,
                        int axis, kl_rt_scatter_reduce reduction, kl_tensor *y);
/* y = data, then y[indices[i, :]] (op)= updates[i, ...] (ONNX ScatterND). */
kl_status kl_rt_scatter_nd(const kl_tensor *data, const kl_tensor *indices,
                           const kl_tensor *updates, kl_rt_scatter_reduce reduction,
                           kl_tensor *y);
/* ONNX GatherND: y = indices.shape[:-1] + data.shape[batch_dims + indices.shape[-1]:]. */
kl_status kl_rt_gather_nd(const kl_tensor *data, const kl_tensor *indices, int batch_dims,
                          kl_tensor *y);


/* ---- resize and grid sample (issue 4): runtime/kernels/resize.c, grid_sample.c -------- */
typedef enum kl_rt_resize_mode { KL_RESIZE_NEAREST, KL_RESIZE_LINEAR, KL_RESIZE_CUBIC } kl_rt_resize_mode;
/* How output index o along a dim of input size I, output size O and scale s maps to an input
 * coordinate (ONNX Resize's coordinate_transformation_mode). */
typedef enum kl_rt_resize_coord {
  KL_RESIZE_HALF_PIXEL,           /* (o + 0.5) / s - 0.5 */
  KL_RESIZE_HALF_PIXEL_SYMMETRIC, /* half_pixel, centred when O != s * I */
  KL_RESIZE_PYTORCH_HALF_PIXEL,   /* half_pixel, but -0.5 when s * I == 1 */
  KL_RESIZE_ALIGN_CORNERS,        /* o * (I - 1) / (s * I - 1) */
  KL_RESIZE_ASYMMETRIC,           /* o / s */
  KL_RESIZE_TF_CROP_AND_RESIZE    /* within roi; outside [0, I - 1] gives extrapolation_value */
} kl_rt_resize_coord;
typedef enum kl_rt_resize_nearest {
  KL_NEAREST_ROUND_PREFER_FLOOR,
  KL_NEAREST_ROUND_PREFER_CEIL,
  KL_NEAREST_FLOOR,
  KL_NEAREST_CEIL
} kl_rt_resize_nearest;
typedef struct kl_rt_resize_params {
  kl_rt_resize_mode mode;
  kl_rt_resize_coord coord;
  kl_rt_resize_nearest nearest;
  double cubic_coeff_a;        /* -0.75 as ONNX, -0.5 as TensorFlow */
  bool exclude_outside;        /* taps outside the input get weight 0; the rest renormalized */
  bool antialias;              /* linear/cubic: widen the filter by 1/s when downscaling */
  double extrapolation_value;
  double scales[KL_MAX_RANK];  /* per dim, > 0 */
  double roi[2 * KL_MAX_RANK]; /* starts then ends, normalized; tf_crop_and_resize only */
} kl_rt_resize_params;
/* ONNX Resize, separably over every dim whose mapping is not the identity; y's shape gives
 * the output sizes. Computes in double. */
kl_status kl_rt_resize(const kl_tensor *x, const kl_rt_resize_params *p, kl_tensor *y);

typedef enum kl_rt_grid_padding {
  KL_GRID_PAD_ZEROS,
  KL_GRID_PAD_BORDER,
  KL_GRID_PAD_REFLECTION
} kl_rt_grid_padding;
/* ONNX GridSample (PyTorch grid_sample): x (N, C, D1..Dk), grid (N, O1..Om, k) holding
 * normalized coordinates in [-1, 1], last entry for the last dim -> y (N, C, O1..Om).
 * mode: nearest (round half to even), linear, cubic (a = -0.75). */
kl_status kl_rt_grid_sample(const kl_tensor *x, const kl_tensor *grid, kl_rt_resize_mode mode,
                            kl_rt_grid_padding padding, bool align_corners, kl_tensor *y);

#endif
