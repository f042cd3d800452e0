/* Tests for ir/stats.c: node counts (sub-blocks included), parameter totals from weights,
 * undeclared Params and constants, and the FLOP rule of each op family, worked out by hand
 * from the conventions in ir/stats.h. Graphs are built with the IR API. */
#include <stdint.h>

#include "ir/stats.h"
#include "tests/unit/check.h"

static kl_ir_value *input(kl_ir_graph *g, const char *name, int rank, const int64_t *dims) {
  kl_ir_type t = kl_ir_type_make(KL_F32, rank, dims);
  return kl_ir_block_add_param(g->top, name, &t);
}

/* A prim::Param declared with a static type; with_weight also gives it a tensor. */
static kl_ir_value *param(kl_ir_graph *g, const char *name, int rank, const int64_t *dims,
                          bool with_weight) {
  kl_ir_node *n = kl_ir_block_add_node(g->top, KL_OP_PARAM, NULL, 0, 1);
  kl_ir_node_set_string(n, "name", name);
  kl_ir_value_set_name(n->outputs[0], name);
  n->outputs[0]->type = kl_ir_type_make(KL_F32, rank, dims);
  if (with_weight) {
    kl_tensor *t = NULL;
    CHECK_OK(kl_tensor_create(KL_F32, rank, dims, &t));
    kl_ir_graph_set_weight(g, name, t);
    kl_tensor_release(t);
  }
  return n->outputs[0];
}

static kl_ir_node *op(kl_ir_graph *g, kl_op kind, kl_ir_value **ins, int n_in) {
  return kl_ir_block_add_node(g->top, kind, ins, n_in, 1);
}

/* Infers n's output type and returns its FLOP count alone (-1 when not static). */
static int64_t flops_of(kl_ir_node *n) {
  CHECK_OK(kl_ir_node_infer(n));
  int64_t f = -2;
  bool is_static = false;
  CHECK_OK(kl_ir_node_flops(n, &f, &is_static));
  return is_static ? f : -1;
}

static void test_matrix_ops(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  kl_ir_value *x = input(g, "x", 2, (const int64_t[]){2, 8});
  kl_ir_value *w = param(g, "w", 2, (const int64_t[]){4, 8}, true);
  kl_ir_value *b = param(g, "b", 1, (const int64_t[]){4}, true);
  /* linear (2,8) x (4,8)^T: out 8 elements, 2 * 8 * 8 = 128; bias adds 8 */
  CHECK_EQ_INT(flops_of(op(g, KL_OP_LINEAR, (kl_ir_value *[]){x, w}, 2)), 128);
  CHECK_EQ_INT(flops_of(op(g, KL_OP_LINEAR, (kl_ir_value *[]){x, w, b}, 3)), 136);
  /* matmul (3,5,6) @ (6,7): out 105, 2 * 105 * 6 */
  kl_ir_value *a3 = input(g, "a3", 3, (const int64_t[]){3, 5, 6});
  kl_ir_value *b2 = input(g, "b2", 2, (const int64_t[]){6, 7});
  CHECK_EQ_INT(flops_of(op(g, KL_OP_MATMUL, (kl_ir_value *[]){a3, b2}, 2)), 1260);
  kl_ir_graph_destroy(g);
}

static void test_conv_and_norms(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  kl_ir_value *x = input(g, "x", 4, (const int64_t[]){1, 4, 5, 5});
  kl_ir_value *w = param(g, "w", 4, (const int64_t[]){6, 2, 3, 3}, false);
  /* groups 2: each output sees 4/2 = 2 channels; out (1,6,3,3) = 54; 2 * 54 * 2 * 9 */
  kl_ir_node *conv = op(g, KL_OP_CONV2D, (kl_ir_value *[]){x, w}, 2);
  kl_ir_node_set_int(conv, "groups", 2);
  CHECK_EQ_INT(flops_of(conv), 1944);
  kl_ir_value *y = conv->outputs[0];

  kl_ir_value *c6 = param(g, "c6", 1, (const int64_t[]){6}, false);
  kl_ir_node *bn = op(g, KL_OP_BATCH_NORM, (kl_ir_value *[]){y, c6, c6, c6, c6}, 5);
  CHECK_EQ_INT(flops_of(bn), 108);

  kl_ir_value *t = input(g, "t", 2, (const int64_t[]){2, 8});
  kl_ir_value *gamma = param(g, "gamma", 1, (const int64_t[]){8}, false);
  kl_ir_node *ln = op(g, KL_OP_LAYER_NORM, (kl_ir_value *[]){t, gamma, gamma}, 3);
  kl_ir_node_set_ints(ln, "normalized_shape", (const int64_t[]){8}, 1);
  CHECK_EQ_INT(flops_of(ln), 16 * 7);
  kl_ir_node *ln_plain = op(g, KL_OP_LAYER_NORM, &t, 1);
  kl_ir_node_set_ints(ln_plain, "normalized_shape", (const int64_t[]){8}, 1);
  CHECK_EQ_INT(flops_of(ln_plain), 16 * 5);

  kl_ir_node *sm = op(g, KL_OP_SOFTMAX, &t, 1);
  kl_ir_node_set_int(sm, "dim", 1);
  CHECK_EQ_INT(flops_of(sm), 80);
  kl_ir_graph_destroy(g);
}

