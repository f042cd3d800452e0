/* The tracer: records the eager ops a thread runs between kl_trace_begin and kl_trace_end as a
 * graph, the way torch.jit.trace does, and checks a trace against a second run (check_trace).
 *
 * The eager op call (eager.c) asks kl_fe_trace_value for the IR value of each input tensor and
 * binds its outputs with kl_fe_trace_bind, so the trace only needs a map from tensor addresses
 * to values. The map holds a reference to every tensor in it: an address cannot be reused for
 * another tensor while the trace runs. Tensors the map has never seen are the module's
 * parameters (prim::Param, hoisted to the top of the graph as TorchScript prints them) or
 * constants (prim::Constant holding a copy, so later writes through kl_data cannot change it). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ir/kir.h"
#include "../runtime/interp.h"
#include "frontend_internal.h"

/* ---- per-thread trace state ------------------------------------------------------------ */

typedef struct trace_slot {
  kl_tensor *tensor; /* NULL: empty slot; otherwise one reference held by the trace */
  kl_ir_value *value;
} trace_slot;

typedef struct trace_state {
  kl_ir_graph *graph; /* NULL when no trace is active */
  kl_module *params;  /* whose parameters become prim::Param; may be NULL */
  trace_slot *slots;  /* open addressing, linear probing; capacity a power of two */
  size_t cap, count;
} trace_state;

static _Thread_local trace_state tls_trace;

static size_t slot_hash(const kl_tensor *t, size_t cap) {
  uint64_t h = (uint64_t)(uintptr_t)t;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL; /* a 64-bit mixer: tensor addresses share their low bits */
  h ^= h >> 33;
  return (size_t)h & (cap - 1);
}

static trace_slot *slot_find(const trace_state *st, const kl_tensor *t) {
  if (!st->cap)
    return NULL;
  for (size_t i = slot_hash(t, st->cap);; i = (i + 1) & (st->cap - 1)) {
    trace_slot *s = &st->slots[i];
    if (!s->tensor || s->tensor == t)
      return s;
  }
}

static void slots_grow(trace_state *st) {
  size_t ncap = st->cap ? st->cap * 2 : 64;
  trace_slot *ns = calloc(ncap, sizeof *ns);
  if (!ns)
    kl_fatal_oom();
  for (size_t i = 0; i < st->cap; i++) {
    if (!st->slots[i].tensor)
      continue;
    size_t j = slot_hash(st->slots[i].tensor, ncap);
    while (ns[j].tensor)
      j = (j + 1) & (ncap - 1);
    ns[j] = st->slots[i];
  }
  free(st->slots);
  st->slots = ns;
  st->cap = ncap;
}

static kl_ir_value *lookup(const kl_tensor *t) {
  trace_slot *s = slot_find(&tls_trace, t);
  return s && s->tensor ? s->value : NULL;
}

/* Ends the trace of this thread: releases every tensor the map holds; the graph is the
 * caller's (kl_trace_end hands it over, kl_trace_abort destroys it). */
static void state_clear(void) {
  trace_state *st = &tls_trace;
  for (size_t i = 0; i < st->cap; i++)
    kl_tensor_release(st->slots[i].tensor);
  free(st->slots);
  memset(st, 0, sizeof *st);
}

/* ---- hooks for the eager op call ------------------------------------------------------- */

kl_ir_graph *kl_fe_trace_graph(void) { return tls_trace.graph; }

bool kl_tracing(void) { return tls_trace.graph != NULL; }

void kl_fe_trace_bind(kl_tensor *t, kl_ir_value *v) {
  trace_state *st = &tls_trace;
  if (!st->graph || !t || !v)
    return;
  if (st->count + 1 > st->cap / 2)
    slots_grow(st);
  trace_slot *s = slot_find(st, t);
  if (!s->tensor) {
    s->tensor = kl_tensor_retain(t);
    st->count++;
  }
  s->value = v;
}

/* The first node of the top block that is not a prim::Param: parameters go before it. */
static kl_ir_node *first_non_param(const kl_ir_graph *g) {
  kl_ir_node *n = g->top->first;
  while (n && n->op == KL_OP_PARAM)
    n = n->next;
  return n;
}

