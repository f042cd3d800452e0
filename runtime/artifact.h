/* The artifact ABI: what every compiled model (.so) exports for generic drivers.
 *
 * An artifact built by `kiln compile --name net` exports exactly:
 *   - the typed API of its generated header net.h (net_create, net_run, ...; see codegen.h), and
 *   - one descriptor, `const kl_artifact_descriptor kiln_model_net`, which names the model's
 *     inputs and outputs and points at entry points taking untyped arrays.
 * Every other symbol (the runtime kernels linked in statically, generated functions, weights) is
 * local to the .so, so several artifacts link into one program without clashing. A generic
 * driver finds the descriptor with kl_artifact_open (runtime/artifact_load.h), which looks for
 * the one dynamic symbol whose name starts with KL_ARTIFACT_SYMBOL_PREFIX.
 *
 * This header is plain C with fixed-width fields; the code generators emit the descriptor as
 * constant data of exactly this layout. Changing it means bumping KL_ARTIFACT_ABI_VERSION. */
#ifndef KL_RUNTIME_ARTIFACT_H
#define KL_RUNTIME_ARTIFACT_H

#include <stdint.h>

#define KL_ARTIFACT_MAGIC 0x4e4c494bu /* "KILN" read as a little-endian uint32 */
#define KL_ARTIFACT_ABI_VERSION 1u
#define KL_ARTIFACT_SYMBOL_PREFIX "kiln_model_"

/* Status codes returned by the entry points (and by the typed API as NET_OK, ...). */
typedef enum kl_artifact_status {
  KL_ARTIFACT_OK = 0,
  KL_ARTIFACT_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, a bad thread count or device index */
  KL_ARTIFACT_ERR_OUT_OF_MEMORY = 2,    /* the workspace or a thread could not be had */
  KL_ARTIFACT_ERR_RUNTIME = 3,          /* a data-dependent error (an index out of range) */
  KL_ARTIFACT_ERR_NO_DEVICE = 4,        /* CUDA: no driver, no GPU, or the device refused */
  KL_ARTIFACT_ERR_UNSUPPORTED = 5,      /* e.g. device pointers given to a CPU artifact */
  KL_ARTIFACT_ERR_INTERNAL = 6,
} kl_artifact_status;

/* Target kinds. */
enum { KL_ARTIFACT_TARGET_CPU = 0, KL_ARTIFACT_TARGET_CUDA = 1 };

/* run flags */
#define KL_ARTIFACT_RUN_DEVICE_POINTERS 1u /* inputs/outputs are device pointers (CUDA only) */

typedef struct kl_artifact_tensor_info {
  const char *name;      /* the model's own name for the value, unmangled (may hold any bytes) */
  const char *c_name;    /* the field name in the generated header's struct */
  int32_t dtype;         /* a kl_dtype (runtime/dtype.h) */
  int32_t rank;
  const int64_t *shape;  /* rank entries, all static */
  uint64_t nbytes;       /* the buffer the caller provides */
} kl_artifact_tensor_info;

typedef struct kl_artifact_options {
  uint32_t struct_size;  /* sizeof(kl_artifact_options), for later growth */
  int32_t n_threads;     /* 0: the artifact's default (1); > 0: that many workers in total */
  int32_t device;        /* CUDA device index; ignored on CPU */
  void *stream;          /* CUDA: a CUstream to run on, or NULL for the context's own */
} kl_artifact_options;

typedef struct kl_artifact_descriptor {
  uint32_t magic;        /* KL_ARTIFACT_MAGIC */
  uint32_t abi_version;  /* KL_ARTIFACT_ABI_VERSION */
  const char *name;      /* --name: a C identifier */
  const char *kiln_version;
  int32_t target;        /* KL_ARTIFACT_TARGET_* */
  int32_t n_inputs;
  int32_t n_outputs;
  int32_t reserved;
  const kl_artifact_tensor_info *inputs;
  const kl_artifact_tensor_info *outputs;
  uint64_t workspace_size; /* bytes of workspace one context allocates (NET_WORKSPACE_SIZE) */
  uint64_t weights_size;   /* bytes of weights embedded */
  /* Creates a context (one per thread that runs the model). opts may be NULL (defaults). On
   * failure *out_ctx is NULL and the status says why; status_message(code) explains it. */
  int (*create)(const kl_artifact_options *opts, void **out_ctx);
  /* inputs[i] / outputs[i]: buffers of inputs[i].nbytes / outputs[i].nbytes, in descriptor
   * order. flags: KL_ARTIFACT_RUN_* bits. */
  int (*run)(void *ctx, const void *const *inputs, void *const *outputs, uint32_t flags);
  void (*destroy)(void *ctx);
  int (*set_threads)(void *ctx, int32_t n_threads);
  /* The message of the context's last failure ("" when the last call succeeded). */
  const char *(*error_message)(const void *ctx);
  /* A constant text for a status code. */
  const char *(*status_message)(int code);
} kl_artifact_descriptor;

#endif
