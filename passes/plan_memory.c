/* Memory planning: liveness over the top-level block, then a best-fit assignment of offsets in
 * one workspace, with in-place reuse for elementwise nodes.
 *
 * The walk is one pass over the nodes in order. At node i its planned outputs are placed while
 * its inputs are still live (a kernel reads its inputs while it writes its outputs, so the two
 * must not overlap), and only then are the values whose last use is i given back. The one
 * exception is in place: an elementwise or broadcast node whose output has exactly the dtype and
 * shape of an input that dies here may write element k over element k of that input, because
 * element k of the output depends only on element k of that input, so the output simply takes
 * over the input's range. Freed ranges are coalesced and reused best-fit (the smallest free range
 * that is large enough), and the arena grows only when no free range fits; a free range at the
 * arena's end is extended rather than left as a hole. */
#include "plan_memory.h"

#include <stdlib.h>
#include <string.h>

#include "../runtime/checked.h"

/* A free range [offset, offset + size) of the workspace. */
typedef struct range {
  int64_t offset, size;
} range;

typedef struct planner {
  const kl_ir_graph *g;
  kl_memory_plan *plan;
  int *pos;           /* by node id: position of a top-level node, -1 for nested nodes */
  int *last_use;      /* by value id: position of the last top-level node that uses it */
  bool *planned;      /* by value id: gets an offset */
  int64_t *aligned;   /* by value id: size rounded up to KL_MEMORY_ALIGN */
  range *free_list;   /* sorted by offset, coalesced */
  int n_free, cap_free;
  int64_t top;        /* the arena's current end */
  int64_t live_bytes; /* aligned bytes of the values live now */
} planner;

static kl_status overflow(const kl_ir_value *v) {
  return kl_status_create(KL_ERR_LIMIT, "memory plan: the workspace size overflows at %%%s",
                          v->name);
}

/* ---- sizes ---------------------------------------------------------------------------- */

/* Bytes of v's tensor; a symbolic dim counts at its symbol's upper bound. */
static kl_status value_bytes(planner *p, const kl_ir_value *v, int64_t *out_bytes) {
  const kl_ir_type *t = &v->type;
  int64_t bytes = (int64_t)kl_dtype_size(t->dtype);
  for (int d = 0; d < t->rank; d++) {
    kl_ir_dim dim = t->dims[d];
    int64_t size;
    if (kl_ir_dim_is_static(dim)) {
      size = dim.size;
    } else if (dim.sym >= 0 && dim.sym < p->g->n_symbols) {
      const kl_ir_symbol *sym = &p->g->symbols[dim.sym];
      if (sym->max == INT64_MAX)
        return kl_status_create(KL_ERR_UNSUPPORTED,
                                "memory plan: %%%s has dim %d = %s, which has no upper bound "
                                "(declare one, e.g. %s=1..64)",
                                v->name, d, sym->name, sym->name);
      size = sym->max;
      p->plan->used_symbol_bounds = true;
    } else {
      return kl_status_create(KL_ERR_UNSUPPORTED,
                              "memory plan: %%%s has dim %d of unknown size (run infer-shapes)",
                              v->name, d);
    }
    if (size < 0 || !kl_mul_i64(bytes, size, &bytes))
      return overflow(v);
  }
  *out_bytes = bytes;
  return NULL;
}

static bool align_up(int64_t bytes, int64_t *out) {
  int64_t padded;
  if (!kl_add_i64(bytes, KL_MEMORY_ALIGN - 1, &padded))
    return false;
  *out = padded / KL_MEMORY_ALIGN * KL_MEMORY_ALIGN;
  return true;
}

/* ---- liveness ------------------------------------------------------------------------- */

/* The top-level node that contains user (itself when it is top-level). */
static const kl_ir_node *top_ancestor(const kl_ir_graph *g, const kl_ir_node *user) {
  while (user && user->owner && user->owner != g->top)
    user = user->owner->owner;
  return user;
}

