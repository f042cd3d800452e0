/* ONNX ops built from IR data-movement and indexing ops, all on static shapes: Trilu (a
 * constant col - row compared with k), Tile (reshape + expand +
 * reshape), DepthToSpace and SpaceToDepth (reshape + permute + reshape), ConvTranspose (a
 * convolution of the input with zeros inserted, the kernel flipped and its channels swapped),
 * GatherElements, ArgMax/ArgMin and Hardmax (one-hot masks against a constant arange), the
 * NLL and softmax cross-entropy losses, and DequantizeLinear. Shared helpers are in
 * onnx_import_compose.c; the op table in onnx_import_ops.c points here. */
#include <string.h>

#include "../../runtime/checked.h"
#include "onnx_internal.h"

/* ---- static-shape data movement ---------------------------------------------------------- */

/* Trilu: kl_onnx_where(mask, x, 0) with mask = (col - row >= k) for the upper part, <= k for the
 * lower; col - row is a constant over the last two (static) dims, and k may be computed. */
kl_status kl_onnx_map_trilu(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *kv = kl_onnx_input(c, 1), *mask;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  int rank = x->type.rank;
  if (rank < 2 || !kl_ir_dim_is_static(x->type.dims[rank - 2]) ||
      !kl_ir_dim_is_static(x->type.dims[rank - 1]))
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "the last two dims must be static");
  int64_t shape[2] = {x->type.dims[rank - 2].size, x->type.dims[rank - 1].size}, numel;
  if (!kl_mul_i64(shape[0], shape[1], &numel) || (size_t)numel * 8 > c->imp->budget)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "the mask is too large");
  c->imp->budget -= (size_t)numel * 8;
  kl_tensor *diff;
  KL_RETURN_IF_ERROR(kl_tensor_create(KL_I64, 2, shape, &diff));
  /* one loop over the elements: with a zero dim, the other may be huge (and is not walked) */
  for (int64_t e = 0; e < numel; e++)
    ((int64_t *)diff->data)[e] = e % shape[1] - e / shape[1];
  kl_ir_value *d = kl_onnx_emit_constant(c, diff);
  kl_tensor_release(diff);
  if (!kv)
    kv = kl_onnx_scalar_const(c, KL_I64, 0);
  KL_RETURN_IF_ERROR(kl_onnx_cast(c, kv, KL_I64, &kv));
  bool upper = kl_onnx_attr_int(c, "upper", 1) != 0;
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, upper ? KL_OP_GE : KL_OP_LE, d, kv, &mask));
  return kl_onnx_where(c, mask, x, kl_onnx_like(c, x, 0), &c->out[0]);
}

/* Repeats every dim of x: outer (Tile: (r0, d0, r1, d1, ...)) or inner (nearest upsampling:
 * (d0, r0, d1, r1, ...)) as reshape + expand + reshape. */
static kl_status repeat(kl_onnx_node_ctx *c, kl_ir_value *x, const int64_t *reps, bool outer,
                        kl_ir_value **out) {
  int64_t shape[KL_MAX_RANK];
  KL_RETURN_IF_ERROR(kl_onnx_need_static(c, x, shape));
  int rank = x->type.rank;
  if (2 * rank > KL_MAX_RANK)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "rank %d is too large to repeat", rank);
  int64_t split[KL_MAX_RANK], size[KL_MAX_RANK], merged[KL_MAX_RANK];
  for (int d = 0; d < rank; d++) {
    if (reps[d] < 0)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "a negative repeat count");
    int rep = outer ? 2 * d : 2 * d + 1, dim = outer ? 2 * d + 1 : 2 * d;
    split[rep] = 1;
    split[dim] = shape[d];
    size[rep] = reps[d];
    size[dim] = -1;
    if (!kl_mul_i64(shape[d], reps[d], &merged[d]))
      return kl_onnx_node_error(c, KL_ERR_LIMIT, "the output size overflows");
  }
  kl_ir_value *y;
  KL_RETURN_IF_ERROR(kl_onnx_reshape_to(c, x, split, 2 * rank, &y));
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_EXPAND, &y, 1, &n));
  kl_ir_node_set_ints(n, "size", size, 2 * rank);
  KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &y));
  return kl_onnx_reshape_to(c, y, merged, rank, out);
}

