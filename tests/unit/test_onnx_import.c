/* Tests for frontend/onnx/ import: each model of tests/onnx/fixtures (written by
 * tests/onnx/make_import_fixtures.py, with ONNX Runtime's outputs as the reference) is
 * imported, verified and run with the interpreter; then the import's structure (params,
 * symbols, blocks), its errors (all unsupported ops at once, external data without a folder)
 * and the TensorProto reader. Runs from tests/unit (meson workdir). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "frontend/onnx/onnx.h"
#include "frontend/onnx/onnx_internal.h"
#include "ir/text.h"
#include "runtime/interp.h"
#include "runtime/npy.h"

#define FIXTURES "../onnx/fixtures/"

/* Max |got - want| / (atol + rtol |want|) over the elements; > 1 is a failure. */
static double worst_error(const kl_tensor *got, const kl_tensor *want) {
  double worst = 0;
  for (int64_t i = 0; i < want->numel; i++) {
    double g = kl_dtype_load_f64(got->dtype, got->data, (size_t)i);
    double w = kl_dtype_load_f64(want->dtype, want->data, (size_t)i);
    double e = fabs(g - w) / (1e-5 + 1e-4 * fabs(w));
    if (isnan(e) || e > worst)
      worst = isnan(e) ? INFINITY : e;
  }
  return worst;
}

/* Imports NAME.onnx, runs it on NAME.in<i>.npy and compares with NAME.out<i>.npy. */
static void run_fixture(const char *name) {
  char path[256];
  snprintf(path, sizeof path, FIXTURES "%s.onnx", name);
  kl_ir_graph *g = NULL;
  kl_status s = kl_onnx_import_file(path, NULL, &g);
  if (s) {
    fprintf(stderr, "fixture %s: %s\n", name, kl_status_message(s));
    kl_status_destroy(s);
    CHECK(false);
    return;
  }
  CHECK_OK(kl_ir_verify(g));
  int n_in = g->top->n_params, n_out = g->top->n_returns;
  kl_tensor *in[8] = {0}, *out[8] = {0};
  CHECK(n_in <= 8 && n_out <= 8);
  for (int i = 0; i < n_in; i++) {
    snprintf(path, sizeof path, FIXTURES "%s.in%d.npy", name, i);
    CHECK_OK(kl_npy_read(path, &in[i]));
  }
  s = kl_interp_run(g, in, n_in, out);
  if (s) {
    fprintf(stderr, "fixture %s: run: %s\n", name, kl_status_message(s));
    kl_status_destroy(s);
    CHECK(false);
  } else {
    for (int i = 0; i < n_out; i++) {
      kl_tensor *want = NULL;
      snprintf(path, sizeof path, FIXTURES "%s.out%d.npy", name, i);
      CHECK_OK(kl_npy_read(path, &want));
      if (!want)
        continue;
      CHECK_EQ_INT(out[i]->dtype, want->dtype);
      CHECK(kl_tensor_same_shape(out[i], want));
      if (out[i]->dtype == want->dtype && kl_tensor_same_shape(out[i], want)) {
        double e = worst_error(out[i], want);
        if (e > 1)
          fprintf(stderr, "fixture %s output %d: error %g x tolerance\n", name, i, e);
        CHECK(e <= 1);
      }
      kl_tensor_release(want);
      kl_tensor_release(out[i]);
    }
  }
  for (int i = 0; i < n_in; i++)
    kl_tensor_release(in[i]);
  kl_ir_graph_destroy(g);
}

static char *print_graph(const kl_ir_graph *g) {
  char *text = NULL;
  size_t size = 0;
  CHECK_OK(kl_ir_print(g, NULL, &text, &size));
  return text;
}