static void test_pools_elementwise_movement(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  kl_ir_value *x = input(g, "x", 4, (const int64_t[]){1, 4, 4, 4});
  kl_ir_node *avg = op(g, KL_OP_AVG_POOL2D, &x, 1);
  kl_ir_node_set_ints(avg, "kernel_size", (const int64_t[]){2, 2}, 2);
  CHECK_EQ_INT(flops_of(avg), 16 * 4); /* out (1,4,2,2) */
  kl_ir_node *mx = op(g, KL_OP_MAX_POOL2D, &x, 1);
  kl_ir_node_set_ints(mx, "kernel_size", (const int64_t[]){3, 3}, 2);
  kl_ir_node_set_ints(mx, "stride", (const int64_t[]){1, 1}, 2);
  CHECK_EQ_INT(flops_of(mx), 16 * 9); /* out (1,4,2,2) */
  kl_ir_node *ad = op(g, KL_OP_ADAPTIVE_AVG_POOL2D, &x, 1);
  kl_ir_node_set_ints(ad, "output_size", (const int64_t[]){1, 1}, 2);
  CHECK_EQ_INT(flops_of(ad), 64 + 4);

  CHECK_EQ_INT(flops_of(op(g, KL_OP_RELU, &x, 1)), 64);
  CHECK_EQ_INT(flops_of(op(g, KL_OP_GELU, &x, 1)), 64);
  kl_ir_value *row = input(g, "row", 1, (const int64_t[]){4});
  CHECK_EQ_INT(flops_of(op(g, KL_OP_ADD, (kl_ir_value *[]){x, row}, 2)), 64); /* broadcast */
  kl_ir_node *sum = op(g, KL_OP_SUM, &x, 1);
  kl_ir_node_set_ints(sum, "dim", (const int64_t[]){1}, 1);
  CHECK_EQ_INT(flops_of(sum), 64); /* input elements */

  kl_ir_node *reshape = op(g, KL_OP_RESHAPE, &x, 1);
  kl_ir_node_set_ints(reshape, "shape", (const int64_t[]){4, 16}, 2);
  CHECK_EQ_INT(flops_of(reshape), 0);
  kl_ir_node *cast = op(g, KL_OP_CAST, &x, 1);
  kl_ir_node_set_dtype(cast, "dtype", KL_F64);
  CHECK_EQ_INT(flops_of(cast), 0);
  kl_ir_graph_destroy(g);
}

