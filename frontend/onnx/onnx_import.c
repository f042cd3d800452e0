/* ONNX import at the graph level: bytes -> ModelProto -> kiln graph.
 *
 * The bytes are checked by the wire walker (onnx_limits.c) before protobuf-c unpacks them.
 * A first pass over the graph (and every subgraph and called function) then collects every
 * problem it can see without converting anything: unsupported ops, inputs no node defines,
 * names defined twice, nodes used before they are defined (cycles) - and reports them all in
 * one error. Only then are initializers turned into prim::Param, graph inputs into graph
 * inputs (dim_param -> symbols 1..unbounded) and each node into IR nodes through the op table
 * of onnx_import_ops.c, with shape inference node by node so an error names the ONNX node. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../runtime/limits.h"
#include "onnx_internal.h"

#define MAX_REPORTED 50

void kl_onnx_import_options_init(kl_onnx_import_options *opts) {
  const kl_limits *l = kl_limits_get(); /* runtime/limits.h: defaults and KILN_LIMITS */
  opts->max_file_bytes = (size_t)l->max_file_bytes;
  opts->max_proto_depth = (int)l->max_proto_depth;
  opts->max_subgraph_depth = (int)l->max_subgraph_depth;
  opts->max_total_bytes = (size_t)l->max_total_bytes;
}

/* ---- name maps ----------------------------------------------------------------------------- */

/* Open addressing from borrowed strings (they live in the unpacked model) to values. */
struct kl_onnx_scope {
  kl_onnx_scope *parent;
  const char **keys;
  void **vals;
  size_t cap, n;
};

