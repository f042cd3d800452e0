/* The graph IR: an SSA graph in the spirit of TorchScript.
 *
 * A graph owns a top-level block; a block has parameters (its inputs), an ordered doubly linked
 * list of nodes, and returns (its outputs). A node has an op from ir/ops.def, attributes, input
 * values, output values, and may own sub-blocks (prim::If, prim::Loop, prim::FusionGroup).
 * Every value is a tensor with a dtype and a shape whose dims are numbers, named symbols with
 * bounds (N in 1..64), or unknown. Values have names unique within their graph.
 *
 * Nodes, values, attributes and strings live in the graph's arena and are freed with it.
 * Tensors (weights, constant attributes) are reference counted and released by the graph.
 * Structs are open for reading; change them through the functions below so that use lists and
 * name tables stay right. */
#ifndef KL_IR_IR_H
#define KL_IR_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/dtype.h"
#include "../runtime/status.h"
#include "../runtime/tensor.h"
#include "arena.h"
#include "ops.h"

typedef struct kl_ir_graph kl_ir_graph;
typedef struct kl_ir_block kl_ir_block;
typedef struct kl_ir_node kl_ir_node;
typedef struct kl_ir_value kl_ir_value;

/* ---- types ---------------------------------------------------------------------------- */

#define KL_DIM_STATIC (-1)  /* kl_ir_dim.sym of a numeric dim */
#define KL_DIM_UNKNOWN (-2) /* kl_ir_dim.sym of a dim nothing is known about; printed '*' */

/* One dimension: sym == KL_DIM_STATIC and size >= 0, or sym >= 0 (an index into the graph's
 * symbol table, size ignored), or sym == KL_DIM_UNKNOWN. */
typedef struct kl_ir_dim {
  int64_t size;
  int32_t sym;
} kl_ir_dim;

typedef struct kl_ir_type {
  kl_dtype dtype;
  int rank;
  kl_ir_dim dims[KL_MAX_RANK];
} kl_ir_type;

/* A named dimension symbol with inclusive bounds; max == INT64_MAX means unbounded. */
typedef struct kl_ir_symbol {
  const char *name;
  int64_t min, max;
} kl_ir_symbol;

static inline kl_ir_dim kl_ir_dim_static(int64_t size) {
  kl_ir_dim d = {size, KL_DIM_STATIC};
  return d;
}
static inline bool kl_ir_dim_is_static(kl_ir_dim d) { return d.sym == KL_DIM_STATIC; }
static inline bool kl_ir_dim_equal(kl_ir_dim a, kl_ir_dim b) {
  return a.sym == b.sym && (a.sym != KL_DIM_STATIC || a.size == b.size);
}

/* A type with static dims. */
kl_ir_type kl_ir_type_make(kl_dtype dtype, int rank, const int64_t *dims);
/* The static type of a tensor's dtype and shape. */
kl_ir_type kl_ir_type_of_tensor(const kl_tensor *t);
bool kl_ir_type_is_static(const kl_ir_type *t);
bool kl_ir_type_equal(const kl_ir_type *a, const kl_ir_type *b);
/* Element count of a static type; false if any dim is not static or the product overflows. */
bool kl_ir_type_numel(const kl_ir_type *t, int64_t *out_numel);
/* Static dims into out_shape (KL_MAX_RANK entries); false if any dim is not static. */
bool kl_ir_type_shape(const kl_ir_type *t, int64_t *out_shape);
/* "Float(1, N, *)" into buf, always NUL-terminated; symbol names come from g (may be NULL). */
void kl_ir_type_format(const kl_ir_graph *g, const kl_ir_type *t, char *buf, size_t size);

/* ---- attributes ----------------------------------------------------------------------- */

typedef enum kl_ir_attr_kind {
  KL_ATTR_INT,
  KL_ATTR_FLOAT,
  KL_ATTR_STRING,
  KL_ATTR_INTS,
  KL_ATTR_FLOATS,
  KL_ATTR_STRINGS,
  KL_ATTR_DTYPE,
  KL_ATTR_TENSOR,
  KL_ATTR_KIND_COUNT
} kl_ir_attr_kind;

const char *kl_ir_attr_kind_name(kl_ir_attr_kind kind); /* "int", "floats", ... as in ops.def */

typedef struct kl_ir_attr {
  const char *name;
  kl_ir_attr_kind kind;
  int n; /* element count for INTS, FLOATS, STRINGS */
  union {
    int64_t i;
    double f;
    const char *s;
    kl_dtype dtype;
    kl_tensor *t; /* retained by the graph */
    int64_t *is;
    double *fs;
    const char **ss;
  } u;
} kl_ir_attr;

