/* The recurrent ops onnx::RNN, onnx::GRU and onnx::LSTM: reading their attributes into
 * kl_rt_rnn_params (shared by the shape function and the interpreter's adapter, so both apply
 * the same defaults and rules) and their shape function. The ops keep ONNX's input order; an
 * omitted optional input before a present one is a 1-D tensor of size 0, because the IR has no
 * "absent" value and such a placeholder can be built whatever the other dims are. */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "op_params.h"
#include "shape_internal.h"

static const char *const input_names[] = {"X", "W", "R", "B", "sequence_lens", "initial_h",
                                          "initial_c", "P"};

/* An ONNX activation name (lower case), its kernel op, whether it takes a value from
 * activation_alpha / activation_beta, and its defaults for them. */
typedef struct act_info {
  const char *name;
  kl_rt_rnn_act act;
  bool uses_alpha, uses_beta;
  double alpha, beta;
} act_info;

static const act_info acts[] = {
    {"relu", KL_RT_ACT_RELU, false, false, 0, 0},
    {"tanh", KL_RT_ACT_TANH, false, false, 0, 0},
    {"sigmoid", KL_RT_ACT_SIGMOID, false, false, 0, 0},
    {"affine", KL_RT_ACT_AFFINE, true, true, 1.0, 0.0},
    {"leakyrelu", KL_RT_ACT_LEAKY_RELU, true, false, 0.01, 0},
    {"thresholdedrelu", KL_RT_ACT_THRESHOLDED_RELU, true, false, 1.0, 0},
    {"scaledtanh", KL_RT_ACT_SCALED_TANH, true, true, 1.0, 1.0},
    {"hardsigmoid", KL_RT_ACT_HARD_SIGMOID, true, true, 0.2, 0.5},
    {"elu", KL_RT_ACT_ELU, true, false, 1.0, 0},
    {"softsign", KL_RT_ACT_SOFTSIGN, false, false, 0, 0},
    {"softplus", KL_RT_ACT_SOFTPLUS, false, false, 0, 0},
};

static const act_info *find_act(const char *name) {
  char lower[32];
  size_t len = strlen(name);
  if (len >= sizeof lower)
    return NULL;
  for (size_t i = 0; i <= len; i++)
    lower[i] = (char)tolower((unsigned char)name[i]);
  for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
    if (strcmp(lower, acts[i].name) == 0)
      return &acts[i];
  return NULL;
}

static const kl_ir_attr *attr_of(const kl_ir_node *n, const char *name, kl_ir_attr_kind kind,
                                 kl_status *out_err) {
  const kl_ir_attr *a = kl_ir_node_attr(n, name);
  if (a && a->kind != kind) {
    *out_err = kl_shape_error(n, "attribute %s must be %s, not %s", name,
                              kl_ir_attr_kind_name(kind), kl_ir_attr_kind_name(a->kind));
    return NULL;
  }
  return a;
}

#define GET_ATTR(var, name, kind)                                                          \
  const kl_ir_attr *var;                                                                   \
  do {                                                                                     \
    kl_status err_ = NULL;                                                                 \
    var = attr_of(n, name, kind, &err_);                                                   \
    if (err_)                                                                              \
      return err_;                                                                         \
  } while (0)

static kl_status read_flag(const kl_ir_node *n, const char *name, bool *out) {
  GET_ATTR(a, name, KL_ATTR_INT);
  if (a && a->u.i != 0 && a->u.i != 1)
    return kl_shape_error(n, "attribute %s must be 0 or 1, not %lld", name, (long long)a->u.i);
  *out = a && a->u.i == 1;
  return NULL;
}

