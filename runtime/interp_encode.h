/* The IR side of steps (runtime/steps.h): a node's attributes and operand types to its step and
 * parameter block. The interpreter calls this per node at run time with the concrete shapes;
 * the compilers call it at compile time with the static shapes and embed the block's bytes. */
#ifndef KL_RUNTIME_INTERP_ENCODE_H
#define KL_RUNTIME_INTERP_ENCODE_H

#include "../ir/ir.h"
#include "steps.h"

/* An operand's type as the step will see it. */
typedef struct kl_step_operand {
  kl_dtype dtype;
  int rank;
  const int64_t *shape; /* rank entries, all static (>= 0) */
} kl_step_operand;

/* Finds node's step and fills params (KL_STEP_PARAMS_MAX bytes at any alignment, zeroed first
 * so the block's bytes are deterministic, padding and the unused tail included) from node's
 * attributes, applying the defaults and checks of ir/op_params.h. in/out describe the node's
 * operands (an absent optional input has rank -1); their counts are checked against the op
 * table and their dims must be static. Nodes of kernel "control" are an error
 * (KL_ERR_INTERNAL): their blocks are run by the interpreter or lowered by the compiler. Errors
 * name the node's op; on error *out_step is NULL. */
kl_status kl_step_encode(const kl_ir_node *node, const kl_step_operand *in, int n_in,
                         const kl_step_operand *out, int n_out, const kl_step_info **out_step,
                         void *params);

#endif
