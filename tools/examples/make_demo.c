/* make_demo: builds the demo model with the IR API and saves it with its input.
 *
 *   make_demo [MODEL.kir [INPUT.npy]]   (defaults: demo.kir, demo_input.npy)
 *
 * The model is a small digit-classifier-shaped CNN for one 28x28 grey image:
 *   conv 1->8 3x3 + batch_norm + relu + max_pool 2x2, conv 8->16 3x3 + batch_norm + relu +
 *   max_pool 2x2, flatten, linear 784->32 + gelu, linear 32->10, softmax.
 * Weights come from a fixed-seed generator with PyTorch's default init ranges (uniform within
 * +-1/sqrt(fan_in)), so every run writes the same bytes; the input is a drawn ring ("0"),
 * normalized as MNIST images usually are. It also runs the model once and prints the result,
 * as a check that what it saved runs. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ir/ir.h"
#include "ir/kir.h"
#include "runtime/interp.h"
#include "runtime/npy.h"

/* ---- deterministic numbers ------------------------------------------------------------ */

static uint64_t rng_state = 0x6b696c6e2d64656dULL; /* fixed seed */

/* splitmix64: small, fast, and the same on every platform. */
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double uniform(double lo, double hi) {
  return lo + (hi - lo) * ((double)(rng_next() >> 11) / 9007199254740992.0);
}

/* ---- building the graph --------------------------------------------------------------- */

static kl_tensor *new_tensor(int rank, const int64_t *shape) {
  kl_tensor *t = NULL;
  kl_status s = kl_tensor_create(KL_F32, rank, shape, &t);
  if (s) {
    fprintf(stderr, "make_demo: %s\n", kl_status_message(s));
    exit(1);
  }
  return t;
}

static kl_tensor *uniform_tensor(int rank, const int64_t *shape, double lo, double hi) {
  kl_tensor *t = new_tensor(rank, shape);
  float *data = t->data;
  for (int64_t i = 0; i < t->numel; i++)
    data[i] = (float)uniform(lo, hi);
  return t;
}

/* A prim::Param node whose weight is t; the graph takes over the caller's reference. */
static kl_ir_value *add_weight(kl_ir_graph *g, const char *name, kl_tensor *t) {
  kl_ir_node *n = kl_ir_block_add_node(g->top, KL_OP_PARAM, NULL, 0, 1);
  kl_ir_node_set_string(n, "name", name);
  kl_ir_value_set_name(n->outputs[0], name);
  /* A Param's type is declared, not computed: it is the type of its weight. */
  n->outputs[0]->type = kl_ir_type_of_tensor(t);
  kl_ir_graph_set_weight(g, name, t);
  kl_tensor_release(t);
  return n->outputs[0];
}

/* Weight (out, fan_in...) and bias (out) with PyTorch's default ranges. */
static void add_dense_weights(kl_ir_graph *g, const char *prefix, int rank, const int64_t *shape,
                              kl_ir_value **out_w, kl_ir_value **out_b) {
  char name[64];
  int64_t fan_in = 1;
  for (int d = 1; d < rank; d++)
    fan_in *= shape[d];
  double bound = 1.0 / sqrt((double)fan_in);
  snprintf(name, sizeof name, "%s.weight", prefix);
  *out_w = add_weight(g, name, uniform_tensor(rank, shape, -bound, bound));
  snprintf(name, sizeof name, "%s.bias", prefix);
  *out_b = add_weight(g, name, uniform_tensor(1, shape, -bound, bound));
}

/* Batch-norm statistics as a trained network might have them, not the identity of a fresh one. */
static void add_bn_weights(kl_ir_graph *g, const char *prefix, int64_t channels,
                           kl_ir_value *out[4]) {
  static const char *const parts[4] = {"weight", "bias", "running_mean", "running_var"};
  static const double lo[4] = {0.8, -0.1, -0.2, 0.5}, hi[4] = {1.2, 0.1, 0.2, 1.5};
  for (int i = 0; i < 4; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s.%s", prefix, parts[i]);
    out[i] = add_weight(g, name, uniform_tensor(1, &channels, lo[i], hi[i]));
  }
}

/* Appends op(inputs) named name; attributes are set by the caller before finish(). */
static kl_ir_node *add_op(kl_ir_graph *g, kl_op op, kl_ir_value **inputs, int n_inputs,
                          const char *name) {
  kl_ir_node *n = kl_ir_block_add_node(g->top, op, inputs, n_inputs, 1);
  kl_ir_value_set_name(n->outputs[0], name);
  return n;
}

static kl_ir_value *finish(kl_ir_node *n) {
  kl_status s = kl_ir_node_infer(n);
  if (s) {
    fprintf(stderr, "make_demo: %s\n", kl_status_message(s));
    exit(1);
  }
  return n->outputs[0];
}

