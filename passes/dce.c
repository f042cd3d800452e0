/* dce: removes nodes none of whose outputs are used.
 *
 * Every op kiln knows is pure (no I/O, no state, no in-place writes), so a node whose results
 * nobody reads can go, whatever it is: an aten op, a prim::Constant or prim::Param, or a whole
 * prim::If / prim::Loop / prim::FusionGroup with its blocks. Graph inputs are block parameters,
 * not nodes, and are never touched; a block's returns count as uses, so what a block (or the
 * graph) returns stays. The weight of a removed prim::Param is dropped from the graph too
 * (unless another Param of that name remains), so a saved .kir does not carry it.
 *
 * Each block is walked from its last node to its first, so a chain of dead nodes dies in one
 * sweep: removing a node drops its uses of its inputs, which may leave an earlier node dead
 * by the time the walk reaches it. The blocks of a live node are cleaned when the walk
 * reaches it, which is before any node defining a value they use (that node comes earlier).
 * Sweeps repeat until one removes nothing, so the result is a fixed point even if this
 * ordering argument ever stops holding (say, for a future op with side effects). */
#include <stdlib.h>
#include <string.h>

#include "pass.h"

/* Names of the prim::Param nodes removed so far; their weights are dropped at the end unless
 * another Param of the same name lives on, so that a saved .kir does not carry dead weights. */
typedef struct dead_params {
  const char **names;
  int n, cap;
} dead_params;

static void note_param(dead_params *dead, const kl_ir_node *n) {
  const char *name = kl_ir_node_string(n, "name", NULL);
  if (n->op != KL_OP_PARAM || !name)
    return;
  if (dead->n == dead->cap) {
    dead->cap = dead->cap ? dead->cap * 2 : 8;
    dead->names = realloc(dead->names, (size_t)dead->cap * sizeof *dead->names);
    if (!dead->names)
      kl_fatal_oom();
  }
  dead->names[dead->n++] = name; /* an arena string: outlives the node's removal */
}

static bool param_lives(const kl_ir_block *b, const char *name) {
  for (const kl_ir_node *n = b->first; n; n = n->next) {
    if (n->op == KL_OP_PARAM && strcmp(kl_ir_node_string(n, "name", ""), name) == 0)
      return true;
    for (int i = 0; i < n->n_blocks; i++)
      if (param_lives(n->blocks[i], name))
        return true;
  }
  return false;
}

static bool is_dead(const kl_ir_node *n) {
  for (int i = 0; i < n->n_outputs; i++)
    if (n->outputs[i]->n_uses > 0)
      return false;
  return true;
}

/* One reverse sweep over b and, first, over the blocks of each live node; counts removals. */
static int sweep_block(kl_ir_block *b, dead_params *dead) {
  int removed = 0;
  kl_ir_node *n = b->last;
  while (n) {
    kl_ir_node *prev = n->prev;
    if (is_dead(n)) {
      /* kl_ir_node_remove drops the uses made from inside n's blocks as well. */
      note_param(dead, n);
      kl_ir_node_remove(n);
      removed++;
    } else {
      for (int i = 0; i < n->n_blocks; i++)
        removed += sweep_block(n->blocks[i], dead);
    }
    n = prev;
  }
  return removed;
}

kl_status kl_pass_dce(kl_ir_graph *g, const kl_pass_options *opts, bool *out_changed) {
  (void)opts;
  *out_changed = false;
  dead_params dead = {NULL, 0, 0};
  while (sweep_block(g->top, &dead) > 0)
    *out_changed = true;
  for (int i = 0; i < dead.n; i++)
    if (kl_ir_graph_weight(g, dead.names[i]) && !param_lives(g->top, dead.names[i]))
      kl_ir_graph_remove_weight(g, dead.names[i]);
  free(dead.names);
  return NULL;
}
