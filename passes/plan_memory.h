/* Memory planning: where every intermediate tensor of a graph lives in one workspace.
 *
 * An analysis, not a rewrite: it reads a graph and says, per value, at which byte offset of a
 * single arena its buffer can live, so that a compiled model allocates one workspace of a size
 * known at compile time (NET_WORKSPACE_SIZE) instead of one buffer per tensor.
 *
 * Planned values are the outputs of top-level nodes that are not graph outputs and not
 * prim::Param or prim::Constant results (those live in the caller's buffers or in the weights).
 * A value is live from its defining node to its last use; a use inside a sub-block of a later
 * node counts as a use at that node, and a fusion group's body intermediates are the group's
 * own business (only the group's outputs are planned). Freed ranges are reused best-fit, offsets
 * are aligned to KL_MEMORY_ALIGN, and an elementwise or broadcast node (or a fusion group of
 * only such nodes) whose output has the dtype and shape of an input that dies at this node
 * writes over that input (in place). */
#ifndef KL_PASSES_PLAN_MEMORY_H
#define KL_PASSES_PLAN_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "../ir/ir.h"

#define KL_MEMORY_ALIGN 64

typedef struct kl_memory_plan {
  int n_values;             /* entries of offset, size and inplace_of: the graph's value ids */
  int64_t *offset;          /* by value id: byte offset in the workspace, -1 when not planned */
  int64_t *size;            /* by value id: bytes of the tensor (0 when not planned) */
  int *inplace_of;          /* by value id: id of the input it overwrites, -1 when none */
  int n_planned;            /* values with an offset */
  int n_inplace;            /* of those, values written over one of their inputs */
  int64_t workspace_bytes;  /* the arena size: max over values of offset + aligned size */
  int64_t peak_bytes;       /* max over nodes of the sum of live planned bytes */
  int64_t naive_bytes;      /* sum of all planned values' aligned sizes: one buffer each */
  bool used_symbol_bounds;  /* some dim was a symbol, planned at its upper bound */
} kl_memory_plan;

/* Plans g's top-level block. A value whose size is not known statically and whose symbols are
 * not all bounded above is an error naming the value; a size that overflows int64 too. */
kl_status kl_memory_plan_create(const kl_ir_graph *g, kl_memory_plan **out_plan);
void kl_memory_plan_destroy(kl_memory_plan *plan); /* NULL is fine */

#endif
