/* The shared part of the define-by-run examples: eager run, .npy files, trace, trace check. */
#include "example.h"

#include <stdio.h>

#include "runtime/npy.h"

const char *kl_example_outdir(const char *name, int argc, char **argv) {
  if (argc > 2) {
    fprintf(stderr, "usage: %s [OUTDIR]\n", name);
    return NULL;
  }
  return argc > 1 ? argv[1] : ".";
}

/* Prints and destroys s; true when there was no error. */
static bool ok(const kl_example *ex, kl_status s, const char *what) {
  if (!s)
    return true;
  fprintf(stderr, "%s: %s: %s\n", ex->name, what, kl_status_message(s));
  kl_status_destroy(s);
  return false;
}

static bool write_npy(const kl_example *ex, const char *outdir, const char *suffix,
                      const kl_tensor *t) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s_%s.npy", outdir, ex->name, suffix);
  return ok(ex, kl_npy_write(path, t), "writing the .npy file");
}

int kl_example_run(const kl_example *ex, kl_generator *gen, const char *outdir) {
  char kir_path[4096];
  snprintf(kir_path, sizeof kir_path, "%s/%s.kir", outdir, ex->name);
  kl_ir_graph *graph = NULL;
  kl_scope_begin();
  kl_tensor *x = kl_randn(gen, KL_F32, ex->input_rank, ex->input_shape);
  kl_tensor *y = NULL;
  printf("eager output:\n");
  bool good = x && ex->forward(ex->model, &x, &y);
  kl_print(y);
  good = good && write_npy(ex, outdir, "input", x) && write_npy(ex, outdir, "output", y);

  good = good &&
         ok(ex, kl_trace_fn(ex->forward, ex->model, ex->params, 1, &x, 1, &graph), "tracing") &&
         ok(ex, kl_graph_save(graph, kir_path), "saving the trace");
  if (good)
    printf("traced %d nodes into %s\n", kl_ir_graph_node_count(graph), kir_path);

  if (good) {
    kl_tensor *other = kl_randn(gen, KL_F32, ex->input_rank, ex->input_shape);
    kl_status check = kl_trace_check(graph, ex->forward, ex->model, ex->params, 1, &other, 1);
    printf("trace check: %s\n", check ? "FAILED" : "ok");
    good = ok(ex, check, "trace check");
  }
  kl_scope_end();
  kl_ir_graph_destroy(graph);
  return good ? 0 : 1;
}
