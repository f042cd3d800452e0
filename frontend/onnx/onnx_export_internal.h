/* What the two halves of the ONNX exporter share. onnx_export.c walks the graph, owns the
 * ModelProto being built (every message, array and string lives in one arena freed after
 * packing), writes types, initializers and control flow; onnx_export_ops.c turns each leaf IR
 * op into one or more ONNX nodes through the small emitting API below. */
#ifndef KL_FRONTEND_ONNX_EXPORT_INTERNAL_H
#define KL_FRONTEND_ONNX_EXPORT_INTERNAL_H

#include <stdint.h>

#include "../../ir/ir.h"
#include "onnx/onnx.pb-c.h"

/* Opsets kiln writes. Below 13 Softmax, Squeeze, Unsqueeze, ReduceSum and Split take other
 * forms; kiln does not write those. */
enum { KL_ONNX_EXPORT_MIN_OPSET = 13, KL_ONNX_EXPORT_MAX_OPSET = 21,
       KL_ONNX_EXPORT_DEFAULT_OPSET = 17 };

typedef struct kl_onnx_exporter kl_onnx_exporter;
typedef struct kl_onnx_scope kl_onnx_scope; /* the graph (main or a subgraph) being filled */

int kl_onnx_ex_opset(const kl_onnx_exporter *ex);
/* Zeroed memory that lives as long as the exporter (its arena). */
void *kl_onnx_ex_alloc(kl_onnx_exporter *ex, size_t size);
/* The ONNX name standing for an IR value (its IR name, or what an inlined fusion group maps
 * it to). */
const char *kl_onnx_ex_name(const kl_onnx_exporter *ex, const kl_ir_value *v);
/* The ONNX names of n values, in an array that lives as long as the exporter. */
const char **kl_onnx_ex_names(kl_onnx_exporter *ex, kl_ir_value *const *values, int n);
/* TensorProto.DataType of a dtype. */
int kl_onnx_ex_elem_type(kl_dtype dt);
/* A fresh value name no IR value and no earlier temporary has. */
const char *kl_onnx_ex_tmp(kl_onnx_exporter *ex);

/* Appends a node (a unique name is made up) to scope. An input name NULL means an omitted
 * optional input (""). */
Onnx__NodeProto *kl_onnx_ex_node(kl_onnx_exporter *ex, kl_onnx_scope *scope, const char *op_type,
                                 const char *const *inputs, int n_inputs,
                                 const char *const *outputs, int n_outputs);
/* Shorthands for one input (or two) and one output. */
Onnx__NodeProto *kl_onnx_ex_node1(kl_onnx_exporter *ex, kl_onnx_scope *scope, const char *op_type,
                                  const char *input, const char *output);
Onnx__NodeProto *kl_onnx_ex_node2(kl_onnx_exporter *ex, kl_onnx_scope *scope, const char *op_type,
                                  const char *a, const char *b, const char *output);

void kl_onnx_ex_attr_int(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                         int64_t v);
void kl_onnx_ex_attr_float(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                           double v);
void kl_onnx_ex_attr_ints(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                          const int64_t *v, int n);
void kl_onnx_ex_attr_string(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                            const char *v);

/* Initializers made up by the exporter; each returns the new initializer's name. */
const char *kl_onnx_ex_const_ints(kl_onnx_exporter *ex, const int64_t *v, int n); /* 1-D i64 */
const char *kl_onnx_ex_const_scalar(kl_onnx_exporter *ex, kl_dtype dtype, double v); /* rank 0 */
/* A tensor the caller made; the exporter keeps a reference until it is done. */
const char *kl_onnx_ex_const_tensor(kl_onnx_exporter *ex, kl_tensor *t);

/* onnx_import_deferred.c: onnx::Deferred written back as the ONNX node it keeps, at that
 * node's opset only (the op's form may differ at another). */
kl_status kl_onnx_export_deferred(kl_onnx_exporter *ex, kl_onnx_scope *scope,
                                  const kl_ir_node *n);

/* onnx_export_ops.c: the ONNX node(s) for one leaf op (not Param, Constant or control flow). */
kl_status kl_onnx_export_op(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n);

/* onnx_export_math.c: the elementwise math ops of issue 4 (sin ... sign, remainder, fmod,
 * shifts). */
kl_status kl_onnx_export_math(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n);

/* onnx_export_resize.c: onnx::Resize and onnx::GridSample (issue 4). */
kl_status kl_onnx_export_resize(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n);

/* onnx_export_index.c: the reductions and indexing ops of issue 4 (prod, cumsum, scatter,
 * ScatterND, GatherND). */
kl_status kl_onnx_export_index(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n);
/* ---- recurrent ops (issue 4) ---- */
/* List attributes (onnx_export.c); floats are written as float32, as ONNX stores them. */
void kl_onnx_ex_attr_floats(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                            const double *v, int n);
void kl_onnx_ex_attr_strings(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                             const char *const *v, int n);
/* onnx_export_rnn.c: onnx::RNN, onnx::GRU, onnx::LSTM. */
kl_status kl_onnx_export_rnn(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n);
/* Whether v is a size-0 placeholder for an omitted optional input of an RNN, GRU or LSTM (it
 * is written as omitted, ""). */
bool kl_onnx_ex_is_rnn_placeholder(const kl_ir_value *v);

#endif
