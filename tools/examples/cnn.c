/* cnn: a small image classifier for one 32x32 RGB image, written define-by-run.
 *
 *   cnn [OUTDIR]   (default: the current directory)
 *
 * Three blocks of conv 3x3 -> batch norm -> ReLU (16, 32 and 64 channels; the first two end
 * with a 2x2 max pool), then adaptive average pooling to 1x1, flatten, a linear head to 10
 * classes and softmax. The module tree names parameters as PyTorch would ("blocks.0.conv.weight").
 * Like mlp, it prints the eager output, saves OUTDIR/cnn.kir, OUTDIR/cnn_input.npy and
 * OUTDIR/cnn_output.npy, and checks the trace on a second image; it exits 1 on any failure. */
#include <stdio.h>
#include <stdlib.h>

#include "frontend/kiln.h"
#include "runtime/npy.h"

#define N_BLOCKS 3

typedef struct block {
  kl_nn_conv2d conv;
  kl_nn_batch_norm2d bn;
  bool pool;
} block;

typedef struct cnn {
  kl_module *params;
  block blocks[N_BLOCKS];
  kl_nn_linear head;
} cnn;

static bool cnn_init(cnn *net, kl_generator *gen) {
  static const int64_t channels[N_BLOCKS + 1] = {3, 16, 32, 64};
  const kl_conv2d_opts same = {.padding = {1, 1}};
  net->params = kl_module_create();
  kl_module *blocks = kl_module_child(net->params, "blocks");
  for (int i = 0; i < N_BLOCKS; i++) {
    char index[16];
    snprintf(index, sizeof index, "%d", i);
    kl_module *m = kl_module_child(blocks, index);
    block *b = &net->blocks[i];
    b->pool = i < N_BLOCKS - 1;
    if (!kl_nn_conv2d_init(&b->conv, m, "conv", channels[i], channels[i + 1], 3, 3, &same, false,
                           gen) ||
        !kl_nn_batch_norm2d_init(&b->bn, m, "bn", channels[i + 1]))
      return false;
    /* Fresh batch norm is the identity; give it statistics as if it had been trained, so the
     * trace and the check have something to compare. */
    float *mean = b->bn.running_mean->data, *var = b->bn.running_var->data;
    float *scale = b->bn.weight->data, *shift = b->bn.bias->data;
    for (int64_t c = 0; c < channels[i + 1]; c++) {
      mean[c] = (float)(0.2 * kl_generator_normal(gen));
      var[c] = (float)(0.5 + kl_generator_uniform(gen));
      scale[c] = (float)(0.8 + 0.4 * kl_generator_uniform(gen));
      shift[c] = (float)(0.1 * kl_generator_normal(gen));
    }
  }
  return kl_nn_linear_init(&net->head, net->params, "head", channels[N_BLOCKS], 10, true, gen);
}

/* (1, 3, 32, 32) -> (1, 10) class probabilities. */
static bool cnn_forward(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs) {
  const cnn *net = ctx;
  const kl_pool2d_opts pool = {.kernel_size = {2, 2}};
  kl_tensor *x = inputs[0];
  for (int i = 0; i < N_BLOCKS; i++) {
    const block *b = &net->blocks[i];
    x = kl_relu(kl_nn_batch_norm2d_forward(&b->bn, kl_nn_conv2d_forward(&b->conv, x)));
    if (b->pool)
      x = kl_max_pool2d(x, &pool); /* 32 -> 16 -> 8 */
  }
  x = kl_flatten(kl_adaptive_avg_pool2d(x, 1, 1), 1, -1); /* (1, 64) */
  outputs[0] = kl_softmax(kl_nn_linear_forward(&net->head, x), 1);
  return outputs[0] != NULL;
}

/* Prints and destroys s; true when there was no error. */
static bool ok(kl_status s, const char *what) {
  if (!s)
    return true;
  fprintf(stderr, "cnn: %s: %s\n", what, kl_status_message(s));
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
    fprintf(stderr, "usage: cnn [OUTDIR]\n");
    return 2;
  }
  const char *outdir = argc > 1 ? argv[1] : ".";
  char kir_path[4096];
  snprintf(kir_path, sizeof kir_path, "%s/cnn.kir", outdir);

  kl_generator gen;
  kl_generator_init(&gen, 0);
  cnn net;
  bool good = cnn_init(&net, &gen);
  if (good)
    printf("cnn: %d parameter tensors, the first named %s\n", kl_module_param_count(net.params),
           kl_module_param_at(net.params, 0, NULL));

  kl_ir_graph *graph = NULL;
  kl_scope_begin();
  kl_tensor *x = kl_randn(&gen, KL_F32, KL_SHAPE(1, 3, 32, 32));
  kl_tensor *y = NULL;
  if (good) {
    printf("eager output:\n");
    good = cnn_forward(&net, &x, &y);
    kl_print(y);
  }
  good = good && write_npy(outdir, "cnn_input.npy", x) && write_npy(outdir, "cnn_output.npy", y);

  good = good && ok(kl_trace_fn(cnn_forward, &net, net.params, 1, &x, 1, &graph), "tracing") &&
         ok(kl_graph_save(graph, kir_path), "saving the trace");
  if (good)
    printf("traced %d nodes into %s\n", kl_ir_graph_node_count(graph), kir_path);

  if (good) {
    kl_tensor *other = kl_randn(&gen, KL_F32, KL_SHAPE(1, 3, 32, 32));
    kl_status check = kl_trace_check(graph, cnn_forward, &net, net.params, 1, &other, 1);
    printf("trace check: %s\n", check ? "FAILED" : "ok");
    good = ok(check, "trace check");
  }
  kl_scope_end();
  kl_ir_graph_destroy(graph);
  kl_module_destroy(net.params);
  return good ? 0 : 1;
}
