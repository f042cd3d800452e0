/* ONNX Resize (opsets 10-19), Upsample (7, 9) and GridSample (16, 20) to onnx::Resize and
 * onnx::GridSample (issue 4). Resize's scales, sizes and roi must be constants: the output
 * size is computed here (axes and keep_aspect_ratio_policy applied) and stored with the
 * per-dim scales, which ONNX's coordinate maps use as given rather than as size / input. */
#include <math.h>
#include <string.h>

#include "onnx_internal.h"

/* Up to max floats from constant input i; *out_n = -1 when the input is omitted or empty. */
static kl_status const_floats(kl_onnx_node_ctx *c, int i, const char *what, double *out,
                              int max, int *out_n) {
  kl_ir_value *v = kl_onnx_input(c, i);
  *out_n = -1;
  if (!v)
    return NULL;
  kl_tensor *t = kl_onnx_const_tensor(c, v);
  if (!t && kl_onnx_probe_value(c, v))
    return NULL;
  if (!t)
    c->imp->needs_run_time = true;
  if (!t)
    return kl_onnx_node_error(c, KL_ERR_UNSUPPORTED, "input %d (%s) needs a constant (an "
                              "initializer or a Constant node)", i, what);
  if (t->numel == 0)
    return NULL;
  if (t->numel > max)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "input %d (%s) has %lld values, at "
                              "most %d expected", i, what, (long long)t->numel, max);
  for (int64_t k = 0; k < t->numel; k++)
    out[k] = kl_dtype_load_f64(t->dtype, t->data, (size_t)k);
  *out_n = (int)t->numel;
  return NULL;
}

/* The mode attribute in kiln's spelling: Upsample and old Resize say "bilinear"/"linear". */
static kl_status resize_mode(kl_onnx_node_ctx *c, const char **out) {
  char buf[32];
  const char *mode = kl_onnx_attr_string(c, "mode", "nearest", buf, sizeof buf);
  if (!strcmp(mode, "nearest"))
    *out = "nearest";
  else if (!strcmp(mode, "linear") || !strcmp(mode, "bilinear"))
    *out = "linear";
  else if (!strcmp(mode, "cubic") && !strcmp(c->node->op_type, "Resize") && c->opset >= 11)
    *out = "cubic";
  else
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "unknown mode '%s'", mode);
  return NULL;
}

