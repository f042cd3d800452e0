/* transformer: one transformer encoder layer on a (1, 16, 64) sequence, written op by op.
 *
 *   transformer [OUTDIR]   (default: the current directory)
 *
 * The layer is PyTorch's TransformerEncoderLayer in its default (post-norm) order:
 *   x = norm1(x + attention(x)),  x = norm2(x + linear2(gelu(linear1(x))))
 * with 4-head self-attention spelled out the way the math reads: project q, k and v, split
 * the 64 features into 4 heads of 16, softmax(q k^T / sqrt(16)) v per head, merge the heads
 * and project the result. Like mlp, it prints the eager output, saves OUTDIR/transformer.kir,
 * OUTDIR/transformer_input.npy and OUTDIR/transformer_output.npy, and checks the trace on a
 * second input; it exits 1 on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "frontend/kiln.h"
#include "example.h"

#define SEQ 16
#define D_MODEL 64
#define N_HEADS 4
#define HEAD_DIM (D_MODEL / N_HEADS)
#define D_FF 256

typedef struct encoder_layer {
  kl_module *params;
  kl_nn_linear q_proj, k_proj, v_proj, out_proj; /* under "self_attn" */
  kl_nn_layer_norm norm1, norm2;
  kl_nn_linear linear1, linear2;
} encoder_layer;

static bool encoder_init(encoder_layer *layer, kl_generator *gen) {
  layer->params = kl_module_create();
  kl_module *attn = kl_module_child(layer->params, "self_attn");
  const int64_t normalized[] = {D_MODEL};
  return kl_nn_linear_init(&layer->q_proj, attn, "q_proj", D_MODEL, D_MODEL, true, gen) &&
         kl_nn_linear_init(&layer->k_proj, attn, "k_proj", D_MODEL, D_MODEL, true, gen) &&
         kl_nn_linear_init(&layer->v_proj, attn, "v_proj", D_MODEL, D_MODEL, true, gen) &&
         kl_nn_linear_init(&layer->out_proj, attn, "out_proj", D_MODEL, D_MODEL, true, gen) &&
         kl_nn_layer_norm_init(&layer->norm1, layer->params, "norm1", 1, normalized) &&
         kl_nn_layer_norm_init(&layer->norm2, layer->params, "norm2", 1, normalized) &&
         kl_nn_linear_init(&layer->linear1, layer->params, "linear1", D_MODEL, D_FF, true, gen) &&
         kl_nn_linear_init(&layer->linear2, layer->params, "linear2", D_FF, D_MODEL, true, gen);
}

/* (1, SEQ, D_MODEL) -> (1, N_HEADS, SEQ, HEAD_DIM) */
static kl_tensor *split_heads(kl_tensor *x) {
  return kl_transpose(kl_reshape(x, KL_SHAPE(1, SEQ, N_HEADS, HEAD_DIM)), 1, 2);
}

static kl_tensor *self_attention(const encoder_layer *layer, kl_tensor *x) {
  kl_tensor *q = split_heads(kl_nn_linear_forward(&layer->q_proj, x));
  kl_tensor *k = split_heads(kl_nn_linear_forward(&layer->k_proj, x));
  kl_tensor *v = split_heads(kl_nn_linear_forward(&layer->v_proj, x));
  /* scores (1, heads, SEQ, SEQ) = q @ k^T / sqrt(HEAD_DIM) */
  kl_tensor *scores = kl_matmul(q, kl_transpose(k, -2, -1));
  scores = kl_mul(scores, kl_scalar(KL_F32, 1.0 / sqrt((double)HEAD_DIM)));
  kl_tensor *heads = kl_matmul(kl_softmax(scores, -1), v); /* (1, heads, SEQ, HEAD_DIM) */
  kl_tensor *merged = kl_reshape(kl_transpose(heads, 1, 2), KL_SHAPE(1, SEQ, D_MODEL));
  return kl_nn_linear_forward(&layer->out_proj, merged);
}

static bool encoder_forward(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs) {
  const encoder_layer *layer = ctx;
  kl_tensor *x = inputs[0];
  x = kl_nn_layer_norm_forward(&layer->norm1, kl_add(x, self_attention(layer, x)));
  kl_tensor *ff = kl_nn_linear_forward(
      &layer->linear2, kl_gelu(kl_nn_linear_forward(&layer->linear1, x), false));
  outputs[0] = kl_nn_layer_norm_forward(&layer->norm2, kl_add(x, ff));
  return outputs[0] != NULL;
}

int main(int argc, char **argv) {
  const char *outdir = kl_example_outdir("transformer", argc, argv);
  if (!outdir)
    return 2;
  kl_generator gen;
  kl_generator_init(&gen, 0);
  encoder_layer layer;
  bool good = encoder_init(&layer, &gen);
  const int64_t shape[] = {1, SEQ, D_MODEL};
  kl_example ex = {"transformer", encoder_forward, &layer, layer.params,
                   (int)(sizeof shape / sizeof shape[0]), shape};
  int rc = good ? kl_example_run(&ex, &gen, outdir) : 1;
  kl_module_destroy(layer.params);
  return rc;
}
