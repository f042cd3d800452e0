/* cse: merges nodes that compute the same thing from the same inputs.
 *
 * Two nodes are the same when they have the same op, the very same input values in the same
 * order, equal attributes (floats compared bit for bit, so -0.0 and 0.0 stay apart; constant
 * tensors compared by dtype, shape and bytes up to MAX_COMPARED_BYTES, larger ones only by
 * identity) and equal output types. prim::Param nodes with the same name (and type) are such
 * nodes too: the verifier rejects such a pair, but a pass that adds Params may create one. The later node's outputs are replaced by the earlier node's, so the surviving
 * values keep the first node's names, then the later node is removed.
 *
 * Scopes follow visibility: a node inside a prim::If or prim::Loop block may reuse a result
 * computed before the If or Loop in an enclosing block, never the reverse, and a
 * prim::FusionGroup body is closed, so it starts from an empty scope. Nodes that own blocks
 * are never merged themselves (comparing whole sub-graphs is not worth it here); their blocks
 * are still visited. Each scope is an open-addressing hash table of the nodes seen so far. */
#include <stdlib.h>
#include <string.h>

#include "pass.h"

/* Constants larger than this are compared by tensor identity only: hashing and comparing
 * megabytes of weights to find a duplicate that tracing almost never produces costs more
 * than it saves. */
#define MAX_COMPARED_BYTES ((size_t)1 << 20)

/* ---- hashing -------------------------------------------------------------------------- */

static uint64_t mix(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 1099511628211ULL; /* FNV-1a prime */
  }
  return h;
}

static uint64_t mix_u64(uint64_t h, uint64_t v) { return mix(h, &v, sizeof v); }

static uint64_t mix_str(uint64_t h, const char *s) { return mix(h, s, strlen(s) + 1); }

static uint64_t hash_type(uint64_t h, const kl_ir_type *t) {
  h = mix_u64(h, (uint64_t)t->dtype);
  h = mix_u64(h, (uint64_t)t->rank);
  for (int d = 0; d < t->rank; d++) {
    h = mix_u64(h, (uint64_t)t->dims[d].sym);
    if (kl_ir_dim_is_static(t->dims[d]))
      h = mix_u64(h, (uint64_t)t->dims[d].size);
  }
  return h;
}

static uint64_t hash_tensor(uint64_t h, const kl_tensor *t) {
  h = mix_u64(h, (uint64_t)t->dtype);
  h = mix_u64(h, (uint64_t)t->rank);
  for (int d = 0; d < t->rank; d++)
    h = mix_u64(h, (uint64_t)t->shape[d]);
  if (t->nbytes > MAX_COMPARED_BYTES)
    return mix(h, &t, sizeof t);
  /* The first bytes are enough to spread constants; equality compares them all. */
  return mix(h, t->data, t->nbytes < 256 ? t->nbytes : 256);
}

static uint64_t hash_attr(uint64_t h, const kl_ir_attr *a) {
  h = mix_str(h, a->name);
  h = mix_u64(h, (uint64_t)a->kind);
  switch (a->kind) {
  case KL_ATTR_INT: return mix_u64(h, (uint64_t)a->u.i);
  case KL_ATTR_FLOAT: return mix(h, &a->u.f, sizeof a->u.f);
  case KL_ATTR_STRING: return mix_str(h, a->u.s);
  case KL_ATTR_DTYPE: return mix_u64(h, (uint64_t)a->u.dtype);
  case KL_ATTR_INTS: return mix(h, a->u.is, (size_t)a->n * sizeof *a->u.is);
  case KL_ATTR_FLOATS: return mix(h, a->u.fs, (size_t)a->n * sizeof *a->u.fs);
  case KL_ATTR_STRINGS:
    for (int i = 0; i < a->n; i++)
      h = mix_str(h, a->u.ss[i]);
    return h;
  case KL_ATTR_TENSOR: return a->u.t ? hash_tensor(h, a->u.t) : h;
  case KL_ATTR_KIND_COUNT: break;
  }
  return h;
}

static uint64_t hash_node(const kl_ir_node *n) {
  uint64_t h = 14695981039346656037ULL; /* FNV-1a offset basis */
  h = mix_u64(h, (uint64_t)n->op);
  h = mix_u64(h, (uint64_t)n->n_inputs);
  for (int i = 0; i < n->n_inputs; i++)
    h = mix_u64(h, (uint64_t)n->inputs[i]->id);
  h = mix_u64(h, (uint64_t)n->n_attrs);
  for (int i = 0; i < n->n_attrs; i++)
    h = hash_attr(h, &n->attrs[i]);
  h = mix_u64(h, (uint64_t)n->n_outputs);
  for (int i = 0; i < n->n_outputs; i++)
    h = hash_type(h, &n->outputs[i]->type);
  return h;
}

/* ---- equality ------------------------------------------------------------------------- */

static bool same_tensor(const kl_tensor *a, const kl_tensor *b) {
  if (a == b)
    return true;
  if (!a || !b || a->dtype != b->dtype || a->rank != b->rank || a->nbytes != b->nbytes)
    return false;
  if (a->nbytes > MAX_COMPARED_BYTES)
    return false;
  for (int d = 0; d < a->rank; d++)
    if (a->shape[d] != b->shape[d])
      return false;
  return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
}

