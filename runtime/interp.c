/* The graph interpreter. Each run keeps its own environment (one tensor slot per value id),
 * so runs share nothing but the read-only graph and may proceed on many threads at once.
 * Output shapes are recomputed from the concrete input shapes by the ops' shape functions,
 * which is what lets a graph with symbolic dims run on any size within the symbols' bounds.
 * Parameters and constants are not copied: their slots hold references to the graph's tensors.
 * Intermediate tensors of the top-level block are released after their last use. */
#include "interp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run {
  const kl_ir_graph *g;
  kl_tensor **env;    /* by value id */
  int *uses_left;     /* by value id: top-level uses not yet executed */
  int64_t *sym_value; /* by symbol index: bound size, -1 while unbound */
  int depth;
  kl_interp_observer_fn after_node; /* NULL, or called after each top-level node */
  void *after_node_ctx;
} run;

#define MAX_DEPTH 64

static void env_set(run *r, const kl_ir_value *v, kl_tensor *t) {
  kl_tensor_release(r->env[v->id]);
  r->env[v->id] = t;
}

static kl_status node_error(kl_status s, const kl_ir_node *n) {
  if (n->n_outputs)
    return kl_status_annotate(s, "%%%s = %s", n->outputs[0]->name, kl_ir_node_op_name(n));
  return kl_status_annotate(s, "%s", kl_ir_node_op_name(n));
}

/* Checks a runtime tensor against a declared type, binding symbols on first sight. */
static kl_status check_against_type(run *r, const kl_tensor *t, const kl_ir_type *type,
                                    const char *what) {
  char want[256], have[256];
  kl_ir_type_format(r->g, type, want, sizeof want);
  kl_shape_format(t->shape, t->rank, have, sizeof have);
  if (t->dtype != type->dtype || t->rank != type->rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: expected %s, got %s%s", what, want,
                            kl_dtype_ir_name(t->dtype), have);
  for (int d = 0; d < type->rank; d++) {
    kl_ir_dim dim = type->dims[d];
    int64_t size = t->shape[d];
    if (kl_ir_dim_is_static(dim) && dim.size != size)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: expected %s, got %s%s (dim %d)",
                              what, want, kl_dtype_ir_name(t->dtype), have, d);
    if (dim.sym >= 0) {
      const kl_ir_symbol *sym = &r->g->symbols[dim.sym];
      if (r->sym_value[dim.sym] < 0) {
        if (size < sym->min || size > sym->max)
          return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                  "%s: dim %d is %lld, outside the bounds of %s (%lld..%lld)",
                                  what, d, (long long)size, sym->name, (long long)sym->min,
                                  (long long)sym->max);
        r->sym_value[dim.sym] = size;
      } else if (r->sym_value[dim.sym] != size) {
        return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                "%s: dim %d is %lld but %s is already %lld", what, d,
                                (long long)size, sym->name, (long long)r->sym_value[dim.sym]);
      }
    }
  }
  return NULL;
}

static kl_status run_block(run *r, const kl_ir_block *b, kl_tensor *const *args, int n_args,
                           bool top);

/* Runs a sub-block with arguments and collects its returns as new references in outs. */
static kl_status run_sub(run *r, const kl_ir_block *b, kl_tensor *const *args, int n_args,
                         kl_tensor **outs) {
  if (++r->depth > MAX_DEPTH) {
    r->depth--;
    return kl_status_create(KL_ERR_LIMIT, "blocks nested deeper than %d", MAX_DEPTH);
  }
  kl_status s = run_block(r, b, args, n_args, false);
  r->depth--;
  KL_RETURN_IF_ERROR(s);
  for (int i = 0; i < b->n_returns; i++)
    outs[i] = kl_tensor_retain(r->env[b->returns[i]->id]);
  return NULL;
}

