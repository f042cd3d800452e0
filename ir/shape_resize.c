/* Attribute rules and shape functions of onnx::Resize and onnx::GridSample (issue 4). Resize
 * carries its output size as an attribute (ONNX's scales/sizes inputs are folded at import),
 * so its output shape is fully static; GridSample's output is (N, C) of the input followed by
 * the grid's spatial dims. */
#include <math.h>
#include <string.h>

#include "op_params.h"
#include "shape_internal.h"

/* ---- attributes -------------------------------------------------------------------------- */

/* Index of name in names (n entries), or -1. */
static int lookup(const char *name, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(name, names[i]))
      return i;
  return -1;
}

/* The string attribute attr as one of names, or dflt when absent. */
static kl_status string_choice(const kl_ir_node *n, const char *attr, const char *const *names,
                               int count, int dflt, int *out) {
  const kl_ir_attr *a = kl_ir_node_attr(n, attr);
  if (!a) {
    *out = dflt;
    return NULL;
  }
  if (a->kind != KL_ATTR_STRING || (*out = lookup(a->u.s, names, count)) < 0)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: unknown %s '%s'",
                            kl_ir_node_op_name(n), attr,
                            a->kind == KL_ATTR_STRING ? a->u.s : "(not a string)");
  return NULL;
}

kl_status kl_ir_resize_params(const kl_ir_node *n, int rank, const int64_t *in_shape,
                              kl_rt_resize_params *out) {
  static const char *const modes[] = {"nearest", "linear", "cubic"};
  static const char *const coords[] = {"half_pixel", "half_pixel_symmetric",
                                       "pytorch_half_pixel", "align_corners", "asymmetric",
                                       "tf_crop_and_resize"};
  static const char *const nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                         "ceil"};
  const char *op = kl_ir_node_op_name(n);
  memset(out, 0, sizeof *out);
  int mode, coord, nearest;
  KL_RETURN_IF_ERROR(string_choice(n, "mode", modes, 3, 0, &mode));
  KL_RETURN_IF_ERROR(string_choice(n, "coordinate_transformation_mode", coords, 6, 0, &coord));
  KL_RETURN_IF_ERROR(string_choice(n, "nearest_mode", nearests, 4, 0, &nearest));
  out->mode = (kl_rt_resize_mode)mode;
  out->coord = (kl_rt_resize_coord)coord;
  out->nearest = (kl_rt_resize_nearest)nearest;
  out->cubic_coeff_a = kl_ir_node_float(n, "cubic_coeff_a", -0.75);
  out->exclude_outside = kl_ir_node_int(n, "exclude_outside", 0) != 0;
  out->antialias = kl_ir_node_int(n, "antialias", 0) != 0;
  out->extrapolation_value = kl_ir_node_float(n, "extrapolation_value", 0);
  if (out->antialias && out->mode == KL_RESIZE_NEAREST)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: antialias needs mode linear or cubic",
                            op);
  if (rank < 0 || rank > KL_MAX_RANK)
    return kl_status_create(KL_ERR_LIMIT, "%s: rank %d", op, rank);
  const kl_ir_attr *size = kl_ir_node_attr(n, "size");
  if (!size || size->kind != KL_ATTR_INTS || size->n != rank)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: attribute size must be %d ints, one "
                            "per dim of the input", op, rank);
  const kl_ir_attr *scales = kl_ir_node_attr(n, "scales");
  if (scales && (scales->kind != KL_ATTR_FLOATS || scales->n != rank))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: attribute scales must be %d floats",
                            op, rank);
  const kl_ir_attr *roi = kl_ir_node_attr(n, "roi");
  if (roi && (roi->kind != KL_ATTR_FLOATS || roi->n != 2 * rank))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: attribute roi must be %d floats "
                            "(starts, then ends)", op, 2 * rank);
  for (int d = 0; d < rank; d++) {
    if (size->u.is[d] < 0)
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: size[%d] = %lld is negative", op, d,
                              (long long)size->u.is[d]);
    double s = scales ? scales->u.fs[d]
               : in_shape && in_shape[d] > 0 ? (double)size->u.is[d] / (double)in_shape[d]
                                             : 1;
    if (!(s > 0) || !isfinite(s))
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "%s: scale %g of dim %d must be "
                              "positive", op, s, d);
    out->scales[d] = s;
    out->roi[d] = roi ? roi->u.fs[d] : 0;
    out->roi[rank + d] = roi ? roi->u.fs[rank + d] : 1;
  }
  return NULL;
}

