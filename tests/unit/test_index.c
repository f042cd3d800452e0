/* Tests of the reductions and indexing ops of issue 4: the kernels of runtime/kernels/index.c
 * on hand-computed values and on bad indices (each an error naming the index and its bound,
 * never a read or write out of bounds), the shape functions of ir/shape_index.c on bad inputs,
 * and the eager functions (kl_prod, kl_cumsum, kl_scatter, kl_scatter_nd, kl_gather_nd). The
 * values on random data are checked against numpy by tests/ops (gen_ops.py). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "frontend/kiln.h"
#include "ir/ir.h"
#include "ir/text.h"
#include "runtime/kernels.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static kl_tensor *made[64];
static int n_made;

static kl_tensor *make(kl_dtype dt, int rank, const int64_t *shape, const double *v, int n) {
  kl_tensor *t = NULL;
  kl_status s = kl_tensor_create(dt, rank, shape, &t);
  if (s) {
    kl_status_destroy(s);
    return NULL;
  }
  for (int i = 0; i < n && i < t->numel; i++)
    kl_dtype_store_f64(dt, t->data, (size_t)i, v[i]);
  if (n_made < 64)
    made[n_made++] = t;
  return t;
}
#define T(dt, rank, shape, ...)                                                                 \
  make(dt, rank, shape, (const double[]){__VA_ARGS__},                                          \
       (int)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)))

static bool equals(const kl_tensor *t, const double *want, int n) {
  if (!t || t->numel != n)
    return false;
  for (int i = 0; i < n; i++)
    if (fabs(kl_dtype_load_f64(t->dtype, t->data, (size_t)i) - want[i]) > 1e-6) {
      fprintf(stderr, "  element %d: got %g, expected %g\n", i,
              kl_dtype_load_f64(t->dtype, t->data, (size_t)i), want[i]);
      return false;
    }
  return true;
}
#define CHECK_VALUES(t, ...)                                                                    \
  CHECK(equals(t, (const double[]){__VA_ARGS__},                                              \
               (int)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double))))

static void test_cumsum_kernel(void) {
  kl_tensor *x = T(KL_F32, 2, SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
  kl_tensor *y = T(KL_F32, 2, SHAPE(2, 3), 0);
  CHECK_OK(kl_rt_cumsum(x, 1, false, false, y));
  CHECK_VALUES(y, 1, 3, 6, 4, 9, 15);
  CHECK_OK(kl_rt_cumsum(x, 0, true, false, y));
  CHECK_VALUES(y, 0, 0, 0, 1, 2, 3);
  CHECK_OK(kl_rt_cumsum(x, 1, true, true, y));
  CHECK_VALUES(y, 5, 3, 0, 11, 6, 0);
  kl_tensor *yi = T(KL_I64, 2, SHAPE(2, 3), 0);
  CHECK_ERR(kl_rt_cumsum(x, 1, false, false, yi), KL_ERR_INVALID_ARGUMENT, "cumsum");
  CHECK_ERR(kl_rt_cumsum(x, 2, false, false, y), KL_ERR_INVALID_ARGUMENT, "axis 2");
}

static void test_scatter_kernel(void) {
  kl_tensor *data = T(KL_F32, 2, SHAPE(3, 2), 1, 1, 1, 1, 1, 1);
  kl_tensor *index = T(KL_I64, 2, SHAPE(2, 2), 0, -1, 0, 1); /* -1: the last row */
  kl_tensor *src = T(KL_F32, 2, SHAPE(2, 3), 2, 3, 9, 4, 5, 9); /* src wider than index */
  kl_tensor *y = T(KL_F32, 2, SHAPE(3, 2), 0);
  CHECK_OK(kl_rt_scatter(data, index, src, 0, KL_SCATTER_NONE, y));
  CHECK_VALUES(y, 4, 1, 1, 5, 1, 3);
  CHECK_OK(kl_rt_scatter(data, index, src, 0, KL_SCATTER_ADD, y));
  CHECK_VALUES(y, 7, 1, 1, 6, 1, 4); /* row 0 col 0 gets 2 and 4 */
  CHECK_OK(kl_rt_scatter(data, index, src, 0, KL_SCATTER_MUL, y));
  CHECK_VALUES(y, 8, 1, 1, 5, 1, 3);
  CHECK_OK(kl_rt_scatter(data, index, src, 0, KL_SCATTER_MIN, y));
  CHECK_VALUES(y, 1, 1, 1, 1, 1, 1);
  kl_tensor *far = T(KL_I64, 2, SHAPE(1, 1), 3);
  CHECK_ERR(kl_rt_scatter(data, far, src, 0, KL_SCATTER_NONE, y), KL_ERR_INVALID_ARGUMENT,
            "index 3 at element 0 is out of range for dim 0 of size 3");
  kl_tensor *neg = T(KL_I32, 2, SHAPE(1, 1), -4);
  CHECK_ERR(kl_rt_scatter(data, neg, src, 0, KL_SCATTER_NONE, y), KL_ERR_INVALID_ARGUMENT,
            "index -4");
  kl_tensor *wide = T(KL_I64, 2, SHAPE(1, 3), 0, 0, 0);
  CHECK_ERR(kl_rt_scatter(data, wide, src, 0, KL_SCATTER_NONE, y), KL_ERR_INVALID_ARGUMENT,
            "larger than src");
  kl_tensor *fidx = T(KL_F32, 2, SHAPE(1, 1), 0);
  CHECK_ERR(kl_rt_scatter(data, fidx, src, 0, KL_SCATTER_NONE, y), KL_ERR_INVALID_ARGUMENT,
            "index Float");
}