kl_status kl_fe_trace_value(kl_tensor *t, kl_ir_value **out_value) {
  trace_state *st = &tls_trace;
  *out_value = NULL;
  if (!st->graph)
    return kl_status_create(KL_ERR_INTERNAL, "kl_fe_trace_value: no trace is active");
  if (!t)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_fe_trace_value: NULL tensor");
  kl_ir_value *bound = lookup(t);
  if (bound) {
    *out_value = bound;
    return NULL;
  }
  kl_ir_graph *g = st->graph;
  kl_tensor *copy;
  KL_RETURN_IF_ERROR(kl_tensor_clone(t, &copy));
  const char *param = st->params ? kl_module_param_name(st->params, t) : NULL;
  kl_ir_node *n;
  if (param) {
    n = kl_ir_node_create(g, KL_OP_PARAM, NULL, 0, 1);
    kl_ir_node_set_string(n, "name", param);
    kl_ir_node *before = first_non_param(g);
    if (before)
      kl_ir_node_insert_before(n, before);
    else
      kl_ir_block_append(g->top, n);
    kl_ir_value_set_name(n->outputs[0], param);
    kl_ir_graph_set_weight(g, param, copy);
  } else {
    n = kl_ir_node_create(g, KL_OP_CONSTANT, NULL, 0, 1);
    kl_ir_node_set_tensor(n, "value", copy);
    kl_ir_block_append(g->top, n);
  }
  kl_tensor_release(copy); /* the graph holds its own reference */
  n->outputs[0]->type = kl_ir_type_of_tensor(t);
  kl_fe_trace_bind(t, n->outputs[0]);
  *out_value = n->outputs[0];
  return NULL;
}

void kl_fe_trace_note_read(const kl_tensor *t, const char *file, int line, const char *what) {
  if (!tls_trace.graph || !t)
    return;
  kl_ir_value *v = lookup(t);
  /* A constant's values are in the graph as they are, so a branch on them is faithful; only
   * values computed by traced ops (or parameters, which can be reloaded) are at risk. */
  if (!v || (v->node && v->node->op == KL_OP_CONSTANT))
    return;
  kl_fe_warn(file, line,
             "reading a tensor's values during a trace (%s): a branch on them is baked into "
             "the trace as if they were constants, so the trace might not generalize to other "
             "inputs",
             what ? what : "a read");
}

/* ---- begin, end, abort ------------------------------------------------------------------ */

kl_status kl_trace_begin(kl_module *params, int n_inputs, kl_tensor *const *inputs,
                         const char *const *input_names) {
  if (tls_trace.graph)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "kl_trace_begin: a trace is already active in this thread (traces "
                            "do not nest; end or abort it first)");
  if (n_inputs < 0 || (n_inputs > 0 && !inputs))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "kl_trace_begin: %d inputs given with %s input array", n_inputs,
                            inputs ? "an" : "a NULL");
  for (int i = 0; i < n_inputs; i++) {
    if (!inputs[i])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_trace_begin: input %d is NULL", i);
    for (int j = 0; j < i; j++)
      if (inputs[j] == inputs[i])
        return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                "kl_trace_begin: inputs %d and %d are the same tensor (each "
                                "graph input needs its own tensor)",
                                j, i);
    if (input_names) {
      if (!input_names[i] || !*input_names[i])
        return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                "kl_trace_begin: the name of input %d is %s", i,
                                input_names[i] ? "empty" : "NULL");
      for (int j = 0; j < i; j++)
        if (strcmp(input_names[j], input_names[i]) == 0)
          return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "kl_trace_begin: inputs %d and %d are both named \"%s\"", j, i,
                                  input_names[i]);
    }
  }
  kl_ir_graph *g = kl_ir_graph_create();
  tls_trace.graph = g;
  tls_trace.params = params;
  for (int i = 0; i < n_inputs; i++) {
    char name[32];
    if (!input_names) {
      if (i == 0)
        snprintf(name, sizeof name, "x");
      else
        snprintf(name, sizeof name, "x%d", i);
    }
    kl_ir_type type = kl_ir_type_of_tensor(inputs[i]);
    kl_ir_value *v = kl_ir_block_add_param(g->top, input_names ? input_names[i] : name, &type);
    kl_fe_trace_bind(inputs[i], v);
  }
  return NULL;
}

void kl_trace_abort(void) {
  kl_ir_graph *g = tls_trace.graph;
  state_clear();
  kl_ir_graph_destroy(g);
}