kl_status kl_ir_grid_sample_params(const kl_ir_node *n, kl_rt_resize_mode *out_mode,
                                   kl_rt_grid_padding *out_padding, bool *out_align_corners) {
  static const char *const modes[] = {"nearest", "linear", "cubic", "bilinear", "bicubic"};
  static const char *const pads[] = {"zeros", "border", "reflection"};
  int mode, pad;
  KL_RETURN_IF_ERROR(string_choice(n, "mode", modes, 5, 1, &mode));
  KL_RETURN_IF_ERROR(string_choice(n, "padding_mode", pads, 3, 0, &pad));
  *out_mode = mode == 3 ? KL_RESIZE_LINEAR : mode == 4 ? KL_RESIZE_CUBIC : (kl_rt_resize_mode)mode;
  *out_padding = (kl_rt_grid_padding)pad;
  *out_align_corners = kl_ir_node_int(n, "align_corners", 0) != 0;
  return NULL;
}

/* ---- shape functions --------------------------------------------------------------------- */

/* onnx::Resize: x (d0..dk) -> size; floating point only. */
KL_SHAPE_FN(resize) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 1, 1, n_out, 1, 1));
  const kl_ir_type *x = &in[0];
  KL_RETURN_IF_ERROR(kl_shape_require_float(node, x, "input"));
  int64_t shape[KL_MAX_RANK];
  bool all_static = true;
  for (int d = 0; d < x->rank; d++) {
    all_static &= kl_ir_dim_is_static(x->dims[d]);
    shape[d] = kl_ir_dim_is_static(x->dims[d]) ? x->dims[d].size : 0;
  }
  kl_rt_resize_params p;
  KL_RETURN_IF_ERROR(kl_ir_resize_params(node, x->rank, all_static ? shape : NULL, &p));
  const kl_ir_attr *size = kl_ir_node_attr(node, "size");
  out[0] = *x;
  for (int d = 0; d < x->rank; d++) {
    if (size->u.is[d] > 0 && kl_ir_dim_is_static(x->dims[d]) && x->dims[d].size == 0)
      return kl_shape_error(node, "cannot resize the empty dim %d of %s to %lld", d,
                            kl_shape_fmt(node, x).s, (long long)size->u.is[d]);
    out[0].dims[d] = kl_ir_dim_static(size->u.is[d]);
  }
  return NULL;
}

/* onnx::GridSample: x (N, C, D1..Dk), grid (N, O1..Ok, k) -> (N, C, O1..Ok). */
KL_SHAPE_FN(grid_sample) {
  KL_RETURN_IF_ERROR(kl_shape_check_arity(node, in, n_in, 2, 2, n_out, 1, 1));
  const kl_ir_type *x = &in[0], *grid = &in[1];
  KL_RETURN_IF_ERROR(kl_shape_require_float(node, x, "input"));
  KL_RETURN_IF_ERROR(kl_shape_require_float(node, grid, "grid"));
  kl_rt_resize_mode mode;
  kl_rt_grid_padding padding;
  bool align;
  KL_RETURN_IF_ERROR(kl_ir_grid_sample_params(node, &mode, &padding, &align));
  int k = x->rank - 2;
  if (k < 1 || grid->rank != x->rank)
    return kl_shape_error(node, "input %s must be (N, C, D1..Dk) and grid %s (N, O1..Ok, k) of "
                          "the same rank", kl_shape_fmt(node, x).s, kl_shape_fmt(node, grid).s);
  if (!kl_shape_dim_may_be(node, grid->dims[k + 1], k))
    return kl_shape_error(node, "grid %s must end in %d (one coordinate per spatial dim)",
                          kl_shape_fmt(node, grid).s, k);
  if (!kl_shape_dims_may_equal(node, x->dims[0], grid->dims[0]))
    return kl_shape_error(node, "input %s and grid %s differ in batch size",
                          kl_shape_fmt(node, x).s, kl_shape_fmt(node, grid).s);
  out[0] = *x;
  out[0].dims[0] = kl_shape_dim_meet(x->dims[0], grid->dims[0]);
  for (int d = 0; d < k; d++)
    out[0].dims[2 + d] = grid->dims[1 + d];
  return NULL;
}
