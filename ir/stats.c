/* Graph statistics: per-op node counts, parameter totals and a FLOP estimate from static
 * shapes. The conventions for each op are listed in stats.h; this file follows them op by op.
 * All totals are checked for overflow because shapes come from files. */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

#include "../runtime/checked.h"

/* ---- FLOPs of one node ---------------------------------------------------------------- */

/* Multiplies a chain of factors into *acc; false on overflow. */
static bool mul_into(int64_t *acc, int64_t factor) { return kl_mul_i64(*acc, factor, acc); }

static bool value_numel(const kl_ir_value *v, int64_t *out) {
  return kl_ir_type_numel(&v->type, out);
}

/* dims[index] of v's type (negative index counts from the end) when it is static. */
static bool value_dim(const kl_ir_value *v, int index, int64_t *out) {
  const kl_ir_type *t = &v->type;
  if (index < 0)
    index += t->rank;
  if (index < 0 || index >= t->rank || !kl_ir_dim_is_static(t->dims[index]))
    return false;
  *out = t->dims[index].size;
  return true;
}

static kl_status overflow(const kl_ir_node *n) {
  return kl_status_create(KL_ERR_LIMIT, "FLOP count of %s node %%%s overflows int64",
                          kl_ir_node_op_name(n),
                          n->n_outputs > 0 ? n->outputs[0]->name : "?");
}

/* Ops with no arithmetic: structure, conversions, identity at inference, data movement. */
static bool is_free(kl_op op, kl_fuse_category cat) {
  switch (op) {
  case KL_OP_PARAM:
  case KL_OP_CONSTANT:
  case KL_OP_IF:
  case KL_OP_LOOP:
  case KL_OP_FUSION_GROUP:
  case KL_OP_CAST:
  case KL_OP_DROPOUT:
  case KL_OP_EXPAND:
    return true;
  default:
    return cat == KL_FUSE_INJECTIVE;
  }
}

