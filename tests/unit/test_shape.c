/* Tests for the shape functions (ir/shape_nn.c, ir/shape_tensor.c) and the attribute readers
 * (ir/op_params.c). Nodes are built with the graph API from types written as text
 * ("Float(N, 10)"), inferred with kl_ir_node_infer, and their output types compared as text,
 * so each case reads like the IR it stands for. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "ir/ir.h"
#include "ir/op_params.h"
#include "tests/unit/check.h"

static kl_ir_graph *g;

/* Parses "Float(N, 3, *)": numbers are static, '*' unknown, names are symbols (added with
 * bounds 1..INT64_MAX when new). */
static kl_ir_type T(const char *s) {
  kl_ir_type t;
  memset(&t, 0, sizeof t);
  const char *paren = strchr(s, '(');
  if (!paren || !kl_dtype_from_ir_name(s, (size_t)(paren - s), &t.dtype)) {
    fprintf(stderr, "bad type in test: %s\n", s);
    exit(2);
  }
  const char *p = paren + 1;
  while (*p && *p != ')') {
    while (*p == ' ' || *p == ',')
      p++;
    kl_ir_dim d;
    if (*p == '*') {
      d.size = 0, d.sym = KL_DIM_UNKNOWN;
      p++;
    } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
      char *end;
      d = kl_ir_dim_static(strtoll(p, &end, 10));
      p = end;
    } else {
      char name[32];
      size_t n = 0;
      while (*p && *p != ',' && *p != ')' && n < sizeof name - 1)
        name[n++] = *p++;
      name[n] = '\0';
      int sym = kl_ir_graph_find_symbol(g, name);
      if (sym < 0)
        kl_status_destroy(kl_ir_graph_add_symbol(g, name, 1, INT64_MAX, &sym));
      d.size = 0, d.sym = sym;
    }
    t.dims[t.rank++] = d;
  }
  return t;
}

static kl_ir_value *val(const char *type) {
  kl_ir_type t = T(type);
  return kl_ir_block_add_param(g->top, NULL, &t);
}

/* A node of op with n_out outputs whose inputs are fresh parameters of the given types. */
static kl_ir_node *mk(kl_op op, int n_out, ...) {
  kl_ir_value *inputs[16];
  int n = 0;
  va_list ap;
  va_start(ap, n_out);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
    inputs[n++] = val(s);
  va_end(ap);
  return kl_ir_block_add_node(g->top, op, inputs, n, n_out);
}

static char result[512];

/* Infers n; its output `index` type as text, or "!" and the error message. */
static const char *infer_out(kl_ir_node *n, int index) {
  kl_status s = kl_ir_node_infer(n);
  if (s) {
    snprintf(result, sizeof result, "!%s", kl_status_message(s));
    kl_status_destroy(s);
  } else {
    kl_ir_type_format(g, &n->outputs[index]->type, result, sizeof result);
  }
  return result;
}
#define EXPECT(node, expected) CHECK_STREQ(infer_out((node), 0), (expected))

static void set_ints(kl_ir_node *n, const char *name, int count, ...) {
  int64_t v[KL_MAX_RANK + 2];
  va_list ap;
  va_start(ap, count);
  for (int i = 0; i < count; i++)
    v[i] = va_arg(ap, int);
  va_end(ap);
  kl_ir_node_set_ints(n, name, v, count);
}

/* ---- matrix products ---------------------------------------------------------------------- */

static void test_linear(void) {
  EXPECT(mk(KL_OP_LINEAR, 1, "Float(N, 10)", "Float(5, 10)", NULL), "Float(N, 5)");
  EXPECT(mk(KL_OP_LINEAR, 1, "Float(2, 3, 10)", "Float(5, 10)", "Float(5)", NULL),
         "Float(2, 3, 5)");
  EXPECT(mk(KL_OP_LINEAR, 1, "Float(10)", "Float(5, 10)", NULL), "Float(5)");
  EXPECT(mk(KL_OP_LINEAR, 1, "Float(2, *)", "Float(5, 10)", NULL), "Float(2, 5)");
  EXPECT(mk(KL_OP_LINEAR, 1, "Float(2, 10)", "Float(*, 10)", "Float(5)", NULL), "Float(2, 5)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_LINEAR, 1, "Float(2, 7)", "Float(5, 10)", NULL)),
            KL_ERR_INVALID_ARGUMENT,
            "aten::linear: input Float(2, 7) and weight Float(5, 10) disagree: 7 != 10");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_LINEAR, 1, "Float(2, 10)", "Half(5, 10)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "input Float(2, 10) and weight Half(5, 10) have different");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_LINEAR, 1, "Long(2, 10)", "Long(5, 10)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "floating-point");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_LINEAR, 1, "Float(2, 10)", "Float(5, 10)", "Float(4)",
                                NULL)),
            KL_ERR_INVALID_ARGUMENT, "bias Float(4) does not match weight");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_LINEAR, 1, "Float(2, 10)", "Float(10)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "must be 2-D");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_LINEAR, 1, "Float()", "Float(5, 10)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "at least 1 dim");
  /* A bounded symbol that cannot be 100. */
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_LINEAR, 1, "Float(2, B)", "Float(5, 100)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "disagree: B != 100");
}

static void test_matmul(void) {
  EXPECT(mk(KL_OP_MATMUL, 1, "Float(3)", "Float(3)", NULL), "Float()");
  EXPECT(mk(KL_OP_MATMUL, 1, "Float(2, 3)", "Float(3)", NULL), "Float(2)");
  EXPECT(mk(KL_OP_MATMUL, 1, "Float(3)", "Float(3, 4)", NULL), "Float(4)");
  EXPECT(mk(KL_OP_MATMUL, 1, "Float(N, 2, 3)", "Float(3, 4)", NULL), "Float(N, 2, 4)");
  EXPECT(mk(KL_OP_MATMUL, 1, "Float(5, 1, 2, 3)", "Float(7, 3, 4)", NULL),
         "Float(5, 7, 2, 4)");
  EXPECT(mk(KL_OP_MATMUL, 1, "Float(N, 2, 3)", "Float(1, 3, 4)", NULL), "Float(N, 2, 4)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_MATMUL, 1, "Float(2, 3)", "Float(4, 5)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "disagree: 3 != 4");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_MATMUL, 1, "Float(2, 2, 3)", "Float(5, 3, 4)", NULL)),
            KL_ERR_INVALID_ARGUMENT,
            "input Float(2, 2, 3) and other Float(5, 3, 4): batch dims cannot be broadcast");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_MATMUL, 1, "Float()", "Float(3)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "at least 1 dim");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_MATMUL, 1, "Int(2, 3)", "Int(3, 2)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "floating-point");
}

/* ---- convolution and pooling ------------------------------------------------------------ */

static void test_conv2d(void) {
  kl_ir_node *n = mk(KL_OP_CONV2D, 1, "Float(1, 3, 32, 32)", "Float(8, 3, 3, 3)", "Float(8)",
                     NULL);
  EXPECT(n, "Float(1, 8, 30, 30)");
  set_ints(n, "stride", 2, 2, 2);
  set_ints(n, "padding", 2, 1, 1);
  EXPECT(n, "Float(1, 8, 16, 16)");
  set_ints(n, "padding", 4, 1, 0, 2, 0); /* top, left, bottom, right */
  set_ints(n, "stride", 2, 1, 1);
  set_ints(n, "dilation", 2, 2, 1);
  EXPECT(n, "Float(1, 8, 31, 30)"); /* (32 + 3 - 5) / 1 + 1, (32 - 3) + 1 */
  /* Symbolic batch keeps N; a size-preserving window keeps a symbolic H, others unknown. */
  n = mk(KL_OP_CONV2D, 1, "Float(N, 3, H, W)", "Float(8, 3, 3, 3)", NULL);
  set_ints(n, "padding", 2, 1, 0);
  EXPECT(n, "Float(N, 8, H, *)");
  /* groups */
  n = mk(KL_OP_CONV2D, 1, "Float(1, 8, 5, 5)", "Float(16, 2, 1, 1)", NULL);
  kl_ir_node_set_int(n, "groups", 4);
  EXPECT(n, "Float(1, 16, 5, 5)");
  kl_ir_node_set_int(n, "groups", 3);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "not divisible by groups = 3");
  kl_ir_node_set_int(n, "groups", 2);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT,
            "input Float(1, 8, 5, 5) and weight Float(16, 2, 1, 1) disagree");
  kl_ir_node_set_int(n, "groups", 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "groups = 0 must be >= 1");
  /* Kernel larger than the padded input. */
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_CONV2D, 1, "Float(1, 3, 2, 2)", "Float(8, 3, 3, 3)",
                                NULL)),
            KL_ERR_INVALID_ARGUMENT, "smaller than the (dilated) kernel 3");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_CONV2D, 1, "Float(3, 32, 32)", "Float(8, 3, 3, 3)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "must be 4-D (N, C, H, W)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_CONV2D, 1, "Float(1, 3, 8, 8)", "Float(8, 3, 3, 3)",
                                "Float(7)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "bias Float(7)");
  n = mk(KL_OP_CONV2D, 1, "Float(1, 3, 8, 8)", "Float(8, 3, 3, 3)", NULL);
  set_ints(n, "stride", 2, 0, 1);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "stride[0] = 0 must be >= 1");
  set_ints(n, "stride", 3, 1, 1, 1);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "stride must have 2 values, got 3");
  kl_ir_node_remove_attr(n, "stride");
  set_ints(n, "padding", 3, 1, 1, 1);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "padding must have 2 values");
  set_ints(n, "padding", 2, -1, 1);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "padding[0] = -1 must be >= 0");
}

