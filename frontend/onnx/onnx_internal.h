/* What the files of frontend/onnx/ share: the protobuf-c types generated from onnx.proto,
 * tensor conversion (onnx_tensor.c), the wire pre-check (onnx_limits.c), and the importer's
 * state and helpers that the per-op mappings (onnx_import_ops.c) call (onnx_import.c).
 * Grouped by the file that defines them. */
#ifndef KL_FRONTEND_ONNX_INTERNAL_H
#define KL_FRONTEND_ONNX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnx/onnx.pb-c.h"
#include "onnx.h"

/* ---- onnx_limits.c ------------------------------------------------------------------------ */

/* Walks the serialized message (data, size) of type desc without unpacking it: every tag, wire
 * type and length must be valid and inside the buffer, fields of message type are followed
 * (max_depth levels at most), and known fields must carry their declared wire type. name is
 * used in messages. protobuf-c 1.4 recurses without a limit, so this runs before unpacking. */
kl_status kl_onnx_check_wire(const uint8_t *data, size_t size,
                             const ProtobufCMessageDescriptor *desc, int max_depth,
                             const char *name);

/* ---- onnx_tensor.c ----------------------------------------------------------------------- */

/* The kiln dtype of an ONNX TensorProto.DataType. An ONNX type kiln lacks is
 * KL_ERR_UNSUPPORTED, a number ONNX does not define KL_ERR_FORMAT; messages name the type. */
kl_status kl_onnx_dtype_from_onnx(int32_t data_type, kl_dtype *out_dtype);
/* The ONNX TensorProto.DataType of a kiln dtype (always exists). */
int32_t kl_onnx_dtype_to_onnx(kl_dtype dtype);
/* ONNX's name of a data type ("FLOAT", "STRING"), or "?" for an unknown number. */
const char *kl_onnx_dtype_name(int32_t data_type);

/* Where tensor data may come from and how much of it is left to read. base_dir NULL refuses
 * external data; *budget (bytes) is decreased by each tensor read and may be NULL. */
typedef struct kl_onnx_tensor_source {
  const char *base_dir;
  size_t *budget;
} kl_onnx_tensor_source;

/* Converts tp into a new tensor: raw_data, the typed fields or external data, each checked
 * against the dims (element count, byte size, overflow). what names the tensor in messages. */
kl_status kl_onnx_tensor_from_proto(const Onnx__TensorProto *tp, const kl_onnx_tensor_source *src,
                                    const char *what, kl_tensor **out_tensor);
/* Fills *out (initialized by the caller with onnx__tensor_proto__init) with t as raw_data
 * (little-endian), dims and data_type; name may be NULL. Buffers are malloc'd: free them with
 * kl_onnx_tensor_proto_clear. */
void kl_onnx_tensor_to_proto(const kl_tensor *t, const char *name, Onnx__TensorProto *out);
void kl_onnx_tensor_proto_clear(Onnx__TensorProto *tp);

/* ---- onnx_import.c ------------------------------------------------------------------------ */

/* A scope maps ONNX value names to IR values; subgraphs chain to their parent's scope. */
typedef struct kl_onnx_scope kl_onnx_scope;

/* A graph input replaced by a constant at import (kl_onnx_import_file_bound). */
typedef struct kl_onnx_binding {
  const char *name;
  kl_tensor *value;
} kl_onnx_binding;

typedef struct kl_onnx_importer {
  kl_ir_graph *g;
  const char *name;     /* the model's path or name, for messages */
  const char *base_dir; /* external data; NULL refuses it */
  kl_onnx_import_options opts;
  int64_t opset;        /* of the default domain */
  const Onnx__ModelProto *model;
  size_t budget;        /* bytes of tensor data left */
  int depth;            /* of subgraphs being imported */
  int inline_depth;     /* of functions being inlined */
  const kl_onnx_binding *bindings; /* graph inputs imported as constants */
  int n_bindings;
  bool needs_run_time;  /* set when a mapping needed a constant or a static shape it lacked */
  /* A probe (kl_onnx_deferred_value_inputs): the deferred node whose mapping runs, and one
   * flag per input of it, set when the mapping reads that input as a value. NULL otherwise. */
  const kl_ir_node *probe_node;
  bool *probe_reads;
} kl_onnx_importer;

