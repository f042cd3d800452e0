/* test-break (TEST ONLY): a deliberately wrong rewrite. The first aten::add of the graph, in
 * program order with sub-blocks visited where their node stands, becomes an aten::sub of the
 * same inputs under the same output name. The graph stays verifiable, so only comparing values
 * (as `kiln check` does) can catch it; its tests use this to show that bisection names the
 * pass and the node. Registered test_only, so no -O list ever runs it. */
#include "pass.h"

/* The first aten::add in b or its sub-blocks, or NULL. */
static kl_ir_node *first_add(kl_ir_block *b) {
  for (kl_ir_node *n = b->first; n; n = n->next) {
    if (n->op == KL_OP_ADD)
      return n;
    for (int i = 0; i < n->n_blocks; i++) {
      kl_ir_node *found = first_add(n->blocks[i]);
      if (found)
        return found;
    }
  }
  return NULL;
}

kl_status kl_pass_test_break(kl_ir_graph *g, const kl_pass_options *opts, bool *out_changed) {
  (void)opts;
  *out_changed = false;
  kl_ir_node *add = first_add(g->top);
  if (!add)
    return NULL;
  kl_ir_node *sub = kl_ir_node_create(g, KL_OP_SUB, add->inputs, add->n_inputs, 1);
  kl_ir_value *old_value = add->outputs[0], *new_value = sub->outputs[0];
  new_value->type = old_value->type;
  kl_ir_node_insert_before(sub, add);
  const char *name = old_value->name; /* arena string: outlives the rename */
  kl_ir_value_set_name(old_value, NULL);
  kl_ir_value_set_name(new_value, name);
  kl_ir_value_replace_all_uses(old_value, new_value);
  kl_ir_node_remove(add);
  *out_changed = true;
  return NULL;
}
