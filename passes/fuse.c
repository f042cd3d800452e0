/* fuse: groups ops into prim::FusionGroup nodes, after the idea of TVM's FuseOps.
 *
 * Each block is analysed as a dataflow DAG of its nodes plus a virtual sink that stands for the
 * block's returns. Groups grow along the post-dominator tree: a node joins its immediate
 * post-dominator together with every node on the paths between them, so chains and diamonds
 * fuse, and every value but the last one stays inside the group. A last phase lets a producer
 * join a consumer even when its value is also used elsewhere; that value becomes a second
 * output of the group (no node is ever computed twice). One predicate, group_ok, decides every
 * merge from the op categories of ops.def; it also guarantees that the group node can stand
 * where its last node stood, so no other node moves. Sub-blocks of prim::If and prim::Loop
 * are fused the same way; FusionGroup bodies are left as they are. */
#include <stdlib.h>
#include <string.h>

#include "pass.h"

/* Bounds the path search and keeps generated kernels (and their argument lists) small. */
#define MAX_GROUP_NODES 256

/* What a node may do in a group, from its ops.def category. */
typedef enum fuse_role {
  ROLE_OPAQUE,    /* stands alone: params, constants, control flow, softmax, layer_norm */
  ROLE_PLAIN,     /* elementwise and broadcast */
  ROLE_INJECTIVE, /* reshape, transpose, slice, cat, gather ... */
  ROLE_REDUCTION, /* may take plain producers; nothing in its group consumes it */
  ROLE_ANCHOR,    /* matmul, linear, conv, pooling: may take a plain epilogue */
} fuse_role;

/* The analysis of one block. Nodes are numbered in block order (a topological order); index
 * n is the sink. Groups are a union-find over node indices with a member list per root. */
typedef struct fuser {
  kl_ir_graph *g;
  kl_ir_block *block;
  int n;
  kl_ir_node **nodes;  /* by index */
  fuse_role *role;     /* by index */
  int *index_of;       /* by node id: index in this block, or -1 */
  int n_ids;
  int *cons_start;     /* consumers of node i: cons[cons_start[i] .. cons_start[i + 1]) */
  int *cons;           /* node indices, n for the sink */
  int *pdom, *depth;   /* immediate post-dominator and depth in that tree (sink: depth 0) */
  int *parent, *head, *next, *tail, *size; /* union-find and member lists */
  int *mark, *seen;    /* == stamp: in the candidate set / visited by the path search */
  int stamp;
  int *cand, n_cand;   /* the candidate group being judged */
  int *stack;
} fuser;

static fuse_role role_of(const kl_ir_node *n) {
  if (n->n_blocks || n->n_outputs == 0)
    return ROLE_OPAQUE;
  switch (kl_op_get(n->op)->category) {
  case KL_FUSE_ELEMENTWISE:
  case KL_FUSE_BROADCAST: return ROLE_PLAIN;
  case KL_FUSE_INJECTIVE: return ROLE_INJECTIVE;
  case KL_FUSE_REDUCTION: return ROLE_REDUCTION;
  case KL_FUSE_OUT_ELEMENTWISE: return ROLE_ANCHOR;
  case KL_FUSE_OPAQUE: break;
  }
  return ROLE_OPAQUE;
}

static void *xcalloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size);
  if (!p)
    kl_fatal_oom();
  return p;
}

/* The node of block b that holds use u: its user, or the If/Loop around the user. NULL when
 * the use is a return of b itself (or, defensively, when no such node exists). */
static kl_ir_node *user_in_block(const kl_ir_use *u, const kl_ir_block *b) {
  kl_ir_node *user;
  if (u->user) {
    user = u->user;
  } else {
    if (u->block == b)
      return NULL;
    user = u->block->owner;
  }
  while (user && user->owner != b)
    user = user->owner ? user->owner->owner : NULL;
  return user;
}

/* Consumer index of a use: a node of the block, or the sink. */
static int consumer_index(const fuser *f, const kl_ir_use *u) {
  kl_ir_node *user = user_in_block(u, f->block);
  if (!user || user->id >= f->n_ids || f->index_of[user->id] < 0)
    return f->n;
  return f->index_of[user->id];
}

/* ---- analysis ------------------------------------------------------------------------ */

