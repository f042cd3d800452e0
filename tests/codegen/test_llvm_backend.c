/* The LLVM CPU backend end to end: text-IR graphs are optimized (graph passes -O<level>),
 * lowered to an object with kl_codegen_llvm_object, linked into a .so with the artifact runtime,
 * loaded through the descriptor and run, with one thread and with several; outputs are compared
 * with kl_interp_run on the unoptimized graph (rtol 1e-4, atol 1e-5). Also: an aarch64 object
 * for a non-host triple, the module as text (kl_codegen_llvm_ir), the epilogues a conv step
 * takes over (codegen/llvm/epilogue.c, on each conv path), and the errors for a symbolic shape,
 * control flow and a bad name. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "codegen/llvm/llvm_internal.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/artifact_load.h"
#include "runtime/interp.h"
#include "tests/unit/check.h"

#define EM_AARCH64_ 183

static char tmpdir[256];
static int bool_fill; /* Bool inputs: element k is (k + bool_fill) & 1 */
static int64_t long_fill; /* Long inputs: every element */
static bool files_mode;    /* test_files: graphs the interpreter cannot run are skipped */
static bool build_skipped; /* files_mode: the last build met a symbol or an unhandled node */

/* ---- building test graphs --------------------------------------------------------------- */

/* Appends printf-style text to a growing buffer. */
typedef struct sbuf {
  char *s;
  size_t n, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (b->s && (size_t)k < b->cap - b->n) {
      b->n += (size_t)k;
      return;
    }
    b->cap = b->cap * 2 + (size_t)k + 256;
    b->s = realloc(b->s, b->cap);
    if (!b->s)
      abort();
    if (b->n == 0)
      b->s[0] = '\0';
  }
}

