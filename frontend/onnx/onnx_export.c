/* ONNX export: a kiln graph written as an ONNX ModelProto.
 *
 * The graph is walked once, top block first. Graph inputs keep their IR names and types,
 * prim::Param becomes an initializer (raw little-endian data, shared with the tensor rather
 * than copied), prim::Constant a Constant node, prim::If / prim::Loop an If / Loop with
 * subgraphs, and a prim::FusionGroup is inlined: its body's nodes are written in its place with
 * its parameters renamed to the group's inputs. Every other op goes to onnx_export_ops.c. Every
 * value an IR node defines gets a value_info with its dtype and shape (numbers as dim_value,
 * symbols as dim_param, unknown dims empty), so tools see kiln's shapes, not re-inferred ones.
 *
 * All protobuf messages live in one arena and are never unpacked or freed one by one; the
 * model is packed into one buffer, written, and the arena dropped. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ir/arena.h"
#include "onnx.h"
#include "onnx_export_internal.h"

#ifndef KL_VERSION
#define KL_VERSION "unknown"
#endif

/* protobuf's own limit on a message; bigger models would need external data. */
#define MAX_MODEL_BYTES ((size_t)2147483647)

/* A growable array of pointers in the arena (grown by copying; the old copy is left behind,
 * which at most doubles what the lists use). */
typedef struct ptr_vec {
  void **items;
  size_t n, cap;
} ptr_vec;

struct kl_onnx_scope {
  ptr_vec nodes;
  ptr_vec value_info;
};

struct kl_onnx_exporter {
  const kl_ir_graph *g;
  int opset;
  kl_arena *arena;
  const char **names; /* ONNX name per IR value id */
  int n_names;
  ptr_vec initializers; /* all go into the main graph, which subgraphs see */
  kl_tensor **held;     /* tensors made by the exporter, released at the end */
  int n_held, cap_held;
  int next_tmp, next_node;
};

static void vec_push(kl_arena *a, ptr_vec *v, void *item) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? 2 * v->cap : 8;
    void **items = kl_arena_alloc(a, cap * sizeof *items);
    if (v->n)
      memcpy(items, v->items, v->n * sizeof *items);
    v->items = items;
    v->cap = cap;
  }
  v->items[v->n++] = item;
}

/* ---- the emitting API (onnx_export_internal.h) ----------------------------------------- */

int kl_onnx_ex_opset(const kl_onnx_exporter *ex) { return ex->opset; }

void *kl_onnx_ex_alloc(kl_onnx_exporter *ex, size_t size) {
  return kl_arena_alloc(ex->arena, size ? size : 1);
}

const char *kl_onnx_ex_name(const kl_onnx_exporter *ex, const kl_ir_value *v) {
  if (v->id >= 0 && v->id < ex->n_names && ex->names[v->id])
    return ex->names[v->id];
  return v->name;
}

const char **kl_onnx_ex_names(kl_onnx_exporter *ex, kl_ir_value *const *values, int n) {
  const char **names = kl_arena_alloc(ex->arena, ((size_t)n + 1) * sizeof *names);
  for (int i = 0; i < n; i++)
    names[i] = kl_onnx_ex_name(ex, values[i]);
  return names;
}

const char *kl_onnx_ex_tmp(kl_onnx_exporter *ex) {
  char buf[48];
  do
    snprintf(buf, sizeof buf, "kl_onnx_%d", ex->next_tmp++);
  while (kl_ir_graph_name_taken(ex->g, buf));
  return kl_arena_strdup(ex->arena, buf);
}

