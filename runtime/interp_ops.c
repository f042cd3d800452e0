/* The interpreter's reference kernel adapters: one per value of the kernel column of
 * ir/ops.def. An adapter reads the node's attributes through ir/op_params.h (so defaults and
 * rules match the shape functions), picks the node's inputs apart and calls the kernel in
 * runtime/kernels/. Outputs arrive allocated with the inferred types; adapters only fill them.
 * The table below is built by expanding ops.def, so a new op row needs no edit here unless it
 * names a new kernel; an op family may also keep its adapters in runtime/interp_<family>.c
 * (declared for the table by interp_internal.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../ir/op_params.h"
#include "interp_internal.h"
#include "kernels.h"

#define ADAPTER(name) KL_INTERP_ADAPTER(name)

/* The optional input i, or NULL when the node has fewer inputs. */
static const kl_tensor *opt_input(const kl_ir_node *node, kl_tensor *const *in, int i) {
  return i < node->n_inputs ? in[i] : NULL;
}

ADAPTER(control) {
  (void)g, (void)in, (void)out;
  return kl_status_create(KL_ERR_INTERNAL,
                          "%s has no kernel: the interpreter runs its blocks itself",
                          kl_ir_node_op_name(node));
}

ADAPTER(linear) {
  (void)g;
  return kl_rt_linear(in[0], in[1], opt_input(node, in, 2), out[0]);
}

ADAPTER(matmul) {
  (void)g, (void)node;
  return kl_rt_matmul(in[0], in[1], out[0]);
}

ADAPTER(conv2d) {
  (void)g;
  kl_rt_conv2d_params p;
  KL_RETURN_IF_ERROR(kl_ir_conv2d_params(node, &p));
  return kl_rt_conv2d(in[0], in[1], opt_input(node, in, 2), &p, out[0]);
}

ADAPTER(batch_norm) {
  (void)g;
  /* aten::batch_norm(input, weight, bias, running_mean, running_var) */
  double eps = kl_ir_node_float(node, "eps", 1e-5);
  return kl_rt_batch_norm(in[0], in[1], in[2], in[3], in[4], eps, out[0]);
}

ADAPTER(layer_norm) {
  (void)g;
  const kl_ir_attr *shape = kl_ir_node_attr(node, "normalized_shape");
  if (!shape || shape->kind != KL_ATTR_INTS)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "aten::layer_norm: missing the ints attribute normalized_shape");
  const kl_tensor *x = in[0];
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
  double eps = kl_ir_node_float(node, "eps", 1e-5);
  return kl_rt_layer_norm(x, opt_input(node, in, 1), opt_input(node, in, 2), shape->n, eps, out[0]);
}

ADAPTER(softmax) {
  (void)g;
  int dim;
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(node, kl_ir_node_int(node, "dim", 0), in[0]->rank, &dim));
  return kl_rt_softmax(in[0], dim, node->op == KL_OP_LOG_SOFTMAX, out[0]);
}

/* aten::scaled_dot_product_attention(q, k, v, mask?): scale [1/sqrt(E)], is_causal [0]. */
ADAPTER(attention) {
  (void)g;
  const kl_tensor *q = in[0];
  int64_t e = q->rank > 0 ? q->shape[q->rank - 1] : 0;
  double scale = kl_ir_node_float(node, "scale", e > 0 ? 1.0 / sqrt((double)e) : 1.0);
  bool is_causal = kl_ir_node_int(node, "is_causal", 0) != 0;
  return kl_rt_attention(q, in[1], in[2], opt_input(node, in, 3), scale, is_causal, out[0]);
}

ADAPTER(max_pool2d) {
  (void)g;
  kl_rt_pool2d_params p;
  KL_RETURN_IF_ERROR(kl_ir_pool2d_params(node, &p, NULL));
  return kl_rt_max_pool2d(in[0], &p, out[0]);
}

ADAPTER(avg_pool2d) {
  (void)g;
  kl_rt_pool2d_params p;
  KL_RETURN_IF_ERROR(kl_ir_pool2d_params(node, &p, NULL));
  return kl_rt_avg_pool2d(in[0], &p, out[0]);
}

ADAPTER(adaptive_avg_pool2d) {
  (void)g, (void)node;
  return kl_rt_adaptive_avg_pool2d(in[0], out[0]);
}

