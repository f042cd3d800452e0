/* The artifact runtime (see artifact_rt.h): contexts, argument checks and the helpers the
 * generated body calls. Linked into every compiled model; libc and libpthread only. */
#include "artifact_rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtype.h"
#include "status.h"
#include "threadpool.h"

#define KL_ART_ERR_MAX 1024

/* KILN_PROFILE: seconds and calls per call site (a step's or region's `what`, one string per
 * site in the generated code), in a table hashed by the string's address. */
typedef struct prof_site {
  const char *what;
  double seconds;
  int64_t calls;
} prof_site;

typedef struct prof_table {
  prof_site *sites;
  int64_t cap, n, runs;
} prof_table;

struct kl_art_ctx {
  const kl_art_model *model;
  kl_tensor *tensors; /* model->n_tensors headers */
  void *workspace;
  kl_threadpool *pool;
  prof_table *prof; /* NULL unless KILN_PROFILE was set at create */
  char err[KL_ART_ERR_MAX];
};

const char *kl_art_status_message(int code) {
  switch (code) {
  case KL_ARTIFACT_OK: return "ok";
  case KL_ARTIFACT_ERR_INVALID_ARGUMENT: return "invalid argument";
  case KL_ARTIFACT_ERR_OUT_OF_MEMORY:
    return "out of memory: the workspace or a thread could not be had";
  case KL_ARTIFACT_ERR_RUNTIME: return "runtime error";
  case KL_ARTIFACT_ERR_NO_DEVICE: return "no usable device";
  case KL_ARTIFACT_ERR_UNSUPPORTED: return "unsupported";
  case KL_ARTIFACT_ERR_INTERNAL: return "internal error";
  default: return "unknown status code";
  }
}

static void set_error(kl_art_ctx *ctx, const char *fmt, const char *a, const char *b) {
  snprintf(ctx->err, sizeof ctx->err, fmt, a, b);
}

/* A pool of n threads (0: one); NULL when n is 1. */
static int make_pool(int32_t n_threads, kl_threadpool **out_pool) {
  *out_pool = NULL;
  if (n_threads < 0)
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  if (n_threads <= 1)
    return KL_ARTIFACT_OK;
  kl_status s = kl_threadpool_create(n_threads, out_pool);
  if (s) {
    kl_status_destroy(s);
    *out_pool = NULL;
    return KL_ARTIFACT_ERR_OUT_OF_MEMORY;
  }
  return KL_ARTIFACT_OK;
}

/* ---- KILN_PROFILE ---- */

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static prof_table *prof_create(void) {
  const char *env = getenv("KILN_PROFILE");
  if (!env || !env[0] || !strcmp(env, "0"))
    return NULL;
  prof_table *t = calloc(1, sizeof *t);
  if (t) {
    t->cap = 256;
    t->sites = calloc((size_t)t->cap, sizeof *t->sites);
    if (!t->sites) {
      free(t);
      t = NULL;
    }
  }
  return t; /* out of memory: no profile, the model still runs */
}

static void prof_add(prof_table *t, const char *what, double seconds) {
  if (!what)
    what = "(unnamed)";
  if (2 * (t->n + 1) > t->cap) { /* grow: rehash into twice the slots */
    prof_site *grown = calloc((size_t)(2 * t->cap), sizeof *grown);
    if (!grown)
      return;
    for (int64_t i = 0; i < t->cap; i++) {
      if (!t->sites[i].what)
        continue;
      uintptr_t h = (uintptr_t)t->sites[i].what >> 4;
      while (grown[h % (uintptr_t)(2 * t->cap)].what)
        h++;
      grown[h % (uintptr_t)(2 * t->cap)] = t->sites[i];
    }
    free(t->sites);
    t->sites = grown;
    t->cap *= 2;
  }
  uintptr_t h = (uintptr_t)what >> 4;
  prof_site *site;
  while ((site = &t->sites[h % (uintptr_t)t->cap])->what && site->what != what)
    h++;
  if (!site->what) {
    site->what = what;
    t->n++;
  }
  site->seconds += seconds;
  site->calls++;
}

