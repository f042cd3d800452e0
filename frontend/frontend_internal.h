/* What the files of frontend/ share: per-thread error and scope state (eager.c), the op call
 * at the heart of every eager op (eager.c), and the tracer's hooks (trace.c). */
#ifndef KL_FRONTEND_INTERNAL_H
#define KL_FRONTEND_INTERNAL_H

#include "kiln.h"

/* ---- eager.c: errors, warnings, scopes ----------------------------------------------- */

/* Records s as this thread's last error and passes it to the error handler; takes ownership. */
void kl_fe_report(kl_status s);
/* Sends a warning to the warning handler. */
void kl_fe_warn(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Hands a new reference t to the innermost scope (if any) and returns t; NULL stays NULL. */
kl_tensor *kl_fe_own(kl_tensor *t);

/* ---- eager.c: running one op --------------------------------------------------------- */

/* Runs op on inputs with attributes (names and kinds as ops.def says) eagerly: builds the node,
 * infers output types (a shape or dtype error names the op and the input shapes), allocates
 * outputs and calls the reference kernel (runtime/interp.h's kl_interp_kernel). While a trace is
 * active the node is built in the trace graph and stays there, its inputs mapped through
 * kl_fe_trace_value and its outputs bound with kl_fe_trace_bind. outputs receive new references
 * the caller owns (not scoped). A NULL input fails with KL_ERR_INVALID_ARGUMENT (no report). */
kl_status kl_fe_call(kl_op op, kl_tensor *const *inputs, int n_inputs, const kl_ir_attr *attrs,
                     int n_attrs, kl_tensor **outputs, int n_outputs);
/* kl_fe_call for one output: reports errors (except for NULL inputs, already reported) and
 * returns the output owned by the current scope, or NULL. */
kl_tensor *kl_fe_call1(kl_op op, kl_tensor *const *inputs, int n_inputs, const kl_ir_attr *attrs,
                       int n_attrs);

/* ---- trace.c: hooks the op call uses -------------------------------------------------- */

/* The graph of this thread's active trace, or NULL when not tracing. */
kl_ir_graph *kl_fe_trace_graph(void);
/* The IR value that stands for t in the active trace: a bound value (a graph input or an op
 * output), else a new prim::Param if t is a parameter of the traced module (the graph gets a
 * copy of its value under its full name), else a new prim::Constant holding a copy of t. */
kl_status kl_fe_trace_value(kl_tensor *t, kl_ir_value **out_value);
/* Records that t is the value v; the trace keeps a reference to t until it ends, so a
 * tensor's address cannot be reused for another tensor during the trace. */
void kl_fe_trace_bind(kl_tensor *t, kl_ir_value *v);
/* Called when user code reads t's values (kl_item, kl_data, kl_print): warns with the
 * caller's location if a trace is active and t is part of it. */
void kl_fe_trace_note_read(const kl_tensor *t, const char *file, int line, const char *what);

#endif