static uint64_t hash_name(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

static void scope_init(kl_onnx_scope *s, kl_onnx_scope *parent) {
  memset(s, 0, sizeof *s);
  s->parent = parent;
}

static void scope_deinit(kl_onnx_scope *s) {
  free(s->keys);
  free(s->vals);
}

static void **scope_slot(kl_onnx_scope *s, const char *key, bool insert) {
  if (insert && (s->n + 1) * 2 > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    const char **keys = calloc(cap, sizeof *keys);
    void **vals = calloc(cap, sizeof *vals);
    if (!keys || !vals)
      kl_fatal_oom();
    for (size_t i = 0; i < s->cap; i++) {
      if (!s->keys[i])
        continue;
      size_t j = hash_name(s->keys[i]) & (cap - 1);
      while (keys[j])
        j = (j + 1) & (cap - 1);
      keys[j] = s->keys[i];
      vals[j] = s->vals[i];
    }
    free(s->keys);
    free(s->vals);
    s->keys = keys;
    s->vals = vals;
    s->cap = cap;
  }
  if (!s->cap)
    return NULL;
  size_t j = hash_name(key) & (s->cap - 1);
  while (s->keys[j]) {
    if (!strcmp(s->keys[j], key))
      return &s->vals[j];
    j = (j + 1) & (s->cap - 1);
  }
  if (!insert)
    return NULL;
  s->keys[j] = key;
  s->n++;
  return &s->vals[j];
}

static void scope_put(kl_onnx_scope *s, const char *key, void *val) {
  *scope_slot(s, key, true) = val;
}

static bool scope_has_local(kl_onnx_scope *s, const char *key) {
  return scope_slot(s, key, false) != NULL;
}

static void *scope_get(kl_onnx_scope *s, const char *key) {
  for (; s; s = s->parent) {
    void **slot = scope_slot(s, key, false);
    if (slot)
      return *slot;
  }
  return NULL;
}

/* ---- messages ------------------------------------------------------------------------------- */

typedef struct strbuf {
  char *s;
  size_t len, cap;
  int n_items;
} strbuf;

static void sb_addf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_addf(strbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[1024];
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  size_t add = (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1;
  if (b->len + add + 1 > b->cap) {
    size_t cap = (b->cap ? b->cap * 2 : 256) + add;
    char *s = realloc(b->s, cap);
    if (!s)
      kl_fatal_oom();
    b->s = s;
    b->cap = cap;
  }
  memcpy(b->s + b->len, tmp, add);
  b->len += add;
  b->s[b->len] = '\0';
}

static const char *node_label(const Onnx__NodeProto *node, char *buf, size_t size) {
  if (node->name && *node->name)
    snprintf(buf, size, "'%s'", node->name);
  else if (node->n_output && node->output[0] && *node->output[0])
    snprintf(buf, size, "(unnamed, output '%s')", node->output[0]);
  else
    snprintf(buf, size, "(unnamed)");
  return buf;
}

kl_status kl_onnx_node_error(const kl_onnx_node_ctx *c, kl_status_code code, const char *fmt, ...) {
  char msg[1024], label[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return kl_status_create(code, "%s: node %s (%s): %s", c->imp->name,
                          node_label(c->node, label, sizeof label),
                          c->node->op_type ? c->node->op_type : "?", msg);
}

static bool is_default_domain(const char *domain) {
  return !domain || !*domain || !strcmp(domain, "ai.onnx");
}

static const Onnx__FunctionProto *find_function(const kl_onnx_importer *imp,
                                                const Onnx__NodeProto *node) {
  for (size_t i = 0; i < imp->model->n_functions; i++) {
    const Onnx__FunctionProto *f = imp->model->functions[i];
    const char *fd = f->domain ? f->domain : "", *nd = node->domain ? node->domain : "";
    if (f->name && node->op_type && !strcmp(f->name, node->op_type) && !strcmp(fd, nd))
      return f;
  }
  return NULL;
}

static int64_t function_opset(const kl_onnx_importer *imp, const Onnx__FunctionProto *f) {
  for (size_t i = 0; i < f->n_opset_import; i++)
    if (is_default_domain(f->opset_import[i]->domain) && f->opset_import[i]->has_version)
      return f->opset_import[i]->version;
  return imp->opset;
}

/* ---- the first pass: everything wrong, all at once --------------------------------------- */

typedef struct precheck {
  kl_onnx_importer *imp;
  strbuf unsupported, problems;
  int depth;
} precheck;

static void check_nodes(precheck *pc, Onnx__NodeProto *const *nodes, size_t n_nodes,
                        kl_onnx_scope *defined, int64_t opset, const char *where);

static void check_graph(precheck *pc, const Onnx__GraphProto *g, kl_onnx_scope *parent,
                        int64_t opset, const char *where) {
  kl_onnx_scope defined;
  scope_init(&defined, parent);
  for (size_t i = 0; i < g->n_initializer; i++) {
    const char *name = g->initializer[i]->name;
    if (!name || !*name) {
      sb_addf(&pc->problems, "\n  %s: initializer %zu has no name", where, i);
      pc->problems.n_items++;
      continue;
    }
    if (scope_has_local(&defined, name)) {
      sb_addf(&pc->problems, "\n  %s: initializer '%s' is defined twice", where, name);
      pc->problems.n_items++;
    }
    scope_put(&defined, name, (void *)1);
  }
  for (size_t i = 0; i < g->n_input; i++) {
    const char *name = g->input[i]->name;
    if (!name || !*name) {
      sb_addf(&pc->problems, "\n  %s: graph input %zu has no name", where, i);
      pc->problems.n_items++;
      continue;
    }
    void **slot = scope_slot(&defined, name, false);
    if (slot && *slot == (void *)2) {
      sb_addf(&pc->problems, "\n  %s: graph input '%s' is listed twice", where, name);
      pc->problems.n_items++;
    }
    if (!slot)
      scope_put(&defined, name, (void *)2);
  }
  check_nodes(pc, g->node, g->n_node, &defined, opset, where);
  for (size_t i = 0; i < g->n_output; i++) {
    const char *name = g->output[i]->name;
    if (!name || !scope_get(&defined, name)) {
      sb_addf(&pc->problems, "\n  %s: graph output '%s' is not defined by any node, input or "
              "initializer", where, name ? name : "");
      pc->problems.n_items++;
    }
  }
  scope_deinit(&defined);
}

static void check_nodes(precheck *pc, Onnx__NodeProto *const *nodes, size_t n_nodes,
                        kl_onnx_scope *defined, int64_t opset, const char *where) {
  kl_onnx_importer *imp = pc->imp;
  /* Names some node of this graph produces, to tell "defined later" (a cycle or an unsorted
   * graph) from "never defined". */
  kl_onnx_scope later;
  scope_init(&later, NULL);
  for (size_t i = 0; i < n_nodes; i++)
    for (size_t k = 0; k < nodes[i]->n_output; k++)
      if (nodes[i]->output[k] && *nodes[i]->output[k])
        scope_put(&later, nodes[i]->output[k], (void *)1);
  for (size_t i = 0; i < n_nodes; i++) {
    const Onnx__NodeProto *node = nodes[i];
    char label[300];
    node_label(node, label, sizeof label);
    const char *op = node->op_type ? node->op_type : "";
    for (size_t k = 0; k < node->n_input; k++) {
      const char *in = node->input[k];
      if (!in || !*in || scope_get(defined, in))
        continue;
      pc->problems.n_items++;
      if (pc->problems.n_items > MAX_REPORTED)
        continue;
      if (scope_get(&later, in))
        sb_addf(&pc->problems, "\n  %s: node %s (%s) input %zu '%s' is defined by a later node "
                "(a cycle, or nodes not in topological order)", where, label, op, k, in);
      else
        sb_addf(&pc->problems, "\n  %s: node %s (%s) input %zu '%s' is not defined by any node, "
                "input or initializer", where, label, op, k, in);
    }
    const Onnx__FunctionProto *fn = find_function(imp, node);
    if (fn) {
      if (pc->depth < 8) {
        /* A function body is checked for ops only; its names are its own. */
        kl_onnx_scope fscope;
        scope_init(&fscope, NULL);
        for (size_t k = 0; k < fn->n_input; k++)
          if (fn->input[k])
            scope_put(&fscope, fn->input[k], (void *)1);
        char fwhere[300];
        snprintf(fwhere, sizeof fwhere, "function %s", fn->name);
        pc->depth++;
        check_nodes(pc, fn->node, fn->n_node, &fscope, function_opset(imp, fn), fwhere);
        pc->depth--;
        scope_deinit(&fscope);
      }
    } else if (is_default_domain(node->domain) && opset < 0) {
      pc->problems.n_items++;
      if (pc->problems.n_items <= MAX_REPORTED)
        sb_addf(&pc->problems, "\n  %s: node %s (%s) is in the default domain, but the model "
                "imports no opset of it", where, label, op);
    } else if (!is_default_domain(node->domain)) {
      pc->unsupported.n_items++;
      if (pc->unsupported.n_items <= MAX_REPORTED)
        sb_addf(&pc->unsupported, "\n  %s (domain '%s') in node %s of %s", op, node->domain,
                label, where);
    } else {
      const char *hint = NULL;
      if (!kl_onnx_find_op(op, opset, &hint)) {
        pc->unsupported.n_items++;
        if (pc->unsupported.n_items <= MAX_REPORTED)
          sb_addf(&pc->unsupported, "\n  %s (opset %lld) in node %s of %s%s%s%s", op,
                  (long long)opset, label, where, hint ? " (nearest supported op: " : "",
                  hint ? hint : "", hint ? ")" : "");
      }
    }
    /* Subgraphs see the names defined so far. */
    for (size_t a = 0; a < node->n_attribute; a++) {
      const Onnx__AttributeProto *attr = node->attribute[a];
      const Onnx__GraphProto *subs[64];
      size_t n_subs = 0;
      if (attr->g)
        subs[n_subs++] = attr->g;
      for (size_t k = 0; k < attr->n_graphs && n_subs < 64; k++)
        subs[n_subs++] = attr->graphs[k];
      for (size_t k = 0; k < n_subs; k++) {
        if (pc->depth >= imp->opts.max_subgraph_depth) {
          pc->problems.n_items++;
          sb_addf(&pc->problems, "\n  %s: node %s (%s): subgraphs nested more than %d deep",
                  where, label, op, imp->opts.max_subgraph_depth);
          continue;
        }
        char swhere[400];
        snprintf(swhere, sizeof swhere, "subgraph %s of node %s", attr->name ? attr->name : "?",
                 label);
        pc->depth++;
        check_graph(pc, subs[k], defined, opset, swhere);
        pc->depth--;
      }
    }
    for (size_t k = 0; k < node->n_output; k++) {
      const char *out = node->output[k];
      if (!out || !*out)
        continue;
      if (scope_has_local(defined, out)) {
        pc->problems.n_items++;
        if (pc->problems.n_items <= MAX_REPORTED)
          sb_addf(&pc->problems, "\n  %s: node %s (%s) output '%s' is defined twice (one name, "
                  "two definitions)", where, label, op, out);
      }
      scope_put(defined, out, (void *)3);
    }
  }
  scope_deinit(&later);
}

static kl_status precheck_model(kl_onnx_importer *imp) {
  precheck pc = {imp, {0}, {0}, 0};
  check_graph(&pc, imp->model->graph, NULL, imp->opset, "the main graph");
  kl_status s = NULL;
  if (pc.unsupported.n_items)
    s = kl_status_create(KL_ERR_UNSUPPORTED, "%s: %d unsupported op%s:%s%s%s", imp->name,
                         pc.unsupported.n_items, pc.unsupported.n_items == 1 ? "" : "s",
                         pc.unsupported.s, pc.problems.n_items ? "\nand other problems:" : "",
                         pc.problems.n_items ? pc.problems.s : "");
  else if (pc.problems.n_items)
    s = kl_status_create(KL_ERR_FORMAT, "%s: %d problem%s in the graph:%s", imp->name,
                         pc.problems.n_items, pc.problems.n_items == 1 ? "" : "s",
                         pc.problems.s);
  free(pc.unsupported.s);
  free(pc.problems.s);
  return s;
}

/* ---- conversion ----------------------------------------------------------------------------- */

kl_status kl_onnx_infer(kl_onnx_node_ctx *c, kl_ir_node *n) {
  kl_status s = kl_ir_node_infer(n);
  if (!s)
    return NULL;
  kl_status e = kl_onnx_node_error(c, kl_status_code_of(s), "%s", kl_status_message(s));
  kl_status_destroy(s);
  return e;
}

kl_status kl_onnx_emit(kl_onnx_node_ctx *c, kl_op op, kl_ir_value *const *inputs, int n_inputs,
                       int n_outputs, kl_ir_node **out_node) {
  for (int i = 0; i < n_inputs; i++)
    if (!inputs[i])
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "a required input is missing");
  kl_ir_node *n = kl_ir_block_add_node(c->block, op, inputs, n_inputs, n_outputs);
  *out_node = n;
  return NULL;
}

kl_ir_value *kl_onnx_emit_constant(kl_onnx_node_ctx *c, kl_tensor *t) {
  kl_ir_node *n = kl_ir_block_add_node(c->block, KL_OP_CONSTANT, NULL, 0, 1);
  kl_ir_node_set_tensor(n, "value", t);
  n->outputs[0]->type = kl_ir_type_of_tensor(t);
  return n->outputs[0];
}

kl_tensor *kl_onnx_const_tensor(const kl_onnx_node_ctx *c, const kl_ir_value *v) {
  if (!v || !v->node)
    return NULL;
  if (v->node->op == KL_OP_CONSTANT) {
    const kl_ir_attr *a = kl_ir_node_attr(v->node, "value");
    return a && a->kind == KL_ATTR_TENSOR ? a->u.t : NULL;
  }
  if (v->node->op == KL_OP_PARAM)
    return kl_ir_graph_weight(c->imp->g, kl_ir_node_string(v->node, "name", ""));
  return NULL;
}

bool kl_onnx_probe_value(const kl_onnx_node_ctx *c, const kl_ir_value *v) {
  const kl_ir_node *probe = c->imp->probe_node;
  if (!probe || !v)
    return false;
  for (int k = 0; k < probe->n_inputs; k++)
    if (probe->inputs[k] == v)
      c->imp->probe_reads[k] = true;
  return true;
}

/* A TypeProto of a graph input as an IR type: dim_value static, dim_param a symbol (declared
 * 1..unbounded on first use), neither unknown. */
kl_status kl_onnx_type_from_proto(kl_onnx_importer *imp, const Onnx__TypeProto *tp,
                                  const char *what, kl_ir_type *out) {
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s: %s is not a tensor (sequences, maps, "
                            "optionals and sparse tensors are not supported)", imp->name, what);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  kl_dtype dtype;
  kl_status s = kl_onnx_dtype_from_onnx(tt->has_elem_type ? tt->elem_type : 0, &dtype);
  if (s)
    return kl_status_annotate(s, "%s: %s", imp->name, what);
  if (!tt->shape)
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s: %s has no shape (its rank is unknown); "
                            "kiln needs the rank of every graph input", imp->name, what);
  if (tt->shape->n_dim > KL_MAX_RANK)
    return kl_status_create(KL_ERR_LIMIT, "%s: %s has %zu dims, more than %d", imp->name, what,
                            tt->shape->n_dim, KL_MAX_RANK);
  memset(out, 0, sizeof *out);
  out->dtype = dtype;
  out->rank = (int)tt->shape->n_dim;
  for (int d = 0; d < out->rank; d++) {
    const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
    if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
      if (dim->dim_value < 0)
        return kl_status_create(KL_ERR_FORMAT, "%s: %s dim %d is negative (%lld)", imp->name,
                                what, d, (long long)dim->dim_value);
      out->dims[d] = kl_ir_dim_static(dim->dim_value);
    } else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
               dim->dim_param && *dim->dim_param) {
      int sym = kl_ir_graph_find_symbol(imp->g, dim->dim_param);
      if (sym < 0)
        KL_RETURN_IF_ERROR(kl_ir_graph_add_symbol(imp->g, dim->dim_param, 1, INT64_MAX, &sym));
      out->dims[d].sym = sym;
      out->dims[d].size = 0;
    } else {
      out->dims[d].sym = KL_DIM_UNKNOWN;
      out->dims[d].size = 0;
    }
  }
  return NULL;
}

