/* Many threads running one shared model at once must each get the single-threaded answer,
 * bit for bit, with no data race (tools/test.sh builds and runs this under ThreadSanitizer).
 *
 * The model is a small MLP (8x64 -> linear 128, relu, linear 10, softmax) parsed from text IR
 * with fixed weights; one graph and one input tensor are shared by every thread. A mode is one
 * way of running the model (today the interpreter; compiled artifacts are a second mode to
 * add: a setup, a run and a teardown in the modes table).
 * Usage: test_concurrency [MODE|all] [THREADS] [RUNS]   (defaults: all, 8, 1000) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/text.h"
#include "runtime/interp.h"

enum { BATCH = 8, IN = 64, HIDDEN = 128, OUT = 10 };

static const char mlp_text[] =
    "graph(%x : Float(8, 64)):\n"
    "  %w1 : Float(128, 64) = prim::Param[name=\"w1\"]()\n"
    "  %b1 : Float(128) = prim::Param[name=\"b1\"]()\n"
    "  %w2 : Float(10, 128) = prim::Param[name=\"w2\"]()\n"
    "  %b2 : Float(10) = prim::Param[name=\"b2\"]()\n"
    "  %h : Float(8, 128) = aten::linear(%x, %w1, %b1)\n"
    "  %r : Float(8, 128) = aten::relu(%h)\n"
    "  %o : Float(8, 10) = aten::linear(%r, %w2, %b2)\n"
    "  %y : Float(8, 10) = aten::softmax[dim=1](%o)\n"
    "  return (%y)\n";

/* A tensor of the given shape filled with a fixed pseudo-random pattern in [-1, 1). */
static kl_tensor *filled(int rank, const int64_t *shape, unsigned seed) {
  kl_tensor *t = NULL;
  kl_status s = kl_tensor_create(KL_F32, rank, shape, &t);
  if (s) {
    fprintf(stderr, "test_concurrency: %s\n", kl_status_message(s));
    kl_status_destroy(s);
    return NULL;
  }
  float *p = t->data;
  for (int64_t i = 0; i < t->numel; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  return t;
}

/* ---- modes --------------------------------------------------------------------------------- */

typedef struct mode {
  const char *name;
  /* Builds what the threads share from the graph (which outlives it); *out_ctx is passed to
   * run and teardown. */
  kl_status (*setup)(kl_ir_graph *g, void **out_ctx);
  /* One run on the shared input; *out_y is a new reference. Called from many threads at once. */
  kl_status (*run)(void *ctx, kl_tensor *x, kl_tensor **out_y);
  void (*teardown)(void *ctx);
} mode;

static kl_status interp_setup(kl_ir_graph *g, void **out_ctx) {
  *out_ctx = g;
  return NULL;
}
static kl_status interp_run(void *ctx, kl_tensor *x, kl_tensor **out_y) {
  return kl_interp_run(ctx, &x, 1, out_y);
}
static void interp_teardown(void *ctx) { (void)ctx; }

static const mode modes[] = {
    {"interp", interp_setup, interp_run, interp_teardown},
};

/* ---- the threads --------------------------------------------------------------------------- */

typedef struct worker {
  pthread_t thread;
  const mode *m;
  void *ctx;
  kl_tensor *x;
  const kl_tensor *want;
  int runs;
  int mismatches, errors;
  char first_error[256];
} worker;

static void *work(void *arg) {
  worker *w = arg;
  for (int i = 0; i < w->runs; i++) {
    kl_tensor *y = NULL;
    kl_status s = w->m->run(w->ctx, w->x, &y);
    if (s) {
      if (!w->errors++)
        snprintf(w->first_error, sizeof w->first_error, "%s", kl_status_message(s));
      kl_status_destroy(s);
      continue;
    }
    if (y->nbytes != w->want->nbytes || memcmp(y->data, w->want->data, y->nbytes) != 0)
      w->mismatches++;
    kl_tensor_release(y);
  }
  return NULL;
}

/* Runs one mode: the reference answer on this thread, then n_threads x runs at once. */
static int run_mode(const mode *m, kl_ir_graph *g, kl_tensor *x, int n_threads, int runs) {
  void *ctx = NULL;
  kl_status s = m->setup(g, &ctx);
  kl_tensor *want = NULL;
  if (!s)
    s = m->run(ctx, x, &want);
  if (s) {
    fprintf(stderr, "FAIL %s: %s\n", m->name, kl_status_message(s));
    kl_status_destroy(s);
    if (ctx)
      m->teardown(ctx);
    return 1;
  }
  worker *ws = calloc((size_t)n_threads, sizeof *ws);
  int failures = 0, started = 0;
  for (int t = 0; ws && t < n_threads; t++) {
    ws[t] = (worker){.m = m, .ctx = ctx, .x = x, .want = want, .runs = runs};
    if (pthread_create(&ws[t].thread, NULL, work, &ws[t]) != 0) {
      fprintf(stderr, "FAIL %s: cannot start thread %d\n", m->name, t);
      failures++;
      break;
    }
    started++;
  }
  for (int t = 0; t < started; t++) {
    pthread_join(ws[t].thread, NULL);
    if (ws[t].errors || ws[t].mismatches) {
      failures++;
      fprintf(stderr, "FAIL %s thread %d: %d of %d runs failed (first: %s), %d differed from "
              "the single-threaded output\n", m->name, t, ws[t].errors, runs,
              ws[t].errors ? ws[t].first_error : "-", ws[t].mismatches);
    }
  }
  if (!ws)
    failures++;
  free(ws);
  kl_tensor_release(want);
  m->teardown(ctx);
  if (!failures)
    printf("ok %s: %d threads x %d runs, identical outputs\n", m->name, n_threads, runs);
  return failures ? 1 : 0;
}

int main(int argc, char **argv) {
  const char *which = argc > 1 ? argv[1] : "all";
  int n_threads = argc > 2 ? atoi(argv[2]) : 8, runs = argc > 3 ? atoi(argv[3]) : 1000;
  if (n_threads < 1 || runs < 1) {
    fprintf(stderr, "usage: test_concurrency [MODE|all] [THREADS] [RUNS]\n");
    return 2;
  }
  kl_ir_graph *g = NULL;
  kl_status s = kl_ir_parse(mlp_text, sizeof mlp_text - 1, NULL, &g);
  if (s) {
    fprintf(stderr, "FAIL parsing the MLP: %s\n", kl_status_message(s));
    kl_status_destroy(s);
    return 1;
  }
  static const struct {
    const char *name;
    int rank;
    int64_t shape[2];
  } params[] = {{"w1", 2, {HIDDEN, IN}}, {"b1", 1, {HIDDEN}}, {"w2", 2, {OUT, HIDDEN}},
                {"b2", 1, {OUT}}};
  int failures = 0;
  for (size_t i = 0; i < sizeof params / sizeof *params; i++) {
    kl_tensor *t = filled(params[i].rank, params[i].shape, 7u + (unsigned)i);
    if (!t) {
      failures++;
      continue;
    }
    kl_ir_graph_set_weight(g, params[i].name, t); /* the graph takes its own reference */
    kl_tensor_release(t);
  }
  kl_tensor *x = filled(2, (const int64_t[]){BATCH, IN}, 1u);
  if (!x)
    failures++;
  int ran = 0;
  for (size_t i = 0; !failures && i < sizeof modes / sizeof *modes; i++) {
    if (strcmp(which, "all") != 0 && strcmp(which, modes[i].name) != 0)
      continue;
    ran++;
    failures += run_mode(&modes[i], g, x, n_threads, runs);
  }
  if (!failures && !ran) {
    fprintf(stderr, "test_concurrency: no mode named '%s'\n", which);
    failures++;
  }
  kl_tensor_release(x);
  kl_ir_graph_destroy(g);
  return failures ? 1 : 0;
}
