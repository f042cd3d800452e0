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
#include "example.h"

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

int main(int argc, char **argv) {
  const char *outdir = kl_example_outdir("mlp", argc, argv);
  if (!outdir)
    return 2;
  kl_generator gen;
  kl_generator_init(&gen, 0);
  mlp net;
  net.params = kl_module_create();
  bool good = kl_nn_linear_init(&net.fc1, net.params, "fc1", 10, 5, true, &gen) &&
              kl_nn_linear_init(&net.fc2, net.params, "fc2", 5, 2, true, &gen);
  const int64_t shape[] = {1, 10};
  kl_example ex = {"mlp", mlp_forward, &net, net.params,
                   (int)(sizeof shape / sizeof shape[0]), shape};
  int rc = good ? kl_example_run(&ex, &gen, outdir) : 1;
  kl_module_destroy(net.params);
  return rc;
}