static kl_status add_initializers(kl_onnx_importer *imp, const Onnx__GraphProto *gp,
                                  kl_ir_block *b, kl_onnx_scope *scope) {
  kl_onnx_tensor_source src = {imp->base_dir, &imp->budget};
  for (size_t i = 0; i < gp->n_initializer; i++) {
    const Onnx__TensorProto *tp = gp->initializer[i];
    char what[400];
    snprintf(what, sizeof what, "%s: initializer '%s'", imp->name, tp->name);
    if (kl_ir_graph_weight(imp->g, tp->name))
      return kl_status_create(KL_ERR_FORMAT, "%s is defined twice (in two graphs)", what);
    kl_tensor *t;
    KL_RETURN_IF_ERROR(kl_onnx_tensor_from_proto(tp, &src, what, &t));
    kl_ir_node *n = kl_ir_block_add_node(b, KL_OP_PARAM, NULL, 0, 1);
    kl_ir_node_set_string(n, "name", tp->name);
    n->outputs[0]->type = kl_ir_type_of_tensor(t);
    kl_ir_value_set_name(n->outputs[0], tp->name);
    kl_ir_graph_set_weight(imp->g, tp->name, t);
    kl_tensor_release(t);
    scope_put(scope, tp->name, n->outputs[0]);
  }
  if (gp->n_sparse_initializer)
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s: sparse initializers are not supported",
                            imp->name);
  return NULL;
}

