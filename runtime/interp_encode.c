/* kl_step_encode: a node's attributes and operand types to its step's parameter block.
 *
 * One encoder per value of the kernel column of ir/ops.def, found through a table built by
 * expanding the op table. Every attribute goes through ir/op_params.h, so the defaults and rules
 * are the shape functions' own; what depends on the operands (a dim normalized against the
 * rank, a slice's start and length, a reduce mask, pads per dim, attention's default scale) is
 * computed here from the operand types, so a step never needs the IR. The block is zeroed first:
 * two encodes of one node give the same bytes, padding included. */
#include "interp_encode.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "../ir/op_params.h"

typedef kl_status (*encode_fn)(const kl_ir_node *n, const kl_step_operand *in, int n_in,
                               const kl_step_operand *out, int n_out, void *params);

#define ENCODER(kernel)                                                                        \
  static kl_status encode_##kernel(const kl_ir_node *n, const kl_step_operand *in, int n_in,  \
                                   const kl_step_operand *out, int n_out, void *params)
#define UNUSED_OPERANDS (void)in, (void)n_in, (void)out, (void)n_out

/* Kernels whose blocks are empty: nothing to encode. */
static kl_status encode_none(const kl_ir_node *n, const kl_step_operand *in, int n_in,
                             const kl_step_operand *out, int n_out, void *params) {
  (void)n, (void)params;
  UNUSED_OPERANDS;
  return NULL;
}
#define encode_cast encode_none
#define encode_where encode_none
#define encode_matmul encode_none
#define encode_linear encode_none /* w_packed false: the block is zeroed */
#define encode_adaptive_avg_pool2d encode_none
#define encode_copy encode_none
#define encode_expand encode_none

static kl_status encode_control(const kl_ir_node *n, const kl_step_operand *in, int n_in,
                                const kl_step_operand *out, int n_out, void *params) {
  (void)params;
  UNUSED_OPERANDS;
  return kl_status_create(KL_ERR_INTERNAL,
                          "%s has no kernel: the interpreter runs its blocks itself",
                          kl_ir_node_op_name(n));
}

ENCODER(unary) {
  UNUSED_OPERANDS;
  kl_step_unary_params *p = params;
  kl_rt_unary_op op;
  KL_RETURN_IF_ERROR(kl_ir_unary_params(n, &op, &p->a, &p->b));
  p->op = (int32_t)op;
  return NULL;
}

ENCODER(binary) {
  UNUSED_OPERANDS;
  kl_step_binary_params *p = params;
  kl_rt_binary_op op;
  KL_RETURN_IF_ERROR(kl_ir_binary_params(n, &op));
  p->op = (int32_t)op;
  return NULL;
}

ENCODER(conv2d) {
  UNUSED_OPERANDS;
  kl_step_conv2d_params *p = params;
  return kl_ir_conv2d_params(n, &p->conv);
}

ENCODER(batch_norm) {
  UNUSED_OPERANDS;
  kl_step_batch_norm_params *p = params;
  p->eps = kl_ir_node_float(n, "eps", 1e-5);
  return NULL;
}

ENCODER(layer_norm) {
  (void)n_in, (void)out, (void)n_out;
  kl_step_layer_norm_params *p = params;
  const kl_ir_attr *shape = kl_ir_node_attr(n, "normalized_shape");
  if (!shape || shape->kind != KL_ATTR_INTS)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "aten::layer_norm: missing the ints attribute normalized_shape");
  const kl_step_operand *x = &in[0];
  if (shape->n > x->rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "aten::layer_norm: normalized_shape has %d dims, input only %d",
                            shape->n, x->rank);
  for (int i = 0; i < shape->n; i++)
    if (shape->u.is[i] != x->shape[x->rank - shape->n + i]) {
      char buf[160];
      kl_shape_format(x->shape, x->rank, buf, sizeof buf);
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "aten::layer_norm: normalized_shape does not match the trailing "
                              "dims of input %s",
                              buf);
    }
  p->n_norm_dims = shape->n;
  p->eps = kl_ir_node_float(n, "eps", 1e-5);
  return NULL;
}

ENCODER(softmax) {
  (void)n_in, (void)out, (void)n_out;
  kl_step_softmax_params *p = params;
  int dim;
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, kl_ir_node_int(n, "dim", 0), in[0].rank, &dim));
  p->dim = dim;
  p->log = n->op == KL_OP_LOG_SOFTMAX;
  return NULL;
}

/* scale [1/sqrt(E)] with E the last dim of q; is_causal [0]. */
ENCODER(attention) {
  (void)n_in, (void)out, (void)n_out;
  kl_step_attention_params *p = params;
  int64_t e = in[0].rank > 0 ? in[0].shape[in[0].rank - 1] : 0;
  p->scale = kl_ir_node_float(n, "scale", e > 0 ? 1.0 / sqrt((double)e) : 1.0);
  p->is_causal = kl_ir_node_int(n, "is_causal", 0) != 0;
  return NULL;
}