kl_status kl_onnx_map_tile(kl_onnx_node_ctx *c) {
  kl_ir_value *x;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  int64_t reps[KL_MAX_RANK];
  int n;
  KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 1, reps, KL_MAX_RANK, &n));
  if (n != x->type.rank)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "%d repeats for rank %d", n,
                              x->type.rank);
  return repeat(c, x, reps, true, &c->out[0]);
}

kl_status kl_onnx_map_depth_to_space(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *y;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  int64_t s[KL_MAX_RANK], b = kl_onnx_attr_int(c, "blocksize", 0);
  KL_RETURN_IF_ERROR(kl_onnx_need_static(c, x, s));
  int64_t bb, ho, wo; /* blocksize comes from the file: every product is checked */
  if (x->type.rank == 4 && b > 0 &&
      (!kl_mul_i64(b, b, &bb) || !kl_mul_i64(s[2], b, &ho) || !kl_mul_i64(s[3], b, &wo)))
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "blocksize %lld overflows the output shape",
                              (long long)b);
  if (x->type.rank != 4 || b <= 0 || s[1] % (b * b) != 0)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "needs a 4-D input whose channels "
                              "divide by blocksize^2");
  char buf[8];
  bool crd = !strcmp(kl_onnx_attr_string(c, "mode", "DCR", buf, sizeof buf), "CRD");
  int64_t cc = s[1] / (b * b);
  int64_t dcr[6] = {s[0], b, b, cc, s[2], s[3]}, crd_shape[6] = {s[0], cc, b, b, s[2], s[3]};
  static const int64_t dcr_perm[6] = {0, 3, 4, 1, 5, 2}, crd_perm[6] = {0, 1, 4, 2, 5, 3};
  int64_t out[4] = {s[0], cc, ho, wo};
  KL_RETURN_IF_ERROR(kl_onnx_reshape_to(c, x, crd ? crd_shape : dcr, 6, &y));
  KL_RETURN_IF_ERROR(kl_onnx_permute(c, y, crd ? crd_perm : dcr_perm, 6, &y));
  return kl_onnx_reshape_to(c, y, out, 4, &c->out[0]);
}

kl_status kl_onnx_map_space_to_depth(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *y;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  int64_t s[KL_MAX_RANK], b = kl_onnx_attr_int(c, "blocksize", 0);
  KL_RETURN_IF_ERROR(kl_onnx_need_static(c, x, s));
  if (x->type.rank != 4 || b <= 0 || s[2] % b != 0 || s[3] % b != 0)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "needs a 4-D input whose height and "
                              "width divide by blocksize");
  int64_t split[6] = {s[0], s[1], s[2] / b, b, s[3] / b, b};
  static const int64_t perm[6] = {0, 3, 5, 1, 2, 4};
  int64_t depth; /* blocksize comes from the file: the product is checked */
  if (!kl_mul_i64(s[1], b, &depth) || !kl_mul_i64(depth, b, &depth))
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "blocksize %lld overflows the output shape",
                              (long long)b);
  int64_t out[4] = {s[0], depth, s[2] / b, s[3] / b};
  KL_RETURN_IF_ERROR(kl_onnx_reshape_to(c, x, split, 6, &y));
  KL_RETURN_IF_ERROR(kl_onnx_permute(c, y, perm, 6, &y));
  return kl_onnx_reshape_to(c, y, out, 4, &c->out[0]);
}

/* ConvTranspose (2-D): insert stride-1 zeros between input elements (unsqueeze, pad, reshape,
 * slice), pad by dilation*(k-1) - pads (+ output_padding at the end), and convolve with the
 * kernel flipped in space and its in/out channels swapped per group. */
