/* The op table, expanded from ops.def: the kl_op enum, each op's schema (arity, attributes and
 * their kinds, sub-blocks), its fusion category and its shape function. */
#ifndef KL_IR_OPS_H
#define KL_IR_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "../runtime/status.h"

typedef enum kl_op {
#define KL_OP(id, ...) KL_OP_##id,
#include "ops.def"
#undef KL_OP
  KL_OP_COUNT
} kl_op;

/* Fusion categories, ordered as TVM's FuseOps lattice orders them. */
typedef enum kl_fuse_category {
  KL_FUSE_ELEMENTWISE,
  KL_FUSE_BROADCAST,
  KL_FUSE_INJECTIVE,
  KL_FUSE_REDUCTION,
  KL_FUSE_OUT_ELEMENTWISE, /* matmul, conv, pooling: may absorb an elementwise epilogue */
  KL_FUSE_OPAQUE,
} kl_fuse_category;

struct kl_ir_node;
struct kl_ir_type;
enum kl_ir_attr_kind;

/* Computes output types from input types and the node's attributes. in has n_in entries and
 * out n_out (the node's own counts). Returns a status naming what is inconsistent. */
typedef kl_status (*kl_shape_fn)(const struct kl_ir_node *node, const struct kl_ir_type *in,
                                 int n_in, struct kl_ir_type *out, int n_out);

typedef struct kl_attr_schema {
  const char *name;
  int kind; /* kl_ir_attr_kind */
  bool required;
} kl_attr_schema;

typedef struct kl_op_info {
  const char *name; /* "aten::relu" */
  int min_inputs, max_inputs;   /* max -1: unbounded */
  int min_outputs, max_outputs; /* max -1: unbounded */
  int n_blocks;
  kl_fuse_category category;
  const char *attr_spec; /* the ops.def text */
  kl_shape_fn shape;
  const kl_attr_schema *attrs; /* parsed attr_spec */
  int n_attrs;
} kl_op_info;

const kl_op_info *kl_op_get(kl_op op);
/* Finds an op by its full name ("aten::relu"), of length len. */
bool kl_op_lookup(const char *name, size_t len, kl_op *out_op);
/* The schema entry of attribute name for op, or NULL when the op has no such attribute. */
const kl_attr_schema *kl_op_attr_schema(kl_op op, const char *name);
const char *kl_fuse_category_name(kl_fuse_category c);

/* Expanders: for an op whose node stands for work that can only be spelled in static ops once
 * some input values are known (onnx::Deferred), the function that rewrites such a node in
 * place, in its block, into static nodes reading the values of its constant inputs. On success
 * the node's outputs are replaced by the new values everywhere and the node is removed; on
 * error the graph is left as it was. A layer above ir/ registers the function (the ONNX
 * frontend registers onnx::Deferred's), so the interpreter and the passes can call it without
 * knowing that layer. Registration is idempotent and safe from any thread; the getter returns
 * NULL while none is registered. */
typedef kl_status (*kl_ir_expand_fn)(struct kl_ir_node *node);
void kl_ir_set_expander(kl_op op, kl_ir_expand_fn fn);
kl_ir_expand_fn kl_ir_expander(kl_op op);

#endif