static void fuser_init(fuser *f, kl_ir_graph *g, kl_ir_block *b) {
  memset(f, 0, sizeof *f);
  f->g = g;
  f->block = b;
  for (kl_ir_node *n = b->first; n; n = n->next)
    f->n++;
  int n = f->n;
  f->n_ids = g->next_node_id;
  f->nodes = xcalloc((size_t)n, sizeof *f->nodes);
  f->role = xcalloc((size_t)n, sizeof *f->role);
  f->index_of = xcalloc((size_t)f->n_ids, sizeof *f->index_of);
  for (int i = 0; i < f->n_ids; i++)
    f->index_of[i] = -1;
  int i = 0;
  for (kl_ir_node *node = b->first; node; node = node->next, i++) {
    f->nodes[i] = node;
    f->role[i] = role_of(node);
    f->index_of[node->id] = i;
  }

  /* Consumers, in compressed rows: count, then fill. */
  f->cons_start = xcalloc((size_t)n + 1, sizeof *f->cons_start);
  for (i = 0; i < n; i++) {
    int count = 0;
    for (int o = 0; o < f->nodes[i]->n_outputs; o++)
      count += f->nodes[i]->outputs[o]->n_uses;
    f->cons_start[i + 1] = f->cons_start[i] + count;
  }
  f->cons = xcalloc((size_t)f->cons_start[n], sizeof *f->cons);
  for (i = 0; i < n; i++) {
    int k = f->cons_start[i];
    for (int o = 0; o < f->nodes[i]->n_outputs; o++) {
      const kl_ir_value *v = f->nodes[i]->outputs[o];
      for (int u = 0; u < v->n_uses; u++)
        f->cons[k++] = consumer_index(f, &v->uses[u]);
    }
  }

  /* Post-dominators: consumers come later in block order, so one backward sweep sees each
   * node's consumers done; the immediate post-dominator is their common ancestor. A node with
   * no consumers is post-dominated by the sink only. */
  f->pdom = xcalloc((size_t)n + 1, sizeof *f->pdom);
  f->depth = xcalloc((size_t)n + 1, sizeof *f->depth);
  f->pdom[n] = n;
  for (i = n - 1; i >= 0; i--) {
    int p = -1;
    for (int k = f->cons_start[i]; k < f->cons_start[i + 1]; k++) {
      int c = f->cons[k];
      if (p < 0) {
        p = c;
        continue;
      }
      while (p != c) {
        if (f->depth[p] > f->depth[c])
          p = f->pdom[p];
        else if (f->depth[c] > f->depth[p])
          c = f->pdom[c];
        else {
          p = f->pdom[p];
          c = f->pdom[c];
        }
      }
    }
    f->pdom[i] = p < 0 ? n : p;
    f->depth[i] = f->depth[f->pdom[i]] + 1;
  }

  f->parent = xcalloc((size_t)n, sizeof *f->parent);
  f->head = xcalloc((size_t)n, sizeof *f->head);
  f->next = xcalloc((size_t)n, sizeof *f->next);
  f->tail = xcalloc((size_t)n, sizeof *f->tail);
  f->size = xcalloc((size_t)n, sizeof *f->size);
  for (i = 0; i < n; i++) {
    f->parent[i] = f->head[i] = f->tail[i] = i;
    f->next[i] = -1;
    f->size[i] = 1;
  }
  f->mark = xcalloc((size_t)n + 1, sizeof *f->mark);
  f->seen = xcalloc((size_t)n + 1, sizeof *f->seen);
  f->cand = xcalloc((size_t)n, sizeof *f->cand);
  f->stack = xcalloc((size_t)f->cons_start[n] + 1, sizeof *f->stack);
}

static void fuser_deinit(fuser *f) {
  free(f->nodes);
  free(f->role);
  free(f->index_of);
  free(f->cons_start);
  free(f->cons);
  free(f->pdom);
  free(f->depth);
  free(f->parent);
  free(f->head);
  free(f->next);
  free(f->tail);
  free(f->size);
  free(f->mark);
  free(f->seen);
  free(f->cand);
  free(f->stack);
}

/* ---- groups -------------------------------------------------------------------------- */

static int find(fuser *f, int i) {
  while (f->parent[i] != i) {
    f->parent[i] = f->parent[f->parent[i]];
    i = f->parent[i];
  }
  return i;
}