static void test_scatter_nd_kernel(void) {
  kl_tensor *data = T(KL_I32, 2, SHAPE(3, 2), 1, 2, 3, 4, 5, 6);
  kl_tensor *rows = T(KL_I64, 2, SHAPE(2, 1), 2, -1); /* the last row twice */
  kl_tensor *upd = T(KL_I32, 2, SHAPE(2, 2), 10, 20, 30, 40);
  kl_tensor *y = T(KL_I32, 2, SHAPE(3, 2), 0);
  CHECK_OK(kl_rt_scatter_nd(data, rows, upd, KL_SCATTER_ADD, y));
  CHECK_VALUES(y, 1, 2, 3, 4, 45, 66);
  kl_tensor *cells = T(KL_I64, 2, SHAPE(2, 2), 0, 1, 1, 0);
  kl_tensor *vals = T(KL_I32, 1, SHAPE(2), -7, -8);
  CHECK_OK(kl_rt_scatter_nd(data, cells, vals, KL_SCATTER_NONE, y));
  CHECK_VALUES(y, 1, -7, -8, 4, 5, 6);
  CHECK_OK(kl_rt_scatter_nd(data, cells, vals, KL_SCATTER_MAX, y));
  CHECK_VALUES(y, 1, 2, 3, 4, 5, 6);
  kl_tensor *far = T(KL_I64, 2, SHAPE(1, 2), 0, 2);
  kl_tensor *one = T(KL_I32, 1, SHAPE(1), 9);
  CHECK_ERR(kl_rt_scatter_nd(data, far, one, KL_SCATTER_NONE, y), KL_ERR_INVALID_ARGUMENT,
            "index 2 of tuple 0 is out of range for dim 1 of size 2");
  CHECK_ERR(kl_rt_scatter_nd(data, cells, one, KL_SCATTER_NONE, y), KL_ERR_INVALID_ARGUMENT,
            "do not match");
}

static void test_gather_nd_kernel(void) {
  kl_tensor *data = T(KL_F32, 3, SHAPE(2, 2, 2), 0, 1, 2, 3, 4, 5, 6, 7);
  kl_tensor *idx = T(KL_I64, 2, SHAPE(2, 2), 0, 1, 1, -2);
  kl_tensor *y = T(KL_F32, 2, SHAPE(2, 2), 0);
  CHECK_OK(kl_rt_gather_nd(data, idx, 0, y));
  CHECK_VALUES(y, 2, 3, 4, 5);
  kl_tensor *bidx = T(KL_I32, 2, SHAPE(2, 1), 1, 0);
  CHECK_OK(kl_rt_gather_nd(data, bidx, 1, y));
  CHECK_VALUES(y, 2, 3, 4, 5);
  kl_tensor *far = T(KL_I64, 2, SHAPE(2, 2), 0, 2, 0, 0);
  CHECK_ERR(kl_rt_gather_nd(data, far, 0, y), KL_ERR_INVALID_ARGUMENT,
            "index 2 of tuple 0 is out of range for dim 1 of size 2");
  kl_tensor *badb = T(KL_I64, 2, SHAPE(3, 1), 0, 0, 0);
  CHECK_ERR(kl_rt_gather_nd(data, badb, 1, T(KL_F32, 2, SHAPE(3, 2), 0)),
            KL_ERR_INVALID_ARGUMENT, "batch dim 0 differs");
}

static void test_prod_empty_max(void) {
  kl_tensor *x = T(KL_F32, 2, SHAPE(2, 3), 1, 2, 3, 4, 5, 6);
  kl_tensor *y = T(KL_F32, 1, SHAPE(2), 0);
  bool rows[] = {false, true};
  CHECK_OK(kl_rt_reduce(KL_REDUCE_PROD, x, rows, y));
  CHECK_VALUES(y, 6, 120);
}

/* A shape error from the one-node graph's text (parsing infers the shapes). */
static void check_shape_error(const char *ir, const char *substr) {
  kl_ir_graph *g = NULL;
  CHECK_ERR(kl_ir_parse(ir, strlen(ir), NULL, &g), KL_ERR_INVALID_ARGUMENT, substr);
  kl_ir_graph_destroy(g);
}