ADAPTER(unary) {
  (void)g;
  kl_rt_unary_op op;
  double a, b;
  KL_RETURN_IF_ERROR(kl_ir_unary_params(node, &op, &a, &b));
  return kl_rt_unary(op, a, b, in[0], out[0]);
}

ADAPTER(cast) {
  (void)g, (void)node;
  return kl_rt_cast(in[0], out[0]);
}

ADAPTER(binary) {
  (void)g;
  kl_rt_binary_op op;
  KL_RETURN_IF_ERROR(kl_ir_binary_params(node, &op));
  return kl_rt_binary(op, in[0], in[1], out[0]);
}

ADAPTER(where) {
  (void)g, (void)node;
  return kl_rt_where(in[0], in[1], in[2], out[0]);
}

ADAPTER(copy) {
  (void)g, (void)node;
  return kl_rt_copy(in[0], out[0]);
}

ADAPTER(permute) {
  (void)g;
  int perm[KL_MAX_RANK];
  KL_RETURN_IF_ERROR(kl_ir_permute_params(node, in[0]->rank, perm));
  return kl_rt_permute(in[0], perm, out[0]);
}

ADAPTER(expand) {
  (void)g, (void)node;
  return kl_rt_expand(in[0], out[0]);
}

ADAPTER(cat) {
  (void)g;
  int dim;
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(node, kl_ir_node_int(node, "dim", 0), in[0]->rank, &dim));
  return kl_rt_cat((const kl_tensor *const *)in, node->n_inputs, dim, out[0]);
}

ADAPTER(split) {
  (void)g;
  int dim;
  KL_RETURN_IF_ERROR(kl_ir_normalize_dim(node, kl_ir_node_int(node, "dim", 0), in[0]->rank, &dim));
  return kl_rt_split(in[0], dim, out, node->n_outputs);
}

ADAPTER(slice) {
  (void)g;
  int dim;
  int64_t start, step, len;
  KL_RETURN_IF_ERROR(
      kl_ir_slice_params(node, in[0]->rank, in[0]->shape, &dim, &start, &step, &len));
  if (out[0]->rank != in[0]->rank || out[0]->shape[dim] != len)
    return kl_status_create(
        KL_ERR_INTERNAL, "aten::slice: output length %lld along dim %d, attributes give %lld",
        (long long)(out[0]->rank == in[0]->rank ? out[0]->shape[dim] : -1), dim, (long long)len);
  return kl_rt_slice(in[0], dim, start, step, out[0]);
}

ADAPTER(constant_pad) {
  (void)g;
  int64_t pad[2 * KL_MAX_RANK];
  double value;
  KL_RETURN_IF_ERROR(kl_ir_pad_params(node, in[0]->rank, pad, &value));
  return kl_rt_constant_pad(in[0], pad, value, out[0]);
}

ADAPTER(gather) {
  (void)g;
  /* embedding(weight, indices), index_select(x, indices), onnx::Gather(data, indices) */
  int axis;
  bool allow_negative, indices_1d;
  KL_RETURN_IF_ERROR(kl_ir_gather_params(node, in[0]->rank, &axis, &allow_negative, &indices_1d));
  if (indices_1d && in[1]->rank != 1)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: indices must be 1-D, got rank %d",
                            kl_ir_node_op_name(node), in[1]->rank);
  kl_status s = kl_rt_gather(in[0], in[1], axis, allow_negative, out[0]);
  return kl_status_annotate(s, "%s", kl_ir_node_op_name(node));
}

ADAPTER(reduce) {
  (void)g;
  kl_rt_reduce_op op;
  bool mask[KL_MAX_RANK], keepdim;
  KL_RETURN_IF_ERROR(kl_ir_reduce_params(node, in[0]->rank, &op, mask, &keepdim));
  return kl_rt_reduce(op, in[0], mask, out[0]);
}

static const kl_interp_kernel_fn kernel_table[KL_OP_COUNT] = {
#define KL_OP(id, name, imin, imax, omin, omax, blocks, cat, attrs, shape, kernel)                 \
  [KL_OP_##id] = kl_interp_##kernel,
#include "../ir/ops.def"
#undef KL_OP
};

kl_interp_kernel_fn kl_interp_kernel(kl_op op) {
  if ((unsigned)op >= KL_OP_COUNT)
    return NULL;
  return kernel_table[op];
}
