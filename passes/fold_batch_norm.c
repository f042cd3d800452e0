/* fold-batch-norm: inference batch norm after a conv2d or linear is an affine map per output
 * channel, so it folds into that layer's weight and bias:
 *
 *   scale[c] = gamma[c] / sqrt(var[c] + eps)
 *   w'[c, ...] = w[c, ...] * scale[c]
 *   b'[c] = (b[c] - mean[c]) * scale[c] + beta[c]        (b = 0 when the layer has no bias)
 *
 * One layer then does the work of two, and fusion sees one op instead of a matmul and a
 * broadcast. The rewrite needs every weight and statistic as a constant (prim::Constant, or a
 * prim::Param with a weight in the graph), the layer's output used by the batch norm alone,
 * and Float or Double everywhere (the arithmetic is done in double, then rounded once). For
 * linear only a 2-D (N, C) batch norm folds: on more dims, batch norm's channel is dim 1, not
 * the feature dim linear produces. The new layer keeps the batch norm's output name; the old
 * weights are left for dce. Sub-blocks are visited too. */
#include <math.h>
#include <stdio.h>

#include "pass_internal.h"

/* What one candidate needs: the layer, its weight and optional bias, and the statistics. */
typedef struct bn_match {
  kl_ir_node *layer; /* aten::conv2d or aten::linear */
  kl_ir_node *bn;
  const kl_tensor *weight, *bias; /* bias NULL when the layer has none */
  const kl_tensor *gamma, *beta, *mean, *var;
  int64_t channels;
} bn_match;

/* A constant 1-D tensor of c elements in dtype dt, or NULL. */
static const kl_tensor *channel_vector(const kl_ir_graph *g, const kl_ir_value *v, kl_dtype dt,
                                       int64_t c) {
  const kl_tensor *t = kl_pass_constant_tensor(g, v);
  if (!t || t->dtype != dt || t->rank != 1 || t->shape[0] != c)
    return NULL;
  return t;
}

static bool match(const kl_ir_graph *g, kl_ir_node *bn, bn_match *out) {
  if (bn->op != KL_OP_BATCH_NORM || bn->n_inputs != 5 || bn->n_outputs != 1)
    return false;
  kl_ir_value *y = bn->inputs[0];
  kl_ir_node *layer = y->node;
  if (!layer || (layer->op != KL_OP_CONV2D && layer->op != KL_OP_LINEAR) ||
      layer->owner != bn->owner || y->n_uses != 1 || layer->n_inputs < 2)
    return false;
  kl_dtype dt = y->type.dtype;
  if (dt != KL_F32 && dt != KL_F64)
    return false;
  if (layer->op == KL_OP_LINEAR && y->type.rank != 2)
    return false;
  if (layer->op == KL_OP_CONV2D && y->type.rank != 4)
    return false;
  const kl_tensor *w = kl_pass_constant_tensor(g, layer->inputs[1]);
  if (!w || w->dtype != dt || w->rank < 1)
    return false;
  if ((layer->op == KL_OP_CONV2D && w->rank != 4) || (layer->op == KL_OP_LINEAR && w->rank != 2))
    return false;
  int64_t c = w->shape[0];
  /* The channel dim of the layer's output must be the weight's first dim. */
  kl_ir_dim out_channels = y->type.dims[1];
  if (!kl_ir_dim_is_static(out_channels) || out_channels.size != c)
    return false;
  const kl_tensor *b = NULL;
  if (layer->n_inputs > 2) {
    b = channel_vector(g, layer->inputs[2], dt, c);
    if (!b)
      return false;
  }
  out->layer = layer;
  out->bn = bn;
  out->weight = w;
  out->bias = b;
  out->gamma = channel_vector(g, bn->inputs[1], dt, c);
  out->beta = channel_vector(g, bn->inputs[2], dt, c);
  out->mean = channel_vector(g, bn->inputs[3], dt, c);
  out->var = channel_vector(g, bn->inputs[4], dt, c);
  out->channels = c;
  return out->gamma && out->beta && out->mean && out->var;
}