/* A value is planned when a top-level node other than a Param or Constant defines it and the
 * graph does not return it (graph outputs live in the caller's buffers). */
static bool is_planned(const kl_ir_graph *g, const kl_ir_value *v) {
  if (!v->node || v->node->owner != g->top)
    return false;
  if (v->node->op == KL_OP_PARAM || v->node->op == KL_OP_CONSTANT)
    return false;
  for (int u = 0; u < v->n_uses; u++)
    if (!v->uses[u].user && v->uses[u].block == g->top)
      return false;
  return true;
}

/* The position of the last top-level node that uses v, counting a use inside a sub-block (or a
 * sub-block's return) as a use at the top-level node that owns it; def when v is unused. */
static kl_status last_use_of(planner *p, const kl_ir_value *v, int def, int *out_last) {
  int last = def;
  for (int u = 0; u < v->n_uses; u++) {
    const kl_ir_use *use = &v->uses[u];
    const kl_ir_node *user = use->user ? use->user : use->block->owner;
    const kl_ir_node *at = top_ancestor(p->g, user);
    if (!at || at->owner != p->g->top || p->pos[at->id] < 0)
      return kl_status_create(KL_ERR_INTERNAL, "memory plan: a use of %%%s is outside the graph",
                              v->name);
    if (p->pos[at->id] < def)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "memory plan: %%%s is used by %s before it is defined", v->name,
                              kl_ir_node_op_name(at));
    if (p->pos[at->id] > last)
      last = p->pos[at->id];
  }
  *out_last = last;
  return NULL;
}

/* ---- the free list -------------------------------------------------------------------- */

static void free_insert(planner *p, int at, range r) {
  if (p->n_free == p->cap_free) {
    p->cap_free = p->cap_free ? 2 * p->cap_free : 16;
    p->free_list = realloc(p->free_list, (size_t)p->cap_free * sizeof *p->free_list);
    if (!p->free_list)
      kl_fatal_oom();
  }
  memmove(&p->free_list[at + 1], &p->free_list[at], (size_t)(p->n_free - at) * sizeof(range));
  p->free_list[at] = r;
  p->n_free++;
}

static void free_remove(planner *p, int at) {
  memmove(&p->free_list[at], &p->free_list[at + 1],
          (size_t)(p->n_free - at - 1) * sizeof(range));
  p->n_free--;
}

/* Gives [offset, offset + size) back, merging it with the free ranges it touches. */
static void release(planner *p, int64_t offset, int64_t size) {
  if (size == 0)
    return;
  int at = 0;
  while (at < p->n_free && p->free_list[at].offset < offset)
    at++;
  free_insert(p, at, (range){offset, size});
  if (at + 1 < p->n_free && offset + size == p->free_list[at + 1].offset) {
    p->free_list[at].size += p->free_list[at + 1].size;
    free_remove(p, at + 1);
  }
  if (at > 0 && p->free_list[at - 1].offset + p->free_list[at - 1].size == offset) {
    p->free_list[at - 1].size += p->free_list[at].size;
    free_remove(p, at);
  }
}

/* An offset for size bytes (a multiple of the alignment): the smallest free range that holds
 * it, else the free range at the arena's end grown to fit, else fresh space at the end. */
static bool reserve(planner *p, int64_t size, int64_t *out_offset) {
  if (size == 0) {
    *out_offset = 0;
    return true;
  }
  int best = -1;
  for (int i = 0; i < p->n_free; i++)
    if (p->free_list[i].size >= size && (best < 0 || p->free_list[i].size < p->free_list[best].size))
      best = i;
  if (best >= 0) {
    range *r = &p->free_list[best];
    *out_offset = r->offset;
    r->offset += size;
    r->size -= size;
    if (r->size == 0)
      free_remove(p, best);
    return true;
  }
  int64_t start = p->top;
  if (p->n_free > 0) {
    range *tail = &p->free_list[p->n_free - 1];
    if (tail->offset + tail->size == p->top) {
      start = tail->offset;
      free_remove(p, p->n_free - 1);
    }
  }
  if (!kl_add_i64(start, size, &p->top))
    return false;
  *out_offset = start;
  return true;
}