kl_status kl_onnx_map_conv_transpose(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *w = kl_onnx_input(c, 1), *b = kl_onnx_input(c, 2), *y;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  if (!w || x->type.rank != 4 || w->type.rank != 4)
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "only 2-D ConvTranspose (4-D input and "
                              "weight) is supported");
  int64_t xs[KL_MAX_RANK], ws[KL_MAX_RANK];
  KL_RETURN_IF_ERROR(kl_onnx_need_static(c, x, xs));
  KL_RETURN_IF_ERROR(kl_onnx_need_static(c, w, ws));
  int64_t group = kl_onnx_attr_int(c, "group", 1);
  char buf[32];
  const char *auto_pad = kl_onnx_attr_string(c, "auto_pad", "NOTSET", buf, sizeof buf);
  bool same = !strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER");
  if (strcmp(auto_pad, "NOTSET") && strcmp(auto_pad, "VALID") && *auto_pad && !same)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "unknown auto_pad '%s'", auto_pad);
  if (group <= 0 || ws[0] % group != 0 || xs[1] != ws[0])
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "weight (%lld, ...) does not match "
                              "%lld input channels in %lld groups", (long long)ws[0],
                              (long long)xs[1], (long long)group);
  int64_t stride[2] = {1, 1}, dil[2] = {1, 1}, outpad[2] = {0, 0}, pads[4] = {0, 0, 0, 0};
  int n;
  const int64_t *v;
  if ((v = kl_onnx_attr_ints(c, "strides", &n)) && n == 2)
    stride[0] = v[0], stride[1] = v[1];
  if ((v = kl_onnx_attr_ints(c, "dilations", &n)) && n == 2)
    dil[0] = v[0], dil[1] = v[1];
  if ((v = kl_onnx_attr_ints(c, "output_padding", &n)) && n == 2)
    outpad[0] = v[0], outpad[1] = v[1];
  if ((v = kl_onnx_attr_ints(c, "pads", &n)) && n == 4)
    memcpy(pads, v, sizeof pads);
  for (int d = 0; d < 2; d++)
    if (stride[d] <= 0 || dil[d] <= 0 || outpad[d] < 0 || stride[d] > 64)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "strides, dilations or "
                                "output_padding out of range");
  /* An output_shape (or SAME auto_pad: input * stride) decides the pads: the total is split
   * with the odd one at the end for SAME_UPPER, at the start otherwise. */
  const int64_t *out_shape = kl_onnx_attr_ints(c, "output_shape", &n);
  if (n >= 0 && n != 2)
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "output_shape has %d entries; 2-D only", n);
  if (n == 2 || same) {
    bool upper = strcmp(auto_pad, "SAME_LOWER") != 0;
    for (int d = 0; d < 2; d++) {
      int64_t want = n == 2 ? out_shape[d] : xs[2 + d] * stride[d];
      int64_t total = stride[d] * (xs[2 + d] - 1) + outpad[d] + (ws[2 + d] - 1) * dil[d] + 1 -
                      want;
      pads[d] = upper ? total / 2 : total - total / 2;
      pads[2 + d] = total - pads[d];
    }
  }
  /* zeros between elements, one spatial dim at a time */
  y = x;
  for (int d = 0; d < 2; d++) {
    if (stride[d] == 1)
      continue;
    int dim = 2 + d;
    int64_t shape[KL_MAX_RANK];
    KL_RETURN_IF_ERROR(kl_onnx_need_static(c, y, shape));
    KL_RETURN_IF_ERROR(kl_onnx_unsqueeze(c, y, dim + 1, &y));
    int64_t pad[2 * 5] = {0};
    int pr = 5 - 1 - (dim + 1); /* pair index of dim+1 counting from the last of 5 dims */
    pad[2 * pr + 1] = stride[d] - 1;
    kl_ir_node *node;
    KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CONSTANT_PAD, &y, 1, &node));
    kl_ir_node_set_ints(node, "pad", pad, 2 * (pr + 1));
    KL_RETURN_IF_ERROR(kl_onnx_finish(c, node, &y));
    shape[dim] *= stride[d];
    KL_RETURN_IF_ERROR(kl_onnx_reshape_to(c, y, shape, 4, &y));
    KL_RETURN_IF_ERROR(kl_onnx_slice(c, y, dim, 0, shape[dim] - (stride[d] - 1), 1, &y));
  }
  /* full padding, cropping where the pads exceed it */
  int64_t conv_pad[4];
  for (int d = 0; d < 2; d++) {
    int64_t full = dil[d] * (ws[2 + d] - 1);
    int64_t before = full - pads[d], after = full - pads[2 + d] + outpad[d];
    int64_t len;
    int64_t shape[KL_MAX_RANK];
    KL_RETURN_IF_ERROR(kl_onnx_need_static(c, y, shape));
    len = shape[2 + d];
    int64_t start = before < 0 ? -before : 0, end = after < 0 ? len + after : len;
    if (start > 0 || end < len)
      KL_RETURN_IF_ERROR(kl_onnx_slice(c, y, 2 + d, start, end, 1, &y));
    conv_pad[d] = before > 0 ? before : 0;
    conv_pad[2 + d] = after > 0 ? after : 0;
  }
  /* the kernel: flipped, (Cin, Cout/g, kh, kw) -> (Cout, Cin/g, kh, kw) */
  kl_ir_value *wk = w;
  KL_RETURN_IF_ERROR(kl_onnx_slice(c, wk, 2, ws[2] - 1, -ws[2] - 1, -1, &wk));
  KL_RETURN_IF_ERROR(kl_onnx_slice(c, wk, 3, ws[3] - 1, -ws[3] - 1, -1, &wk));
  int64_t cin_g = ws[0] / group, cout_g = ws[1];
  int64_t split[5] = {group, cin_g, cout_g, ws[2], ws[3]};
  static const int64_t perm[5] = {0, 2, 1, 3, 4};
  int64_t merged[4] = {group * cout_g, cin_g, ws[2], ws[3]};
  KL_RETURN_IF_ERROR(kl_onnx_reshape_to(c, wk, split, 5, &wk));
  KL_RETURN_IF_ERROR(kl_onnx_permute(c, wk, perm, 5, &wk));
  KL_RETURN_IF_ERROR(kl_onnx_reshape_to(c, wk, merged, 4, &wk));
  kl_ir_value *in[3] = {y, wk, b};
  kl_ir_node *conv;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_CONV2D, in, b ? 3 : 2, &conv));
  int64_t one[2] = {1, 1};
  kl_ir_node_set_ints(conv, "stride", one, 2);
  kl_ir_node_set_ints(conv, "padding", conv_pad, 4);
  kl_ir_node_set_ints(conv, "dilation", dil, 2);
  kl_ir_node_set_int(conv, "groups", group);
  return kl_onnx_finish(c, conv, &c->out[0]);
}

