/* Tests for frontend/trace.c: the exact text IR of small traced programs (parameters hoisted
 * first, constants, multi-output ops, outputs that are inputs), .kir round trips and the
 * interpreter reproducing eager outputs bit for bit, trace warnings at the caller's line,
 * kl_trace_check catching data-dependent branches and wrong outputs, and every misuse an error
 * that leaves no trace behind. Run under the sanitizers, every path must also be leak-free. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "frontend/kiln.h"
#include "ir/kir.h"
#include "ir/text.h"
#include "runtime/interp.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static char *print_graph(const kl_ir_graph *g) {
  char *text = NULL;
  size_t len;
  kl_status s = kl_ir_print(g, NULL, &text, &len);
  if (s) {
    fprintf(stderr, "print: %s\n", kl_status_message(s));
    kl_status_destroy(s);
    return NULL;
  }
  return text;
}

/* Compares g's text with expected; on failure the whole text is printed. */
#define CHECK_GRAPH(g, expected)      \
  do {                                \
    char *text_ = print_graph(g);     \
    CHECK_STREQ(text_, expected);     \
    free(text_);                      \
  } while (0)

static bool same_bits(const kl_tensor *a, const kl_tensor *b) {
  return a && b && a->dtype == b->dtype && kl_tensor_same_shape(a, b) && a->nbytes == b->nbytes &&
         (a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0);
}

static kl_tensor *vec_f32(int rank, const int64_t *shape, const float *values) {
  return kl_from_buffer(KL_F32, rank, shape, values);
}

/* Registers t (ours, no scope open) with m, which keeps its own reference; t stays borrowed. */
static kl_tensor *add_param(kl_module *m, const char *name, kl_tensor *t) {
  kl_tensor *p = kl_module_param(m, name, t);
  kl_tensor_release(t);
  return p;
}

/* Warnings and errors are recorded, not printed, so that tests can check where they came from. */
typedef struct recorder {
  int n_warnings;
  char file[256];
  int line;
  char message[512];
  int n_errors;
} recorder;

static void on_warning(void *ctx, const char *file, int line, const char *message) {
  recorder *r = ctx;
  r->n_warnings++;
  snprintf(r->file, sizeof r->file, "%s", file ? file : "");
  r->line = line;
  snprintf(r->message, sizeof r->message, "%s", message ? message : "");
}