static void unite(fuser *f, int a, int b) {
  a = find(f, a);
  b = find(f, b);
  if (a == b)
    return;
  if (f->size[a] < f->size[b]) {
    int t = a;
    a = b;
    b = t;
  }
  f->parent[b] = a;
  f->next[f->tail[a]] = f->head[b];
  f->tail[a] = f->tail[b];
  f->size[a] += f->size[b];
}

/* Starts a new candidate set (and a new path search). */
static void cand_begin(fuser *f) {
  f->stamp++;
  f->n_cand = 0;
}

/* Adds every member of i's group to the candidate set. */
static void cand_add_group(fuser *f, int i) {
  for (int m = f->head[find(f, i)]; m >= 0; m = f->next[m]) {
    if (f->mark[m] == f->stamp)
      continue;
    f->mark[m] = f->stamp;
    f->cand[f->n_cand++] = m;
  }
}

static bool in_cand(const fuser *f, int i) { return i < f->n && f->mark[i] == f->stamp; }

/* Whether the candidate set may become one group. The rules, from the category lattice:
 *  - no opaque node; at most MAX_GROUP_NODES nodes;
 *  - at most one anchor (matmul, linear, conv, pool) or reduction, never both, and then the
 *    other members are elementwise or broadcast only (no injective reindexing in an epilogue
 *    or in front of a reduction);
 *  - an anchor takes no producer from the group (an epilogue, never a prologue);
 *  - a reduction feeds nothing in the group (it ends the group);
 *  - every consumer outside the group comes after the group's last node in block order.
 * The last rule is what makes the rewrite sound. The group node replaces the last member, hi.
 * An input from outside is defined by a node before the member using it, so before hi (a
 * member of another group g2 feeding this one lies, by g2's own rule, before this member, and
 * g2's node stands where g2's last node stood, which is earlier still). An output used outside
 * is used only after hi. And a path that leaves the group and comes back would need an outside
 * consumer before some member, so the group is convex: fusing never makes a cycle. */
static bool group_ok(const fuser *f) {
  if (f->n_cand > MAX_GROUP_NODES)
    return false;
  int anchor = -1, reduction = -1, specials = 0, injective = 0, hi = -1;
  for (int k = 0; k < f->n_cand; k++) {
    int m = f->cand[k];
    switch (f->role[m]) {
    case ROLE_OPAQUE: return false;
    case ROLE_PLAIN: break;
    case ROLE_INJECTIVE: injective++; break;
    case ROLE_REDUCTION: reduction = m; specials++; break;
    case ROLE_ANCHOR: anchor = m; specials++; break;
    }
    if (m > hi)
      hi = m;
  }
  if (specials > 1 || (specials && injective))
    return false;
  if (anchor >= 0) {
    const kl_ir_node *a = f->nodes[anchor];
    for (int i = 0; i < a->n_inputs; i++) {
      const kl_ir_node *def = a->inputs[i]->node;
      if (def && def->id < f->n_ids && f->index_of[def->id] >= 0 &&
          in_cand(f, f->index_of[def->id]))
        return false;
    }
  }
  if (reduction >= 0)
    for (int k = f->cons_start[reduction]; k < f->cons_start[reduction + 1]; k++)
      if (in_cand(f, f->cons[k]))
        return false;
  for (int k = 0; k < f->n_cand; k++) {
    int m = f->cand[k];
    for (int c = f->cons_start[m]; c < f->cons_start[m + 1]; c++) {
      int user = f->cons[c];
      if (user < f->n && !in_cand(f, user) && user < hi)
        return false;
    }
  }
  return true;
}

static void cand_commit(fuser *f) {
  for (int k = 1; k < f->n_cand; k++)
    unite(f, f->cand[0], f->cand[k]);
}

/* Joins i's group with its immediate post-dominator d and every node on the paths between
 * (each with its own group). Every path from i reaches d, so a search from i that stops at d
 * finds exactly those nodes; meeting the sink means d is not a post-dominator (cannot happen)
 * and gives up. Returns whether the groups were joined. */