static void test_pool2d(void) {
  kl_ir_node *n = mk(KL_OP_MAX_POOL2D, 1, "Float(N, 3, 32, 32)", NULL);
  set_ints(n, "kernel_size", 2, 2, 2);
  EXPECT(n, "Float(N, 3, 16, 16)"); /* stride defaults to kernel_size */
  set_ints(n, "stride", 0);         /* [] also means kernel_size */
  EXPECT(n, "Float(N, 3, 16, 16)");
  n = mk(KL_OP_MAX_POOL2D, 1, "Float(1, 1, 5, 5)", NULL);
  set_ints(n, "kernel_size", 2, 2, 2);
  EXPECT(n, "Float(1, 1, 2, 2)");
  kl_ir_node_set_int(n, "ceil_mode", 1);
  EXPECT(n, "Float(1, 1, 3, 3)");
  /* ceil_mode: the last window must start inside the input or the left padding. 6 with k=3,
   * s=2, pad 1: ceil(5 / 2) + 1 = 4 windows, the last starting at input index 5: kept. 5 with
   * k=2, s=2, pad 1: ceil(5 / 2) + 1 = 4, but the last would start in the right padding. */
  n = mk(KL_OP_MAX_POOL2D, 1, "Float(1, 1, 6, 6)", NULL);
  set_ints(n, "kernel_size", 2, 3, 3);
  set_ints(n, "stride", 2, 2, 2);
  set_ints(n, "padding", 2, 1, 1);
  kl_ir_node_set_int(n, "ceil_mode", 1);
  EXPECT(n, "Float(1, 1, 4, 4)");
  n = mk(KL_OP_MAX_POOL2D, 1, "Float(1, 1, 5, 5)", NULL);
  set_ints(n, "kernel_size", 2, 2, 2);
  set_ints(n, "padding", 2, 1, 1);
  kl_ir_node_set_int(n, "ceil_mode", 1);
  EXPECT(n, "Float(1, 1, 3, 3)");
  n = mk(KL_OP_MAX_POOL2D, 1, "Float(1, 1, 7, 7)", NULL);
  set_ints(n, "kernel_size", 2, 3, 3);
  set_ints(n, "stride", 2, 2, 2);
  set_ints(n, "padding", 2, 1, 1);
  kl_ir_node_set_int(n, "ceil_mode", 1);
  EXPECT(n, "Float(1, 1, 4, 4)");
  kl_ir_node_set_int(n, "ceil_mode", 0);
  EXPECT(n, "Float(1, 1, 4, 4)");
  set_ints(n, "dilation", 2, 2, 2);
  EXPECT(n, "Float(1, 1, 3, 3)"); /* (7 + 2 - 5) / 2 + 1 */
  /* avg pool: float only, no dilation attribute, count_include_pad read. */
  n = mk(KL_OP_AVG_POOL2D, 1, "Float(2, 4, 8, 8)", NULL);
  set_ints(n, "kernel_size", 2, 3, 3);
  set_ints(n, "stride", 2, 1, 1);
  set_ints(n, "padding", 2, 1, 1);
  EXPECT(n, "Float(2, 4, 8, 8)");
  n = mk(KL_OP_AVG_POOL2D, 1, "Long(2, 4, 8, 8)", NULL);
  set_ints(n, "kernel_size", 2, 2, 2);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "floating-point");
  n = mk(KL_OP_MAX_POOL2D, 1, "Float(1, 1, 1, 1)", NULL);
  set_ints(n, "kernel_size", 2, 2, 2);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "smaller than the (dilated) kernel");
  n = mk(KL_OP_MAX_POOL2D, 1, "Float(1, 1, 8, 8)", NULL);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "kernel_size is missing");
  set_ints(n, "kernel_size", 2, 2, 2);
  set_ints(n, "padding", 2, 2, 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "wholly in padding");
  /* more than half the kernel is allowed (ONNX), while some input is in every window */
  n = mk(KL_OP_AVG_POOL2D, 1, "Float(1, 1, 8, 8)", NULL);
  set_ints(n, "kernel_size", 2, 3, 3);
  set_ints(n, "padding", 2, 2, 2);
  EXPECT(n, "Float(1, 1, 4, 4)");
  n = mk(KL_OP_MAX_POOL2D, 1, "Float(8, 8)", NULL);
  set_ints(n, "kernel_size", 2, 2, 2);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "must be 4-D");
}

static void test_adaptive_pool2d(void) {
  kl_ir_node *n = mk(KL_OP_ADAPTIVE_AVG_POOL2D, 1, "Float(N, 512, H, W)", NULL);
  set_ints(n, "output_size", 2, 1, 1);
  EXPECT(n, "Float(N, 512, 1, 1)");
  set_ints(n, "output_size", 2, 7, 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "output_size[1] = 0 must be >= 1");
  set_ints(n, "output_size", 1, 7);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "output_size must be 2 ints");
  n = mk(KL_OP_ADAPTIVE_AVG_POOL2D, 1, "Float(1, 3, 0, 4)", NULL);
  set_ints(n, "output_size", 2, 2, 2);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "empty spatial dim");
}

/* ---- normalization ------------------------------------------------------------------------ */

static void test_norms(void) {
  EXPECT(mk(KL_OP_BATCH_NORM, 1, "Float(N, 16, 8, 8)", "Float(16)", "Float(16)", "Float(16)",
            "Float(16)", NULL),
         "Float(N, 16, 8, 8)");
  /* The channel count is forced by the parameters. */
  EXPECT(mk(KL_OP_BATCH_NORM, 1, "Float(N, C, 8)", "Float(16)", "Float(16)", "Float(16)",
            "Float(16)", NULL),
         "Float(N, 16, 8)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_BATCH_NORM, 1, "Float(2, 16)", "Float(16)", "Float(16)",
                                "Float(15)", "Float(16)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "running_mean Float(15) does not match the 16 channels");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_BATCH_NORM, 1, "Float(16)", "Float(16)", "Float(16)",
                                "Float(16)", "Float(16)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "at least 2 dims");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_BATCH_NORM, 1, "Int(2, 16)", "Float(16)", "Float(16)",
                                "Float(16)", "Float(16)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "floating-point");

  kl_ir_node *n = mk(KL_OP_LAYER_NORM, 1, "Float(N, T, 64)", "Float(64)", "Float(64)", NULL);
  set_ints(n, "normalized_shape", 1, 64);
  EXPECT(n, "Float(N, T, 64)");
  n = mk(KL_OP_LAYER_NORM, 1, "Float(N, 4, *)", NULL);
  set_ints(n, "normalized_shape", 2, 4, 8);
  EXPECT(n, "Float(N, 4, 8)");
  set_ints(n, "normalized_shape", 2, 5, 8);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT,
            "does not end in normalized_shape: dim 1 is 4, expected 5");
  set_ints(n, "normalized_shape", 4, 1, 1, 4, 8);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "normalized_shape has 4 dims");
  set_ints(n, "normalized_shape", 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "normalized_shape has 0 dims");
  n = mk(KL_OP_LAYER_NORM, 1, "Float(2, 64)", "Float(32)", NULL);
  set_ints(n, "normalized_shape", 1, 64);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "weight Float(32) does not have");
  n = mk(KL_OP_LAYER_NORM, 1, "Float(2, 64)", NULL);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "normalized_shape (ints) is missing");

  n = mk(KL_OP_SOFTMAX, 1, "Float(N, 10)", NULL);
  kl_ir_node_set_int(n, "dim", -1);
  EXPECT(n, "Float(N, 10)");
  kl_ir_node_set_int(n, "dim", 2);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "dim 2 is out of range for rank 2");
  n = mk(KL_OP_LOG_SOFTMAX, 1, "Int(3)", NULL);
  kl_ir_node_set_int(n, "dim", 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "floating-point");
  n = mk(KL_OP_SOFTMAX, 1, "Float(3)", NULL);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "dim (int) is missing");
}

/* ---- elementwise ------------------------------------------------------------------------ */