static bool same_attr(const kl_ir_attr *a, const kl_ir_attr *b) {
  if (strcmp(a->name, b->name) != 0 || a->kind != b->kind)
    return false;
  switch (a->kind) {
  case KL_ATTR_INT: return a->u.i == b->u.i;
  case KL_ATTR_FLOAT: return memcmp(&a->u.f, &b->u.f, sizeof a->u.f) == 0;
  case KL_ATTR_STRING: return strcmp(a->u.s, b->u.s) == 0;
  case KL_ATTR_DTYPE: return a->u.dtype == b->u.dtype;
  case KL_ATTR_INTS:
    return a->n == b->n &&
           (a->n == 0 || memcmp(a->u.is, b->u.is, (size_t)a->n * sizeof *a->u.is) == 0);
  case KL_ATTR_FLOATS:
    return a->n == b->n &&
           (a->n == 0 || memcmp(a->u.fs, b->u.fs, (size_t)a->n * sizeof *a->u.fs) == 0);
  case KL_ATTR_STRINGS:
    if (a->n != b->n)
      return false;
    for (int i = 0; i < a->n; i++)
      if (strcmp(a->u.ss[i], b->u.ss[i]) != 0)
        return false;
    return true;
  case KL_ATTR_TENSOR: return same_tensor(a->u.t, b->u.t);
  case KL_ATTR_KIND_COUNT: break;
  }
  return false;
}

/* Attributes are compared in order: the IR prints them in insertion order, so two nodes
 * whose attributes differ only in order print differently and are left apart. */
static bool same_node(const kl_ir_node *a, const kl_ir_node *b) {
  if (a->op != b->op || a->n_inputs != b->n_inputs || a->n_attrs != b->n_attrs ||
      a->n_outputs != b->n_outputs)
    return false;
  for (int i = 0; i < a->n_inputs; i++)
    if (a->inputs[i] != b->inputs[i])
      return false;
  for (int i = 0; i < a->n_attrs; i++)
    if (!same_attr(&a->attrs[i], &b->attrs[i]))
      return false;
  for (int i = 0; i < a->n_outputs; i++)
    if (!kl_ir_type_equal(&a->outputs[i]->type, &b->outputs[i]->type))
      return false;
  return true;
}

/* ---- scopes --------------------------------------------------------------------------- */

typedef struct scope {
  const struct scope *parent; /* NULL for the graph and for a prim::FusionGroup body */
  kl_ir_node **nodes;         /* open addressing; NULL slots are empty */
  uint64_t *hashes;
  size_t cap, count;
} scope;

static void scope_init(scope *s, const scope *parent) {
  s->parent = parent;
  s->cap = 64;
  s->count = 0;
  s->nodes = calloc(s->cap, sizeof *s->nodes);
  s->hashes = calloc(s->cap, sizeof *s->hashes);
  if (!s->nodes || !s->hashes)
    kl_fatal_oom();
}

static void scope_deinit(scope *s) {
  free(s->nodes);
  free(s->hashes);
}

static kl_ir_node *scope_find(const scope *s, const kl_ir_node *n, uint64_t h) {
  for (; s; s = s->parent)
    for (size_t i = h & (s->cap - 1); s->nodes[i]; i = (i + 1) & (s->cap - 1))
      if (s->hashes[i] == h && same_node(s->nodes[i], n))
        return s->nodes[i];
  return NULL;
}

static void scope_put(scope *s, kl_ir_node *n, uint64_t h);

static void scope_grow(scope *s) {
  scope old = *s;
  s->cap *= 2;
  s->count = 0;
  s->nodes = calloc(s->cap, sizeof *s->nodes);
  s->hashes = calloc(s->cap, sizeof *s->hashes);
  if (!s->nodes || !s->hashes)
    kl_fatal_oom();
  for (size_t i = 0; i < old.cap; i++)
    if (old.nodes[i])
      scope_put(s, old.nodes[i], old.hashes[i]);
  scope_deinit(&old);
}

static void scope_put(scope *s, kl_ir_node *n, uint64_t h) {
  if (2 * (s->count + 1) > s->cap)
    scope_grow(s);
  size_t i = h & (s->cap - 1);
  while (s->nodes[i])
    i = (i + 1) & (s->cap - 1);
  s->nodes[i] = n;
  s->hashes[i] = h;
  s->count++;
}

/* ---- the pass ------------------------------------------------------------------------- */

static void cse_block(kl_ir_block *b, const scope *parent, bool *changed) {
  scope here;
  scope_init(&here, parent);
  kl_ir_node *n = b->first;
  while (n) {
    kl_ir_node *next = n->next;
    if (n->n_blocks > 0) {
      bool closed = n->op == KL_OP_FUSION_GROUP;
      for (int i = 0; i < n->n_blocks; i++)
        cse_block(n->blocks[i], closed ? NULL : &here, changed);
    } else {
      uint64_t h = hash_node(n);
      kl_ir_node *first = scope_find(&here, n, h);
      if (first) {
        for (int i = 0; i < n->n_outputs; i++)
          kl_ir_value_replace_all_uses(n->outputs[i], first->outputs[i]);
        kl_ir_node_remove(n);
        *changed = true;
      } else {
        scope_put(&here, n, h);
      }
    }
    n = next;
  }
  scope_deinit(&here);
}

kl_status kl_pass_cse(kl_ir_graph *g, const kl_pass_options *opts, bool *out_changed) {
  (void)opts;
  *out_changed = false;
  cse_block(g->top, NULL, out_changed);
  return NULL;
}