static void on_error(void *ctx, kl_status error) {
  (void)error;
  ((recorder *)ctx)->n_errors++;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static char tmp_path[64];

/* ---- the text of traced programs -------------------------------------------------------- */

/* Two linear layers: fc2's weight is first used after fc's ops, yet its prim::Param goes with
 * the others at the top. Weights are copies; the trace runs again bit for bit, also from .kir. */
static void test_linear_relu(void) {
  kl_module *root = kl_module_create();
  kl_module *fc = kl_module_child(root, "fc"), *fc2 = kl_module_child(root, "fc2");
  const float w1[3 * 4] = {0.5f, -1, 2, 0.25f, 1, 1, -1, 0, -0.5f, 0.75f, 1.5f, -2};
  const float b1[3] = {0.1f, -0.2f, 0.3f};
  const float w2[2 * 3] = {1, -1, 0.5f, 2, 0.125f, -3};
  kl_tensor *weight = add_param(fc, "weight", vec_f32(KL_SHAPE(3, 4), w1));
  kl_tensor *bias = add_param(fc, "bias", vec_f32(KL_SHAPE(3), b1));
  kl_tensor *weight2 = add_param(fc2, "weight", vec_f32(KL_SHAPE(2, 3), w2));
  CHECK(weight && bias && weight2);

  const float xv[2 * 4] = {1, 2, 3, 4, -1, 0.5f, -2, 1};
  kl_tensor *x = vec_f32(KL_SHAPE(2, 4), xv);
  kl_scope_begin();
  const char *names[] = {"input"};
  CHECK_OK(kl_trace_begin(root, 1, &x, names));
  CHECK(kl_tracing());
  kl_tensor *h = kl_relu(kl_linear(x, weight, bias));
  kl_tensor *y = kl_linear(h, weight2, NULL);
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_trace_end(1, &y, &g));
  CHECK(!kl_tracing());
  CHECK(g != NULL);
  CHECK_GRAPH(g, "graph(%input : Float(2, 4)):\n"
                 "  %fc.weight : Float(3, 4) = prim::Param[name=\"fc.weight\"]()\n"
                 "  %fc.bias : Float(3) = prim::Param[name=\"fc.bias\"]()\n"
                 "  %fc2.weight : Float(2, 3) = prim::Param[name=\"fc2.weight\"]()\n"
                 "  %1 : Float(2, 3) = aten::linear(%input, %fc.weight, %fc.bias)\n"
                 "  %2 : Float(2, 3) = aten::relu(%1)\n"
                 "  %3 : Float(2, 2) = aten::linear(%2, %fc2.weight)\n"
                 "  return (%3)\n");
  /* the graph holds copies of the parameters, so changing them later changes nothing */
  kl_tensor *gw = g ? kl_ir_graph_weight(g, "fc.weight") : NULL;
  CHECK(gw && gw != weight && same_bits(gw, weight));
  CHECK(g && same_bits(kl_ir_graph_weight(g, "fc2.weight"), weight2));

  kl_tensor *out = NULL;
  CHECK_OK(kl_interp_run(g, &x, 1, &out));
  CHECK(same_bits(out, y));
  kl_tensor_release(out);

  /* .kir round trip: same text, same weights, same outputs */
  CHECK_OK(kl_graph_save(g, tmp_path));
  kl_ir_graph *back = NULL;
  CHECK_OK(kl_kir_load(tmp_path, &back));
  if (back) {
    char *a = print_graph(g), *b = print_graph(back);
    CHECK_STREQ(b, a);
    free(a);
    free(b);
    CHECK(same_bits(kl_ir_graph_weight(back, "fc.bias"), bias));
    out = NULL;
    CHECK_OK(kl_interp_run(back, &x, 1, &out));
    CHECK(same_bits(out, y));
    kl_tensor_release(out);
  }
  kl_ir_graph_destroy(back);
  kl_ir_graph_destroy(g);
  kl_scope_end();
  kl_tensor_release(x);
  kl_module_destroy(root);
}

/* Tensors that are neither inputs nor parameters become constants holding copies: one created
 * before the trace, one created inside it; a module given to the trace does not turn tensors
 * that merely look like parameters into parameters. */
static void test_constants(void) {
  kl_tensor *x = kl_from_buffer(KL_F32, KL_SHAPE(3), (const float[]){1, -2, 3});
  kl_tensor *before = kl_from_buffer(KL_F32, KL_SHAPE(3), (const float[]){0.5f, 0.25f, 2});
  kl_scope_begin();
  CHECK_OK(kl_trace_begin(NULL, 1, &x, NULL));
  kl_tensor *a = kl_mul(x, before);
  kl_tensor *two = kl_full(KL_F32, KL_SHAPE(1), 2.0);
  kl_tensor *y = kl_add(a, two);
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_trace_end(1, &y, &g));
  CHECK_GRAPH(g, "graph(%x : Float(3)):\n"
                 "  %1 : Float(3) = prim::Constant[value=Float(3){0.5, 0.25, 2.0}]()\n"
                 "  %2 : Float(3) = aten::mul(%x, %1)\n"
                 "  %3 : Float(1) = prim::Constant[value=Float(1){2.0}]()\n"
                 "  %4 : Float(3) = aten::add(%2, %3)\n"
                 "  return (%4)\n");
  /* the constant is a copy: writing into the tensor afterwards does not change the graph */
  ((float *)before->data)[0] = 100;
  kl_tensor *out = NULL;
  CHECK_OK(kl_interp_run(g, &x, 1, &out));
  CHECK(same_bits(out, y));
  kl_tensor_release(out);
  kl_ir_graph_destroy(g);
  kl_scope_end();
  kl_tensor_release(x);
  kl_tensor_release(before);
}

