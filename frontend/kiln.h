/* kiln.h: define-by-run models in C.
 *
 * Every op runs at once on real data and returns a real tensor you can print, the way
 * PyTorch runs eagerly. Run the same code between kl_trace_begin() and kl_trace_end() and
 * kiln also records it as a graph, which kl_graph_save() writes as a .kir file.
 *
 *   kl_generator gen;
 *   kl_generator_init(&gen, 0);
 *   kl_module *net = kl_module_create();
 *   kl_nn_linear fc1, fc2;
 *   kl_nn_linear_init(&fc1, net, "fc1", 10, 5, true, &gen);
 *   kl_nn_linear_init(&fc2, net, "fc2", 5, 2, true, &gen);
 *   kl_scope_begin();
 *   kl_tensor *x = kl_randn(&gen, KL_F32, KL_SHAPE(1, 10));
 *   kl_tensor *y = kl_nn_linear_forward(&fc2, kl_relu(kl_nn_linear_forward(&fc1, x)));
 *   kl_print(y);
 *   kl_scope_end();
 *
 * Lifetimes. Tensors are reference counted (kl_tensor_retain / kl_tensor_release). Every
 * tensor an op or a creation function returns belongs to the innermost open scope
 * (kl_scope_begin / kl_scope_end), which releases it when it ends; kl_keep() takes one out of
 * the scope and hands its reference to the caller. With no scope open, the caller owns the
 * returned reference and releases it.
 *
 * Errors. An op given bad shapes or dtypes returns NULL and reports the error, naming the op
 * and the shapes, to the error handler (by default: printed to stderr). An op given a NULL
 * input returns NULL without a second report, so a chain of calls fails once. kl_last_error()
 * tells what went wrong in this thread.
 *
 * Threads. Scopes, errors and the active trace are per thread. */
#ifndef KL_FRONTEND_KILN_H
#define KL_FRONTEND_KILN_H

#include <stdbool.h>
#include <stdint.h>

#include "../ir/ir.h"
#include "../runtime/dtype.h"
#include "../runtime/status.h"
#include "../runtime/tensor.h"

/* KL_SHAPE(1, 3, 32, 32) expands to the two arguments `rank, dims` that functions below take. */
#define KL_SHAPE(...)                                                        \
  (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),          \
      ((const int64_t[]){__VA_ARGS__})
/* KL_INTS(0, 2, 1) likewise expands to `count, values` for lists of dims. */
#define KL_INTS(...) KL_SHAPE(__VA_ARGS__)

/* ---- errors and warnings ------------------------------------------------------------- */

/* The status of the last failed call in this thread (owned by kiln; valid until the next
 * failure or kl_clear_error), or NULL. */
kl_status kl_last_error(void);
void kl_clear_error(void);
/* Receives every error when it happens. NULL restores the default (print to stderr). */
typedef void (*kl_error_fn)(void *ctx, kl_status error);
void kl_set_error_handler(kl_error_fn fn, void *ctx);
/* Receives every warning (trace warnings) with the caller's source location. NULL restores
 * the default: "kiln: warning: FILE:LINE: MESSAGE" on stderr. */
typedef void (*kl_warning_fn)(void *ctx, const char *file, int line, const char *message);
void kl_set_warning_handler(kl_warning_fn fn, void *ctx);

/* ---- scopes -------------------------------------------------------------------------- */

void kl_scope_begin(void);
/* Releases every tensor the scope still holds. Unbalanced calls are reported as errors. */
void kl_scope_end(void);
/* Takes t out of the innermost scope: the caller now owns that reference. Returns t. With no
 * scope open t is returned as it is (the caller owns it already); a tensor that is not in the
 * innermost scope is retained, giving the caller a reference of its own. */
kl_tensor *kl_keep(kl_tensor *t);

/* ---- creating tensors ---------------------------------------------------------------- */

/* A seeded random generator (xoshiro256**); the same seed gives the same numbers everywhere. */
typedef struct kl_generator {
  uint64_t s[4];
} kl_generator;
void kl_generator_init(kl_generator *gen, uint64_t seed);
double kl_generator_uniform(kl_generator *gen); /* [0, 1) */
double kl_generator_normal(kl_generator *gen);  /* mean 0, std 1 */