kl_status kl_onnx_map_resize(kl_onnx_node_ctx *c) {
  kl_ir_value *x;
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  KL_RETURN_IF_ERROR(kl_onnx_require_float(c, x));
  int rank = x->type.rank;
  int64_t shape[KL_MAX_RANK];
  KL_RETURN_IF_ERROR(kl_onnx_need_static(c, x, shape));
  const char *mode = "nearest";
  KL_RETURN_IF_ERROR(resize_mode(c, &mode));
  bool upsample = !strcmp(c->node->op_type, "Upsample"), v10 = upsample || c->opset < 11;

  /* axes (opset 18): which dims the scales, sizes and roi name */
  int64_t axes[KL_MAX_RANK];
  int n_axes = rank;
  for (int d = 0; d < rank; d++)
    axes[d] = d;
  int n;
  const int64_t *attr_axes = kl_onnx_attr_ints(c, "axes", &n);
  if (attr_axes && !v10) {
    if (n < 1 || n > rank)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "%d axes for rank %d", n, rank);
    bool seen[KL_MAX_RANK] = {false};
    for (int i = 0; i < n; i++) {
      int64_t a = attr_axes[i] < 0 ? attr_axes[i] + rank : attr_axes[i];
      if (a < 0 || a >= rank || seen[a])
        return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "axis %lld is out of range or "
                                  "repeated for rank %d", (long long)attr_axes[i], rank);
      seen[a] = true;
      axes[i] = a;
    }
    n_axes = n;
  }

  /* scales or sizes, per named axis */
  double scales[KL_MAX_RANK], values[KL_MAX_RANK];
  int64_t size[KL_MAX_RANK];
  for (int d = 0; d < rank; d++)
    scales[d] = 1, size[d] = shape[d];
  int n_scales = -1;
  if (upsample && c->opset < 9) {
    const Onnx__AttributeProto *a = kl_onnx_attr(c->node, "scales");
    if (!a)
      return kl_onnx_missing_attr(c, "scales");
    n_scales = (int)a->n_floats;
    for (int i = 0; i < n_scales && i < KL_MAX_RANK; i++)
      values[i] = a->floats[i];
  } else {
    KL_RETURN_IF_ERROR(const_floats(c, v10 ? 1 : 2, "scales", values, KL_MAX_RANK, &n_scales));
  }
  if (n_scales >= 0) {
    if (n_scales != n_axes)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "%d scales for %d axes", n_scales,
                                n_axes);
    for (int i = 0; i < n_axes; i++) {
      double s = values[i];
      if (!(s > 0) || !isfinite(s))
        return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "scale %g must be positive", s);
      double out = floor(s * (double)shape[axes[i]]);
      if (out > (double)INT32_MAX)
        return kl_onnx_node_error(c, KL_ERR_LIMIT, "output size %g is too large", out);
      scales[axes[i]] = s, size[axes[i]] = (int64_t)out;
    }
  } else if (!v10) {
    int64_t sizes[KL_MAX_RANK];
    if (!kl_onnx_input(c, 3))
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "needs scales or sizes");
    KL_RETURN_IF_ERROR(kl_onnx_const_ints(c, 3, sizes, KL_MAX_RANK, &n));
    if (n != n_axes)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "%d sizes for %d axes", n, n_axes);
    char buf[32];
    const char *policy = kl_onnx_attr_string(c, "keep_aspect_ratio_policy", "stretch", buf,
                                             sizeof buf);
    bool not_larger = !strcmp(policy, "not_larger"), not_smaller = !strcmp(policy, "not_smaller");
    if (!not_larger && !not_smaller && strcmp(policy, "stretch"))
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "unknown keep_aspect_ratio_policy "
                                "'%s'", policy);
    double keep = not_larger ? INFINITY : 0;
    for (int i = 0; i < n_axes; i++) {
      int64_t in = shape[axes[i]];
      if (sizes[i] < 0 || sizes[i] > INT32_MAX || in == 0)
        return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "size %lld for a dim of %lld",
                                  (long long)sizes[i], (long long)in);
      double s = (double)sizes[i] / (double)in;
      scales[axes[i]] = s, size[axes[i]] = sizes[i];
      keep = not_larger ? fmin(keep, s) : fmax(keep, s);
    }
    if (not_larger || not_smaller)
      for (int i = 0; i < n_axes; i++) {
        scales[axes[i]] = keep;
        size[axes[i]] = (int64_t)(keep * (double)shape[axes[i]] + 0.5);
      }
    for (int d = 0; d < rank; d++)
      if (!(scales[d] > 0))
        return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "size 0 for dim %d", d);
  } else {
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "needs scales");
  }

  char coord_buf[40], near_buf[40];
  const char *coord = v10 ? "asymmetric"
                          : kl_onnx_attr_string(c, "coordinate_transformation_mode",
                                                "half_pixel", coord_buf, sizeof coord_buf);
  const char *nearest = v10 ? "floor"
                            : kl_onnx_attr_string(c, "nearest_mode", "round_prefer_floor",
                                                  near_buf, sizeof near_buf);
  /* roi (opset 11+) matters only to tf_crop_and_resize */
  double roi[2 * KL_MAX_RANK];
  bool has_roi = false;
  if (!v10 && !strcmp(coord, "tf_crop_and_resize")) {
    double given[2 * KL_MAX_RANK];
    int n_roi;
    KL_RETURN_IF_ERROR(const_floats(c, 1, "roi", given, 2 * KL_MAX_RANK, &n_roi));
    if (n_roi != 2 * n_axes)
      return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "tf_crop_and_resize needs a roi of "
                                "%d values, got %d", 2 * n_axes, n_roi < 0 ? 0 : n_roi);
    for (int d = 0; d < rank; d++)
      roi[d] = 0, roi[rank + d] = 1;
    for (int i = 0; i < n_axes; i++)
      roi[axes[i]] = given[i], roi[rank + axes[i]] = given[n_axes + i];
    has_roi = true;
  }

  /* Resize-10 and Upsample in nearest mode round down when enlarging a dim and up when
   * shrinking it (as ONNX Runtime does): dims that shrink get a node of their own first. */
  bool down = false, up = false;
  for (int d = 0; d < rank; d++)
    down |= scales[d] < 1, up |= scales[d] > 1;
  if (v10 && !strcmp(mode, "nearest") && down) {
    nearest = "ceil";
    if (up) {
      int64_t first_size[KL_MAX_RANK];
      double first_scales[KL_MAX_RANK];
      for (int d = 0; d < rank; d++) {
        bool shrinks = scales[d] < 1;
        first_size[d] = shrinks ? size[d] : shape[d];
        first_scales[d] = shrinks ? scales[d] : 1;
      }
      kl_ir_node *first;
      KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_RESIZE, &x, 1, &first));
      kl_ir_node_set_ints(first, "size", first_size, rank);
      kl_ir_node_set_floats(first, "scales", first_scales, rank);
      kl_ir_node_set_string(first, "mode", mode);
      kl_ir_node_set_string(first, "coordinate_transformation_mode", coord);
      kl_ir_node_set_string(first, "nearest_mode", "ceil");
      KL_RETURN_IF_ERROR(kl_onnx_finish(c, first, &x));
      for (int d = 0; d < rank; d++)
        if (scales[d] < 1)
          scales[d] = 1;
      nearest = "floor";
    }
  }
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_RESIZE, &x, 1, &node));
  kl_ir_node_set_ints(node, "size", size, rank);
  kl_ir_node_set_floats(node, "scales", scales, rank);
  if (has_roi)
    kl_ir_node_set_floats(node, "roi", roi, 2 * rank);
  kl_ir_node_set_string(node, "mode", mode);
  kl_ir_node_set_string(node, "coordinate_transformation_mode", coord);
  if (!strcmp(mode, "nearest"))
    kl_ir_node_set_string(node, "nearest_mode", nearest);
  if (!strcmp(mode, "cubic")) {
    kl_ir_node_set_float(node, "cubic_coeff_a", kl_onnx_attr_float(c, "cubic_coeff_a", -0.75));
  }
  if (!v10) {
    if (kl_onnx_attr_int(c, "exclude_outside", 0))
      kl_ir_node_set_int(node, "exclude_outside", 1);
    if (has_roi)
      kl_ir_node_set_float(node, "extrapolation_value",
                           kl_onnx_attr_float(c, "extrapolation_value", 0));
    if (kl_onnx_attr_int(c, "antialias", 0))
      kl_ir_node_set_int(node, "antialias", 1);
  }
  return kl_onnx_finish(c, node, &c->out[0]);
}

