/* The verifier: checks the invariants every pass and loader relies on, and reports all the
 * problems it finds (up to a limit), one per line, each naming its node.
 *
 * Scoping follows TorchScript: a value is visible after its definition in its block and in
 * blocks nested below; a prim::FusionGroup body is closed and sees only its own params. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

#define MAX_PROBLEMS 50

typedef struct verifier {
  const kl_ir_graph *g;
  unsigned char *visible; /* by value id */
  char *report;           /* malloc'd, lines joined by '\n' */
  size_t len, cap;
  int problems;
} verifier;

__attribute__((format(printf, 3, 4))) static void problem(verifier *v, const kl_ir_node *n,
                                                          const char *fmt, ...) {
  v->problems++;
  if (v->problems > MAX_PROBLEMS)
    return;
  char where[512] = "";
  if (n && n->n_outputs)
    snprintf(where, sizeof where, "%%%s = %s: ", n->outputs[0]->name, kl_ir_node_op_name(n));
  else if (n)
    snprintf(where, sizeof where, "%s (node #%d): ", kl_ir_node_op_name(n), n->id);
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t need = strlen(where) + strlen(msg) + 2;
  if (v->len + need + 1 > v->cap) {
    size_t ncap = (v->cap + need) * 2;
    char *r = realloc(v->report, ncap);
    if (!r)
      kl_fatal_oom();
    v->report = r;
    v->cap = ncap;
  }
  v->len += (size_t)snprintf(v->report + v->len, v->cap - v->len, "%s%s%s", v->len ? "\n" : "",
                             where, msg);
}

static bool in_range(const verifier *v, const kl_ir_value *val) {
  return val && val->id >= 0 && val->id < v->g->next_value_id;
}

static void check_attrs(verifier *v, const kl_ir_node *n, const kl_op_info *info) {
  for (int i = 0; i < n->n_attrs; i++) {
    const kl_ir_attr *a = &n->attrs[i];
    const kl_attr_schema *s = kl_op_attr_schema(n->op, a->name);
    if (!s) {
      problem(v, n, "unknown attribute '%s' (%s takes: %s)", a->name, info->name,
              *info->attr_spec ? info->attr_spec : "none");
      continue;
    }
    if ((int)a->kind != s->kind)
      problem(v, n, "attribute '%s' is %s, expected %s", a->name, kl_ir_attr_kind_name(a->kind),
              kl_ir_attr_kind_name((kl_ir_attr_kind)s->kind));
    for (int j = 0; j < i; j++)
      if (strcmp(n->attrs[j].name, a->name) == 0)
        problem(v, n, "attribute '%s' given twice", a->name);
  }
  for (int i = 0; i < info->n_attrs; i++)
    if (info->attrs[i].required && !kl_ir_node_attr(n, info->attrs[i].name))
      problem(v, n, "missing required attribute '%s' (%s)", info->attrs[i].name,
              kl_ir_attr_kind_name((kl_ir_attr_kind)info->attrs[i].kind));
}

/* Declared output types must equal the inferred ones, where inference knows the dim. */
static void check_types(verifier *v, const kl_ir_node *n) {
  if (n->op == KL_OP_PARAM)
    return; /* its type is declared, not inferred */
  kl_ir_type small_out[4];
  kl_ir_type *out = n->n_outputs <= 4 ? small_out : malloc((size_t)n->n_outputs * sizeof *out);
  if (!out)
    kl_fatal_oom();
  kl_status s = kl_ir_node_infer_into(n, out);
  if (s) {
    problem(v, NULL, "%s", kl_status_message(s));
    kl_status_destroy(s);
  } else {
    for (int i = 0; i < n->n_outputs; i++) {
      const kl_ir_type *have = &n->outputs[i]->type, *want = &out[i];
      bool ok = have->dtype == want->dtype && have->rank == want->rank;
      for (int d = 0; ok && d < want->rank; d++)
        ok = want->dims[d].sym == KL_DIM_UNKNOWN || kl_ir_dim_equal(have->dims[d], want->dims[d]);
      if (!ok) {
        char a[256], b[256];
        kl_ir_type_format(v->g, have, a, sizeof a);
        kl_ir_type_format(v->g, want, b, sizeof b);
        problem(v, n, "output %%%s is declared %s but the op gives %s", n->outputs[i]->name, a, b);
      }
    }
  }
  if (out != small_out)
    free(out);
}