/* ---- losses --------------------------------------------------------------------------------- */

/* -input[n, target[n, d...], d...] * weight[target], 0 where target == ignore_index; the
 * class is picked with a one-hot mask (target == arange(C) along dim 1), so C must be static.
 * Reduced by none, sum, or mean (the sum over the weights that were used). */
static kl_status nll_loss(kl_onnx_node_ctx *c, kl_ir_value *x, kl_ir_value *target,
                          kl_ir_value *weight, kl_ir_value **out) {
  int rank = x->type.rank;
  if (rank < 2 || target->type.rank != rank - 1 || !kl_ir_dim_is_static(x->type.dims[1]))
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "needs input (N, C, ...) with a static C "
                              "and a target (N, ...)");
  int64_t n_classes = x->type.dims[1].size, shape[KL_MAX_RANK];
  for (int d = 0; d < rank; d++)
    shape[d] = d == 1 ? n_classes : 1;
  if ((size_t)n_classes * 8 > c->imp->budget)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "too many classes");
  kl_tensor *classes;
  KL_RETURN_IF_ERROR(kl_tensor_create(KL_I64, rank, shape, &classes));
  for (int64_t i = 0; i < n_classes; i++)
    ((int64_t *)classes->data)[i] = i;
  kl_ir_value *cls = kl_onnx_emit_constant(c, classes), *t, *onehot, *picked, *w = NULL,
              *keep = NULL;
  kl_tensor_release(classes);
  KL_RETURN_IF_ERROR(kl_onnx_cast(c, target, KL_I64, &t));
  KL_RETURN_IF_ERROR(kl_onnx_unsqueeze(c, t, 1, &onehot));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_EQ, onehot, cls, &onehot));
  KL_RETURN_IF_ERROR(kl_onnx_where(c, onehot, x, kl_onnx_like(c, x, 0), &picked));
  int64_t one = 1;
  KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_SUM, picked, &one, 1, false, &picked));
  const Onnx__AttributeProto *ii = kl_onnx_attr(c->node, "ignore_index");
  if (ii && ii->has_i)
    KL_RETURN_IF_ERROR(
        kl_onnx_emit2(c, KL_OP_NE, t, kl_onnx_scalar_const(c, KL_I64, (double)ii->i), &keep));
  if (weight) {
    kl_ir_value *safe = t, *in[2];
    if (keep)
      KL_RETURN_IF_ERROR(kl_onnx_where(c, keep, t, kl_onnx_scalar_const(c, KL_I64, 0), &safe));
    in[0] = weight;
    in[1] = safe;
    kl_ir_node *g;
    KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_GATHER, in, 2, &g));
    KL_RETURN_IF_ERROR(kl_onnx_finish(c, g, &w));
    if (keep)
      KL_RETURN_IF_ERROR(kl_onnx_where(c, keep, w, kl_onnx_like(c, w, 0), &w));
  } else if (keep) {
    KL_RETURN_IF_ERROR(kl_onnx_cast(c, keep, x->type.dtype, &w));
  }
  kl_ir_value *loss = picked;
  if (w)
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_MUL, loss, w, &loss));
  KL_RETURN_IF_ERROR(kl_onnx_emit1(c, KL_OP_NEG, loss, &loss));
  char buf[16];
  const char *reduction = kl_onnx_attr_string(c, "reduction", "mean", buf, sizeof buf);
  if (!strcmp(reduction, "none")) {
    *out = loss;
    return NULL;
  }
  if (strcmp(reduction, "sum") && strcmp(reduction, "mean"))
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "unknown reduction '%s'", reduction);
  bool mean = !strcmp(reduction, "mean");
  if (mean && !w)
    return kl_onnx_reduce(c, KL_OP_MEAN, loss, NULL, -1, false, out);
  KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_SUM, loss, NULL, -1, false, &loss));
  if (!mean) {
    *out = loss;
    return NULL;
  }
  KL_RETURN_IF_ERROR(kl_onnx_reduce(c, KL_OP_SUM, w, NULL, -1, false, &w));
  return kl_onnx_emit2(c, KL_OP_DIV, loss, w, out);
}

