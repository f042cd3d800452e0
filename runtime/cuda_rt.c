/* The CUDA artifact runtime (runtime/cuda_rt.h): the driver API through dlopen.
 *
 * Only the few driver types and entry points used are declared here, with the ABI of the
 * driver's cuda.h (CUresult is an int, CUdeviceptr an unsigned 64-bit integer, handles are
 * pointers). The versioned symbol names (_v2) are the ones the driver exports for the 64-bit
 * API. */
#include "cuda_rt.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;

#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76
#define CU_STREAM_NON_BLOCKING 1

typedef struct cu_api {
  void *lib;
  CUresult (*Init)(unsigned);
  CUresult (*DeviceGetCount)(int *);
  CUresult (*DeviceGet)(CUdevice *, int);
  CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*DevicePrimaryCtxRelease)(CUdevice);
  CUresult (*CtxPushCurrent)(CUcontext);
  CUresult (*CtxPopCurrent)(CUcontext *);
  CUresult (*ModuleLoadData)(CUmodule *, const void *);
  CUresult (*ModuleUnload)(CUmodule);
  CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*MemAlloc)(CUdeviceptr *, size_t);
  CUresult (*MemFree)(CUdeviceptr);
  CUresult (*MemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
  CUresult (*MemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
  CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*StreamCreate)(CUstream *, unsigned);
  CUresult (*StreamDestroy)(CUstream);
  CUresult (*StreamSynchronize)(CUstream);
  CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                           unsigned, unsigned, CUstream, void **, void **);
  CUresult (*GetErrorString)(CUresult, const char **);
} cu_api;

typedef struct cuda_ctx {
  const kl_cuda_model *model;
  cu_api cu;
  CUdevice dev;
  CUcontext cuctx;
  bool have_ctx;
  CUmodule mod;
  CUstream own_stream;
  CUstream stream; /* the caller's or own_stream */
  CUdeviceptr weights, workspace;
  CUdeviceptr *in_dev, *out_dev; /* staging buffers for host pointers */
  CUfunction *fns;
  char err[512];
} cuda_ctx;

static _Thread_local char create_error[512];

static void set_error(cuda_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(cuda_ctx *ctx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx ? ctx->err : create_error, sizeof create_error, fmt, ap);
  va_end(ap);
}

const char *kl_cuda_status_message(int code) {
  switch (code) {
  case KL_ARTIFACT_OK: return "ok";
  case KL_ARTIFACT_ERR_INVALID_ARGUMENT:
    return "invalid argument (a NULL pointer or a bad device index)";
  case KL_ARTIFACT_ERR_OUT_OF_MEMORY: return "out of device or host memory";
  case KL_ARTIFACT_ERR_RUNTIME: return "a CUDA call failed while running the model";
  case KL_ARTIFACT_ERR_NO_DEVICE:
    return "no usable CUDA device (no driver libcuda.so.1, no GPU, a bad device index, or a GPU "
           "that cannot run the compiled kernels)";
  case KL_ARTIFACT_ERR_UNSUPPORTED: return "unsupported";
  case KL_ARTIFACT_ERR_INTERNAL: return "internal error";
  default: return "unknown status code";
  }
}

const char *kl_cuda_error_message(const void *p) {
  const cuda_ctx *ctx = p;
  return ctx ? ctx->err : create_error;
}

static const char *cu_error(const cu_api *cu, CUresult r) {
  const char *s = NULL;
  if (cu->GetErrorString && cu->GetErrorString(r, &s) == 0 && s)
    return s;
  return "unknown CUDA error";
}

static bool load_driver(cu_api *cu, char *why, size_t why_size) {
  memset(cu, 0, sizeof *cu);
  cu->lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!cu->lib) {
    const char *e = dlerror();
    snprintf(why, why_size, "cannot load the CUDA driver libcuda.so.1: %s", e ? e : "not found");
    return false;
  }