/* ---- the walk ------------------------------------------------------------------------- */

static bool is_elementwise(kl_op op) {
  kl_fuse_category c = kl_op_get(op)->category;
  return c == KL_FUSE_ELEMENTWISE || c == KL_FUSE_BROADCAST;
}

/* An elementwise or broadcast node, or a fusion group made only of such nodes: element k of
 * its output reads element k of every input that has the output's shape, and nothing else of
 * it, so the output may overwrite such an input as it goes. */
static bool fuses_in_place(const kl_ir_node *n) {
  if (n->n_outputs != 1)
    return false;
  if (n->op != KL_OP_FUSION_GROUP)
    return is_elementwise(n->op);
  if (n->n_blocks < 1)
    return false;
  for (const kl_ir_node *inner = n->blocks[0]->first; inner; inner = inner->next)
    if (!is_elementwise(inner->op))
      return false;
  return true;
}

/* The input of n (at position i) whose range n's output may take over, or NULL. */
static const kl_ir_value *in_place_input(planner *p, const kl_ir_node *n, int i) {
  if (!fuses_in_place(n))
    return NULL;
  const kl_ir_value *out = n->outputs[0];
  for (int k = 0; k < n->n_inputs; k++) {
    const kl_ir_value *in = n->inputs[k];
    if (!p->planned[in->id] || p->last_use[in->id] != i)
      continue;
    if (kl_ir_type_equal(&in->type, &out->type))
      return in;
  }
  return NULL;
}

static kl_status place_outputs(planner *p, const kl_ir_node *n, int i) {
  kl_memory_plan *plan = p->plan;
  const kl_ir_value *donor = in_place_input(p, n, i);
  for (int k = 0; k < n->n_outputs; k++) {
    const kl_ir_value *v = n->outputs[k];
    if (!p->planned[v->id])
      continue;
    if (donor) {
      /* The donor's range passes to v; it is not freed at the end of this node. */
      plan->offset[v->id] = plan->offset[donor->id];
      plan->inplace_of[v->id] = donor->id;
      plan->n_inplace++;
      p->last_use[donor->id] = -1;
      p->live_bytes -= p->aligned[donor->id];
    } else if (!reserve(p, p->aligned[v->id], &plan->offset[v->id])) {
      return overflow(v);
    }
    plan->n_planned++;
    if (!kl_add_i64(p->live_bytes, p->aligned[v->id], &p->live_bytes))
      return overflow(v);
  }
  if (p->live_bytes > plan->peak_bytes)
    plan->peak_bytes = p->live_bytes;
  return NULL;
}

/* Gives back the ranges of the values whose last use is position i: n's inputs, its unused
 * outputs, and values used inside n's sub-blocks (a use there counts as a use at n). A donor of
 * an in-place write had its last use cleared and is skipped: its range lives on in n's output. */
static void release_dead(planner *p, const int *dies_at, const int *dying, int i) {
  for (int k = dies_at[i]; k < dies_at[i + 1]; k++) {
    int id = dying[k];
    if (p->last_use[id] != i)
      continue;
    release(p, p->plan->offset[id], p->aligned[id]);
    p->live_bytes -= p->aligned[id];
    p->last_use[id] = -1;
  }
}

