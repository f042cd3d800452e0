/* A fake CUDA driver (libcuda.so.1) for testing the artifact's host runtime (runtime/cuda_rt.c)
 * where there is no GPU. "Device" memory is host memory, copies are memcpy, a launch checks its
 * arguments and does nothing else. $KILN_FAKE_CUDA selects what goes wrong:
 *   ok (default)  one device of arch $KILN_FAKE_CUDA_ARCH (default 80);
 *   noinit        cuInit fails (a driver without a GPU);
 *   nodevice      cuInit succeeds, no devices;
 *   launchfail    every launch fails;
 * A module is accepted when it is a cubin (ELF) for the device's arch or PTX whose .target is
 * at most the device's arch, as the real driver JITs PTX forward only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

static const char *mode(void) {
  const char *m = getenv("KILN_FAKE_CUDA");
  return m && *m ? m : "ok";
}
static int arch(void) {
  const char *a = getenv("KILN_FAKE_CUDA_ARCH");
  return a && *a ? atoi(a) : 80;
}

static int dummy_ctx, dummy_mod, dummy_fn, dummy_stream;

CUresult cuInit(unsigned flags) {
  (void)flags;
  return strcmp(mode(), "noinit") == 0 ? 100 : 0;
}
CUresult cuDeviceGetCount(int *n) {
  *n = strcmp(mode(), "nodevice") == 0 ? 0 : 1;
  return 0;
}
CUresult cuDeviceGet(int *dev, int i) {
  *dev = i;
  return i == 0 ? 0 : 101;
}
CUresult cuDeviceGetAttribute(int *v, int attr, int dev) {
  (void)dev;
  if (attr == 75)
    *v = arch() / 10;
  else if (attr == 76)
    *v = arch() % 10;
  else
    return 1;
  return 0;
}
CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev) {
  (void)dev;
  *ctx = &dummy_ctx;
  return 0;
}
CUresult cuDevicePrimaryCtxRelease_v2(int dev) {
  (void)dev;
  return 0;
}
CUresult cuCtxPushCurrent_v2(void *ctx) { return ctx == &dummy_ctx ? 0 : 201; }
CUresult cuCtxPopCurrent_v2(void **ctx) {
  if (ctx)
    *ctx = &dummy_ctx;
  return 0;
}
CUresult cuModuleLoadData(void **mod, const void *image) {
  const unsigned char *p = image;
  if (memcmp(p, "\x7f" "ELF", 4) == 0) {
    /* a cubin: the runtime offers it only to a device of its arch; $KILN_FAKE_CUDA_NO_CUBIN
     * refuses it, so the PTX fallback runs */
    if (getenv("KILN_FAKE_CUDA_NO_CUBIN"))
      return 209;
    *mod = &dummy_mod;
    return 0;
  }
  const char *t = strstr((const char *)image, ".target sm_");
  if (!t || atoi(t + 11) > arch())
    return 209; /* CUDA_ERROR_NO_BINARY_FOR_GPU */
  *mod = &dummy_mod;
  return 0;
}
CUresult cuModuleUnload(void *mod) { return mod == &dummy_mod ? 0 : 400; }
CUresult cuModuleGetFunction(void **fn, void *mod, const char *name) {
  if (mod != &dummy_mod || !name || name[0] != 'k')
    return 500;
  *fn = &dummy_fn;
  return 0;
}
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
  void *m = calloc(1, n);
  if (!m)
    return 2;
  *p = (CUdeviceptr)(uintptr_t)m;
  return 0;
}
CUresult cuMemFree_v2(CUdeviceptr p) {
  free((void *)(uintptr_t)p);
  return 0;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *s, size_t n, void *stream) {
  (void)stream;
  memcpy((void *)(uintptr_t)d, s, n);
  return 0;
}
CUresult cuMemcpyDtoHAsync_v2(void *d, CUdeviceptr s, size_t n, void *stream) {
  (void)stream;
  memcpy(d, (const void *)(uintptr_t)s, n);
  return 0;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t n) {
  memcpy((void *)(uintptr_t)d, s, n);
  return 0;
}
CUresult cuStreamCreate(void **s, unsigned flags) {
  (void)flags;
  *s = &dummy_stream;
  return 0;
}
CUresult cuStreamDestroy_v2(void *s) { return s == &dummy_stream ? 0 : 400; }
CUresult cuStreamSynchronize(void *s) {
  (void)s;
  return 0;
}
CUresult cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shared, void *stream, void **params, void **extra) {
  (void)shared, (void)stream, (void)extra;
  if (strcmp(mode(), "launchfail") == 0)
    return 719;
  if (fn != &dummy_fn || !gx || !gy || !gz || !bx || !by || !bz || bx * by * bz > 1024 || !params)
    return 1;
  return 0;
}
CUresult cuGetErrorString(CUresult r, const char **s) {
  static char buf[64];
  snprintf(buf, sizeof buf, "fake CUDA error %d", r);
  *s = buf;
  return 0;
}