static uint32_t rng_state = 12345;
static float rnd(void) { /* in [-1, 1) */
  rng_state = rng_state * 1664525u + 1013904223u;
  return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* "%name : Float(dims) = prim::Constant[value=Float(dims){...}]()" with values scale*[-1,1)
 * shifted by shift. */
static void put_const(sbuf *b, const char *name, const char *dims, int numel, float scale,
                      float shift) {
  put(b, "  %%%s : Float(%s) = prim::Constant[value=Float(%s){", name, dims, dims);
  for (int i = 0; i < numel; i++)
    put(b, "%s%.4f", i ? ", " : "", (double)(scale * rnd() + shift));
  put(b, "}]()\n");
}

/* ---- compile, load, run, compare -------------------------------------------------------- */

static bool close_enough(const kl_tensor *got, const kl_tensor *want, const char *label, int i) {
  if (got->nbytes != want->nbytes || got->dtype != want->dtype) {
    fprintf(stderr, "%s: output %d: size or dtype differs\n", label, i);
    return false;
  }
  if (want->dtype == KL_F64) {
    const double *g = got->data, *w = want->data;
    for (int64_t k = 0; k < want->numel; k++) {
      double err = g[k] > w[k] ? g[k] - w[k] : w[k] - g[k];
      if (!(err <= 1e-9 + 1e-7 * (w[k] < 0 ? -w[k] : w[k])) && g[k] != w[k] &&
          !(g[k] != g[k] && w[k] != w[k])) {
        fprintf(stderr, "%s: output %d element %lld: got %g, want %g\n", label, i,
                (long long)k, g[k], w[k]);
        return false;
      }
    }
    return true;
  }
  if (want->dtype != KL_F32) {
    if (memcmp(got->data, want->data, want->nbytes) == 0)
      return true;
    fprintf(stderr, "%s: output %d (%s) differs\n", label, i, kl_dtype_ir_name(want->dtype));
    return false;
  }
  const float *g = got->data, *w = want->data;
  for (int64_t k = 0; k < want->numel; k++) {
    double err = g[k] > w[k] ? (double)g[k] - w[k] : (double)w[k] - g[k];
    double tol = 1e-5 + 1e-4 * (w[k] < 0 ? -(double)w[k] : (double)w[k]);
    if (g[k] == w[k] || (g[k] != g[k] && w[k] != w[k]))
      continue; /* equal (infinities too), or NaN where the interpreter has NaN */
    if (!(err <= tol)) {
      fprintf(stderr, "%s: output %d element %lld: got %g, want %g\n", label, i, (long long)k,
              (double)g[k], (double)w[k]);
      return false;
    }
  }
  return true;
}

/* Lowers g to an object, links it as lib<name>.so (path in so) and opens it; NULL (with the
 * failed checks counted) when a stage fails. */
static const kl_artifact_descriptor *build(const kl_ir_graph *g, const char *name, char *so,
                                           kl_artifact_handle **out_h) {
  char obj[512];
  snprintf(obj, sizeof obj, "%s/%s.o", tmpdir, name);
  snprintf(so, 512, "%s/lib%s.so", tmpdir, name);
  kl_compile_options o = {.name = name, .opt_level = 3};
  kl_status s = kl_codegen_llvm_object(g, &o, obj);
  if (s && files_mode && kl_status_code_of(s) == KL_ERR_UNSUPPORTED &&
      (strstr(kl_status_message(s), "symbolic shape") ||
       strstr(kl_status_message(s), "does not handle"))) {
    printf("skipped %s: %s\n", name, kl_status_message(s));
    kl_status_destroy(s);
    build_skipped = true;
    *out_h = NULL;
    return NULL;
  }
  if (s)
    fprintf(stderr, "%s: %s\n", name, kl_status_message(s));
  CHECK(s == NULL);
  if (!s) {
    s = kl_codegen_link_shared(obj, &o, so);
    if (s)
      fprintf(stderr, "%s: link: %s\n", name, kl_status_message(s));
    CHECK(s == NULL);
  }
  unlink(obj);
  const kl_artifact_descriptor *d = NULL;
  *out_h = NULL;
  if (!s)
    CHECK_OK(kl_artifact_open(so, out_h, &d));
  kl_status_destroy(s);
  return d;
}

/* The typed API (what the generated header declares) of the same library: create with a
 * thread count, create_with options, run, messages, destroy. */
static void check_typed_api(const char *so, const char *name, const void **in_ptrs,
                            void **out_ptrs, kl_tensor **got, kl_tensor **want, int n_out,
                            const char *label) {
  void *lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  CHECK(lib != NULL);
  if (!lib)
    return;
  char sym[160];
#define TYPED(var, type, suffix)                    \
  snprintf(sym, sizeof sym, "%s%s", name, suffix); \
  type var;                                         \
  *(void **)&var = dlsym(lib, sym);                 \
  CHECK(var != NULL)
  typedef int (*create_fn)(void **, int);
  typedef int (*create_with_fn)(void **, const kl_artifact_options *);
  typedef int (*run_fn)(void *, const void *const *, void *const *);
  typedef void (*destroy_fn)(void *);
  typedef const char *(*error_message_fn)(const void *);
  typedef const char *(*status_message_fn)(int);
  typedef int (*set_threads_fn)(void *, int);
  TYPED(create, create_fn, "_create");
  TYPED(create_with, create_with_fn, "_create_with");
  TYPED(run, run_fn, "_run");
  TYPED(destroy, destroy_fn, "_destroy");
  TYPED(error_message, error_message_fn, "_error_message");
  TYPED(status_message, status_message_fn, "_status_message");
  TYPED(set_threads, set_threads_fn, "_set_threads");
#undef TYPED
  if (create && create_with && run && destroy && error_message && status_message &&
      set_threads) {
    void *ctx = NULL;
    CHECK_EQ_INT(create(NULL, 1), KL_ARTIFACT_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(create(&ctx, -2), KL_ARTIFACT_ERR_INVALID_ARGUMENT);
    CHECK(ctx == NULL);
    CHECK_EQ_INT(create(&ctx, 2), KL_ARTIFACT_OK);
    for (int i = 0; i < n_out; i++)
      memset(got[i]->data, 0xff, got[i]->nbytes);
    CHECK_EQ_INT(run(ctx, in_ptrs, (void *const *)out_ptrs), KL_ARTIFACT_OK);
    for (int i = 0; i < n_out; i++)
      CHECK(want[i] && close_enough(got[i], want[i], label, i));
    CHECK_EQ_INT(set_threads(ctx, 0), KL_ARTIFACT_OK);
    CHECK_STREQ(error_message(ctx), "");
    destroy(ctx);
    kl_artifact_options opts = {sizeof opts, 3, 0, NULL};
    ctx = NULL;
    CHECK_EQ_INT(create_with(&ctx, &opts), KL_ARTIFACT_OK);
    CHECK_EQ_INT(run(ctx, in_ptrs, (void *const *)out_ptrs), KL_ARTIFACT_OK);
    destroy(ctx);
    CHECK_STREQ(status_message(KL_ARTIFACT_OK), "ok");
    CHECK(strstr(status_message(KL_ARTIFACT_ERR_RUNTIME), "runtime") != NULL);
  }
  dlclose(lib);
}

/* Compiles text (after -O<level> graph passes) as model `name`, runs it and compares with the
 * interpreter. Returns the number of fusion groups the optimized graph had (for checks). */
static int run_case(const char *label, const char *name, const char *text, int level) {
  kl_ir_graph *ref = NULL, *opt = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &ref));
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &opt));
  if (!ref || !opt) {
    kl_ir_graph_destroy(ref);
    kl_ir_graph_destroy(opt);
    return -1;
  }
  if (level > 0)
    CHECK_OK(kl_pass_run_level(opt, level, NULL));
  int groups = 0;
  for (const kl_ir_node *n = opt->top->first; n; n = n->next)
    groups += n->op == KL_OP_FUSION_GROUP;

  /* Inputs and the interpreter's outputs. */
  int n_in = ref->top->n_params, n_out = ref->top->n_returns;
  kl_tensor **in = calloc((size_t)n_in + 1, sizeof *in);
  kl_tensor **want = calloc((size_t)n_out + 1, sizeof *want);
  kl_tensor **got = calloc((size_t)n_out + 1, sizeof *got);
  const void **in_ptrs = calloc((size_t)n_in + 1, sizeof *in_ptrs);
  void **out_ptrs = calloc((size_t)n_out + 1, sizeof *out_ptrs);
  for (int i = 0; i < n_in; i++) {
    int64_t shape[KL_MAX_RANK];
    const kl_ir_type *t = &ref->top->params[i]->type;
    kl_ir_type_shape(t, shape);
    CHECK_OK(kl_tensor_create(t->dtype, t->rank, shape, &in[i]));
    if (t->dtype == KL_F32)
      for (int64_t k = 0; k < in[i]->numel; k++)
        ((float *)in[i]->data)[k] = 2.0f * rnd();
    if (t->dtype == KL_BOOL)
      for (int64_t k = 0; k < in[i]->numel; k++)
        ((uint8_t *)in[i]->data)[k] = (uint8_t)((k + bool_fill) & 1);
    if (t->dtype == KL_I64)
      for (int64_t k = 0; k < in[i]->numel; k++)
        ((int64_t *)in[i]->data)[k] = long_fill;
    if (t->dtype == KL_F64)
      for (int64_t k = 0; k < in[i]->numel; k++)
        ((double *)in[i]->data)[k] = 2.0 * rnd();
    in_ptrs[i] = in[i]->data;
  }
  kl_status interp = kl_interp_run(ref, in, n_in, want);
  if (interp && files_mode) { /* a file the interpreter cannot run is not a backend test */
    kl_status_destroy(interp);
    interp = NULL;
    n_out = 0;
    groups = -2;
  }
  CHECK_OK(interp);
  for (int i = 0; i < n_out; i++) {
    int64_t shape[KL_MAX_RANK];
    const kl_ir_type *t = &ref->top->returns[i]->type;
    kl_ir_type_shape(t, shape);
    CHECK_OK(kl_tensor_create(t->dtype, t->rank, shape, &got[i]));
    if (!got[i]) {
      n_out = i;
      groups = -2;
      break;
    }
    out_ptrs[i] = got[i]->data;
  }

  char so[512] = "";
  kl_artifact_handle *h = NULL;
  build_skipped = false;
  const kl_artifact_descriptor *d = groups == -2 ? NULL : build(opt, name, so, &h);
  if (build_skipped)
    groups = -2;
  if (d) {
    CHECK_EQ_INT(d->n_inputs, n_in);
    CHECK_EQ_INT(d->n_outputs, n_out);
    CHECK_STREQ(d->name, name);
    for (int i = 0; i < n_in && i < d->n_inputs; i++)
      CHECK_EQ_INT(d->inputs[i].nbytes, in[i]->nbytes);
    for (int i = 0; i < n_out && i < d->n_outputs; i++) {
      CHECK_EQ_INT(d->outputs[i].nbytes, want[i] ? want[i]->nbytes : 0);
      CHECK_EQ_INT(d->outputs[i].rank, got[i]->rank);
    }
    void *ctx = NULL;
    CHECK_EQ_INT(d->create(NULL, &ctx), KL_ARTIFACT_OK);
    for (int threads = 1; ctx && threads <= 3; threads += 2) {
      CHECK_EQ_INT(d->set_threads(ctx, threads), KL_ARTIFACT_OK);
      for (int i = 0; i < n_out; i++)
        memset(got[i]->data, 0xff, got[i]->nbytes); /* NaN: stale results cannot pass */
      int rc = d->run(ctx, in_ptrs, out_ptrs, 0);
      if (rc)
        fprintf(stderr, "%s: run: %s: %s\n", label, d->status_message(rc),
                d->error_message(ctx));
      CHECK_EQ_INT(rc, KL_ARTIFACT_OK);
      CHECK_STREQ(d->error_message(ctx), "");
      for (int i = 0; i < n_out && !rc; i++)
        CHECK(want[i] && close_enough(got[i], want[i], label, i));
    }
    /* Bad arguments are statuses with messages, not crashes. */
    if (ctx && n_in > 0) {
      const void *saved = in_ptrs[0];
      in_ptrs[0] = NULL;
      CHECK_EQ_INT(d->run(ctx, in_ptrs, out_ptrs, 0), KL_ARTIFACT_ERR_INVALID_ARGUMENT);
      CHECK(strstr(d->error_message(ctx), "is NULL") != NULL);
      in_ptrs[0] = saved;
      CHECK_EQ_INT(d->run(ctx, in_ptrs, out_ptrs, KL_ARTIFACT_RUN_DEVICE_POINTERS),
                   KL_ARTIFACT_ERR_UNSUPPORTED);
    }
    CHECK_EQ_INT(d->set_threads(ctx, -1), KL_ARTIFACT_ERR_INVALID_ARGUMENT);
    d->destroy(ctx);
  }
  if (d)
    check_typed_api(so, name, in_ptrs, out_ptrs, got, want, n_out, label);
  kl_artifact_close(h);
  unlink(so);
  for (int i = 0; i < n_in; i++)
    kl_tensor_release(in[i]);
  for (int i = 0; i < n_out; i++) {
    kl_tensor_release(want[i]);
    kl_tensor_release(got[i]);
  }
  free(in);
  free(want);
  free(got);
  free(in_ptrs);
  free(out_ptrs);
  kl_ir_graph_destroy(ref);
  kl_ir_graph_destroy(opt);
  return groups;
}