static void test_structure(void) {
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_onnx_import_file(FIXTURES "mlp.onnx", NULL, &g));
  if (!g)
    return;
  /* Initializers are parameters with weights of their own names; one input remains. */
  CHECK_EQ_INT(g->top->n_params, 1);
  CHECK_EQ_INT(g->n_weights, 4);
  kl_tensor *w1 = kl_ir_graph_weight(g, "w1");
  CHECK(w1 && w1->rank == 2 && w1->shape[0] == 5 && w1->shape[1] == 4);
  char *text = print_graph(g);
  CHECK(text && strstr(text, "prim::Param[name=\"w1\"]"));
  CHECK(text && strstr(text, "aten::linear"));        /* Gemm transB=1 */
  CHECK(text && strstr(text, "aten::softmax[dim=-1]")); /* opset 11, axis 1 is the last */
  free(text);
  kl_ir_graph_destroy(g);

  CHECK_OK(kl_onnx_import_file(FIXTURES "opset9.onnx", NULL, &g));
  if (g) {
    text = print_graph(g);
    CHECK(text && strstr(text, "aten::flatten[start_dim=1]")); /* Softmax coerced to 2-D */
    free(text);
    kl_ir_graph_destroy(g);
  }

  CHECK_OK(kl_onnx_import_file(FIXTURES "symbolic.onnx", NULL, &g));
  if (g) {
    int n = kl_ir_graph_find_symbol(g, "N");
    CHECK(n >= 0);
    if (n >= 0) {
      CHECK_EQ_INT(g->symbols[n].min, 1);
      CHECK(g->symbols[n].max == INT64_MAX);
    }
    CHECK_EQ_INT(g->top->params[0]->type.dims[0].sym, n);
    CHECK_EQ_INT(g->top->returns[0]->type.dims[0].sym, n); /* reshape's 0 kept the symbol */
    kl_ir_graph_destroy(g);
  }

  CHECK_OK(kl_onnx_import_file(FIXTURES "control_flow.onnx", NULL, &g));
  if (g) {
    int n_if = 0, n_loop = 0;
    for (kl_ir_node *n = g->top->first; n; n = n->next) {
      n_if += n->op == KL_OP_IF;
      if (n->op == KL_OP_LOOP) {
        n_loop++;
        /* the body reads its condition, so it is carried: (max, cond, cond, v) */
        CHECK_EQ_INT(n->n_inputs, 4);
        CHECK_EQ_INT(n->blocks[0]->n_params, 3);
      }
    }
    CHECK_EQ_INT(n_if, 1);
    CHECK_EQ_INT(n_loop, 1);
    kl_ir_graph_destroy(g);
  }

  CHECK_OK(kl_onnx_import_file(FIXTURES "function.onnx", NULL, &g));
  if (g) {
    /* Both calls inlined: two mul + two leaky_relu with the callers' alphas. */
    char *t = print_graph(g);
    CHECK(t && strstr(t, "negative_slope=0.5"));
    CHECK(t && strstr(t, "negative_slope=0.1"));
    CHECK(t && strstr(t, "%\"call1/prod\" : Float(2, 3) = aten::mul"));
    free(t);
    kl_ir_graph_destroy(g);
  }
}

static void test_errors(void) {
  kl_ir_graph *g = NULL;
  /* Every unsupported op at once, with its node name, domain and opset. */
  kl_status s = kl_onnx_import_file(FIXTURES "unsupported.onnx", NULL, &g);
  CHECK(g == NULL);
  CHECK_EQ_INT(kl_status_code_of(s), KL_ERR_UNSUPPORTED);
  const char *m = kl_status_message(s);
  CHECK(strstr(m, "3 unsupported ops"));
  CHECK(strstr(m, "Det (opset 17) in node 'first_bad'"));
  CHECK(strstr(m, "Multinomial (opset 17) in node 'second_bad'"));
  CHECK(strstr(m, "Foo (domain 'com.example') in node 'third_bad'"));
  CHECK(!strstr(m, "'ok'"));
  kl_status_destroy(s);

  s = kl_onnx_import_file(FIXTURES "no_such_model.onnx", NULL, &g);
  CHECK_EQ_INT(kl_status_code_of(s), KL_ERR_IO);
  CHECK(strstr(kl_status_message(s), "no_such_model.onnx"));
  kl_status_destroy(s);

  /* From memory with no folder, external data is refused by name. */
  FILE *f = fopen(FIXTURES "external.onnx", "rb");
  CHECK(f != NULL);
  if (f) {
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    s = kl_onnx_import_buffer(buf, n, NULL, "mem.onnx", NULL, &g);
    CHECK_EQ_INT(kl_status_code_of(s), KL_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kl_status_message(s), "initializer 'w'"));
    CHECK(strstr(kl_status_message(s), "not loaded from a folder"));
    kl_status_destroy(s);
    s = kl_onnx_import_buffer(buf, n, FIXTURES, "mem.onnx", NULL, &g);
    CHECK(s == NULL);
    kl_status_destroy(s);
    kl_ir_graph_destroy(g);
    g = NULL;
    /* A limit on total tensor bytes is honoured. */
    kl_onnx_import_options opts;
    kl_onnx_import_options_init(&opts);
    opts.max_total_bytes = 8;
    s = kl_onnx_import_buffer(buf, n, FIXTURES, "mem.onnx", &opts, &g);
    CHECK_EQ_INT(kl_status_code_of(s), KL_ERR_LIMIT);
    kl_status_destroy(s);
    /* Every prefix is refused or imported, never a crash (ASan checks the reads). */
    for (size_t cut = 0; cut < n; cut += 7) {
      s = kl_onnx_import_buffer(buf, cut, FIXTURES, "cut.onnx", NULL, &g);
      kl_status_destroy(s);
      kl_ir_graph_destroy(g);
      g = NULL;
    }
  }
}