#define SYM(field, name)                                                                     \
  do {                                                                                       \
    *(void **)&cu->field = dlsym(cu->lib, name);                                             \
    if (!cu->field) {                                                                        \
      snprintf(why, why_size, "the CUDA driver lacks %s (too old a driver?)", name);         \
      dlclose(cu->lib);                                                                      \
      cu->lib = NULL;                                                                        \
      return false;                                                                          \
    }                                                                                        \
  } while (0)
  SYM(Init, "cuInit");
  SYM(DeviceGetCount, "cuDeviceGetCount");
  SYM(DeviceGet, "cuDeviceGet");
  SYM(DeviceGetAttribute, "cuDeviceGetAttribute");
  SYM(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  SYM(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
  SYM(CtxPushCurrent, "cuCtxPushCurrent_v2");
  SYM(CtxPopCurrent, "cuCtxPopCurrent_v2");
  SYM(ModuleLoadData, "cuModuleLoadData");
  SYM(ModuleUnload, "cuModuleUnload");
  SYM(ModuleGetFunction, "cuModuleGetFunction");
  SYM(MemAlloc, "cuMemAlloc_v2");
  SYM(MemFree, "cuMemFree_v2");
  SYM(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
  SYM(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
  SYM(MemcpyHtoD, "cuMemcpyHtoD_v2");
  SYM(StreamCreate, "cuStreamCreate");
  SYM(StreamDestroy, "cuStreamDestroy_v2");
  SYM(StreamSynchronize, "cuStreamSynchronize");
  SYM(LaunchKernel, "cuLaunchKernel");
  SYM(GetErrorString, "cuGetErrorString");
#undef SYM
  return true;
}

void kl_cuda_destroy(void *p) {
  cuda_ctx *ctx = p;
  if (!ctx)
    return;
  if (ctx->cu.lib) {
    if (ctx->have_ctx) {
      ctx->cu.CtxPushCurrent(ctx->cuctx);
      const kl_artifact_descriptor *d = ctx->model->desc;
      for (int i = 0; ctx->in_dev && i < d->n_inputs; i++)
        if (ctx->in_dev[i])
          ctx->cu.MemFree(ctx->in_dev[i]);
      for (int i = 0; ctx->out_dev && i < d->n_outputs; i++)
        if (ctx->out_dev[i])
          ctx->cu.MemFree(ctx->out_dev[i]);
      if (ctx->weights)
        ctx->cu.MemFree(ctx->weights);
      if (ctx->workspace)
        ctx->cu.MemFree(ctx->workspace);
      if (ctx->own_stream)
        ctx->cu.StreamDestroy(ctx->own_stream);
      if (ctx->mod)
        ctx->cu.ModuleUnload(ctx->mod);
      CUcontext popped;
      ctx->cu.CtxPopCurrent(&popped);
      ctx->cu.DevicePrimaryCtxRelease(ctx->dev);
    }
    dlclose(ctx->cu.lib);
  }
  free(ctx->in_dev);
  free(ctx->out_dev);
  free(ctx->fns);
  free(ctx);
}

/* Allocates bytes (at least 1) of device memory. */
static CUresult alloc(cuda_ctx *ctx, CUdeviceptr *out, uint64_t bytes) {
  return ctx->cu.MemAlloc(out, bytes ? (size_t)bytes : 1);
}

static int fail_create(cuda_ctx *ctx, int code) {
  snprintf(create_error, sizeof create_error, "%s", ctx->err);
  kl_cuda_destroy(ctx);
  return code;
}

int kl_cuda_create(const kl_cuda_model *model, const kl_artifact_options *opts, void **out_ctx) {
  if (!out_ctx)
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  *out_ctx = NULL;
  if (!model) {
    set_error(NULL, "no model");
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  }
  int32_t device = 0;
  CUstream user_stream = NULL;
  if (opts) {
    /* An older, shorter options struct leaves the later fields at their defaults. */
    if (opts->struct_size < offsetof(kl_artifact_options, device)) {
      set_error(NULL, "kl_artifact_options.struct_size %u is too small", opts->struct_size);
      return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
    }
    if (opts->n_threads < 0) {
      set_error(NULL, "n_threads %d is negative", (int)opts->n_threads);
      return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
    }
    if (opts->struct_size >= offsetof(kl_artifact_options, device) + sizeof(int32_t))
      device = opts->device;
    if (opts->struct_size >= offsetof(kl_artifact_options, stream) + sizeof(void *))
      user_stream = (CUstream)opts->stream;
  }
  if (device < 0) {
    set_error(NULL, "device index %d is negative", (int)device);
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  }
  cuda_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    set_error(NULL, "out of host memory");
    return KL_ARTIFACT_ERR_OUT_OF_MEMORY;
  }
  ctx->model = model;
  const kl_artifact_descriptor *d = model->desc;
  if (!load_driver(&ctx->cu, ctx->err, sizeof ctx->err))
    return fail_create(ctx, KL_ARTIFACT_ERR_NO_DEVICE);
  cu_api *cu = &ctx->cu;
  CUresult r = cu->Init(0);
  if (r) {
    set_error(ctx, "cuInit failed: %s (no GPU or a broken driver)", cu_error(cu, r));
    return fail_create(ctx, KL_ARTIFACT_ERR_NO_DEVICE);
  }
  int count = 0;
  r = cu->DeviceGetCount(&count);
  if (r || count == 0) {
    set_error(ctx, "no CUDA device found");
    return fail_create(ctx, KL_ARTIFACT_ERR_NO_DEVICE);
  }
  if (device >= count) {
    set_error(ctx, "device index %d is out of range: %d device%s", (int)device, count,
              count == 1 ? "" : "s");
    return fail_create(ctx, KL_ARTIFACT_ERR_NO_DEVICE);
  }
  int major = 0, minor = 0;
  if ((r = cu->DeviceGet(&ctx->dev, device)) ||
      (r = cu->DeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                  ctx->dev)) ||
      (r = cu->DeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                                  ctx->dev))) {
    set_error(ctx, "device %d: %s", (int)device, cu_error(cu, r));
    return fail_create(ctx, KL_ARTIFACT_ERR_NO_DEVICE);
  }
  if ((r = cu->DevicePrimaryCtxRetain(&ctx->cuctx, ctx->dev))) {
    set_error(ctx, "device %d: cannot retain its context: %s", (int)device, cu_error(cu, r));
    return fail_create(ctx, KL_ARTIFACT_ERR_NO_DEVICE);
  }
  if ((r = cu->CtxPushCurrent(ctx->cuctx))) {
    cu->DevicePrimaryCtxRelease(ctx->dev);
    set_error(ctx, "device %d: cannot make its context current: %s", (int)device,
              cu_error(cu, r));
    return fail_create(ctx, KL_ARTIFACT_ERR_NO_DEVICE);
  }
  ctx->have_ctx = true;
  int arch = major * 10 + minor;
  r = 1;
  if (model->cubin && model->cubin_size && model->cubin_arch == arch)
    r = cu->ModuleLoadData(&ctx->mod, model->cubin);
  if (r) {
    r = cu->ModuleLoadData(&ctx->mod, model->ptx);
    if (r) {
      set_error(ctx,
                "device %d (sm_%d) cannot load the model's kernels (compiled for sm_%d): %s",
                (int)device, arch, (int)model->cubin_arch, cu_error(cu, r));
      return fail_create(ctx, KL_ARTIFACT_ERR_NO_DEVICE);
    }
  }
  ctx->fns = calloc((size_t)model->n_launches + 1, sizeof *ctx->fns);
  ctx->in_dev = calloc((size_t)d->n_inputs + 1, sizeof *ctx->in_dev);
  ctx->out_dev = calloc((size_t)d->n_outputs + 1, sizeof *ctx->out_dev);
  if (!ctx->fns || !ctx->in_dev || !ctx->out_dev) {
    set_error(ctx, "out of host memory");
    return fail_create(ctx, KL_ARTIFACT_ERR_OUT_OF_MEMORY);
  }
  for (int64_t i = 0; i < model->n_launches; i++) {
    if ((r = cu->ModuleGetFunction(&ctx->fns[i], ctx->mod, model->launches[i].kernel))) {
      set_error(ctx, "kernel %s: %s", model->launches[i].kernel, cu_error(cu, r));
      return fail_create(ctx, KL_ARTIFACT_ERR_NO_DEVICE);
    }
  }
  if ((r = alloc(ctx, &ctx->weights, model->weights_size)) ||
      (r = alloc(ctx, &ctx->workspace, model->workspace_size))) {
    set_error(ctx, "cannot allocate %llu bytes of weights and %llu of workspace: %s",
              (unsigned long long)model->weights_size,
              (unsigned long long)model->workspace_size, cu_error(cu, r));
    return fail_create(ctx, KL_ARTIFACT_ERR_OUT_OF_MEMORY);
  }
  for (int i = 0; i < d->n_inputs && !r; i++)
    r = alloc(ctx, &ctx->in_dev[i], d->inputs[i].nbytes);
  for (int i = 0; i < d->n_outputs && !r; i++)
    r = alloc(ctx, &ctx->out_dev[i], d->outputs[i].nbytes);
  if (r) {
    set_error(ctx, "cannot allocate the input and output buffers: %s", cu_error(cu, r));
    return fail_create(ctx, KL_ARTIFACT_ERR_OUT_OF_MEMORY);
  }
  if (model->weights_size &&
      (r = cu->MemcpyHtoD(ctx->weights, model->weights, (size_t)model->weights_size))) {
    set_error(ctx, "cannot upload the weights: %s", cu_error(cu, r));
    return fail_create(ctx, KL_ARTIFACT_ERR_NO_DEVICE);
  }
  if (user_stream) {
    ctx->stream = user_stream;
  } else {
    if ((r = cu->StreamCreate(&ctx->own_stream, CU_STREAM_NON_BLOCKING))) {
      set_error(ctx, "cannot create a stream: %s", cu_error(cu, r));
      return fail_create(ctx, KL_ARTIFACT_ERR_NO_DEVICE);
    }
    ctx->stream = ctx->own_stream;
  }
  CUcontext popped;
  cu->CtxPopCurrent(&popped);
  ctx->err[0] = '\0';
  create_error[0] = '\0';
  *out_ctx = ctx;
  return KL_ARTIFACT_OK;
}

