/* Chunked bump allocator. Chunks grow geometrically; a request larger than a chunk gets a
 * chunk of its own so big arrays do not waste the current one. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/status.h"

typedef struct chunk {
  struct chunk *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
} chunk;

struct kl_arena {
  chunk *head;
  size_t next_size;
  size_t total;
};

kl_arena *kl_arena_create(void) {
  kl_arena *a = calloc(1, sizeof *a);
  if (!a)
    kl_fatal_oom();
  a->next_size = 16 << 10;
  return a;
}

void kl_arena_destroy(kl_arena *a) {
  if (!a)
    return;
  for (chunk *c = a->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(a);
}

void *kl_arena_alloc(kl_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  if (size == 0)
    size = 16;
  chunk *c = a->head;
  if (!c || c->size - c->used < size) {
    size_t csize = a->next_size;
    if (size > csize / 4) {
      csize = size; /* a big request gets a chunk of its own, kept behind the current one */
    } else if (a->next_size < (64u << 20)) {
      a->next_size *= 2;
    }
    if (csize > SIZE_MAX - sizeof(chunk))
      kl_fatal_oom();
    chunk *n = malloc(sizeof(chunk) + csize);
    if (!n)
      kl_fatal_oom();
    n->size = csize;
    n->used = 0;
    if (c && csize == size) {
      n->next = c->next;
      c->next = n;
    } else {
      n->next = c;
      a->head = n;
    }
    c = n;
  }
  void *p = c->data + c->used;
  c->used += size;
  a->total += size;
  memset(p, 0, size);
  return p;
}

char *kl_arena_strndup(kl_arena *a, const char *s, size_t n) {
  char *p = kl_arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *kl_arena_strdup(kl_arena *a, const char *s) { return kl_arena_strndup(a, s, strlen(s)); }

size_t kl_arena_bytes_used(const kl_arena *a) { return a->total; }