static void test_unary(void) {
  EXPECT(mk(KL_OP_RELU, 1, "Float(N, 3)", NULL), "Float(N, 3)");
  EXPECT(mk(KL_OP_RELU, 1, "Long(*, 3)", NULL), "Long(*, 3)");
  EXPECT(mk(KL_OP_NEG, 1, "Int()", NULL), "Int()");
  EXPECT(mk(KL_OP_DROPOUT, 1, "Bool(2)", NULL), "Bool(2)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_ABS, 1, "Bool(2)", NULL)), KL_ERR_INVALID_ARGUMENT,
            "aten::abs: input Bool(2) must not be Bool");
  EXPECT(mk(KL_OP_SIGMOID, 1, "Half(N, 3)", NULL), "Half(N, 3)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_TANH, 1, "Int(4)", NULL)), KL_ERR_INVALID_ARGUMENT,
            "aten::tanh: input Int(4) must have a floating-point dtype");
  kl_ir_node *n = mk(KL_OP_GELU, 1, "Float(2)", NULL);
  kl_ir_node_set_string(n, "approximate", "tanh");
  EXPECT(n, "Float(2)");
  kl_ir_node_set_string(n, "approximate", "fast");
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "approximate = \"fast\"");
  n = mk(KL_OP_HARDTANH, 1, "Float(2)", NULL);
  kl_ir_node_set_float(n, "min_val", 2.0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "min_val = 2 must not be greater");
  n = mk(KL_OP_DROPOUT, 1, "Float(2)", NULL);
  kl_ir_node_set_int(n, "train", 1);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_UNSUPPORTED, "training-mode dropout");

  n = mk(KL_OP_CAST, 1, "Float(N, 3)", NULL);
  kl_ir_node_set_dtype(n, "dtype", KL_F16);
  EXPECT(n, "Half(N, 3)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_CAST, 1, "Float(2)", NULL)), KL_ERR_INVALID_ARGUMENT,
            "aten::to: attribute dtype");
}

static void test_binary(void) {
  EXPECT(mk(KL_OP_ADD, 1, "Float(N, 3)", "Float(N, 3)", NULL), "Float(N, 3)");
  EXPECT(mk(KL_OP_ADD, 1, "Float(N, 1)", "Float(1, 3)", NULL), "Float(N, 3)");
  EXPECT(mk(KL_OP_MUL, 1, "Float(N, 3)", "Float(3)", NULL), "Float(N, 3)");
  EXPECT(mk(KL_OP_SUB, 1, "Float(N, 3)", "Float()", NULL), "Float(N, 3)");
  /* A static size other than 1 wins over a symbol; two symbols or unknown give unknown. */
  EXPECT(mk(KL_OP_DIV, 1, "Float(N)", "Float(4)", NULL), "Float(4)");
  EXPECT(mk(KL_OP_DIV, 1, "Float(*)", "Float(4)", NULL), "Float(4)");
  EXPECT(mk(KL_OP_POW, 1, "Float(N)", "Float(M)", NULL), "Float(*)");
  EXPECT(mk(KL_OP_POW, 1, "Float(N)", "Float(*)", NULL), "Float(*)");
  EXPECT(mk(KL_OP_MAXIMUM, 1, "Float(*)", "Float(*)", NULL), "Float(*)");
  EXPECT(mk(KL_OP_MINIMUM, 1, "Long(2, 1, 4)", "Long(3, 1)", NULL), "Long(2, 3, 4)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_ADD, 1, "Float(2, 3)", "Float(4)", NULL)),
            KL_ERR_INVALID_ARGUMENT,
            "aten::add: input Float(2, 3) and other Float(4) cannot be broadcast together: 3 vs 4");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_ADD, 1, "Float(2)", "Half(2)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "input Float(2) and other Half(2) have different dtypes");
  /* B is bounded 2..8: it can be neither 1 nor 9. */
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_ADD, 1, "Float(B)", "Float(9)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "B vs 9");
  EXPECT(mk(KL_OP_ADD, 1, "Float(B)", "Float(8)", NULL), "Float(8)");

  EXPECT(mk(KL_OP_LT, 1, "Float(N, 3)", "Float(1)", NULL), "Bool(N, 3)");
  EXPECT(mk(KL_OP_EQ, 1, "Long(2)", "Long(2)", NULL), "Bool(2)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_GE, 1, "Long(2)", "Int(2)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "different dtypes (Long vs Int");

  EXPECT(mk(KL_OP_WHERE, 1, "Bool(N, 1)", "Float(3)", "Float(1, 1)", NULL), "Float(N, 3)");
  EXPECT(mk(KL_OP_WHERE, 1, "Bool()", "Long(2, 3)", "Long(3)", NULL), "Long(2, 3)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_WHERE, 1, "Float(3)", "Float(3)", "Float(3)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "condition Float(3) must be Bool");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_WHERE, 1, "Bool(3)", "Float(3)", "Long(3)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "input Float(3) and other Long(3) have different dtypes");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_WHERE, 1, "Bool(4)", "Float(3)", "Float(3)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "condition Bool(4)");
}

static void test_reduce(void) {
  kl_ir_node *n = mk(KL_OP_SUM, 1, "Float(N, 3, 4)", NULL);
  EXPECT(n, "Float()");
  kl_ir_node_set_int(n, "keepdim", 1);
  EXPECT(n, "Float(1, 1, 1)");
  set_ints(n, "dim", 2, -1, 1);
  EXPECT(n, "Float(N, 1, 1)");
  kl_ir_node_set_int(n, "keepdim", 0);
  EXPECT(n, "Float(N)");
  set_ints(n, "dim", 0);
  EXPECT(n, "Float()"); /* [] means all dims */
  set_ints(n, "dim", 2, 1, -2);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "dim 1 appears more than once");
  set_ints(n, "dim", 1, 3);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "dim 3 is out of range for rank 3");
  /* sum of integers or Bool is Long, as in PyTorch */
  n = mk(KL_OP_SUM, 1, "Bool(4, 5)", NULL);
  set_ints(n, "dim", 1, 0);
  EXPECT(n, "Long(5)");
  n = mk(KL_OP_AMAX, 1, "Int(4, 5)", NULL);
  set_ints(n, "dim", 1, 1);
  EXPECT(n, "Int(4)");
  n = mk(KL_OP_AMIN, 1, "Int(0, 5)", NULL);
  set_ints(n, "dim", 1, 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "reduced dim 0 is empty");
  /* float max/min of nothing is -inf/+inf (ONNX; issue 4) */
  n = mk(KL_OP_AMIN, 1, "Float(0, 5)", NULL);
  set_ints(n, "dim", 1, 0);
  EXPECT(n, "Float(5)");
  /* prod of integers is Long, as sum (issue 4) */
  n = mk(KL_OP_PROD, 1, "Int(4, 5)", NULL);
  set_ints(n, "dim", 1, 1);
  EXPECT(n, "Long(4)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_MEAN, 1, "Long(4)", NULL)), KL_ERR_INVALID_ARGUMENT,
            "aten::mean: input Long(4) must have a floating-point dtype");
  EXPECT(mk(KL_OP_MEAN, 1, "Double(4)", NULL), "Double()");
}

/* ---- structure ------------------------------------------------------------------------------ */

static void test_structure(void) {
  kl_ir_node *p = kl_ir_block_add_node(g->top, KL_OP_PARAM, NULL, 0, 1);
  kl_ir_node_set_string(p, "name", "w");
  p->outputs[0]->type = T("Half(5, K)");
  EXPECT(p, "Half(5, K)");

  int64_t shape[2] = {2, 3};
  kl_tensor *t;
  CHECK_OK(kl_tensor_create(KL_I64, 2, shape, &t));
  kl_ir_node *c = kl_ir_block_add_node(g->top, KL_OP_CONSTANT, NULL, 0, 1);
  kl_ir_node_set_tensor(c, "value", t);
  kl_tensor_release(t);
  EXPECT(c, "Long(2, 3)");
  c = kl_ir_block_add_node(g->top, KL_OP_CONSTANT, NULL, 0, 1);
  CHECK_ERR(kl_ir_node_infer(c), KL_ERR_INVALID_ARGUMENT, "attribute value (tensor) is missing");
}

static void test_if(void) {
  kl_ir_value *a = val("Float(N, 3)"), *b = val("Float(4, 3)"), *cond = val("Bool()");
  kl_ir_node *n = kl_ir_block_add_node(g->top, KL_OP_IF, &cond, 1, 2);
  kl_ir_block *then_b = kl_ir_node_add_block(n), *else_b = kl_ir_node_add_block(n);
  kl_ir_block_add_return(then_b, a);
  kl_ir_block_add_return(then_b, a);
  kl_ir_block_add_return(else_b, a);
  kl_ir_block_add_return(else_b, b);
  EXPECT(n, "Float(N, 3)");
  CHECK_STREQ(infer_out(n, 1), "Float(*, 3)"); /* the branches disagree on dim 0 */
  kl_ir_block_set_return(else_b, 1, val("Long(4, 3)"));
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT,
            "output 1: then block returns Float(N, 3) but else block returns Long(4, 3)");
  kl_ir_block_set_return(else_b, 1, val("Float(4, 3, 1)"));
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "else block returns Float(4, 3, 1)");
  kl_ir_block_add_return(else_b, b);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT,
            "else block returns 3 values, but the node has 2 outputs");
  kl_ir_value *fcond = val("Float()");
  n = kl_ir_block_add_node(g->top, KL_OP_IF, &fcond, 1, 0);
  kl_ir_node_add_block(n);
  kl_ir_node_add_block(n);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "condition Float() must be");
  kl_ir_node *one_block = kl_ir_block_add_node(g->top, KL_OP_IF, &cond, 1, 0);
  kl_ir_node_add_block(one_block);
  CHECK_ERR(kl_ir_node_infer(one_block), KL_ERR_INVALID_ARGUMENT, "expected 2 blocks");
}