/* ---- the cases ------------------------------------------------------------------------------ */

/* ---- conv epilogues ------------------------------------------------------------------------ */

/* The -O3 graph of text: the fusion group holding the (first) conv2d must give the epilogue
 * (nodes taken, act, residual or not; want_nodes 0: none at all); then the graph is compiled and
 * compared with the interpreter. */
static void check_epilogue(const char *label, const char *text, int want_nodes,
                           kl_sgemm_act want_act, bool want_residual) {
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &g));
  if (!g)
    return;
  CHECK_OK(kl_pass_run_level(g, 3, NULL));
  bool seen = false;
  for (const kl_ir_node *gn = g->top->first; gn && !seen; gn = gn->next) {
    if (gn->op != KL_OP_FUSION_GROUP)
      continue;
    const kl_ir_node *nodes[64];
    int n = 0;
    for (const kl_ir_node *m = gn->blocks[0]->first; m && n < 64; m = m->next)
      nodes[n++] = m;
    for (int i = 0; i < n && !seen; i++) {
      if (nodes[i]->op != KL_OP_CONV2D)
        continue;
      seen = true;
      kl_llvm_conv_epilogue e;
      bool got = kl_llvm_match_conv_epilogue(nodes, n, i, &e);
      if (got != (want_nodes > 0) || (got && (e.n_nodes != want_nodes || e.act != want_act ||
                                               (e.residual != NULL) != want_residual))) {
        fprintf(stderr, "%s: epilogue %s (%d nodes, act %d, residual %d), expected %d nodes, "
                "act %d, residual %d\n", label, got ? "found" : "not found", got ? e.n_nodes : 0,
                got ? (int)e.act : 0, got && e.residual, want_nodes, (int)want_act,
                want_residual);
        CHECK(false);
      }
    }
  }
  if (want_nodes > 0)
    CHECK(seen);
  kl_ir_graph_destroy(g);
  run_case(label, "epi", text, 3);
}

