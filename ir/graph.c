/* Graph construction and mutation: values with unique names and use lists, nodes in doubly
 * linked lists per block, attributes, weights and symbols. Everything small lives in the
 * graph's arena; the name table, weight list and held tensors are malloc'd because they grow
 * and are freed with the graph. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* ---- value name table: open addressing, string keys, tombstones on rename ------------ */

typedef struct name_table {
  const char **keys; /* NULL: empty; TOMBSTONE: deleted */
  kl_ir_value **vals;
  size_t cap, used; /* used counts live entries and tombstones */
} name_table;

static const char tombstone_key[] = "";
#define TOMBSTONE tombstone_key

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static size_t name_slot(const name_table *t, const char *name, bool *found) {
  size_t mask = t->cap - 1, i = hash_str(name) & mask, first_free = SIZE_MAX;
  for (;;) {
    const char *k = t->keys[i];
    if (!k) {
      *found = false;
      return first_free != SIZE_MAX ? first_free : i;
    }
    if (k == TOMBSTONE) {
      if (first_free == SIZE_MAX)
        first_free = i;
    } else if (strcmp(k, name) == 0) {
      *found = true;
      return i;
    }
    i = (i + 1) & mask;
  }
}

static void name_table_grow(name_table *t) {
  name_table n = {0};
  n.cap = t->cap ? t->cap * 2 : 64;
  n.keys = calloc(n.cap, sizeof *n.keys);
  n.vals = calloc(n.cap, sizeof *n.vals);
  if (!n.keys || !n.vals)
    kl_fatal_oom();
  for (size_t i = 0; i < t->cap; i++) {
    if (t->keys[i] && t->keys[i] != TOMBSTONE) {
      bool found;
      size_t s = name_slot(&n, t->keys[i], &found);
      n.keys[s] = t->keys[i];
      n.vals[s] = t->vals[i];
      n.used++;
    }
  }
  free(t->keys);
  free(t->vals);
  *t = n;
}

static kl_ir_value *name_get(const name_table *t, const char *name) {
  if (!t->cap)
    return NULL;
  bool found;
  size_t s = name_slot(t, name, &found);
  return found ? t->vals[s] : NULL;
}

static void name_put(name_table *t, const char *name, kl_ir_value *v) {
  if ((t->used + 1) * 4 >= t->cap * 3)
    name_table_grow(t);
  bool found;
  size_t s = name_slot(t, name, &found);
  if (!found && !t->keys[s])
    t->used++;
  t->keys[s] = name;
  t->vals[s] = v;
}

static void name_del(name_table *t, const char *name) {
  if (!t->cap)
    return;
  bool found;
  size_t s = name_slot(t, name, &found);
  if (found) {
    t->keys[s] = TOMBSTONE;
    t->vals[s] = NULL;
  }
}

/* ---- graph ---------------------------------------------------------------------------- */

typedef struct kl_ir_cleanup {
  struct kl_ir_cleanup *next;
  void (*fn)(void *ctx);
  void *ctx;
} kl_ir_cleanup;

static kl_ir_block *block_create(kl_ir_graph *g, kl_ir_node *owner) {
  kl_ir_block *b = kl_arena_alloc(g->arena, sizeof *b);
  b->graph = g;
  b->owner = owner;
  return b;
}

kl_ir_graph *kl_ir_graph_create(void) {
  kl_arena *a = kl_arena_create();
  kl_ir_graph *g = kl_arena_alloc(a, sizeof *g);
  g->arena = a;
  name_table *names = calloc(1, sizeof *names);
  if (!names)
    kl_fatal_oom();
  g->names = names;
  g->top = block_create(g, NULL);
  return g;
}

void kl_ir_graph_destroy(kl_ir_graph *g) {
  if (!g)
    return;
  for (int i = 0; i < g->n_weights; i++)
    kl_tensor_release(g->weights[i].tensor);
  free(g->weights);
  for (int i = 0; i < g->n_held; i++)
    kl_tensor_release(g->held[i]);
  free(g->held);
  name_table *names = g->names;
  free(names->keys);
  free(names->vals);
  free(names);
  kl_ir_cleanup *c = g->cleanups;
  kl_arena_destroy(g->arena); /* g itself lives in the arena */
  while (c) {
    kl_ir_cleanup *next = c->next;
    c->fn(c->ctx);
    free(c);
    c = next;
  }
}