kl_status kl_ir_rnn_params(const kl_ir_node *n, kl_rt_rnn_params *out) {
  memset(out, 0, sizeof *out);
  out->kind = n->op == KL_OP_LSTM ? KL_RT_LSTM : n->op == KL_OP_GRU ? KL_RT_GRU : KL_RT_RNN;
  GET_ATTR(hidden, "hidden_size", KL_ATTR_INT);
  if (!hidden)
    return kl_shape_error(n, "missing the int attribute hidden_size");
  if (hidden->u.i <= 0 || hidden->u.i > ((int64_t)1 << 24))
    return kl_shape_error(n, "hidden_size %lld is out of range (1..%d)",
                          (long long)hidden->u.i, 1 << 24);
  out->hidden = hidden->u.i;

  GET_ATTR(direction, "direction", KL_ATTR_STRING);
  const char *dir = direction ? direction->u.s : "forward";
  out->num_directions = 1;
  if (strcmp(dir, "bidirectional") == 0)
    out->num_directions = 2;
  else if (strcmp(dir, "reverse") == 0)
    out->reverse = true;
  else if (strcmp(dir, "forward") != 0)
    return kl_shape_error(n, "direction \"%s\" is not forward, reverse or bidirectional", dir);

  GET_ATTR(layout, "layout", KL_ATTR_INT);
  if (layout && layout->u.i != 0 && layout->u.i != 1)
    return kl_shape_error(n, "attribute layout must be 0 or 1, not %lld",
                          (long long)layout->u.i);
  out->layout_batch = layout && layout->u.i == 1;

  GET_ATTR(clip, "clip", KL_ATTR_FLOAT);
  if (clip) {
    if (!(clip->u.f > 0) || !isfinite(clip->u.f))
      return kl_shape_error(n, "attribute clip must be a positive finite float");
    out->has_clip = true;
    out->clip = clip->u.f;
  }
  if (n->op == KL_OP_GRU)
    KL_RETURN_IF_ERROR(read_flag(n, "linear_before_reset", &out->linear_before_reset));
  if (n->op == KL_OP_LSTM)
    KL_RETURN_IF_ERROR(read_flag(n, "input_forget", &out->input_forget));

  int per_dir = out->kind == KL_RT_LSTM ? 3 : out->kind == KL_RT_GRU ? 2 : 1;
  static const char *const dflt[3] = {"Sigmoid", "Tanh", "Tanh"};
  GET_ATTR(names, "activations", KL_ATTR_STRINGS);
  GET_ATTR(alphas, "activation_alpha", KL_ATTR_FLOATS);
  GET_ATTR(betas, "activation_beta", KL_ATTR_FLOATS);
  int total = per_dir * out->num_directions;
  if (names && names->n != per_dir && names->n != total)
    return kl_shape_error(n, "activations has %d names; %s with direction %s takes %d", names->n,
                          kl_ir_node_op_name(n), dir, total);
  /* GRU and LSTM as the ONNX spec words it and ONNX Runtime reads it: the values are consumed
   * in the order of the activations, by those that take one. RNN as ONNX's reference and ONNX
   * Runtime read it: entry i belongs to activation i. A list of names given for one direction
   * serves both, and so do its values. */
  bool by_position = n->op == KL_OP_RNN;
  int next_alpha = 0, next_beta = 0;
  for (int i = 0; i < total; i++) {
    bool reused = names && i >= names->n;
    const char *name = names ? names->u.ss[i % names->n] : per_dir == 1 ? "Tanh" : dflt[i % per_dir];
    const act_info *info = find_act(name);
    if (!info)
      return kl_shape_error_code(n, KL_ERR_UNSUPPORTED, "activation \"%s\" is not supported",
                                 name);
    out->act[i] = info->act;
    out->alpha[i] = info->alpha;
    out->beta[i] = info->beta;
    if (reused) {
      out->alpha[i] = out->alpha[i % names->n];
      out->beta[i] = out->beta[i % names->n];
      continue;
    }
    if (by_position)
      next_alpha = next_beta = i;
    if (info->uses_alpha && alphas && next_alpha < alphas->n)
      out->alpha[i] = alphas->u.fs[next_alpha++];
    if (info->uses_beta && betas && next_beta < betas->n)
      out->beta[i] = betas->u.fs[next_beta++];
  }
  return NULL;
}

