/* The verifier: a good graph passes; each broken invariant is reported naming its node. */
#include "check.h"
#include "ir/ir.h"

/* x : Float(2, 3) -> relu -> return */
static kl_ir_graph *small_graph(kl_ir_node **out_relu) {
  kl_ir_graph *g = kl_ir_graph_create();
  int64_t d[2] = {2, 3};
  kl_ir_type t = kl_ir_type_make(KL_F32, 2, d);
  kl_ir_value *x = kl_ir_block_add_param(g->top, "x", &t);
  kl_ir_node *relu = kl_ir_block_add_node(g->top, KL_OP_RELU, &x, 1, 1);
  relu->outputs[0]->type = t;
  kl_ir_block_add_return(g->top, relu->outputs[0]);
  *out_relu = relu;
  return g;
}

int main(void) {
  kl_ir_node *relu;
  kl_ir_graph *g = small_graph(&relu);
  CHECK_OK(kl_ir_verify(g));

  /* wrong declared output type */
  relu->outputs[0]->type.dims[1].size = 4;
  CHECK_ERR(kl_ir_verify(g), KL_ERR_INVALID_ARGUMENT,
            "output %0 is declared Float(2, 4) but the op gives Float(2, 3)");
  relu->outputs[0]->type.dims[1].size = 3;

  /* unknown attribute, wrong kind, missing required */
  kl_ir_node_set_int(relu, "alpha", 1);
  CHECK_ERR(kl_ir_verify(g), KL_ERR_INVALID_ARGUMENT, "%0 = aten::relu: unknown attribute 'alpha'");
  kl_ir_node_remove_attr(relu, "alpha");
  kl_ir_value *x = g->top->params[0];
  kl_ir_node *sm = kl_ir_block_add_node(g->top, KL_OP_SOFTMAX, &x, 1, 1);
  CHECK_ERR(kl_ir_verify(g), KL_ERR_INVALID_ARGUMENT, "missing required attribute 'dim'");
  kl_ir_node_set_float(sm, "dim", 1.0);
  CHECK_ERR(kl_ir_verify(g), KL_ERR_INVALID_ARGUMENT, "attribute 'dim' is float, expected int");
  kl_ir_graph_destroy(g);

  /* wrong arity */
  g = small_graph(&relu);
  kl_ir_node_add_input(relu, g->top->params[0]);
  CHECK_ERR(kl_ir_verify(g), KL_ERR_INVALID_ARGUMENT, "aten::relu takes 1..1 inputs, has 2");
  kl_ir_graph_destroy(g);

  /* use before definition (a cycle): relu's input is defined after it */
  g = small_graph(&relu);
  kl_ir_node *neg = kl_ir_block_add_node(g->top, KL_OP_NEG, &relu->outputs[0], 1, 1);
  neg->outputs[0]->type = relu->outputs[0]->type;
  kl_ir_node_set_input(relu, 0, neg->outputs[0]);
  CHECK_ERR(kl_ir_verify(g), KL_ERR_INVALID_ARGUMENT, "used before it is defined");
  kl_ir_graph_destroy(g);

  /* a value defined inside a block is not visible after it */
  g = small_graph(&relu);
  kl_ir_value *xx = g->top->params[0];
  int64_t none[1] = {0};
  kl_ir_type bt = kl_ir_type_make(KL_BOOL, 0, none);
  kl_ir_value *c = kl_ir_block_add_param(g->top, "c", &bt);
  kl_ir_node *iff = kl_ir_node_create(g, KL_OP_IF, &c, 1, 0);
  kl_ir_node_insert_before(iff, relu);
  kl_ir_block *b0 = kl_ir_node_add_block(iff);
  kl_ir_node_add_block(iff);
  kl_ir_node *inner = kl_ir_block_add_node(b0, KL_OP_NEG, &xx, 1, 1);
  inner->outputs[0]->type = xx->type;
  kl_ir_node_set_input(relu, 0, inner->outputs[0]);
  CHECK_ERR(kl_ir_verify(g), KL_ERR_INVALID_ARGUMENT, "outside its scope");
  kl_ir_node_set_input(relu, 0, xx);
  CHECK_OK(kl_ir_verify(g));
  kl_ir_graph_destroy(g);

  /* a fusion group body may not reach outside */
  g = small_graph(&relu);
  xx = g->top->params[0];
  kl_ir_node *fg = kl_ir_node_create(g, KL_OP_FUSION_GROUP, &xx, 1, 1);
  kl_ir_node_insert_before(fg, relu);
  fg->outputs[0]->type = xx->type;
  kl_ir_block *body = kl_ir_node_add_block(fg);
  kl_ir_value *a = kl_ir_block_add_param(body, "a", &xx->type);
  kl_ir_node *in_body = kl_ir_block_add_node(body, KL_OP_ADD, (kl_ir_value *[]){a, a}, 2, 1);
  in_body->outputs[0]->type = xx->type;
  kl_ir_block_add_return(body, in_body->outputs[0]);
  CHECK_OK(kl_ir_verify(g));
  kl_ir_node_set_input(in_body, 1, xx);
  CHECK_ERR(kl_ir_verify(g), KL_ERR_INVALID_ARGUMENT, "input 1 (%x)");
  kl_ir_graph_destroy(g);

  /* duplicate parameter names; several problems reported at once */
  g = small_graph(&relu);
  int64_t d[2] = {2, 3};
  for (int i = 0; i < 2; i++) {
    kl_ir_node *p = kl_ir_node_create(g, KL_OP_PARAM, NULL, 0, 1);
    kl_ir_node_insert_before(p, relu);
    kl_ir_node_set_string(p, "name", "w");
    p->outputs[0]->type = kl_ir_type_make(KL_F32, 2, d);
  }
  kl_ir_node_set_int(relu, "bogus", 1);
  kl_status s = kl_ir_verify(g);
  CHECK(s && strstr(kl_status_message(s), "parameter name \"w\" is declared twice"));
  CHECK(s && strstr(kl_status_message(s), "unknown attribute 'bogus'"));
  kl_status_destroy(s);
  kl_ir_graph_destroy(g);
  return check_finish();
}
