/* A persistent pool of worker threads with static partitioning, for one model context.
 *
 * A pool of n threads runs a parallel-for over [0, n_tasks): task ranges are split into at most
 * n contiguous chunks, the calling thread takes the first chunk itself and waits for the rest,
 * so a pool of 1 (or NULL) simply runs the function inline. Workers sleep on a condition
 * variable between calls; no thread is created per call. A pool is driven by one thread at a
 * time (each compiled-model context or interpreter run owns its own); separate pools are
 * independent, so several contexts may run in parallel from different threads. */
#ifndef KL_RUNTIME_THREADPOOL_H
#define KL_RUNTIME_THREADPOOL_H

#include <stdint.h>

#include "status.h"

typedef struct kl_threadpool kl_threadpool;

/* fn(ctx, begin, end) handles tasks [begin, end); it must not fail (kernels check their
 * arguments before going parallel; a chunk that does fail records its status in ctx) and must
 * not call kl_parallel_for on the same pool. */
typedef void (*kl_parallel_fn)(void *ctx, int64_t begin, int64_t end);

/* n_threads >= 1 counts the calling thread; n_threads == 0 means the number of online CPUs.
 * Creating threads can fail (resources): that is a status, never an abort. */
kl_status kl_threadpool_create(int n_threads, kl_threadpool **out_pool);
void kl_threadpool_destroy(kl_threadpool *pool); /* NULL is fine; joins the workers */
int kl_threadpool_size(const kl_threadpool *pool); /* 1 for NULL */

/* Runs fn over [0, n_tasks) split into contiguous chunks of at least min_chunk tasks (so tiny
 * loops stay on the calling thread), and returns when every chunk is done. pool may be NULL.
 * min(pool size, n_tasks / min_chunk) threads take part (the calling thread among them; with
 * one, it runs fn(0, n_tasks) itself); the chunks, about four per thread, are fixed by
 * (n_tasks, min_chunk, pool size) and taken by whichever thread is free, so which thread runs
 * a chunk varies from call to call. Nothing happens for n_tasks <= 0, and min_chunk < 1
 * counts as 1. */
void kl_parallel_for(kl_threadpool *pool, int64_t n_tasks, int64_t min_chunk, kl_parallel_fn fn,
                     void *ctx);

#endif
