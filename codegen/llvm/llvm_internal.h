/* What the files of the LLVM CPU backend share: the lowering state (lower.c builds the tensor
 * table, the weights and the body; module.c emits the tables, the ABI and the object).
 *
 * Generated identifiers are "<name>_<letter><n>" (net_w3 a weight, net_fn5 a function, ...):
 * never a name from the model. Only the descriptor's strings hold the model's own names. */
#ifndef KL_CODEGEN_LLVM_LLVM_INTERNAL_H
#define KL_CODEGEN_LLVM_LLVM_INTERNAL_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../passes/plan_memory.h"
#include "../../runtime/gemm.h"
#include "../../runtime/artifact_rt.h"
#include "../codegen.h"

typedef struct kl_llvm_lower {
  const kl_ir_graph *g;
  const kl_compile_options *o;
  const char *name; /* the model's C name */
  LLVMContextRef ctx;
  LLVMModuleRef m;
  LLVMBuilderRef b;
  LLVMTypeRef i8, i32, i64, ptr;
  kl_memory_plan *plan;

  kl_art_tensor_desc *tensors; /* the tensor table */
  int n_tensors, cap_tensors;
  int *tid; /* by value id: index in the table, -1 when none yet */

  /* Weights, by weight index: the bytes to embed (a model tensor's, or a repacked copy owned
   * here), whether a table entry that something reads points at it (only those are embedded),
   * and the globals, made at the end of lowering (kl_llvm_lower_graph). */
  LLVMValueRef *weights;
  const kl_tensor **weight_src; /* the model tensor, or NULL for a repacked copy */
  const void **weight_data;
  uint64_t *weight_bytes;
  void **weight_owned;
  bool *weight_used;
  int *packed_of;           /* the packed copy last made from this weight, or -1 */
  const void **packed_with; /* for a packed copy: the packing function that made it */
  int n_weights, cap_weights;
  uint64_t weights_size;

  /* Workspace: the memory plan's arena, then a scratch area for the temporaries of one
   * top-level node at a time (fusion-group interiors, unplanned outputs), reused by each. */
  int64_t scratch_base, scratch_cur, scratch_end;

  LLVMValueRef body, body_ctx, fail_block, fail_phi;
  LLVMValueRef f_step, f_region, f_copy;
  int n_names; /* counter for generated identifiers */
} kl_llvm_lower;

/* A fresh generated identifier "<name>_<kind><n>" in buf. */
void kl_llvm_name(kl_llvm_lower *L, const char *kind, char *buf, size_t size);
/* Private constant globals. */
LLVMValueRef kl_llvm_const_bytes(kl_llvm_lower *L, const void *data, size_t n, unsigned align);
LLVMValueRef kl_llvm_const_string(kl_llvm_lower *L, const char *s);
LLVMValueRef kl_llvm_const_i32s(kl_llvm_lower *L, const int32_t *v, int n);
/* A hidden external function of the artifact runtime (declared once). */
LLVMValueRef kl_llvm_runtime_fn(kl_llvm_lower *L, const char *symbol, LLVMTypeRef ret,
                                LLVMTypeRef *params, unsigned n_params);

/* lower.c: fills the tensor table and weights and builds the body function. */
kl_status kl_llvm_lower_graph(kl_llvm_lower *L);

/* epilogue.c: the residual add and activation right after an f32 conv2d of a fusion group that
 * the conv step applies as it stores (runtime/steps.h). */
typedef struct kl_llvm_conv_epilogue {
  const kl_ir_value *residual; /* added first; NULL: none */
  kl_sgemm_act act;
  float lo, hi;
  const kl_ir_value *final; /* the chain's last value: what the conv step writes */
  int n_nodes;              /* the nodes after the conv that the step takes over */
} kl_llvm_conv_epilogue;
/* Whether nodes[i] (of the n nodes of a fusion group's body, in order) is such a conv2d with
 * such a chain after it; fills *out when it is. */
bool kl_llvm_match_conv_epilogue(const kl_ir_node *const *nodes, int n, int i,
                                 kl_llvm_conv_epilogue *out);
/* module.c: the model, the descriptor and the typed API around the body. */
kl_status kl_llvm_emit_abi(kl_llvm_lower *L);

#endif