/* Gives the values nodes define readable names: parameters keep theirs, every other value is
 * numbered 1, 2, ... in graph order. Two passes, so that no new name meets an old number. */
static void renumber(kl_ir_graph *g) {
  int k = 0;
  for (int pass = 0; pass < 2; pass++) {
    k = 0;
    for (kl_ir_node *n = g->top->first; n; n = n->next) {
      if (n->op == KL_OP_PARAM)
        continue;
      for (int i = 0; i < n->n_outputs; i++) {
        char name[40];
        snprintf(name, sizeof name, pass == 0 ? "trace.tmp.%d" : "%d", ++k);
        kl_ir_value_set_name(n->outputs[i], name);
      }
    }
  }
}

kl_status kl_trace_end(int n_outputs, kl_tensor *const *outputs, kl_ir_graph **out_graph) {
  if (out_graph)
    *out_graph = NULL;
  if (!tls_trace.graph)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "kl_trace_end: no trace is active in this thread (kl_trace_begin "
                            "was not called, or the trace already ended)");
  kl_status s = NULL;
  if (!out_graph)
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_trace_end: out_graph is NULL");
  else if (n_outputs < 1 || !outputs)
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT,
                         "kl_trace_end: a trace needs at least one output (%d given%s)",
                         n_outputs, outputs ? "" : ", output array NULL");
  for (int i = 0; !s && i < n_outputs; i++)
    if (!outputs[i])
      s = kl_status_create(KL_ERR_INVALID_ARGUMENT,
                           "kl_trace_end: output %d is NULL (did an op in the traced code fail?)",
                           i);
  kl_ir_graph *g = tls_trace.graph;
  for (int i = 0; !s && i < n_outputs; i++) {
    kl_ir_value *v;
    s = kl_fe_trace_value(outputs[i], &v);
    if (!s)
      kl_ir_block_add_return(g->top, v);
  }
  if (!s) {
    /* An op that failed leaves the constants made for its inputs behind, unused. */
    for (kl_ir_node *n = g->top->first, *next; n; n = next) {
      next = n->next;
      if (n->op == KL_OP_CONSTANT && n->outputs[0]->n_uses == 0)
        kl_ir_node_remove(n);
    }
    renumber(g);
    kl_status bad = kl_ir_verify(g);
    if (bad) {
      s = kl_status_create(KL_ERR_INTERNAL,
                           "kl_trace_end: the traced graph does not verify (a bug in kiln): %s",
                           kl_status_message(bad));
      kl_status_destroy(bad);
    }
  }
  if (s) {
    kl_trace_abort();
    return s;
  }
  state_clear();
  *out_graph = g;
  return NULL;
}

kl_status kl_graph_save(const kl_ir_graph *g, const char *path) {
  if (!g || !path)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_graph_save: %s is NULL",
                            g ? "path" : "the graph");
  return kl_kir_save(g, path);
}

/* ---- tracing a function ------------------------------------------------------------------ */

/* kl_trace_fn, and with out_eager (n_outputs entries) also the outputs fn computed eagerly, as
 * new references the caller releases. fn runs in its own scope, so whatever it creates is
 * released here, whether it succeeds or not. */
static kl_status trace_run(kl_forward_fn fn, void *ctx, kl_module *params, int n_inputs,
                           kl_tensor *const *inputs, int n_outputs, kl_ir_graph **out_graph,
                           kl_tensor **out_eager) {
  if (!fn || !out_graph)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_trace_fn: %s is NULL",
                            fn ? "out_graph" : "the function to trace");
  *out_graph = NULL;
  if (n_outputs < 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "kl_trace_fn: a trace needs at least one output (%d asked for)",
                            n_outputs);
  kl_tensor **outputs = calloc((size_t)n_outputs, sizeof *outputs);
  if (!outputs)
    kl_fatal_oom();
  kl_scope_begin();
  kl_status s = kl_trace_begin(params, n_inputs, inputs, NULL);
  if (!s) {
    kl_clear_error(); /* so that an error fn reports is the one quoted below */
    if (!fn(ctx, inputs, outputs)) {
      kl_status last = kl_last_error();
      s = kl_status_create(last ? kl_status_code_of(last) : KL_ERR_INVALID_ARGUMENT,
                           "kl_trace_fn: the traced function failed%s%s", last ? ": " : "",
                           last ? kl_status_message(last) : " (it returned false)");
      if (kl_tracing())
        kl_trace_abort();
    } else {
      s = kl_trace_end(n_outputs, outputs, out_graph);
      for (int i = 0; !s && out_eager && i < n_outputs; i++)
        out_eager[i] = kl_tensor_retain(outputs[i]);
    }
  }
  kl_scope_end();
  free(outputs);
  return s;
}

