/* infer-shapes: recomputes the type of every node output from its inputs, in program order,
 * with the op's shape function (kl_ir_node_infer).
 *
 * Other passes rewrite inputs (a folded constant, a removed identity) and may leave an output
 * type that is merely stale; running this once after them makes every type agree with what
 * the verifier expects again. Sub-blocks are visited before the node that owns them, because
 * prim::If, prim::Loop and prim::FusionGroup take their output types from their blocks'
 * returns. Block parameters are declared, never inferred, so they are left as they are. */
#include <stdlib.h>

#include "pass.h"

static kl_status infer_block(kl_ir_block *b, bool *changed) {
  for (kl_ir_node *n = b->first; n; n = n->next) {
    for (int i = 0; i < n->n_blocks; i++)
      KL_RETURN_IF_ERROR(infer_block(n->blocks[i], changed));
    kl_ir_type *types = malloc(((size_t)n->n_outputs + 1) * sizeof *types);
    if (!types)
      kl_fatal_oom();
    kl_status s = kl_ir_node_infer_into(n, types);
    for (int i = 0; !s && i < n->n_outputs; i++) {
      if (!kl_ir_type_equal(&types[i], &n->outputs[i]->type))
        *changed = true;
      n->outputs[i]->type = types[i];
    }
    free(types);
    KL_RETURN_IF_ERROR(s);
  }
  return NULL;
}

kl_status kl_pass_infer_shapes(kl_ir_graph *g, const kl_pass_options *opts, bool *out_changed) {
  (void)opts;
  *out_changed = false;
  return infer_block(g->top, out_changed);
}