kl_status kl_onnx_map_nll_loss(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *target = kl_onnx_input(c, 1);
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  if (!target)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 1 (target) is missing");
  return nll_loss(c, x, target, kl_onnx_input(c, 2), &c->out[0]);
}

/* SoftmaxCrossEntropyLoss: the NLL loss of log_softmax(scores) along dim 1, whose value is the
 * optional second output. */
kl_status kl_onnx_map_softmax_cross_entropy(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *labels = kl_onnx_input(c, 1), *log_prob;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  if (!labels)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 1 (labels) is missing");
  kl_ir_node *n;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_LOG_SOFTMAX, &x, 1, &n));
  kl_ir_node_set_int(n, "dim", 1);
  KL_RETURN_IF_ERROR(kl_onnx_finish(c, n, &log_prob));
  if (c->n_out > 1)
    c->out[1] = log_prob;
  return nll_loss(c, log_prob, labels, kl_onnx_input(c, 2), &c->out[0]);
}

/* ---- indexing --------------------------------------------------------------------------- */

/* GatherElements(data, indices, axis): out[.., i, ..] = data[.., indices[.., i, ..], ..].
 * With L = data's (static) size along axis: a mask (indices == arange(L)) over an extra dim
 * after axis selects from data (sliced to indices' extent in the other dims), summed away. */
