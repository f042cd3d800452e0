/* mlp: the smallest define-by-run program, Linear(10, 5) -> ReLU -> Linear(5, 2).
 *
 *   mlp [OUTDIR]   (default: the current directory)
 *
 * It runs the model eagerly and prints the result, traces the same code into a graph and
 * saves it as OUTDIR/mlp.kir, writes the input and the eager output as OUTDIR/mlp_input.npy
 * and OUTDIR/mlp_output.npy (so `kiln run mlp.kir --input mlp_input.npy` can be compared with
 * it), and checks the trace on a second input. It exits 1 if anything fails. */
#include <stdio.h>
#include <stdlib.h>

#include "frontend/kiln.h"
#include "runtime/npy.h"

typedef struct mlp {
  kl_module *params;
  kl_nn_linear fc1, fc2;
} mlp;

/* The model, written once: run eagerly, traced, and checked with the same function. */
static bool mlp_forward(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs) {
  const mlp *net = ctx;
  kl_tensor *h = kl_relu(kl_nn_linear_forward(&net->fc1, inputs[0]));
  outputs[0] = kl_nn_linear_forward(&net->fc2, h);
  return outputs[0] != NULL;
}

/* Prints and destroys s; true when there was no error. */
static bool ok(kl_status s, const char *what) {
  if (!s)
    return true;
  fprintf(stderr, "mlp: %s: %s\n", what, kl_status_message(s));
  kl_status_destroy(s);
  return false;
}

static bool write_npy(const char *outdir, const char *file, const kl_tensor *t) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", outdir, file);
  return ok(kl_npy_write(path, t), "writing the .npy file");
}

int main(int argc, char **argv) {
  if (argc > 2) {
    fprintf(stderr, "usage: mlp [OUTDIR]\n");
    return 2;
  }
  const char *outdir = argc > 1 ? argv[1] : ".";
  char kir_path[4096];
  snprintf(kir_path, sizeof kir_path, "%s/mlp.kir", outdir);

  kl_generator gen;
  kl_generator_init(&gen, 0);
  mlp net;
  net.params = kl_module_create();
  bool good = kl_nn_linear_init(&net.fc1, net.params, "fc1", 10, 5, true, &gen) &&
              kl_nn_linear_init(&net.fc2, net.params, "fc2", 5, 2, true, &gen);

  kl_ir_graph *graph = NULL;
  kl_scope_begin();
  kl_tensor *x = kl_randn(&gen, KL_F32, KL_SHAPE(1, 10));
  kl_tensor *y = NULL;
  if (good) {
    printf("eager output:\n");
    good = mlp_forward(&net, &x, &y);
    kl_print(y);
  }
  good = good && write_npy(outdir, "mlp_input.npy", x) && write_npy(outdir, "mlp_output.npy", y);

  good = good && ok(kl_trace_fn(mlp_forward, &net, net.params, 1, &x, 1, &graph), "tracing") &&
         ok(kl_graph_save(graph, kir_path), "saving the trace");
  if (good)
    printf("traced %d nodes into %s\n", kl_ir_graph_node_count(graph), kir_path);

  if (good) {
    kl_tensor *other = kl_randn(&gen, KL_F32, KL_SHAPE(1, 10));
    kl_status check = kl_trace_check(graph, mlp_forward, &net, net.params, 1, &other, 1);
    printf("trace check: %s\n", check ? "FAILED" : "ok");
    good = ok(check, "trace check");
  }
  kl_scope_end();
  kl_ir_graph_destroy(graph);
  kl_module_destroy(net.params);
  return good ? 0 : 1;
}