static void test_conv_epilogues(void) {
  sbuf b = {0};
  /* Winograd-sized 3x3 (8 -> 8 channels, 15x15), a residual input, then relu */
  put(&b, "graph(%%x : Float(1, 8, 15, 15), %%r : Float(1, 8, 15, 15)):\n");
  put_const(&b, "w", "8, 8, 3, 3", 576, 0.3f, 0.0f);
  put_const(&b, "cb", "8", 8, 0.1f, 0.0f);
  put(&b, "  %%c : Float(1, 8, 15, 15) = aten::conv2d[padding=[1, 1]](%%x, %%w, %%cb)\n"
          "  %%a : Float(1, 8, 15, 15) = aten::add(%%r, %%c)\n"
          "  %%y : Float(1, 8, 15, 15) = aten::relu(%%a)\n"
          "  return (%%y)\n");
  check_epilogue("winograd + residual + relu", b.s, 2, KL_SGEMM_ACT_CLAMP, true);
  b.n = 0;
  /* a pointwise GEMM conv, relu6 */
  put(&b, "graph(%%x : Float(1, 8, 7, 9)):\n");
  put_const(&b, "w", "12, 8, 1, 1", 96, 0.5f, 0.0f);
  put(&b, "  %%c : Float(1, 12, 7, 9) = aten::conv2d(%%x, %%w)\n"
          "  %%y : Float(1, 12, 7, 9) = aten::relu6(%%c)\n"
          "  return (%%y)\n");
  check_epilogue("pointwise + relu6", b.s, 1, KL_SGEMM_ACT_CLAMP, false);
  b.n = 0;
  /* a strided depthwise conv, x * sigmoid(x) with the operands swapped */
  put(&b, "graph(%%x : Float(2, 6, 9, 11)):\n");
  put_const(&b, "w", "6, 1, 3, 3", 54, 0.5f, 0.0f);
  put_const(&b, "cb", "6", 6, 0.1f, 0.0f);
  put(&b, "  %%c : Float(2, 6, 5, 6) = aten::conv2d[stride=[2, 2], padding=[1, 1], groups=6]"
          "(%%x, %%w, %%cb)\n"
          "  %%s : Float(2, 6, 5, 6) = aten::sigmoid(%%c)\n"
          "  %%y : Float(2, 6, 5, 6) = aten::mul(%%s, %%c)\n"
          "  return (%%y)\n");
  check_epilogue("depthwise + silu", b.s, 2, KL_SGEMM_ACT_SILU, false);
  b.n = 0;
  /* a strided 3x3 GEMM conv plus a residual computed before it, no activation after */
  put(&b, "graph(%%x : Float(1, 3, 9, 9), %%r : Float(1, 5, 4, 4)):\n");
  put_const(&b, "w", "5, 3, 3, 3", 135, 0.4f, 0.0f);
  put(&b, "  %%q : Float(1, 5, 4, 4) = aten::tanh(%%r)\n"
          "  %%c : Float(1, 5, 4, 4) = aten::conv2d[stride=[2, 2]](%%x, %%w)\n"
          "  %%y : Float(1, 5, 4, 4) = aten::add(%%c, %%q)\n"
          "  return (%%y)\n");
  check_epilogue("strided + residual", b.s, 1, KL_SGEMM_ACT_NONE, true);
  b.n = 0;
  /* aten::silu on a grouped conv (2 channels a group) */
  put(&b, "graph(%%x : Float(1, 4, 6, 7)):\n");
  put_const(&b, "w", "4, 2, 3, 3", 72, 0.4f, 0.0f);
  put(&b, "  %%c : Float(1, 4, 4, 5) = aten::conv2d[groups=2](%%x, %%w)\n"
          "  %%y : Float(1, 4, 4, 5) = aten::silu(%%c)\n"
          "  return (%%y)\n");
  check_epilogue("grouped + silu", b.s, 1, KL_SGEMM_ACT_SILU, false);
  b.n = 0;
  /* few taps on rows of 16+ outputs (the input read in the micro-kernel): residual, relu */
  put(&b, "graph(%%x : Float(1, 3, 12, 37), %%r : Float(1, 7, 6, 19)):\n");
  put_const(&b, "w", "7, 3, 3, 3", 189, 0.4f, 0.0f);
  put(&b, "  %%c : Float(1, 7, 6, 19) = aten::conv2d[stride=[2, 2], padding=[1, 1]](%%x, %%w)\n"
          "  %%a : Float(1, 7, 6, 19) = aten::add(%%c, %%r)\n"
          "  %%y : Float(1, 7, 6, 19) = aten::relu(%%a)\n"
          "  return (%%y)\n");
  check_epilogue("few taps + residual + relu", b.s, 2, KL_SGEMM_ACT_CLAMP, true);
  b.n = 0;
  /* depthwise, planes wider than a vector (padded copy) and narrower (read in place), each
   * with a residual and relu6 */
  const int widths[] = {37, 13};
  for (int i = 0; i < 2; i++) {
    int wd = widths[i];
    put(&b, "graph(%%x : Float(1, 5, 6, %d), %%r : Float(1, 5, 6, %d)):\n", wd, wd);
    put_const(&b, "w", "5, 1, 3, 3", 45, 0.5f, 0.0f);
    put(&b, "  %%c : Float(1, 5, 6, %d) = aten::conv2d[padding=[1, 1], groups=5](%%x, %%w)\n"
            "  %%a : Float(1, 5, 6, %d) = aten::add(%%r, %%c)\n"
            "  %%y : Float(1, 5, 6, %d) = aten::relu6(%%a)\n"
            "  return (%%y)\n", wd, wd, wd);
    check_epilogue(i ? "narrow depthwise + residual + relu6" : "depthwise + residual + relu6",
                   b.s, 2, KL_SGEMM_ACT_CLAMP, true);
    b.n = 0;
  }
  /* the conv's output is returned too: nothing is taken */
  put(&b, "graph(%%x : Float(1, 3, 8, 8)):\n");
  put_const(&b, "w", "4, 3, 3, 3", 108, 0.4f, 0.0f);
  put(&b, "  %%c : Float(1, 4, 6, 6) = aten::conv2d(%%x, %%w)\n"
          "  %%y : Float(1, 4, 6, 6) = aten::relu(%%c)\n"
          "  return (%%y, %%c)\n");
  check_epilogue("conv output used twice", b.s, 0, KL_SGEMM_ACT_NONE, false);
  b.n = 0;
  /* a broadcast add is not a residual; the clamp after it stays a region too */
  put(&b, "graph(%%x : Float(1, 3, 8, 8), %%r : Float(1, 4, 1, 1)):\n");
  put_const(&b, "w", "4, 3, 3, 3", 108, 0.4f, 0.0f);
  put(&b, "  %%c : Float(1, 4, 6, 6) = aten::conv2d(%%x, %%w)\n"
          "  %%a : Float(1, 4, 6, 6) = aten::add(%%c, %%r)\n"
          "  %%y : Float(1, 4, 6, 6) = aten::clamp[min=-0.5, max=0.5](%%a)\n"
          "  return (%%y)\n");
  check_epilogue("broadcast add", b.s, 0, KL_SGEMM_ACT_NONE, false);
  free(b.s);
}

