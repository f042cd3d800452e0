/* A bump allocator: everything a graph holds (nodes, values, attribute arrays, strings) is
 * allocated from the graph's arena and freed together with it. Allocations are zeroed and
 * 16-byte aligned. Sizes passed here are small and computed by kiln; sizes from files are
 * validated before they reach the arena. */
#ifndef KL_IR_ARENA_H
#define KL_IR_ARENA_H

#include <stddef.h>

typedef struct kl_arena kl_arena;

kl_arena *kl_arena_create(void);
void kl_arena_destroy(kl_arena *a);
void *kl_arena_alloc(kl_arena *a, size_t size); /* zeroed; exits via kl_fatal_oom if memory is gone */
char *kl_arena_strdup(kl_arena *a, const char *s);
char *kl_arena_strndup(kl_arena *a, const char *s, size_t n);
size_t kl_arena_bytes_used(const kl_arena *a);

#endif