static void test_shapes(void) {
  check_shape_error("graph(%x : Float(3, 4), %i : Long(2)):\n"
                    "  %y : Float(3, 4) = aten::scatter[dim=0](%x, %i, %x)\n"
                    "  return (%y)\n",
                    "must have the same rank");
  check_shape_error("graph(%x : Float(3, 4), %i : Long(2, 2)):\n"
                    "  %y : Float(3, 4) = aten::scatter[dim=0, reduce=\"avg\"](%x, %i, %x)\n"
                    "  return (%y)\n",
                    "reduce \"avg\" is not one of none, add, mul, max, min");
  check_shape_error("graph(%x : Float(3, 4), %i : Long(2, 5)):\n"
                    "  %y : Float(3, 4) = aten::scatter[dim=0](%x, %i, %x)\n"
                    "  return (%y)\n",
                    "larger than src");
  check_shape_error("graph(%x : Float(3, 4), %i : Long(2, 3), %u : Float(2, 4)):\n"
                    "  %y : Float(3, 4) = onnx::ScatterND(%x, %i, %u)\n"
                    "  return (%y)\n",
                    "index past data");
  check_shape_error("graph(%x : Float(3, 4), %i : Long(2, 2)):\n"
                    "  %y : Float(2) = onnx::GatherND[batch_dims=2](%x, %i)\n"
                    "  return (%y)\n",
                    "need more than batch_dims 2 dims");
  check_shape_error("graph(%x : Bool(3, 4)):\n"
                    "  %y : Bool(3, 4) = aten::cumsum[dim=0](%x)\n"
                    "  return (%y)\n",
                    "cumsum needs numbers");
  check_shape_error("graph(%x : Float(3, 4)):\n"
                    "  %y : Float(3, 4) = aten::cumsum[dim=2](%x)\n"
                    "  return (%y)\n",
                    "out of range");
  /* the last dim of GatherND's indices fixes the output rank, so it must be static */
  kl_ir_graph *g = NULL;
  const char *sym = "graph(%x : Float(3, 4), %i : Long(2, *)):\n"
                    "  %y : Float(2) = onnx::GatherND(%x, %i)\n"
                    "  return (%y)\n";
  CHECK_ERR(kl_ir_parse(sym, strlen(sym), NULL, &g), KL_ERR_INVALID_ARGUMENT, "must be static");
  kl_ir_graph_destroy(g);
}

static void test_eager(void) {
  kl_scope_begin();
  kl_tensor *x = kl_from_buffer(KL_F32, 2, SHAPE(2, 2), (const float[]){1, 2, 3, 4});
  kl_tensor *p = kl_prod(x, 1, SHAPE(0), false);
  CHECK_VALUES(p, 3, 8);
  CHECK_VALUES(kl_cumsum(x, -1, false, true), 3, 2, 7, 4);
  kl_tensor *idx = kl_from_buffer(KL_I64, 2, SHAPE(1, 2), (const int64_t[]){1, 0});
  kl_tensor *src = kl_from_buffer(KL_F32, 2, SHAPE(1, 2), (const float[]){10, 20});
  CHECK_VALUES(kl_scatter(x, 1, idx, src, NULL), 20, 10, 3, 4);
  CHECK_VALUES(kl_scatter(x, 1, idx, src, "max"), 20, 10, 3, 4);
  CHECK_VALUES(kl_scatter(x, 0, idx, src, "add"), 1, 22, 13, 4);
  kl_tensor *rows = kl_from_buffer(KL_I64, 2, SHAPE(1, 1), (const int64_t[]){1});
  CHECK_VALUES(kl_scatter_nd(x, rows, src, "mul"), 1, 2, 30, 80);
  CHECK_VALUES(kl_gather_nd(x, rows, 0), 3, 4);
  kl_tensor *per_row = kl_from_buffer(KL_I64, 2, SHAPE(2, 1), (const int64_t[]){1, 1});
  CHECK_VALUES(kl_gather_nd(x, per_row, 1), 2, 4);
  kl_clear_error();
  CHECK(kl_scatter(x, 1, idx, src, "mean") == NULL);
  CHECK(kl_last_error() && strstr(kl_status_message(kl_last_error()), "\"mean\""));
  kl_clear_error();
  kl_scope_end();
}

static void quiet(void *ctx, kl_status error) {
  (void)ctx, (void)error;
}

int main(void) {
  test_cumsum_kernel();
  test_scatter_kernel();
  test_scatter_nd_kernel();
  test_gather_nd_kernel();
  test_prod_empty_max();
  test_shapes();
  kl_set_error_handler(quiet, NULL);
  test_eager();
  for (int i = 0; i < n_made; i++)
    kl_tensor_release(made[i]);
  return check_finish();
}
