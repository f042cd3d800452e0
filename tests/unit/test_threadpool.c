/* Tests for runtime/threadpool.c: every task index is visited exactly once whatever the pool
 * size, task count and minimum chunk; chunks honour min_chunk and come about four per thread;
 * small ranges stay on the calling thread; a thread held up leaves its share to the others;
 * pools of 0 (one per CPU) and 1 work; pools are created and destroyed many times without
 * leaking threads. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "runtime/threadpool.h"

typedef struct visit_ctx {
  int *hits;            /* per task, incremented atomically */
  int64_t min_chunk;
  int64_t n_tasks;
  int small_chunks;     /* chunks shorter than min_chunk (there may be one: the whole range) */
  int chunks;
  pthread_t caller;
  int off_caller;       /* chunks run on another thread */
  int caller_sleep_ms;  /* the calling thread sleeps this long in each chunk it runs */
} visit_ctx;

static void visit(void *ctx, int64_t begin, int64_t end) {
  visit_ctx *v = ctx;
  for (int64_t i = begin; i < end; i++)
    __atomic_fetch_add(&v->hits[i], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&v->chunks, 1, __ATOMIC_RELAXED);
  if (end - begin < v->min_chunk && end - begin < v->n_tasks)
    __atomic_fetch_add(&v->small_chunks, 1, __ATOMIC_RELAXED);
  if (!pthread_equal(pthread_self(), v->caller))
    __atomic_fetch_add(&v->off_caller, 1, __ATOMIC_RELAXED);
  else if (v->caller_sleep_ms)
    usleep((useconds_t)v->caller_sleep_ms * 1000);
}

/* Runs one parallel-for and checks every index was visited once; returns the chunk count. */
static int run_slow(kl_threadpool *pool, int64_t n, int64_t min_chunk, int *off_caller,
                    int caller_sleep_ms) {
  visit_ctx v = {.min_chunk = min_chunk < 1 ? 1 : min_chunk, .n_tasks = n,
                 .caller = pthread_self(), .caller_sleep_ms = caller_sleep_ms};
  v.hits = calloc((size_t)(n > 0 ? n : 1), sizeof *v.hits);
  kl_parallel_for(pool, n, min_chunk, visit, &v);
  int bad = 0;
  for (int64_t i = 0; i < n; i++)
    bad += v.hits[i] != 1;
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(v.small_chunks, 0);
  if (n == 0)
    CHECK_EQ_INT(v.chunks, 0);
  free(v.hits);
  if (off_caller)
    *off_caller = v.off_caller;
  return v.chunks;
}

static int run_once(kl_threadpool *pool, int64_t n, int64_t min_chunk, int *off_caller) {
  return run_slow(pool, n, min_chunk, off_caller, 0);
}

static void test_coverage(void) {
  static const int sizes[] = {1, 2, 3, 4, 7};
  static const int64_t ns[] = {0, 1, 2, 3, 5, 16, 17, 63, 64, 65, 100, 1000, 4097};
  static const int64_t mins[] = {0, 1, 2, 3, 16, 64, 5000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    kl_threadpool *pool = NULL;
    CHECK_OK(kl_threadpool_create(sizes[s], &pool));
    CHECK_EQ_INT(kl_threadpool_size(pool), sizes[s]);
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
      for (size_t j = 0; j < sizeof mins / sizeof mins[0]; j++) {
        int chunks = run_once(pool, ns[i], mins[j], NULL);
        int64_t m = mins[j] < 1 ? 1 : mins[j];
        /* one chunk when the pool or min_chunk leaves one thread, else about four per thread,
         * none under min_chunk */
        int64_t threads = ns[i] / m < sizes[s] ? ns[i] / m : sizes[s];
        int64_t grain = ns[i] / (4 * (int64_t)sizes[s]) > m ? ns[i] / (4 * (int64_t)sizes[s]) : m;
        int64_t want = threads > 1 ? ns[i] / grain : ns[i] > 0;
        CHECK_EQ_INT(chunks, want);
      }
    kl_threadpool_destroy(pool);
  }
}

static void test_small_ranges_inline(void) {
  kl_threadpool *pool = NULL;
  CHECK_OK(kl_threadpool_create(4, &pool));
  int off = -1;
  CHECK_EQ_INT(run_once(pool, 10, 8, &off), 1); /* below 2 * min_chunk: one chunk */
  CHECK_EQ_INT(off, 0);                         /* on the calling thread */
  CHECK_EQ_INT(run_once(pool, 400, 1, &off), 16); /* four chunks of 25 per thread */
  CHECK(off <= 16);
  kl_threadpool_destroy(pool);
  /* NULL runs inline too */
  CHECK_EQ_INT(kl_threadpool_size(NULL), 1);
  CHECK_EQ_INT(run_once(NULL, 1000, 1, &off), 1);
  CHECK_EQ_INT(off, 0);
}

/* The calling thread held up in its first chunk: the workers take the rest. */
static void test_held_up_thread(void) {
  kl_threadpool *pool = NULL;
  CHECK_OK(kl_threadpool_create(4, &pool));
  int off = -1;
  CHECK_EQ_INT(run_slow(pool, 16, 1, &off, 50), 16);
  CHECK(off >= 14); /* the caller ran one chunk, maybe two */
  kl_threadpool_destroy(pool);
}

static void test_pool_of_one_and_cpus(void) {
  kl_threadpool *one = NULL, *cpus = NULL;
  CHECK_OK(kl_threadpool_create(1, &one));
  CHECK_EQ_INT(kl_threadpool_size(one), 1);
  int off = -1;
  CHECK_EQ_INT(run_once(one, 1000, 1, &off), 1);
  CHECK_EQ_INT(off, 0);
  kl_threadpool_destroy(one);
  CHECK_OK(kl_threadpool_create(0, &cpus));
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  CHECK_EQ_INT(kl_threadpool_size(cpus), online > 0 ? online : 1);
  run_once(cpus, 12345, 7, NULL);
  kl_threadpool_destroy(cpus);
  kl_threadpool_destroy(NULL);
}

static void test_bad_sizes(void) {
  kl_threadpool *pool = (kl_threadpool *)&pool;
  CHECK_ERR(kl_threadpool_create(-1, &pool), KL_ERR_INVALID_ARGUMENT, "-1 threads");
  CHECK(pool == NULL);
  CHECK_ERR(kl_threadpool_create(1 << 20, &pool), KL_ERR_INVALID_ARGUMENT, "threads");
  CHECK(pool == NULL);
}

static void test_create_destroy_many(void) {
  for (int i = 0; i < 200; i++) {
    kl_threadpool *pool = NULL;
    CHECK_OK(kl_threadpool_create(1 + i % 5, &pool));
    if (i % 2) /* half are destroyed without ever running anything */
      run_once(pool, 37 + i, 1 + i % 4, NULL);
    kl_threadpool_destroy(pool);
  }
}

/* Many back-to-back calls on one pool: no chunk is lost or run twice between generations. */
static void test_many_calls(void) {
  kl_threadpool *pool = NULL;
  CHECK_OK(kl_threadpool_create(4, &pool));
  for (int i = 0; i < 2000; i++)
    run_once(pool, 1 + i % 50, 1 + i % 3, NULL);
  kl_threadpool_destroy(pool);
}

int main(void) {
  test_coverage();
  test_small_ranges_inline();
  test_held_up_thread();
  test_pool_of_one_and_cpus();
  test_bad_sizes();
  test_create_destroy_many();
  test_many_calls();
  return check_finish();
}