int kl_cuda_create_n(const kl_cuda_model *model, int32_t n_threads, void **out_ctx) {
  kl_artifact_options o = {sizeof o, n_threads, 0, NULL};
  return kl_cuda_create(model, &o, out_ctx);
}

int kl_cuda_set_threads(void *p, int32_t n_threads) {
  cuda_ctx *ctx = p;
  if (!ctx || n_threads < 0)
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  return KL_ARTIFACT_OK; /* host threads do not matter to a GPU run */
}

#define MAX_KERNEL_ARGS KL_CUDA_MAX_KERNEL_ARGS

static int run_on_device(cuda_ctx *ctx, const CUdeviceptr *in, const CUdeviceptr *out) {
  const kl_cuda_model *m = ctx->model;
  cu_api *cu = &ctx->cu;
  for (int64_t i = 0; i < m->n_launches; i++) {
    const kl_cuda_launch *l = &m->launches[i];
    CUdeviceptr vals[MAX_KERNEL_ARGS];
    void *params[MAX_KERNEL_ARGS];
    if (l->n_args > MAX_KERNEL_ARGS) {
      set_error(ctx, "%s: too many kernel arguments", l->what);
      return KL_ARTIFACT_ERR_INTERNAL;
    }
    for (int64_t a = 0; a < l->n_args; a++) {
      const kl_cuda_arg *g = &l->args[a];
      switch (g->kind) {
      case KL_CUDA_ARG_INPUT: vals[a] = in[g->index] + (CUdeviceptr)g->offset; break;
      case KL_CUDA_ARG_OUTPUT: vals[a] = out[g->index] + (CUdeviceptr)g->offset; break;
      case KL_CUDA_ARG_WORKSPACE: vals[a] = ctx->workspace + (CUdeviceptr)g->offset; break;
      default: vals[a] = ctx->weights + (CUdeviceptr)g->offset; break;
      }
      params[a] = &vals[a];
    }
    CUresult r = cu->LaunchKernel(ctx->fns[i], (unsigned)l->grid[0], (unsigned)l->grid[1],
                                  (unsigned)l->grid[2], (unsigned)l->block[0],
                                  (unsigned)l->block[1], (unsigned)l->block[2],
                                  (unsigned)l->shared_bytes, ctx->stream, params, NULL);
    if (r) {
      set_error(ctx, "%s: launching %s failed: %s", l->what, l->kernel, cu_error(cu, r));
      return KL_ARTIFACT_ERR_RUNTIME;
    }
  }
  return KL_ARTIFACT_OK;
}