static void test_loop(void) {
  kl_ir_value *ins[3] = {val("Long()"), val("Bool()"), val("Float(N, 3)")};
  kl_ir_node *n = kl_ir_block_add_node(g->top, KL_OP_LOOP, ins, 3, 1);
  kl_ir_block *body = kl_ir_node_add_block(n);
  kl_ir_type it = T("Long()"), xt = T("Float(N, 3)");
  kl_ir_block_add_param(body, "i", &it);
  kl_ir_value *x = kl_ir_block_add_param(body, "x", &xt);
  kl_ir_node *relu = kl_ir_block_add_node(body, KL_OP_RELU, &x, 1, 1);
  CHECK_OK(kl_ir_node_infer(relu));
  kl_ir_block_add_return(body, ins[1]);
  kl_ir_block_add_return(body, relu->outputs[0]);
  EXPECT(n, "Float(N, 3)");
  kl_ir_block_set_return(body, 1, val("Float(5, 3)"));
  EXPECT(n, "Float(*, 3)"); /* changes across iterations */
  kl_ir_block_set_return(body, 1, val("Float(5)"));
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT,
            "carried value 0: input Float(N, 3) but body returns Float(5)");
  kl_ir_block_set_return(body, 1, relu->outputs[0]);
  kl_ir_block_set_return(body, 0, val("Long()"));
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "returned condition Long()");
  kl_ir_block_set_return(body, 0, ins[1]);
  kl_ir_block_add_return(body, x);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "body returns 3 values; expected 2");

  kl_ir_value *bad[2] = {val("Float()"), val("Bool()")};
  n = kl_ir_block_add_node(g->top, KL_OP_LOOP, bad, 2, 0);
  kl_ir_node_add_block(n);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "max_trip_count Float()");
  n = kl_ir_block_add_node(g->top, KL_OP_LOOP, ins, 3, 2);
  kl_ir_node_add_block(n);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "1 loop-carried inputs but 2 outputs");
}

static void test_fusion_group(void) {
  kl_ir_value *x = val("Float(4, 10)"), *y = val("Float(N, 10)");
  kl_ir_node *n = kl_ir_block_add_node(g->top, KL_OP_FUSION_GROUP, &x, 1, 1);
  kl_ir_block *body = kl_ir_node_add_block(n);
  kl_ir_type pt = T("Float(N, 10)");
  kl_ir_value *a = kl_ir_block_add_param(body, "a", &pt);
  kl_ir_node *relu = kl_ir_block_add_node(body, KL_OP_RELU, &a, 1, 1);
  CHECK_OK(kl_ir_node_infer(relu));
  kl_ir_block_add_return(body, relu->outputs[0]);
  EXPECT(n, "Float(4, 10)"); /* N bound to 4 */
  kl_ir_node_set_input(n, 0, y);
  EXPECT(n, "Float(N, 10)");
  kl_ir_node_set_input(n, 0, val("Float(4, 11)"));
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT,
            "input 0 is Float(4, 11) but the body parameter is Float(N, 10)");
  kl_ir_node_set_input(n, 0, val("Long(4, 10)"));
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "input 0 is Long(4, 10)");
  /* Two inputs binding N differently. */
  kl_ir_value *two[2] = {val("Float(4, 10)"), val("Float(5, 10)")};
  n = kl_ir_block_add_node(g->top, KL_OP_FUSION_GROUP, two, 2, 1);
  body = kl_ir_node_add_block(n);
  kl_ir_block_add_param(body, "p", &pt);
  kl_ir_block_add_return(body, kl_ir_block_add_param(body, "q", &pt));
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "gives body symbol N the size 5");
  kl_ir_node_set_input(n, 1, val("Float(4, 10)"));
  EXPECT(n, "Float(4, 10)");
  kl_ir_node_set_input(n, 1, val("Float(*, 10)"));
  EXPECT(n, "Float(4, 10)");
}

/* ---- data movement ---------------------------------------------------------------------- */

static void test_reshape(void) {
  kl_ir_node *n = mk(KL_OP_RESHAPE, 1, "Float(2, 3, 4)", NULL);
  set_ints(n, "shape", 2, 6, -1);
  EXPECT(n, "Float(6, 4)");
  set_ints(n, "shape", 3, 4, 3, 2);
  EXPECT(n, "Float(4, 3, 2)");
  set_ints(n, "shape", 2, 5, 5);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT,
            "cannot reshape input Float(2, 3, 4) (24 elements) to [5, 5] (25 elements)");
  set_ints(n, "shape", 2, 5, -1);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "to [5, -1]");
  set_ints(n, "shape", 2, -1, -1);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "more than one -1");
  set_ints(n, "shape", 2, -2, 12);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "entry 0 is -2");
  n = mk(KL_OP_RESHAPE, 1, "Float(N, 3, 4)", NULL);
  set_ints(n, "shape", 2, -1, 12);
  EXPECT(n, "Float(N, 12)"); /* the -1 can only be N */
  set_ints(n, "shape", 2, -1, 6);
  EXPECT(n, "Float(*, 6)");
  set_ints(n, "shape", 2, 2, 12);
  EXPECT(n, "Float(2, 12)");
  n = mk(KL_OP_RESHAPE, 1, "Float(N, M)", NULL);
  set_ints(n, "shape", 1, -1);
  EXPECT(n, "Float(*)");
  n = mk(KL_OP_RESHAPE, 1, "Float(0, 3)", NULL);
  set_ints(n, "shape", 2, -1, 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "cannot reshape");
  int64_t many[KL_MAX_RANK + 1];
  for (int i = 0; i <= KL_MAX_RANK; i++)
    many[i] = 1;
  kl_ir_node_set_ints(n, "shape", many, KL_MAX_RANK + 1);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_LIMIT, "more than 32");
}

static void test_flatten_squeeze(void) {
  kl_ir_node *n = mk(KL_OP_FLATTEN, 1, "Float(N, 3, 4, 5)", NULL);
  EXPECT(n, "Float(*)");
  kl_ir_node_set_int(n, "start_dim", 1);
  EXPECT(n, "Float(N, 60)");
  kl_ir_node_set_int(n, "end_dim", 2);
  EXPECT(n, "Float(N, 12, 5)");
  kl_ir_node_set_int(n, "start_dim", 3);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "start_dim 3 comes after end_dim 2");
  kl_ir_node_set_int(n, "start_dim", 4);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "dim 4 is out of range");
  n = mk(KL_OP_FLATTEN, 1, "Float(N, 1, 1)", NULL);
  EXPECT(n, "Float(N)");
  EXPECT(mk(KL_OP_FLATTEN, 1, "Float()", NULL), "Float(1)");

  n = mk(KL_OP_SQUEEZE, 1, "Float(1, 3, 1)", NULL);
  EXPECT(n, "Float(3)");
  set_ints(n, "dim", 1, -1);
  EXPECT(n, "Float(1, 3)");
  set_ints(n, "dim", 1, 1); /* not 1: kept, as in PyTorch */
  EXPECT(n, "Float(1, 3, 1)");
  set_ints(n, "dim", 0);
  EXPECT(n, "Float(1, 3, 1)");
  set_ints(n, "dim", 2, 0, -3);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "appears more than once");
  n = mk(KL_OP_SQUEEZE, 1, "Float(N, 1)", NULL);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_UNSUPPORTED, "cannot tell whether dim 0 (N)");
  set_ints(n, "dim", 1, 1);
  EXPECT(n, "Float(N)");
  EXPECT(mk(KL_OP_SQUEEZE, 1, "Float(B, 1)", NULL), "Float(B)"); /* B >= 2 */
  EXPECT(mk(KL_OP_SQUEEZE, 1, "Float(ONE, 2)", NULL), "Float(2)");

  n = mk(KL_OP_UNSQUEEZE, 1, "Float(N, 3)", NULL);
  kl_ir_node_set_int(n, "dim", 0);
  EXPECT(n, "Float(1, N, 3)");
  kl_ir_node_set_int(n, "dim", -1);
  EXPECT(n, "Float(N, 3, 1)");
  kl_ir_node_set_int(n, "dim", 3);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "dim 3 is out of range for rank 3");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_UNSQUEEZE, 1, "Float(2)", NULL)), KL_ERR_INVALID_ARGUMENT,
            "dim (int) is missing");
  kl_ir_type big = T("Float()");
  big.rank = KL_MAX_RANK;
  for (int i = 0; i < KL_MAX_RANK; i++)
    big.dims[i] = kl_ir_dim_static(1);
  kl_ir_value *bv = kl_ir_block_add_param(g->top, NULL, &big);
  n = kl_ir_block_add_node(g->top, KL_OP_UNSQUEEZE, &bv, 1, 1);
  kl_ir_node_set_int(n, "dim", 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_LIMIT, "already has the most dims");
}