void kl_ir_graph_on_destroy(kl_ir_graph *g, void (*fn)(void *ctx), void *ctx) {
  kl_ir_cleanup *c = malloc(sizeof *c);
  if (!c)
    kl_fatal_oom();
  c->fn = fn;
  c->ctx = ctx;
  c->next = g->cleanups;
  g->cleanups = c;
}

/* Grows an arena array of elem-sized items to hold at least need; old storage is abandoned
 * to the arena. */
static void *grow_array(kl_arena *a, void *items, int count, int *cap, int need, size_t elem) {
  if (need <= *cap)
    return items;
  int ncap = *cap ? *cap * 2 : 4;
  while (ncap < need)
    ncap *= 2;
  void *n = kl_arena_alloc(a, (size_t)ncap * elem);
  if (count)
    memcpy(n, items, (size_t)count * elem);
  *cap = ncap;
  return n;
}

kl_status kl_ir_graph_add_symbol(kl_ir_graph *g, const char *name, int64_t min, int64_t max,
                                 int *out_index) {
  if (kl_ir_graph_find_symbol(g, name) >= 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "dimension symbol %s declared twice", name);
  if (min < 0 || min > max)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "dimension symbol %s has bounds %lld..%lld; need 0 <= min <= max",
                            name, (long long)min, (long long)max);
  g->symbols = grow_array(g->arena, g->symbols, g->n_symbols, &g->cap_symbols, g->n_symbols + 1,
                          sizeof *g->symbols);
  kl_ir_symbol *s = &g->symbols[g->n_symbols];
  s->name = kl_arena_strdup(g->arena, name);
  s->min = min;
  s->max = max;
  if (out_index)
    *out_index = g->n_symbols;
  g->n_symbols++;
  return NULL;
}

int kl_ir_graph_find_symbol(const kl_ir_graph *g, const char *name) {
  for (int i = 0; i < g->n_symbols; i++)
    if (strcmp(g->symbols[i].name, name) == 0)
      return i;
  return -1;
}

void kl_ir_graph_set_weight(kl_ir_graph *g, const char *name, kl_tensor *t) {
  kl_tensor_retain(t);
  for (int i = 0; i < g->n_weights; i++) {
    if (strcmp(g->weights[i].name, name) == 0) {
      kl_tensor_release(g->weights[i].tensor);
      g->weights[i].tensor = t;
      return;
    }
  }
  if (g->n_weights == g->cap_weights) {
    int ncap = g->cap_weights ? g->cap_weights * 2 : 16;
    kl_ir_weight *w = realloc(g->weights, (size_t)ncap * sizeof *w);
    if (!w)
      kl_fatal_oom();
    g->weights = w;
    g->cap_weights = ncap;
  }
  g->weights[g->n_weights].name = kl_arena_strdup(g->arena, name);
  g->weights[g->n_weights].tensor = t;
  g->n_weights++;
}

kl_tensor *kl_ir_graph_weight(const kl_ir_graph *g, const char *name) {
  for (int i = 0; i < g->n_weights; i++)
    if (strcmp(g->weights[i].name, name) == 0)
      return g->weights[i].tensor;
  return NULL;
}

bool kl_ir_graph_remove_weight(kl_ir_graph *g, const char *name) {
  for (int i = 0; i < g->n_weights; i++) {
    if (strcmp(g->weights[i].name, name) == 0) {
      kl_tensor_release(g->weights[i].tensor);
      memmove(&g->weights[i], &g->weights[i + 1],
              (size_t)(g->n_weights - i - 1) * sizeof *g->weights);
      g->n_weights--;
      return true;
    }
  }
  return false;
}

static void hold_tensor(kl_ir_graph *g, kl_tensor *t) {
  if (g->n_held == g->cap_held) {
    int ncap = g->cap_held ? g->cap_held * 2 : 16;
    kl_tensor **h = realloc(g->held, (size_t)ncap * sizeof *h);
    if (!h)
      kl_fatal_oom();
    g->held = h;
    g->cap_held = ncap;
  }
  g->held[g->n_held++] = kl_tensor_retain(t);
}

/* ---- values --------------------------------------------------------------------------- */

kl_ir_value *kl_ir_graph_find_value(const kl_ir_graph *g, const char *name) {
  return name_get(g->names, name);
}

bool kl_ir_graph_name_taken(const kl_ir_graph *g, const char *name) {
  return name_get(g->names, name) != NULL;
}

kl_ir_graph *kl_ir_value_graph(const kl_ir_value *v) {
  return v->node ? v->node->graph : v->block->graph;
}