/* GridSample: opset 16 spells the modes bilinear and bicubic; 20 linear and cubic and allows
 * any number of spatial dims. */
kl_status kl_onnx_map_grid_sample(kl_onnx_node_ctx *c) {
  kl_ir_value *x, *grid = kl_onnx_input(c, 1);
  KL_RETURN_IF_ERROR(kl_onnx_need_x(c, &x));
  if (!grid)
    return kl_onnx_node_error(c, KL_ERR_INVALID_ARGUMENT, "needs the grid input");
  char mode_buf[32], pad_buf[32];
  const char *mode = kl_onnx_attr_string(c, "mode", c->opset >= 20 ? "linear" : "bilinear",
                                         mode_buf, sizeof mode_buf);
  const char *pad = kl_onnx_attr_string(c, "padding_mode", "zeros", pad_buf, sizeof pad_buf);
  if (!strcmp(mode, "bilinear"))
    mode = "linear";
  else if (!strcmp(mode, "bicubic"))
    mode = "cubic";
  kl_ir_value *in[2] = {x, grid};
  kl_ir_node *node;
  KL_RETURN_IF_ERROR(kl_onnx_add(c, KL_OP_GRID_SAMPLE, in, 2, &node));
  kl_ir_node_set_string(node, "mode", mode);
  kl_ir_node_set_string(node, "padding_mode", pad);
  kl_ir_node_set_int(node, "align_corners", kl_onnx_attr_int(c, "align_corners", 0) != 0);
  return kl_onnx_finish(c, node, &c->out[0]);
}
