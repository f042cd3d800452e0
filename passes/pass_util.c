/* Helpers shared by the passes that read constants (canonicalize, fold-constants,
 * fold-batch-norm) and those that create them (fold-constants, fold-batch-norm). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pass_internal.h"

/* Tensors up to this many elements stay inline in the IR as prim::Constant. */
#define INLINE_CONSTANT_MAX 16

const kl_tensor *kl_pass_constant_tensor(const kl_ir_graph *g, const kl_ir_value *v) {
  const kl_ir_node *def = v->node;
  const kl_tensor *t = NULL;
  if (!def)
    return NULL;
  if (def->op == KL_OP_CONSTANT) {
    const kl_ir_attr *a = kl_ir_node_attr(def, "value");
    if (a && a->kind == KL_ATTR_TENSOR)
      t = a->u.t;
  } else if (def->op == KL_OP_PARAM) {
    t = kl_ir_graph_weight(g, kl_ir_node_string(def, "name", ""));
  }
  if (!t)
    return NULL;
  kl_ir_type actual = kl_ir_type_of_tensor(t);
  return kl_ir_type_equal(&actual, &v->type) ? t : NULL;
}

/* name, or name.1, name.2, ... whichever no weight of g has yet; malloc'd. */
static char *free_weight_name(const kl_ir_graph *g, const char *name) {
  size_t size = strlen(name) + 24;
  char *s = malloc(size);
  if (!s)
    kl_fatal_oom();
  snprintf(s, size, "%s", name);
  for (long k = 1; kl_ir_graph_weight(g, s); k++)
    snprintf(s, size, "%s.%ld", name, k);
  return s;
}

kl_ir_value *kl_pass_insert_constant(kl_ir_graph *g, kl_tensor *t, const char *name,
                                     kl_ir_node *before) {
  kl_ir_node *n;
  if (t->numel <= INLINE_CONSTANT_MAX) {
    n = kl_ir_node_create(g, KL_OP_CONSTANT, NULL, 0, 1);
    kl_ir_node_set_tensor(n, "value", t);
  } else {
    char *weight_name = free_weight_name(g, name && *name ? name : "folded");
    n = kl_ir_node_create(g, KL_OP_PARAM, NULL, 0, 1);
    kl_ir_node_set_string(n, "name", weight_name);
    kl_ir_graph_set_weight(g, weight_name, t);
    free(weight_name);
  }
  n->outputs[0]->type = kl_ir_type_of_tensor(t);
  kl_ir_value_set_name(n->outputs[0], name);
  kl_ir_node_insert_before(n, before);
  return n->outputs[0];
}