static kl_status plan_graph(planner *p) {
  const kl_ir_graph *g = p->g;
  kl_memory_plan *plan = p->plan;
  int n_nodes = 0;
  for (const kl_ir_node *n = g->top->first; n; n = n->next)
    p->pos[n->id] = n_nodes++;

  /* Sizes and last uses of every planned value. */
  for (const kl_ir_node *n = g->top->first; n; n = n->next) {
    for (int k = 0; k < n->n_outputs; k++) {
      const kl_ir_value *v = n->outputs[k];
      if (!is_planned(g, v))
        continue;
      int64_t bytes = 0;
      KL_RETURN_IF_ERROR(value_bytes(p, v, &bytes));
      if (!align_up(bytes, &p->aligned[v->id]) ||
          !kl_add_i64(plan->naive_bytes, p->aligned[v->id], &plan->naive_bytes))
        return overflow(v);
      plan->size[v->id] = bytes;
      KL_RETURN_IF_ERROR(last_use_of(p, v, p->pos[n->id], &p->last_use[v->id]));
      p->planned[v->id] = true;
    }
  }

  /* The values dying at each position, bucketed by position (a counting sort). */
  int *dies_at = calloc((size_t)n_nodes + 2, sizeof *dies_at);
  int *dying = malloc(((size_t)plan->n_values + 1) * sizeof *dying);
  if (!dies_at || !dying)
    kl_fatal_oom();
  for (int id = 0; id < plan->n_values; id++)
    if (p->planned[id])
      dies_at[p->last_use[id] + 1]++;
  for (int i = 0; i < n_nodes; i++)
    dies_at[i + 1] += dies_at[i];
  int *fill = malloc(((size_t)n_nodes + 1) * sizeof *fill);
  if (!fill)
    kl_fatal_oom();
  memcpy(fill, dies_at, ((size_t)n_nodes + 1) * sizeof *fill);
  for (int id = 0; id < plan->n_values; id++)
    if (p->planned[id])
      dying[fill[p->last_use[id]]++] = id;
  free(fill);

  kl_status s = NULL;
  int i = 0;
  for (const kl_ir_node *n = g->top->first; n && !s; n = n->next, i++) {
    s = place_outputs(p, n, i);
    if (!s)
      release_dead(p, dies_at, dying, i);
  }
  plan->workspace_bytes = p->top;
  free(dies_at);
  free(dying);
  return s;
}

kl_status kl_memory_plan_create(const kl_ir_graph *g, kl_memory_plan **out_plan) {
  *out_plan = NULL;
  kl_memory_plan *plan = calloc(1, sizeof *plan);
  if (!plan)
    kl_fatal_oom();
  plan->n_values = g->next_value_id;
  size_t nv = (size_t)g->next_value_id + 1;
  plan->offset = malloc(nv * sizeof *plan->offset);
  plan->size = calloc(nv, sizeof *plan->size);
  plan->inplace_of = malloc(nv * sizeof *plan->inplace_of);
  planner p = {.g = g, .plan = plan};
  p.pos = malloc(((size_t)g->next_node_id + 1) * sizeof *p.pos);
  p.last_use = malloc(nv * sizeof *p.last_use);
  p.aligned = calloc(nv, sizeof *p.aligned);
  p.planned = calloc(nv, sizeof *p.planned);
  if (!plan->offset || !plan->size || !plan->inplace_of || !p.pos || !p.last_use || !p.aligned ||
      !p.planned)
    kl_fatal_oom();
  for (size_t id = 0; id < nv; id++) {
    plan->offset[id] = -1;
    plan->inplace_of[id] = -1;
    p.last_use[id] = -1;
  }
  for (int id = 0; id <= g->next_node_id; id++)
    p.pos[id] = -1;

  kl_status s = plan_graph(&p);
  free(p.pos);
  free(p.last_use);
  free(p.aligned);
  free(p.planned);
  free(p.free_list);
  if (s) {
    kl_memory_plan_destroy(plan);
    return s;
  }
  *out_plan = plan;
  return NULL;
}

void kl_memory_plan_destroy(kl_memory_plan *plan) {
  if (!plan)
    return;
  free(plan->offset);
  free(plan->size);
  free(plan->inplace_of);
  free(plan);
}