static void test_permute_expand(void) {
  kl_ir_node *n = mk(KL_OP_TRANSPOSE, 1, "Float(N, 3, 4)", NULL);
  kl_ir_node_set_int(n, "dim0", 0);
  kl_ir_node_set_int(n, "dim1", -1);
  EXPECT(n, "Float(4, 3, N)");
  kl_ir_node_set_int(n, "dim1", 3);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "aten::transpose: dim 3 is out of");
  n = mk(KL_OP_PERMUTE, 1, "Float(N, 3, 4)", NULL);
  set_ints(n, "dims", 3, 2, 0, 1);
  EXPECT(n, "Float(4, N, 3)");
  set_ints(n, "dims", 3, 2, 0, -1);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "not a permutation: dim 2 appears");
  set_ints(n, "dims", 2, 1, 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "dims has 2 entries for an input of "
                                                          "rank 3");

  n = mk(KL_OP_EXPAND, 1, "Float(N, 1)", NULL);
  set_ints(n, "size", 3, 2, -1, 5);
  EXPECT(n, "Float(2, N, 5)");
  set_ints(n, "size", 2, 7, 5);
  EXPECT(n, "Float(7, 5)"); /* N must be 1 or 7 */
  set_ints(n, "size", 1, 5);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "fewer dims than input");
  set_ints(n, "size", 3, -1, -1, 5);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "for a new leading dim");
  n = mk(KL_OP_EXPAND, 1, "Float(3, 1)", NULL);
  set_ints(n, "size", 2, 4, 2);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT,
            "cannot expand input Float(3, 1) to [4, 2]: dim 0 is 3, not 1 or 4");
}

static void test_cat_split(void) {
  kl_ir_node *n = mk(KL_OP_CAT, 1, "Float(N, 3)", "Float(N, 5)", NULL);
  kl_ir_node_set_int(n, "dim", 1);
  EXPECT(n, "Float(N, 8)");
  kl_ir_node_set_int(n, "dim", 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "differ at dim 1: 3 != 5");
  EXPECT(mk(KL_OP_CAT, 1, "Float(N, 3)", "Float(N, 3)", NULL), "Float(*, 3)"); /* N + N */
  n = mk(KL_OP_CAT, 1, "Float(2, 3)", "Float(N, 3)", "Float(4, 3)", NULL);
  EXPECT(n, "Float(*, 3)");
  EXPECT(mk(KL_OP_CAT, 1, "Float(0, 3)", "Float(N, 3)", NULL), "Float(N, 3)");
  EXPECT(mk(KL_OP_CAT, 1, "Float(2, N)", "Float(4, 3)", NULL), "Float(6, 3)");
  EXPECT(mk(KL_OP_CAT, 1, "Float(2, *)", "Float(4, N)", NULL), "Float(6, N)");
  EXPECT(mk(KL_OP_CAT, 1, "Float(2, M)", "Float(4, N)", NULL), "Float(6, *)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_CAT, 1, "Float(2, 3)", "Float(2, 4)", NULL)),
            KL_ERR_INVALID_ARGUMENT,
            "input 0 Float(2, 3) and input 1 Float(2, 4) differ at dim 1: 3 != 4");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_CAT, 1, "Float(2, 3)", "Long(2, 3)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "input 0 Float(2, 3) and input 1 Long(2, 3) have different");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_CAT, 1, "Float(2, 3)", "Float(2)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "different ranks");

  n = mk(KL_OP_SPLIT, 3, "Float(N, 10)", NULL);
  set_ints(n, "sizes", 3, 2, 3, 5);
  kl_ir_node_set_int(n, "dim", 1);
  EXPECT(n, "Float(N, 2)");
  CHECK_STREQ(infer_out(n, 2), "Float(N, 5)");
  set_ints(n, "sizes", 3, 2, 3, 4);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT,
            "sizes [2, 3, 4] add up to 9, but dim 1 of input Float(N, 10) is 10");
  set_ints(n, "sizes", 2, 5, 5);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "sizes has 2 entries but the node has 3");
  set_ints(n, "sizes", 3, 5, 6, -1);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "entry 2 is negative");
  kl_ir_node_set_int(n, "dim", 0);
  set_ints(n, "sizes", 3, 1, 2, 3);
  EXPECT(n, "Float(1, 10)"); /* N is unbounded, 6 is possible */
}

static void test_slice_pad(void) {
  kl_ir_node *n = mk(KL_OP_SLICE, 1, "Float(N, 10)", NULL);
  kl_ir_node_set_int(n, "dim", 1);
  kl_ir_node_set_int(n, "start", 2);
  EXPECT(n, "Float(N, 8)");
  kl_ir_node_set_int(n, "end", -1);
  kl_ir_node_set_int(n, "step", 3);
  EXPECT(n, "Float(N, 3)"); /* 2, 5, 8 */
  kl_ir_node_set_int(n, "step", 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "aten::slice: attribute step must not "
                                                          "be 0");
  kl_ir_node_set_int(n, "step", -2);
  kl_ir_node_set_int(n, "start", 9);
  kl_ir_node_set_int(n, "end", 0);
  EXPECT(n, "Float(N, 5)"); /* 9, 7, 5, 3, 1 */
  kl_ir_node_set_int(n, "dim", 0);
  EXPECT(n, "Float(*, 10)");
  n = mk(KL_OP_SLICE, 1, "Float(N, 10)", NULL);
  EXPECT(n, "Float(N, 10)"); /* the whole dim */
  kl_ir_node_set_int(n, "dim", 2);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "dim 2 is out of range");

  n = mk(KL_OP_CONSTANT_PAD, 1, "Float(N, 3, 4)", NULL);
  set_ints(n, "pad", 4, 1, 2, 3, 0);
  EXPECT(n, "Float(N, 6, 7)");
  set_ints(n, "pad", 2, -2, -2);
  EXPECT(n, "Float(N, 3, 0)");
  set_ints(n, "pad", 2, -3, -2);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "gives a negative size -1");
  set_ints(n, "pad", 6, 0, 0, 0, 0, 1, 1);
  EXPECT(n, "Float(*, 3, 4)");
  set_ints(n, "pad", 6, 0, 0, 0, 0, 1, -1);
  EXPECT(n, "Float(N, 3, 4)");
  set_ints(n, "pad", 3, 1, 1, 1);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "pad must have an even length");
  set_ints(n, "pad", 8, 0, 0, 0, 0, 0, 0, 0, 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "more than 2 per dim");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_CONSTANT_PAD, 1, "Float(3)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "attribute pad is missing");
}

static void test_gather(void) {
  EXPECT(mk(KL_OP_EMBEDDING, 1, "Float(1000, 64)", "Long(N, T)", NULL), "Float(N, T, 64)");
  EXPECT(mk(KL_OP_EMBEDDING, 1, "Half(10, 4)", "Int()", NULL), "Half(4)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_EMBEDDING, 1, "Float(10, 4)", "Float(3)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "indices Float(3) must be Int or Long");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_EMBEDDING, 1, "Float(10)", "Long(3)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "weight must be 2-D");

  kl_ir_node *n = mk(KL_OP_INDEX_SELECT, 1, "Float(N, 10, 3)", "Long(4)", NULL);
  kl_ir_node_set_int(n, "dim", 1);
  EXPECT(n, "Float(N, 4, 3)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_INDEX_SELECT, 1, "Float(2)", "Long(4)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "dim is missing");
  n = mk(KL_OP_INDEX_SELECT, 1, "Float(N, 10)", "Long(2, 2)", NULL);
  kl_ir_node_set_int(n, "dim", 0);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "indices Long(2, 2) must be 1-D");

  n = mk(KL_OP_GATHER, 1, "Float(5, 6, 7)", "Int(2, 3)", NULL);
  EXPECT(n, "Float(2, 3, 6, 7)");
  kl_ir_node_set_int(n, "axis", -1);
  EXPECT(n, "Float(5, 6, 2, 3)");
  kl_ir_node_set_int(n, "axis", 3);
  CHECK_ERR(kl_ir_node_infer(n), KL_ERR_INVALID_ARGUMENT, "onnx::Gather: dim 3 is out of range");
  n = mk(KL_OP_GATHER, 1, "Float(5, 6)", "Long()", NULL);
  EXPECT(n, "Float(6)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_GATHER, 1, "Float()", "Long()", NULL)),
            KL_ERR_INVALID_ARGUMENT, "rank-0");
}