static kl_status convert_nodes(kl_onnx_importer *imp, Onnx__NodeProto *const *nodes,
                               size_t n_nodes, kl_ir_block *b, kl_onnx_scope *scope,
                               int64_t opset, const char *prefix);

/* Inlines a call of function fn: a fresh scope holding its formal inputs, its nodes converted
 * with the caller's attributes substituted for ref_attr_name, and its outputs bound to the
 * caller's outputs. */
static kl_status inline_function(kl_onnx_node_ctx *c, const Onnx__FunctionProto *fn) {
  kl_onnx_importer *imp = c->imp;
  if (imp->inline_depth >= 16)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "functions call each other more than 16 deep");
  kl_onnx_scope fscope;
  scope_init(&fscope, NULL);
  for (size_t k = 0; k < fn->n_input; k++)
    if (fn->input[k] && *fn->input[k] && (int)k < c->n_in && c->in[k])
      scope_put(&fscope, fn->input[k], c->in[k]);
  /* Attribute references: copy each body node with its attribute list resolved. */
  Onnx__NodeProto *copies = calloc(fn->n_node ? fn->n_node : 1, sizeof *copies);
  Onnx__NodeProto **ptrs = calloc(fn->n_node ? fn->n_node : 1, sizeof *ptrs);
  Onnx__AttributeProto ***attr_lists = calloc(fn->n_node ? fn->n_node : 1, sizeof *attr_lists);
  Onnx__AttributeProto **attr_copies = NULL;
  size_t n_attr_copies = 0;
  if (!copies || !ptrs || !attr_lists)
    kl_fatal_oom();
  for (size_t i = 0; i < fn->n_node; i++) {
    copies[i] = *fn->node[i];
    ptrs[i] = &copies[i];
    Onnx__AttributeProto **list = calloc(copies[i].n_attribute + 1, sizeof *list);
    if (!list)
      kl_fatal_oom();
    size_t n = 0;
    for (size_t a = 0; a < copies[i].n_attribute; a++) {
      Onnx__AttributeProto *attr = copies[i].attribute[a];
      if (!attr->ref_attr_name || !*attr->ref_attr_name) {
        list[n++] = attr;
        continue;
      }
      const Onnx__AttributeProto *actual = kl_onnx_attr(c->node, attr->ref_attr_name);
      if (!actual)
        continue; /* not given by the caller: the op's default applies */
      Onnx__AttributeProto *copy = malloc(sizeof *copy);
      Onnx__AttributeProto **grown = realloc(attr_copies, (n_attr_copies + 1) * sizeof *grown);
      if (!copy || !grown)
        kl_fatal_oom();
      attr_copies = grown;
      *copy = *actual;
      copy->name = attr->name;
      attr_copies[n_attr_copies++] = copy;
      list[n++] = copy;
    }
    copies[i].attribute = list;
    copies[i].n_attribute = n;
    attr_lists[i] = list;
  }
  char prefix[300];
  snprintf(prefix, sizeof prefix, "%s/",
           c->node->name && *c->node->name ? c->node->name
           : (c->node->n_output && c->node->output[0]) ? c->node->output[0] : fn->name);
  imp->inline_depth++;
  kl_status s = convert_nodes(imp, ptrs, fn->n_node, c->block, &fscope, function_opset(imp, fn),
                              prefix);
  imp->inline_depth--;
  for (size_t k = 0; !s && k < fn->n_output && (int)k < c->n_out; k++) {
    kl_ir_value *v = fn->output[k] ? scope_get(&fscope, fn->output[k]) : NULL;
    if (!v)
      s = kl_onnx_node_error(c, KL_ERR_FORMAT, "function %s does not define its output '%s'",
                             fn->name, fn->output[k] ? fn->output[k] : "");
    else
      c->out[k] = v;
  }
  for (size_t i = 0; i < fn->n_node; i++)
    free(attr_lists[i]);
  for (size_t i = 0; i < n_attr_copies; i++)
    free(attr_copies[i]);
  free(attr_copies);
  free(attr_lists);
  free(ptrs);
  free(copies);
  scope_deinit(&fscope);
  return s;
}

