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

#endif