kl_status kl_trace_fn(kl_forward_fn fn, void *ctx, kl_module *params, int n_inputs,
                      kl_tensor *const *inputs, int n_outputs, kl_ir_graph **out_graph) {
  return trace_run(fn, ctx, params, n_inputs, inputs, n_outputs, out_graph, NULL);
}

/* ---- describing nodes for messages ---------------------------------------------------- */

typedef struct text_buf {
  char *p;
  size_t size, len;
} text_buf;

static void tb_put(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_put(text_buf *b, const char *fmt, ...) {
  if (b->len + 1 >= b->size)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->p + b->len, b->size - b->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    b->len = b->len + (size_t)n < b->size ? b->len + (size_t)n : b->size - 1;
}

static void tb_tensor(text_buf *b, const kl_tensor *t) {
  char type[128];
  kl_ir_type ty = kl_ir_type_of_tensor(t);
  kl_ir_type_format(NULL, &ty, type, sizeof type);
  tb_put(b, "%s{", type);
  for (int64_t i = 0; i < t->numel && t->data && i < 4; i++) {
    if (kl_dtype_is_float(t->dtype))
      tb_put(b, "%s%g", i ? ", " : "", kl_dtype_load_f64(t->dtype, t->data, (size_t)i));
    else
      tb_put(b, "%s%lld", i ? ", " : "",
             (long long)kl_dtype_load_i64(t->dtype, t->data, (size_t)i));
  }
  tb_put(b, "%s}", t->numel > 4 ? ", ..." : "");
}

static void tb_attr(text_buf *b, const kl_ir_attr *a) {
  tb_put(b, "%s=", a->name);
  switch (a->kind) {
  case KL_ATTR_INT: tb_put(b, "%lld", (long long)a->u.i); break;
  case KL_ATTR_FLOAT: tb_put(b, "%.9g", a->u.f); break;
  case KL_ATTR_STRING: tb_put(b, "\"%s\"", a->u.s ? a->u.s : ""); break;
  case KL_ATTR_DTYPE: tb_put(b, "%s", kl_dtype_ir_name(a->u.dtype)); break;
  case KL_ATTR_TENSOR:
    if (a->u.t)
      tb_tensor(b, a->u.t);
    else
      tb_put(b, "None");
    break;
  case KL_ATTR_INTS:
  case KL_ATTR_FLOATS:
  case KL_ATTR_STRINGS:
    tb_put(b, "[");
    for (int i = 0; i < a->n; i++) {
      const char *sep = i ? ", " : "";
      if (a->kind == KL_ATTR_INTS)
        tb_put(b, "%s%lld", sep, (long long)a->u.is[i]);
      else if (a->kind == KL_ATTR_FLOATS)
        tb_put(b, "%s%.9g", sep, a->u.fs[i]);
      else
        tb_put(b, "%s\"%s\"", sep, a->u.ss[i] ? a->u.ss[i] : "");
    }
    tb_put(b, "]");
    break;
  default: tb_put(b, "?"); break;
  }
}

/* A value's name for messages; graph inputs are named as in `names` (the checked trace), since
 * the second run names its inputs x, x1, ... whatever the first run called them. */
static const char *value_label(const kl_ir_value *v, const kl_ir_graph *names) {
  if (!v->node && !v->block->owner && v->index < names->top->n_params)
    return names->top->params[v->index]->name;
  return v->name;
}

/* "aten::leaky_relu[negative_slope=0.2](%x)" into buf. */
static void describe_node(const kl_ir_node *n, const kl_ir_graph *names, char *buf, size_t size) {
  text_buf b = {buf, size, 0};
  buf[0] = '\0';
  tb_put(&b, "%s", kl_ir_node_op_name(n));
  if (n->n_attrs) {
    tb_put(&b, "[");
    for (int i = 0; i < n->n_attrs; i++) {
      if (i)
        tb_put(&b, ", ");
      tb_attr(&b, &n->attrs[i]);
    }
    tb_put(&b, "]");
  }
  tb_put(&b, "(");
  for (int i = 0; i < n->n_inputs; i++)
    tb_put(&b, "%s%%%s", i ? ", " : "", value_label(n->inputs[i], names));
  tb_put(&b, ")");
}

/* ---- comparing two graphs --------------------------------------------------------------- */

/* Positions of the top block's nodes, indexed by node id; -1 for nodes elsewhere. */
static int *node_positions(const kl_ir_graph *g) {
  int *pos = malloc((size_t)(g->next_node_id ? g->next_node_id : 1) * sizeof *pos);
  if (!pos)
    kl_fatal_oom();
  for (int i = 0; i < g->next_node_id; i++)
    pos[i] = -1;
  int k = 0;
  for (const kl_ir_node *n = g->top->first; n; n = n->next)
    pos[n->id] = k++;
  return pos;
}

/* Where a value comes from, comparable across graphs: graph input i, or output j of the node at
 * position p of the top block. */
static int64_t value_origin(const kl_ir_value *v, const int *pos) {
  if (!v->node)
    return v->block->owner ? INT64_MIN : -1 - (int64_t)v->index;
  int p = pos[v->node->id];
  return p < 0 ? INT64_MIN : (int64_t)p * 65536 + v->index;
}

static bool tensors_equal(const kl_tensor *a, const kl_tensor *b) {
  if (!a || !b)
    return a == b;
  if (a->dtype != b->dtype || a->rank != b->rank || a->nbytes != b->nbytes)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (a->shape[i] != b->shape[i])
      return false;
  return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
}

static bool floats_equal(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

static bool attrs_equal(const kl_ir_attr *a, const kl_ir_attr *b) {
  if (a->kind != b->kind)
    return false;
  switch (a->kind) {
  case KL_ATTR_INT: return a->u.i == b->u.i;
  case KL_ATTR_FLOAT: return floats_equal(a->u.f, b->u.f);
  case KL_ATTR_STRING: return strcmp(a->u.s ? a->u.s : "", b->u.s ? b->u.s : "") == 0;
  case KL_ATTR_DTYPE: return a->u.dtype == b->u.dtype;
  case KL_ATTR_TENSOR: return tensors_equal(a->u.t, b->u.t);
  case KL_ATTR_INTS:
  case KL_ATTR_FLOATS:
  case KL_ATTR_STRINGS:
    if (a->n != b->n)
      return false;
    for (int i = 0; i < a->n; i++) {
      bool same = a->kind == KL_ATTR_INTS     ? a->u.is[i] == b->u.is[i]
                  : a->kind == KL_ATTR_FLOATS ? floats_equal(a->u.fs[i], b->u.fs[i])
                                              : strcmp(a->u.ss[i] ? a->u.ss[i] : "",
                                                       b->u.ss[i] ? b->u.ss[i] : "") == 0;
      if (!same)
        return false;
    }
    return true;
  default: return false;
  }
}

/* NULL when node a of this run matches node b of the trace; else what differs and its likely
 * cause, for the message. Output sizes are not compared (see kl_trace_check). */
static const char *node_difference(const kl_ir_node *a, const kl_ir_node *b, const int *pos_a,
                                   const int *pos_b, char *why, size_t size) {
  if (a->op != b->op)
    return "the program probably branches on tensor values (kl_item, kl_data) or on input shapes";
  if (a->n_inputs != b->n_inputs)
    return "the program probably branches on tensor values or input shapes";
  for (int i = 0; i < a->n_inputs; i++)
    if (value_origin(a->inputs[i], pos_a) != value_origin(b->inputs[i], pos_b)) {
      snprintf(why, size, "input %d comes from elsewhere; the program probably chooses its "
                          "operands from tensor values", i);
      return why;
    }
  if (a->n_attrs != b->n_attrs)
    return "the program probably computes attributes from tensor values or input shapes";
  for (int i = 0; i < a->n_attrs; i++) {
    const kl_ir_attr *other = kl_ir_node_attr(b, a->attrs[i].name);
    if (other && attrs_equal(&a->attrs[i], other))
      continue;
    if (a->op == KL_OP_CONSTANT)
      return "the constant's values differ: the program probably computes a constant from "
             "tensor values (kl_item, kl_data) or input shapes, and the trace baked it in";
    snprintf(why, size, "attribute %s differs: the program probably computes it from tensor "
                        "values or input shapes", a->attrs[i].name);
    return why;
  }
  if (a->n_blocks != b->n_blocks || a->n_outputs != b->n_outputs)
    return "the nodes have different numbers of sub-blocks or outputs";
  for (int i = 0; i < a->n_outputs; i++) {
    const kl_ir_type *ta = &a->outputs[i]->type, *tb = &b->outputs[i]->type;
    if (ta->dtype != tb->dtype || ta->rank != tb->rank) {
      char sa[128], sb[128];
      kl_ir_type_format(a->graph, ta, sa, sizeof sa);
      kl_ir_type_format(b->graph, tb, sb, sizeof sb);
      snprintf(why, size, "output %d is %s in this run, %s in the trace", i, sa, sb);
      return why;
    }
  }
  return NULL;
}

/* Compares the graph of this run with the checked trace, node by node in order. */
static kl_status compare_graphs(const kl_ir_graph *run, const kl_ir_graph *trace) {
  for (int i = 0; i < run->top->n_params; i++) {
    const kl_ir_type *ta = &run->top->params[i]->type, *tb = &trace->top->params[i]->type;
    if (ta->dtype != tb->dtype || ta->rank != tb->rank) {
      char sa[128], sb[128];
      kl_ir_type_format(run, ta, sa, sizeof sa);
      kl_ir_type_format(trace, tb, sb, sizeof sb);
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "trace check: input %d (%%%s) is %s here, the trace takes %s", i,
                              trace->top->params[i]->name, sa, sb);
    }
  }
  int *pos_a = node_positions(run), *pos_b = node_positions(trace);
  kl_status s = NULL;
  char da[512], db[512], why[512];
  int index = 1;
  const kl_ir_node *a = run->top->first, *b = trace->top->first;
  for (; !s && (a || b); a = a ? a->next : NULL, b = b ? b->next : NULL, index++) {
    if (!a || !b) {
      describe_node(a ? a : b, trace, da, sizeof da);
      s = kl_status_create(KL_ERR_INVALID_ARGUMENT,
                           "trace check: the graphs differ at node %d: %s %s, %s; the program "
                           "probably branches on tensor values or input shapes",
                           index, a ? "this run recorded" : "this run ended before",
                           da, a ? "the trace had ended" : "which the trace has");
      break;
    }
    const char *hint = node_difference(a, b, pos_a, pos_b, why, sizeof why);
    if (hint) {
      describe_node(a, trace, da, sizeof da);
      describe_node(b, trace, db, sizeof db);
      s = kl_status_create(KL_ERR_INVALID_ARGUMENT,
                           "trace check: the graphs differ at node %d: this run recorded %s, the "
                           "trace has %s; %s",
                           index, da, db, hint);
    }
  }
  if (!s && run->top->n_returns != trace->top->n_returns)
    s = kl_status_create(KL_ERR_INVALID_ARGUMENT,
                         "trace check: this run returns %d values, the trace %d",
                         run->top->n_returns, trace->top->n_returns);
  for (int i = 0; !s && i < run->top->n_returns; i++) {
    const kl_ir_value *va = run->top->returns[i], *vb = trace->top->returns[i];
    if (value_origin(va, pos_a) != value_origin(vb, pos_b))
      s = kl_status_create(KL_ERR_INVALID_ARGUMENT,
                           "trace check: output %d is %%%s in this run, %%%s in the trace; the "
                           "program probably chooses its outputs from tensor values",
                           i, value_label(va, trace), vb->name);
  }
  free(pos_a);
  free(pos_b);
  return s;
}

/* ---- comparing outputs ---------------------------------------------------------------------- */

static void format_index(int64_t flat, const kl_tensor *t, char *buf, size_t size) {
  int64_t idx[KL_MAX_RANK];
  for (int d = t->rank - 1; d >= 0; d--) {
    idx[d] = t->shape[d] ? flat % t->shape[d] : 0;
    flat = t->shape[d] ? flat / t->shape[d] : 0;
  }
  kl_shape_format(idx, t->rank, buf, size);
}

#define TRACE_RTOL 1e-5
#define TRACE_ATOL 1e-6

/* The graph's output i (traced) against fn's eager output: same dtype and shape, and values
 * within |traced - eager| <= atol + rtol * |eager| (exact for integers and bools). */
static kl_status compare_output(int i, const kl_tensor *traced, const kl_tensor *eager) {
  if (traced->dtype != eager->dtype || !kl_tensor_same_shape(traced, eager)) {
    char sa[128], sb[128];
    kl_ir_type ta = kl_ir_type_of_tensor(traced), tb = kl_ir_type_of_tensor(eager);
    kl_ir_type_format(NULL, &ta, sa, sizeof sa);
    kl_ir_type_format(NULL, &tb, sb, sizeof sb);
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "trace check: output %d of the trace is %s, the eager run gave %s", i,
                            sa, sb);
  }
  bool is_float = kl_dtype_is_float(traced->dtype);
  int64_t worst = -1, bad = 0;
  double worst_err = -1;
  for (int64_t k = 0; k < traced->numel; k++) {
    double err;
    bool ok;
    if (is_float) {
      double a = kl_dtype_load_f64(traced->dtype, traced->data, (size_t)k);
      double b = kl_dtype_load_f64(eager->dtype, eager->data, (size_t)k);
      if (floats_equal(a, b))
        err = 0, ok = true;
      else if (isnan(a) || isnan(b))
        err = INFINITY, ok = false;
      else
        err = fabs(a - b), ok = err <= TRACE_ATOL + TRACE_RTOL * fabs(b);
    } else {
      int64_t a = kl_dtype_load_i64(traced->dtype, traced->data, (size_t)k);
      int64_t b = kl_dtype_load_i64(eager->dtype, eager->data, (size_t)k);
      ok = a == b;
      err = ok ? 0 : fabs((double)a - (double)b);
    }
    if (!ok)
      bad++;
    if (err > worst_err) {
      worst_err = err;
      worst = k;
    }
  }
  if (!bad)
    return NULL;
  char where[256];
  format_index(worst, traced, where, sizeof where);
  double a = kl_dtype_load_f64(traced->dtype, traced->data, (size_t)worst);
  double b = kl_dtype_load_f64(eager->dtype, eager->data, (size_t)worst);
  return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                          "trace check: output %d of the trace differs from the eager run in "
                          "%lld of %lld elements: largest error %g at %s (trace %g, eager %g; "
                          "rtol %g, atol %g)",
                          i, (long long)bad, (long long)traced->numel, worst_err, where, a, b,
                          TRACE_RTOL, TRACE_ATOL);
}