static void test_mlp(void) {
  sbuf b = {0};
  put(&b, "graph(%%x : Float(6, 8)):\n");
  put_const(&b, "w1", "16, 8", 128, 0.5f, 0.0f);
  put_const(&b, "b1", "16", 16, 0.1f, 0.0f);
  put_const(&b, "w2", "3, 16", 48, 0.5f, 0.0f);
  put_const(&b, "b2", "3", 3, 0.1f, 0.0f);
  put(&b, "  %%h : Float(6, 16) = aten::linear(%%x, %%w1, %%b1)\n"
          "  %%r : Float(6, 16) = aten::relu(%%h)\n"
          "  %%y : Float(6, 3) = aten::linear(%%r, %%w2, %%b2)\n"
          "  return (%%y)\n");
  run_case("mlp -O0", "mlp0", b.s, 0);
  run_case("mlp -O3", "mlp3", b.s, 3);
  free(b.s);
}

static void test_conv_bn_relu(void) {
  sbuf b = {0};
  put(&b, "graph(%%x : Float(2, 3, 9, 9)):\n");
  put_const(&b, "w", "4, 3, 3, 3", 108, 0.4f, 0.0f);
  put_const(&b, "cb", "4", 4, 0.1f, 0.0f);
  put_const(&b, "gamma", "4", 4, 0.3f, 1.0f);
  put_const(&b, "beta", "4", 4, 0.2f, 0.0f);
  put_const(&b, "mean", "4", 4, 0.1f, 0.0f);
  put_const(&b, "var", "4", 4, 0.2f, 1.0f);
  put(&b, "  %%c : Float(2, 4, 9, 9) = aten::conv2d[padding=[1, 1]](%%x, %%w, %%cb)\n"
          "  %%n : Float(2, 4, 9, 9) = aten::batch_norm[eps=1e-05](%%c, %%gamma, %%beta, "
          "%%mean, %%var)\n"
          "  %%r : Float(2, 4, 9, 9) = aten::relu(%%n)\n"
          "  %%s : Float(2, 4, 9, 9) = aten::sigmoid(%%r)\n"
          "  %%y : Float(2, 4, 9, 9) = aten::mul(%%r, %%s)\n"
          "  return (%%y, %%r)\n");
  run_case("conv-bn-relu -O0", "cbr0", b.s, 0);
  int groups = run_case("conv-bn-relu -O3", "cbr3", b.s, 3);
  CHECK(groups >= 1); /* the -O3 graph really has fusion groups */
  free(b.s);
}