static void check_type_sane(verifier *v, const kl_ir_node *n, const kl_ir_value *val) {
  const kl_ir_type *t = &val->type;
  if (!kl_dtype_is_valid((int)t->dtype) || t->rank < 0 || t->rank > KL_MAX_RANK) {
    problem(v, n, "%%%s has an invalid type (dtype %d, rank %d)", val->name, (int)t->dtype,
            t->rank);
    return;
  }
  for (int d = 0; d < t->rank; d++) {
    kl_ir_dim dim = t->dims[d];
    if ((dim.sym == KL_DIM_STATIC && dim.size < 0) || dim.sym >= v->g->n_symbols ||
        dim.sym < KL_DIM_UNKNOWN)
      problem(v, n, "%%%s has an invalid dim %d", val->name, d);
  }
}

static void check_uses(verifier *v, const kl_ir_value *val) {
  for (int i = 0; i < val->n_uses; i++) {
    const kl_ir_use *u = &val->uses[i];
    bool ok = u->user ? (u->index >= 0 && u->index < u->user->n_inputs &&
                         u->user->inputs[u->index] == val)
                      : (u->block && u->index >= 0 && u->index < u->block->n_returns &&
                         u->block->returns[u->index] == val);
    if (!ok)
      problem(v, NULL, "use list of %%%s is stale (use %d)", val->name, i);
  }
}

static void define(verifier *v, const kl_ir_value *val, bool on) {
  if (in_range(v, val))
    v->visible[val->id] = on;
}

static void check_block(verifier *v, const kl_ir_block *b);

static void check_node(verifier *v, const kl_ir_node *n, const kl_ir_block *b) {
  if (n->op < 0 || n->op >= KL_OP_COUNT) {
    problem(v, NULL, "node #%d has an invalid op %d", n->id, (int)n->op);
    return;
  }
  const kl_op_info *info = kl_op_get(n->op);
  if (n->owner != b)
    problem(v, n, "node is linked into a block it does not record as its owner");
  bool arity_ok = true;
  if (n->n_inputs < info->min_inputs || (info->max_inputs >= 0 && n->n_inputs > info->max_inputs)) {
    problem(v, n, "%s takes %d..%d inputs, has %d", info->name, info->min_inputs,
            info->max_inputs, n->n_inputs);
    arity_ok = false;
  }
  if (n->n_outputs < info->min_outputs ||
      (info->max_outputs >= 0 && n->n_outputs > info->max_outputs)) {
    problem(v, n, "%s gives %d..%d outputs, has %d", info->name, info->min_outputs,
            info->max_outputs, n->n_outputs);
    arity_ok = false;
  }
  if (n->n_blocks != info->n_blocks) {
    problem(v, n, "%s owns %d blocks, has %d", info->name, info->n_blocks, n->n_blocks);
    arity_ok = false;
  }
  bool inputs_ok = true;
  for (int i = 0; i < n->n_inputs; i++) {
    const kl_ir_value *in = n->inputs[i];
    if (!in_range(v, in)) {
      problem(v, n, "input %d is not a value of this graph", i);
      inputs_ok = false;
    } else if (!v->visible[in->id]) {
      problem(v, n, "input %d (%%%s) is used before it is defined or outside its scope", i,
              in->name);
      inputs_ok = false;
    }
  }
  check_attrs(v, n, info);
  if (n->op == KL_OP_PARAM && !*kl_ir_node_string(n, "name", ""))
    problem(v, n, "prim::Param needs a non-empty name");
  for (int i = 0; i < n->n_blocks; i++) {
    const kl_ir_block *sub = n->blocks[i];
    if (sub->owner != n)
      problem(v, n, "block %d does not record this node as its owner", i);
    if (n->op == KL_OP_FUSION_GROUP) {
      /* A closed body: check it against a visibility table of its own. */
      unsigned char *outer = v->visible;
      v->visible = calloc((size_t)v->g->next_value_id + 1, 1);
      if (!v->visible)
        kl_fatal_oom();
      check_block(v, sub);
      free(v->visible);
      v->visible = outer;
    } else {
      check_block(v, sub);
    }
  }
  for (int i = 0; i < n->n_outputs; i++) {
    const kl_ir_value *out = n->outputs[i];
    if (!in_range(v, out) || out->node != n || out->index != i) {
      problem(v, n, "output %d does not record this node as its definition", i);
      continue;
    }
    if (v->visible[out->id])
      problem(v, n, "%%%s is defined twice", out->name);
    check_type_sane(v, n, out);
    check_uses(v, out);
  }
  if (arity_ok && inputs_ok && v->problems == 0)
    check_types(v, n);
  for (int i = 0; i < n->n_outputs; i++)
    define(v, n->outputs[i], true);
}