/* A multi-output op, outputs that are graph inputs, an output used twice, and an output that
 * no op produced (a constant). */
static void test_split_and_outputs(void) {
  kl_tensor *x = kl_arange(KL_F32, 0, 10, 1);
  kl_tensor *z = kl_zeros(KL_I64, KL_SHAPE(2));
  kl_scope_begin();
  kl_tensor *inputs[2] = {x, z};
  CHECK_OK(kl_trace_begin(NULL, 2, inputs, NULL));
  kl_tensor *pieces[3] = {NULL, NULL, NULL};
  CHECK(kl_split(x, 3, (const int64_t[]){2, 3, 5}, 0, pieces));
  kl_tensor *made = kl_ones(KL_F32, KL_SHAPE(2));
  kl_tensor *outputs[6] = {pieces[2], z, pieces[0], x, pieces[2], made};
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_trace_end(6, outputs, &g));
  CHECK_GRAPH(g, "graph(%x : Float(10), %x1 : Long(2)):\n"
                 "  %1 : Float(2), %2 : Float(3), %3 : Float(5) = "
                 "aten::split[sizes=[2, 3, 5], dim=0](%x)\n"
                 "  %4 : Float(2) = prim::Constant[value=Float(2){1.0, 1.0}]()\n"
                 "  return (%3, %x1, %1, %x, %3, %4)\n");
  kl_tensor *out[6] = {0};
  CHECK_OK(kl_interp_run(g, inputs, 2, out));
  for (int i = 0; i < 6; i++)
    CHECK(same_bits(out[i], outputs[i]));
  for (int i = 0; i < 6; i++)
    kl_tensor_release(out[i]);
  kl_ir_graph_destroy(g);
  kl_scope_end();
  kl_tensor_release(x);
  kl_tensor_release(z);
}

/* A parameter used twice is one prim::Param; one returned directly is hoisted too, even with
 * no other node to go before; reading a parameter's values warns (they can be reloaded). */
static void test_param_reuse(void) {
  recorder r = {0};
  kl_set_warning_handler(on_warning, &r);
  kl_module *root = kl_module_create();
  kl_tensor *scale = add_param(root, "scale", vec_f32(KL_SHAPE(2), (const float[]){2, -3}));
  kl_tensor *unused = add_param(root, "unused", vec_f32(KL_SHAPE(1), (const float[]){5}));
  kl_tensor *x = vec_f32(KL_SHAPE(2), (const float[]){0.5f, 4});
  kl_scope_begin();

  CHECK_OK(kl_trace_begin(root, 1, &x, NULL));
  kl_tensor *outputs[2] = {scale, x};
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_trace_end(2, outputs, &g));
  CHECK_GRAPH(g, "graph(%x : Float(2)):\n"
                 "  %scale : Float(2) = prim::Param[name=\"scale\"]()\n"
                 "  return (%scale, %x)\n");
  kl_ir_graph_destroy(g);

  CHECK_OK(kl_trace_begin(root, 1, &x, NULL));
  kl_tensor *y = kl_add(kl_mul(x, scale), scale);
  CHECK(kl_item(unused) == 5.0); /* not used in the trace: quiet */
  CHECK_EQ_INT(r.n_warnings, 0);
  kl_data(scale); int line = __LINE__;
  CHECK_EQ_INT(r.n_warnings, 1);
  CHECK_EQ_INT(r.line, line);
  g = NULL;
  CHECK_OK(kl_trace_end(1, &y, &g));
  CHECK_GRAPH(g, "graph(%x : Float(2)):\n"
                 "  %scale : Float(2) = prim::Param[name=\"scale\"]()\n"
                 "  %1 : Float(2) = aten::mul(%x, %scale)\n"
                 "  %2 : Float(2) = aten::add(%1, %scale)\n"
                 "  return (%2)\n");
  CHECK(g && g->n_weights == 1);
  kl_ir_graph_destroy(g);
  kl_scope_end();
  kl_tensor_release(x);
  kl_module_destroy(root);
  kl_set_warning_handler(NULL, NULL);
}