kl_tensor *kl_from_buffer(kl_dtype dtype, int rank, const int64_t *shape, const void *data);
/* Borrows data: it must outlive the tensor and every tensor traced from it. */
kl_tensor *kl_from_buffer_borrowed(kl_dtype dtype, int rank, const int64_t *shape, void *data);
kl_tensor *kl_zeros(kl_dtype dtype, int rank, const int64_t *shape);
kl_tensor *kl_ones(kl_dtype dtype, int rank, const int64_t *shape);
kl_tensor *kl_full(kl_dtype dtype, int rank, const int64_t *shape, double value);
kl_tensor *kl_scalar(kl_dtype dtype, double value); /* rank 0 */
/* start, start + step, ... below end (above end for a negative step). */
kl_tensor *kl_arange(kl_dtype dtype, double start, double end, double step);
kl_tensor *kl_rand(kl_generator *gen, kl_dtype dtype, int rank, const int64_t *shape);  /* U[0,1) */
kl_tensor *kl_randn(kl_generator *gen, kl_dtype dtype, int rank, const int64_t *shape); /* N(0,1) */

/* ---- reading tensors ----------------------------------------------------------------- */

/* Prints t the way PyTorch does: values (summarized with ... when large), then shape and dtype:
 *   tensor([[ 0.1234, -1.5000]], shape=(1, 2), dtype=Float)
 * Reading values during a trace warns (see kl_item). NULL prints "tensor(NULL)". */
#define kl_print(t) kl_print_at((t), __FILE__, __LINE__)
void kl_print_at(const kl_tensor *t, const char *file, int line);
/* The single value of a one-element tensor. During a trace this warns with the caller's file
 * and line: a branch on the value is baked into the trace (torch.jit.trace's TracerWarning). */
#define kl_item(t) kl_item_at((t), __FILE__, __LINE__)
double kl_item_at(const kl_tensor *t, const char *file, int line);
/* Pointer to t's data, with the same warning during a trace. */
#define kl_data(t) kl_data_at((t), __FILE__, __LINE__)
void *kl_data_at(const kl_tensor *t, const char *file, int line);

/* ---- ops: one function per row of ir/ops.def ---------------------------------------- */
/* Attributes follow ir/op_params.h; dims may be negative (counted from the end). */

kl_tensor *kl_linear(kl_tensor *x, kl_tensor *weight, kl_tensor *bias /* may be NULL */);
kl_tensor *kl_matmul(kl_tensor *a, kl_tensor *b);

/* Zero-initialized options mean PyTorch's defaults (stride 1, no padding, dilation 1, groups 1). */
typedef struct kl_conv2d_opts {
  int64_t stride[2];
  int64_t padding[2];
  int64_t dilation[2];
  int64_t groups;
} kl_conv2d_opts;
kl_tensor *kl_conv2d(kl_tensor *x, kl_tensor *weight, kl_tensor *bias,
                     const kl_conv2d_opts *opts /* may be NULL */);

kl_tensor *kl_batch_norm(kl_tensor *x, kl_tensor *weight, kl_tensor *bias, kl_tensor *running_mean,
                         kl_tensor *running_var, double eps);
/* Normalizes over the last n_dims dims (normalized_shape = those dims of x). */
kl_tensor *kl_layer_norm(kl_tensor *x, int n_dims, kl_tensor *weight, kl_tensor *bias, double eps);
kl_tensor *kl_softmax(kl_tensor *x, int64_t dim);
kl_tensor *kl_log_softmax(kl_tensor *x, int64_t dim);
/* softmax(q (..., L, E) @ k (..., S, E)^T * scale + mask) @ v (..., S, Ev) -> (..., L, Ev).
 * mask (may be NULL) broadcasts to (..., L, S): q's dtype is added, Bool keeps where true.
 * scale <= 0 means the default 1/sqrt(E); is_causal drops keys after each query. */
kl_tensor *kl_scaled_dot_product_attention(kl_tensor *q, kl_tensor *k, kl_tensor *v,
                                           kl_tensor *mask, double scale, bool is_causal);