static bool merge_along_pdom(fuser *f, int i) {
  int d = f->pdom[i];
  if (d == f->n || find(f, i) == find(f, d))
    return false;
  cand_begin(f);
  cand_add_group(f, i);
  int sp = 0;
  for (int k = f->cons_start[i]; k < f->cons_start[i + 1]; k++)
    f->stack[sp++] = f->cons[k];
  while (sp > 0) {
    int k = f->stack[--sp];
    if (k == f->n)
      return false;
    if (f->seen[k] == f->stamp)
      continue;
    f->seen[k] = f->stamp;
    cand_add_group(f, k);
    if (f->n_cand > MAX_GROUP_NODES)
      return false;
    if (k == d)
      continue;
    /* Each node is expanded once, so the stack never holds more than all consumer edges. */
    for (int c = f->cons_start[k]; c < f->cons_start[k + 1]; c++)
      f->stack[sp++] = f->cons[c];
  }
  if (!group_ok(f))
    return false;
  cand_commit(f);
  return true;
}

/* Joins i's group with the group of its consumer c; what i gives to others becomes another
 * output of the group. */
static bool merge_with_consumer(fuser *f, int i, int c) {
  if (c == f->n || find(f, i) == find(f, c))
    return false;
  cand_begin(f);
  cand_add_group(f, i);
  cand_add_group(f, c);
  if (!group_ok(f))
    return false;
  cand_commit(f);
  return true;
}

/* The three phases, each a sweep in block order. Anchors go first so that an elementwise
 * chain after a matmul joins the matmul rather than forming a group of its own that the
 * matmul could then not take (for instance one with a transpose in it). */
static int grow_groups(fuser *f) {
  int merges = 0;
  for (int i = 0; i < f->n; i++)
    if (f->role[i] == ROLE_ANCHOR)
      merges += merge_along_pdom(f, i);
  for (int i = 0; i < f->n; i++)
    if (f->role[i] == ROLE_PLAIN || f->role[i] == ROLE_INJECTIVE)
      merges += merge_along_pdom(f, i);
  for (int i = 0; i < f->n; i++) {
    if (f->role[i] == ROLE_OPAQUE)
      continue;
    for (int k = f->cons_start[i]; k < f->cons_start[i + 1]; k++)
      merges += merge_with_consumer(f, i, f->cons[k]);
  }
  return merges;
}

/* ---- rewriting ----------------------------------------------------------------------- */

static int compare_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

static bool is_member(fuser *f, const kl_ir_node *n, int root) {
  if (!n || n->id >= f->n_ids || f->index_of[n->id] < 0)
    return false;
  return find(f, f->index_of[n->id]) == root;
}

/* Whether v has a use outside the group of root (a node elsewhere or a return). */
static bool escapes(fuser *f, const kl_ir_value *v, int root) {
  for (int u = 0; u < v->n_uses; u++) {
    kl_ir_node *user = user_in_block(&v->uses[u], f->block);
    if (!is_member(f, user, root))
      return true;
  }
  return false;
}

/* Appends v to list (of *count entries, with room for one more) unless present. */
static void add_unique(kl_ir_value **list, int *count, kl_ir_value *v) {
  for (int i = 0; i < *count; i++)
    if (list[i] == v)
      return;
  list[(*count)++] = v;
}