Onnx__NodeProto *kl_onnx_ex_node(kl_onnx_exporter *ex, kl_onnx_scope *scope, const char *op_type,
                                 const char *const *inputs, int n_inputs,
                                 const char *const *outputs, int n_outputs) {
  Onnx__NodeProto *node = kl_arena_alloc(ex->arena, sizeof *node);
  onnx__node_proto__init(node);
  char name[96];
  snprintf(name, sizeof name, "%s_%d", op_type, ex->next_node++);
  node->name = kl_arena_strdup(ex->arena, name);
  node->op_type = kl_arena_strdup(ex->arena, op_type);
  node->n_input = (size_t)n_inputs;
  node->input = kl_arena_alloc(ex->arena, ((size_t)n_inputs + 1) * sizeof(char *));
  for (int i = 0; i < n_inputs; i++)
    node->input[i] = (char *)(inputs[i] ? inputs[i] : "");
  node->n_output = (size_t)n_outputs;
  node->output = kl_arena_alloc(ex->arena, ((size_t)n_outputs + 1) * sizeof(char *));
  for (int i = 0; i < n_outputs; i++)
    node->output[i] = (char *)outputs[i];
  vec_push(ex->arena, &scope->nodes, node);
  return node;
}

Onnx__NodeProto *kl_onnx_ex_node1(kl_onnx_exporter *ex, kl_onnx_scope *scope, const char *op_type,
                                  const char *input, const char *output) {
  return kl_onnx_ex_node(ex, scope, op_type, &input, 1, &output, 1);
}

Onnx__NodeProto *kl_onnx_ex_node2(kl_onnx_exporter *ex, kl_onnx_scope *scope, const char *op_type,
                                  const char *a, const char *b, const char *output) {
  const char *in[2] = {a, b};
  return kl_onnx_ex_node(ex, scope, op_type, in, 2, &output, 1);
}