static kl_status encode_pool2d(const kl_ir_node *n, const kl_step_operand *in, int n_in,
                               const kl_step_operand *out, int n_out, void *params) {
  UNUSED_OPERANDS;
  kl_step_pool2d_params *p = params;
  return kl_ir_pool2d_params(n, &p->pool, NULL);
}
#define encode_max_pool2d encode_pool2d
#define encode_avg_pool2d encode_pool2d

ENCODER(reduce) {
  (void)n_in, (void)out, (void)n_out;
  kl_step_reduce_params *p = params;
  kl_rt_reduce_op op;
  bool keepdim;
  KL_RETURN_IF_ERROR(kl_ir_reduce_params(n, in[0].rank, &op, p->mask, &keepdim));
  p->op = (int32_t)op;
  p->rank = in[0].rank;
  return NULL;
}

ENCODER(permute) {
  (void)n_in, (void)out, (void)n_out;
  kl_step_permute_params *p = params;
  int perm[KL_MAX_RANK];
  KL_RETURN_IF_ERROR(kl_ir_permute_params(n, in[0].rank, perm));
  p->rank = in[0].rank;
  for (int i = 0; i < in[0].rank; i++)
    p->perm[i] = perm[i];
  return NULL;
}

static kl_status encode_dim(const kl_ir_node *n, const kl_step_operand *in, int n_in,
                            const kl_step_operand *out, int n_out, void *params) {
  (void)n_in, (void)out, (void)n_out;
  kl_step_dim_params *p = params;
  int dim;
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(n, kl_ir_node_int(n, "dim", 0), in[0].rank, &dim));
  p->dim = dim;
  return NULL;
}
#define encode_cat encode_dim
#define encode_split encode_dim

ENCODER(slice) {
  (void)n_in, (void)n_out;
  kl_step_slice_params *p = params;
  int dim;
  int64_t start, step, len;
  KL_RETURN_IF_ERROR(kl_ir_slice_params(n, in[0].rank, in[0].shape, &dim, &start, &step, &len));
  if (out[0].rank != in[0].rank || out[0].shape[dim] != len)
    return kl_status_create(
        KL_ERR_INTERNAL, "aten::slice: output length %lld along dim %d, attributes give %lld",
        (long long)(out[0].rank == in[0].rank ? out[0].shape[dim] : -1), dim, (long long)len);
  p->dim = dim;
  p->start = start;
  p->step = step;
  p->len = len;
  return NULL;
}

ENCODER(constant_pad) {
  (void)n_in, (void)out, (void)n_out;
  kl_step_constant_pad_params *p = params;
  KL_RETURN_IF_ERROR(kl_ir_pad_params(n, in[0].rank, p->pad, &p->value));
  p->rank = in[0].rank;
  return NULL;
}

/* embedding(weight, indices), index_select(x, indices), onnx::Gather(data, indices) */
ENCODER(gather) {
  (void)out, (void)n_out;
  kl_step_gather_params *p = params;
  int axis;
  bool allow_negative, indices_1d;
  KL_RETURN_IF_ERROR(kl_ir_gather_params(n, in[0].rank, &axis, &allow_negative, &indices_1d));
  if (indices_1d && n_in > 1 && in[1].rank != 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: indices must be 1-D, got rank %d",
                            kl_ir_node_op_name(n), in[1].rank);
  p->axis = axis;
  p->allow_negative = allow_negative;
  p->indices_1d = indices_1d;
  return NULL;
}

ENCODER(cumsum) {
  (void)n_in, (void)out, (void)n_out;
  kl_step_cumsum_params *p = params;
  int dim;
  bool exclusive, reverse;
  KL_RETURN_IF_ERROR(kl_ir_cumsum_params(n, in[0].rank, &dim, &exclusive, &reverse));
  p->dim = dim;
  p->exclusive = exclusive;
  p->reverse = reverse;
  return NULL;
}

ENCODER(scatter) {
  (void)n_in, (void)out, (void)n_out;
  kl_step_scatter_params *p = params;
  int dim = 0;
  kl_rt_scatter_reduce reduce;
  KL_RETURN_IF_ERROR(kl_ir_scatter_params(n, in[0].rank, &dim, &reduce));
  p->dim = dim;
  p->reduce = (int32_t)reduce;
  return NULL;
}

ENCODER(scatter_nd) {
  (void)n_in, (void)out, (void)n_out;
  kl_step_scatter_params *p = params;
  kl_rt_scatter_reduce reduce;
  KL_RETURN_IF_ERROR(kl_ir_scatter_params(n, in[0].rank, NULL, &reduce));
  p->reduce = (int32_t)reduce;
  return NULL;
}

