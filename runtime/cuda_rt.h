/* The CUDA artifact runtime: what the host code generated for a CUDA model (codegen/cuda/)
 * calls.
 *
 * A CUDA artifact holds constant tables only: the kernels' PTX (and a cubin for the arch it was
 * compiled for), the weights as one blob, and the launch list (kernel name, grid, block, and
 * per argument where its device pointer comes from). Everything else is here, with libc and
 * dlopen only: no CUDA header and no link-time dependency on cudart or libcuda. create loads
 * libcuda.so.1, initializes the driver, picks the device, retains its primary context, loads the
 * module (the cubin when the device's arch matches, else the PTX for the driver to JIT), uploads
 * the weights once and allocates the workspace and staging buffers for host inputs and outputs.
 * run copies host inputs in (or takes device pointers, KL_ARTIFACT_RUN_DEVICE_POINTERS),
 * launches every kernel in order on the stream (the caller's or the context's own), copies
 * outputs out and synchronizes. Any failure of the driver at create (no libcuda, no device, a
 * bad index, a module the device cannot load) is KL_ARTIFACT_ERR_NO_DEVICE with a message,
 * never a crash. Every field is 8 bytes or a pointer, so the generated C's initializers need no
 * padding rules. */
#ifndef KL_RUNTIME_CUDA_RT_H
#define KL_RUNTIME_CUDA_RT_H

#include <stdint.h>

#include "artifact.h"

/* Where a kernel argument (always a device pointer) points. */
enum {
  KL_CUDA_ARG_INPUT = 0,     /* the caller's input `index` */
  KL_CUDA_ARG_OUTPUT = 1,    /* the caller's output `index` */
  KL_CUDA_ARG_WORKSPACE = 2, /* the workspace at byte `offset` */
  KL_CUDA_ARG_WEIGHTS = 3,   /* the weight blob at byte `offset` */
};

/* The most arguments a kernel takes (the generator refuses more). */
#define KL_CUDA_MAX_KERNEL_ARGS 64

typedef struct kl_cuda_arg {
  int64_t kind;  /* KL_CUDA_ARG_* */
  int64_t index; /* input or output number */
  int64_t offset;
} kl_cuda_arg;

typedef struct kl_cuda_launch {
  const char *kernel;   /* extern "C" name in the module */
  int64_t grid[3];
  int64_t block[3];
  int64_t shared_bytes; /* dynamic shared memory */
  int64_t n_args;
  const kl_cuda_arg *args;
  const char *what;     /* the node it runs, for error messages */
} kl_cuda_launch;

typedef struct kl_cuda_model {
  const kl_artifact_descriptor *desc;
  const char *ptx;            /* NUL-terminated */
  const unsigned char *cubin; /* may be NULL */
  uint64_t cubin_size;
  int64_t cubin_arch;         /* 80 for sm_80: the cubin is used when the device is that */
  const unsigned char *weights;
  uint64_t weights_size;
  uint64_t workspace_size;
  int64_t n_launches;
  const kl_cuda_launch *launches;
} kl_cuda_model;

/* Entry points (the descriptor and the typed API forward here). */
int kl_cuda_create(const kl_cuda_model *model, const kl_artifact_options *opts, void **out_ctx);
int kl_cuda_create_n(const kl_cuda_model *model, int32_t n_threads, void **out_ctx);
int kl_cuda_run(void *ctx, const void *const *inputs, void *const *outputs, uint32_t flags);
int kl_cuda_set_threads(void *ctx, int32_t n_threads);
void kl_cuda_destroy(void *ctx);
/* ctx NULL: the message of this thread's last failed create. */
const char *kl_cuda_error_message(const void *ctx);
const char *kl_cuda_status_message(int code);

#endif