/* Replaces the members of root's group by one prim::FusionGroup node. */
static void build_group(fuser *f, int root) {
  kl_ir_graph *g = f->g;
  /* Outer value id -> its counterpart in the body. Only values that exist now are looked up
   * (an input may be an output of a group built just before, so this is sized per group). */
  kl_ir_value **inner = xcalloc((size_t)g->next_value_id, sizeof *inner);
  int n_members = f->size[root];
  int *members = xcalloc((size_t)n_members, sizeof *members);
  int max_inputs = 0, max_outputs = 0, listed = 0;
  for (int m = f->head[root]; m >= 0; m = f->next[m]) {
    members[listed++] = m;
    max_inputs += f->nodes[m]->n_inputs;
    max_outputs += f->nodes[m]->n_outputs;
  }
  qsort(members, (size_t)n_members, sizeof *members, compare_int);

  /* The group's inputs: values defined outside it, in first-use order. */
  kl_ir_value **inputs = xcalloc((size_t)max_inputs, sizeof *inputs);
  int n_inputs = 0;
  for (int k = 0; k < n_members; k++) {
    const kl_ir_node *m = f->nodes[members[k]];
    for (int i = 0; i < m->n_inputs; i++)
      if (!is_member(f, m->inputs[i]->node, root))
        add_unique(inputs, &n_inputs, m->inputs[i]);
  }
  kl_ir_node *group = kl_ir_node_create(g, KL_OP_FUSION_GROUP, inputs, n_inputs, 0);
  kl_ir_block *body = kl_ir_node_add_block(group);
  for (int i = 0; i < n_inputs; i++)
    inner[inputs[i]->id] = kl_ir_block_add_param(body, inputs[i]->name, &inputs[i]->type);

  /* The body: a copy of each member, in block order. */
  kl_ir_value **args = xcalloc((size_t)max_inputs, sizeof *args);
  for (int k = 0; k < n_members; k++) {
    const kl_ir_node *m = f->nodes[members[k]];
    for (int i = 0; i < m->n_inputs; i++)
      args[i] = inner[m->inputs[i]->id];
    kl_ir_node *copy = kl_ir_block_add_node(body, m->op, args, m->n_inputs, m->n_outputs);
    for (int a = 0; a < m->n_attrs; a++)
      kl_ir_node_set_attr(copy, &m->attrs[a]);
    for (int o = 0; o < m->n_outputs; o++) {
      copy->outputs[o]->type = m->outputs[o]->type;
      inner[m->outputs[o]->id] = copy->outputs[o];
    }
  }

  /* The outputs: each value used outside. A group nothing uses (dead code for dce) still
   * returns its last node's values, as a node must give at least one. */
  kl_ir_value **old = xcalloc((size_t)max_outputs, sizeof *old);
  const char **names = xcalloc((size_t)max_outputs, sizeof *names);
  int n_old = 0;
  for (int k = 0; k < n_members; k++) {
    const kl_ir_node *m = f->nodes[members[k]];
    for (int o = 0; o < m->n_outputs; o++) {
      names[n_old] = m->outputs[o]->name;
      old[n_old++] = m->outputs[o];
    }
  }
  kl_ir_value **outer = xcalloc((size_t)max_outputs, sizeof *outer);
  for (int k = 0; k < n_old; k++)
    if (escapes(f, old[k], root))
      outer[k] = kl_ir_node_add_output(group);
  if (group->n_outputs == 0)
    for (int k = 0; k < n_old; k++)
      if (old[k]->node == f->nodes[members[n_members - 1]])
        outer[k] = kl_ir_node_add_output(group);
  for (int k = 0; k < n_old; k++) {
    if (!outer[k])
      continue;
    outer[k]->type = old[k]->type;
    kl_ir_block_add_return(body, inner[old[k]->id]);
  }

  /* Swap the group in: it stands where the last member stood; then the members go, last
   * first, so that each one's values have lost their last user when it is removed. */
  kl_ir_node_insert_before(group, f->nodes[members[n_members - 1]]);
  for (int k = 0; k < n_old; k++)
    if (outer[k])
      kl_ir_value_replace_all_uses(old[k], outer[k]);
  for (int k = n_members - 1; k >= 0; k--)
    kl_ir_node_remove(f->nodes[members[k]]);

  /* Names: outputs take over the names of the values they replace (kiln check matches by
   * name); inside the body a value keeps its old name when it is free, else gets a suffix. */
  for (int k = 0; k < n_old; k++)
    if (outer[k])
      kl_ir_value_set_name(outer[k], names[k]);
  for (int k = 0; k < n_old; k++)
    kl_ir_value_set_name(inner[old[k]->id], names[k]);

  free(inner);
  free(members);
  free(inputs);
  free(args);
  free(old);
  free(names);
  free(outer);
}

/* Fuses one block: its nested If/Loop blocks first, then its own nodes. */
static bool fuse_block(kl_ir_graph *g, kl_ir_block *b) {
  bool changed = false;
  for (kl_ir_node *n = b->first; n; n = n->next)
    if (n->op != KL_OP_FUSION_GROUP)
      for (int i = 0; i < n->n_blocks; i++)
        changed |= fuse_block(g, n->blocks[i]);

  fuser f;
  fuser_init(&f, g, b);
  if (grow_groups(&f) > 0) {
    /* Roots are visited in block order; any order would do, as each group's rewrite touches
     * only its own members and the uses of their values. */
    for (int i = 0; i < f.n; i++) {
      if (find(&f, i) != i || f.size[i] < 2)
        continue;
      build_group(&f, i);
      changed = true;
    }
  }
  fuser_deinit(&f);
  return changed;
}

kl_status kl_pass_fuse(kl_ir_graph *g, const kl_pass_options *opts, bool *out_changed) {
  (void)opts;
  *out_changed = fuse_block(g, g->top);
  return NULL;
}