static int by_seconds(const void *a, const void *b) {
  double x = ((const prof_site *)a)->seconds, y = ((const prof_site *)b)->seconds;
  return (x < y) - (x > y);
}

static void prof_print(const kl_art_ctx *ctx) {
  prof_table *t = ctx->prof;
  int64_t n = 0;
  double total = 0;
  for (int64_t i = 0; i < t->cap; i++)
    if (t->sites[i].what) {
      t->sites[n++] = t->sites[i];
      total += t->sites[i].seconds;
    }
  qsort(t->sites, (size_t)n, sizeof *t->sites, by_seconds);
  double runs = t->runs > 0 ? (double)t->runs : 1.0;
  fprintf(stderr, "kiln profile of %s: %lld runs, %.3f ms a run in %lld steps and regions\n",
          ctx->model->desc->name, (long long)t->runs, total * 1e3 / runs, (long long)n);
  fprintf(stderr, "%10s %6s %6s  %s\n", "ms/run", "%", "calls", "step");
  for (int64_t i = 0; i < n; i++)
    fprintf(stderr, "%10.4f %6.2f %6.1f  %s\n", t->sites[i].seconds * 1e3 / runs,
            total > 0 ? 100.0 * t->sites[i].seconds / total : 0.0,
            (double)t->sites[i].calls / runs, t->sites[i].what);
}

void kl_art_destroy(void *p) {
  kl_art_ctx *ctx = p;
  if (!ctx)
    return;
  if (ctx->prof) {
    prof_print(ctx);
    free(ctx->prof->sites);
    free(ctx->prof);
  }
  kl_threadpool_destroy(ctx->pool);
  free(ctx->workspace);
  free(ctx->tensors);
  free(ctx);
}

int kl_art_create(const kl_art_model *model, const kl_artifact_options *opts, void **out_ctx) {
  if (!out_ctx)
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  *out_ctx = NULL;
  if (!model || model->n_tensors < 0)
    return KL_ARTIFACT_ERR_INTERNAL;
  int32_t n_threads = 0;
  if (opts) {
    if (opts->struct_size < sizeof(uint32_t) + sizeof(int32_t))
      return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
    n_threads = opts->n_threads;
  }
  if (n_threads < 0)
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  kl_art_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx)
    return KL_ARTIFACT_ERR_OUT_OF_MEMORY;
  ctx->model = model;
  size_t n = (size_t)model->n_tensors;
  ctx->tensors = calloc(n ? n : 1, sizeof *ctx->tensors);
  uint64_t ws = model->workspace_bytes;
  size_t ws_alloc = 0;
  if (ws > 0 && ws <= SIZE_MAX - 63)
    ws_alloc = ((size_t)ws + 63) & ~(size_t)63;
  if (ws > 0 && ws_alloc == 0) {
    kl_art_destroy(ctx);
    return KL_ARTIFACT_ERR_OUT_OF_MEMORY;
  }
  if (ws_alloc)
    ctx->workspace = aligned_alloc(64, ws_alloc);
  if (!ctx->tensors || (ws_alloc && !ctx->workspace)) {
    kl_art_destroy(ctx);
    return KL_ARTIFACT_ERR_OUT_OF_MEMORY;
  }
  for (size_t i = 0; i < n; i++) {
    const kl_art_tensor_desc *d = &model->tensors[i];
    kl_tensor *t = &ctx->tensors[i];
    if (d->rank < 0 || d->rank > KL_MAX_RANK) {
      kl_art_destroy(ctx);
      return KL_ARTIFACT_ERR_INTERNAL;
    }
    t->dtype = (kl_dtype)d->dtype;
    t->rank = (int)d->rank;
    t->numel = 1;
    for (int k = 0; k < t->rank; k++) {
      t->shape[k] = d->shape[k];
      t->numel *= d->shape[k]; /* sizes were checked at compile time */
    }
    t->nbytes = (size_t)t->numel * kl_dtype_size(t->dtype);
    t->refcount = 1;
    t->owns_data = false;
    switch (d->kind) {
    case KL_ART_WORKSPACE:
      if ((uint64_t)d->where + t->nbytes > ws) {
        kl_art_destroy(ctx);
        return KL_ARTIFACT_ERR_INTERNAL;
      }
      t->data = (char *)ctx->workspace + d->where;
      break;
    case KL_ART_WEIGHT: t->data = (void *)model->weights[d->where]; break;
    default: t->data = NULL; break;
    }
  }
  int rc = make_pool(n_threads, &ctx->pool);
  if (rc) {
    kl_art_destroy(ctx);
    return rc;
  }
  ctx->prof = prof_create();
  *out_ctx = ctx;
  return KL_ARTIFACT_OK;
}

