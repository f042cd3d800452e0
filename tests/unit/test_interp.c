/* The interpreter: graphs built in C run end to end; symbolic dims bind per run; params and
 * control flow (If, Loop, FusionGroup) work; bad inputs are errors naming the input. */
#include <math.h>

#include "check.h"
#include "ir/ir.h"
#include "runtime/interp.h"

static kl_tensor *vec(kl_dtype dt, int n, const double *v) {
  kl_tensor *t;
  int64_t shape[1] = {n};
  if (kl_tensor_create(dt, 1, shape, &t))
    return NULL;
  for (int i = 0; i < n; i++)
    kl_dtype_store_f64(dt, t->data, (size_t)i, v[i]);
  return t;
}

static kl_tensor *scalar(kl_dtype dt, double v) {
  kl_tensor *t;
  if (kl_tensor_create(dt, 0, NULL, &t))
    return NULL;
  kl_dtype_store_f64(dt, t->data, 0, v);
  return t;
}

static kl_ir_node *add_node(kl_ir_block *b, kl_op op, kl_ir_value **in, int n_in) {
  kl_ir_node *n = kl_ir_block_add_node(b, op, in, n_in, 1);
  kl_status s = kl_ir_node_infer(n);
  if (s) {
    fprintf(stderr, "infer: %s\n", kl_status_message(s));
    kl_status_destroy(s);
  }
  return n;
}

/* y = relu(x * w + b) with x : Float(N) symbolic, w and b parameters of shape (1,) */
static void test_params_and_symbols(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  int sym;
  CHECK_OK(kl_ir_graph_add_symbol(g, "N", 1, 8, &sym));
  kl_ir_type xt = {.dtype = KL_F32, .rank = 1};
  xt.dims[0].sym = sym;
  kl_ir_value *x = kl_ir_block_add_param(g->top, "x", &xt);
  int64_t one[1] = {1};
  kl_ir_node *w = kl_ir_block_add_node(g->top, KL_OP_PARAM, NULL, 0, 1);
  kl_ir_node_set_string(w, "name", "w");
  w->outputs[0]->type = kl_ir_type_make(KL_F32, 1, one);
  kl_ir_node *b = kl_ir_block_add_node(g->top, KL_OP_PARAM, NULL, 0, 1);
  kl_ir_node_set_string(b, "name", "b");
  b->outputs[0]->type = kl_ir_type_make(KL_F32, 1, one);
  kl_ir_node *mul = add_node(g->top, KL_OP_MUL, (kl_ir_value *[]){x, w->outputs[0]}, 2);
  kl_ir_node *add = add_node(g->top, KL_OP_ADD, (kl_ir_value *[]){mul->outputs[0], b->outputs[0]}, 2);
  kl_ir_node *relu = add_node(g->top, KL_OP_RELU, &add->outputs[0], 1);
  kl_ir_block_add_return(g->top, relu->outputs[0]);
  CHECK(relu->outputs[0]->type.dims[0].sym == sym);
  CHECK_OK(kl_ir_verify(g));

  kl_tensor *wt = vec(KL_F32, 1, (double[]){2}), *bt = vec(KL_F32, 1, (double[]){-1});
  kl_tensor *in = vec(KL_F32, 4, (double[]){-1, 0, 1, 2});
  kl_tensor *out[1];
  CHECK_ERR(kl_interp_run(g, &in, 1, out), KL_ERR_NOT_FOUND, "parameter \"w\" has no value");
  kl_ir_graph_set_weight(g, "w", wt);
  kl_ir_graph_set_weight(g, "b", bt);
  CHECK_OK(kl_interp_run(g, &in, 1, out));
  if (out[0]) {
    float *y = out[0]->data;
    CHECK(out[0]->numel == 4 && y[0] == 0 && y[1] == 0 && y[2] == 1 && y[3] == 3);
    kl_tensor_release(out[0]);
  }
  /* another size within the bounds */
  kl_tensor *in2 = vec(KL_F32, 2, (double[]){5, 6});
  CHECK_OK(kl_interp_run(g, &in2, 1, out));
  if (out[0]) {
    CHECK(out[0]->numel == 2 && ((float *)out[0]->data)[1] == 11);
    kl_tensor_release(out[0]);
  }
  /* outside the bounds, wrong dtype, wrong count */
  kl_tensor *big = vec(KL_F32, 9, (double[]){0, 0, 0, 0, 0, 0, 0, 0, 0});
  CHECK_ERR(kl_interp_run(g, &big, 1, out), KL_ERR_INVALID_ARGUMENT, "outside the bounds of N");
  kl_tensor *ints = vec(KL_I64, 2, (double[]){1, 2});
  CHECK_ERR(kl_interp_run(g, &ints, 1, out), KL_ERR_INVALID_ARGUMENT, "input %x: expected Float(N)");
  CHECK_ERR(kl_interp_run(g, NULL, 0, out), KL_ERR_INVALID_ARGUMENT, "takes 1 inputs, got 0");
  /* a param whose value has the wrong shape */
  kl_tensor *w2 = vec(KL_F32, 2, (double[]){1, 1});
  kl_ir_graph_set_weight(g, "w", w2);
  CHECK_ERR(kl_interp_run(g, &in, 1, out), KL_ERR_INVALID_ARGUMENT, "value of %");
  kl_tensor_release(w2);
  kl_tensor_release(wt);
  kl_tensor_release(bt);
  kl_tensor_release(in);
  kl_tensor_release(in2);
  kl_tensor_release(big);
  kl_tensor_release(ints);
  kl_ir_graph_destroy(g);
}