int kl_cuda_run(void *p, const void *const *inputs, void *const *outputs, uint32_t flags) {
  cuda_ctx *ctx = p;
  if (!ctx)
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  const kl_artifact_descriptor *d = ctx->model->desc;
  if ((d->n_inputs && !inputs) || (d->n_outputs && !outputs)) {
    set_error(ctx, "inputs or outputs is NULL");
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  }
  for (int i = 0; i < d->n_inputs; i++)
    if (!inputs[i] && d->inputs[i].nbytes) {
      set_error(ctx, "input %d (%s) is NULL", i, d->inputs[i].c_name);
      return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
    }
  for (int i = 0; i < d->n_outputs; i++)
    if (!outputs[i] && d->outputs[i].nbytes) {
      set_error(ctx, "output %d (%s) is NULL", i, d->outputs[i].c_name);
      return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
    }
  if (flags & ~KL_ARTIFACT_RUN_DEVICE_POINTERS) {
    set_error(ctx, "unknown run flags 0x%x", (unsigned)flags);
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  }
  cu_api *cu = &ctx->cu;
  CUresult r = cu->CtxPushCurrent(ctx->cuctx);
  if (r) {
    set_error(ctx, "cannot make the context current: %s", cu_error(cu, r));
    return KL_ARTIFACT_ERR_RUNTIME;
  }
  int code = KL_ARTIFACT_OK;
  CUdeviceptr in_small[16], out_small[16];
  CUdeviceptr *in = d->n_inputs <= 16 ? in_small : malloc((size_t)d->n_inputs * sizeof *in);
  CUdeviceptr *out = d->n_outputs <= 16 ? out_small : malloc((size_t)d->n_outputs * sizeof *out);
  if (!in || !out) {
    set_error(ctx, "out of host memory");
    code = KL_ARTIFACT_ERR_OUT_OF_MEMORY;
    goto done;
  }
  if (flags & KL_ARTIFACT_RUN_DEVICE_POINTERS) {
    for (int i = 0; i < d->n_inputs; i++)
      in[i] = (CUdeviceptr)(uintptr_t)inputs[i];
    for (int i = 0; i < d->n_outputs; i++)
      out[i] = (CUdeviceptr)(uintptr_t)outputs[i];
  } else {
    for (int i = 0; i < d->n_inputs; i++) {
      in[i] = ctx->in_dev[i];
      if (d->inputs[i].nbytes &&
          (r = cu->MemcpyHtoDAsync(in[i], inputs[i], (size_t)d->inputs[i].nbytes, ctx->stream))) {
        set_error(ctx, "copying input %s to the device: %s", d->inputs[i].c_name,
                  cu_error(cu, r));
        code = KL_ARTIFACT_ERR_RUNTIME;
        goto done;
      }
    }
    for (int i = 0; i < d->n_outputs; i++)
      out[i] = ctx->out_dev[i];
  }
  code = run_on_device(ctx, in, out);
  if (!code && !(flags & KL_ARTIFACT_RUN_DEVICE_POINTERS)) {
    for (int i = 0; i < d->n_outputs && !code; i++)
      if (d->outputs[i].nbytes &&
          (r = cu->MemcpyDtoHAsync(outputs[i], out[i], (size_t)d->outputs[i].nbytes,
                                   ctx->stream))) {
        set_error(ctx, "copying output %s from the device: %s", d->outputs[i].c_name,
                  cu_error(cu, r));
        code = KL_ARTIFACT_ERR_RUNTIME;
      }
  }
  if ((r = cu->StreamSynchronize(ctx->stream)) && !code) {
    set_error(ctx, "running the model failed: %s", cu_error(cu, r));
    code = KL_ARTIFACT_ERR_RUNTIME;
  }
  if (!code)
    ctx->err[0] = '\0';
done:
  if (in && in != in_small)
    free(in);
  if (out && out != out_small)
    free(out);
  CUcontext popped;
  cu->CtxPopCurrent(&popped);
  return code;
}