/* Arity and malformed types get statuses, not crashes, also through the explicit-type entry. */
static void test_bad_arity(void) {
  kl_ir_node *n = mk(KL_OP_SPLIT, 2, "Float(4)", NULL);
  set_ints(n, "sizes", 2, 2, 2);
  kl_ir_type in = T("Float(4)"), out[2];
  CHECK_OK(kl_ir_node_infer_types(n, &in, 1, out, 2));
  CHECK_ERR(kl_ir_node_infer_types(n, &in, 1, out, 1), KL_ERR_INVALID_ARGUMENT,
            "sizes has 2 entries but the node has 1");
  kl_ir_node *r = mk(KL_OP_RELU, 1, "Float(4)", NULL);
  CHECK_ERR(kl_ir_node_infer_types(r, &in, 1, out, 2), KL_ERR_INVALID_ARGUMENT,
            "expected 1 outputs, got 2");
  in.rank = -1;
  CHECK_ERR(kl_ir_node_infer_types(r, &in, 1, out, 1), KL_ERR_INVALID_ARGUMENT, "has rank -1");
  /* Concrete types through the explicit entry (the interpreter's use). */
  kl_ir_node *lin = mk(KL_OP_LINEAR, 1, "Float(N, 10)", "Float(5, 10)", NULL);
  kl_ir_type li[2] = {T("Float(3, 10)"), T("Float(5, 10)")};
  CHECK_OK(kl_ir_node_infer_types(lin, li, 2, out, 1));
  CHECK(kl_ir_type_equal(&out[0], &(kl_ir_type){0}) == false);
  CHECK_EQ_INT(out[0].rank, 2);
  CHECK_EQ_INT(out[0].dims[0].size, 3);
  CHECK_EQ_INT(out[0].dims[1].size, 5);
}

/* Every op against many random input types and attributes: a status or a well-formed type,
 * never a crash (run under the sanitizers) and never a negative or oversized result. */
static uint64_t rng_state = 88172645463325252ull;
static int64_t rnd(int64_t n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (int64_t)(rng_state % (uint64_t)n);
}

static kl_ir_dim random_dim(void) {
  kl_ir_dim d = kl_ir_dim_static(rnd(6));
  int64_t r = rnd(10);
  if (r == 0)
    d.sym = KL_DIM_UNKNOWN;
  else if (r == 1)
    d.sym = kl_ir_graph_find_symbol(g, rnd(2) ? "N" : "B");
  return d;
}

static void test_random_ops(void) {
  static const char *const strings[] = {"none", "tanh", "x"};
  T("Float(N)"); /* makes sure N exists */
  int failures_before = check_failures;
  for (int iter = 0; iter < 5000; iter++) {
    kl_op op = (kl_op)rnd(KL_OP_COUNT);
    const kl_op_info *info = kl_op_get(op);
    int n_in = info->min_inputs + (int)rnd(2);
    if (info->max_inputs >= 0 && n_in > info->max_inputs)
      n_in = info->max_inputs;
    int n_out = info->min_outputs + (int)rnd(2);
    if (info->max_outputs >= 0 && n_out > info->max_outputs)
      n_out = info->max_outputs;
    kl_ir_type in[8], out[8];
    kl_ir_value *vals[8];
    /* Inputs mostly share a dtype and a rank, so multi-input ops get past their first check. */
    kl_dtype dtype = (kl_dtype)(rnd(3) ? (rnd(2) ? KL_F32 : KL_I64) : rnd(KL_DTYPE_COUNT));
    int rank = (int)rnd(5);
    for (int i = 0; i < n_in; i++) {
      memset(&in[i], 0, sizeof in[i]);
      in[i].dtype = rnd(8) ? dtype : (kl_dtype)rnd(KL_DTYPE_COUNT);
      in[i].rank = rnd(2) ? rank : (int)rnd(5);
      for (int d = 0; d < in[i].rank; d++)
        in[i].dims[d] = random_dim();
      vals[i] = kl_ir_block_add_param(g->top, NULL, &in[i]);
    }
    kl_ir_node *n = kl_ir_node_create(g, op, vals, n_in, n_out);
    for (int b = 0; b < info->n_blocks && rnd(2); b++)
      kl_ir_node_add_block(n);
    for (int a = 0; a < info->n_attrs; a++) {
      const kl_attr_schema *sc = &info->attrs[a];
      if (!sc->required && rnd(3) == 0)
        continue;
      int64_t ints[6];
      int count = (int)rnd(6);
      for (int i = 0; i < count; i++)
        ints[i] = rnd(9) - 2;
      switch (sc->kind) {
      case KL_ATTR_INT: kl_ir_node_set_int(n, sc->name, rnd(9) - 3); break;
      case KL_ATTR_FLOAT: kl_ir_node_set_float(n, sc->name, (double)(rnd(5) - 2)); break;
      case KL_ATTR_STRING: kl_ir_node_set_string(n, sc->name, strings[rnd(3)]); break;
      case KL_ATTR_INTS: kl_ir_node_set_ints(n, sc->name, ints, count); break;
      case KL_ATTR_DTYPE: kl_ir_node_set_dtype(n, sc->name, (kl_dtype)rnd(KL_DTYPE_COUNT)); break;
      default: break;
      }
    }
    kl_status st = kl_ir_node_infer_types(n, in, n_in, out, n_out);
    if (st) {
      kl_status_code code = kl_status_code_of(st);
      CHECK(code == KL_ERR_INVALID_ARGUMENT || code == KL_ERR_UNSUPPORTED ||
            code == KL_ERR_LIMIT);
      CHECK(strstr(kl_status_message(st), info->name) != NULL);
      kl_status_destroy(st);
      continue;
    }
    for (int o = 0; o < n_out; o++) {
      CHECK(out[o].rank >= 0 && out[o].rank <= KL_MAX_RANK);
      CHECK(kl_dtype_is_valid((int)out[o].dtype));
      for (int d = 0; d < out[o].rank && d < KL_MAX_RANK; d++)
        CHECK(out[o].dims[d].sym != KL_DIM_STATIC || out[o].dims[d].size >= 0);
    }
    if (check_failures != failures_before) {
      fprintf(stderr, "  (random case %d: %s)\n", iter, info->name);
      break;
    }
  }
}

/* ---- op_params ---------------------------------------------------------------------------- */

static void test_params_conv_pool(void) {
  kl_ir_node *n = mk(KL_OP_CONV2D, 1, "Float(1, 3, 8, 8)", "Float(4, 3, 3, 3)", NULL);
  kl_rt_conv2d_params cp;
  CHECK_OK(kl_ir_conv2d_params(n, &cp));
  CHECK(cp.stride[0] == 1 && cp.stride[1] == 1 && cp.dilation[0] == 1 && cp.dilation[1] == 1);
  CHECK(cp.pad[0] == 0 && cp.pad[1] == 0 && cp.pad[2] == 0 && cp.pad[3] == 0 && cp.groups == 1);
  set_ints(n, "padding", 2, 1, 2);
  set_ints(n, "stride", 2, 2, 3);
  set_ints(n, "dilation", 2, 4, 5);
  kl_ir_node_set_int(n, "groups", 3);
  CHECK_OK(kl_ir_conv2d_params(n, &cp));
  CHECK(cp.pad[0] == 1 && cp.pad[1] == 2 && cp.pad[2] == 1 && cp.pad[3] == 2);
  CHECK(cp.stride[0] == 2 && cp.stride[1] == 3 && cp.dilation[0] == 4 && cp.dilation[1] == 5);
  CHECK_EQ_INT(cp.groups, 3);
  set_ints(n, "padding", 4, 1, 2, 3, 4);
  CHECK_OK(kl_ir_conv2d_params(n, &cp));
  CHECK(cp.pad[0] == 1 && cp.pad[1] == 2 && cp.pad[2] == 3 && cp.pad[3] == 4);
  set_ints(n, "dilation", 2, 1, 0);
  CHECK_ERR(kl_ir_conv2d_params(n, &cp), KL_ERR_INVALID_ARGUMENT,
            "aten::conv2d: attribute dilation[1] = 0 must be >= 1");
  kl_ir_node_set_int(n, "dilation", 1);
  CHECK_ERR(kl_ir_conv2d_params(n, &cp), KL_ERR_INVALID_ARGUMENT, "dilation must be ints, not "
                                                                  "int");
  CHECK_ERR(kl_ir_conv2d_params(mk(KL_OP_RELU, 1, "Float(1)", NULL), &cp),
            KL_ERR_INVALID_ARGUMENT, "not a convolution");

  kl_rt_pool2d_params pp;
  bool ceil_mode = true;
  n = mk(KL_OP_MAX_POOL2D, 1, "Float(1, 1, 8, 8)", NULL);
  set_ints(n, "kernel_size", 2, 3, 2);
  CHECK_OK(kl_ir_pool2d_params(n, &pp, &ceil_mode));
  CHECK(pp.kernel[0] == 3 && pp.kernel[1] == 2 && pp.stride[0] == 3 && pp.stride[1] == 2);
  CHECK(pp.dilation[0] == 1 && pp.dilation[1] == 1 && pp.pad[0] == 0 && pp.pad[3] == 0);
  CHECK(!ceil_mode && !pp.count_include_pad);
  kl_ir_node_set_int(n, "ceil_mode", 1);
  set_ints(n, "dilation", 2, 2, 1);
  CHECK_OK(kl_ir_pool2d_params(n, &pp, NULL));
  CHECK_OK(kl_ir_pool2d_params(n, &pp, &ceil_mode));
  CHECK(ceil_mode && pp.dilation[0] == 2);
  set_ints(n, "kernel_size", 2, 0, 2);
  CHECK_ERR(kl_ir_pool2d_params(n, &pp, NULL), KL_ERR_INVALID_ARGUMENT,
            "kernel_size[0] = 0 must be >= 1");
  n = mk(KL_OP_AVG_POOL2D, 1, "Float(1, 1, 8, 8)", NULL);
  set_ints(n, "kernel_size", 2, 2, 2);
  set_ints(n, "stride", 2, 1, 1);
  CHECK_OK(kl_ir_pool2d_params(n, &pp, &ceil_mode));
  CHECK(pp.count_include_pad && !ceil_mode && pp.stride[0] == 1);
  kl_ir_node_set_int(n, "count_include_pad", 0);
  CHECK_OK(kl_ir_pool2d_params(n, &pp, NULL));
  CHECK(!pp.count_include_pad);
}