kl_status kl_onnx_map_gather_elements(kl_onnx_node_ctx *c) {
  kl_ir_value *data, *idx = kl_onnx_input(c, 1), *mask, *sel;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &data));
  if (!idx)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 1 (indices) is missing");
  int rank = data->type.rank;
  int64_t axis = kl_onnx_attr_int(c, "axis", 0), ds[KL_MAX_RANK], is[KL_MAX_RANK];
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank || idx->type.rank != rank || rank + 1 > KL_MAX_RANK)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "axis or indices' rank out of range");
  KL_RETURN_IF_ERROR(kl_onnx_need_static(c, data, ds));
  KL_RETURN_IF_ERROR(kl_onnx_need_static(c, idx, is));
  int64_t len = ds[axis], shape[KL_MAX_RANK];
  if ((size_t)len * 8 > c->imp->budget)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "the indexed dim is too large");
  for (int d = 0; d <= rank; d++)
    shape[d] = d == axis + 1 ? len : 1;
  kl_tensor *range;
  KL_RETURN_IF_ERROR(kl_tensor_create(KL_I64, rank + 1, shape, &range));
  for (int64_t i = 0; i < len; i++)
    ((int64_t *)range->data)[i] = i;
  kl_ir_value *r = kl_onnx_emit_constant(c, range), *neg, *wrapped;
  kl_tensor_release(range);
  /* negative indices count from the end */
  KL_RETURN_IF_ERROR(kl_onnx_cast(c, idx, KL_I64, &idx));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_LT, idx, kl_onnx_scalar_const(c, KL_I64, 0), &neg));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_ADD, idx, kl_onnx_scalar_const(c, KL_I64, (double)len),
                                   &wrapped));
  KL_RETURN_IF_ERROR(kl_onnx_where(c, neg, wrapped, idx, &idx));
  KL_RETURN_IF_ERROR(kl_onnx_unsqueeze(c, idx, axis + 1, &mask));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_EQ, mask, r, &mask));
  for (int d = 0; d < rank; d++)
    if (d != axis && is[d] < ds[d])
      KL_RETURN_IF_ERROR(kl_onnx_slice(c, data, d, 0, is[d], 1, &data));
  KL_RETURN_IF_ERROR(kl_onnx_unsqueeze(c, data, axis, &sel));
  KL_RETURN_IF_ERROR(kl_onnx_where(c, mask, sel, kl_onnx_like(c, sel, 0), &sel));
  int64_t dim = axis + 1;
  return kl_onnx_reduce(c, KL_OP_SUM, sel, &dim, 1, false, &c->out[0]);
}

/* The index of the first (or, select_last, last) maximum or minimum of x along axis (keepdim
 * kept): where x equals the extreme, arange along the axis, else a sentinel; then the
 * smallest (largest) such index. The axis needs a static size. */
static kl_status arg_extreme(kl_onnx_node_ctx *c, kl_ir_value *x, int64_t axis, bool is_max,
                             bool select_last, bool keepdim, kl_ir_value **out) {
  int rank = x->type.rank;
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank || !kl_ir_dim_is_static(x->type.dims[axis]))
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "axis out of range or not static");
  int64_t len = x->type.dims[axis].size, shape[KL_MAX_RANK];
  if ((size_t)len * 8 > c->imp->budget)
    return kl_onnx_node_error(c, KL_ERR_LIMIT, "the reduced dim is too large");
  for (int d = 0; d < rank; d++)
    shape[d] = d == axis ? len : 1;
  kl_tensor *range;
  KL_RETURN_IF_ERROR(kl_tensor_create(KL_I64, rank, shape, &range));
  for (int64_t i = 0; i < len; i++)
    ((int64_t *)range->data)[i] = i;
  kl_ir_value *r = kl_onnx_emit_constant(c, range), *ext, *hit, *idx;
  kl_tensor_release(range);
  KL_RETURN_IF_ERROR(kl_onnx_reduce(c, is_max ? KL_OP_AMAX : KL_OP_AMIN, x, &axis, 1, true, &ext));
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_EQ, x, ext, &hit));
  kl_ir_value *sentinel = kl_onnx_scalar_const(c, KL_I64, select_last ? -1.0 : (double)len);
  KL_RETURN_IF_ERROR(kl_onnx_where(c, hit, r, sentinel, &idx));
  return kl_onnx_reduce(c, select_last ? KL_OP_AMAX : KL_OP_AMIN, idx, &axis, 1, keepdim, out);
}