static kl_status convert_node(kl_onnx_importer *imp, const Onnx__NodeProto *node, kl_ir_block *b,
                              kl_onnx_scope *scope, int64_t opset, const char *prefix) {
  /* Zeroed: a mapping passes c->in with its op's arity, so for a node with fewer inputs the
   * slots past n_in (up to 16) must read as absent, which kl_onnx_emit then reports. */
  kl_ir_value *in_buf[16] = {0}, *out_buf[16] = {0};
  size_t n_in = node->n_input, n_out = node->n_output;
  kl_ir_value **in = n_in <= 16 ? in_buf : calloc(n_in, sizeof *in);
  kl_ir_value **out = n_out <= 16 ? out_buf : calloc(n_out, sizeof *out);
  if (!in || !out)
    kl_fatal_oom();
  memset(out, 0, n_out * sizeof *out);
  kl_onnx_node_ctx c = {imp, node, b, scope, opset, in, (int)n_in, out, (int)n_out};
  kl_status s = NULL;
  for (size_t k = 0; k < n_in; k++) {
    in[k] = NULL;
    if (node->input[k] && *node->input[k]) {
      in[k] = scope_get(scope, node->input[k]);
      if (!in[k] && !s)
        s = kl_onnx_node_error(&c, KL_ERR_FORMAT, "input %zu '%s' is not defined", k,
                               node->input[k]);
    }
  }
  int first_value_id = imp->g->next_value_id;
  if (!s) {
    const Onnx__FunctionProto *fn = find_function(imp, node);
    if (fn) {
      s = inline_function(&c, fn);
    } else {
      kl_onnx_op_fn map = is_default_domain(node->domain)
                              ? kl_onnx_find_op(node->op_type ? node->op_type : "", opset, NULL)
                              : NULL;
      kl_ir_node *mark = b->last;
      imp->needs_run_time = false;
      s = map ? map(&c)
              : kl_onnx_node_error(&c, KL_ERR_UNSUPPORTED, "op %s (domain '%s', opset %lld) is "
                                   "not supported", node->op_type ? node->op_type : "",
                                   node->domain ? node->domain : "", (long long)opset);
      if (s && map && imp->needs_run_time && kl_status_code_of(s) == KL_ERR_UNSUPPORTED) {
        /* The mapping needed a value or a shape known only at run time: drop what it emitted
         * and keep the node as onnx::Deferred (onnx_import_deferred.c). */
        while (b->last && b->last != mark)
          kl_ir_node_remove(b->last);
        memset(out, 0, n_out * sizeof *out);
        s = kl_onnx_emit_deferred(&c, s);
      }
    }
  }
  for (size_t k = 0; !s && k < n_out; k++) {
    const char *name = node->output[k];
    if (!name || !*name)
      continue;
    if (!out[k]) {
      s = kl_onnx_node_error(&c, KL_ERR_UNSUPPORTED, "output %zu '%s' is not supported by kiln "
                             "(only the outputs used for inference are)", k, name);
      break;
    }
    if (out[k]->id >= first_value_id) {
      char full[600];
      snprintf(full, sizeof full, "%s%s", prefix, name);
      kl_ir_value_set_name(out[k], full);
    }
    scope_put(scope, name, out[k]);
  }
  if (in != in_buf)
    free(in);
  if (out != out_buf)
    free(out);
  return s;
}

