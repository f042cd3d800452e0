/* The interpreter's adapters for onnx::Resize and onnx::GridSample (issue 4): the attributes
 * are read through ir/op_params.h (the rules the shape functions apply) and handed to the
 * kernels in runtime/kernels/resize.c and grid_sample.c. */
#include "../ir/op_params.h"
#include "interp_internal.h"
#include "kernels.h"

KL_INTERP_ADAPTER(resize) {
  (void)g;
  kl_rt_resize_params p;
  KL_RETURN_IF_ERROR(kl_ir_resize_params(node, in[0]->rank, in[0]->shape, &p));
  return kl_status_annotate(kl_rt_resize(in[0], &p, out[0]), "%s", kl_ir_node_op_name(node));
}

KL_INTERP_ADAPTER(grid_sample) {
  (void)g;
  kl_rt_resize_mode mode;
  kl_rt_grid_padding padding;
  bool align_corners;
  KL_RETURN_IF_ERROR(kl_ir_grid_sample_params(node, &mode, &padding, &align_corners));
  return kl_status_annotate(kl_rt_grid_sample(in[0], in[1], mode, padding, align_corners, out[0]),
                            "%s", kl_ir_node_op_name(node));
}
