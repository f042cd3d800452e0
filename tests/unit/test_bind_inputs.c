/* Tests for binding graph inputs to values at compile time (passes/bind_inputs.c, kiln
 * compile --bind): the input becomes a constant of the same name and leaves the graph's
 * inputs, a symbolic dim takes the value's size everywhere, a large value becomes a weight,
 * and a wrong name, dtype, shape or size out of a symbol's bounds is an error saying which. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/interp.h"

static kl_ir_graph *parse(const char *text) {
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &g));
  return g;
}

static kl_tensor *filled(kl_dtype dtype, int rank, const int64_t *shape, double value) {
  kl_tensor *t = NULL;
  CHECK_OK(kl_tensor_create(dtype, rank, shape, &t));
  for (int64_t i = 0; t && i < t->numel; i++)
    kl_dtype_store_f64(dtype, t->data, (size_t)i, value);
  return t;
}

static char *print_graph(const kl_ir_graph *g) {
  char *text = NULL;
  size_t size = 0;
  CHECK_OK(kl_ir_print(g, NULL, &text, &size));
  return text;
}

static const char add_ir[] = "graph(%x : Float(2, 3), %y : Float(2, 3)):\n"
                             "  %z : Float(2, 3) = aten::add(%x, %y)\n"
                             "  return (%z)\n";

static void test_bind_small(void) {
  kl_ir_graph *g = parse(add_ir);
  if (!g)
    return;
  kl_tensor *y = filled(KL_F32, 2, (const int64_t[]){2, 3}, 0.5);
  CHECK_OK(kl_pass_bind_input(g, "y", y, "y.npy"));
  kl_tensor_release(y);
  CHECK_OK(kl_ir_verify(g));
  CHECK_EQ_INT(g->top->n_params, 1);
  CHECK_STREQ(g->top->params[0]->name, "x");
  CHECK(g->top->params[0]->index == 0);
  char *text = print_graph(g);
  CHECK(text && strstr(text, "graph(%x : Float(2, 3)):\n  %y : Float(2, 3) = prim::Constant["));
  free(text);
  kl_tensor *x = filled(KL_F32, 2, (const int64_t[]){2, 3}, 1.0);
  kl_tensor *out[1] = {NULL};
  CHECK_OK(kl_interp_run(g, &x, 1, out));
  CHECK(out[0] && ((float *)out[0]->data)[5] == 1.5f);
  kl_tensor_release(out[0]);
  kl_tensor_release(x);
  kl_ir_graph_destroy(g);
}

/* The first input, and one the graph also returns: later inputs move down, returns follow. */
static void test_bind_first_and_returned(void) {
  kl_ir_graph *g = parse("graph(%a : Long(2), %b : Float(2)):\n"
                         "  %c : Float(2) = aten::neg(%b)\n"
                         "  return (%a, %c)\n");
  if (!g)
    return;
  kl_tensor *a = filled(KL_I64, 1, (const int64_t[]){2}, 7);
  CHECK_OK(kl_pass_bind_input(g, "a", a, NULL));
  kl_tensor_release(a);
  CHECK_OK(kl_ir_verify(g));
  CHECK_EQ_INT(g->top->n_params, 1);
  CHECK(g->top->params[0]->index == 0 && !strcmp(g->top->params[0]->name, "b"));
  CHECK_STREQ(g->top->returns[0]->name, "a");
  CHECK(g->top->returns[0]->node && g->top->returns[0]->node->op == KL_OP_CONSTANT);
  kl_ir_graph_destroy(g);
}

/* More than a few elements: a prim::Param with a weight named after the input. */
static void test_bind_large_is_weight(void) {
  kl_ir_graph *g = parse("graph(%x : Float(64), %w : Float(64)):\n"
                         "  %z : Float(64) = aten::mul(%x, %w)\n"
                         "  return (%z)\n");
  if (!g)
    return;
  kl_tensor *w = filled(KL_F32, 1, (const int64_t[]){64}, 2.0);
  CHECK_OK(kl_pass_bind_input(g, "w", w, NULL));
  kl_tensor_release(w);
  CHECK_OK(kl_ir_verify(g));
  const kl_ir_value *bound = g->top->first ? g->top->first->outputs[0] : NULL;
  CHECK(bound && bound->node->op == KL_OP_PARAM && !strcmp(bound->name, "w"));
  CHECK(kl_ir_graph_weight(g, "w") != NULL);
  kl_ir_graph_destroy(g);
}

/* A symbol takes the bound value's size in every type, within its bounds. */
static void test_bind_symbol(void) {
  const char *text = "graph<N=1..8>(%x : Float(N, 3), %y : Float(N, 3)):\n"
                     "  %z : Float(N, 3) = aten::add(%x, %y)\n"
                     "  return (%z)\n";
  kl_ir_graph *g = parse(text);
  if (!g)
    return;
  kl_tensor *y = filled(KL_F32, 2, (const int64_t[]){5, 3}, 1.0);
  CHECK_OK(kl_pass_bind_input(g, "y", y, "y.npy"));
  kl_tensor_release(y);
  CHECK_OK(kl_ir_verify(g));
  CHECK(kl_ir_type_is_static(&g->top->params[0]->type) &&
        g->top->params[0]->type.dims[0].size == 5);
  CHECK(kl_ir_type_is_static(&g->top->returns[0]->type));
  kl_ir_graph_destroy(g);
  g = parse(text);
  if (!g)
    return;
  y = filled(KL_F32, 2, (const int64_t[]){9, 3}, 1.0);
  CHECK_ERR(kl_pass_bind_input(g, "y", y, "y.npy"), KL_ERR_INVALID_ARGUMENT,
            "input 'y' is Float(N, 3), but y.npy is Float(9, 3): dim 0 is 9, outside the bounds "
            "of N (1..8)");
  kl_tensor_release(y);
  CHECK_EQ_INT(g->top->n_params, 2); /* an error leaves the graph as it was */
  kl_ir_graph_destroy(g);
}

static void test_bind_errors(void) {
  kl_ir_graph *g = parse(add_ir);
  if (!g)
    return;
  kl_tensor *f64 = filled(KL_F64, 2, (const int64_t[]){2, 3}, 0);
  kl_tensor *wide = filled(KL_F32, 2, (const int64_t[]){2, 4}, 0);
  kl_tensor *flat = filled(KL_F32, 1, (const int64_t[]){6}, 0);
  CHECK_ERR(kl_pass_bind_input(g, "y", f64, "y.npy"), KL_ERR_INVALID_ARGUMENT,
            "input 'y' is Float(2, 3), but y.npy is Double(2, 3)");
  CHECK_ERR(kl_pass_bind_input(g, "y", wide, NULL), KL_ERR_INVALID_ARGUMENT,
            "input 'y' is Float(2, 3), but the value is Float(2, 4)");
  CHECK_ERR(kl_pass_bind_input(g, "y", flat, NULL), KL_ERR_INVALID_ARGUMENT, "Float(6)");
  CHECK_ERR(kl_pass_bind_input(g, "w", flat, NULL), KL_ERR_NOT_FOUND,
            "no graph input named 'w' to bind; the graph's inputs are x (Float(2, 3)), y "
            "(Float(2, 3))");
  CHECK_EQ_INT(g->top->n_params, 2);
  kl_tensor_release(f64);
  kl_tensor_release(wide);
  kl_tensor_release(flat);
  kl_ir_graph_destroy(g);
}

int main(void) {
  test_bind_small();
  test_bind_first_and_returned();
  test_bind_large_is_weight();
  test_bind_symbol();
  test_bind_errors();
  return check_finish();
}
