/* Tests of resize and grid sample (runtime/kernels/resize.c, grid_sample.c, ir/shape_resize.c,
 * the eager kl_resize and kl_grid_sample, their FLOP rule): values worked out by hand for the
 * cases where the arithmetic is short, and the errors bad attributes and shapes must give.
 * The numerically heavy cases live in tests/ops (numpy) and the ONNX conformance suite. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "frontend/kiln.h"
#include "ir/ir.h"
#include "ir/stats.h"
#include "runtime/kernels.h"

static kl_tensor *floats(int rank, const int64_t *shape, const float *v) {
  kl_tensor *t = NULL;
  kl_status s = kl_tensor_create(KL_F32, rank, shape, &t);
  CHECK(s == NULL);
  kl_status_destroy(s);
  if (t && v)
    memcpy(t->data, v, t->nbytes);
  return t;
}

static bool values_are(const kl_tensor *t, const float *want, int64_t n, double tol) {
  if (!t || t->numel != n)
    return false;
  for (int64_t i = 0; i < n; i++)
    if (fabs(((const float *)t->data)[i] - want[i]) > tol)
      return false;
  return true;
}

static kl_rt_resize_params params(kl_rt_resize_mode mode, kl_rt_resize_coord coord, int rank,
                                  const double *scales) {
  kl_rt_resize_params p;
  memset(&p, 0, sizeof p);
  p.mode = mode, p.coord = coord, p.cubic_coeff_a = -0.75;
  for (int d = 0; d < rank; d++)
    p.scales[d] = scales[d], p.roi[rank + d] = 1;
  return p;
}

static void test_resize_kernel(void) {
  /* align_corners maps the ends onto the ends: [0, 3] to 4 points is 0 1 2 3 */
  kl_tensor *x = floats(1, (int64_t[]){2}, (float[]){0, 3});
  kl_tensor *y = floats(1, (int64_t[]){4}, NULL);
  kl_rt_resize_params p = params(KL_RESIZE_LINEAR, KL_RESIZE_ALIGN_CORNERS, 1, (double[]){2});
  CHECK_OK(kl_rt_resize(x, &p, y));
  CHECK(values_are(y, (float[]){0, 1, 2, 3}, 4, 1e-6));
  /* half_pixel, scale 2: coordinates -0.25 0.25 0.75 1.25, clamped at the edges */
  p.coord = KL_RESIZE_HALF_PIXEL;
  CHECK_OK(kl_rt_resize(x, &p, y));
  CHECK(values_are(y, (float[]){0, 0.75f, 2.25f, 3}, 4, 1e-6));
  /* nearest asymmetric floor vs round_prefer_ceil at the halves */
  p.mode = KL_RESIZE_NEAREST, p.coord = KL_RESIZE_ASYMMETRIC, p.nearest = KL_NEAREST_FLOOR;
  CHECK_OK(kl_rt_resize(x, &p, y));
  CHECK(values_are(y, (float[]){0, 0, 3, 3}, 4, 0));
  p.nearest = KL_NEAREST_ROUND_PREFER_CEIL;
  CHECK_OK(kl_rt_resize(x, &p, y));
  CHECK(values_are(y, (float[]){0, 3, 3, 3}, 4, 0));
  /* tf_crop_and_resize: roi [-1, 2] puts the outer points outside, giving the constant */
  p.mode = KL_RESIZE_LINEAR, p.coord = KL_RESIZE_TF_CROP_AND_RESIZE;
  p.roi[0] = -1, p.roi[1] = 2, p.extrapolation_value = 9;
  CHECK_OK(kl_rt_resize(x, &p, y));
  CHECK(values_are(y, (float[]){9, 0, 3, 9}, 4, 1e-6));
  kl_tensor_release(y);

  /* a 2-D case resizing one dim only: the other is copied */
  kl_tensor *x2 = floats(2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4});
  kl_tensor *y2 = floats(2, (int64_t[]){2, 3}, NULL);
  p = params(KL_RESIZE_LINEAR, KL_RESIZE_ALIGN_CORNERS, 2, (double[]){1, 1.5});
  CHECK_OK(kl_rt_resize(x2, &p, y2));
  CHECK(values_are(y2, (float[]){1, 1.5f, 2, 3, 3.5f, 4}, 6, 1e-6));

  /* errors: a scale that is not positive, antialias with nearest, mismatched outputs */
  p.scales[1] = 0;
  CHECK_ERR(kl_rt_resize(x2, &p, y2), KL_ERR_INVALID_ARGUMENT, "must be positive");
  p.scales[1] = 1.5, p.mode = KL_RESIZE_NEAREST, p.antialias = true;
  CHECK_ERR(kl_rt_resize(x2, &p, y2), KL_ERR_INVALID_ARGUMENT, "antialias");
  p.antialias = false;
  kl_tensor *y3 = floats(1, (int64_t[]){6}, NULL);
  CHECK_ERR(kl_rt_resize(x2, &p, y3), KL_ERR_INVALID_ARGUMENT, "rank");
  kl_tensor *empty = floats(2, (int64_t[]){2, 0}, NULL);
  CHECK_ERR(kl_rt_resize(empty, &p, y2), KL_ERR_INVALID_ARGUMENT, "empty");
  kl_tensor_release(x);
  kl_tensor_release(x2);
  kl_tensor_release(y2);
  kl_tensor_release(y3);
  kl_tensor_release(empty);
}