static kl_status convert_nodes(kl_onnx_importer *imp, Onnx__NodeProto *const *nodes,
                               size_t n_nodes, kl_ir_block *b, kl_onnx_scope *scope,
                               int64_t opset, const char *prefix) {
  for (size_t i = 0; i < n_nodes; i++)
    KL_RETURN_IF_ERROR(convert_node(imp, nodes[i], b, scope, opset, prefix));
  return NULL;
}

kl_status kl_onnx_import_subgraph(kl_onnx_node_ctx *c, const Onnx__GraphProto *sub,
                                  kl_ir_block *b, kl_ir_value *const *param_values,
                                  int n_params) {
  kl_onnx_importer *imp = c->imp;
  if (imp->depth >= imp->opts.max_subgraph_depth)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "subgraphs nested more than %d deep",
                              imp->opts.max_subgraph_depth);
  kl_onnx_scope scope;
  scope_init(&scope, c->scope);
  for (int i = 0; i < n_params && (size_t)i < sub->n_input; i++)
    if (param_values[i] && sub->input[i]->name)
      scope_put(&scope, sub->input[i]->name, param_values[i]);
  imp->depth++;
  kl_status s = add_initializers(imp, sub, b, &scope);
  if (!s)
    s = convert_nodes(imp, sub->node, sub->n_node, b, &scope, c->opset, "");
  imp->depth--;
  for (size_t i = 0; !s && i < sub->n_output; i++) {
    kl_ir_value *v = sub->output[i]->name ? scope_get(&scope, sub->output[i]->name) : NULL;
    if (!v)
      s = kl_onnx_node_error(c, KL_ERR_FORMAT, "subgraph output '%s' is not defined",
                             sub->output[i]->name ? sub->output[i]->name : "");
    else
      kl_ir_block_add_return(b, v);
  }
  scope_deinit(&scope);
  return s;
}