/* Hundreds of tensors: the tensor map grows and every one is still found. */
static void test_long_chain(void) {
  kl_tensor *x = kl_from_buffer(KL_F32, KL_SHAPE(2), (const float[]){1, 2});
  kl_tensor *step = kl_from_buffer(KL_F32, KL_SHAPE(2), (const float[]){0.5f, -0.25f});
  kl_scope_begin();
  CHECK_OK(kl_trace_begin(NULL, 1, &x, NULL));
  kl_tensor *y = x;
  for (int i = 0; i < 500; i++)
    y = i % 2 ? kl_add(y, step) : kl_mul(y, step);
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_trace_end(1, &y, &g));
  CHECK_EQ_INT(g ? kl_ir_graph_node_count(g) : 0, 501); /* one constant for step */
  kl_tensor *out = NULL;
  CHECK_OK(kl_interp_run(g, &x, 1, &out));
  CHECK(same_bits(out, y));
  kl_tensor_release(out);
  kl_ir_graph_destroy(g);
  kl_scope_end();
  kl_tensor_release(x);
  kl_tensor_release(step);
}

/* Tensors the trace saw are released when it ends: a trace holds no references afterwards. */
static void test_references_released(void) {
  kl_tensor *x = kl_from_buffer(KL_F32, KL_SHAPE(2), (const float[]){1, 2});
  kl_tensor *c = kl_from_buffer(KL_F32, KL_SHAPE(2), (const float[]){3, 4});
  int x_refs = x->refcount, c_refs = c->refcount;
  CHECK_OK(kl_trace_begin(NULL, 1, &x, NULL));
  CHECK(x->refcount > x_refs);
  kl_tensor *y = kl_add(x, c); /* no scope: the caller owns y */
  CHECK(c->refcount > c_refs);
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_trace_end(1, &y, &g));
  CHECK_EQ_INT(x->refcount, x_refs);
  CHECK_EQ_INT(c->refcount, c_refs);
  CHECK_EQ_INT(y->refcount, 1);
  kl_tensor_release(y);
  kl_ir_graph_destroy(g);

  /* the same after an abort */
  CHECK_OK(kl_trace_begin(NULL, 1, &x, NULL));
  y = kl_add(x, c);
  kl_trace_abort();
  CHECK(!kl_tracing());
  CHECK_EQ_INT(x->refcount, x_refs);
  CHECK_EQ_INT(c->refcount, c_refs);
  CHECK_EQ_INT(y->refcount, 1);
  kl_tensor_release(y);
  kl_trace_abort(); /* nothing to abort: harmless */
  kl_tensor_release(x);
  kl_tensor_release(c);
}

/* ---- warnings ------------------------------------------------------------------------------ */