/* Gives v the name, or name.1, name.2, ... whichever is free; an empty name gets a number. */
static void assign_name(kl_ir_graph *g, kl_ir_value *v, const char *name) {
  name_table *t = g->names;
  if (v->name && name_get(t, v->name) == v)
    name_del(t, v->name);
  char buf[64];
  const char *chosen = NULL;
  if (!name || !*name) {
    do
      snprintf(buf, sizeof buf, "%d", g->next_auto_name++);
    while (name_get(t, buf));
    chosen = kl_arena_strdup(g->arena, buf);
  } else if (!name_get(t, name)) {
    chosen = kl_arena_strdup(g->arena, name);
  } else {
    size_t len = strlen(name);
    char *s = kl_arena_alloc(g->arena, len + 24);
    for (long k = 1;; k++) {
      snprintf(s, len + 24, "%s.%ld", name, k);
      if (!name_get(t, s))
        break;
    }
    chosen = s;
  }
  v->name = chosen;
  name_put(t, chosen, v);
}

static kl_ir_value *value_create(kl_ir_graph *g, const char *name) {
  kl_ir_value *v = kl_arena_alloc(g->arena, sizeof *v);
  v->id = g->next_value_id++;
  v->type.dtype = KL_F32;
  assign_name(g, v, name);
  return v;
}

void kl_ir_value_set_name(kl_ir_value *v, const char *name) {
  kl_ir_graph *g = kl_ir_value_graph(v);
  KL_ASSERT(g);
  if (v->name && name && strcmp(v->name, name) == 0)
    return;
  assign_name(g, v, name);
}

static void add_use(kl_ir_value *v, kl_ir_node *user, kl_ir_block *block, int index) {
  kl_arena *a = kl_ir_value_graph(v)->arena;
  v->uses = grow_array(a, v->uses, v->n_uses, &v->cap_uses, v->n_uses + 1, sizeof *v->uses);
  v->uses[v->n_uses++] = (kl_ir_use){user, block, index};
}

static void remove_use(kl_ir_value *v, kl_ir_node *user, kl_ir_block *block, int index) {
  for (int i = 0; i < v->n_uses; i++) {
    kl_ir_use *u = &v->uses[i];
    if (u->user == user && u->block == block && u->index == index) {
      memmove(u, u + 1, (size_t)(v->n_uses - i - 1) * sizeof *u);
      v->n_uses--;
      return;
    }
  }
  KL_ASSERT(!"use not found");
}

/* ---- blocks --------------------------------------------------------------------------- */

kl_ir_value *kl_ir_block_add_param(kl_ir_block *b, const char *name, const kl_ir_type *type) {
  kl_ir_value *v = value_create(b->graph, name);
  if (type)
    v->type = *type;
  v->block = b;
  v->index = b->n_params;
  b->params = grow_array(b->graph->arena, b->params, b->n_params, &b->cap_params,
                         b->n_params + 1, sizeof *b->params);
  b->params[b->n_params++] = v;
  return v;
}

void kl_ir_block_remove_param(kl_ir_block *b, int index) {
  KL_ASSERT(index >= 0 && index < b->n_params);
  kl_ir_value *v = b->params[index];
  KL_ASSERT(v->n_uses == 0);
  if (v->name && name_get(b->graph->names, v->name) == v)
    name_del(b->graph->names, v->name);
  for (int i = index + 1; i < b->n_params; i++) {
    b->params[i - 1] = b->params[i];
    b->params[i - 1]->index = i - 1;
  }
  b->n_params--;
}

void kl_ir_block_add_return(kl_ir_block *b, kl_ir_value *v) {
  b->returns = grow_array(b->graph->arena, b->returns, b->n_returns, &b->cap_returns,
                          b->n_returns + 1, sizeof *b->returns);
  b->returns[b->n_returns] = v;
  add_use(v, NULL, b, b->n_returns);
  b->n_returns++;
}

void kl_ir_block_set_return(kl_ir_block *b, int index, kl_ir_value *v) {
  KL_ASSERT(index >= 0 && index < b->n_returns);
  remove_use(b->returns[index], NULL, b, index);
  b->returns[index] = v;
  add_use(v, NULL, b, index);
}

void kl_ir_block_append(kl_ir_block *b, kl_ir_node *n) {
  KL_ASSERT(!n->owner);
  n->owner = b;
  n->prev = b->last;
  n->next = NULL;
  if (b->last)
    b->last->next = n;
  else
    b->first = n;
  b->last = n;
}

/* ---- nodes ---------------------------------------------------------------------------- */