kl_status kl_onnx_map_arg_extreme(kl_onnx_node_ctx *c) {
  kl_ir_value *x;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  return arg_extreme(c, x, kl_onnx_attr_int(c, "axis", 0), !strcmp(c->node->op_type, "ArgMax"),
                     kl_onnx_attr_int(c, "select_last_index", 0) != 0,
                     kl_onnx_attr_int(c, "keepdims", 1) != 0, &c->out[0]);
}

/* Hardmax: 1 at the first maximum along axis (default -1 from opset 13), 0 elsewhere. */
kl_status kl_onnx_map_hardmax(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *first, *onehot;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  int rank = x->type.rank;
  int64_t axis = kl_onnx_attr_int(c, "axis", c->opset >= 13 ? -1 : 1);
  if (c->opset < 13 && axis != -1 && axis != rank - 1)
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "Hardmax before opset 13 is supported on "
                              "the last axis only");
  if (axis < 0)
    axis += rank;
  KL_RETURN_IF_ERROR(arg_extreme(c, x, axis, true, false, true, &first));
  int64_t len = x->type.dims[axis].size, shape[KL_MAX_RANK];
  for (int d = 0; d < rank; d++)
    shape[d] = d == axis ? len : 1;
  kl_tensor *range;
  KL_RETURN_IF_ERROR(kl_tensor_create(KL_I64, rank, shape, &range));
  for (int64_t i = 0; i < len; i++)
    ((int64_t *)range->data)[i] = i;
  kl_ir_value *r = kl_onnx_emit_constant(c, range);
  kl_tensor_release(range);
  KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_EQ, r, first, &onehot));
  return kl_onnx_cast(c, onehot, x->type.dtype, &c->out[0]);
}

/* DequantizeLinear: (x - zero_point) * scale, per tensor or per channel along axis. */
kl_status kl_onnx_map_dequantize(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *scale = kl_onnx_input(c, 1), *zp = kl_onnx_input(c, 2), *y;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  if (!scale)
    return kl_onnx_node_error(c, KL_ERR_FORMAT, "input 1 (x_scale) is missing");
  if (scale->type.rank > 1 || kl_onnx_attr(c->node, "block_size"))
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "blocked quantization");
  int rank = x->type.rank;
  int64_t axis = kl_onnx_attr_int(c, "axis", 1);
  if (axis < 0)
    axis += rank;
  bool per_channel = scale->type.rank == 1 && rank > 0;
  if (per_channel && (axis < 0 || axis >= rank))
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "axis out of range");
  KL_RETURN_IF_ERROR(kl_onnx_cast(c, x, scale->type.dtype, &y));
  for (int i = 0; per_channel && i < rank - 1 - axis; i++) {
    KL_RETURN_IF_ERROR(kl_onnx_unsqueeze(c, scale, -1, &scale));
    if (zp)
      KL_RETURN_IF_ERROR(kl_onnx_unsqueeze(c, zp, -1, &zp));
  }
  if (zp) {
    KL_RETURN_IF_ERROR(kl_onnx_cast(c, zp, y->type.dtype, &zp));
    KL_RETURN_IF_ERROR(kl_onnx_emit2(c, KL_OP_SUB, y, zp, &y));
  }
  return kl_onnx_emit2(c, KL_OP_MUL, y, scale, &c->out[0]);
}
