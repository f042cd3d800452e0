/* onnx::Resize and onnx::GridSample to ONNX (issue 4). Resize is written with constant scales
 * when they reproduce the output size (floor(input * scale)), else with constant sizes, whose
 * ratio to the input is then the scale ONNX's coordinate maps use (a node where neither holds,
 * as keep_aspect_ratio_policy can make, is refused); antialias needs opset 18 and
 * half_pixel_symmetric 19. GridSample needs opset 16 (4-D) or 20 (any rank). */
#include <math.h>
#include <string.h>

#include "../../ir/op_params.h"
#include "onnx_export_internal.h"

static kl_status too_old(const kl_onnx_exporter *ex, const kl_ir_node *n, const char *what,
                         int need) {
  return kl_status_create(KL_ERR_UNSUPPORTED, "%s: %s needs ONNX opset %d or newer, exporting "
                          "opset %d", kl_ir_node_op_name(n), what, need, kl_onnx_ex_opset(ex));
}

static kl_status export_resize(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  const kl_ir_type *xt = &n->inputs[0]->type;
  int rank = xt->rank;
  int64_t shape[KL_MAX_RANK];
  for (int d = 0; d < rank; d++) {
    if (!kl_ir_dim_is_static(xt->dims[d]))
      return kl_status_create(KL_ERR_UNSUPPORTED, "%s: exporting needs a static input shape",
                              kl_ir_node_op_name(n));
    shape[d] = xt->dims[d].size;
  }
  kl_rt_resize_params p;
  KL_RETURN_IF_ERROR(kl_ir_resize_params(n, rank, shape, &p));
  const char *coord = kl_ir_node_string(n, "coordinate_transformation_mode", "half_pixel");
  if (p.antialias && kl_onnx_ex_opset(ex) < 18)
    return too_old(ex, n, "antialias", 18);
  if (!strcmp(coord, "half_pixel_symmetric") && kl_onnx_ex_opset(ex) < 19)
    return too_old(ex, n, "half_pixel_symmetric", 19);
  const kl_ir_attr *size = kl_ir_node_attr(n, "size");
  bool scales_fit = true;
  for (int d = 0; d < rank; d++)
    scales_fit &= floor((double)(float)p.scales[d] * (double)shape[d]) == (double)size->u.is[d];
  for (int d = 0; d < rank && !scales_fit; d++) {
    double ratio = shape[d] ? (double)size->u.is[d] / (double)shape[d] : 1;
    if (fabs(p.scales[d] - ratio) > 1e-9 * ratio)
      return kl_status_create(KL_ERR_UNSUPPORTED, "%s: size %lld with scale %g along dim %d "
                              "(input %lld) has no ONNX form: ONNX Resize takes either sizes "
                              "or scales with size floor(input * scale)", kl_ir_node_op_name(n),
                              (long long)size->u.is[d], p.scales[d], d, (long long)shape[d]);
  }
  const char *inputs[4] = {kl_onnx_ex_name(ex, n->inputs[0]), NULL, NULL, NULL};
  if (p.coord == KL_RESIZE_TF_CROP_AND_RESIZE) {
    int64_t roi_shape[1] = {2 * rank};
    kl_tensor *roi;
    KL_RETURN_IF_ERROR(kl_tensor_create(KL_F32, 1, roi_shape, &roi));
    for (int i = 0; i < 2 * rank; i++)
      ((float *)roi->data)[i] = (float)p.roi[i];
    inputs[1] = kl_onnx_ex_const_tensor(ex, roi);
  }
  if (scales_fit) {
    int64_t s_shape[1] = {rank};
    kl_tensor *scales;
    KL_RETURN_IF_ERROR(kl_tensor_create(KL_F32, 1, s_shape, &scales));
    for (int d = 0; d < rank; d++)
      ((float *)scales->data)[d] = (float)p.scales[d];
    inputs[2] = kl_onnx_ex_const_tensor(ex, scales);
  } else {
    inputs[3] = kl_onnx_ex_const_ints(ex, size->u.is, rank);
  }
  const char *out = kl_onnx_ex_name(ex, n->outputs[0]);
  Onnx__NodeProto *node = kl_onnx_ex_node(ex, scope, "Resize", inputs, scales_fit ? 3 : 4, &out, 1);
  static const char *const modes[] = {"nearest", "linear", "cubic"};
  static const char *const nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                         "ceil"};
  kl_onnx_ex_attr_string(ex, node, "mode", modes[p.mode]);
  kl_onnx_ex_attr_string(ex, node, "coordinate_transformation_mode", coord);
  if (p.mode == KL_RESIZE_NEAREST)
    kl_onnx_ex_attr_string(ex, node, "nearest_mode", nearests[p.nearest]);
  if (p.mode == KL_RESIZE_CUBIC)
    kl_onnx_ex_attr_float(ex, node, "cubic_coeff_a", p.cubic_coeff_a);
  if (p.exclude_outside)
    kl_onnx_ex_attr_int(ex, node, "exclude_outside", 1);
  if (p.coord == KL_RESIZE_TF_CROP_AND_RESIZE)
    kl_onnx_ex_attr_float(ex, node, "extrapolation_value", p.extrapolation_value);
  if (p.antialias)
    kl_onnx_ex_attr_int(ex, node, "antialias", 1);
  return NULL;
}

static kl_status export_grid_sample(kl_onnx_exporter *ex, kl_onnx_scope *scope,
                                    const kl_ir_node *n) {
  kl_rt_resize_mode mode;
  kl_rt_grid_padding padding;
  bool align_corners;
  KL_RETURN_IF_ERROR(kl_ir_grid_sample_params(n, &mode, &padding, &align_corners));
  int opset = kl_onnx_ex_opset(ex);
  if (opset < 16)
    return too_old(ex, n, "GridSample", 16);
  if (n->inputs[0]->type.rank != 4 && opset < 20)
    return too_old(ex, n, "GridSample on other than 4-D input", 20);
  static const char *const modes16[] = {"nearest", "bilinear", "bicubic"};
  static const char *const modes20[] = {"nearest", "linear", "cubic"};
  static const char *const pads[] = {"zeros", "border", "reflection"};
  const char *in[2] = {kl_onnx_ex_name(ex, n->inputs[0]), kl_onnx_ex_name(ex, n->inputs[1])};
  const char *out = kl_onnx_ex_name(ex, n->outputs[0]);
  Onnx__NodeProto *node = kl_onnx_ex_node(ex, scope, "GridSample", in, 2, &out, 1);
  kl_onnx_ex_attr_string(ex, node, "mode", (opset >= 20 ? modes20 : modes16)[mode]);
  kl_onnx_ex_attr_string(ex, node, "padding_mode", pads[padding]);
  kl_onnx_ex_attr_int(ex, node, "align_corners", align_corners);
  return NULL;
}

kl_status kl_onnx_export_resize(kl_onnx_exporter *ex, kl_onnx_scope *scope, const kl_ir_node *n) {
  return n->op == KL_OP_RESIZE ? export_resize(ex, scope, n) : export_grid_sample(ex, scope, n);
}