static kl_ir_graph *node_graph(const kl_ir_node *n) { return n->graph; }

kl_ir_node *kl_ir_node_create(kl_ir_graph *g, kl_op op, kl_ir_value *const *inputs, int n_inputs,
                              int n_outputs) {
  KL_ASSERT(op >= 0 && op < KL_OP_COUNT && n_inputs >= 0 && n_outputs >= 0);
  kl_ir_node *n = kl_arena_alloc(g->arena, sizeof *n);
  n->op = op;
  n->graph = g;
  n->id = g->next_node_id++;
  n->outputs = kl_arena_alloc(g->arena, (size_t)(n_outputs ? n_outputs : 1) * sizeof *n->outputs);
  for (int i = 0; i < n_outputs; i++) {
    kl_ir_value *v = value_create(g, NULL);
    v->node = n;
    v->index = i;
    n->outputs[i] = v;
  }
  n->n_outputs = n_outputs;
  n->owner = NULL;
  n->inputs = grow_array(g->arena, NULL, 0, &n->cap_inputs, n_inputs ? n_inputs : 1,
                         sizeof *n->inputs);
  for (int i = 0; i < n_inputs; i++) {
    n->inputs[i] = inputs[i];
    n->n_inputs++;
    add_use(inputs[i], n, NULL, i);
  }
  return n;
}

kl_ir_node *kl_ir_block_add_node(kl_ir_block *b, kl_op op, kl_ir_value *const *inputs,
                                 int n_inputs, int n_outputs) {
  kl_ir_node *n = kl_ir_node_create(b->graph, op, inputs, n_inputs, n_outputs);
  kl_ir_block_append(b, n);
  return n;
}

static void link_between(kl_ir_node *n, kl_ir_block *b, kl_ir_node *prev, kl_ir_node *next) {
  KL_ASSERT(!n->owner);
  n->owner = b;
  n->prev = prev;
  n->next = next;
  if (prev)
    prev->next = n;
  else
    b->first = n;
  if (next)
    next->prev = n;
  else
    b->last = n;
}

void kl_ir_node_insert_before(kl_ir_node *n, kl_ir_node *before) {
  link_between(n, before->owner, before->prev, before);
}

void kl_ir_node_insert_after(kl_ir_node *n, kl_ir_node *after) {
  link_between(n, after->owner, after, after->next);
}

void kl_ir_node_move_before(kl_ir_node *n, kl_ir_node *before) {
  if (n == before)
    return;
  kl_ir_block *b = n->owner;
  if (b) {
    if (n->prev)
      n->prev->next = n->next;
    else
      b->first = n->next;
    if (n->next)
      n->next->prev = n->prev;
    else
      b->last = n->prev;
  }
  n->owner = NULL;
  n->prev = n->next = NULL;
  link_between(n, before->owner, before->prev, before);
}

static void drop_uses(kl_ir_node *n) {
  for (int i = 0; i < n->n_inputs; i++)
    remove_use(n->inputs[i], n, NULL, i);
  n->n_inputs = 0;
  for (int b = 0; b < n->n_blocks; b++) {
    kl_ir_block *blk = n->blocks[b];
    for (kl_ir_node *c = blk->first; c; c = c->next)
      drop_uses(c);
    for (int r = 0; r < blk->n_returns; r++)
      remove_use(blk->returns[r], NULL, blk, r);
    blk->n_returns = 0;
  }
}

void kl_ir_node_remove(kl_ir_node *n) {
  for (int i = 0; i < n->n_outputs; i++)
    KL_ASSERT(n->outputs[i]->n_uses == 0);
  drop_uses(n);
  kl_ir_block *b = n->owner;
  if (b) {
    if (n->prev)
      n->prev->next = n->next;
    else
      b->first = n->next;
    if (n->next)
      n->next->prev = n->prev;
    else
      b->last = n->prev;
  }
  for (int i = 0; i < n->n_outputs; i++)
    name_del(n->graph->names, n->outputs[i]->name);
  n->owner = NULL;
  n->prev = n->next = NULL;
}

void kl_ir_node_add_input(kl_ir_node *n, kl_ir_value *v) {
  kl_ir_graph *g = kl_ir_value_graph(v);
  n->inputs = grow_array(g->arena, n->inputs, n->n_inputs, &n->cap_inputs, n->n_inputs + 1,
                         sizeof *n->inputs);
  n->inputs[n->n_inputs] = v;
  add_use(v, n, NULL, n->n_inputs);
  n->n_inputs++;
}