ENCODER(gather_nd) {
  UNUSED_OPERANDS;
  kl_step_gather_nd_params *p = params;
  int batch_dims;
  KL_RETURN_IF_ERROR(kl_ir_gather_nd_params(n, &batch_dims));
  p->batch_dims = batch_dims;
  return NULL;
}

ENCODER(rnn) {
  UNUSED_OPERANDS;
  kl_step_rnn_params *p = params;
  kl_rt_rnn_params rnn;
  memset(&rnn, 0, sizeof rnn);
  KL_RETURN_IF_ERROR(kl_ir_rnn_params(n, &rnn));
  memcpy(&p->rnn, &rnn, sizeof rnn);
  return NULL;
}

ENCODER(resize) {
  (void)n_in, (void)out, (void)n_out;
  kl_step_resize_params *p = params;
  kl_rt_resize_params rp;
  memset(&rp, 0, sizeof rp);
  KL_RETURN_IF_ERROR(kl_ir_resize_params(n, in[0].rank, in[0].shape, &rp));
  memcpy(&p->resize, &rp, sizeof rp);
  return NULL;
}

ENCODER(grid_sample) {
  UNUSED_OPERANDS;
  kl_step_grid_sample_params *p = params;
  kl_rt_resize_mode mode;
  kl_rt_grid_padding padding;
  bool align_corners;
  KL_RETURN_IF_ERROR(kl_ir_grid_sample_params(n, &mode, &padding, &align_corners));
  p->mode = (int32_t)mode;
  p->padding = (int32_t)padding;
  p->align_corners = align_corners;
  return NULL;
}

typedef struct encoder_entry {
  const char *kernel;
  encode_fn encode;
} encoder_entry;

static const encoder_entry encoders[KL_OP_COUNT] = {
#define KL_OP(id, name, imin, imax, omin, omax, blocks, cat, attrs, shape, kernel)       \
  [KL_OP_##id] = {#kernel, encode_##kernel},
#include "../ir/ops.def"
#undef KL_OP
};

/* Checks the operand descriptions the encoders read: counts against the op's schema, ranks,
 * shapes present and static. */
static kl_status check_operands(const kl_ir_node *n, const char *what, const kl_step_operand *ops,
                                int count, int min, int max, bool absent_ok) {
  const char *op = kl_ir_node_op_name(n);
  if (count < min || (max >= 0 && count > max) || (count > 0 && !ops))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: %d %ss, expected %d to %d", op, count,
                            what, min, max);
  for (int i = 0; i < count; i++) {
    const kl_step_operand *o = &ops[i];
    if (o->rank < 0 && absent_ok && i >= min)
      continue;
    if (o->rank < 0 || o->rank > KL_MAX_RANK || (o->rank > 0 && !o->shape))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: %s %d has rank %d%s", op, what, i,
                              o->rank, o->rank >= 0 && o->rank <= KL_MAX_RANK ? " and no shape"
                                                                              : "");
    for (int d = 0; d < o->rank; d++)
      if (o->shape[d] < 0)
        return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                "%s: %s %d has dim %d not static (%lld)", op, what, i, d,
                                (long long)o->shape[d]);
  }
  return NULL;
}

kl_status kl_step_encode(const kl_ir_node *node, const kl_step_operand *in, int n_in,
                         const kl_step_operand *out, int n_out, const kl_step_info **out_step,
                         void *params) {
  *out_step = NULL;
  memset(params, 0, KL_STEP_PARAMS_MAX);
  /* encoders write through typed pointers: into an aligned block, copied out at the end */
  _Alignas(max_align_t) unsigned char block[KL_STEP_PARAMS_MAX];
  memset(block, 0, sizeof block);
  if (!node || (unsigned)node->op >= KL_OP_COUNT)
    return kl_status_create(KL_ERR_INTERNAL, "step encode: not a node of a known op");
  const encoder_entry *e = &encoders[node->op];
  const kl_step_info *step = kl_step_lookup(e->kernel);
  if (!step || !step->fn)
    return encode_control(node, in, n_in, out, n_out, params);
  const kl_op_info *info = kl_op_get(node->op);
  KL_RETURN_IF_ERROR(
      check_operands(node, "input", in, n_in, info->min_inputs, info->max_inputs, true));
  KL_RETURN_IF_ERROR(
      check_operands(node, "output", out, n_out, info->min_outputs, info->max_outputs, false));
  KL_RETURN_IF_ERROR(e->encode(node, in, n_in, out, n_out, block));
  memcpy(params, block, sizeof block);
  *out_step = step;
  return NULL;
}