/* Runs block b with args and binds its returns to n's outputs. */
static kl_status run_sub_to_outputs(run *r, const kl_ir_node *n, const kl_ir_block *b,
                                    kl_tensor *const *args, int n_args) {
  kl_tensor **outs = calloc((size_t)n->n_outputs + 1, sizeof *outs);
  if (!outs)
    kl_fatal_oom();
  kl_status s = run_sub(r, b, args, n_args, outs);
  for (int i = 0; i < n->n_outputs; i++)
    if (s)
      kl_tensor_release(outs[i]);
    else
      env_set(r, n->outputs[i], outs[i]);
  free(outs);
  return s;
}

static bool truth(const kl_tensor *t) {
  return t->numel >= 1 && kl_dtype_load_f64(t->dtype, t->data, 0) != 0;
}

static kl_status run_if(run *r, const kl_ir_node *n, kl_tensor *const *in) {
  if (in[0]->numel != 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "condition has %lld elements, needs 1",
                            (long long)in[0]->numel);
  const kl_ir_block *b = n->blocks[truth(in[0]) ? 0 : 1];
  if (b->n_returns != n->n_outputs)
    return kl_status_create(KL_ERR_INTERNAL, "branch returns %d values for %d outputs",
                            b->n_returns, n->n_outputs);
  return run_sub_to_outputs(r, n, b, NULL, 0);
}

/* prim::Loop(max_trip_count, cond, carried...): body(iter, carried...) -> (cond, carried...). */
static kl_status run_loop(run *r, const kl_ir_node *n, kl_tensor *const *in) {
  const kl_ir_block *body = n->blocks[0];
  int n_carried = n->n_inputs - 2;
  if (body->n_params != n_carried + 1 || body->n_returns != n_carried + 1 ||
      n->n_outputs != n_carried)
    return kl_status_create(KL_ERR_INTERNAL, "loop body does not match its carried values");
  if (in[0]->numel != 1 || in[1]->numel != 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "trip count and condition must have one element each");
  int64_t max_trip = kl_dtype_load_i64(in[0]->dtype, in[0]->data, 0);
  bool cond = truth(in[1]);
  kl_tensor **args = calloc((size_t)n_carried + 1, sizeof *args);
  kl_tensor **rets = calloc((size_t)n_carried + 1, sizeof *rets);
  if (!args || !rets)
    kl_fatal_oom();
  kl_tensor **carried = args + 1; /* args[0] is the iteration counter */
  kl_tensor **state = calloc((size_t)n_carried + 1, sizeof *state);
  if (!state)
    kl_fatal_oom();
  for (int i = 0; i < n_carried; i++)
    state[i] = kl_tensor_retain(in[2 + i]);
  kl_status s = NULL;
  for (int64_t iter = 0; !s && cond && iter < max_trip; iter++) {
    kl_tensor *counter;
    s = kl_tensor_create(KL_I64, 0, NULL, &counter);
    if (s)
      break;
    ((int64_t *)counter->data)[0] = iter;
    args[0] = counter;
    for (int i = 0; i < n_carried; i++)
      carried[i] = state[i];
    s = run_sub(r, body, args, n_carried + 1, rets);
    kl_tensor_release(counter);
    if (s)
      break;
    cond = truth(rets[0]);
    kl_tensor_release(rets[0]);
    for (int i = 0; i < n_carried; i++) {
      kl_tensor_release(state[i]);
      state[i] = rets[1 + i];
    }
  }
  for (int i = 0; i < n_carried; i++) {
    if (s)
      kl_tensor_release(state[i]);
    else
      env_set(r, n->outputs[i], state[i]);
  }
  free(state);
  free(args);
  free(rets);
  return s;
}

static kl_status run_fusion_group(run *r, const kl_ir_node *n, kl_tensor *const *in) {
  const kl_ir_block *body = n->blocks[0];
  if (body->n_params != n->n_inputs || body->n_returns != n->n_outputs)
    return kl_status_create(KL_ERR_INTERNAL, "fusion group body does not match the node");
  return run_sub_to_outputs(r, n, body, in, n->n_inputs);
}