static void test_graph_totals(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  kl_ir_value *x = input(g, "x", 2, (const int64_t[]){2, 8});
  kl_ir_value *w = param(g, "w", 2, (const int64_t[]){4, 8}, true);     /* 32 elements */
  kl_ir_value *b = param(g, "b", 1, (const int64_t[]){4}, false);       /* 4, declared only */
  kl_ir_node *lin = op(g, KL_OP_LINEAR, (kl_ir_value *[]){x, w, b}, 3); /* 2*8*8 + 8 = 136 */
  CHECK_OK(kl_ir_node_infer(lin));
  kl_ir_value *h = lin->outputs[0];

  kl_tensor *k = NULL;
  CHECK_OK(kl_tensor_create(KL_F64, 1, (const int64_t[]){4}, &k)); /* 4 elements, 32 bytes */
  kl_ir_node *cst = op(g, KL_OP_CONSTANT, NULL, 0);
  kl_ir_node_set_tensor(cst, "value", k);
  kl_tensor_release(k);
  CHECK_OK(kl_ir_node_infer(cst));
  kl_ir_value *k32_in = cst->outputs[0];
  kl_ir_node *cast = op(g, KL_OP_CAST, &k32_in, 1);
  kl_ir_node_set_dtype(cast, "dtype", KL_F32);
  CHECK_OK(kl_ir_node_infer(cast));
  kl_ir_node *add = op(g, KL_OP_ADD, (kl_ir_value *[]){h, cast->outputs[0]}, 2); /* 8 */
  CHECK_OK(kl_ir_node_infer(add));
  kl_ir_block_add_return(g->top, add->outputs[0]);
  CHECK_OK(kl_ir_verify(g));

  kl_ir_stats st;
  CHECK_OK(kl_ir_graph_stats(g, &st));
  CHECK_EQ_INT(st.n_nodes, 6);
  CHECK_EQ_INT(st.op_counts[KL_OP_PARAM], 2);
  CHECK_EQ_INT(st.op_counts[KL_OP_LINEAR], 1);
  CHECK_EQ_INT(st.op_counts[KL_OP_RELU], 0);
  CHECK_EQ_INT(st.n_weights, 2);
  CHECK_EQ_INT(st.n_constants, 1);
  CHECK_EQ_INT(st.param_elements, 32 + 4 + 4);
  CHECK_EQ_INT(st.param_bytes, 128 + 16 + 32);
  CHECK_EQ_INT(st.flops, 136 + 8);
  CHECK(!st.flops_partial);
  CHECK_EQ_INT(st.n_partial_nodes, 0);
  kl_ir_graph_destroy(g);
}

static void test_symbolic_is_partial(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  int n_sym = -1;
  CHECK_OK(kl_ir_graph_add_symbol(g, "N", 1, 64, &n_sym));
  kl_ir_type xt = kl_ir_type_make(KL_F32, 2, (const int64_t[]){1, 8});
  xt.dims[0].sym = n_sym;
  kl_ir_value *x = kl_ir_block_add_param(g->top, "x", &xt);
  kl_ir_value *y = input(g, "y", 1, (const int64_t[]){5});
  kl_ir_value *w = param(g, "w", 2, (const int64_t[]){4, 8}, true);
  kl_ir_node *lin = op(g, KL_OP_LINEAR, (kl_ir_value *[]){x, w}, 2);
  CHECK_EQ_INT(flops_of(lin), -1);
  kl_ir_node *relu = op(g, KL_OP_RELU, &y, 1);
  CHECK_EQ_INT(flops_of(relu), 5);
  kl_ir_block_add_return(g->top, lin->outputs[0]);
  kl_ir_block_add_return(g->top, relu->outputs[0]);

  kl_ir_stats st;
  CHECK_OK(kl_ir_graph_stats(g, &st));
  CHECK(st.flops_partial);
  CHECK_EQ_INT(st.n_partial_nodes, 1);
  CHECK_EQ_INT(st.flops, 5);
  CHECK_EQ_INT(st.param_elements, 32);
  kl_ir_graph_destroy(g);
}

static void test_overflow_is_an_error(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  int64_t big = (int64_t)1 << 40;
  kl_ir_value *a = input(g, "a", 2, (const int64_t[]){big, big / 1024});
  kl_ir_value *b = input(g, "b", 2, (const int64_t[]){big / 1024, big});
  kl_ir_node *mm = op(g, KL_OP_MATMUL, (kl_ir_value *[]){a, b}, 2);
  /* set the output type by hand: its element count alone overflows nothing, the FLOPs do */
  mm->outputs[0]->type = kl_ir_type_make(KL_F32, 2, (const int64_t[]){big / 1024, 4});
  int64_t f;
  bool is_static;
  CHECK_ERR(kl_ir_node_flops(mm, &f, &is_static), KL_ERR_LIMIT, "overflows");
  kl_ir_graph_destroy(g);
}

int main(void) {
  test_matrix_ops();
  test_conv_and_norms();
  test_pools_elementwise_movement();
  test_graph_totals();
  test_symbolic_is_partial();
  test_overflow_is_an_error();
  return check_finish();
}