static void test_elementwise_broadcast(void) {
  sbuf b = {0};
  put(&b, "graph(%%x : Float(4, 1, 37), %%z : Float(5, 37), %%u : Float(1)):\n");
  put_const(&b, "k", "37", 37, 1.0f, 0.0f);
  put(&b, "  %%a : Float(4, 1, 37) = aten::add(%%x, %%k)\n"
          "  %%m : Float(4, 5, 37) = aten::mul(%%a, %%z)\n"
          "  %%t : Float(4, 5, 37) = aten::tanh(%%m)\n"
          "  %%e : Float(4, 5, 37) = aten::exp(%%t)\n"
          "  %%v : Float(4, 5, 37) = aten::sub(%%e, %%u)\n"
          "  %%w : Float(4, 5, 37) = aten::sigmoid(%%v)\n"
          "  return (%%w, %%a, %%x, %%w)\n");
  run_case("elementwise -O0", "ew0", b.s, 0);
  run_case("elementwise -O3", "ew3", b.s, 3);
  free(b.s);
}

static void test_softmax_layernorm(void) {
  sbuf b = {0};
  put(&b, "graph(%%x : Float(3, 7, 10)):\n");
  put_const(&b, "g", "10", 10, 0.2f, 1.0f);
  put_const(&b, "bb", "10", 10, 0.2f, 0.0f);
  put(&b, "  %%l : Float(3, 7, 10) = aten::layer_norm[normalized_shape=[10], eps=1e-05](%%x, "
          "%%g, %%bb)\n"
          "  %%r : Float(3, 7, 10) = aten::relu(%%l)\n"
          "  %%s : Float(3, 7, 10) = aten::softmax[dim=2](%%r)\n"
          "  %%y : Float(3, 7, 10) = aten::add(%%s, %%x)\n"
          "  return (%%y)\n");
  run_case("softmax-layernorm -O0", "sl0", b.s, 0);
  run_case("softmax-layernorm -O3", "sl3", b.s, 3);
  free(b.s);
}

/* prim::If with fusion groups inside and around it, both ways (Bool inputs alternate). */
static void test_if(void) {
  const char *text = "graph(%c : Bool(), %x : Float(3, 40)):\n"
                     "  %a : Float(3, 40) = aten::neg(%x)\n"
                     "  %b : Float(3, 40) = aten::abs(%a)\n"
                     "  %y : Float(3, 40) = prim::If(%c)\n"
                     "    block0():\n"
                     "      %t1 : Float(3, 40) = aten::relu(%x)\n"
                     "      %t2 : Float(3, 40) = aten::exp(%t1)\n"
                     "      %t3 : Float(3, 40) = aten::add(%t2, %b)\n"
                     "      %s : Float(3, 40) = aten::softmax[dim=1](%t3)\n"
                     "      -> (%s)\n"
                     "    block1():\n"
                     "      -> (%b)\n"
                     "  %z : Float(3, 40) = aten::sigmoid(%y)\n"
                     "  %w : Float(3, 40) = aten::mul(%z, %b)\n"
                     "  return (%w, %y)\n";
  for (bool_fill = 0; bool_fill < 2; bool_fill++) {
    char name[16];
    snprintf(name, sizeof name, "if%d_0", bool_fill);
    run_case(bool_fill ? "if (true) -O0" : "if (false) -O0", name, text, 0);
    snprintf(name, sizeof name, "if%d_3", bool_fill);
    run_case(bool_fill ? "if (true) -O3" : "if (false) -O3", name, text, 3);
  }
  bool_fill = 0;
}

/* prim::Loop: a counted accumulation with an early exit, and carried values swapped each
 * iteration (through temporaries), for several trip counts. */
static void test_loop(void) {
  const char *text = "graph(%n : Long(), %x : Float(4, 33), %y : Float(4, 33)):\n"
                     "  %true : Bool() = prim::Constant[value=Bool(){true}]()\n"
                     "  %lim : Long() = prim::Constant[value=Long(){3}]()\n"
                     "  %acc : Float(4, 33), %p : Float(4, 33), %q : Float(4, 33) = "
                     "prim::Loop(%n, %true, %x, %x, %y)\n"
                     "    block0(%i : Long(), %cur : Float(4, 33), %a : Float(4, 33), "
                     "%b : Float(4, 33)):\n"
                     "      %e : Float(4, 33) = aten::sigmoid(%cur)\n"
                     "      %next : Float(4, 33) = aten::add(%e, %a)\n"
                     "      %go : Bool() = aten::lt(%i, %lim)\n"
                     "      -> (%go, %next, %b, %a)\n"
                     "  %r : Float(4, 33) = aten::mul(%acc, %p)\n"
                     "  return (%r, %q)\n";
  int64_t trips[3] = {0, 3, 7};
  for (int k = 0; k < 3; k++) {
    long_fill = trips[k];
    char name[16], label[64];
    for (int level = 0; level <= 3; level += 3) {
      snprintf(name, sizeof name, "loop%d_%d", k, level);
      snprintf(label, sizeof label, "loop n=%lld -O%d", (long long)trips[k], level);
      run_case(label, name, text, level);
    }
  }
  long_fill = 0;
}