/* kl_onnx_import_file with the named graph inputs bound to constant values (checked against
 * their declared types): they become prim::Constant nodes, not graph inputs, so ops that need
 * constant inputs (Reshape's shape, ReduceSum's axes) accept them. For test harnesses whose
 * cases feed shapes as inputs; every binding must name a graph input. */
kl_status kl_onnx_import_file_bound(const char *path, const kl_onnx_import_options *opts,
                                    const kl_onnx_binding *bindings, int n_bindings,
                                    kl_ir_graph **out_graph);

/* One ONNX node being mapped: its converted inputs (NULL where an optional input is omitted)
 * and where the mapping leaves the IR value of each output. */
typedef struct kl_onnx_node_ctx {
  kl_onnx_importer *imp;
  const Onnx__NodeProto *node;
  kl_ir_block *block;
  kl_onnx_scope *scope;
  int64_t opset;
  kl_ir_value **in; /* n_in entries (NULL: an absent input); at least 16, NULL past n_in */
  int n_in;
  kl_ir_value **out; /* the mapping's results; at least 16 slots, as in */
  int n_out;
} kl_onnx_node_ctx;

/* Appends a node of op with the given inputs and n_outputs outputs to the node's block and
 * infers its types; an error names the ONNX node and op. */
kl_status kl_onnx_emit(kl_onnx_node_ctx *c, kl_op op, kl_ir_value *const *inputs, int n_inputs,
                       int n_outputs, kl_ir_node **out_node);
/* Runs kl_ir_node_infer on n (already appended and with its attributes set). */
kl_status kl_onnx_infer(kl_onnx_node_ctx *c, kl_ir_node *n);
/* A prim::Constant holding t (retained) in the node's block. */
kl_ir_value *kl_onnx_emit_constant(kl_onnx_node_ctx *c, kl_tensor *t);
/* The tensor behind v when it is a prim::Constant or an initializer (prim::Param), else NULL.
 * Borrowed. */
kl_tensor *kl_onnx_const_tensor(const kl_onnx_node_ctx *c, const kl_ir_value *v);
/* In a probe (imp->probe_node), notes that the mapping reads v, not a constant, as a value and
 * returns true: the caller then goes on as if the input were absent (no values, or its
 * default), so that the inputs read after it are noted too. False outside a probe. */