/* conv 3x3 (padding 1) + batch_norm + relu + max_pool 2x2: one stage of the feature extractor. */
static kl_ir_value *conv_stage(kl_ir_graph *g, kl_ir_value *x, int stage, int64_t cin,
                               int64_t cout) {
  char prefix[32], name[32];
  kl_ir_value *w, *b, *bn[4];
  const int64_t wshape[4] = {cout, cin, 3, 3};
  snprintf(prefix, sizeof prefix, "conv%d", stage);
  add_dense_weights(g, prefix, 4, wshape, &w, &b);
  snprintf(prefix, sizeof prefix, "bn%d", stage);
  add_bn_weights(g, prefix, cout, bn);

  snprintf(name, sizeof name, "conv%d", stage);
  kl_ir_node *conv = add_op(g, KL_OP_CONV2D, (kl_ir_value *[]){x, w, b}, 3, name);
  kl_ir_node_set_ints(conv, "padding", (const int64_t[]){1, 1}, 2);
  kl_ir_value *y = finish(conv);

  snprintf(name, sizeof name, "bn%d", stage);
  kl_ir_node *norm = add_op(g, KL_OP_BATCH_NORM, (kl_ir_value *[]){y, bn[0], bn[1], bn[2], bn[3]},
                            5, name);
  kl_ir_node_set_float(norm, "eps", 1e-5);
  y = finish(norm);

  snprintf(name, sizeof name, "relu%d", stage);
  y = finish(add_op(g, KL_OP_RELU, &y, 1, name));

  snprintf(name, sizeof name, "pool%d", stage);
  kl_ir_node *pool = add_op(g, KL_OP_MAX_POOL2D, &y, 1, name);
  kl_ir_node_set_ints(pool, "kernel_size", (const int64_t[]){2, 2}, 2);
  return finish(pool);
}

static kl_ir_graph *build_model(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  kl_ir_type image = kl_ir_type_make(KL_F32, 4, (const int64_t[]){1, 1, 28, 28});
  kl_ir_value *x = kl_ir_block_add_param(g->top, "image", &image);

  kl_ir_value *y = conv_stage(g, x, 1, 1, 8);  /* (1, 8, 14, 14) */
  y = conv_stage(g, y, 2, 8, 16);              /* (1, 16, 7, 7) */

  kl_ir_node *flat = add_op(g, KL_OP_FLATTEN, &y, 1, "flat");
  kl_ir_node_set_int(flat, "start_dim", 1);
  y = finish(flat); /* (1, 784) */

  kl_ir_value *w, *b;
  add_dense_weights(g, "fc1", 2, (const int64_t[]){32, 784}, &w, &b);
  y = finish(add_op(g, KL_OP_LINEAR, (kl_ir_value *[]){y, w, b}, 3, "fc1"));
  y = finish(add_op(g, KL_OP_GELU, &y, 1, "gelu"));
  add_dense_weights(g, "fc2", 2, (const int64_t[]){10, 32}, &w, &b);
  y = finish(add_op(g, KL_OP_LINEAR, (kl_ir_value *[]){y, w, b}, 3, "logits"));

  kl_ir_node *softmax = add_op(g, KL_OP_SOFTMAX, &y, 1, "probs");
  kl_ir_node_set_int(softmax, "dim", 1);
  kl_ir_block_add_return(g->top, finish(softmax));
  return g;
}

/* A ring drawn on 28x28 like a handwritten zero, then (x - 0.1307) / 0.3081 as for MNIST. */
static kl_tensor *build_input(void) {
  kl_tensor *t = new_tensor(4, (const int64_t[]){1, 1, 28, 28});
  float *px = t->data;
  for (int r = 0; r < 28; r++) {
    for (int c = 0; c < 28; c++) {
      double dy = (r - 13.5) / 9.0, dx = (c - 13.5) / 6.5;
      double dist = fabs(sqrt(dx * dx + dy * dy) - 1.0); /* 0 on the ring */
      double ink = dist < 0.25 ? 1.0 - dist / 0.25 * 0.6 : 0.0;
      px[r * 28 + c] = (float)((ink - 0.1307) / 0.3081);
    }
  }
  return t;
}

int main(int argc, char **argv) {
  const char *model_path = argc > 1 ? argv[1] : "demo.kir";
  const char *input_path = argc > 2 ? argv[2] : "demo_input.npy";
  kl_ir_graph *g = build_model();
  kl_tensor *input = build_input();
  kl_tensor *probs = NULL;

  kl_status s = kl_ir_verify(g);
  if (!s)
    s = kl_kir_save(g, model_path);
  if (!s)
    s = kl_npy_write(input_path, input);
  if (!s)
    s = kl_interp_run(g, &input, 1, &probs);
  int rc = 0;
  if (s) {
    fprintf(stderr, "make_demo: %s\n", kl_status_message(s));
    kl_status_destroy(s);
    rc = 1;
  } else {
    const float *p = probs->data;
    int best = 0;
    for (int i = 1; i < 10; i++)
      if (p[i] > p[best])
        best = i;
    printf("wrote %s (%d nodes) and %s; class %d has the highest probability, %.4f\n",
           model_path, kl_ir_graph_node_count(g), input_path, best, p[best]);
  }
  kl_tensor_release(probs);
  kl_tensor_release(input);
  kl_ir_graph_destroy(g);
  return rc;
}
