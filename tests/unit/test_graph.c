/* The graph API: unique names, use lists, insertion and removal, attributes, weights, symbols. */
#include "check.h"
#include "ir/ir.h"

static kl_ir_type f32(int rank, const int64_t *dims) { return kl_ir_type_make(KL_F32, rank, dims); }

int main(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  int64_t d[2] = {2, 3};
  kl_ir_type t = f32(2, d);
  kl_ir_value *x = kl_ir_block_add_param(g->top, "x", &t);
  kl_ir_value *x2 = kl_ir_block_add_param(g->top, "x", &t);
  CHECK_STREQ(x->name, "x");
  CHECK_STREQ(x2->name, "x.1"); /* taken names get a suffix */
  CHECK(kl_ir_graph_find_value(g, "x.1") == x2);
  CHECK(kl_ir_graph_name_taken(g, "x") && !kl_ir_graph_name_taken(g, "y"));

  kl_ir_value *in[2] = {x, x2};
  kl_ir_node *add = kl_ir_block_add_node(g->top, KL_OP_ADD, in, 2, 1);
  CHECK_STREQ(add->outputs[0]->name, "0"); /* unnamed outputs are numbered */
  CHECK_EQ_INT(x->n_uses, 1);
  CHECK(x->uses[0].user == add && x->uses[0].index == 0);
  kl_ir_value *relu_in[1] = {add->outputs[0]};
  kl_ir_node *relu = kl_ir_block_add_node(g->top, KL_OP_RELU, relu_in, 1, 1);
  kl_ir_block_add_return(g->top, relu->outputs[0]);
  CHECK_EQ_INT(relu->outputs[0]->n_uses, 1);
  CHECK(relu->outputs[0]->uses[0].user == NULL && relu->outputs[0]->uses[0].block == g->top);
  CHECK(kl_ir_value_graph(relu->outputs[0]) == g);

  /* insert a neg between add and relu, then rewire */
  kl_ir_node *neg = kl_ir_node_create(g, KL_OP_NEG, relu_in, 1, 1);
  kl_ir_node_insert_after(neg, add);
  CHECK(add->next == neg && neg->next == relu && relu->prev == neg);
  kl_ir_node_set_input(relu, 0, neg->outputs[0]);
  CHECK_EQ_INT(add->outputs[0]->n_uses, 1);
  CHECK_EQ_INT(neg->outputs[0]->n_uses, 1);

  /* replace all uses and remove a dead node */
  kl_ir_value_replace_all_uses(neg->outputs[0], add->outputs[0]);
  CHECK(relu->inputs[0] == add->outputs[0]);
  CHECK_EQ_INT(neg->outputs[0]->n_uses, 0);
  const char *neg_name = neg->outputs[0]->name;
  kl_ir_node_remove(neg);
  CHECK(add->next == relu && relu->prev == add);
  CHECK_EQ_INT(add->outputs[0]->n_uses, 1);
  CHECK(kl_ir_graph_find_value(g, neg_name) == NULL);
  kl_ir_value_replace_all_uses(relu->outputs[0], add->outputs[0]); /* a block return too */
  CHECK(g->top->returns[0] == add->outputs[0]);
  CHECK_EQ_INT(add->outputs[0]->n_uses, 2);

  /* renaming frees the old name */
  kl_ir_value_set_name(add->outputs[0], "sum");
  CHECK(kl_ir_graph_find_value(g, "sum") == add->outputs[0]);
  CHECK(kl_ir_graph_find_value(g, "0") == NULL);

  /* attributes: set, replace in place, typed getters with defaults */
  int64_t st[2] = {2, 2};
  kl_ir_node_set_ints(relu, "stride", st, 2);
  kl_ir_node_set_int(relu, "groups", 4);
  kl_ir_node_set_float(relu, "eps", 1e-5);
  kl_ir_node_set_string(relu, "approximate", "tanh");
  kl_ir_node_set_int(relu, "groups", 8);
  CHECK_EQ_INT(relu->n_attrs, 4);
  CHECK_STREQ(relu->attrs[1].name, "groups");
  CHECK_EQ_INT(kl_ir_node_int(relu, "groups", 1), 8);
  CHECK_EQ_INT(kl_ir_node_int(relu, "missing", 7), 7);
  CHECK_EQ_INT(kl_ir_node_int(relu, "eps", 7), 7); /* wrong kind gives the default */
  CHECK(kl_ir_node_float(relu, "eps", 0) == 1e-5);
  CHECK_STREQ(kl_ir_node_string(relu, "approximate", "none"), "tanh");
  const kl_ir_attr *a = kl_ir_node_attr(relu, "stride");
  CHECK(a && a->kind == KL_ATTR_INTS && a->n == 2 && a->u.is[1] == 2 && a->u.is != st);
  CHECK(kl_ir_node_remove_attr(relu, "stride") && !kl_ir_node_attr(relu, "stride"));
  CHECK(!kl_ir_node_remove_attr(relu, "stride"));

  /* weights are retained by the graph and replaced by name */
  kl_tensor *w1, *w2;
  CHECK_OK(kl_tensor_create(KL_F32, 2, d, &w1));
  CHECK_OK(kl_tensor_create(KL_F32, 2, d, &w2));
  kl_ir_graph_set_weight(g, "fc.weight", w1);
  kl_ir_graph_set_weight(g, "fc.weight", w2);
  CHECK(kl_ir_graph_weight(g, "fc.weight") == w2);
  CHECK_EQ_INT(g->n_weights, 1);
  CHECK(kl_ir_graph_weight(g, "nope") == NULL);
  kl_tensor_release(w1);
  kl_tensor_release(w2);

  /* a tensor attribute is retained too */
  kl_tensor *cv;
  CHECK_OK(kl_tensor_create(KL_F32, 2, d, &cv));
  kl_ir_node *cst = kl_ir_block_add_node(g->top, KL_OP_CONSTANT, NULL, 0, 1);
  kl_ir_node_set_tensor(cst, "value", cv);
  kl_tensor_release(cv);
  CHECK(kl_ir_node_attr(cst, "value")->u.t == cv);

  /* symbols */
  int idx;
  CHECK_OK(kl_ir_graph_add_symbol(g, "N", 1, 64, &idx));
  CHECK_EQ_INT(idx, 0);
  CHECK_ERR(kl_ir_graph_add_symbol(g, "N", 1, 8, &idx), KL_ERR_INVALID_ARGUMENT, "twice");
  CHECK_ERR(kl_ir_graph_add_symbol(g, "M", 9, 8, &idx), KL_ERR_INVALID_ARGUMENT, "bounds");
  CHECK_EQ_INT(kl_ir_graph_find_symbol(g, "N"), 0);
  CHECK_EQ_INT(kl_ir_graph_find_symbol(g, "M"), -1);
  kl_ir_type sym = t;
  sym.dims[0].sym = 0;
  sym.dims[1].sym = KL_DIM_UNKNOWN;
  char buf[64];
  kl_ir_type_format(g, &sym, buf, sizeof buf);
  CHECK_STREQ(buf, "Float(N, *)");
  CHECK(!kl_ir_type_is_static(&sym));
  int64_t numel;
  CHECK(!kl_ir_type_numel(&sym, &numel));
  CHECK(kl_ir_type_numel(&t, &numel) && numel == 6);

  /* sub-blocks and node counts */
  kl_ir_value *cond_in[1] = {x};
  kl_ir_node *iff = kl_ir_block_add_node(g->top, KL_OP_IF, cond_in, 1, 0);
  kl_ir_block *b0 = kl_ir_node_add_block(iff);
  kl_ir_node_add_block(iff);
  kl_ir_block_add_node(b0, KL_OP_RELU, cond_in, 1, 1);
  CHECK(b0->owner == iff && b0->graph == g);
  CHECK_EQ_INT(kl_ir_graph_node_count(g), 5);
  CHECK_EQ_INT(x->n_uses, 3);
  kl_ir_node_remove(iff); /* drops the uses inside its blocks too */
  CHECK_EQ_INT(x->n_uses, 1);
  kl_ir_graph_destroy(g);
  return check_finish();
}
