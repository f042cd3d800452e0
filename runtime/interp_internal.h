/* The interpreter's kernel adapters, one per value of the kernel column of ir/ops.def, declared
 * here by expanding the op table so that an op family may keep its adapters in a file of its
 * own (runtime/interp_<family>.c) beside the table in interp_ops.c. */
#ifndef KL_RUNTIME_INTERP_INTERNAL_H
#define KL_RUNTIME_INTERP_INTERNAL_H

#include "interp.h"

#define KL_INTERP_ADAPTER(name)                                                    \
  kl_status kl_interp_##name(const kl_ir_graph *g, const kl_ir_node *node,         \
                             kl_tensor *const *in, kl_tensor *const *out)

#define KL_OP(id, name, imin, imax, omin, omax, blocks, cat, attrs, shape, kernel) \
  KL_INTERP_ADAPTER(kernel);
#include "../ir/ops.def"
#undef KL_OP

#endif
