/* resnet18: torchvision's ResNet-18 for one RGB image, written define-by-run.
 *
 *   resnet18 [OUTDIR]   (default: the current directory)
 *
 * The structure and parameter names are torchvision's (conv1, bn1, layer1.0.conv1, ...,
 * layer2.0.downsample.0, fc): a 7x7 stride-2 stem with batch norm, ReLU and a 3x3 stride-2 max
 * pool, four stages of two basic blocks (64, 128, 256, 512 channels; stages 2-4 halve the
 * resolution in their first block, whose shortcut is a 1x1 stride-2 conv with batch norm),
 * adaptive average pooling to 1x1 and a linear layer to 1000 classes. Convolutions have no bias,
 * as in torchvision; batch norms get random running statistics, as if trained, so that folding
 * them into the convolutions has real work to do.
 *
 * The image is (1, 3, 224, 224), ImageNet's size (3.6 GFLOP a run; the tests run it a few
 * times, under the sanitizers too, in about 20 seconds). Like cnn, it prints the eager output,
 * saves OUTDIR/resnet18.kir, OUTDIR/resnet18_input.npy and OUTDIR/resnet18_output.npy, and
 * checks the trace on a second image; it exits 1 on any failure. */
#include <stdio.h>
#include <stdlib.h>

#include "frontend/kiln.h"
#include "example.h"

#define IMAGE 224
#define N_STAGES 4
#define BLOCKS_PER_STAGE 2
#define N_CLASSES 1000

typedef struct conv_bn {
  kl_nn_conv2d conv;
  kl_nn_batch_norm2d bn;
} conv_bn;

typedef struct basic_block {
  conv_bn a, b;        /* conv1/bn1, conv2/bn2 */
  conv_bn downsample;  /* downsample.0 / downsample.1, when has_downsample */
  bool has_downsample;
} basic_block;

typedef struct resnet {
  kl_module *params;
  conv_bn stem; /* conv1, bn1 */
  basic_block blocks[N_STAGES][BLOCKS_PER_STAGE];
  kl_nn_linear fc;
} resnet;

/* Fresh batch norm is the identity; give it statistics as a trained network would have. */
static void randomize_bn(kl_nn_batch_norm2d *bn, int64_t channels, kl_generator *gen) {
  float *mean = bn->running_mean->data, *var = bn->running_var->data;
  float *scale = bn->weight->data, *shift = bn->bias->data;
  for (int64_t c = 0; c < channels; c++) {
    mean[c] = (float)(0.1 * kl_generator_normal(gen));
    var[c] = (float)(0.5 + kl_generator_uniform(gen));
    scale[c] = (float)(0.5 + 0.5 * kl_generator_uniform(gen));
    shift[c] = (float)(0.1 * kl_generator_normal(gen));
  }
}

/* A bias-free conv named conv_name and a batch norm named bn_name, both under m. */
static bool conv_bn_init(conv_bn *cb, kl_module *m, const char *conv_name, const char *bn_name,
                         int64_t in, int64_t out, int64_t kernel, int64_t stride,
                         kl_generator *gen) {
  const kl_conv2d_opts opts = {.stride = {stride, stride},
                               .padding = {kernel / 2, kernel / 2}};
  if (!kl_nn_conv2d_init(&cb->conv, m, conv_name, in, out, kernel, kernel, &opts, false, gen) ||
      !kl_nn_batch_norm2d_init(&cb->bn, m, bn_name, out))
    return false;
  randomize_bn(&cb->bn, out, gen);
  return true;
}

static bool resnet_init(resnet *net, kl_generator *gen) {
  static const int64_t widths[N_STAGES] = {64, 128, 256, 512};
  net->params = kl_module_create();
  if (!conv_bn_init(&net->stem, net->params, "conv1", "bn1", 3, 64, 7, 2, gen))
    return false;
  int64_t in = 64;
  for (int s = 0; s < N_STAGES; s++) {
    char stage_name[16];
    snprintf(stage_name, sizeof stage_name, "layer%d", s + 1);
    kl_module *stage = kl_module_child(net->params, stage_name);
    for (int i = 0; i < BLOCKS_PER_STAGE; i++) {
      char index[16];
      snprintf(index, sizeof index, "%d", i);
      kl_module *m = kl_module_child(stage, index);
      basic_block *b = &net->blocks[s][i];
      int64_t out = widths[s], stride = (s > 0 && i == 0) ? 2 : 1;
      if (!conv_bn_init(&b->a, m, "conv1", "bn1", in, out, 3, stride, gen) ||
          !conv_bn_init(&b->b, m, "conv2", "bn2", out, out, 3, 1, gen))
        return false;
      b->has_downsample = stride != 1 || in != out;
      if (b->has_downsample &&
          !conv_bn_init(&b->downsample, kl_module_child(m, "downsample"), "0", "1", in, out, 1,
                        stride, gen))
        return false;
      in = out;
    }
  }
  return kl_nn_linear_init(&net->fc, net->params, "fc", 512, N_CLASSES, true, gen);
}

static kl_tensor *conv_bn_forward(const conv_bn *cb, kl_tensor *x) {
  return kl_nn_batch_norm2d_forward(&cb->bn, kl_nn_conv2d_forward(&cb->conv, x));
}

/* relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)) */
static kl_tensor *block_forward(const basic_block *b, kl_tensor *x) {
  kl_tensor *y = conv_bn_forward(&b->b, kl_relu(conv_bn_forward(&b->a, x)));
  kl_tensor *shortcut = b->has_downsample ? conv_bn_forward(&b->downsample, x) : x;
  return kl_relu(kl_add(y, shortcut));
}

/* (1, 3, IMAGE, IMAGE) -> (1, 1000) logits. */
static bool resnet_forward(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs) {
  const resnet *net = ctx;
  const kl_pool2d_opts pool = {.kernel_size = {3, 3}, .stride = {2, 2}, .padding = {1, 1}};
  kl_tensor *x = kl_relu(conv_bn_forward(&net->stem, inputs[0])); /* (1, 64, IMAGE/2, IMAGE/2) */
  x = kl_max_pool2d(x, &pool);                                      /* (1, 64, IMAGE/4, IMAGE/4) */
  for (int s = 0; s < N_STAGES; s++)
    for (int i = 0; i < BLOCKS_PER_STAGE; i++)
      x = block_forward(&net->blocks[s][i], x);                     /* ... (1, 512, IMAGE/32, ..) */
  x = kl_flatten(kl_adaptive_avg_pool2d(x, 1, 1), 1, -1);           /* (1, 512) */
  outputs[0] = kl_nn_linear_forward(&net->fc, x);
  return outputs[0] != NULL;
}

int main(int argc, char **argv) {
  const char *outdir = kl_example_outdir("resnet18", argc, argv);
  if (!outdir)
    return 2;
  kl_generator gen;
  kl_generator_init(&gen, 0);
  resnet net;
  bool good = resnet_init(&net, &gen);
  if (good)
    printf("resnet18: %d parameter tensors, the first named %s\n",
           kl_module_param_count(net.params), kl_module_param_at(net.params, 0, NULL));
  const int64_t shape[] = {1, 3, IMAGE, IMAGE};
  kl_example ex = {"resnet18", resnet_forward, &net, net.params,
                   (int)(sizeof shape / sizeof shape[0]), shape};
  int rc = good ? kl_example_run(&ex, &gen, outdir) : 1;
  kl_module_destroy(net.params);
  return rc;
}