/* Attributes are few per node; the array grows like a ptr_vec. */
static Onnx__AttributeProto *add_attr(kl_onnx_exporter *ex, Onnx__NodeProto *node,
                                      const char *name, Onnx__AttributeProto__AttributeType type) {
  Onnx__AttributeProto *a = kl_arena_alloc(ex->arena, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = kl_arena_strdup(ex->arena, name);
  a->has_type = 1;
  a->type = type;
  Onnx__AttributeProto **list =
      kl_arena_alloc(ex->arena, (node->n_attribute + 1) * sizeof *list);
  if (node->n_attribute)
    memcpy(list, node->attribute, node->n_attribute * sizeof *list);
  list[node->n_attribute++] = a;
  node->attribute = list;
  return a;
}

void kl_onnx_ex_attr_int(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                         int64_t v) {
  Onnx__AttributeProto *a = add_attr(ex, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->has_i = 1;
  a->i = v;
}

void kl_onnx_ex_attr_float(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                           double v) {
  Onnx__AttributeProto *a =
      add_attr(ex, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  a->has_f = 1;
  a->f = (float)v;
}

void kl_onnx_ex_attr_ints(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                          const int64_t *v, int n) {
  Onnx__AttributeProto *a = add_attr(ex, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = (size_t)n;
  a->ints = kl_arena_alloc(ex->arena, ((size_t)n + 1) * sizeof *a->ints);
  if (n)
    memcpy(a->ints, v, (size_t)n * sizeof *v);
}

void kl_onnx_ex_attr_string(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                            const char *v) {
  Onnx__AttributeProto *a =
      add_attr(ex, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  a->has_s = 1;
  a->s.data = (uint8_t *)kl_arena_strdup(ex->arena, v);
  a->s.len = strlen(v);
}

/* ---- list attributes of the recurrent ops (issue 4) ---- */
void kl_onnx_ex_attr_floats(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                            const double *v, int n) {
  Onnx__AttributeProto *a =
      add_attr(ex, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
  a->n_floats = (size_t)n;
  a->floats = kl_arena_alloc(ex->arena, ((size_t)n + 1) * sizeof *a->floats);
  for (int i = 0; i < n; i++)
    a->floats[i] = (float)v[i];
}

void kl_onnx_ex_attr_strings(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                             const char *const *v, int n) {
  Onnx__AttributeProto *a =
      add_attr(ex, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
  a->n_strings = (size_t)n;
  a->strings = kl_arena_alloc(ex->arena, ((size_t)n + 1) * sizeof *a->strings);
  for (int i = 0; i < n; i++) {
    a->strings[i].data = (uint8_t *)kl_arena_strdup(ex->arena, v[i]);
    a->strings[i].len = strlen(v[i]);
  }
}

static void attr_graph(kl_onnx_exporter *ex, Onnx__NodeProto *node, const char *name,
                       Onnx__GraphProto *graph) {
  Onnx__AttributeProto *a =
      add_attr(ex, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
  a->g = graph;
}

/* ---- types and tensors ----------------------------------------------------------------- */

int kl_onnx_ex_elem_type(kl_dtype dt) {
  switch (dt) {
  case KL_F32: return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  case KL_F16: return ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
  case KL_BF16: return ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
  case KL_F64: return ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
  case KL_I8: return ONNX__TENSOR_PROTO__DATA_TYPE__INT8;
  case KL_U8: return ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
  case KL_I32: return ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
  case KL_I64: return ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  case KL_BOOL: return ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
  default: return ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED;
  }
}

static bool host_is_little_endian(void) {
  const uint16_t one = 1;
  return *(const uint8_t *)&one == 1;
}

/* A TensorProto for t with raw_data. On a little-endian host the data is shared with t (which
 * the graph or the exporter keeps alive until packing); otherwise it is a byte-swapped copy. */
static Onnx__TensorProto *make_tensor_proto(kl_onnx_exporter *ex, const char *name,
                                            const kl_tensor *t) {
  Onnx__TensorProto *tp = kl_arena_alloc(ex->arena, sizeof *tp);
  onnx__tensor_proto__init(tp);
  tp->name = (char *)name;
  tp->has_data_type = 1;
  tp->data_type = kl_onnx_ex_elem_type(t->dtype);
  tp->n_dims = (size_t)t->rank;
  tp->dims = kl_arena_alloc(ex->arena, ((size_t)t->rank + 1) * sizeof *tp->dims);
  for (int i = 0; i < t->rank; i++)
    tp->dims[i] = t->shape[i];
  tp->has_raw_data = 1;
  tp->raw_data.len = t->nbytes;
  size_t es = kl_dtype_size(t->dtype);
  if (host_is_little_endian() || es == 1) {
    tp->raw_data.data = t->data;
  } else {
    uint8_t *copy = kl_arena_alloc(ex->arena, t->nbytes + 1);
    const uint8_t *src = t->data;
    for (size_t i = 0; i < t->nbytes; i += es)
      for (size_t b = 0; b < es; b++)
        copy[i + b] = src[i + es - 1 - b];
    tp->raw_data.data = copy;
  }
  return tp;
}

static Onnx__ValueInfoProto *make_value_info(kl_onnx_exporter *ex, const char *name,
                                             const kl_ir_type *t) {
  Onnx__ValueInfoProto *vi = kl_arena_alloc(ex->arena, sizeof *vi);
  onnx__value_info_proto__init(vi);
  vi->name = (char *)name;
  Onnx__TypeProto *tp = kl_arena_alloc(ex->arena, sizeof *tp);
  onnx__type_proto__init(tp);
  Onnx__TypeProto__Tensor *tt = kl_arena_alloc(ex->arena, sizeof *tt);
  onnx__type_proto__tensor__init(tt);
  tt->has_elem_type = 1;
  tt->elem_type = kl_onnx_ex_elem_type(t->dtype);
  Onnx__TensorShapeProto *shape = kl_arena_alloc(ex->arena, sizeof *shape);
  onnx__tensor_shape_proto__init(shape);
  shape->n_dim = (size_t)t->rank;
  shape->dim = kl_arena_alloc(ex->arena, ((size_t)t->rank + 1) * sizeof *shape->dim);
  for (int i = 0; i < t->rank; i++) {
    Onnx__TensorShapeProto__Dimension *d = kl_arena_alloc(ex->arena, sizeof *d);
    onnx__tensor_shape_proto__dimension__init(d);
    if (kl_ir_dim_is_static(t->dims[i])) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = t->dims[i].size;
    } else if (t->dims[i].sym >= 0 && t->dims[i].sym < ex->g->n_symbols) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = (char *)ex->g->symbols[t->dims[i].sym].name;
    } /* else unknown: neither value nor param */
    shape->dim[i] = d;
  }
  tt->shape = shape;
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  vi->type = tp;
  return vi;
}

static const char *add_initializer(kl_onnx_exporter *ex, const char *name, const kl_tensor *t) {
  vec_push(ex->arena, &ex->initializers, make_tensor_proto(ex, name, t));
  return name;
}

const char *kl_onnx_ex_const_tensor(kl_onnx_exporter *ex, kl_tensor *t) {
  if (ex->n_held == ex->cap_held) {
    int cap = ex->cap_held ? 2 * ex->cap_held : 16;
    kl_tensor **held = realloc(ex->held, (size_t)cap * sizeof *held);
    if (!held)
      kl_fatal_oom();
    ex->held = held;
    ex->cap_held = cap;
  }
  ex->held[ex->n_held++] = t;
  return add_initializer(ex, kl_onnx_ex_tmp(ex), t);
}

const char *kl_onnx_ex_const_ints(kl_onnx_exporter *ex, const int64_t *v, int n) {
  int64_t shape[1] = {n};
  kl_tensor *t;
  kl_status s = kl_tensor_create(KL_I64, 1, shape, &t);
  if (s) /* a handful of int64s: only a machine out of memory gets here */
    kl_fatal_oom();
  if (n)
    memcpy(t->data, v, (size_t)n * sizeof *v);
  return kl_onnx_ex_const_tensor(ex, t);
}

const char *kl_onnx_ex_const_scalar(kl_onnx_exporter *ex, kl_dtype dtype, double v) {
  kl_tensor *t;
  kl_status s = kl_tensor_create(dtype, 0, NULL, &t);
  if (s)
    kl_fatal_oom();
  kl_dtype_store_f64(dtype, t->data, 0, v);
  return kl_onnx_ex_const_tensor(ex, t);
}

/* ---- blocks and control flow ----------------------------------------------------------- */

static kl_status export_block(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_block *b);

/* The value_info of every output n defines (under its IR name; inlined group outputs have
 * none of their own). */
static void add_output_infos(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  for (int i = 0; i < n->n_outputs; i++) {
    const kl_ir_value *v = n->outputs[i];
    if (kl_onnx_ex_name(ex, v) == v->name)
      vec_push(ex->arena, &scope->value_info, make_value_info(ex, v->name, &v->type));
  }
}

/* The output names of a subgraph (or the main graph) for block b's returns. ONNX wants each
 * output produced inside the graph under its own name: a value from an enclosing scope, a
 * block parameter, an initializer or a value returned twice goes through an Identity. An
 * inlined fusion group's output gets its IR name back that way too. */
static void add_graph_outputs(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_block *b,
                              ptr_vec *outputs) {
  for (int i = 0; i < b->n_returns; i++) {
    const kl_ir_value *v = b->returns[i];
    const char *name = kl_onnx_ex_name(ex, v);
    bool dup = false;
    for (int j = 0; j < i; j++)
      dup = dup || b->returns[j] == v;
    bool renamed = name != v->name;
    bool own = v->node && v->node->owner == b && v->node->op != KL_OP_PARAM;
    if (dup || renamed || !own) {
      const char *out = renamed && !dup ? v->name : kl_onnx_ex_tmp(ex);
      kl_onnx_ex_node1(ex, scope, "Identity", name, out);
      name = out;
    }
    vec_push(ex->arena, outputs, make_value_info(ex, name, &v->type));
  }
}

static Onnx__GraphProto *make_graph(kl_onnx_exporter *ex, const char *name, kl_onnx_scope *scope,
                                    ptr_vec *inputs, ptr_vec *outputs) {
  Onnx__GraphProto *gp = kl_arena_alloc(ex->arena, sizeof *gp);
  onnx__graph_proto__init(gp);
  gp->name = kl_arena_strdup(ex->arena, name);
  gp->n_node = scope->nodes.n;
  gp->node = (Onnx__NodeProto **)scope->nodes.items;
  gp->n_input = inputs->n;
  gp->input = (Onnx__ValueInfoProto **)inputs->items;
  gp->n_output = outputs->n;
  gp->output = (Onnx__ValueInfoProto **)outputs->items;
  /* Outputs already carry their types; a value_info repeating one is dropped. */
  ptr_vec infos = {0};
  for (size_t i = 0; i < scope->value_info.n; i++) {
    Onnx__ValueInfoProto *vi = scope->value_info.items[i];
    bool is_output = false;
    for (size_t j = 0; j < outputs->n && !is_output; j++)
      is_output = strcmp(((Onnx__ValueInfoProto *)outputs->items[j])->name, vi->name) == 0;
    if (!is_output)
      vec_push(ex->arena, &infos, vi);
  }
  gp->n_value_info = infos.n;
  gp->value_info = (Onnx__ValueInfoProto **)infos.items;
  return gp;
}

/* A sub-block as a subgraph: inputs are the given names and types (may be none). */
static kl_status make_subgraph(kl_onnx_exporter *ex, const char *name, const kl_ir_block *b,
                               ptr_vec *inputs, Onnx__GraphProto **out_graph) {
  kl_onnx_scope sub = {{0}, {0}};
  KL_RETURN_IF_ERROR(export_block(ex, &sub, b));
  ptr_vec outputs = {0};
  add_graph_outputs(ex, &sub, b, &outputs);
  *out_graph = make_graph(ex, name, &sub, inputs, &outputs);
  return NULL;
}

/* ONNX If and Loop want a one-element bool condition; anything else is cast. */
static const char *as_bool(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_value *v) {
  const char *name = kl_onnx_ex_name(ex, v);
  if (v->type.dtype == KL_BOOL)
    return name;
  const char *cast = kl_onnx_ex_tmp(ex);
  Onnx__NodeProto *node = kl_onnx_ex_node1(ex, scope, "Cast", name, cast);
  kl_onnx_ex_attr_int(ex, node, "to", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL);
  return cast;
}

static const char **output_names(kl_onnx_exporter *ex, const kl_ir_node *n) {
  return kl_onnx_ex_names(ex, n->outputs, n->n_outputs);
}

static kl_status export_if(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  ptr_vec none = {0};
  Onnx__GraphProto *then_g, *else_g;
  char name[64];
  snprintf(name, sizeof name, "then_%d", n->id);
  KL_RETURN_IF_ERROR(make_subgraph(ex, name, n->blocks[0], &none, &then_g));
  snprintf(name, sizeof name, "else_%d", n->id);
  KL_RETURN_IF_ERROR(make_subgraph(ex, name, n->blocks[1], &none, &else_g));
  const char *cond = as_bool(ex, scope, n->inputs[0]);
  Onnx__NodeProto *node =
      kl_onnx_ex_node(ex, scope, "If", &cond, 1, output_names(ex, n), n->n_outputs);
  attr_graph(ex, node, "then_branch", then_g);
  attr_graph(ex, node, "else_branch", else_g);
  return NULL;
}

/* prim::Loop(max_trip, cond, carried...) with body(iter, carried...) -> (cond, carried...) is
 * ONNX's Loop(M, cond, v...) with body(iter, cond_in, v...) -> (cond_out, v...): the body only
 * gains an unused cond_in input. */
static kl_status export_loop(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  const kl_ir_block *body = n->blocks[0];
  if (body->n_params != n->n_inputs - 1 || body->n_returns != n->n_inputs - 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "prim::Loop defining %%%s: body has %d parameters and %d returns "
                            "for %d carried values",
                            n->n_outputs ? n->outputs[0]->name : "?", body->n_params,
                            body->n_returns, n->n_inputs - 2);
  ptr_vec inputs = {0};
  kl_ir_type scalar_i64 = kl_ir_type_make(KL_I64, 0, NULL);
  kl_ir_type scalar_bool = kl_ir_type_make(KL_BOOL, 0, NULL);
  vec_push(ex->arena, &inputs, make_value_info(ex, body->params[0]->name, &scalar_i64));
  vec_push(ex->arena, &inputs, make_value_info(ex, kl_onnx_ex_tmp(ex), &scalar_bool));
  for (int i = 1; i < body->n_params; i++)
    vec_push(ex->arena, &inputs,
             make_value_info(ex, body->params[i]->name, &body->params[i]->type));

  /* The iteration counter is int64 in ONNX: if the IR body's is not, cast it inside. */
  kl_onnx_scope sub = {{0}, {0}};
  const kl_ir_value *iter = body->params[0];
  if (iter->type.dtype != KL_I64) {
    const char *raw = kl_onnx_ex_tmp(ex);
    ((Onnx__ValueInfoProto *)inputs.items[0])->name = (char *)raw;
    Onnx__NodeProto *cast = kl_onnx_ex_node1(ex, &sub, "Cast", raw, iter->name);
    kl_onnx_ex_attr_int(ex, cast, "to", kl_onnx_ex_elem_type(iter->type.dtype));
  }
  KL_RETURN_IF_ERROR(export_block(ex, &sub, body));
  /* The returned condition must be bool too. */
  ptr_vec outputs = {0};
  add_graph_outputs(ex, &sub, body, &outputs);
  Onnx__ValueInfoProto *cond_out = outputs.items[0];
  if (body->returns[0]->type.dtype != KL_BOOL) {
    const char *b = kl_onnx_ex_tmp(ex);
    Onnx__NodeProto *cast = kl_onnx_ex_node1(ex, &sub, "Cast", cond_out->name, b);
    kl_onnx_ex_attr_int(ex, cast, "to", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL);
    outputs.items[0] = make_value_info(ex, b, &scalar_bool);
  }
  char name[64];
  snprintf(name, sizeof name, "loop_body_%d", n->id);
  Onnx__GraphProto *body_g = make_graph(ex, name, &sub, &inputs, &outputs);

  int n_in = n->n_inputs;
  const char **in = kl_arena_alloc(ex->arena, (size_t)n_in * sizeof *in);
  in[0] = kl_onnx_ex_name(ex, n->inputs[0]);
  if (n->inputs[0]->type.dtype != KL_I64) {
    const char *m = kl_onnx_ex_tmp(ex);
    Onnx__NodeProto *cast = kl_onnx_ex_node1(ex, scope, "Cast", in[0], m);
    kl_onnx_ex_attr_int(ex, cast, "to", ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
    in[0] = m;
  }
  in[1] = as_bool(ex, scope, n->inputs[1]);
  for (int i = 2; i < n_in; i++)
    in[i] = kl_onnx_ex_name(ex, n->inputs[i]);
  Onnx__NodeProto *node =
      kl_onnx_ex_node(ex, scope, "Loop", in, n_in, output_names(ex, n), n->n_outputs);
  attr_graph(ex, node, "body", body_g);
  return NULL;
}

/* The body's nodes go where the group was; its parameters are the group's inputs and the
 * group's outputs are the body's returns. */
static kl_status export_fusion_group(kl_onnx_exporter *ex, kl_onnx_scope *scope,
                                     const kl_ir_node *n) {
  const kl_ir_block *body = n->blocks[0];
  if (body->n_params != n->n_inputs || body->n_returns != n->n_outputs)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "prim::FusionGroup defining %%%s: body does not match the node",
                            n->n_outputs ? n->outputs[0]->name : "?");
  for (int i = 0; i < body->n_params; i++)
    ex->names[body->params[i]->id] = kl_onnx_ex_name(ex, n->inputs[i]);
  KL_RETURN_IF_ERROR(export_block(ex, scope, body));
  for (int i = 0; i < n->n_outputs; i++)
    ex->names[n->outputs[i]->id] = kl_onnx_ex_name(ex, body->returns[i]);
  return NULL;
}

static kl_status export_node(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  switch (n->op) {
  case KL_OP_PARAM: {
    const char *pname = kl_ir_node_string(n, "name", n->outputs[0]->name);
    kl_tensor *w = kl_ir_graph_weight(ex->g, pname);
    if (!w)
      return kl_status_create(KL_ERR_NOT_FOUND,
                              "prim::Param %%%s: the model holds no tensor for parameter '%s' "
                              "(a text IR file has no weights; export a .kir)",
                              n->outputs[0]->name, pname);
    add_initializer(ex, n->outputs[0]->name, w);
    return NULL;
  }
  case KL_OP_CONSTANT: {
    /* A placeholder read only where an RNN writes an omitted input ("") is not written: the
     * import makes it again, under the same name. */
    const kl_ir_value *cv = n->outputs[0];
    bool only_placeholder = cv->n_uses > 0 && kl_onnx_ex_is_rnn_placeholder(cv);
    for (int u = 0; only_placeholder && u < cv->n_uses; u++) {
      const kl_ir_node *user = cv->uses[u].user;
      only_placeholder = user && cv->uses[u].index >= 3 &&
                         (user->op == KL_OP_RNN || user->op == KL_OP_GRU || user->op == KL_OP_LSTM);
    }
    if (only_placeholder)
      return NULL;
    const kl_ir_attr *value = kl_ir_node_attr(n, "value");
    if (!value || value->kind != KL_ATTR_TENSOR)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "prim::Constant %%%s has no tensor value",
                              n->outputs[0]->name);
    const char *out = n->outputs[0]->name;
    Onnx__NodeProto *node = kl_onnx_ex_node(ex, scope, "Constant", NULL, 0, &out, 1);
    Onnx__AttributeProto *a =
        add_attr(ex, node, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = make_tensor_proto(ex, "", value->u.t);
    break;
  }
  case KL_OP_IF: KL_RETURN_IF_ERROR(export_if(ex, scope, n)); break;
  case KL_OP_LOOP: KL_RETURN_IF_ERROR(export_loop(ex, scope, n)); break;
  case KL_OP_FUSION_GROUP: return export_fusion_group(ex, scope, n);
  default: KL_RETURN_IF_ERROR(kl_onnx_export_op(ex, scope, n)); break;
  }
  add_output_infos(ex, scope, n);
  return NULL;
}

static kl_status export_block(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_block *b) {
  for (const kl_ir_node *n = b->first; n; n = n->next) {
    for (int i = 0; i < n->n_outputs; i++)
      if (n->outputs[i]->type.dtype >= KL_DTYPE_COUNT ||
          kl_onnx_ex_elem_type(n->outputs[i]->type.dtype) == ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED)
        return kl_status_create(KL_ERR_UNSUPPORTED, "%s defining %%%s: dtype has no ONNX form",
                                kl_ir_node_op_name(n), n->outputs[i]->name);
    KL_RETURN_IF_ERROR(export_node(ex, scope, n)); /* messages name the op and the node */
  }
  return NULL;
}

/* ---- the model ------------------------------------------------------------------------- */

/* The IR version that goes with an opset (the onnx package's table). */
static int64_t ir_version_for(int opset) {
  if (opset >= 21)
    return 10;
  if (opset >= 19)
    return 9;
  return 8;
}

static kl_status build_model(kl_onnx_exporter *ex, Onnx__ModelProto *model) {
  const kl_ir_block *top = ex->g->top;
  kl_onnx_scope scope = {{0}, {0}};
  ptr_vec inputs = {0}, outputs = {0};
  for (int i = 0; i < top->n_params; i++)
    vec_push(ex->arena, &inputs, make_value_info(ex, top->params[i]->name, &top->params[i]->type));
  KL_RETURN_IF_ERROR(export_block(ex, &scope, top));
  add_graph_outputs(ex, &scope, top, &outputs);
  Onnx__GraphProto *gp = make_graph(ex, "kiln", &scope, &inputs, &outputs);
  gp->n_initializer = ex->initializers.n;
  gp->initializer = (Onnx__TensorProto **)ex->initializers.items;

  onnx__model_proto__init(model);
  model->has_ir_version = 1;
  model->ir_version = ir_version_for(ex->opset);
  Onnx__OperatorSetIdProto *opset = kl_arena_alloc(ex->arena, sizeof *opset);
  onnx__operator_set_id_proto__init(opset);
  opset->domain = (char *)"";
  opset->has_version = 1;
  opset->version = ex->opset;
  model->n_opset_import = 1;
  model->opset_import = kl_arena_alloc(ex->arena, sizeof *model->opset_import);
  model->opset_import[0] = opset;
  model->producer_name = (char *)"kiln";
  model->producer_version = (char *)KL_VERSION;
  model->graph = gp;
  return NULL;
}

static kl_status write_file(const char *path, const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return kl_status_create(KL_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  size_t put = fwrite(data, 1, size, f);
  int write_errno = put != size ? errno : 0;
  if (fclose(f) != 0 && !write_errno)
    write_errno = errno ? errno : EIO;
  if (write_errno) {
    remove(path);
    return kl_status_create(KL_ERR_IO, "%s: cannot write: %s", path, strerror(write_errno));
  }
  return NULL;
}

kl_status kl_onnx_export_file(const kl_ir_graph *g, const char *path, int opset) {
  if (opset == 0)
    opset = KL_ONNX_EXPORT_DEFAULT_OPSET;
  if (opset < KL_ONNX_EXPORT_MIN_OPSET || opset > KL_ONNX_EXPORT_MAX_OPSET)
    return kl_status_create(KL_ERR_UNSUPPORTED,
                            "%s: opset %d: kiln writes ONNX opsets %d to %d", path, opset,
                            KL_ONNX_EXPORT_MIN_OPSET, KL_ONNX_EXPORT_MAX_OPSET);
  kl_onnx_exporter ex = {0};
  ex.g = g;
  ex.opset = opset;
  ex.arena = kl_arena_create();
  ex.n_names = g->next_value_id;
  ex.names = kl_arena_alloc(ex.arena, ((size_t)ex.n_names + 1) * sizeof *ex.names);

  Onnx__ModelProto model;
  kl_status s = build_model(&ex, &model);
  if (!s) {
    size_t size = onnx__model_proto__get_packed_size(&model);
    if (size > MAX_MODEL_BYTES) {
      s = kl_status_create(KL_ERR_LIMIT,
                           "%s: the model needs %zu bytes, over protobuf's 2 GiB limit "
                           "(kiln does not write external data)", path, size);
    } else {
      uint8_t *buf = malloc(size ? size : 1);
      if (!buf)
        kl_fatal_oom();
      onnx__model_proto__pack(&model, buf);
      s = write_file(path, buf, size);
      free(buf);
    }
  } else {
    s = kl_status_annotate(s, "%s", path);
  }
  for (int i = 0; i < ex.n_held; i++)
    kl_tensor_release(ex.held[i]);
  free(ex.held);
  kl_arena_destroy(ex.arena);
  return s;
}