/* Many rows: regions split across the pool (the 3-thread run takes several chunks). */
static void test_large_region(void) {
  const char *text = "graph(%x : Float(512, 256), %y : Float(256)):\n"
                     "  %a : Float(512, 256) = aten::mul(%x, %y)\n"
                     "  %b : Float(512, 256) = aten::relu(%a)\n"
                     "  %c : Float(512, 256) = aten::add(%b, %x)\n"
                     "  return (%c)\n";
  run_case("large region -O3", "big3", text, 3);
}

/* A data-dependent failure inside a step: an index out of range is KL_ARTIFACT_ERR_RUNTIME
 * with a message naming the node, and the context keeps working afterwards. */
static void test_runtime_error(void) {
  const char *text = "graph(%i : Long(2)):\n"
                     "  %w : Float(5, 3) = prim::Constant[value=Float(5, 3){1, 2, 3, 4, 5, 6, 7, "
                     "8, 9, 10, 11, 12, 13, 14, 15}]()\n"
                     "  %y : Float(2, 3) = aten::index_select[dim=0](%w, %i)\n"
                     "  return (%y)\n";
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &g));
  if (!g)
    return;
  char so[512];
  kl_artifact_handle *h = NULL;
  const kl_artifact_descriptor *d = build(g, "rterr", so, &h);
  if (d) {
    void *ctx = NULL;
    CHECK_EQ_INT(d->create(NULL, &ctx), KL_ARTIFACT_OK);
    int64_t idx[2] = {4, 9};
    float out[6] = {0};
    const void *in[1] = {idx};
    void *outs[1] = {out};
    CHECK_EQ_INT(d->run(ctx, in, outs, 0), KL_ARTIFACT_ERR_RUNTIME);
    CHECK(strstr(d->error_message(ctx), "node 1 (aten::index_select)") != NULL);
    idx[1] = 1;
    CHECK_EQ_INT(d->run(ctx, in, outs, 0), KL_ARTIFACT_OK);
    CHECK_STREQ(d->error_message(ctx), "");
    CHECK(out[0] == 13.0f && out[3] == 4.0f && out[5] == 6.0f);
    d->destroy(ctx);
  }
  kl_artifact_close(h);
  unlink(so);
  kl_ir_graph_destroy(g);
}

/* ---- objects and errors ------------------------------------------------------------------ */

static const char *small_graph = "graph(%x : Float(2, 3)):\n"
                                 "  %y : Float(2, 3) = aten::relu(%x)\n"
                                 "  return (%y)\n";

static void test_aarch64_object(void) {
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_ir_parse(small_graph, strlen(small_graph), NULL, &g));
  if (!g)
    return;
  char obj[512], ll[512];
  snprintf(obj, sizeof obj, "%s/arm.o", tmpdir);
  snprintf(ll, sizeof ll, "%s/arm.ll", tmpdir);
  kl_compile_options o = {.name = "arm", .triple = "aarch64-linux-gnu", .opt_level = 2,
                          .emit_llvm_path = ll};
  CHECK_OK(kl_codegen_llvm_object(g, &o, obj));
  unsigned char head[20] = {0};
  FILE *f = fopen(obj, "rb");
  CHECK(f != NULL);
  if (f) {
    CHECK_EQ_INT(fread(head, 1, sizeof head, f), sizeof head);
    fclose(f);
  }
  CHECK(memcmp(head, "\177ELF", 4) == 0);
  CHECK_EQ_INT(head[18] | (head[19] << 8), EM_AARCH64_); /* e_machine, little-endian */
  kl_artifact_file_info info;
  CHECK_OK(kl_artifact_peek(obj, &info));
  CHECK_STREQ(info.symbol, "kiln_model_arm");
  CHECK_EQ_INT(info.n_inputs, 1);
  CHECK_EQ_INT(info.n_outputs, 1);
  /* The .ll was written and names no model value. */
  f = fopen(ll, "r");
  CHECK(f != NULL);
  if (f) {
    char line[4096];
    bool has_triple = false;
    while (fgets(line, sizeof line, f))
      has_triple |= strstr(line, "target triple = \"aarch64") != NULL;
    fclose(f);
    CHECK(has_triple);
  }
  unlink(obj);
  unlink(ll);
  kl_ir_graph_destroy(g);
}