/* A bound graph input: a prim::Constant of the value, which must fit the declared type. */
static kl_status bind_input(kl_onnx_importer *imp, kl_ir_block *top, const kl_ir_type *declared,
                            const kl_onnx_binding *bound, const char *what,
                            kl_onnx_scope *scope) {
  kl_ir_type given = kl_ir_type_of_tensor(bound->value);
  bool fits = given.dtype == declared->dtype && given.rank == declared->rank;
  for (int d = 0; fits && d < given.rank; d++)
    fits = !kl_ir_dim_is_static(declared->dims[d]) ||
           declared->dims[d].size == given.dims[d].size;
  if (!fits) {
    char want[128], got[128];
    kl_ir_type_format(imp->g, declared, want, sizeof want);
    kl_ir_type_format(imp->g, &given, got, sizeof got);
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: %s is %s, but the bound value is %s",
                            imp->name, what, want, got);
  }
  kl_ir_node *n = kl_ir_block_add_node(top, KL_OP_CONSTANT, NULL, 0, 1);
  kl_ir_node_set_tensor(n, "value", bound->value);
  n->outputs[0]->type = given;
  kl_ir_value_set_name(n->outputs[0], bound->name);
  scope_put(scope, bound->name, n->outputs[0]);
  return NULL;
}

static kl_status convert_main_graph(kl_onnx_importer *imp) {
  const Onnx__GraphProto *gp = imp->model->graph;
  kl_ir_block *top = imp->g->top;
  kl_onnx_scope scope;
  scope_init(&scope, NULL);
  kl_status s = NULL;
  /* Inputs first (an initializer of the same name makes it a parameter, not an input). */
  for (size_t i = 0; !s && i < gp->n_input; i++) {
    const Onnx__ValueInfoProto *vi = gp->input[i];
    bool is_init = false;
    for (size_t k = 0; k < gp->n_initializer && !is_init; k++)
      is_init = gp->initializer[k]->name && vi->name && !strcmp(gp->initializer[k]->name, vi->name);
    if (is_init)
      continue;
    char what[300];
    snprintf(what, sizeof what, "graph input '%s'", vi->name ? vi->name : "");
    kl_ir_type t;
    s = kl_onnx_type_from_proto(imp, vi->type, what, &t);
    const kl_onnx_binding *bound = NULL;
    for (int k = 0; k < imp->n_bindings && !bound; k++)
      if (vi->name && !strcmp(imp->bindings[k].name, vi->name))
        bound = &imp->bindings[k];
    if (!s && bound)
      s = bind_input(imp, top, &t, bound, what, &scope);
    else if (!s)
      scope_put(&scope, vi->name, kl_ir_block_add_param(top, vi->name, &t));
  }
  for (int k = 0; !s && k < imp->n_bindings; k++) {
    bool found = false;
    for (size_t i = 0; i < gp->n_input && !found; i++)
      found = gp->input[i]->name && !strcmp(gp->input[i]->name, imp->bindings[k].name);
    if (!found)
      s = kl_status_create(KL_ERR_NOT_FOUND, "%s: no graph input named '%s' to bind",
                           imp->name, imp->bindings[k].name);
  }
  if (!s)
    s = add_initializers(imp, gp, top, &scope);
  if (!s)
    s = convert_nodes(imp, gp->node, gp->n_node, top, &scope, imp->opset, "");
  for (size_t i = 0; !s && i < gp->n_output; i++) {
    kl_ir_value *v = scope_get(&scope, gp->output[i]->name);
    if (!v)
      s = kl_status_create(KL_ERR_FORMAT, "%s: graph output '%s' is not defined", imp->name,
                           gp->output[i]->name);
    else
      kl_ir_block_add_return(top, v);
  }
  scope_deinit(&scope);
  return s;
}

/* Initializers read only as constant arguments (a Reshape's shape, a Clip's bounds) leave
 * parameters and constants nobody uses; they would otherwise come back as unused initializers
 * on export. Removed here with their weights. */
static void drop_unused_sources(kl_ir_graph *g) {
  for (kl_ir_node *n = g->top->first, *next; n; n = next) {
    next = n->next;
    if ((n->op != KL_OP_PARAM && n->op != KL_OP_CONSTANT) || n->outputs[0]->n_uses)
      continue;
    const char *name = n->op == KL_OP_PARAM ? kl_ir_node_string(n, "name", NULL) : NULL;
    kl_ir_node_remove(n);
    bool shared = false;
    for (kl_ir_node *m = g->top->first; name && m && !shared; m = m->next)
      shared = m->op == KL_OP_PARAM && !strcmp(kl_ir_node_string(m, "name", ""), name);
    if (name && !shared)
      kl_ir_graph_remove_weight(g, name);
  }
}

