/* The thread pool of runtime/threadpool.h: n - 1 persistent workers plus the calling thread.
 *
 * One job at a time: kl_parallel_for publishes (fn, ctx, n_tasks, grain, n_chunks), sets
 * pending to the number of workers and bumps a generation counter; worker i (1 .. n-1) sees the
 * new generation, takes part when i < n_chunks, and decrements pending; the caller takes part
 * meanwhile and returns once pending is 0, so no worker still reads the job when the next one
 * is published. The tasks go in n_tasks / grain chunks, [c * grain, (c + 1) * grain) with the
 * remainder in the last, each taken by whichever thread taking part is free (an atomic
 * counter of chunks): a thread the
 * machine slows (a busy or stolen core) takes fewer chunks instead of holding the others up.
 * grain is at least min_chunk and about a quarter of an even share, so the chunks depend only
 * on (n_tasks, min_chunk, pool size), and which thread runs one never changes what it
 * computes.
 *
 * A model runs dozens of parallel steps per inference, microseconds apart, and waking a
 * sleeping thread costs about as much as a small step. So both sides spin first: a worker
 * watches the generation and the caller watches pending for up to KL_POOL_SPIN_US
 * microseconds (CPU relax hints in between) before sleeping on a condition variable. The
 * generation and pending are atomics; the mutex guards sleeping and waking only, and every
 * change a sleeper waits for is made under it, so no wake-up is lost. */
#include "threadpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* More threads than this is a mistake in the caller (or a machine kiln has not met). */
#define KL_THREADPOOL_MAX 1024
/* How long a thread spins for the next job (a worker) or the last chunk (the caller). */
#define KL_POOL_SPIN_US 200
/* Chunks a job is cut into per thread (each at least the caller's min_chunk tasks). */
#define KL_POOL_CHUNKS_PER_THREAD 4

typedef struct worker {
  struct kl_threadpool *pool;
  int index; /* 1 .. n-1: the chunk this worker runs */
  pthread_t thread;
} worker;

struct kl_threadpool {
  int n_threads; /* counting the calling thread */
  worker *workers; /* n_threads - 1 */
  int n_started;
  pthread_mutex_t mu;
  pthread_cond_t work_cv; /* workers sleep here for a new generation or stop */
  pthread_cond_t done_cv; /* the caller sleeps here for pending == 0 */
  uint64_t generation;    /* atomic; changed under mu */
  bool stop;              /* atomic; changed under mu */
  int pending;            /* atomic: workers that have not finished the current job */
  /* the current job, written before the generation is published */
  kl_parallel_fn fn;
  void *ctx;
  int64_t n_tasks, grain, chunks;
  int n_chunks;  /* the threads taking part (at most one per chunk) */
  int64_t next;  /* atomic: the first chunk no thread has taken yet */
};

/* Takes chunks of the current job until none is left. */
static void run_chunks(kl_threadpool *pool) {
  for (;;) {
    int64_t c = __atomic_fetch_add(&pool->next, 1, __ATOMIC_RELAXED);
    if (c >= pool->chunks)
      return;
    int64_t begin = c * pool->grain;
    pool->fn(pool->ctx, begin, c + 1 == pool->chunks ? pool->n_tasks : begin + pool->grain);
  }
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Spins until done(arg) or KL_POOL_SPIN_US pass; returns done(arg). */
static bool spin_until(bool (*done)(const kl_threadpool *, uint64_t), const kl_threadpool *pool,
                       uint64_t arg) {
  int64_t deadline = 0;
  for (int i = 0;; i++) {
    if (done(pool, arg))
      return true;
    if ((i & 63) == 0) {
      int64_t t = now_us();
      if (!deadline)
        deadline = t + KL_POOL_SPIN_US;
      else if (t >= deadline)
        return done(pool, arg);
    }
    cpu_relax();
  }
}

static bool new_job(const kl_threadpool *pool, uint64_t seen) {
  return __atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE) != seen ||
         __atomic_load_n(&pool->stop, __ATOMIC_ACQUIRE);
}

static bool all_done(const kl_threadpool *pool, uint64_t unused) {
  (void)unused;
  return __atomic_load_n(&pool->pending, __ATOMIC_ACQUIRE) == 0;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  kl_threadpool *pool = w->pool;
  uint64_t seen = 0;
  for (;;) {
    if (!spin_until(new_job, pool, seen)) {
      pthread_mutex_lock(&pool->mu);
      while (!new_job(pool, seen))
        pthread_cond_wait(&pool->work_cv, &pool->mu);
      pthread_mutex_unlock(&pool->mu);
    }
    if (__atomic_load_n(&pool->stop, __ATOMIC_ACQUIRE))
      break;
    seen = __atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE);
    if (w->index < pool->n_chunks)
      run_chunks(pool);
    if (__atomic_sub_fetch(&pool->pending, 1, __ATOMIC_ACQ_REL) == 0) {
      pthread_mutex_lock(&pool->mu); /* the caller may be about to sleep */
      pthread_cond_signal(&pool->done_cv);
      pthread_mutex_unlock(&pool->mu);
    }
  }
  return NULL;
}