int kl_art_create_n(const kl_art_model *model, int32_t n_threads, void **out_ctx) {
  kl_artifact_options opts = {sizeof opts, n_threads, 0, NULL};
  return kl_art_create(model, &opts, out_ctx);
}

int kl_art_set_threads(void *p, int32_t n_threads) {
  kl_art_ctx *ctx = p;
  if (!ctx)
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  if (n_threads < 0) {
    set_error(ctx, "%s%s", "set_threads: the thread count must be >= 0", "");
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  }
  kl_threadpool *pool;
  int rc = make_pool(n_threads, &pool);
  if (rc) {
    set_error(ctx, "%s%s", "set_threads: the worker threads could not be started", "");
    return rc;
  }
  kl_threadpool_destroy(ctx->pool);
  ctx->pool = pool;
  ctx->err[0] = '\0';
  return KL_ARTIFACT_OK;
}

const char *kl_art_error_message(const void *p) {
  const kl_art_ctx *ctx = p;
  return ctx ? ctx->err : "no context (NULL)";
}

int kl_art_run(void *p, const void *const *inputs, void *const *outputs, uint32_t flags) {
  kl_art_ctx *ctx = p;
  if (!ctx)
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  const kl_artifact_descriptor *desc = ctx->model->desc;
  if (flags & KL_ARTIFACT_RUN_DEVICE_POINTERS) {
    set_error(ctx, "%s%s", "run: device pointers were given to a CPU artifact", "");
    return KL_ARTIFACT_ERR_UNSUPPORTED;
  }
  if ((desc->n_inputs > 0 && !inputs) || (desc->n_outputs > 0 && !outputs)) {
    set_error(ctx, "run: the %s array is NULL%s", inputs ? "outputs" : "inputs", "");
    return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
  }
  for (int i = 0; i < desc->n_inputs; i++)
    if (!inputs[i] && desc->inputs[i].nbytes > 0) {
      set_error(ctx, "run: input \"%s\" (%s) is NULL", desc->inputs[i].c_name,
                desc->inputs[i].name);
      return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
    }
  for (int i = 0; i < desc->n_outputs; i++)
    if (!outputs[i] && desc->outputs[i].nbytes > 0) {
      set_error(ctx, "run: output \"%s\" (%s) is NULL", desc->outputs[i].c_name,
                desc->outputs[i].name);
      return KL_ARTIFACT_ERR_INVALID_ARGUMENT;
    }
  for (int64_t i = 0; i < ctx->model->n_tensors; i++) {
    const kl_art_tensor_desc *d = &ctx->model->tensors[i];
    if (d->kind == KL_ART_INPUT)
      ctx->tensors[i].data = (void *)inputs[d->where];
    else if (d->kind == KL_ART_OUTPUT)
      ctx->tensors[i].data = outputs[d->where];
  }
  int rc = ctx->model->body(ctx);
  if (rc == KL_ARTIFACT_OK)
    ctx->err[0] = '\0';
  if (ctx->prof)
    ctx->prof->runs++;
  return rc;
}

/* ---- what the body calls ---- */

#define KL_ART_SMALL 16