static void test_warnings(void) {
  recorder r = {0};
  kl_set_warning_handler(on_warning, &r);
  kl_tensor *x = kl_from_buffer(KL_F32, KL_SHAPE(2), (const float[]){1, -2});
  kl_tensor *untraced = kl_from_buffer(KL_F32, KL_SHAPE(1), (const float[]){7});
  kl_scope_begin();

  /* outside a trace nothing warns */
  kl_tensor *s0 = kl_sum(x, 0, NULL, false);
  CHECK(kl_item(s0) == -1.0);
  CHECK(kl_data(x) != NULL);
  CHECK_EQ_INT(r.n_warnings, 0);

  CHECK_OK(kl_trace_begin(NULL, 1, &x, NULL));
  kl_tensor *s = kl_sum(x, 0, NULL, false);
  double v = kl_item(s); int item_line = __LINE__;
  CHECK(v == -1.0);
  CHECK_EQ_INT(r.n_warnings, 1);
  CHECK_EQ_INT(r.line, item_line);
  CHECK(ends_with(r.file, "test_trace.c"));
  CHECK(strstr(r.message, "kl_item") != NULL);
  CHECK(strstr(r.message, "trace") != NULL);

  kl_data(x); int data_line = __LINE__; /* a graph input counts too */
  CHECK_EQ_INT(r.n_warnings, 2);
  CHECK_EQ_INT(r.line, data_line);
  CHECK(strstr(r.message, "kl_data") != NULL);

  /* a tensor the trace has not seen, and a constant (its value is in the graph as it is) */
  CHECK(kl_item(untraced) == 7.0);
  kl_tensor *c = kl_mul(x, untraced);
  CHECK(kl_item(untraced) == 7.0);
  CHECK(kl_data(c) != NULL);
  int data2_line = __LINE__ - 1;
  CHECK_EQ_INT(r.n_warnings, 3);
  CHECK_EQ_INT(r.line, data2_line);
  kl_trace_abort();

  /* after the trace, reading the same tensor is quiet again */
  CHECK(kl_item(s) == -1.0);
  CHECK_EQ_INT(r.n_warnings, 3);
  kl_scope_end();
  kl_tensor_release(x);
  kl_tensor_release(untraced);
  kl_set_warning_handler(NULL, NULL);
}

/* ---- kl_trace_check ----------------------------------------------------------------------- */

static bool straight_line(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs) {
  kl_tensor *bias = ctx;
  outputs[0] = kl_sigmoid(kl_add(kl_mul(inputs[0], inputs[1]), bias));
  outputs[1] = kl_amax(inputs[0], 1, (const int64_t[]){-1}, true);
  return outputs[0] && outputs[1];
}

/* The Python-style branch a trace cannot see: only the path taken is recorded. */
static bool branchy(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs) {
  (void)ctx;
  kl_tensor *x = inputs[0];
  if (kl_item(kl_sum(x, 0, NULL, false)) > 0)
    outputs[0] = kl_relu(x);
  else
    outputs[0] = kl_neg(x);
  return outputs[0] != NULL;
}

/* The eager result is changed behind the graph's back: the graph cannot reproduce it. */
static bool scribbler(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs) {
  (void)ctx;
  outputs[0] = kl_relu(inputs[0]);
  if (!outputs[0])
    return false;
  ((float *)kl_data(outputs[0]))[1] += 0.5f;
  return true;
}

/* Both values are computed; which one is returned depends on a value. */
static bool picky(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs) {
  (void)ctx;
  kl_tensor *a = kl_relu(inputs[0]), *b = kl_neg(inputs[0]);
  outputs[0] = kl_item(kl_sum(inputs[0], 0, NULL, false)) > 0 ? a : b;
  return outputs[0] != NULL;
}

/* The same ops, but which one feeds the last depends on a value. */
static bool rewired(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs) {
  (void)ctx;
  kl_tensor *a = kl_relu(inputs[0]), *b = kl_neg(inputs[0]);
  kl_tensor *pick = kl_item(kl_sum(inputs[0], 0, NULL, false)) > 0 ? a : b;
  outputs[0] = kl_mul(pick, inputs[0]);
  return outputs[0] != NULL;
}

/* A constant computed from an input's value. */
static bool scaled(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs) {
  (void)ctx;
  double m = kl_item(kl_amax(inputs[0], 0, NULL, false));
  outputs[0] = kl_div(inputs[0], kl_scalar(KL_F32, m));
  return outputs[0] != NULL;
}

static bool failing(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs) {
  (void)ctx;
  outputs[0] = kl_matmul(inputs[0], inputs[0]); /* (2, 3) @ (2, 3): a shape error */
  outputs[0] = kl_matmul(outputs[0], kl_ones(KL_F32, KL_SHAPE(2, 3)));
  return outputs[0] != NULL;
}

