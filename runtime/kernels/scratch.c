/* Per-thread scratch memory for the kernels (kernels_internal.h): one growing, 64-byte aligned
 * buffer per slot and thread, kept between calls and freed when the thread ends. Each kernel
 * that holds a buffer while it calls another kernel has a slot of its own. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels_internal.h"

typedef struct scratch {
  float *data;
  size_t floats;
} scratch;

static pthread_key_t keys[KL_SCRATCH_SLOTS];
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;
static bool keys_ok;

static void scratch_free(void *p) {
  scratch *s = p;
  free(s->data);
  free(s);
}

static void keys_init(void) {
  keys_ok = true;
  for (int i = 0; i < KL_SCRATCH_SLOTS; i++)
    keys_ok = keys_ok && pthread_key_create(&keys[i], scratch_free) == 0;
}

float *kl_rt_scratch(kl_scratch_slot slot, size_t n) {
  pthread_once(&keys_once, keys_init);
  if (!keys_ok || slot < 0 || slot >= KL_SCRATCH_SLOTS)
    return NULL;
  scratch *s = pthread_getspecific(keys[slot]);
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s || pthread_setspecific(keys[slot], s) != 0) {
      free(s);
      return NULL;
    }
  }
  if (s->floats < n) {
    if (n > (SIZE_MAX - 63) / sizeof(float))
      return NULL;
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (!p)
      return NULL;
    free(s->data);
    s->data = p;
    s->floats = bytes / sizeof(float);
  }
  return s->data;
}