/* kl_codegen_llvm_ir: the module as text, no file written; errors as for an object. */
static void test_llvm_ir_text(void) {
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_ir_parse(small_graph, strlen(small_graph), NULL, &g));
  if (!g)
    return;
  kl_compile_options o = {.name = "txt", .triple = "x86_64-linux-gnu", .cpu = "x86-64"};
  char *text = NULL;
  size_t len = 0;
  CHECK_OK(kl_codegen_llvm_ir(g, &o, &text, &len));
  CHECK(text != NULL && strlen(text) == len);
  CHECK(text && strstr(text, "target triple = \"x86_64") != NULL);
  CHECK(text && strstr(text, "define i32 @txt_run(") != NULL);
  CHECK(text && strstr(text, "@kiln_model_txt") != NULL);
  free(text);
  CHECK_OK(kl_codegen_llvm_ir(g, &o, NULL, NULL)); /* status only */
  kl_compile_options bad_level = {.name = "txt", .opt_level = 4};
  text = (char *)"untouched";
  kl_status s = kl_codegen_llvm_ir(g, &bad_level, &text, &len);
  CHECK_EQ_INT(kl_status_code_of(s), KL_ERR_INVALID_ARGUMENT);
  CHECK(text == NULL && len == 0);
  kl_status_destroy(s);
  kl_ir_graph_destroy(g);
}

static void expect_error(const char *text, const kl_compile_options *o, kl_status_code code,
                         const char *substr) {
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &g));
  if (!g)
    return;
  char obj[512];
  snprintf(obj, sizeof obj, "%s/err.o", tmpdir);
  kl_status s = kl_codegen_llvm_object(g, o, obj);
  CHECK(s != NULL);
  CHECK_EQ_INT(kl_status_code_of(s), code);
  if (s && !strstr(kl_status_message(s), substr)) {
    fprintf(stderr, "message \"%s\" lacks \"%s\"\n", kl_status_message(s), substr);
    CHECK(false);
  }
  kl_status_destroy(s);
  unlink(obj);
  kl_ir_graph_destroy(g);
}

static void test_errors(void) {
  kl_compile_options o = {.name = "bad", .opt_level = 1};
  expect_error("graph<N=1..8>(%x : Float(N, 3)):\n"
               "  %y : Float(N, 3) = aten::relu(%x)\n"
               "  return (%y)\n",
               &o, KL_ERR_UNSUPPORTED, "%x has a symbolic shape");
expect_error("graph(%x : Float(3)):\n"
               "  %w : Float(3) = prim::Param[name=\"w\"]()\n"
               "  %y : Float(3) = aten::add(%x, %w)\n"
               "  return (%y)\n",
               &o, KL_ERR_NOT_FOUND, "parameter \"w\" (%w) has no value");
  kl_compile_options bad_name = {.name = "kl_bad", .opt_level = 1};
  expect_error(small_graph, &bad_name, KL_ERR_INVALID_ARGUMENT, "kl_bad");
  kl_compile_options bad_triple = {.name = "t", .triple = "nonsense-cpu-none"};
  expect_error(small_graph, &bad_triple, KL_ERR_UNSUPPORTED, "nonsense-cpu-none");
  kl_compile_options bad_level = {.name = "t", .opt_level = 7};
  expect_error(small_graph, &bad_level, KL_ERR_INVALID_ARGUMENT, "optimization level 7");
}

/* Every given text-IR file with static shapes and no loop, at -O3. Files the
 * backend refuses for those reasons are counted as skipped; any other failure fails. */
static void test_files(int n, char **paths) {
  int ran = 0, skipped = 0;
  for (int i = 0; i < n; i++) {
    FILE *f = fopen(paths[i], "rb");
    CHECK(f != NULL);
    if (!f)
      continue;
    sbuf b = {0};
    char chunk[4096];
    size_t k;
    put(&b, "%s", "");
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
      put(&b, "%.*s", (int)k, chunk);
    fclose(f);
    kl_ir_graph *g = NULL;
    kl_status s = kl_ir_parse(b.s, b.n, NULL, &g);
    bool usable = !s;
    for (const kl_ir_node *nd = g ? g->top->first : NULL; nd && usable; nd = nd->next)
      usable = nd->op != KL_OP_LOOP;
    for (int p = 0; g && usable && p < g->top->n_params; p++)
      usable = kl_ir_type_is_static(&g->top->params[p]->type);
    kl_status_destroy(s);
    kl_ir_graph_destroy(g);
    if (!usable) {
      skipped++;
      free(b.s);
      continue;
    }
    for (int level = 3; level <= 3; level++) { /* -O3: fusion groups; -O0 is in main's cases */
      char label[600], name[32];
      snprintf(label, sizeof label, "%s -O%d", paths[i], level);
      snprintf(name, sizeof name, "file%d_%d", i, level);
      if (run_case(label, name, b.s, level) == -2)
        skipped++;
      else
        ran++;
    }
    free(b.s);
  }
  printf("%d files compiled and compared, %d skipped (parse error, symbols, not runnable)\n", ran,
         skipped);
  CHECK(ran > 0);
}

int main(int argc, char **argv) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/kiln-codegen-XXXXXX", base && base[0] ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  if (argc > 1) {
    files_mode = true;
    test_files(argc - 1, argv + 1);
    rmdir(tmpdir);
    return check_finish();
  }
  test_errors();
  test_aarch64_object();
  test_llvm_ir_text();
  test_mlp();
  test_conv_bn_relu();
  test_conv_epilogues();
  test_elementwise_broadcast();
  test_softmax_layernorm();
  test_large_region();
  test_if();
  test_loop();
  test_runtime_error();
  rmdir(tmpdir);
  return check_finish();
}