/* Zero stride means stride = kernel size. */
typedef struct kl_pool2d_opts {
  int64_t kernel_size[2];
  int64_t stride[2];
  int64_t padding[2];
  int64_t dilation[2]; /* max pooling only; zero means 1 */
  bool ceil_mode;
  bool exclude_pad; /* avg pooling: PyTorch's count_include_pad=False */
} kl_pool2d_opts;
kl_tensor *kl_max_pool2d(kl_tensor *x, const kl_pool2d_opts *opts);
kl_tensor *kl_avg_pool2d(kl_tensor *x, const kl_pool2d_opts *opts);
kl_tensor *kl_adaptive_avg_pool2d(kl_tensor *x, int64_t out_h, int64_t out_w);

kl_tensor *kl_relu(kl_tensor *x);
kl_tensor *kl_relu6(kl_tensor *x);
kl_tensor *kl_hardtanh(kl_tensor *x, double min_val, double max_val);
kl_tensor *kl_clamp(kl_tensor *x, double min, double max); /* +-INFINITY: unbounded */
kl_tensor *kl_leaky_relu(kl_tensor *x, double negative_slope);
kl_tensor *kl_sigmoid(kl_tensor *x);
kl_tensor *kl_hardsigmoid(kl_tensor *x);
kl_tensor *kl_hardswish(kl_tensor *x);
kl_tensor *kl_tanh(kl_tensor *x);
kl_tensor *kl_gelu(kl_tensor *x, bool tanh_approximation);
kl_tensor *kl_silu(kl_tensor *x);
kl_tensor *kl_sqrt(kl_tensor *x);
kl_tensor *kl_rsqrt(kl_tensor *x);
kl_tensor *kl_reciprocal(kl_tensor *x);
kl_tensor *kl_exp(kl_tensor *x);
kl_tensor *kl_log(kl_tensor *x);
kl_tensor *kl_erf(kl_tensor *x);
kl_tensor *kl_neg(kl_tensor *x);
kl_tensor *kl_abs(kl_tensor *x);
kl_tensor *kl_dropout(kl_tensor *x, double p); /* inference: the identity */
kl_tensor *kl_to(kl_tensor *x, kl_dtype dtype);

