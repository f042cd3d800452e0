/* The CUDA backend: a graph with static shapes to CUDA C kernels, compiled with NVRTC at compile
 * time and embedded in a standalone artifact whose host part drives them through the driver API
 * (runtime/cuda_rt.h).
 *
 * The flow (kl_codegen_cuda, codegen/cuda/artifact.c):
 *   1. kl_cuda_emit (emit.c) walks the top-level block in order and writes one kernel per
 *      elementwise region (a run of unary, binary, where, cast and expand nodes of one output
 *      shape, broadcasting baked into the index math) or per heavy node (matmul and linear as a
 *      tiled shared-memory FP32 kernel, conv2d, softmax and layer_norm one block per row,
 *      pooling, reductions, data movement, attention), with every shape a constant; an
 *      elementwise run right after a matmul, linear or conv2d becomes its epilogue; fusion
 *      groups are cut the same way, their intermediates in scratch space after the memory
 *      plan's arena;
 *   2. kl_cuda_nvrtc_compile (nvrtc.c) compiles the source to PTX (compute_XX) and a cubin
 *      (sm_XX), loading libnvrtc.so with dlopen so kiln runs where CUDA is absent;
 *   3. the host C (the tables of runtime/cuda_rt.h, the descriptor and the typed API) is
 *      written, compiled by the system C compiler with the PTX, the cubin and the weights
 *      included as binary blobs, and linked with the artifact runtime archive. */
#ifndef KL_CODEGEN_CUDA_CUDA_H
#define KL_CODEGEN_CUDA_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "../codegen.h"

/* One kernel argument of a launch (runtime/cuda_rt.h kl_cuda_arg). */
typedef struct kl_cuda_emit_arg {
  int kind; /* KL_CUDA_ARG_* */
  int64_t index, offset;
} kl_cuda_emit_arg;

typedef struct kl_cuda_emit_launch {
  char kernel[32];
  int64_t grid[3], block[3], shared_bytes;
  int n_args;
  kl_cuda_emit_arg *args;
  char *what; /* "aten::conv2d %5" */
} kl_cuda_emit_launch;

/* What kl_cuda_emit produces; free with kl_cuda_program_free. */
typedef struct kl_cuda_program {
  char *source; /* CUDA C, NUL-terminated */
  size_t source_len;
  kl_cuda_emit_launch *launches;
  int n_launches, cap_launches;
  unsigned char *weights; /* every weight, each at a 256-byte aligned offset */
  uint64_t weights_size, weights_cap;
  uint64_t workspace_size;
} kl_cuda_program;

kl_status kl_cuda_emit(const kl_ir_graph *g, kl_cuda_program *out);
void kl_cuda_program_free(kl_cuda_program *p);

/* Compiles source for arch ("sm_80"): *out_ptx (NUL-terminated) from compute_XX and *out_cubin
 * from sm_XX, both malloc'd. A missing libnvrtc or a compile error (with NVRTC's log) is an
 * error. */
kl_status kl_cuda_nvrtc_compile(const char *source, const char *arch, char **out_ptx,
                                unsigned char **out_cubin, size_t *out_cubin_size);

/* "sm_80" -> 80; -1 for anything else. */
int kl_cuda_arch_number(const char *arch);

/* The whole compile for o->target == KL_TARGET_CUDA: so_path and header_path as kl_compile. */
kl_status kl_codegen_cuda(const kl_ir_graph *g, const kl_compile_options *o, const char *so_path,
                          const char *header_path);

#endif