/* ---- values, nodes, blocks, graphs ---------------------------------------------------- */

/* One use of a value: input `index` of node `user`, or (user NULL) return `index` of `block`. */
typedef struct kl_ir_use {
  kl_ir_node *user;
  kl_ir_block *block;
  int index;
} kl_ir_use;

struct kl_ir_value {
  const char *name; /* unique in the graph; printed as %name */
  kl_ir_type type;
  kl_ir_node *node;   /* defining node, or NULL for a block parameter */
  kl_ir_block *block; /* for a block parameter: its block */
  int index;          /* output index in node, or parameter index in block */
  int id;             /* creation order, unique in the graph */
  kl_ir_use *uses;
  int n_uses, cap_uses;
};

struct kl_ir_node {
  kl_op op;
  kl_ir_graph *graph;
  kl_ir_block *owner; /* NULL while not inserted */
  kl_ir_node *prev, *next;
  kl_ir_value **inputs;
  int n_inputs, cap_inputs;
  kl_ir_value **outputs;
  int n_outputs;
  kl_ir_attr *attrs; /* in insertion order; printed in this order */
  int n_attrs, cap_attrs;
  kl_ir_block **blocks;
  int n_blocks;
  int id; /* creation order, unique in the graph */
};

struct kl_ir_block {
  kl_ir_graph *graph;
  kl_ir_node *owner; /* NULL for the top-level block */
  kl_ir_value **params;
  int n_params, cap_params;
  kl_ir_value **returns;
  int n_returns, cap_returns;
  kl_ir_node *first, *last;
};

typedef struct kl_ir_weight {
  const char *name; /* arena string */
  kl_tensor *tensor;
} kl_ir_weight;

struct kl_ir_graph {
  kl_arena *arena;
  kl_ir_block *top;
  kl_ir_symbol *symbols;
  int n_symbols, cap_symbols;
  kl_ir_weight *weights; /* values of prim::Param nodes, by name; malloc'd array */
  int n_weights, cap_weights;
  int next_value_id, next_node_id;
  void *names;               /* value name table (graph.c) */
  int next_auto_name;        /* next number tried for an unnamed value */
  kl_tensor **held;          /* tensors retained by attributes; released with the graph */
  int n_held, cap_held;
  struct kl_ir_cleanup *cleanups;
};

kl_ir_graph *kl_ir_graph_create(void);
void kl_ir_graph_destroy(kl_ir_graph *g); /* NULL is fine */
/* Runs fn(ctx) when g is destroyed, after its tensors are released (e.g. munmap of a .kir). */
void kl_ir_graph_on_destroy(kl_ir_graph *g, void (*fn)(void *ctx), void *ctx);

/* Symbols. add fails on a duplicate name or min > max. find returns -1 when absent. */
kl_status kl_ir_graph_add_symbol(kl_ir_graph *g, const char *name, int64_t min, int64_t max,
                                 int *out_index);
int kl_ir_graph_find_symbol(const kl_ir_graph *g, const char *name);

/* Weights: the tensor behind each prim::Param, keyed by the Param's name attribute. set
 * retains t and replaces any previous tensor of that name. get returns NULL when absent. */
void kl_ir_graph_set_weight(kl_ir_graph *g, const char *name, kl_tensor *t);
kl_tensor *kl_ir_graph_weight(const kl_ir_graph *g, const char *name);
/* Releases and forgets the weight of that name; false when there is none. */
bool kl_ir_graph_remove_weight(kl_ir_graph *g, const char *name);

/* Values. A NULL or empty name gets the next free number ("7"); a name already taken in the
 * graph gets a ".N" suffix. find returns NULL when no value has that name. */
kl_ir_value *kl_ir_graph_find_value(const kl_ir_graph *g, const char *name);
bool kl_ir_graph_name_taken(const kl_ir_graph *g, const char *name);
void kl_ir_value_set_name(kl_ir_value *v, const char *name);
kl_ir_graph *kl_ir_value_graph(const kl_ir_value *v);

/* Blocks. */
kl_ir_value *kl_ir_block_add_param(kl_ir_block *b, const char *name, const kl_ir_type *type);
/* Removes parameter index of b, which must be unused; the later ones move down one place and
 * its name becomes free. */
void kl_ir_block_remove_param(kl_ir_block *b, int index);
void kl_ir_block_add_return(kl_ir_block *b, kl_ir_value *v);
void kl_ir_block_set_return(kl_ir_block *b, int index, kl_ir_value *v);
void kl_ir_block_append(kl_ir_block *b, kl_ir_node *n);

