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
#include "example.h"

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

int main(int argc, char **argv) {
  const char *outdir = kl_example_outdir("cnn", argc, argv);
  if (!outdir)
    return 2;
  kl_generator gen;
  kl_generator_init(&gen, 0);
  cnn net;
  bool good = cnn_init(&net, &gen);
  if (good)
    printf("cnn: %d parameter tensors, the first named %s\n", kl_module_param_count(net.params),
           kl_module_param_at(net.params, 0, NULL));
  const int64_t shape[] = {1, 3, 32, 32};
  kl_example ex = {"cnn", cnn_forward, &net, net.params,
                   (int)(sizeof shape / sizeof shape[0]), shape};
  int rc = good ? kl_example_run(&ex, &gen, outdir) : 1;
  kl_module_destroy(net.params);
  return rc;
}