void kl_ir_node_set_input(kl_ir_node *n, int index, kl_ir_value *v) {
  KL_ASSERT(index >= 0 && index < n->n_inputs);
  remove_use(n->inputs[index], n, NULL, index);
  n->inputs[index] = v;
  add_use(v, n, NULL, index);
}

kl_ir_value *kl_ir_node_add_output(kl_ir_node *n) {
  kl_ir_graph *g = node_graph(n);
  KL_ASSERT(g);
  int cap = n->n_outputs; /* outputs are allocated exactly; copy to grow */
  kl_ir_value **outs = kl_arena_alloc(g->arena, (size_t)(cap + 1) * sizeof *outs);
  if (n->n_outputs)
    memcpy(outs, n->outputs, (size_t)n->n_outputs * sizeof *outs);
  kl_ir_value *v = value_create(g, NULL);
  v->node = n;
  v->index = n->n_outputs;
  outs[n->n_outputs++] = v;
  n->outputs = outs;
  return v;
}

kl_ir_block *kl_ir_node_add_block(kl_ir_node *n) {
  kl_ir_graph *g = node_graph(n);
  KL_ASSERT(g);
  kl_ir_block **blocks = kl_arena_alloc(g->arena, (size_t)(n->n_blocks + 1) * sizeof *blocks);
  if (n->n_blocks)
    memcpy(blocks, n->blocks, (size_t)n->n_blocks * sizeof *blocks);
  blocks[n->n_blocks] = block_create(g, n);
  n->blocks = blocks;
  return n->blocks[n->n_blocks++];
}

void kl_ir_value_replace_all_uses(kl_ir_value *old_value, kl_ir_value *new_value) {
  if (old_value == new_value)
    return;
  while (old_value->n_uses > 0) {
    kl_ir_use u = old_value->uses[0];
    if (u.user)
      kl_ir_node_set_input(u.user, u.index, new_value);
    else
      kl_ir_block_set_return(u.block, u.index, new_value);
  }
}

const char *kl_ir_node_op_name(const kl_ir_node *n) { return kl_op_get(n->op)->name; }

int kl_ir_graph_node_count(const kl_ir_graph *g) {
  /* Iterative walk over the block tree with an explicit stack of nodes to resume at. */
  int count = 0;
  int cap = 64, top = 0;
  const kl_ir_node **stack = malloc((size_t)cap * sizeof *stack);
  if (!stack)
    kl_fatal_oom();
  const kl_ir_node *n = g->top->first;
  for (;;) {
    for (; n; n = n->next) {
      count++;
      for (int b = 0; b < n->n_blocks; b++) {
        if (!n->blocks[b]->first)
          continue;
        if (top == cap) {
          cap *= 2;
          const kl_ir_node **s = realloc(stack, (size_t)cap * sizeof *s);
          if (!s)
            kl_fatal_oom();
          stack = s;
        }
        stack[top++] = n->blocks[b]->first;
      }
    }
    if (!top)
      break;
    n = stack[--top];
  }
  free(stack);
  return count;
}

/* ---- attributes ----------------------------------------------------------------------- */

static kl_ir_attr *attr_slot(kl_ir_node *n, const char *name) {
  for (int i = 0; i < n->n_attrs; i++)
    if (strcmp(n->attrs[i].name, name) == 0)
      return &n->attrs[i];
  kl_ir_graph *g = node_graph(n);
  KL_ASSERT(g);
  n->attrs = grow_array(g->arena, n->attrs, n->n_attrs, &n->cap_attrs, n->n_attrs + 1,
                        sizeof *n->attrs);
  kl_ir_attr *a = &n->attrs[n->n_attrs++];
  memset(a, 0, sizeof *a);
  a->name = kl_arena_strdup(g->arena, name);
  return a;
}