static double at(const kl_tensor *t, int64_t i) {
  return kl_dtype_load_f64(t->dtype, t->data, (size_t)i);
}

/* Computes the folded weight and bias into new tensors. */
static kl_status fold_tensors(const bn_match *m, double eps, kl_tensor **out_weight,
                              kl_tensor **out_bias) {
  const kl_tensor *w = m->weight;
  int64_t c = m->channels;
  kl_tensor *nw = NULL, *nb = NULL;
  KL_RETURN_IF_ERROR(kl_tensor_create(w->dtype, w->rank, w->shape, &nw));
  kl_status s = kl_tensor_create(w->dtype, 1, &c, &nb);
  if (s) {
    kl_tensor_release(nw);
    return s;
  }
  int64_t per_channel = c ? w->numel / c : 0;
  for (int64_t ch = 0; ch < c; ch++) {
    double scale = at(m->gamma, ch) / sqrt(at(m->var, ch) + eps);
    for (int64_t k = 0; k < per_channel; k++) {
      size_t i = (size_t)(ch * per_channel + k);
      kl_dtype_store_f64(nw->dtype, nw->data, i, kl_dtype_load_f64(w->dtype, w->data, i) * scale);
    }
    double bias = m->bias ? at(m->bias, ch) : 0.0;
    kl_dtype_store_f64(nb->dtype, nb->data, (size_t)ch,
                       (bias - at(m->mean, ch)) * scale + at(m->beta, ch));
  }
  *out_weight = nw;
  *out_bias = nb;
  return NULL;
}

static kl_status fold(kl_ir_graph *g, const bn_match *m) {
  kl_tensor *weight, *bias;
  double eps = kl_ir_node_float(m->bn, "eps", 1e-5);
  KL_RETURN_IF_ERROR(fold_tensors(m, eps, &weight, &bias));
  kl_ir_value *out = m->bn->outputs[0];
  const char *name = out->name; /* arena string: outlives the rename */
  char buf[512];
  snprintf(buf, sizeof buf, "%s.weight", name);
  kl_ir_value *w = kl_pass_insert_constant(g, weight, buf, m->layer);
  snprintf(buf, sizeof buf, "%s.bias", name);
  kl_ir_value *b = kl_pass_insert_constant(g, bias, buf, m->layer);
  kl_tensor_release(weight);
  kl_tensor_release(bias);

  kl_ir_value *inputs[3] = {m->layer->inputs[0], w, b};
  kl_ir_node *layer = kl_ir_node_create(g, m->layer->op, inputs, 3, 1);
  for (int i = 0; i < m->layer->n_attrs; i++)
    kl_ir_node_set_attr(layer, &m->layer->attrs[i]);
  layer->outputs[0]->type = out->type;
  kl_ir_node_insert_before(layer, m->bn);
  kl_ir_value_set_name(out, NULL);
  kl_ir_value_set_name(layer->outputs[0], name);
  kl_ir_value_replace_all_uses(out, layer->outputs[0]);
  kl_ir_node_remove(m->bn);
  kl_ir_node_remove(m->layer);
  return NULL;
}

static kl_status fold_block(kl_ir_graph *g, kl_ir_block *b, bool *changed) {
  kl_ir_node *next;
  for (kl_ir_node *n = b->first; n; n = next) {
    next = n->next; /* fold removes n and the layer before it, never a later node */
    for (int i = 0; i < n->n_blocks; i++)
      KL_RETURN_IF_ERROR(fold_block(g, n->blocks[i], changed));
    bn_match m;
    if (!match(g, n, &m))
      continue;
    KL_RETURN_IF_ERROR(fold(g, &m));
    *changed = true;
  }
  return NULL;
}

kl_status kl_pass_fold_batch_norm(kl_ir_graph *g, const kl_pass_options *opts,
                                  bool *out_changed) {
  (void)opts;
  bool changed = false;
  kl_status s = fold_block(g, g->top, &changed);
  *out_changed = changed;
  return s;
}