/* A leaf op: infer concrete output shapes, allocate, and call the reference kernel. */
static kl_status run_kernel(run *r, const kl_ir_node *n, kl_tensor *const *in) {
  kl_interp_kernel_fn kernel = kl_interp_kernel(n->op);
  if (!kernel)
    return kl_status_create(KL_ERR_UNSUPPORTED, "no reference kernel for %s",
                            kl_ir_node_op_name(n));
  kl_ir_type *in_types = malloc(((size_t)n->n_inputs + 1) * sizeof *in_types);
  kl_ir_type *out_types = malloc(((size_t)n->n_outputs + 1) * sizeof *out_types);
  kl_tensor **outs = calloc((size_t)n->n_outputs + 1, sizeof *outs);
  if (!in_types || !out_types || !outs)
    kl_fatal_oom();
  for (int i = 0; i < n->n_inputs; i++)
    in_types[i] = kl_ir_type_of_tensor(in[i]);
  for (int i = 0; i < n->n_outputs; i++)
    out_types[i] = n->outputs[i]->type;
  kl_status s = kl_ir_node_infer_types(n, in_types, n->n_inputs, out_types, n->n_outputs);
  for (int i = 0; !s && i < n->n_outputs; i++) {
    int64_t shape[KL_MAX_RANK];
    if (!kl_ir_type_shape(&out_types[i], shape)) {
      char buf[256];
      kl_ir_type_format(r->g, &out_types[i], buf, sizeof buf);
      s = kl_status_create(KL_ERR_UNSUPPORTED, "output %d has shape %s, not known at run time",
                           i, buf);
      break;
    }
    s = kl_tensor_create(out_types[i].dtype, out_types[i].rank, shape, &outs[i]);
  }
  if (!s)
    s = kernel(r->g, n, in, outs);
  for (int i = 0; i < n->n_outputs; i++) {
    if (s)
      kl_tensor_release(outs[i]);
    else
      env_set(r, n->outputs[i], outs[i]);
  }
  free(in_types);
  free(out_types);
  free(outs);
  return s;
}

/* A node that can only be spelled in static ops once its input values are known
 * (onnx::Deferred): a one-node graph of the concrete inputs as constants is expanded by the
 * op's registered expander (ir/ops.h) into static ops, run, and its results are checked
 * against the types the graph declares for the node's outputs. */
static kl_status run_expanded(run *r, const kl_ir_node *n, kl_tensor *const *in) {
  kl_ir_expand_fn expand = kl_ir_expander(n->op);
  if (!expand)
    return kl_status_create(KL_ERR_UNSUPPORTED, "%s has no expander registered; it is expanded "
                            "by the ONNX frontend (kl_onnx_register_expanders)",
                            kl_ir_node_op_name(n));
  kl_ir_graph *sub = kl_ir_graph_create();
  kl_ir_value **vals = calloc((size_t)n->n_inputs + 1, sizeof *vals);
  kl_tensor **outs = calloc((size_t)n->n_outputs + 1, sizeof *outs);
  if (!vals || !outs)
    kl_fatal_oom();
  for (int i = 0; i < n->n_inputs; i++) {
    kl_ir_node *c = kl_ir_block_add_node(sub->top, KL_OP_CONSTANT, NULL, 0, 1);
    kl_ir_node_set_tensor(c, "value", in[i]);
    c->outputs[0]->type = kl_ir_type_of_tensor(in[i]);
    kl_ir_value_set_name(c->outputs[0], n->inputs[i]->name);
    vals[i] = c->outputs[0];
  }
  kl_ir_node *d = kl_ir_block_add_node(sub->top, n->op, vals, n->n_inputs, n->n_outputs);
  for (int i = 0; i < n->n_attrs; i++)
    kl_ir_node_set_attr(d, &n->attrs[i]);
  for (int k = 0; k < n->n_outputs; k++) {
    /* The declared types without symbols (they belong to r->g): checked below instead. */
    kl_ir_type t = n->outputs[k]->type;
    for (int dim = 0; dim < t.rank; dim++)
      if (t.dims[dim].sym >= 0)
        t.dims[dim].sym = KL_DIM_UNKNOWN;
    d->outputs[k]->type = t;
    kl_ir_value_set_name(d->outputs[k], n->outputs[k]->name);
    kl_ir_block_add_return(sub->top, d->outputs[k]);
  }
  kl_status s = expand(d);
  if (!s)
    s = kl_interp_run(sub, NULL, 0, outs);
  for (int k = 0; !s && k < n->n_outputs; k++) {
    char what[300];
    snprintf(what, sizeof what, "output %d", k);
    s = check_against_type(r, outs[k], &n->outputs[k]->type, what);
  }
  for (int k = 0; k < n->n_outputs; k++) {
    if (s)
      kl_tensor_release(outs[k]);
    else
      env_set(r, n->outputs[k], outs[k]);
  }
  free(outs);
  free(vals);
  kl_ir_graph_destroy(sub);
  return s;
}