kl_status kl_ir_node_flops(const kl_ir_node *n, int64_t *out_flops, bool *out_static) {
  *out_flops = 0;
  *out_static = true;
  const kl_op_info *info = kl_op_get(n->op);
  if (!info)
    return kl_status_create(KL_ERR_INTERNAL, "node %d has no op %d in the op table", n->id,
                            (int)n->op);
  if (is_free(n->op, info->category))
    return NULL;
  if (n->n_outputs < 1)
    return NULL;

  int64_t out = 0, f = 0;
  bool ok = value_numel(n->outputs[0], &out);
  bool has_bias = n->n_inputs >= 3;
  switch (n->op) {
  case KL_OP_LINEAR: { /* x (..., in) @ w (out, in)^T */
    int64_t in_features;
    ok = ok && n->n_inputs >= 2 && value_dim(n->inputs[1], -1, &in_features);
    if (!ok)
      break;
    f = 2;
    if (!mul_into(&f, out) || !mul_into(&f, in_features) || (has_bias && !kl_add_i64(f, out, &f)))
      return overflow(n);
    break;
  }
  case KL_OP_MATMUL: { /* contracted dim: a's last */
    int64_t k;
    ok = ok && n->n_inputs >= 2 && value_dim(n->inputs[0], -1, &k);
    if (!ok)
      break;
    f = 2;
    if (!mul_into(&f, out) || !mul_into(&f, k))
      return overflow(n);
    break;
  }
  case KL_OP_CONV2D: { /* w (Cout, Cin/groups, Kh, Kw) */
    int64_t cin_g, kh, kw;
    ok = ok && n->n_inputs >= 2 && n->inputs[1]->type.rank == 4 &&
         value_dim(n->inputs[1], 1, &cin_g) && value_dim(n->inputs[1], 2, &kh) &&
         value_dim(n->inputs[1], 3, &kw);
    if (!ok)
      break;
    f = 2;
    if (!mul_into(&f, out) || !mul_into(&f, cin_g) || !mul_into(&f, kh) || !mul_into(&f, kw) ||
        (has_bias && !kl_add_i64(f, out, &f)))
      return overflow(n);
    break;
  }
  case KL_OP_BATCH_NORM:
    f = out;
    if (ok && !mul_into(&f, 2))
      return overflow(n);
    break;
  case KL_OP_LAYER_NORM:
    f = out;
    if (ok && !mul_into(&f, 5 + (n->n_inputs - 1)))
      return overflow(n);
    break;
  case KL_OP_SOFTMAX:
  case KL_OP_LOG_SOFTMAX:
    f = out;
    if (ok && !mul_into(&f, 5))
      return overflow(n);
    break;
  case KL_OP_ATTENTION: { /* q (..., L, E), k (..., S, E), v (..., S, Ev) -> (..., L, Ev) */
    int64_t e, s, ev, scores = 1;
    const kl_ir_type *y = &n->outputs[0]->type;
    ok = ok && n->n_inputs >= 3 && y->rank >= 2 && value_dim(n->inputs[0], -1, &e) &&
         value_dim(n->inputs[1], -2, &s) && value_dim(n->inputs[2], -1, &ev);
    for (int d = 0; ok && d < y->rank - 1; d++) /* batch * L: every output dim but Ev */
      if (!mul_into(&scores, y->dims[d].size))
        return overflow(n);
    if (!ok)
      break;
    if (!mul_into(&scores, s))
      return overflow(n);
    int64_t per_score = 6 + (n->n_inputs > 3);
    if (!kl_add_i64(e, ev, &f) || !mul_into(&f, 2) || !kl_add_i64(f, per_score, &f) ||
        !mul_into(&f, scores))
      return overflow(n);
    break;
  }
  case KL_OP_MAX_POOL2D:
  case KL_OP_AVG_POOL2D: {
    const kl_ir_attr *ks = kl_ir_node_attr(n, "kernel_size");
    if (!ok || !ks || ks->kind != KL_ATTR_INTS || ks->n < 1) {
      ok = false;
      break;
    }
    f = out;
    for (int i = 0; i < ks->n && i < 2; i++)
      if (ks->u.is[i] < 0 || !mul_into(&f, ks->u.is[i]))
        return overflow(n);
    if (ks->n == 1 && !mul_into(&f, ks->u.is[0])) /* one int: a square window */
      return overflow(n);
    break;
  }
  case KL_OP_ADAPTIVE_AVG_POOL2D: {
    int64_t in;
    ok = ok && n->n_inputs >= 1 && value_numel(n->inputs[0], &in);
    if (ok && !kl_add_i64(in, out, &f))
      return overflow(n);
    break;
  }
  /* ---- reductions and indexing (issue 4): aten::prod is counted as a reduction below ---- */
  case KL_OP_CUMSUM: /* one add per element */
    f = out;
    break;
  case KL_OP_SCATTER:    /* one combine per index (src element) unless plain copies */
  case KL_OP_SCATTER_ND: /* one combine per element of updates */
    f = 0;
    if (strcmp(kl_ir_node_string(n, n->op == KL_OP_SCATTER ? "reduce" : "reduction", "none"),
               "none"))
      ok = n->n_inputs == 3 && value_numel(n->inputs[n->op == KL_OP_SCATTER ? 1 : 2], &f);
    break;
  case KL_OP_GATHER_ND: /* copies only */
    f = 0;
    break;
  /* ---- resize and grid sample (issue 4): a multiply and an add per tap; nearest copies.
   * Resize filters each resized dim separately (2 taps linear, 4 cubic; antialias widens this,
   * not counted); GridSample blends taps^k input values per output element (k spatial dims). */
  case KL_OP_RESIZE: {
    const char *mode = kl_ir_node_string(n, "mode", "nearest");
    int64_t taps = !strcmp(mode, "linear") ? 2 : !strcmp(mode, "cubic") ? 4 : 0, resized = 0;
    const kl_ir_attr *size = kl_ir_node_attr(n, "size");
    ok = ok && n->n_inputs == 1 && size && size->kind == KL_ATTR_INTS &&
         size->n == n->inputs[0]->type.rank;
    for (int d = 0; ok && d < size->n; d++) {
      int64_t in;
      ok = value_dim(n->inputs[0], d, &in);
      resized += ok && in != size->u.is[d];
    }
    if (ok && (!kl_mul_i64(out, 2 * taps * resized, &f)))
      return overflow(n);
    break;
  }
  case KL_OP_GRID_SAMPLE: {
    const char *mode = kl_ir_node_string(n, "mode", "linear");
    int64_t taps = !strcmp(mode, "nearest") ? 0 : strstr(mode, "cubic") ? 4 : 2, per = 2;
    int k = n->outputs[0]->type.rank - 2;
    for (int d = 0; d < k && taps; d++)
      if (!mul_into(&per, taps))
        return overflow(n);
    if (ok && !kl_mul_i64(out, taps ? per : 0, &f))
      return overflow(n);
    break;
  }
  /* ---- recurrent (issue 4): per step, the gate products plus elementwise work ---- */
  case KL_OP_RNN:
  case KL_OP_GRU:
  case KL_OP_LSTM: {
    int64_t g = n->op == KL_OP_LSTM ? 4 : n->op == KL_OP_GRU ? 3 : 1, h, in, per;
    int64_t update = n->op == KL_OP_LSTM ? 5 : n->op == KL_OP_GRU ? 4 : 0;
    ok = ok && n->n_inputs >= 3 && value_dim(n->inputs[2], -1, &h) && h > 0 &&
         value_dim(n->inputs[1], -1, &in);
    if (!ok)
      break;
    if (!kl_add_i64(in, h, &per) || !mul_into(&per, 2 * g) || !kl_add_i64(per, 4 * g + update, &per) ||
        !kl_mul_i64(out, per, &f)) /* out / H steps times H * per */
      return overflow(n);
    break;
  }
  default:
    if (info->category == KL_FUSE_REDUCTION) {
      ok = n->n_inputs >= 1 && value_numel(n->inputs[0], &f);
    } else if (info->category == KL_FUSE_ELEMENTWISE || info->category == KL_FUSE_BROADCAST) {
      f = out;
    } else {
      f = 0; /* an op with no rule above counts nothing rather than a guess */
    }
    break;
  }
  if (!ok) {
    *out_static = false;
    return NULL;
  }
  *out_flops = f;
  return NULL;
}