static void check_block(verifier *v, const kl_ir_block *b) {
  for (int i = 0; i < b->n_params; i++) {
    const kl_ir_value *p = b->params[i];
    if (!in_range(v, p) || p->block != b || p->index != i) {
      problem(v, NULL, "block parameter %d does not record its block", i);
      continue;
    }
    check_type_sane(v, NULL, p);
    check_uses(v, p);
    define(v, p, true);
  }
  int count = 0;
  for (const kl_ir_node *n = b->first; n; n = n->next) {
    if (n->next && n->next->prev != n)
      problem(v, n, "node list is broken after this node");
    check_node(v, n, b);
    if (++count > 100000000)
      break;
  }
  for (int i = 0; i < b->n_returns; i++) {
    const kl_ir_value *r = b->returns[i];
    if (!in_range(v, r))
      problem(v, NULL, "return %d is not a value of this graph", i);
    else if (!v->visible[r->id])
      problem(v, NULL, "return %d (%%%s) is not defined in scope", i, r->name);
  }
  /* Leaving the block: what it defined is no longer visible. */
  for (int i = 0; i < b->n_params; i++)
    define(v, b->params[i], false);
  for (const kl_ir_node *n = b->first; n; n = n->next)
    for (int i = 0; i < n->n_outputs; i++)
      define(v, n->outputs[i], false);
}

kl_status kl_ir_verify(const kl_ir_graph *g) {
  verifier v = {.g = g};
  v.visible = calloc((size_t)g->next_value_id + 1, 1);
  if (!v.visible)
    kl_fatal_oom();
  if (g->top->owner)
    problem(&v, NULL, "the top-level block has an owner");
  check_block(&v, g->top);
  /* Params with the same name would share one weight. */
  for (const kl_ir_node *n = g->top->first; n; n = n->next) {
    if (n->op != KL_OP_PARAM)
      continue;
    const char *name = kl_ir_node_string(n, "name", "");
    for (const kl_ir_node *m = g->top->first; m != n; m = m->next)
      if (m->op == KL_OP_PARAM && strcmp(kl_ir_node_string(m, "name", ""), name) == 0) {
        problem(&v, n, "parameter name \"%s\" is declared twice", name);
        break;
      }
  }
  free(v.visible);
  if (!v.problems)
    return NULL;
  kl_status s;
  if (v.problems > MAX_PROBLEMS)
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s\n... and %d more problems", v.report,
                         v.problems - MAX_PROBLEMS);
  else
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s", v.report);
  free(v.report);
  return s;
}