/* prim::Param and prim::Constant: a reference to the graph's tensor, checked against the type
 * the graph declares for it. */
static kl_status run_source(run *r, const kl_ir_node *n) {
  kl_tensor *t;
  if (n->op == KL_OP_PARAM) {
    const char *name = kl_ir_node_string(n, "name", "");
    t = kl_ir_graph_weight(r->g, name);
    if (!t)
      return kl_status_create(KL_ERR_NOT_FOUND, "parameter \"%s\" has no value in this model",
                              name);
  } else {
    const kl_ir_attr *a = kl_ir_node_attr(n, "value");
    if (!a || a->kind != KL_ATTR_TENSOR)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "prim::Constant has no tensor value");
    t = a->u.t;
  }
  char what[256];
  snprintf(what, sizeof what, "value of %%%s", n->outputs[0]->name);
  KL_RETURN_IF_ERROR(check_against_type(r, t, &n->outputs[0]->type, what));
  env_set(r, n->outputs[0], kl_tensor_retain(t));
  return NULL;
}

static kl_status run_block(run *r, const kl_ir_block *b, kl_tensor *const *args, int n_args,
                           bool top) {
  if (n_args != b->n_params)
    return kl_status_create(KL_ERR_INTERNAL, "block takes %d arguments, got %d", b->n_params,
                            n_args);
  for (int i = 0; i < n_args; i++)
    env_set(r, b->params[i], kl_tensor_retain(args[i]));
  kl_tensor *small[8];
  for (const kl_ir_node *n = b->first; n; n = n->next) {
    kl_tensor **in = n->n_inputs <= 8 ? small : malloc((size_t)n->n_inputs * sizeof *in);
    if (!in)
      kl_fatal_oom();
    kl_status s = NULL;
    for (int i = 0; i < n->n_inputs; i++) {
      in[i] = r->env[n->inputs[i]->id];
      if (!in[i])
        s = kl_status_create(KL_ERR_INTERNAL, "input %%%s has no value", n->inputs[i]->name);
    }
    if (!s) {
      switch (n->op) {
      case KL_OP_PARAM:
      case KL_OP_CONSTANT: s = run_source(r, n); break;
      case KL_OP_IF: s = run_if(r, n, in); break;
      case KL_OP_LOOP: s = run_loop(r, n, in); break;
      case KL_OP_FUSION_GROUP: s = run_fusion_group(r, n, in); break;
      case KL_OP_ONNX_DEFERRED: s = run_expanded(r, n, in); break;
      default: s = run_kernel(r, n, in); break;
      }
    }
    if (in != small)
      free(in);
    if (!s && top && r->after_node && n->n_outputs > 0) {
      kl_tensor **outs = n->n_outputs <= 8 ? small : malloc((size_t)n->n_outputs * sizeof *outs);
      if (!outs)
        kl_fatal_oom();
      for (int i = 0; i < n->n_outputs; i++)
        outs[i] = r->env[n->outputs[i]->id];
      s = r->after_node(r->after_node_ctx, n, outs);
      if (outs != small)
        free(outs);
    }
    if (s)
      return node_error(s, n);
    if (top) {
      for (int i = 0; i < n->n_inputs; i++) {
        const kl_ir_value *v = n->inputs[i];
        if (--r->uses_left[v->id] == 0)
          env_set(r, v, NULL);
      }
    }
  }
  return NULL;
}