void kl_ir_node_set_attr(kl_ir_node *n, const kl_ir_attr *attr) {
  kl_ir_graph *g = node_graph(n);
  KL_ASSERT(g);
  kl_arena *ar = g->arena;
  kl_ir_attr copy = *attr;
  switch (attr->kind) {
  case KL_ATTR_STRING:
    copy.u.s = kl_arena_strdup(ar, attr->u.s ? attr->u.s : "");
    break;
  case KL_ATTR_INTS:
    copy.u.is = kl_arena_alloc(ar, (size_t)(attr->n ? attr->n : 1) * sizeof(int64_t));
    if (attr->n)
      memcpy(copy.u.is, attr->u.is, (size_t)attr->n * sizeof(int64_t));
    break;
  case KL_ATTR_FLOATS:
    copy.u.fs = kl_arena_alloc(ar, (size_t)(attr->n ? attr->n : 1) * sizeof(double));
    if (attr->n)
      memcpy(copy.u.fs, attr->u.fs, (size_t)attr->n * sizeof(double));
    break;
  case KL_ATTR_STRINGS:
    copy.u.ss = kl_arena_alloc(ar, (size_t)(attr->n ? attr->n : 1) * sizeof(char *));
    for (int i = 0; i < attr->n; i++)
      copy.u.ss[i] = kl_arena_strdup(ar, attr->u.ss[i]);
    break;
  case KL_ATTR_TENSOR:
    hold_tensor(g, attr->u.t);
    break;
  default:
    break;
  }
  kl_ir_attr *slot = attr_slot(n, attr->name);
  copy.name = slot->name;
  *slot = copy;
}

void kl_ir_node_set_int(kl_ir_node *n, const char *name, int64_t v) {
  kl_ir_attr a = {.name = name, .kind = KL_ATTR_INT, .u.i = v};
  kl_ir_node_set_attr(n, &a);
}
void kl_ir_node_set_float(kl_ir_node *n, const char *name, double v) {
  kl_ir_attr a = {.name = name, .kind = KL_ATTR_FLOAT, .u.f = v};
  kl_ir_node_set_attr(n, &a);
}
void kl_ir_node_set_string(kl_ir_node *n, const char *name, const char *v) {
  kl_ir_attr a = {.name = name, .kind = KL_ATTR_STRING, .u.s = v};
  kl_ir_node_set_attr(n, &a);
}
void kl_ir_node_set_ints(kl_ir_node *n, const char *name, const int64_t *v, int count) {
  kl_ir_attr a = {.name = name, .kind = KL_ATTR_INTS, .n = count, .u.is = (int64_t *)v};
  kl_ir_node_set_attr(n, &a);
}
void kl_ir_node_set_floats(kl_ir_node *n, const char *name, const double *v, int count) {
  kl_ir_attr a = {.name = name, .kind = KL_ATTR_FLOATS, .n = count, .u.fs = (double *)v};
  kl_ir_node_set_attr(n, &a);
}
void kl_ir_node_set_strings(kl_ir_node *n, const char *name, const char *const *v, int count) {
  kl_ir_attr a = {.name = name, .kind = KL_ATTR_STRINGS, .n = count, .u.ss = (const char **)v};
  kl_ir_node_set_attr(n, &a);
}
void kl_ir_node_set_dtype(kl_ir_node *n, const char *name, kl_dtype v) {
  kl_ir_attr a = {.name = name, .kind = KL_ATTR_DTYPE, .u.dtype = v};
  kl_ir_node_set_attr(n, &a);
}
void kl_ir_node_set_tensor(kl_ir_node *n, const char *name, kl_tensor *v) {
  kl_ir_attr a = {.name = name, .kind = KL_ATTR_TENSOR, .u.t = v};
  kl_ir_node_set_attr(n, &a);
}

bool kl_ir_node_remove_attr(kl_ir_node *n, const char *name) {
  for (int i = 0; i < n->n_attrs; i++) {
    if (strcmp(n->attrs[i].name, name) == 0) {
      memmove(&n->attrs[i], &n->attrs[i + 1], (size_t)(n->n_attrs - i - 1) * sizeof *n->attrs);
      n->n_attrs--;
      return true;
    }
  }
  return false;
}

const kl_ir_attr *kl_ir_node_attr(const kl_ir_node *n, const char *name) {
  for (int i = 0; i < n->n_attrs; i++)
    if (strcmp(n->attrs[i].name, name) == 0)
      return &n->attrs[i];
  return NULL;
}

int64_t kl_ir_node_int(const kl_ir_node *n, const char *name, int64_t dflt) {
  const kl_ir_attr *a = kl_ir_node_attr(n, name);
  return a && a->kind == KL_ATTR_INT ? a->u.i : dflt;
}

double kl_ir_node_float(const kl_ir_node *n, const char *name, double dflt) {
  const kl_ir_attr *a = kl_ir_node_attr(n, name);
  if (a && a->kind == KL_ATTR_FLOAT)
    return a->u.f;
  return dflt;
}

const char *kl_ir_node_string(const kl_ir_node *n, const char *name, const char *dflt) {
  const kl_ir_attr *a = kl_ir_node_attr(n, name);
  return a && a->kind == KL_ATTR_STRING ? a->u.s : dflt;
}