static void test_params_unary_binary(void) {
  kl_rt_unary_op op;
  double a, b;
  kl_ir_node *n = mk(KL_OP_RELU6, 1, "Float(1)", NULL);
  CHECK_OK(kl_ir_unary_params(n, &op, &a, &b));
  CHECK(op == KL_UNARY_CLAMP && a == 0 && b == 6);
  n = mk(KL_OP_HARDTANH, 1, "Float(1)", NULL);
  CHECK_OK(kl_ir_unary_params(n, &op, &a, &b));
  CHECK(op == KL_UNARY_CLAMP && a == -1 && b == 1);
  n = mk(KL_OP_CLAMP, 1, "Float(1)", NULL);
  CHECK_OK(kl_ir_unary_params(n, &op, &a, &b));
  CHECK(op == KL_UNARY_CLAMP && isinf(a) && a < 0 && isinf(b) && b > 0);
  kl_ir_node_set_float(n, "min", 0.5);
  CHECK_OK(kl_ir_unary_params(n, &op, &a, &b));
  CHECK(a == 0.5 && isinf(b));
  kl_ir_node_set_int(n, "max", 3);
  CHECK_ERR(kl_ir_unary_params(n, &op, &a, &b), KL_ERR_INVALID_ARGUMENT,
            "attribute max must be float, not int");
  n = mk(KL_OP_LEAKY_RELU, 1, "Float(1)", NULL);
  CHECK_OK(kl_ir_unary_params(n, &op, &a, &b));
  CHECK(op == KL_UNARY_LEAKY_RELU && a == 0.01);
  n = mk(KL_OP_GELU, 1, "Float(1)", NULL);
  CHECK_OK(kl_ir_unary_params(n, &op, &a, &b));
  CHECK(op == KL_UNARY_GELU);
  kl_ir_node_set_string(n, "approximate", "tanh");
  CHECK_OK(kl_ir_unary_params(n, &op, &a, &b));
  CHECK(op == KL_UNARY_GELU_TANH);
  n = mk(KL_OP_DROPOUT, 1, "Float(1)", NULL);
  CHECK_OK(kl_ir_unary_params(n, &op, &a, &b));
  CHECK(op == KL_UNARY_IDENTITY);
  kl_ir_node_set_float(n, "p", 1.5);
  CHECK_ERR(kl_ir_unary_params(n, &op, &a, &b), KL_ERR_INVALID_ARGUMENT, "p = 1.5 must be in");
  struct {
    kl_op op;
    kl_rt_unary_op want;
  } simple[] = {{KL_OP_RELU, KL_UNARY_RELU},       {KL_OP_SIGMOID, KL_UNARY_SIGMOID},
                {KL_OP_HARDSIGMOID, KL_UNARY_HARDSIGMOID},
                {KL_OP_HARDSWISH, KL_UNARY_HARDSWISH}, {KL_OP_TANH, KL_UNARY_TANH},
                {KL_OP_SILU, KL_UNARY_SILU},       {KL_OP_SQRT, KL_UNARY_SQRT},
                {KL_OP_RSQRT, KL_UNARY_RSQRT},     {KL_OP_RECIPROCAL, KL_UNARY_RECIPROCAL},
                {KL_OP_EXP, KL_UNARY_EXP},         {KL_OP_LOG, KL_UNARY_LOG},
                {KL_OP_ERF, KL_UNARY_ERF},         {KL_OP_NEG, KL_UNARY_NEG},
                {KL_OP_ABS, KL_UNARY_ABS}};
  for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
    op = KL_UNARY_IDENTITY;
    CHECK_OK(kl_ir_unary_params(mk(simple[i].op, 1, "Float(1)", NULL), &op, &a, &b));
    CHECK_EQ_INT(op, simple[i].want);
  }
  CHECK_ERR(kl_ir_unary_params(mk(KL_OP_ADD, 1, "Float(1)", "Float(1)", NULL), &op, &a, &b),
            KL_ERR_INVALID_ARGUMENT, "aten::add: not a unary");

  struct {
    kl_op op;
    kl_rt_binary_op want;
  } bin[] = {{KL_OP_ADD, KL_BINARY_ADD}, {KL_OP_SUB, KL_BINARY_SUB}, {KL_OP_MUL, KL_BINARY_MUL},
             {KL_OP_DIV, KL_BINARY_DIV}, {KL_OP_POW, KL_BINARY_POW},
             {KL_OP_MAXIMUM, KL_BINARY_MAX}, {KL_OP_MINIMUM, KL_BINARY_MIN},
             {KL_OP_EQ, KL_BINARY_EQ},   {KL_OP_NE, KL_BINARY_NE},   {KL_OP_LT, KL_BINARY_LT},
             {KL_OP_LE, KL_BINARY_LE},   {KL_OP_GT, KL_BINARY_GT},   {KL_OP_GE, KL_BINARY_GE}};
  for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++) {
    kl_rt_binary_op bop = KL_BINARY_ADD;
    CHECK_OK(kl_ir_binary_params(mk(bin[i].op, 1, "Float(1)", "Float(1)", NULL), &bop));
    CHECK_EQ_INT(bop, bin[i].want);
  }
  kl_rt_binary_op bop;
  CHECK_ERR(kl_ir_binary_params(mk(KL_OP_RELU, 1, "Float(1)", NULL), &bop),
            KL_ERR_INVALID_ARGUMENT, "not a binary");
}