kl_status kl_interp_run(const kl_ir_graph *g, kl_tensor *const *inputs, int n_inputs,
                        kl_tensor **out_outputs) {
  return kl_interp_run_observed(g, inputs, n_inputs, out_outputs, NULL, NULL);
}

kl_status kl_interp_run_observed(const kl_ir_graph *g, kl_tensor *const *inputs, int n_inputs,
                                 kl_tensor **out_outputs, kl_interp_observer_fn after_node,
                                 void *ctx) {
  const kl_ir_block *top = g->top;
  if (n_inputs != top->n_params)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "the model takes %d inputs, got %d",
                            top->n_params, n_inputs);
  for (int i = 0; i < top->n_returns; i++)
    out_outputs[i] = NULL;
  run r = {.g = g, .after_node = after_node, .after_node_ctx = ctx};
  size_t nv = (size_t)g->next_value_id + 1;
  r.env = calloc(nv, sizeof *r.env);
  r.uses_left = calloc(nv, sizeof *r.uses_left);
  r.sym_value = malloc(((size_t)g->n_symbols + 1) * sizeof *r.sym_value);
  if (!r.env || !r.uses_left || !r.sym_value)
    kl_fatal_oom();
  for (int i = 0; i < g->n_symbols; i++)
    r.sym_value[i] = -1;
  /* Top-level uses only; values also used in sub-blocks, block returns or graph outputs are
   * never counted down to zero and live until the end of the run. */
  for (const kl_ir_node *n = top->first; n; n = n->next)
    for (int i = 0; i < n->n_outputs; i++)
      r.uses_left[n->outputs[i]->id] = n->outputs[i]->n_uses;
  for (int i = 0; i < top->n_params; i++)
    r.uses_left[top->params[i]->id] = top->params[i]->n_uses;
  for (const kl_ir_node *n = top->first; n; n = n->next)
    for (int i = 0; i < n->n_outputs; i++)
      for (int u = 0; u < n->outputs[i]->n_uses; u++)
        if (!n->outputs[i]->uses[u].user || n->outputs[i]->uses[u].user->owner != top)
          r.uses_left[n->outputs[i]->id] = -1;
  for (int i = 0; i < top->n_params; i++)
    for (int u = 0; u < top->params[i]->n_uses; u++)
      if (!top->params[i]->uses[u].user || top->params[i]->uses[u].user->owner != top)
        r.uses_left[top->params[i]->id] = -1;

  kl_status s = NULL;
  for (int i = 0; i < n_inputs && !s; i++) {
    char what[300];
    snprintf(what, sizeof what, "input %%%s", top->params[i]->name);
    if (!inputs[i])
      s = kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s is missing", what);
    else
      s = check_against_type(&r, inputs[i], &top->params[i]->type, what);
  }
  if (!s)
    s = run_block(&r, top, inputs, n_inputs, true);
  for (int i = 0; !s && i < top->n_returns; i++) {
    out_outputs[i] = kl_tensor_retain(r.env[top->returns[i]->id]);
    if (!out_outputs[i])
      s = kl_status_create(KL_ERR_INTERNAL, "output %d has no value", i);
  }
  if (s) {
    for (int i = 0; i < top->n_returns; i++) {
      kl_tensor_release(out_outputs[i]);
      out_outputs[i] = NULL;
    }
  }
  for (size_t i = 0; i < nv; i++)
    kl_tensor_release(r.env[i]);
  free(r.env);
  free(r.uses_left);
  free(r.sym_value);
  return s;
}