/* Inputs an op reads as values (a Reshape's shape, ReduceSum's axes) may stay graph inputs,
 * read at run time (onnx::Deferred), or be bound to constants at import. */
static void test_bound_inputs(void) {
  kl_ir_graph *g = NULL;
  kl_tensor *x = NULL, *shape = NULL, *axes = NULL, *want = NULL, *got = NULL;
  CHECK_OK(kl_npy_read(FIXTURES "bound.in0.npy", &x));
  CHECK_OK(kl_npy_read(FIXTURES "bound.in1.npy", &shape));
  CHECK_OK(kl_npy_read(FIXTURES "bound.in2.npy", &axes));
  CHECK_OK(kl_npy_read(FIXTURES "bound.out0.npy", &want));
  if (!x || !shape || !axes || !want)
    return;
  kl_status s;
  CHECK_OK(kl_onnx_import_file(FIXTURES "bound.onnx", NULL, &g));
  if (g) {
    CHECK_EQ_INT(g->top->n_params, 3);
    int deferred = 0;
    for (const kl_ir_node *n = g->top->first; n; n = n->next)
      deferred += n->op == KL_OP_ONNX_DEFERRED;
    CHECK(deferred >= 1);
    kl_tensor *all[3] = {x, shape, axes};
    CHECK_OK(kl_interp_run(g, all, 3, &got));
    CHECK(got && kl_tensor_same_shape(got, want) && worst_error(got, want) <= 1);
    kl_tensor_release(got);
    got = NULL;
    kl_ir_graph_destroy(g);
    g = NULL;
  }
  kl_onnx_binding wrong[1] = {{"shape", x}};
  s = kl_onnx_import_file_bound(FIXTURES "bound.onnx", NULL, wrong, 1, &g);
  CHECK_EQ_INT(kl_status_code_of(s), KL_ERR_INVALID_ARGUMENT);
  CHECK(strstr(kl_status_message(s), "graph input 'shape' is Long(3), but the bound value is"));
  kl_status_destroy(s);
  kl_onnx_binding unknown[1] = {{"nope", shape}};
  s = kl_onnx_import_file_bound(FIXTURES "bound.onnx", NULL, unknown, 1, &g);
  CHECK_EQ_INT(kl_status_code_of(s), KL_ERR_NOT_FOUND);
  kl_status_destroy(s);
  kl_onnx_binding both[2] = {{"shape", shape}, {"axes", axes}};
  CHECK_OK(kl_onnx_import_file_bound(FIXTURES "bound.onnx", NULL, both, 2, &g));
  if (g) {
    CHECK_EQ_INT(g->top->n_params, 1);
    CHECK_OK(kl_interp_run(g, &x, 1, &got));
    CHECK(got && kl_tensor_same_shape(got, want) && worst_error(got, want) <= 1);
    kl_tensor_release(got);
    kl_ir_graph_destroy(g);
  }
  kl_tensor_release(x);
  kl_tensor_release(shape);
  kl_tensor_release(axes);
  kl_tensor_release(want);
}

static void test_tensor_file(void) {
  /* An output of the ONNX test data format, read back by kl_onnx_read_tensor_file. */
  const char *dir = getenv("KL_ONNX_NODE_TESTS");
  char path[512];
  snprintf(path, sizeof path, "%s/test_relu/test_data_set_0/input_0.pb",
           dir ? dir : "../../.venv/lib/python3.11/site-packages/onnx/backend/test/data/node");
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "note: %s missing; TensorProto file test skipped\n", path);
    return;
  }
  fclose(f);
  kl_tensor *t = NULL;
  CHECK_OK(kl_onnx_read_tensor_file(path, &t));
  CHECK(t && t->dtype == KL_F32 && t->rank == 3 && t->shape[0] == 3 && t->shape[2] == 5);
  kl_tensor_release(t);
  kl_status s = kl_onnx_read_tensor_file(FIXTURES "mlp.in0.npy", &t);
  CHECK(s != NULL);
  kl_status_destroy(s);
}

int main(void) {
  CHECK(kl_onnx_is_onnx_path("a/model.onnx"));
  CHECK(kl_onnx_is_onnx_path("M.ONNX"));
  CHECK(!kl_onnx_is_onnx_path("net.kir"));
  CHECK(!kl_onnx_is_onnx_path(".onnx"));
  static const char *const fixtures[] = {"mlp", "cnn", "shapes", "opset9", "reduce",
                                         "transformer", "symbolic", "control_flow", "function",
                                         "external", "composite",
                                         "einsum" /* issue 4 */};
  for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++)
    run_fixture(fixtures[i]);
  test_structure();
  test_errors();
  test_bound_inputs();
  test_tensor_file();
  return check_finish();
}
