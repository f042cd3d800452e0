/* Helpers several passes share: reading a compile-time constant and materializing a new one. */
#ifndef KL_PASSES_PASS_INTERNAL_H
#define KL_PASSES_PASS_INTERNAL_H

#include "pass.h"

/* The tensor behind v when v is a compile-time constant (a prim::Constant, or a prim::Param
 * with a weight) whose data matches v's declared type; else NULL. Borrowed from the graph. */
const kl_tensor *kl_pass_constant_tensor(const kl_ir_graph *g, const kl_ir_value *v);

/* A new node holding t, inserted before `before`, whose output is named name (or name.N when
 * taken). Small tensors become a prim::Constant; larger ones a prim::Param with a weight of
 * their own, so that printed IR stays readable and .kir files keep them as aligned blobs like
 * any other weight. The graph takes its own reference to t. */
kl_ir_value *kl_pass_insert_constant(kl_ir_graph *g, kl_tensor *t, const char *name,
                                     kl_ir_node *before);

#endif