/* If picks a branch; Loop carries a value; a FusionGroup runs its body. */
static void test_control_flow(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  int64_t three[1] = {3};
  kl_ir_type vt = kl_ir_type_make(KL_F32, 1, three);
  kl_ir_type bt = kl_ir_type_make(KL_BOOL, 0, NULL);
  kl_ir_type lt = kl_ir_type_make(KL_I64, 0, NULL);
  kl_ir_value *x = kl_ir_block_add_param(g->top, "x", &vt);
  kl_ir_value *c = kl_ir_block_add_param(g->top, "c", &bt);
  kl_ir_value *trips = kl_ir_block_add_param(g->top, "trips", &lt);

  /* y = c ? neg(x) : x */
  kl_ir_node *iff = kl_ir_block_add_node(g->top, KL_OP_IF, &c, 1, 1);
  kl_ir_block *then_b = kl_ir_node_add_block(iff), *else_b = kl_ir_node_add_block(iff);
  kl_ir_node *neg = add_node(then_b, KL_OP_NEG, &x, 1);
  kl_ir_block_add_return(then_b, neg->outputs[0]);
  kl_ir_block_add_return(else_b, x);
  CHECK_OK(kl_ir_node_infer(iff));

  /* z = loop trips times: acc = acc + acc, starting from y */
  kl_ir_node *loop = kl_ir_block_add_node(g->top, KL_OP_LOOP,
                                          (kl_ir_value *[]){trips, c, iff->outputs[0]}, 3, 1);
  kl_ir_block *body = kl_ir_node_add_block(loop);
  kl_ir_block_add_param(body, "i", &lt);
  kl_ir_value *acc = kl_ir_block_add_param(body, "acc", &vt);
  kl_ir_node *dbl = add_node(body, KL_OP_ADD, (kl_ir_value *[]){acc, acc}, 2);
  kl_ir_block_add_return(body, c);
  kl_ir_block_add_return(body, dbl->outputs[0]);
  CHECK_OK(kl_ir_node_infer(loop));

  /* w = fusion_group(z): body relu */
  kl_ir_node *fg = kl_ir_block_add_node(g->top, KL_OP_FUSION_GROUP, &loop->outputs[0], 1, 1);
  kl_ir_block *fb = kl_ir_node_add_block(fg);
  kl_ir_value *fa = kl_ir_block_add_param(fb, "a", &vt);
  kl_ir_node *frelu = add_node(fb, KL_OP_RELU, &fa, 1);
  kl_ir_block_add_return(fb, frelu->outputs[0]);
  CHECK_OK(kl_ir_node_infer(fg));
  kl_ir_block_add_return(g->top, fg->outputs[0]);
  kl_ir_block_add_return(g->top, iff->outputs[0]);
  CHECK_OK(kl_ir_verify(g));

  kl_tensor *xv = vec(KL_F32, 3, (double[]){1, -2, 3});
  kl_tensor *ct = scalar(KL_BOOL, 1), *cf = scalar(KL_BOOL, 0), *t2 = scalar(KL_I64, 2);
  kl_tensor *out[2];
  CHECK_OK(kl_interp_run(g, (kl_tensor *[]){xv, ct, t2}, 3, out));
  if (out[0]) {
    float *w = out[0]->data, *y = out[1]->data;
    CHECK(y[0] == -1 && y[1] == 2 && y[2] == -3);
    CHECK(w[0] == 0 && w[1] == 8 && w[2] == 0); /* relu(4 * -x) */
    kl_tensor_release(out[0]);
    kl_tensor_release(out[1]);
  }
  CHECK_OK(kl_interp_run(g, (kl_tensor *[]){xv, cf, t2}, 3, out));
  if (out[0]) {
    float *w = out[0]->data; /* cond false: y = x, loop does not run */
    CHECK(w[0] == 1 && w[1] == 0 && w[2] == 3);
    kl_tensor_release(out[0]);
    kl_tensor_release(out[1]);
  }
  kl_tensor_release(xv);
  kl_tensor_release(ct);
  kl_tensor_release(cf);
  kl_tensor_release(t2);
  kl_ir_graph_destroy(g);
}

/* A kernel error names the node. */
static void test_kernel_error(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  int64_t two[1] = {2};
  kl_ir_type it = kl_ir_type_make(KL_I64, 1, two);
  kl_ir_value *a = kl_ir_block_add_param(g->top, "a", &it);
  kl_ir_value *b = kl_ir_block_add_param(g->top, "b", &it);
  kl_ir_node *div = add_node(g->top, KL_OP_DIV, (kl_ir_value *[]){a, b}, 2);
  kl_ir_value_set_name(div->outputs[0], "q");
  kl_ir_block_add_return(g->top, div->outputs[0]);
  kl_tensor *av = vec(KL_I64, 2, (double[]){4, 5}), *bv = vec(KL_I64, 2, (double[]){2, 0});
  kl_tensor *out[1];
  CHECK_ERR(kl_interp_run(g, (kl_tensor *[]){av, bv}, 2, out), KL_ERR_INVALID_ARGUMENT,
            "%q = aten::div");
  kl_tensor_release(av);
  kl_tensor_release(bv);
  kl_ir_graph_destroy(g);
}

int main(void) {
  test_params_and_symbols();
  test_control_flow();
  test_kernel_error();
  return check_finish();
}