static void test_params_movement(void) {
  kl_ir_node *n = mk(KL_OP_MEAN, 1, "Float(2, 3, 4)", NULL);
  kl_rt_reduce_op rop;
  bool mask[3], keepdim = true;
  CHECK_OK(kl_ir_reduce_params(n, 3, &rop, mask, &keepdim));
  CHECK(rop == KL_REDUCE_MEAN && mask[0] && mask[1] && mask[2] && !keepdim);
  set_ints(n, "dim", 1, -2);
  kl_ir_node_set_int(n, "keepdim", 1);
  CHECK_OK(kl_ir_reduce_params(n, 3, &rop, mask, &keepdim));
  CHECK(!mask[0] && mask[1] && !mask[2] && keepdim);
  CHECK_ERR(kl_ir_reduce_params(n, 1, &rop, mask, &keepdim), KL_ERR_INVALID_ARGUMENT,
            "dim -2 is out of range for rank 1");

  int perm[3];
  n = mk(KL_OP_TRANSPOSE, 1, "Float(2, 3, 4)", NULL);
  CHECK_ERR(kl_ir_permute_params(n, 3, perm), KL_ERR_INVALID_ARGUMENT,
            "required attribute dim0 is missing");
  kl_ir_node_set_int(n, "dim0", 1);
  kl_ir_node_set_int(n, "dim1", 2);
  CHECK_OK(kl_ir_permute_params(n, 3, perm));
  CHECK(perm[0] == 0 && perm[1] == 2 && perm[2] == 1);

  int dim;
  int64_t start, step, len, shape[2] = {3, 10};
  n = mk(KL_OP_SLICE, 1, "Float(3, 10)", NULL);
  CHECK_OK(kl_ir_slice_params(n, 2, shape, &dim, &start, &step, &len));
  CHECK(dim == 0 && start == 0 && step == 1 && len == 3);
  kl_ir_node_set_int(n, "dim", -1);
  kl_ir_node_set_int(n, "start", -3);
  CHECK_OK(kl_ir_slice_params(n, 2, shape, &dim, &start, &step, &len));
  CHECK(dim == 1 && start == 7 && len == 3);
  kl_ir_node_set_int(n, "start", 20); /* past the end: empty */
  CHECK_OK(kl_ir_slice_params(n, 2, shape, &dim, &start, &step, &len));
  CHECK(len == 0 && start == 0);
  kl_ir_node_set_int(n, "start", INT64_MAX); /* x[::-1] as ONNX writes it */
  kl_ir_node_set_int(n, "end", INT64_MIN);
  kl_ir_node_set_int(n, "step", -1);
  CHECK_OK(kl_ir_slice_params(n, 2, shape, &dim, &start, &step, &len));
  CHECK(start == 9 && step == -1 && len == 10);
  kl_ir_node_set_int(n, "step", INT64_MIN);
  CHECK_OK(kl_ir_slice_params(n, 2, shape, &dim, &start, &step, &len));
  CHECK(start == 9 && len == 1);

  int64_t pad[6];
  double value = -1;
  n = mk(KL_OP_CONSTANT_PAD, 1, "Float(2, 3, 4)", NULL);
  set_ints(n, "pad", 4, 1, 2, 3, 4);
  CHECK_OK(kl_ir_pad_params(n, 3, pad, &value));
  CHECK(pad[0] == 0 && pad[1] == 0 && pad[2] == 3 && pad[3] == 4 && pad[4] == 1 && pad[5] == 2);
  CHECK(value == 0);
  kl_ir_node_set_float(n, "value", 2.5);
  CHECK_OK(kl_ir_pad_params(n, 3, pad, &value));
  CHECK(value == 2.5);

  int axis;
  bool neg, one_d;
  n = mk(KL_OP_GATHER, 1, "Float(5, 6)", "Long(2)", NULL);
  CHECK_OK(kl_ir_gather_params(n, 2, &axis, &neg, &one_d));
  CHECK(axis == 0 && neg && !one_d);
  n = mk(KL_OP_INDEX_SELECT, 1, "Float(5, 6)", "Long(2)", NULL);
  kl_ir_node_set_int(n, "dim", -1);
  CHECK_OK(kl_ir_gather_params(n, 2, &axis, &neg, &one_d));
  CHECK(axis == 1 && !neg && one_d);
  n = mk(KL_OP_EMBEDDING, 1, "Float(5, 6)", "Long(2)", NULL);
  CHECK_OK(kl_ir_gather_params(n, 2, &axis, &neg, &one_d));
  CHECK(axis == 0 && !neg && !one_d);

  int d;
  CHECK_OK(kl_ir_normalize_dim(n, -1, 4, &d));
  CHECK_EQ_INT(d, 3);
  CHECK_ERR(kl_ir_normalize_dim(n, -5, 4, &d), KL_ERR_INVALID_ARGUMENT, "expected -4..3");
  CHECK_ERR(kl_ir_normalize_dim(n, 0, 0, &d), KL_ERR_INVALID_ARGUMENT, "rank-0");
}

/* ---- elementwise math (issue 4) ---------------------------------------------------------- */

static void test_math(void) {
  EXPECT(mk(KL_OP_SIN, 1, "Float(N, 3)", NULL), "Float(N, 3)");
  EXPECT(mk(KL_OP_ROUND, 1, "Half(2)", NULL), "Half(2)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_ACOSH, 1, "Long(2)", NULL)), KL_ERR_INVALID_ARGUMENT,
            "aten::acosh: input Long(2) must have a floating-point dtype");
  EXPECT(mk(KL_OP_SIGN, 1, "Char(4)", NULL), "Char(4)"); /* sign takes integers too */
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_SIGN, 1, "Bool(4)", NULL)), KL_ERR_INVALID_ARGUMENT,
            "must not be Bool");
  EXPECT(mk(KL_OP_REMAINDER, 1, "Float(N, 1)", "Float(3)", NULL), "Float(N, 3)");
  EXPECT(mk(KL_OP_FMOD, 1, "Long(2, 3)", "Long()", NULL), "Long(2, 3)");
  EXPECT(mk(KL_OP_BITWISE_LEFT_SHIFT, 1, "Byte(2, 1)", "Byte(4)", NULL), "Byte(2, 4)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_BITWISE_RIGHT_SHIFT, 1, "Float(2)", "Float(2)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "input Float(2) must be an integer tensor");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_BITWISE_RIGHT_SHIFT, 1, "Bool(2)", "Bool(2)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "input Bool(2) must be an integer tensor");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_BITWISE_LEFT_SHIFT, 1, "Int(2)", "Long(2)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "different dtypes");
  /* bitwise (issue 4): integers and Bool, broadcasting; floats refused */
  EXPECT(mk(KL_OP_BITWISE_AND, 1, "Int(N, 1)", "Int(3)", NULL), "Int(N, 3)");
  EXPECT(mk(KL_OP_BITWISE_XOR, 1, "Bool(2)", "Bool()", NULL), "Bool(2)");
  EXPECT(mk(KL_OP_BITWISE_NOT, 1, "Bool(2, 3)", NULL), "Bool(2, 3)");
  EXPECT(mk(KL_OP_BITWISE_NOT, 1, "Byte(4)", NULL), "Byte(4)");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_BITWISE_OR, 1, "Float(2)", "Float(2)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "input Float(2) must be an integer or Bool tensor");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_BITWISE_NOT, 1, "Half(2)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "input Half(2) must be an integer or Bool tensor");
  CHECK_ERR(kl_ir_node_infer(mk(KL_OP_BITWISE_AND, 1, "Bool(2)", "Byte(2)", NULL)),
            KL_ERR_INVALID_ARGUMENT, "different dtypes");

  /* each op reaches its own kernel op */
  static const struct {
    kl_op op;
    kl_rt_unary_op want;
  } un[] = {{KL_OP_SIN, KL_UNARY_SIN},     {KL_OP_COS, KL_UNARY_COS},
            {KL_OP_TAN, KL_UNARY_TAN},     {KL_OP_ASIN, KL_UNARY_ASIN},
            {KL_OP_ACOS, KL_UNARY_ACOS},   {KL_OP_ATAN, KL_UNARY_ATAN},
            {KL_OP_SINH, KL_UNARY_SINH},   {KL_OP_COSH, KL_UNARY_COSH},
            {KL_OP_ASINH, KL_UNARY_ASINH}, {KL_OP_ACOSH, KL_UNARY_ACOSH},
            {KL_OP_ATANH, KL_UNARY_ATANH}, {KL_OP_FLOOR, KL_UNARY_FLOOR},
            {KL_OP_CEIL, KL_UNARY_CEIL},   {KL_OP_ROUND, KL_UNARY_ROUND},
            {KL_OP_SIGN, KL_UNARY_SIGN},   {KL_OP_BITWISE_NOT, KL_UNARY_BITWISE_NOT}};
  for (size_t i = 0; i < sizeof un / sizeof un[0]; i++) {
    kl_rt_unary_op op = KL_UNARY_IDENTITY;
    double a, b;
    CHECK_OK(kl_ir_unary_params(mk(un[i].op, 1, "Float(1)", NULL), &op, &a, &b));
    CHECK_EQ_INT(op, un[i].want);
  }
  static const struct {
    kl_op op;
    kl_rt_binary_op want;
  } bin[] = {{KL_OP_REMAINDER, KL_BINARY_REMAINDER}, {KL_OP_FMOD, KL_BINARY_FMOD},
             {KL_OP_BITWISE_LEFT_SHIFT, KL_BINARY_SHL},
             {KL_OP_BITWISE_RIGHT_SHIFT, KL_BINARY_SHR},
             {KL_OP_BITWISE_AND, KL_BINARY_AND},
             {KL_OP_BITWISE_OR, KL_BINARY_OR},
             {KL_OP_BITWISE_XOR, KL_BINARY_XOR}};
  for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++) {
    kl_rt_binary_op op = KL_BINARY_ADD;
    CHECK_OK(kl_ir_binary_params(mk(bin[i].op, 1, "Long(1)", "Long(1)", NULL), &op));
    CHECK_EQ_INT(op, bin[i].want);
  }
}

int main(void) {
  g = kl_ir_graph_create();
  int sym;
  CHECK_OK(kl_ir_graph_add_symbol(g, "B", 2, 8, &sym));
  CHECK_OK(kl_ir_graph_add_symbol(g, "ONE", 1, 1, &sym));
  test_linear();
  test_matmul();
  test_conv2d();
  test_pool2d();
  test_adaptive_pool2d();
  test_norms();
  test_unary();
  test_binary();
  test_reduce();
  test_structure();
  test_if();
  test_loop();
  test_fusion_group();
  test_reshape();
  test_flatten_squeeze();
  test_permute_expand();
  test_cat_split();
  test_slice_pad();
  test_gather();
  test_bad_arity();
  test_random_ops();
  test_params_conv_pool();
  test_params_unary_binary();
  test_params_movement();
  test_math(); /* issue 4 */
  kl_ir_graph_destroy(g);
  return check_finish();
}
