// A CPU stand-in for the few CUDA device features kiln's generated kernels use, so that the
// kernels can run (slowly) on a machine without a GPU and be compared with the CPU backend's
// results (tests/cuda/emulate.py). Not a general CUDA emulator:
//   - a launch runs its blocks one after another; a kernel that synchronizes (its source uses
//     __syncthreads, a block reduction or shared memory) runs each block with blockDim real
//     threads meeting at a barrier, any other kernel runs its threads in a plain loop;
//   - __shared__ variables are statics (one block at a time uses them), dynamic shared memory
//     is one buffer;
//   - __shfl_xor_sync exchanges through a block-wide slot array between two barriers, which is
//     right when every thread of the block calls it (as the generated block reduction does).
#ifndef KILN_TESTS_CUDA_EMU_H
#define KILN_TESTS_CUDA_EMU_H

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct emu_dim3 {
  unsigned x, y, z;
};
static thread_local emu_dim3 threadIdx, blockIdx;
static emu_dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static

static pthread_barrier_t emu_bar;
static bool emu_threaded;
static float emu_slots[1024];
static unsigned char emu_dyn_shared_buf[1 << 20];
#define emu_dyn_shared ((float *)emu_dyn_shared_buf)

static inline void __syncthreads() {
  if (emu_threaded)
    pthread_barrier_wait(&emu_bar);
}
static inline int emu_tid() {
  return (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
}
static inline float __shfl_xor_sync(unsigned mask, float v, int o) {
  (void)mask;
  int t = emu_tid();
  __syncthreads();
  emu_slots[t] = v;
  __syncthreads();
  float w = emu_slots[t ^ o];
  __syncthreads();
  return w;
}
static inline double __longlong_as_double(long long v) {
  double d;
  memcpy(&d, &v, sizeof d);
  return d;
}

typedef void (*emu_kernel)(void **args);

struct emu_launch_ctx {
  emu_kernel fn;
  void **args;
  unsigned tx, ty;
};

static void *emu_thread(void *p) {
  emu_launch_ctx *c = (emu_launch_ctx *)p;
  threadIdx.x = c->tx;
  threadIdx.y = c->ty;
  threadIdx.z = 0;
  for (unsigned z = 0; z < gridDim.z; z++)
    for (unsigned y = 0; y < gridDim.y; y++)
      for (unsigned x = 0; x < gridDim.x; x++) {
        blockIdx.x = x;
        blockIdx.y = y;
        blockIdx.z = z;
        c->fn(c->args);
        pthread_barrier_wait(&emu_bar);
      }
  return NULL;
}

static void emu_launch(emu_kernel fn, bool sync, unsigned gx, unsigned gy, unsigned gz,
                       unsigned bx, unsigned by, void **args) {
  gridDim = {gx, gy, gz};
  blockDim = {bx, by, 1};
  if (!sync) {
    emu_threaded = false;
    for (unsigned z = 0; z < gz; z++)
      for (unsigned y = 0; y < gy; y++)
        for (unsigned x = 0; x < gx; x++)
          for (unsigned ty = 0; ty < by; ty++)
            for (unsigned tx = 0; tx < bx; tx++) {
              blockIdx = {x, y, z};
              threadIdx = {tx, ty, 0};
              fn(args);
            }
    return;
  }
  emu_threaded = true;
  unsigned n = bx * by;
  pthread_barrier_init(&emu_bar, NULL, n);
  pthread_t *th = (pthread_t *)malloc(n * sizeof *th);
  emu_launch_ctx *ctx = (emu_launch_ctx *)malloc(n * sizeof *ctx);
  for (unsigned i = 0; i < n; i++) {
    ctx[i] = {fn, args, i % bx, i / bx};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 18);
    if (pthread_create(&th[i], &attr, emu_thread, &ctx[i]) != 0) {
      fprintf(stderr, "emu: cannot create thread %u\n", i);
      exit(1);
    }
    pthread_attr_destroy(&attr);
  }
  for (unsigned i = 0; i < n; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&emu_bar);
  free(th);
  free(ctx);
  emu_threaded = false;
}

#endif