kl_tensor *kl_add(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_sub(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_mul(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_div(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_pow(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_maximum(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_minimum(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_eq(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_ne(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_lt(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_le(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_gt(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_ge(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_where(kl_tensor *cond, kl_tensor *a, kl_tensor *b);

kl_tensor *kl_reshape(kl_tensor *x, int rank, const int64_t *shape); /* one dim may be -1 */
kl_tensor *kl_flatten(kl_tensor *x, int64_t start_dim, int64_t end_dim);
kl_tensor *kl_squeeze(kl_tensor *x, int n_dims, const int64_t *dims); /* n_dims 0: all size-1 dims */
kl_tensor *kl_unsqueeze(kl_tensor *x, int64_t dim);
kl_tensor *kl_transpose(kl_tensor *x, int64_t dim0, int64_t dim1);
kl_tensor *kl_permute(kl_tensor *x, int n_dims, const int64_t *dims);
kl_tensor *kl_expand(kl_tensor *x, int rank, const int64_t *sizes); /* -1 keeps a dim */
kl_tensor *kl_cat(int n, kl_tensor *const *xs, int64_t dim);
/* Splits along dim into n pieces of the given sizes, written to out_pieces; false on error. */
bool kl_split(kl_tensor *x, int n, const int64_t *sizes, int64_t dim, kl_tensor **out_pieces);
kl_tensor *kl_slice(kl_tensor *x, int64_t dim, int64_t start, int64_t end, int64_t step);
/* pad: (before, after) pairs starting from the LAST dim, as torch.nn.functional.pad. */
kl_tensor *kl_constant_pad(kl_tensor *x, int n_pad, const int64_t *pad, double value);
kl_tensor *kl_embedding(kl_tensor *weight, kl_tensor *indices);
kl_tensor *kl_index_select(kl_tensor *x, int64_t dim, kl_tensor *index);
kl_tensor *kl_gather(kl_tensor *x, kl_tensor *indices, int64_t axis); /* ONNX Gather */

/* n_dims 0: reduce over every dim. */
kl_tensor *kl_sum(kl_tensor *x, int n_dims, const int64_t *dims, bool keepdim);
kl_tensor *kl_mean(kl_tensor *x, int n_dims, const int64_t *dims, bool keepdim);
kl_tensor *kl_amax(kl_tensor *x, int n_dims, const int64_t *dims, bool keepdim);
kl_tensor *kl_amin(kl_tensor *x, int n_dims, const int64_t *dims, bool keepdim);

/* ---- reductions and indexing (issue 4) ---- */
kl_tensor *kl_prod(kl_tensor *x, int n_dims, const int64_t *dims, bool keepdim);
/* Cumulative sum along dim; exclusive and reverse as ONNX CumSum. */
kl_tensor *kl_cumsum(kl_tensor *x, int64_t dim, bool exclusive, bool reverse);
/* torch.scatter: data with src[i..] written (reduce NULL or "none") or combined ("add", "mul",
 * "max", "min") at index[i..] along dim (ONNX ScatterElements). */
kl_tensor *kl_scatter(kl_tensor *data, int64_t dim, kl_tensor *index, kl_tensor *src,
                      const char *reduce);
/* ONNX ScatterND and GatherND (reduction as kl_scatter's reduce). */
kl_tensor *kl_scatter_nd(kl_tensor *data, kl_tensor *indices, kl_tensor *updates,
                         const char *reduction);
kl_tensor *kl_gather_nd(kl_tensor *data, kl_tensor *indices, int64_t batch_dims);

/* ---- elementwise math (issue 4) ---- */
/* Floats only, except kl_sign (any non-Bool dtype). kl_round rounds half to even. */
kl_tensor *kl_sin(kl_tensor *x);
kl_tensor *kl_cos(kl_tensor *x);
kl_tensor *kl_tan(kl_tensor *x);
kl_tensor *kl_asin(kl_tensor *x);
kl_tensor *kl_acos(kl_tensor *x);
kl_tensor *kl_atan(kl_tensor *x);
kl_tensor *kl_sinh(kl_tensor *x);
kl_tensor *kl_cosh(kl_tensor *x);
kl_tensor *kl_asinh(kl_tensor *x);
kl_tensor *kl_acosh(kl_tensor *x);
kl_tensor *kl_atanh(kl_tensor *x);
kl_tensor *kl_floor(kl_tensor *x);
kl_tensor *kl_ceil(kl_tensor *x);
kl_tensor *kl_round(kl_tensor *x);
kl_tensor *kl_sign(kl_tensor *x);
/* a mod b with the divisor's sign (Python %, torch.remainder) or the dividend's (C fmod);
 * integer division by zero is an error. */
kl_tensor *kl_remainder(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_fmod(kl_tensor *a, kl_tensor *b);
/* Integer tensors only; shifting by a negative amount or by the dtype's width or more gives 0
 * (-1 for a negative a shifted right). */
kl_tensor *kl_bitwise_left_shift(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_bitwise_right_shift(kl_tensor *a, kl_tensor *b);

/* ---- bitwise (issue 4) ---- */
/* Integer (two's complement bits) or Bool (logical) tensors; a and b share a dtype and
 * broadcast. */
kl_tensor *kl_bitwise_and(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_bitwise_or(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_bitwise_xor(kl_tensor *a, kl_tensor *b);
kl_tensor *kl_bitwise_not(kl_tensor *x);

/* ---- resize and grid sample (issue 4) ---- */
/* ONNX Resize of a floating-point x to sizes (one per dim, n_sizes = rank). mode "nearest",
 * "linear" or "cubic" (NULL: nearest); coord one of ONNX's coordinate_transformation_mode
 * names (NULL: "half_pixel"). Other attributes take ONNX's defaults. */
kl_tensor *kl_resize(kl_tensor *x, int n_sizes, const int64_t *sizes, const char *mode,
                     const char *coord);
/* ONNX GridSample / torch grid_sample: x (N, C, D1..Dk), grid (N, O1..Ok, k) in [-1, 1].
 * mode "nearest", "linear" or "cubic" (NULL: linear); padding_mode "zeros", "border" or
 * "reflection" (NULL: zeros). */
kl_tensor *kl_grid_sample(kl_tensor *x, kl_tensor *grid, const char *mode,
                          const char *padding_mode, bool align_corners);

/* ---- recurrent (issue 4, eager_rnn.c) ---- */
/* ONNX RNN, GRU and LSTM (ir/op_params.h has the rules). Zero or NULL fields take ONNX's
 * defaults: direction "forward", the op's activations, no clip, sequence-major layout. */
typedef struct kl_rnn_opts {
  int64_t hidden_size;           /* required, > 0 */
  const char *direction;         /* "forward", "reverse" or "bidirectional" */
  int n_activations;             /* names such as "Tanh", "Sigmoid", "LeakyRelu" */
  const char *const *activations;
  int n_alpha, n_beta;           /* how they are read: ir/op_params.h */
  const double *activation_alpha, *activation_beta;
  double clip;                   /* > 0: gate inputs clamped to [-clip, clip] */
  bool batch_first;              /* layout=1: X (batch, seq, in), Y (batch, seq, dirs, H) */
  bool linear_before_reset;      /* GRU only */
  bool input_forget;             /* LSTM only */
} kl_rnn_opts;
/* x (seq, batch, in), w (dirs, G*H, in), r (dirs, G*H, H) with G = 1 (RNN), 3 (GRU), 4 (LSTM);
 * b (dirs, 2*G*H), seq_lens (batch) Int, h0 and c0 (dirs, batch, H), p (dirs, 3*H) may be
 * NULL. Writes y (seq, dirs, batch, H), the last hidden state out_h (dirs, batch, H) and, for
 * LSTM, the last cell state out_c; any out_ pointer may be NULL. false on error (reported). */
bool kl_rnn(kl_tensor *x, kl_tensor *w, kl_tensor *r, kl_tensor *b, kl_tensor *seq_lens,
            kl_tensor *h0, const kl_rnn_opts *opts, kl_tensor **out_y, kl_tensor **out_h);
bool kl_gru(kl_tensor *x, kl_tensor *w, kl_tensor *r, kl_tensor *b, kl_tensor *seq_lens,
            kl_tensor *h0, const kl_rnn_opts *opts, kl_tensor **out_y, kl_tensor **out_h);
bool kl_lstm(kl_tensor *x, kl_tensor *w, kl_tensor *r, kl_tensor *b, kl_tensor *seq_lens,
             kl_tensor *h0, kl_tensor *c0, kl_tensor *p, const kl_rnn_opts *opts,
             kl_tensor **out_y, kl_tensor **out_h, kl_tensor **out_c);

/* ---- modules and parameters ---------------------------------------------------------- */

/* A module tree owns named parameters: a child "layer1" of a child "0" names its parameter
 * "weight" as "layer1.0.weight". Parameters are tensors the module holds a reference to; when
 * one is used in a traced op it becomes a prim::Param node with that name and value. */
typedef struct kl_module kl_module;
kl_module *kl_module_create(void);                          /* a root with an empty name */
kl_module *kl_module_child(kl_module *parent, const char *name); /* owned by the root */
void kl_module_destroy(kl_module *root);
/* Registers value under the module's prefix; returns value (borrowed: the module owns it). */
kl_tensor *kl_module_param(kl_module *m, const char *name, kl_tensor *value);
/* The full dotted name of a registered parameter tensor, or NULL. */
const char *kl_module_param_name(const kl_module *root, const kl_tensor *t);
int kl_module_param_count(const kl_module *root);
/* Parameter i in registration order: its full name and tensor. */
const char *kl_module_param_at(const kl_module *root, int i, kl_tensor **out_tensor);
/* Copies values by full name into the registered parameters: from a .kir file's weights,
 * or from DIR/<full name>.npy. Every parameter must be found with its dtype and shape, else
 * an error naming it; the parameters keep their tensors (values are copied in place). */
kl_status kl_module_load_kir(kl_module *root, const char *path);
kl_status kl_module_load_npy_dir(kl_module *root, const char *dir);

/* Layers with PyTorch's default initialization drawn from gen. */
typedef struct kl_nn_linear {
  kl_tensor *weight; /* (out, in): U(-1/sqrt(in), 1/sqrt(in)) */
  kl_tensor *bias;   /* (out) or NULL: same bound */
} kl_nn_linear;
bool kl_nn_linear_init(kl_nn_linear *layer, kl_module *parent, const char *name, int64_t in_features,
                       int64_t out_features, bool bias, kl_generator *gen);
kl_tensor *kl_nn_linear_forward(const kl_nn_linear *layer, kl_tensor *x);

typedef struct kl_nn_conv2d {
  kl_tensor *weight; /* (out, in/groups, kh, kw): U(-b, b), b = 1/sqrt(in/groups*kh*kw) */
  kl_tensor *bias;   /* (out) or NULL */
  kl_conv2d_opts opts;
} kl_nn_conv2d;
bool kl_nn_conv2d_init(kl_nn_conv2d *layer, kl_module *parent, const char *name, int64_t in_channels,
                       int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                       const kl_conv2d_opts *opts, bool bias, kl_generator *gen);
kl_tensor *kl_nn_conv2d_forward(const kl_nn_conv2d *layer, kl_tensor *x);

typedef struct kl_nn_batch_norm2d {
  kl_tensor *weight, *bias, *running_mean, *running_var; /* ones, zeros, zeros, ones */
  double eps;                                            /* 1e-5 */
} kl_nn_batch_norm2d;
bool kl_nn_batch_norm2d_init(kl_nn_batch_norm2d *layer, kl_module *parent, const char *name,
                             int64_t channels);
kl_tensor *kl_nn_batch_norm2d_forward(const kl_nn_batch_norm2d *layer, kl_tensor *x);

typedef struct kl_nn_layer_norm {
  kl_tensor *weight, *bias; /* ones, zeros over the normalized shape */
  int n_dims;
  double eps; /* 1e-5 */
} kl_nn_layer_norm;
bool kl_nn_layer_norm_init(kl_nn_layer_norm *layer, kl_module *parent, const char *name, int n_dims,
                           const int64_t *normalized_shape);
kl_tensor *kl_nn_layer_norm_forward(const kl_nn_layer_norm *layer, kl_tensor *x);

typedef struct kl_nn_embedding {
  kl_tensor *weight; /* (num, dim): N(0, 1) */
} kl_nn_embedding;
bool kl_nn_embedding_init(kl_nn_embedding *layer, kl_module *parent, const char *name,
                          int64_t num_embeddings, int64_t embedding_dim, kl_generator *gen);
kl_tensor *kl_nn_embedding_forward(const kl_nn_embedding *layer, kl_tensor *indices);

/* ---- tracing ------------------------------------------------------------------------- */

/* Starts recording in this thread. inputs become the graph's inputs, named by input_names
 * (NULL: "x", "x1", ...); parameters of params (may be NULL) become prim::Param nodes when
 * used; any other tensor created before or during the trace and used by an op becomes a
 * prim::Constant. Every op called until kl_trace_end is recorded with its dtypes and shapes. */
kl_status kl_trace_begin(kl_module *params, int n_inputs, kl_tensor *const *inputs,
                         const char *const *input_names);
/* Stops recording; outputs become the graph's outputs. The caller owns *out_graph. */
kl_status kl_trace_end(int n_outputs, kl_tensor *const *outputs, kl_ir_graph **out_graph);
/* Abandons a trace (e.g. after an error). */
void kl_trace_abort(void);
bool kl_tracing(void);
/* Writes g as a .kir file (weights included). */
kl_status kl_graph_save(const kl_ir_graph *g, const char *path);

/* A program to trace: computes outputs from inputs with eager ops. It returns false on error.
 * Output references belong to the scope the function runs in (kl_trace_fn_run opens one). */
typedef bool (*kl_forward_fn)(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs);

/* Traces fn once on inputs: begin, fn, end. */
kl_status kl_trace_fn(kl_forward_fn fn, void *ctx, kl_module *params, int n_inputs,
                      kl_tensor *const *inputs, int n_outputs, kl_ir_graph **out_graph);
/* torch.jit.trace's check_trace: runs fn again, traced, on other inputs and compares both the
 * recorded graph (ops, attributes, constants) with g and fn's eager outputs with g run by the
 * interpreter (rtol 1e-5, atol 1e-6). Returns an error describing the first difference: the
 * node where the graphs diverge, or the output and its largest error. */
kl_status kl_trace_check(const kl_ir_graph *g, kl_forward_fn fn, void *ctx, kl_module *params,
                         int n_inputs, kl_tensor *const *other_inputs, int n_outputs);

#endif
