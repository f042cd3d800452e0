/* Shape functions, one per distinct `shape` column of ir/ops.def (kl_shape_fn in ir/ops.h),
 * and the helpers they share. ir/ops.c builds the op table from these names.
 *
 * Dims are static, symbolic or unknown. A shape function never claims more than it knows: an
 * output dim is a symbol only where it is exactly an input dim, a number where the number is
 * forced (by arithmetic on static dims, or because the op can only succeed with that size),
 * and unknown otherwise. Symbol bounds from the graph are used to reject impossible sizes. */
#ifndef KL_IR_SHAPE_INTERNAL_H
#define KL_IR_SHAPE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "ir.h"

#define KL_SHAPE_FN(name)                                                                  \
  kl_status kl_shape_##name(const kl_ir_node *node, const kl_ir_type *in, int n_in,        \
                            kl_ir_type *out, int n_out)

/* ---- shape_nn.c: products, normalization, pooling, elementwise, reductions ------------- */
KL_SHAPE_FN(linear);
KL_SHAPE_FN(matmul);
KL_SHAPE_FN(conv2d);
KL_SHAPE_FN(batch_norm);
KL_SHAPE_FN(layer_norm);
KL_SHAPE_FN(softmax);
KL_SHAPE_FN(attention);
KL_SHAPE_FN(pool2d);
KL_SHAPE_FN(adaptive_pool2d);
KL_SHAPE_FN(unary);
KL_SHAPE_FN(unary_float);
KL_SHAPE_FN(binary);
KL_SHAPE_FN(compare);
KL_SHAPE_FN(binary_int); /* integer operands only: shifts (issue 4) */
KL_SHAPE_FN(bitwise);       /* integer or Bool operands: and, or, xor (issue 4) */
KL_SHAPE_FN(unary_bitwise); /* integer or Bool input: not (issue 4) */
KL_SHAPE_FN(where);
KL_SHAPE_FN(cast);
KL_SHAPE_FN(reduce);

/* ---- shape_tensor.c: structure and data movement --------------------------------------- */
KL_SHAPE_FN(declared);
KL_SHAPE_FN(constant);
KL_SHAPE_FN(if);
KL_SHAPE_FN(loop);
KL_SHAPE_FN(fusion_group);
KL_SHAPE_FN(reshape);
KL_SHAPE_FN(flatten);
KL_SHAPE_FN(squeeze);
KL_SHAPE_FN(unsqueeze);
KL_SHAPE_FN(transpose);
KL_SHAPE_FN(permute);
KL_SHAPE_FN(expand);
KL_SHAPE_FN(cat);
KL_SHAPE_FN(split);
KL_SHAPE_FN(slice);
KL_SHAPE_FN(constant_pad);
KL_SHAPE_FN(embedding);
KL_SHAPE_FN(gather);

/* ---- shape_rnn.c: onnx::RNN, onnx::GRU, onnx::LSTM (issue 4) --------------------------- */
KL_SHAPE_FN(rnn);

/* ---- shape_resize.c: onnx::Resize, onnx::GridSample (issue 4) --------------------------- */
KL_SHAPE_FN(resize);
KL_SHAPE_FN(grid_sample);

/* ---- helpers (shape_nn.c) --------------------------------------------------------------- */

/* A formatted type, "Float(N, 3)", for messages; a struct so it can be returned by value and
 * used inside one printf-style call. */
typedef struct kl_shape_str {
  char s[384];
} kl_shape_str;
kl_shape_str kl_shape_fmt(const kl_ir_node *node, const kl_ir_type *t);
/* One dim: "7", "N" or "*". */
kl_shape_str kl_shape_fmt_dim(const kl_ir_node *node, kl_ir_dim d);

/* INVALID_ARGUMENT "<op name>: <message>". */
kl_status kl_shape_error(const kl_ir_node *node, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The same with another code (KL_ERR_LIMIT for ranks past KL_MAX_RANK, KL_ERR_UNSUPPORTED). */
kl_status kl_shape_error_code(const kl_ir_node *node, kl_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks the counts the function relies on (max -1: unbounded) and that every input rank is
 * within 0..KL_MAX_RANK, so the rest of the function may index freely. */
kl_status kl_shape_check_arity(const kl_ir_node *node, const kl_ir_type *in, int n_in,
                               int min_in, int max_in, int n_out, int min_out, int max_out);

/* Error unless t's dtype is a float type; what names the input ("input", "weight"). */
kl_status kl_shape_require_float(const kl_ir_node *node, const kl_ir_type *t, const char *what);
/* Error unless t's dtype is Int or Long. */
kl_status kl_shape_require_index(const kl_ir_node *node, const kl_ir_type *t, const char *what);
/* Error unless a and b have the same dtype (no implicit promotion). */
kl_status kl_shape_require_same_dtype(const kl_ir_node *node, const kl_ir_type *a,
                                      const char *a_what, const kl_ir_type *b,
                                      const char *b_what);

/* Whether dim d can have size `size` at run time (symbols: within their bounds). */
bool kl_shape_dim_may_be(const kl_ir_node *node, kl_ir_dim d, int64_t size);
/* Whether dims a and b can be equal at run time. */
bool kl_shape_dims_may_equal(const kl_ir_node *node, kl_ir_dim a, kl_ir_dim b);
/* The dim two dims known to be equal at run time share: equal -> a; a number beats a symbol
 * or unknown; a symbol beats unknown; two different symbols -> unknown. */
kl_ir_dim kl_shape_dim_meet(kl_ir_dim a, kl_ir_dim b);
/* Broadcasts one pair of dims (numpy rules). Equal dims keep; static 1 gives the other side;
 * a static size s != 1 against a symbol or unknown gives s (the only size the op can succeed
 * with); two different symbols, or a symbol and unknown, give unknown. Returns false when the
 * dims cannot broadcast (static a != b, neither 1; or a symbol whose bounds exclude both). */
bool kl_shape_broadcast_dim(const kl_ir_node *node, kl_ir_dim a, kl_ir_dim b, kl_ir_dim *out);
/* Broadcasts the shapes of a and b (right-aligned) into out's rank and dims; out's dtype is
 * left alone. The error names both inputs. */
kl_status kl_shape_broadcast(const kl_ir_node *node, const kl_ir_type *a, const char *a_what,
                             const kl_ir_type *b, const char *b_what, kl_ir_type *out);

/* ---- shape_index.c: prod uses reduce; cumsum, scatter, ScatterND, GatherND (issue 4) ---- */
KL_SHAPE_FN(cumsum);
KL_SHAPE_FN(scatter);
KL_SHAPE_FN(scatter_nd);
KL_SHAPE_FN(gather_nd);

#endif