static int online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1)
    return 1;
  return n > KL_THREADPOOL_MAX ? KL_THREADPOOL_MAX : (int)n;
}

kl_status kl_threadpool_create(int n_threads, kl_threadpool **out_pool) {
  *out_pool = NULL;
  if (n_threads < 0 || n_threads > KL_THREADPOOL_MAX)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "thread pool: %d threads requested; give 0 (one per CPU) to %d",
                            n_threads, KL_THREADPOOL_MAX);
  if (n_threads == 0)
    n_threads = online_cpus();
  kl_threadpool *pool = calloc(1, sizeof *pool);
  if (!pool)
    return kl_status_create(KL_ERR_OUT_OF_MEMORY, "thread pool: out of memory");
  pool->n_threads = n_threads;
  if (n_threads > 1) {
    pool->workers = calloc((size_t)(n_threads - 1), sizeof *pool->workers);
    if (!pool->workers) {
      free(pool);
      return kl_status_create(KL_ERR_OUT_OF_MEMORY, "thread pool: out of memory");
    }
  }
  pthread_mutex_init(&pool->mu, NULL);
  pthread_cond_init(&pool->work_cv, NULL);
  pthread_cond_init(&pool->done_cv, NULL);
  for (int i = 0; i < n_threads - 1; i++) {
    worker *w = &pool->workers[i];
    w->pool = pool;
    w->index = i + 1;
    int err = pthread_create(&w->thread, NULL, worker_main, w);
    if (err) {
      kl_threadpool_destroy(pool);
      return kl_status_create(KL_ERR_LIMIT,
                              "thread pool: could not start thread %d of %d (error %d)", i + 2,
                              n_threads, err);
    }
    pool->n_started++;
  }
  *out_pool = pool;
  return NULL;
}

void kl_threadpool_destroy(kl_threadpool *pool) {
  if (!pool)
    return;
  pthread_mutex_lock(&pool->mu);
  __atomic_store_n(&pool->stop, true, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&pool->work_cv);
  pthread_mutex_unlock(&pool->mu);
  for (int i = 0; i < pool->n_started; i++)
    pthread_join(pool->workers[i].thread, NULL);
  pthread_cond_destroy(&pool->done_cv);
  pthread_cond_destroy(&pool->work_cv);
  pthread_mutex_destroy(&pool->mu);
  free(pool->workers);
  free(pool);
}

int kl_threadpool_size(const kl_threadpool *pool) { return pool ? pool->n_threads : 1; }

void kl_parallel_for(kl_threadpool *pool, int64_t n_tasks, int64_t min_chunk, kl_parallel_fn fn,
                     void *ctx) {
  if (n_tasks <= 0)
    return;
  if (min_chunk < 1)
    min_chunk = 1;
  int64_t most = n_tasks / min_chunk; /* chunks that can each have min_chunk tasks */
  int n_chunks = pool ? pool->n_threads : 1;
  if (most < n_chunks)
    n_chunks = (int)most;
  if (n_chunks <= 1) {
    fn(ctx, 0, n_tasks);
    return;
  }
  /* about four chunks per thread, none under min_chunk tasks */
  int64_t grain = n_tasks / ((int64_t)pool->n_threads * KL_POOL_CHUNKS_PER_THREAD);
  if (grain < min_chunk)
    grain = min_chunk;
  pool->fn = fn;
  pool->ctx = ctx;
  pool->n_tasks = n_tasks;
  pool->grain = grain;
  pool->chunks = n_tasks / grain;
  pool->n_chunks = n_chunks;
  __atomic_store_n(&pool->next, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&pool->pending, pool->n_threads - 1, __ATOMIC_RELAXED);
  pthread_mutex_lock(&pool->mu);
  __atomic_add_fetch(&pool->generation, 1, __ATOMIC_RELEASE); /* publishes the job */
  pthread_cond_broadcast(&pool->work_cv);
  pthread_mutex_unlock(&pool->mu);

  run_chunks(pool);

  if (!spin_until(all_done, pool, 0)) {
    pthread_mutex_lock(&pool->mu);
    while (!all_done(pool, 0))
      pthread_cond_wait(&pool->done_cv, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
  }
}
