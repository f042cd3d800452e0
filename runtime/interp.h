/* The graph interpreter: runs a graph node by node with the reference kernels.
 *
 * Input shapes may differ from the graph's declared types where those are symbolic: every
 * node's output shape is recomputed from the concrete input shapes with the op's shape
 * function. Runs are independent; several threads may run one graph at once. */
#ifndef KL_RUNTIME_INTERP_H
#define KL_RUNTIME_INTERP_H

#include "../ir/ir.h"
#include "status.h"
#include "tensor.h"

/* inputs: one tensor per graph input, in order (checked against the declared dtype, rank and
 * static dims, symbol bounds and consistency). On success out_outputs (caller-provided array
 * of g->top->n_returns entries) receives new references the caller releases. */
kl_status kl_interp_run(const kl_ir_graph *g, kl_tensor *const *inputs, int n_inputs,
                        kl_tensor **out_outputs);

/* kl_interp_run that also calls after_node(ctx, node, outputs) once each top-level node has
 * run, outputs being its n_outputs results (borrowed: retain one to keep it). `kiln check` uses
 * this to compare intermediate values; an error from after_node stops the run and is returned.
 * Nodes inside sub-blocks (If and Loop bodies, fusion group bodies) are not reported. */
typedef kl_status (*kl_interp_observer_fn)(void *ctx, const kl_ir_node *node,
                                           kl_tensor *const *outputs);
kl_status kl_interp_run_observed(const kl_ir_graph *g, kl_tensor *const *inputs, int n_inputs,
                                 kl_tensor **out_outputs, kl_interp_observer_fn after_node,
                                 void *ctx);

/* The reference kernel adapter of one node: reads the node's attributes, checks its inputs and
 * calls the runtime kernel. outputs are allocated by the caller with the inferred types. */
typedef kl_status (*kl_interp_kernel_fn)(const kl_ir_graph *g, const kl_ir_node *node,
                                         kl_tensor *const *inputs, kl_tensor *const *outputs);
kl_interp_kernel_fn kl_interp_kernel(kl_op op);

#endif