/* Nodes. create makes a node with the given inputs and n_outputs fresh unnamed outputs (type
 * Float rank 0 until set or inferred); it is not in any block until appended or inserted. */
kl_ir_node *kl_ir_node_create(kl_ir_graph *g, kl_op op, kl_ir_value *const *inputs, int n_inputs,
                              int n_outputs);
/* create + append to b. */
kl_ir_node *kl_ir_block_add_node(kl_ir_block *b, kl_op op, kl_ir_value *const *inputs,
                                 int n_inputs, int n_outputs);
void kl_ir_node_insert_before(kl_ir_node *n, kl_ir_node *before);
void kl_ir_node_insert_after(kl_ir_node *n, kl_ir_node *after);
/* Moves n, already in a block, to just before `before` (in the same or another block of the
 * graph), keeping its inputs, outputs and uses. */
void kl_ir_node_move_before(kl_ir_node *n, kl_ir_node *before);
/* Unlinks n from its block and drops its uses of its inputs. Its outputs must be unused. */
void kl_ir_node_remove(kl_ir_node *n);
void kl_ir_node_add_input(kl_ir_node *n, kl_ir_value *v);
void kl_ir_node_set_input(kl_ir_node *n, int index, kl_ir_value *v);
kl_ir_value *kl_ir_node_add_output(kl_ir_node *n);
kl_ir_block *kl_ir_node_add_block(kl_ir_node *n);
void kl_ir_value_replace_all_uses(kl_ir_value *old_value, kl_ir_value *new_value);
const char *kl_ir_node_op_name(const kl_ir_node *n); /* "aten::relu" */

/* Attributes. Setters replace an attribute of the same name (keeping its position) or append;
 * arrays and strings are copied into the arena; tensors are retained. */
void kl_ir_node_set_int(kl_ir_node *n, const char *name, int64_t v);
void kl_ir_node_set_float(kl_ir_node *n, const char *name, double v);
void kl_ir_node_set_string(kl_ir_node *n, const char *name, const char *v);
void kl_ir_node_set_ints(kl_ir_node *n, const char *name, const int64_t *v, int count);
void kl_ir_node_set_floats(kl_ir_node *n, const char *name, const double *v, int count);
void kl_ir_node_set_strings(kl_ir_node *n, const char *name, const char *const *v, int count);
void kl_ir_node_set_dtype(kl_ir_node *n, const char *name, kl_dtype v);
void kl_ir_node_set_tensor(kl_ir_node *n, const char *name, kl_tensor *v);
/* Copies attr (deep, into n's graph). */
void kl_ir_node_set_attr(kl_ir_node *n, const kl_ir_attr *attr);
bool kl_ir_node_remove_attr(kl_ir_node *n, const char *name);
/* NULL when absent. */
const kl_ir_attr *kl_ir_node_attr(const kl_ir_node *n, const char *name);
/* Value or dflt when absent. A present attribute of another kind is a verifier error, so these
 * return dflt for it too. */
int64_t kl_ir_node_int(const kl_ir_node *n, const char *name, int64_t dflt);
double kl_ir_node_float(const kl_ir_node *n, const char *name, double dflt);
const char *kl_ir_node_string(const kl_ir_node *n, const char *name, const char *dflt);

/* Runs the op's shape function and writes the output types. The message of an error names the
 * op, the node's first output and the input types. */
kl_status kl_ir_node_infer(kl_ir_node *n);
/* The types the shape function gives for n's outputs, from its inputs' current types, written
 * to out (n->n_outputs entries) without changing the graph. */
kl_status kl_ir_node_infer_into(const kl_ir_node *n, kl_ir_type *out);
/* The same with explicit input types (used by the interpreter with concrete shapes). */
kl_status kl_ir_node_infer_types(const kl_ir_node *n, const kl_ir_type *in, int n_in,
                                 kl_ir_type *out, int n_out);

/* Counts for `kiln show --stats` and limits; nodes in sub-blocks included. */
int kl_ir_graph_node_count(const kl_ir_graph *g);

/* Checks the whole graph: every input defined before use (in its block or an enclosing one)
 * and no cycles, arity and sub-block counts per ops.def, attribute names and kinds against the
 * op's schema, required attributes present, output types equal to what the shape function
 * gives, unique value names, consistent use lists. Reports every problem found (up to 50),
 * one per line, each naming the node. */
kl_status kl_ir_verify(const kl_ir_graph *g);

#endif