/* ---- walking the graph ---------------------------------------------------------------- */

typedef struct stats_walk {
  const kl_ir_graph *g;
  kl_ir_stats *st;
  const char **unbacked; /* names of Params without a weight tensor already counted */
  int n_unbacked, cap_unbacked;
} stats_walk;

static kl_status add_tensor_size(stats_walk *w, int64_t numel, int64_t nbytes) {
  if (!kl_add_i64(w->st->param_elements, numel, &w->st->param_elements) ||
      !kl_add_i64(w->st->param_bytes, nbytes, &w->st->param_bytes))
    return kl_status_create(KL_ERR_LIMIT, "parameter size total overflows int64");
  return NULL;
}

/* A prim::Param whose name has no weight in g (text IR): count it once by its static type. */
static kl_status count_unbacked_param(stats_walk *w, const kl_ir_node *n) {
  const char *name = kl_ir_node_string(n, "name", NULL);
  if (!name || kl_ir_graph_weight(w->g, name) || n->n_outputs < 1)
    return NULL;
  for (int i = 0; i < w->n_unbacked; i++)
    if (strcmp(w->unbacked[i], name) == 0)
      return NULL;
  if (w->n_unbacked == w->cap_unbacked) {
    int cap = w->cap_unbacked ? 2 * w->cap_unbacked : 16;
    const char **grown = realloc(w->unbacked, (size_t)cap * sizeof *grown);
    if (!grown)
      kl_fatal_oom();
    w->unbacked = grown;
    w->cap_unbacked = cap;
  }
  w->unbacked[w->n_unbacked++] = name;
  w->st->n_weights++;
  const kl_ir_type *t = &n->outputs[0]->type;
  int64_t numel, nbytes;
  if (!kl_ir_type_numel(t, &numel))
    return NULL; /* a symbolic weight shape: counted as a tensor, its size unknown */
  if (!kl_mul_i64(numel, (int64_t)kl_dtype_size(t->dtype), &nbytes))
    return kl_status_create(KL_ERR_LIMIT, "size of parameter '%s' overflows int64", name);
  return add_tensor_size(w, numel, nbytes);
}

static kl_status walk_block(stats_walk *w, const kl_ir_block *b) {
  kl_ir_stats *st = w->st;
  for (const kl_ir_node *n = b->first; n; n = n->next) {
    st->n_nodes++;
    if ((int)n->op >= 0 && n->op < KL_OP_COUNT)
      st->op_counts[n->op]++;
    if (n->op == KL_OP_PARAM) {
      KL_RETURN_IF_ERROR(count_unbacked_param(w, n));
    } else if (n->op == KL_OP_CONSTANT) {
      const kl_ir_attr *value = kl_ir_node_attr(n, "value");
      if (value && value->kind == KL_ATTR_TENSOR && value->u.t) {
        st->n_constants++;
        KL_RETURN_IF_ERROR(add_tensor_size(w, value->u.t->numel, (int64_t)value->u.t->nbytes));
      }
    } else if (n->op == KL_OP_LOOP) {
      st->flops_partial = true;
    }
    int64_t f;
    bool is_static;
    KL_RETURN_IF_ERROR(kl_ir_node_flops(n, &f, &is_static));
    if (!is_static) {
      st->n_partial_nodes++;
      st->flops_partial = true;
    }
    if (!kl_add_i64(st->flops, f, &st->flops))
      return kl_status_create(KL_ERR_LIMIT, "FLOP total overflows int64");
    for (int i = 0; i < n->n_blocks; i++)
      KL_RETURN_IF_ERROR(walk_block(w, n->blocks[i]));
  }
  return NULL;
}

kl_status kl_ir_graph_stats(const kl_ir_graph *g, kl_ir_stats *out) {
  memset(out, 0, sizeof *out);
  if (!g || !g->top)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "graph statistics: no graph");
  stats_walk w = {.g = g, .st = out};
  kl_status s = NULL;
  for (int i = 0; i < g->n_weights && !s; i++) {
    const kl_tensor *t = g->weights[i].tensor;
    if (!t)
      continue;
    out->n_weights++;
    s = add_tensor_size(&w, t->numel, (int64_t)t->nbytes);
  }
  if (!s)
    s = walk_block(&w, g->top);
  free(w.unbacked);
  return s;
}