static bool type_is_placeholder(const kl_ir_type *t) {
  return t->rank == 1 && kl_ir_dim_is_static(t->dims[0]) && t->dims[0].size == 0;
}

/* Checks that t has the dims want (rank n); a dim that cannot match is an error naming the
 * input. */
static kl_status check_dims(const kl_ir_node *node, const kl_ir_type *t, int index,
                            const kl_ir_dim *want, int rank) {
  bool ok = t->rank == rank;
  for (int d = 0; ok && d < rank; d++)
    ok = kl_shape_dims_may_equal(node, t->dims[d], want[d]);
  if (ok)
    return NULL;
  kl_ir_type w = *t;
  w.rank = rank;
  for (int d = 0; d < rank; d++)
    w.dims[d] = want[d];
  return kl_shape_error(node, "input %d (%s) is %s; expected %s", index, input_names[index],
                        kl_shape_fmt(node, t).s, kl_shape_fmt(node, &w).s);
}

KL_SHAPE_FN(rnn) {
  bool lstm = node->op == KL_OP_LSTM;
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 3, lstm ? 8 : 6, n_out, lstm ? 3 : 2,
                                          lstm ? 3 : 2));
  kl_rt_rnn_params p;
  KL_RETURN_IF_ERROR(kl_ir_rnn_params(node, &p));
  int gates = lstm ? 4 : node->op == KL_OP_GRU ? 3 : 1;
  const kl_ir_type *x = &in[0];
  KL_RETURN_IF_ERROR(kl_shape_require_float(node, x, "X"));
  if (x->rank != 3)
    return kl_shape_error(node, "input 0 (X) is %s; it must have 3 dims",
                          kl_shape_fmt(node, x).s);
  kl_ir_dim seq = x->dims[p.layout_batch ? 1 : 0], batch = x->dims[p.layout_batch ? 0 : 1];
  kl_ir_dim dirs = kl_ir_dim_static(p.num_directions), h = kl_ir_dim_static(p.hidden);
  kl_ir_dim gh = kl_ir_dim_static(gates * p.hidden);
  kl_ir_dim state[3] = {dirs, batch, h};
  if (p.layout_batch)
    state[0] = batch, state[1] = dirs;
  for (int i = 1; i < n_in; i++) {
    if (i == 4) {
      if (!type_is_placeholder(&in[i])) {
        KL_RETURN_IF_ERROR(kl_shape_require_index(node, &in[i], "sequence_lens"));
        KL_RETURN_IF_ERROR(check_dims(node, &in[i], i, &batch, 1));
      }
      continue;
    }
    KL_RETURN_IF_ERROR(kl_shape_require_same_dtype(node, x, "X", &in[i], input_names[i]));
    if (i >= 3 && type_is_placeholder(&in[i]))
      continue;
    kl_ir_dim want[3] = {dirs, gh, x->dims[2]};
    int rank = 3;
    if (i == 2)
      want[2] = h;
    else if (i == 3)
      want[1] = kl_ir_dim_static(2 * gates * p.hidden), rank = 2;
    else if (i == 5 || i == 6)
      memcpy(want, state, sizeof want);
    else if (i == 7)
      want[1] = kl_ir_dim_static(3 * p.hidden), rank = 2;
    KL_RETURN_IF_ERROR(check_dims(node, &in[i], i, want, rank));
  }
  kl_ir_type y = *x;
  y.rank = 4;
  if (p.layout_batch) {
    y.dims[0] = batch, y.dims[1] = seq, y.dims[2] = dirs, y.dims[3] = h;
  } else {
    y.dims[0] = seq, y.dims[1] = dirs, y.dims[2] = batch, y.dims[3] = h;
  }
  out[0] = y;
  kl_ir_type last = *x;
  last.rank = 3;
  memcpy(last.dims, state, sizeof state);
  for (int i = 1; i < n_out; i++)
    out[i] = last;
  return NULL;
}