/* The check works on graphs with static shapes: the graph comparison ignores sizes (only dtypes
 * and ranks of values must agree), because other inputs may legitimately have other sizes and
 * a graph may declare symbolic dims; running g on the other inputs then needs inputs that fit
 * g's declared types, and the interpreter says so when they do not. A data-dependent branch
 * that takes the same path on the other inputs cannot be seen here (nor by PyTorch). */
kl_status kl_trace_check(const kl_ir_graph *g, kl_forward_fn fn, void *ctx, kl_module *params,
                         int n_inputs, kl_tensor *const *other_inputs, int n_outputs) {
  if (!g || !fn)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_trace_check: %s is NULL",
                            g ? "the function" : "the graph");
  if (n_inputs != g->top->n_params || n_outputs != g->top->n_returns)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "kl_trace_check: the trace takes %d inputs and returns %d outputs, "
                            "but %d inputs and %d outputs were given",
                            g->top->n_params, g->top->n_returns, n_inputs, n_outputs);
  if (n_outputs < 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "kl_trace_check: the trace has no outputs");
  kl_tensor **eager = calloc((size_t)n_outputs * 2, sizeof *eager);
  if (!eager)
    kl_fatal_oom();
  kl_tensor **traced = eager + n_outputs;
  kl_ir_graph *run = NULL;
  kl_status s = trace_run(fn, ctx, params, n_inputs, other_inputs, n_outputs, &run, eager);
  if (s)
    s = kl_status_annotate(s, "trace check: tracing the program on the other inputs");
  if (!s)
    s = compare_graphs(run, g);
  if (!s) {
    s = kl_interp_run(g, other_inputs, n_inputs, traced);
    if (s)
      s = kl_status_annotate(s, "trace check: running the trace on the other inputs");
  }
  for (int i = 0; !s && i < n_outputs; i++)
    s = compare_output(i, traced[i], eager[i]);
  for (int i = 0; i < 2 * n_outputs; i++)
    kl_tensor_release(eager[i]);
  free(eager);
  kl_ir_graph_destroy(run);
  return s;
}