bool kl_onnx_probe_value(const kl_onnx_node_ctx *c, const kl_ir_value *v);
/* An error for the node: "<model>: node '<name>' (<op_type>): <message>". */
kl_status kl_onnx_node_error(const kl_onnx_node_ctx *c, kl_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Converts a subgraph attribute into block b (a child scope of c's); inputs of the subgraph
 * become params of b unless skip_inputs. */
kl_status kl_onnx_import_subgraph(kl_onnx_node_ctx *c, const Onnx__GraphProto *sub,
                                  kl_ir_block *b, kl_ir_value *const *param_values,
                                  int n_params);

/* A graph input or value_info TypeProto as an IR type: dim_value static, dim_param a symbol
 * (declared 1..unbounded on first use), neither unknown. what names it in messages. */
kl_status kl_onnx_type_from_proto(kl_onnx_importer *imp, const Onnx__TypeProto *tp,
                                  const char *what, kl_ir_type *out);

/* ---- onnx_import_deferred.c: nodes that need values known at run time ---------------------- */

/* Called when the mapping of c's node failed with `why` after needing a constant or a static
 * shape (imp->needs_run_time): emits the node as onnx::Deferred with its output types (from
 * the model's declarations or the op's rank rule) and takes why; or returns why unchanged
 * where the node cannot be deferred. */
kl_status kl_onnx_emit_deferred(kl_onnx_node_ctx *c, kl_status why);

/* ---- onnx_import_ops.c -------------------------------------------------------------------- */

typedef kl_status (*kl_onnx_op_fn)(kl_onnx_node_ctx *c);

/* The mapping of op_type in the default domain at opset, or NULL when kiln has none. Where
 * none exists, *out_hint (may be NULL) gets the nearest supported op's name or NULL. */
kl_onnx_op_fn kl_onnx_find_op(const char *op_type, int64_t opset, const char **out_hint);

/* Attribute lookups on an ONNX node; NULL when absent. */
const Onnx__AttributeProto *kl_onnx_attr(const Onnx__NodeProto *node, const char *name);

/* Helpers the mappings share (onnx_import_ops.c). Attributes with defaults; attr_string
 * copies into buf; attr_ints sets *out_n = -1 when absent. */
int64_t kl_onnx_attr_int(const kl_onnx_node_ctx *c, const char *name, int64_t dflt);
double kl_onnx_attr_float(const kl_onnx_node_ctx *c, const char *name, double dflt);
const char *kl_onnx_attr_string(const kl_onnx_node_ctx *c, const char *name, const char *dflt,
                                char *buf, size_t size);
const int64_t *kl_onnx_attr_ints(const kl_onnx_node_ctx *c, const char *name, int *out_n);
kl_status kl_onnx_missing_attr(kl_onnx_node_ctx *c, const char *name);
/* Input i, or NULL when omitted or past the end. */
kl_ir_value *kl_onnx_input(const kl_onnx_node_ctx *c, int i);
/* Constant input i as at most max integers, or as one number (dflt when omitted); a
 * non-constant input is a "needs a constant" error. */
kl_status kl_onnx_const_ints(kl_onnx_node_ctx *c, int i, int64_t *out, int max, int *out_n);
kl_status kl_onnx_const_scalar(kl_onnx_node_ctx *c, int i, double dflt, double *out);
/* Axes from the attribute before opset `since`, from constant input 1 after; -1: none. */
kl_status kl_onnx_axes_of(kl_onnx_node_ctx *c, int64_t since, int64_t *axes, int *out_n);
/* add appends op(in) with one output; finish infers it and gives its output. */
kl_status kl_onnx_add(kl_onnx_node_ctx *c, kl_op op, kl_ir_value *const *in, int n,
                      kl_ir_node **out);
kl_status kl_onnx_finish(kl_onnx_node_ctx *c, kl_ir_node *n, kl_ir_value **out_value);
kl_status kl_onnx_emit1(kl_onnx_node_ctx *c, kl_op op, kl_ir_value *x, kl_ir_value **out);
kl_status kl_onnx_emit2(kl_onnx_node_ctx *c, kl_op op, kl_ir_value *a, kl_ir_value *b,
                        kl_ir_value **out);
kl_ir_value *kl_onnx_scalar_const(kl_onnx_node_ctx *c, kl_dtype dtype, double v);
kl_status kl_onnx_need_static(kl_onnx_node_ctx *c, kl_ir_value *v, int64_t *shape);
kl_status kl_onnx_reshape_to(kl_onnx_node_ctx *c, kl_ir_value *x, const int64_t *shape, int rank,
                             kl_ir_value **out);

/* ---- onnx_import_shape.c: data movement, reductions, shapes computed at import ------------ */

#define KL_ONNX_SHAPE_OPS(X)                                                                 \
  X(flatten) X(reshape) X(squeeze) X(unsqueeze) X(transpose) X(concat) X(split) X(slice)     \
  X(gather) X(expand) X(pad) X(reduce) X(shape) X(size) X(constant_of_shape) X(range)
#define KL_ONNX_DECLARE_MAP(name) kl_status kl_onnx_map_##name(kl_onnx_node_ctx *c);
KL_ONNX_SHAPE_OPS(KL_ONNX_DECLARE_MAP)
#undef KL_ONNX_DECLARE_MAP
/* A constant Long tensor of n values, rank 0 (n == 1) or 1, as the node's output 0. */
kl_status kl_onnx_emit_i64_vector(kl_onnx_node_ctx *c, const int64_t *v, int n, int rank);

/* ---- onnx_import_compose*.c: ONNX ops written as several IR ops ---------------------------- */

/* Emitting helpers: input 0 or an error; a rank-0 constant of like's dtype; where; a cast
 * (x itself when already dtype); a float check; a reduction over dims (n < 0: all);
 * permute, unsqueeze and slice nodes. */
kl_status kl_onnx_need_x(kl_onnx_node_ctx *c, kl_ir_value **out);
kl_ir_value *kl_onnx_like(kl_onnx_node_ctx *c, kl_ir_value *like, double v);
kl_status kl_onnx_where(kl_onnx_node_ctx *c, kl_ir_value *cond, kl_ir_value *a, kl_ir_value *b,
                        kl_ir_value **out);
kl_status kl_onnx_cast(kl_onnx_node_ctx *c, kl_ir_value *x, kl_dtype dtype, kl_ir_value **out);
kl_status kl_onnx_require_float(kl_onnx_node_ctx *c, kl_ir_value *x);
kl_status kl_onnx_reduce(kl_onnx_node_ctx *c, kl_op op, kl_ir_value *x, const int64_t *dims,
                         int n, bool keepdim, kl_ir_value **out);
kl_status kl_onnx_permute(kl_onnx_node_ctx *c, kl_ir_value *x, const int64_t *perm, int n,
                          kl_ir_value **out);
kl_status kl_onnx_unsqueeze(kl_onnx_node_ctx *c, kl_ir_value *x, int64_t dim, kl_ir_value **out);
kl_status kl_onnx_slice(kl_onnx_node_ctx *c, kl_ir_value *x, int64_t dim, int64_t start,
                        int64_t end, int64_t step, kl_ir_value **out);

/* The mappings of onnx_import_compose.c and onnx_import_compose_data.c. */
#define KL_ONNX_COMPOSITE_OPS(X)                                                             \
  X(cast_like) X(elu) X(selu) X(celu) X(thresholded_relu) X(softplus) X(softsign) X(prelu)   \
  X(mish) X(is_nan) X(is_inf) X(not) X(logical) X(mean) X(reduce_composite)         \
  X(trilu) X(tile) X(depth_to_space) X(space_to_depth) X(instance_norm)                      \
  X(conv_transpose) X(shrink) X(lp_norm) X(mvn) X(group_norm) X(nll_loss)          \
  X(softmax_cross_entropy) X(gather_elements) X(arg_extreme) X(hardmax) X(dequantize)
#define KL_ONNX_DECLARE_MAP(name) kl_status kl_onnx_map_##name(kl_onnx_node_ctx *c);
KL_ONNX_COMPOSITE_OPS(KL_ONNX_DECLARE_MAP)
#undef KL_ONNX_DECLARE_MAP

/* ---- onnx_import_rnn.c: RNN, GRU, LSTM (issue 4) ------------------------------------------ */
kl_status kl_onnx_map_rnn(kl_onnx_node_ctx *c);

/* ---- onnx_import_math.c: elementwise math (issue 4) ------------------------------------- */
kl_status kl_onnx_map_math_unary(kl_onnx_node_ctx *c); /* Sin ... Atanh, Floor, Ceil, Round, Sign */
kl_status kl_onnx_map_mod(kl_onnx_node_ctx *c);
kl_status kl_onnx_map_bit_shift(kl_onnx_node_ctx *c);
kl_status kl_onnx_map_bitwise(kl_onnx_node_ctx *c); /* BitwiseAnd/Or/Xor/Not (issue 4) */

/* ---- onnx_import_resize.c: Resize, Upsample, GridSample (issue 4) ---------------------- */
kl_status kl_onnx_map_resize(kl_onnx_node_ctx *c); /* Resize and Upsample */
kl_status kl_onnx_map_grid_sample(kl_onnx_node_ctx *c);

/* ---- onnx_import_index.c: reductions and indexing (issue 4) ---------------------------- */
kl_status kl_onnx_map_reduce_prod(kl_onnx_node_ctx *c);
kl_status kl_onnx_map_cumsum(kl_onnx_node_ctx *c);
kl_status kl_onnx_map_scatter_elements(kl_onnx_node_ctx *c); /* and Scatter (opsets 9-10) */
kl_status kl_onnx_map_scatter_nd(kl_onnx_node_ctx *c);
kl_status kl_onnx_map_gather_nd(kl_onnx_node_ctx *c);
kl_status kl_onnx_map_einsum(kl_onnx_node_ctx *c);

/* ---- onnx_import_extra.c: windows, EyeLike, CenterCropPad, OneHot, LRN (issue 4) ------- */
kl_status kl_onnx_map_hann_window(kl_onnx_node_ctx *c);
kl_status kl_onnx_map_hamming_window(kl_onnx_node_ctx *c);
kl_status kl_onnx_map_blackman_window(kl_onnx_node_ctx *c);
kl_status kl_onnx_map_eye_like(kl_onnx_node_ctx *c);
kl_status kl_onnx_map_center_crop_pad(kl_onnx_node_ctx *c);
kl_status kl_onnx_map_one_hot(kl_onnx_node_ctx *c);
kl_status kl_onnx_map_lrn(kl_onnx_node_ctx *c);

#endif
