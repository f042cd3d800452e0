/* Elementwise regions: a connected set of elementwise, broadcast and injective nodes generated
 * as one loop nest (codegen/llvm/ew.c, with the vectorizable math of codegen/llvm/vmath.c).
 *
 * The lowering (codegen/llvm/lower.c) cuts each fusion group (or a lone node) into steps (calls
 * into runtime/steps.h) and regions; a region computes its outputs from its inputs with no
 * intermediate buffer: every node's value is an expression of the output coordinates.
 *
 * The generated function is
 *
 *     void fn(void *const *bufs, int64_t row_begin, int64_t row_end)
 *
 * bufs[0 .. n_outputs-1] are the outputs' buffers, then bufs[n_outputs ..] the inputs', in the
 * region's order. The iteration space is the shape of outputs[0] (every output has that shape);
 * a "row" is one index of all dims but the last (kl_ew_region_rows), and the function computes
 * rows [row_begin, row_end), so the caller may split rows across threads. The innermost loop runs
 * over the last dim with unit-stride stores, written so that LLVM's loop vectorizer takes it.
 * An output buffer may be the same buffer as an input (the memory plan writes in place) only when
 * every node of the region is elementwise or broadcast (no permute, slice, ...), and then it is
 * read and written at the same index; the function must stay correct in that case (no noalias on
 * such parameters): every output's value is computed before any output is stored.
 *
 * What a region may hold (kl_ew_node_supported): the ops whose reference kernel is unary,
 * binary, cast or where (ir/ops.def), and the injective reshape, flatten, squeeze, unsqueeze,
 * expand, transpose, permute, slice, constant_pad_nd and cat, on Float, Double, Int, Long and
 * Bool with static shapes, with the interpreter's semantics (runtime/kernels/unary.c,
 * binary.c, movement.c). Left out: Half, BFloat16, Char and Byte (no native arithmetic of
 * theirs here), integer div/remainder/fmod/pow (the interpreter reports division by zero and
 * negative powers, which a loop cannot), training-mode dropout. Float exp, sigmoid, tanh,
 * erf, GELU and SiLU use the vectorizable approximations of vmath.h (a few ulp); every other
 * op gives the interpreter's result exactly (double math calls libm, which the artifact links).
 * The row loop carries llvm.loop.vectorize.enable = false: only the inner loop is vectorized. */
#ifndef KL_CODEGEN_LLVM_EW_H
#define KL_CODEGEN_LLVM_EW_H

#include <llvm-c/Core.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../ir/ir.h"

typedef struct kl_ew_region {
  const kl_ir_node *const *nodes;   /* in topological order; all kl_ew_node_supported */
  int n_nodes;
  const kl_ir_value *const *inputs; /* values read from outside the region (incl. constants) */
  int n_inputs;
  const kl_ir_value *const *outputs; /* values written; all of outputs[0]'s shape and static */
  int n_outputs;
} kl_ew_region;

/* Whether one node can be part of a region; when not, *why (may be NULL) says why in a few
 * words ("dtype Half ...", "op aten::softmax"; a static string or a thread-local buffer valid
 * until the next call on the thread). Node types must be inferred and static. */
bool kl_ew_node_supported(const kl_ir_node *node, const char **why);

/* The number of rows of the region's iteration space (product of all dims of outputs[0] but the
 * last; 1 for rank <= 1). */
int64_t kl_ew_region_rows(const kl_ew_region *r);

/* Emits the region as a function named fn_name (internal linkage, nounwind) into m; libm
 * functions it calls are declared in m. row_begin and row_end are clamped to [0, rows). On
 * error (an unsupported node, a value neither read nor computed by the region, outputs of
 * differing shapes) nothing is left in m and the status names the node or value. */
kl_status kl_ew_emit(LLVMModuleRef m, const kl_ew_region *r, const char *fn_name,
                     LLVMValueRef *out_fn);

#endif