int kl_art_step(kl_art_ctx *ctx, const void *fn, const void *params, const int32_t *ids,
                int32_t n_in, int32_t n_out, const char *what) {
  kl_tensor *small[KL_ART_SMALL] = {0};
  int32_t n = n_in + n_out;
  kl_tensor **ts = n <= KL_ART_SMALL ? small : malloc((size_t)n * sizeof *ts);
  if (!ts) {
    set_error(ctx, "%s: %s", what, "out of memory");
    return KL_ARTIFACT_ERR_OUT_OF_MEMORY;
  }
  for (int32_t i = 0; i < n; i++)
    ts[i] = ids[i] < 0 ? NULL : &ctx->tensors[ids[i]];
  kl_step_env env = {ctx->pool};
  kl_step_fn step;
  memcpy(&step, &fn, sizeof step); /* an object pointer to a function pointer, as dlsym */
  double t0 = ctx->prof ? now_seconds() : 0;
  kl_status s = step(&env, params, ts, n_in, ts + n_in, n_out);
  if (ctx->prof)
    prof_add(ctx->prof, what, now_seconds() - t0);
  if (ts != small)
    free(ts);
  if (!s)
    return KL_ARTIFACT_OK;
  int rc = kl_status_code_of(s) == KL_ERR_OUT_OF_MEMORY ? KL_ARTIFACT_ERR_OUT_OF_MEMORY
                                                        : KL_ARTIFACT_ERR_RUNTIME;
  set_error(ctx, "%s: %s", what, kl_status_message(s));
  kl_status_destroy(s);
  return rc;
}

typedef struct region_call {
  kl_art_region_fn fn;
  void *const *bufs;
} region_call;

static void region_trampoline(void *p, int64_t begin, int64_t end) {
  const region_call *c = p;
  c->fn(c->bufs, begin, end);
}

int kl_art_region(kl_art_ctx *ctx, const void *fn, const int32_t *ids, int32_t n_bufs,
                  int64_t rows, int64_t min_rows, const char *what) {
  void *small[KL_ART_SMALL] = {0};
  void **bufs = n_bufs <= KL_ART_SMALL ? small : malloc((size_t)n_bufs * sizeof *bufs);
  region_call c;
  memcpy(&c.fn, &fn, sizeof c.fn);
  if (!bufs) {
    set_error(ctx, "%s%s", "an elementwise region: out of memory", "");
    return KL_ARTIFACT_ERR_OUT_OF_MEMORY;
  }
  for (int32_t i = 0; i < n_bufs; i++)
    bufs[i] = ctx->tensors[ids[i]].data;
  c.bufs = bufs;
  double t0 = ctx->prof ? now_seconds() : 0;
  if (rows > 0) {
    if (!ctx->pool)
      c.fn(bufs, 0, rows);
    else
      kl_parallel_for(ctx->pool, rows, min_rows < 1 ? 1 : min_rows, region_trampoline, &c);
  }
  if (ctx->prof)
    prof_add(ctx->prof, what, now_seconds() - t0);
  if (bufs != small)
    free(bufs);
  return KL_ARTIFACT_OK;
}

int kl_art_cond(kl_art_ctx *ctx, int32_t id) {
  const kl_tensor *t = &ctx->tensors[id];
  if (t->numel < 1)
    return 0;
  switch (t->dtype) {
  case KL_F32: return *(const float *)t->data != 0.0f;
  case KL_F64: return *(const double *)t->data != 0.0;
  case KL_I32: return *(const int32_t *)t->data != 0;
  case KL_I64: return *(const int64_t *)t->data != 0;
  case KL_F16:
  case KL_BF16: return (*(const uint16_t *)t->data & 0x7fffu) != 0; /* +-0 is false */
  default: return *(const uint8_t *)t->data != 0;
  }
}

int64_t kl_art_load_i64(kl_art_ctx *ctx, int32_t id) {
  const kl_tensor *t = &ctx->tensors[id];
  return t->numel < 1 ? 0 : kl_dtype_load_i64(t->dtype, t->data, 0);
}

void kl_art_store_i64(kl_art_ctx *ctx, int32_t id, int64_t v) {
  kl_tensor *t = &ctx->tensors[id];
  if (t->numel >= 1 && t->dtype == KL_I64)
    *(int64_t *)t->data = v;
}

int kl_art_copy(kl_art_ctx *ctx, int32_t dst, int32_t src) {
  kl_tensor *d = &ctx->tensors[dst], *s = &ctx->tensors[src];
  if (d->nbytes && d->data != s->data)
    memmove(d->data, s->data, d->nbytes);
  return KL_ARTIFACT_OK;
}
