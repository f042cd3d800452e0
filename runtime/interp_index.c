/* Kernel adapters of the indexing ops added for issue 4 (aten::cumsum, aten::scatter,
 * onnx::ScatterND, onnx::GatherND): read the attributes through ir/op_params.h and call the
 * kernels of runtime/kernels/index.c. aten::prod runs through the shared reduce adapter. */
#include "../ir/op_params.h"
#include "interp_internal.h"
#include "kernels.h"

KL_INTERP_ADAPTER(cumsum) {
  (void)g;
  int dim;
  bool exclusive, reverse;
  KL_RETURN_IF_ERROR(kl_ir_cumsum_params(node, in[0]->rank, &dim, &exclusive, &reverse));
  return kl_rt_cumsum(in[0], dim, exclusive, reverse, out[0]);
}

KL_INTERP_ADAPTER(scatter) {
  (void)g;
  int dim = 0;
  kl_rt_scatter_reduce reduce;
  KL_RETURN_IF_ERROR(kl_ir_scatter_params(node, in[0]->rank, &dim, &reduce));
  kl_status s = kl_rt_scatter(in[0], in[1], in[2], dim, reduce, out[0]);
  return kl_status_annotate(s, "%s", kl_ir_node_op_name(node));
}

KL_INTERP_ADAPTER(scatter_nd) {
  (void)g;
  kl_rt_scatter_reduce reduce;
  KL_RETURN_IF_ERROR(kl_ir_scatter_params(node, in[0]->rank, NULL, &reduce));
  return kl_rt_scatter_nd(in[0], in[1], in[2], reduce, out[0]);
}

KL_INTERP_ADAPTER(gather_nd) {
  (void)g;
  int batch_dims;
  KL_RETURN_IF_ERROR(kl_ir_gather_nd_params(node, &batch_dims));
  return kl_rt_gather_nd(in[0], in[1], batch_dims, out[0]);
}