static void test_grid_sample_kernel(void) {
  /* x (1, 1, 2, 2); grid points (x, y) at the corners with align_corners read the corners,
   * the centre the mean, and a point past the right edge 0 (zeros) or the edge (border) */
  kl_tensor *x = floats(4, (int64_t[]){1, 1, 2, 2}, (float[]){1, 2, 3, 4});
  kl_tensor *grid = floats(4, (int64_t[]){1, 1, 4, 2},
                           (float[]){-1, -1, 1, -1, 0, 0, 3, -1});
  kl_tensor *y = floats(4, (int64_t[]){1, 1, 1, 4}, NULL);
  CHECK_OK(kl_rt_grid_sample(x, grid, KL_RESIZE_LINEAR, KL_GRID_PAD_ZEROS, true, y));
  CHECK(values_are(y, (float[]){1, 2, 2.5f, 0}, 4, 1e-6));
  CHECK_OK(kl_rt_grid_sample(x, grid, KL_RESIZE_LINEAR, KL_GRID_PAD_BORDER, true, y));
  CHECK(values_are(y, (float[]){1, 2, 2.5f, 2}, 4, 1e-6));
  /* reflection folds x = 3 (index 2.0 past the end 1) back to index 0: the left column */
  CHECK_OK(kl_rt_grid_sample(x, grid, KL_RESIZE_LINEAR, KL_GRID_PAD_REFLECTION, true, y));
  CHECK(values_are(y, (float[]){1, 2, 2.5f, 1}, 4, 1e-6));
  /* nearest rounds half to even: the centre (0.5, 0.5) reads index (0, 0) */
  CHECK_OK(kl_rt_grid_sample(x, grid, KL_RESIZE_NEAREST, KL_GRID_PAD_ZEROS, true, y));
  CHECK(values_are(y, (float[]){1, 2, 1, 0}, 4, 0));
  kl_tensor *bad = floats(4, (int64_t[]){1, 1, 4, 3}, NULL);
  CHECK_ERR(kl_rt_grid_sample(x, bad, KL_RESIZE_LINEAR, KL_GRID_PAD_ZEROS, true, y),
            KL_ERR_INVALID_ARGUMENT, "do not fit");
  kl_tensor_release(x);
  kl_tensor_release(grid);
  kl_tensor_release(y);
  kl_tensor_release(bad);
}

static void test_eager(void) {
  kl_scope_begin();
  kl_tensor *x = kl_from_buffer(KL_F32, 4, (int64_t[]){1, 1, 1, 2}, (float[]){0, 3});
  kl_tensor *y = kl_resize(x, 4, (int64_t[]){1, 1, 1, 4}, "linear", "align_corners");
  CHECK(y && y->rank == 4 && y->shape[3] == 4);
  CHECK(values_are(y, (float[]){0, 1, 2, 3}, 4, 1e-6));
  CHECK(kl_resize(x, 3, (int64_t[]){1, 1, 4}, NULL, NULL) == NULL);
  CHECK(kl_last_error() && strstr(kl_status_message(kl_last_error()), "size must be 4 ints"));
  CHECK(kl_resize(x, 4, (int64_t[]){1, 1, 1, 4}, "bicubic", NULL) == NULL);
  CHECK(kl_last_error() && strstr(kl_status_message(kl_last_error()), "unknown mode 'bicubic'"));

  kl_tensor *img = kl_from_buffer(KL_F32, 4, (int64_t[]){1, 1, 2, 2}, (float[]){1, 2, 3, 4});
  kl_tensor *grid = kl_from_buffer(KL_F32, 4, (int64_t[]){1, 1, 1, 2}, (float[]){0, 0});
  kl_tensor *z = kl_grid_sample(img, grid, NULL, NULL, false);
  CHECK(z && z->rank == 4 && z->shape[2] == 1 && z->shape[3] == 1);
  CHECK(values_are(z, (float[]){2.5f}, 1, 1e-6));
  kl_tensor *grid3 = kl_from_buffer(KL_F32, 4, (int64_t[]){1, 1, 1, 3}, (float[]){0, 0, 0});
  CHECK(kl_grid_sample(img, grid3, NULL, NULL, false) == NULL);
  CHECK(kl_last_error() && strstr(kl_status_message(kl_last_error()), "must end in 2"));
  CHECK(kl_grid_sample(img, grid, "linear", "mirror", false) == NULL);
  CHECK(kl_last_error() && strstr(kl_status_message(kl_last_error()), "padding_mode 'mirror'"));
  kl_scope_end();
}

static void test_flops(void) {
  kl_ir_graph *g = kl_ir_graph_create();
  kl_ir_type t;
  memset(&t, 0, sizeof t);
  t.dtype = KL_F32, t.rank = 4;
  for (int d = 0; d < 4; d++)
    t.dims[d] = kl_ir_dim_static(d < 2 ? 1 : 4);
  kl_ir_value *x = kl_ir_block_add_param(g->top, "x", &t);
  kl_ir_node *n = kl_ir_block_add_node(g->top, KL_OP_RESIZE, &x, 1, 1);
  kl_ir_node_set_ints(n, "size", (int64_t[]){1, 1, 8, 4}, 4);
  kl_ir_node_set_string(n, "mode", "linear");
  CHECK_OK(kl_ir_node_infer(n));
  int64_t flops = -1;
  bool is_static = false;
  CHECK_OK(kl_ir_node_flops(n, &flops, &is_static));
  /* 32 outputs, one resized dim, 2 taps, a multiply and an add each */
  CHECK(is_static && flops == 32 * 2 * 2);
  kl_ir_node_set_string(n, "mode", "nearest");
  CHECK_OK(kl_ir_node_flops(n, &flops, &is_static));
  CHECK(flops == 0);
  kl_ir_graph_destroy(g);
}

int main(void) {
  test_resize_kernel();
  test_grid_sample_kernel();
  test_eager();
  test_flops();
  return check_finish();
}