static void test_trace_check(void) {
  recorder r = {0};
  kl_set_warning_handler(on_warning, &r);
  kl_set_error_handler(on_error, &r);
  kl_tensor *bias = kl_from_buffer(KL_F32, KL_SHAPE(3), (const float[]){0.1f, 0.2f, -0.3f});
  kl_tensor *a = kl_from_buffer(KL_F32, KL_SHAPE(2, 3), (const float[]){1, 2, 3, 4, 5, 6});
  kl_tensor *b = kl_from_buffer(KL_F32, KL_SHAPE(2, 3), (const float[]){-1, 0, 1, 2, -3, 0.5f});
  kl_tensor *c = kl_from_buffer(KL_F32, KL_SHAPE(2, 3), (const float[]){9, -8, 7, -6, 5, -4});
  kl_tensor *pos = kl_from_buffer(KL_F32, KL_SHAPE(3), (const float[]){1, -0.5f, 2});
  kl_tensor *neg = kl_from_buffer(KL_F32, KL_SHAPE(3), (const float[]){-1, 0.5f, -2});
  kl_tensor *pos2 = kl_from_buffer(KL_F32, KL_SHAPE(3), (const float[]){3, 1, -1});
  kl_tensor *wide = kl_from_buffer(KL_F32, KL_SHAPE(4), (const float[]){1, 2, 3, 4});

  /* straight-line code passes on other inputs */
  kl_tensor *ab[2] = {a, b}, *ca[2] = {c, a};
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_trace_fn(straight_line, bias, NULL, 2, ab, 2, &g));
  CHECK_OK(kl_trace_check(g, straight_line, bias, NULL, 2, ca, 2));
  CHECK_ERR(kl_trace_check(g, straight_line, bias, NULL, 1, ca, 2), KL_ERR_INVALID_ARGUMENT,
            "2 inputs");
  /* the check's own trace must not leak into the thread */
  CHECK(!kl_tracing());
  kl_ir_graph_destroy(g);

  /* a data-dependent branch is caught when the other inputs take the other path... */
  g = NULL;
  CHECK_OK(kl_trace_fn(branchy, NULL, NULL, 1, &pos, 1, &g));
  CHECK_GRAPH(g, "graph(%x : Float(3)):\n"
                 "  %1 : Float() = aten::sum(%x)\n"
                 "  %2 : Float(3) = aten::relu(%x)\n"
                 "  return (%2)\n");
  CHECK(r.n_warnings >= 1); /* kl_item during the trace */
  CHECK_ERR(kl_trace_check(g, branchy, NULL, NULL, 1, &neg, 1), KL_ERR_INVALID_ARGUMENT,
            "differ at node 2: this run recorded aten::neg(%x), the trace has aten::relu(%x)");
  /* ...and, like PyTorch's check, not when they take the same one */
  CHECK_OK(kl_trace_check(g, branchy, NULL, NULL, 1, &pos2, 1));
  /* other shapes are fine for the graph comparison but the static graph cannot run them */
  CHECK_ERR(kl_trace_check(g, branchy, NULL, NULL, 1, &wide, 1), KL_ERR_INVALID_ARGUMENT,
            "running the trace");
  kl_ir_graph_destroy(g);

  /* eager outputs the graph cannot reproduce */
  g = NULL;
  CHECK_OK(kl_trace_fn(scribbler, NULL, NULL, 1, &pos, 1, &g));
  CHECK_ERR(kl_trace_check(g, scribbler, NULL, NULL, 1, &neg, 1), KL_ERR_INVALID_ARGUMENT,
            "output 0 of the trace differs from the eager run in 1 of 3 elements: largest "
            "error 0.5 at [1]");
  kl_ir_graph_destroy(g);

  /* an output chosen by value */
  g = NULL;
  CHECK_OK(kl_trace_fn(picky, NULL, NULL, 1, &pos, 1, &g));
  CHECK_ERR(kl_trace_check(g, picky, NULL, NULL, 1, &neg, 1), KL_ERR_INVALID_ARGUMENT,
            "output 0 is %2 in this run, %1 in the trace");
  kl_ir_graph_destroy(g);

  g = NULL;
  CHECK_OK(kl_trace_fn(rewired, NULL, NULL, 1, &pos, 1, &g));
  CHECK_ERR(kl_trace_check(g, rewired, NULL, NULL, 1, &neg, 1), KL_ERR_INVALID_ARGUMENT,
            "differ at node 4: this run recorded aten::mul(%2, %x), the trace has "
            "aten::mul(%1, %x); input 0 comes from elsewhere");
  kl_ir_graph_destroy(g);

  /* a constant computed from values */
  g = NULL;
  CHECK_OK(kl_trace_fn(scaled, NULL, NULL, 1, &pos, 1, &g));
  CHECK_ERR(kl_trace_check(g, scaled, NULL, NULL, 1, &pos2, 1), KL_ERR_INVALID_ARGUMENT,
            "the constant's values differ");
  kl_ir_graph_destroy(g);

  /* a program that fails: the error says so, and nothing is left behind */
  g = NULL;
  int errors = r.n_errors;
  CHECK_ERR(kl_trace_fn(failing, NULL, NULL, 1, &a, 1, &g), KL_ERR_INVALID_ARGUMENT,
            "disagree");
  CHECK(g == NULL);
  CHECK(r.n_errors > errors);
  CHECK(!kl_tracing());
  CHECK_ERR(kl_trace_fn(NULL, NULL, NULL, 1, &a, 1, &g), KL_ERR_INVALID_ARGUMENT, NULL);
  CHECK_ERR(kl_trace_fn(branchy, NULL, NULL, 1, &a, 0, &g), KL_ERR_INVALID_ARGUMENT, NULL);
  CHECK_ERR(kl_trace_check(NULL, branchy, NULL, NULL, 1, &a, 1), KL_ERR_INVALID_ARGUMENT, NULL);

  kl_tensor *all[] = {bias, a, b, c, pos, neg, pos2, wide};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    kl_tensor_release(all[i]);
  kl_set_warning_handler(NULL, NULL);
  kl_set_error_handler(NULL, NULL);
}