/* ---- entry points ---------------------------------------------------------------------------- */

static kl_status import_buffer(const void *data, size_t size, const char *base_dir,
                               const char *name, const kl_onnx_import_options *opts,
                               const kl_onnx_binding *bindings, int n_bindings,
                               kl_ir_graph **out_graph) {
  *out_graph = NULL;
  kl_onnx_register_expanders();
  kl_onnx_importer imp;
  memset(&imp, 0, sizeof imp);
  imp.name = name ? name : "<onnx buffer>";
  imp.base_dir = base_dir;
  imp.bindings = bindings;
  imp.n_bindings = n_bindings;
  if (opts)
    imp.opts = *opts;
  else
    kl_onnx_import_options_init(&imp.opts);
  imp.budget = imp.opts.max_total_bytes;
  if (size > imp.opts.max_file_bytes)
    return kl_status_create(KL_ERR_LIMIT, "%s: %zu bytes, more than the limit of %zu", imp.name,
                            size, imp.opts.max_file_bytes);
  KL_RETURN_IF_ERROR(kl_onnx_check_wire(data, size, &onnx__model_proto__descriptor,
                                        imp.opts.max_proto_depth, imp.name));
  Onnx__ModelProto *model = onnx__model_proto__unpack(NULL, size, data);
  if (!model)
    return kl_status_create(KL_ERR_FORMAT, "%s: not a valid ONNX ModelProto (protobuf-c could "
                            "not unpack it)", imp.name);
  imp.model = model;
  kl_status s = NULL;
  imp.opset = -1;
  for (size_t i = 0; i < model->n_opset_import; i++)
    if (is_default_domain(model->opset_import[i]->domain))
      imp.opset = model->opset_import[i]->has_version ? model->opset_import[i]->version : 1;
  if (!model->graph)
    s = kl_status_create(KL_ERR_FORMAT, "%s: the model has no graph (is this an ONNX model?)",
                         imp.name);
  else if (imp.opset >= 0 && (imp.opset < 7 || imp.opset > 22))
    s = kl_status_create(KL_ERR_UNSUPPORTED, "%s: opset %lld of the default domain; kiln "
                         "imports opsets 7 to 22", imp.name, (long long)imp.opset);
  if (!s)
    s = precheck_model(&imp);
  if (!s) {
    imp.g = kl_ir_graph_create();
    s = convert_main_graph(&imp);
  }
  if (!s)
    drop_unused_sources(imp.g);
  onnx__model_proto__free_unpacked(model, NULL);
  if (s) {
    kl_ir_graph_destroy(imp.g);
    return s;
  }
  *out_graph = imp.g;
  return NULL;
}

kl_status kl_onnx_import_buffer(const void *data, size_t size, const char *base_dir,
                                const char *name, const kl_onnx_import_options *opts,
                                kl_ir_graph **out_graph) {
  return import_buffer(data, size, base_dir, name, opts, NULL, 0, out_graph);
}

kl_status kl_onnx_import_file(const char *path, const kl_onnx_import_options *opts,
                              kl_ir_graph **out_graph) {
  return kl_onnx_import_file_bound(path, opts, NULL, 0, out_graph);
}

kl_status kl_onnx_import_file_bound(const char *path, const kl_onnx_import_options *opts,
                                    const kl_onnx_binding *bindings, int n_bindings,
                                    kl_ir_graph **out_graph) {
  *out_graph = NULL;
  kl_onnx_import_options defaults;
  if (!opts) {
    kl_onnx_import_options_init(&defaults);
    opts = &defaults;
  }
  FILE *f = fopen(path, "rb");
  if (!f)
    return kl_status_create(KL_ERR_IO, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return kl_status_create(KL_ERR_IO, "%s: not a regular file", path);
  }
  if ((uint64_t)st.st_size > (uint64_t)opts->max_file_bytes) {
    fclose(f);
    return kl_status_create(KL_ERR_LIMIT, "%s: %lld bytes, more than the limit of %zu", path,
                            (long long)st.st_size, opts->max_file_bytes);
  }
  size_t size = (size_t)st.st_size;
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf)
    kl_fatal_oom();
  size_t got = fread(buf, 1, size, f);
  fclose(f);
  if (got != size) {
    free(buf);
    return kl_status_create(KL_ERR_IO, "%s: short read", path);
  }
  char *dir = strdup(path);
  if (!dir)
    kl_fatal_oom();
  char *slash = strrchr(dir, '/');
  const char *base = ".";
  if (slash) {
    slash[slash == dir ? 1 : 0] = '\0';
    base = dir;
  }
  kl_status s = import_buffer(buf, size, base, path, opts, bindings, n_bindings, out_graph);
  free(dir);
  free(buf);
  return s;
}