/* ---- misuse -------------------------------------------------------------------------------- */

static void *other_thread(void *arg) {
  *(bool *)arg = kl_tracing();
  return NULL;
}

static void test_errors(void) {
  kl_tensor *x = kl_from_buffer(KL_F32, KL_SHAPE(2), (const float[]){1, 2});
  kl_tensor *y = kl_from_buffer(KL_F32, KL_SHAPE(2), (const float[]){3, 4});
  kl_ir_graph *g = (kl_ir_graph *)&g; /* must be set to NULL by a failing end */

  CHECK_ERR(kl_trace_end(1, &x, &g), KL_ERR_INVALID_ARGUMENT, "no trace is active");
  CHECK(g == NULL);
  CHECK_ERR(kl_trace_begin(NULL, 1, NULL, NULL), KL_ERR_INVALID_ARGUMENT, "NULL input array");
  kl_tensor *with_null[2] = {x, NULL};
  CHECK_ERR(kl_trace_begin(NULL, 2, with_null, NULL), KL_ERR_INVALID_ARGUMENT, "input 1 is NULL");
  CHECK_ERR(kl_trace_begin(NULL, -1, &x, NULL), KL_ERR_INVALID_ARGUMENT, NULL);
  kl_tensor *twice[2] = {x, x};
  CHECK_ERR(kl_trace_begin(NULL, 2, twice, NULL), KL_ERR_INVALID_ARGUMENT, "same tensor");
  kl_tensor *xy[2] = {x, y};
  const char *dup_names[] = {"a", "a"}, *null_names[] = {"a", NULL};
  CHECK_ERR(kl_trace_begin(NULL, 2, xy, dup_names), KL_ERR_INVALID_ARGUMENT, "both named \"a\"");
  CHECK_ERR(kl_trace_begin(NULL, 2, xy, null_names), KL_ERR_INVALID_ARGUMENT, "input 1 is NULL");
  CHECK(!kl_tracing());

  /* nested begin fails and leaves the outer trace running */
  CHECK_OK(kl_trace_begin(NULL, 1, &x, NULL));
  CHECK_ERR(kl_trace_begin(NULL, 1, &y, NULL), KL_ERR_INVALID_ARGUMENT, "already active");
  CHECK(kl_tracing());
  bool seen = true;
  pthread_t th;
  CHECK(pthread_create(&th, NULL, other_thread, &seen) == 0);
  pthread_join(th, NULL);
  CHECK(!seen); /* the trace belongs to this thread only */
  kl_tensor *z = kl_neg(x);
  kl_ir_graph *g2 = NULL;
  CHECK_OK(kl_trace_end(1, &z, &g2));
  CHECK_GRAPH(g2, "graph(%x : Float(2)):\n"
                  "  %1 : Float(2) = aten::neg(%x)\n"
                  "  return (%1)\n");
  kl_ir_graph_destroy(g2);
  kl_tensor_release(z);

  /* an op that fails inside a trace leaves nothing behind in the graph */
  recorder r = {0};
  kl_set_error_handler(on_error, &r);
  kl_tensor *wrong = kl_from_buffer(KL_F32, KL_SHAPE(3), (const float[]){1, 2, 3});
  CHECK_OK(kl_trace_begin(NULL, 1, &x, NULL));
  CHECK(kl_add(x, wrong) == NULL);
  CHECK_EQ_INT(r.n_errors, 1);
  z = kl_relu(x);
  g2 = NULL;
  CHECK_OK(kl_trace_end(1, &z, &g2));
  CHECK_GRAPH(g2, "graph(%x : Float(2)):\n"
                  "  %1 : Float(2) = aten::relu(%x)\n"
                  "  return (%1)\n");
  kl_ir_graph_destroy(g2);
  kl_tensor_release(z);
  kl_tensor_release(wrong);
  kl_set_error_handler(NULL, NULL);

  /* a failing end abandons the trace */
  kl_tensor *nothing = NULL;
  CHECK_OK(kl_trace_begin(NULL, 1, &x, NULL));
  z = kl_neg(x);
  CHECK_ERR(kl_trace_end(1, &nothing, &g), KL_ERR_INVALID_ARGUMENT, "output 0 is NULL");
  CHECK(!kl_tracing());
  CHECK_OK(kl_trace_begin(NULL, 1, &x, NULL));
  CHECK_ERR(kl_trace_end(0, &x, &g), KL_ERR_INVALID_ARGUMENT, "at least one output");
  CHECK(!kl_tracing());
  CHECK_ERR(kl_trace_end(1, &x, &g), KL_ERR_INVALID_ARGUMENT, "no trace is active");
  kl_tensor_release(z);

  CHECK_ERR(kl_graph_save(NULL, tmp_path), KL_ERR_INVALID_ARGUMENT, NULL);
  kl_tensor_release(x);
  kl_tensor_release(y);
}

int main(void) {
  strcpy(tmp_path, "/tmp/kiln_test_trace_XXXXXX");
  int fd = mkstemp(tmp_path);
  if (fd < 0) {
    perror("mkstemp");
    return 1;
  }
  close(fd);
  test_linear_relu();
  test_constants();
  test_split_and_outputs();
  test_param_reuse();
  test_long_chain();
  test_references_released();
  test_warnings();
  test_trace_check();
  test_errors();
  unlink(tmp_path);
  return check_finish();
}
