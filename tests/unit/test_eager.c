/* Tests of the eager API (frontend/eager.c, frontend/eager_ops.c): tensor lifetimes and scopes,
 * the creation functions and the generator, every op against the interpreter running the same
 * op written as text IR (so each option-to-attribute mapping is checked against attributes
 * spelled by hand) plus hand-computed values, error reports, warnings, threads and kl_print. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "frontend/frontend_internal.h"
#include "ir/text.h"
#include "runtime/interp.h"

/* ---- helpers ------------------------------------------------------------------------- */

/* A scoped tensor whose element i is scale * sin(0.7 i + phase) (+ offset), so values are
 * distinct, mixed in sign unless offset moves them, and differ between inputs. */
static kl_tensor *wave(kl_dtype dtype, int rank, const int64_t *shape, double phase, double scale,
                       double offset) {
  kl_tensor *t = kl_zeros(dtype, rank, shape);
  for (int64_t i = 0; t && i < t->numel; i++)
    kl_dtype_store_f64(dtype, t->data, (size_t)i, offset + scale * sin(0.7 * (double)i + phase));
  return t;
}

static kl_tensor *longs(int rank, const int64_t *shape, const int64_t *values) {
  return kl_from_buffer(KL_I64, rank, shape, values);
}

static double at(const kl_tensor *t, int64_t i) {
  return kl_dtype_load_f64(t->dtype, t->data, (size_t)i);
}

/* Runs "%y = BODY" with inputs %a, %b, ... of the given tensors' types through the
 * interpreter and checks that eager (computed by the eager op) is the same tensor bit for bit:
 * both use the reference kernel, so any difference is a difference in the node built. */
static void check_vs_ir(int line, const char *body, kl_tensor *eager, int n,
                        kl_tensor *const *inputs) {
  check_count++;
  char text[2048];
  size_t len = (size_t)snprintf(text, sizeof text, "graph(");
  for (int i = 0; i < n; i++) {
    char type[256];
    kl_ir_type tt = kl_ir_type_of_tensor(inputs[i]);
    kl_ir_type_format(NULL, &tt, type, sizeof type);
    len += (size_t)snprintf(text + len, sizeof text - len, "%s%%%c : %s", i ? ", " : "", 'a' + i,
                            type);
  }
  snprintf(text + len, sizeof text - len, "):\n  %%y = %s\n  return (%%y)\n", body);
  kl_ir_graph *g = NULL;
  kl_status s = kl_ir_parse(text, strlen(text), NULL, &g);
  kl_tensor *want = NULL;
  if (!s)
    s = kl_interp_run(g, inputs, n, &want);
  const char *problem = NULL;
  if (s)
    problem = kl_status_message(s);
  else if (!eager)
    problem = "the eager op returned NULL";
  else if (eager->dtype != want->dtype || !kl_tensor_same_shape(eager, want))
    problem = "dtype or shape differ";
  else if (eager->nbytes && memcmp(eager->data, want->data, eager->nbytes) != 0)
    problem = "values differ";
  if (problem) {
    fprintf(stderr, "%s:%d: eager op differs from %s: %s\n", __FILE__, line, body, problem);
    if (eager && kl_last_error())
      fprintf(stderr, "  last error: %s\n", kl_status_message(kl_last_error()));
    check_failures++;
  }
  kl_status_destroy(s);
  kl_tensor_release(want);
  kl_ir_graph_destroy(g);
}

#define VS_IR(body, eager, ...)                                                            \
  do {                                                                                     \
    kl_tensor *vs_in_[] = {__VA_ARGS__};                                                   \
    check_vs_ir(__LINE__, (body), (eager), (int)(sizeof vs_in_ / sizeof vs_in_[0]), vs_in_); \
  } while (0)

/* An error handler that counts calls and keeps the messages (the first 32 and the last). */
typedef struct error_log {
  int calls;
  char last[1024];
  char all[32][512];
} error_log;

static void log_error(void *ctx, kl_status error) {
  error_log *log = ctx;
  if (log->calls < 32)
    snprintf(log->all[log->calls], sizeof log->all[0], "%s", kl_status_message(error));
  log->calls++;
  snprintf(log->last, sizeof log->last, "%s", kl_status_message(error));
}

/* Everything kl_print writes to stdout, captured through a temporary file. */
static void capture_print(const kl_tensor *t, char *buf, size_t size) {
  buf[0] = '\0';
  fflush(stdout);
  FILE *tmp = tmpfile();
  int saved = dup(1);
  if (!tmp || saved < 0)
    return;
  dup2(fileno(tmp), 1);
  kl_print(t);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  rewind(tmp);
  size_t n = fread(buf, 1, size - 1, tmp);
  buf[n] = '\0';
  fclose(tmp);
}

/* ---- lifetimes ----------------------------------------------------------------------- */

static void test_scopes(void) {
  /* A scope releases what was created in it. */
  kl_scope_begin();
  kl_tensor *a = kl_ones(KL_F32, KL_SHAPE(2, 2));
  kl_tensor *b = kl_relu(a);
  CHECK_EQ_INT(a->refcount, 1);
  CHECK_EQ_INT(b->refcount, 1);
  kl_tensor_retain(a); /* watch it survive the scope's release */
  kl_tensor_retain(b);
  kl_scope_end();
  CHECK_EQ_INT(a->refcount, 1);
  CHECK_EQ_INT(b->refcount, 1);
  kl_tensor_release(a);
  kl_tensor_release(b);

  /* kl_keep takes a tensor out of the scope: the caller's reference is the only one. */
  kl_scope_begin();
  kl_tensor *kept = kl_keep(kl_add(kl_ones(KL_F32, KL_SHAPE(3)), kl_ones(KL_F32, KL_SHAPE(3))));
  kl_scope_end();
  CHECK(kept != NULL);
  CHECK_EQ_INT(kept->refcount, 1);
  CHECK(at(kept, 2) == 2.0);
  kl_tensor_release(kept);

  /* Nested scopes: the inner one releases only its own tensors. */
  kl_scope_begin();
  kl_tensor *outer = kl_ones(KL_F32, KL_SHAPE(2));
  kl_tensor_retain(outer);
  kl_scope_begin();
  kl_tensor *inner = kl_neg(outer);
  kl_tensor_retain(inner);
  CHECK_EQ_INT(outer->refcount, 2);
  /* outer is not in the innermost scope: kl_keep retains it for the caller. */
  kl_tensor *outer_kept = kl_keep(outer);
  CHECK(outer_kept == outer);
  CHECK_EQ_INT(outer->refcount, 3);
  kl_scope_end();
  CHECK_EQ_INT(inner->refcount, 1); /* the inner scope let go */
  CHECK_EQ_INT(outer->refcount, 3); /* the outer scope still holds it */
  kl_scope_end();
  CHECK_EQ_INT(outer->refcount, 2);
  kl_tensor_release(outer_kept);
  kl_tensor_release(outer);
  kl_tensor_release(inner);

  /* Keeping a tensor twice: the second keep finds it gone from the scope and retains. */
  kl_scope_begin();
  kl_tensor *twice = kl_zeros(KL_F32, KL_SHAPE(1));
  kl_keep(twice);
  kl_keep(twice);
  CHECK_EQ_INT(twice->refcount, 2);
  kl_scope_end();
  CHECK_EQ_INT(twice->refcount, 2);
  kl_tensor_release(twice);
  kl_tensor_release(twice);

  /* With no scope open the caller owns the reference; kl_keep does not add one. */
  kl_tensor *zeros = kl_zeros(KL_F32, KL_SHAPE(2));
  CHECK(kl_keep(zeros) == zeros);
  CHECK_EQ_INT(zeros->refcount, 1);
  kl_tensor *free_standing = kl_sigmoid(zeros);
  kl_tensor_release(zeros);
  CHECK(free_standing != NULL);
  CHECK_EQ_INT(free_standing->refcount, 1);
  CHECK(kl_keep(free_standing) == free_standing);
  CHECK_EQ_INT(free_standing->refcount, 1);
  CHECK(at(free_standing, 0) == 0.5);
  kl_tensor_release(free_standing);
  CHECK(kl_keep(NULL) == NULL);

  /* A scope holding many tensors (grows its list) and many nested scopes (grows the stack). */
  for (int depth = 0; depth < 20; depth++)
    kl_scope_begin();
  kl_tensor *last = NULL;
  for (int i = 0; i < 100; i++)
    last = kl_full(KL_F32, KL_SHAPE(2), i);
  CHECK(last && at(last, 1) == 99.0);
  for (int depth = 0; depth < 20; depth++)
    kl_scope_end();
  CHECK(kl_last_error() == NULL);

  /* An unbalanced kl_scope_end is an error, not a crash. */
  error_log log = {0};
  kl_set_error_handler(log_error, &log);
  kl_scope_end();
  kl_set_error_handler(NULL, NULL);
  CHECK_EQ_INT(log.calls, 1);
  CHECK(strstr(log.last, "kl_scope_end") != NULL);
  CHECK(strstr(log.last, "no scope is open") != NULL);
  CHECK(kl_last_error() != NULL);
  kl_clear_error();
  CHECK(kl_last_error() == NULL);
}

/* ---- creating tensors ---------------------------------------------------------------- */

static void test_creation(void) {
  kl_scope_begin();
  float buf[6] = {1, 2, 3, 4, 5, 6};
  kl_tensor *copy = kl_from_buffer(KL_F32, KL_SHAPE(2, 3), buf);
  kl_tensor *borrowed = kl_from_buffer_borrowed(KL_F32, KL_SHAPE(2, 3), buf);
  CHECK(copy && borrowed);
  CHECK(copy->data != (void *)buf);
  CHECK(borrowed->data == (void *)buf);
  CHECK(!borrowed->owns_data);
  buf[0] = 100;
  CHECK(at(copy, 0) == 1.0);
  CHECK(at(borrowed, 0) == 100.0);
  CHECK_EQ_INT(copy->rank, 2);
  CHECK_EQ_INT(copy->shape[1], 3);

  kl_tensor *z = kl_zeros(KL_I32, KL_SHAPE(4));
  kl_tensor *o = kl_ones(KL_F16, KL_SHAPE(2, 2));
  kl_tensor *f = kl_full(KL_I64, KL_SHAPE(3), -7.9);
  kl_tensor *bools = kl_full(KL_BOOL, KL_SHAPE(2), 0.5);
  kl_tensor *s = kl_scalar(KL_F64, 2.5);
  CHECK(z && o && f && bools && s);
  CHECK(z->dtype == KL_I32 && at(z, 3) == 0.0);
  CHECK(o->dtype == KL_F16 && at(o, 3) == 1.0);
  CHECK(f->dtype == KL_I64 && kl_dtype_load_i64(KL_I64, f->data, 2) == -7); /* C cast */
  CHECK(kl_dtype_load_i64(KL_BOOL, bools->data, 1) == 1);
  CHECK_EQ_INT(s->rank, 0);
  CHECK_EQ_INT(s->numel, 1);
  CHECK(kl_item(s) == 2.5);

  /* arange: length ceil((end - start) / step), empty when the step points away from end. */
  struct {
    double start, end, step;
    int64_t len;
    double last;
  } ranges[] = {
      {0, 5, 1, 5, 4},      {0, 5, 2, 3, 4},       {5, 0, -1, 5, 1}, {0, 1, 0.3, 4, 0.9},
      {0, 0, 1, 0, 0},      {3, 0, 1, 0, 0},       {0, 3, -1, 0, 0}, {-1, 1, 0.5, 4, 0.5},
      {1, 2.0001, 1, 2, 2},
  };
  for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
    kl_tensor *r = kl_arange(KL_F64, ranges[i].start, ranges[i].end, ranges[i].step);
    CHECK(r != NULL);
    if (!r)
      continue;
    CHECK_EQ_INT(r->rank, 1);
    CHECK_EQ_INT(r->numel, ranges[i].len);
    if (r->numel)
      CHECK(fabs(at(r, r->numel - 1) - ranges[i].last) < 1e-12);
  }
  kl_tensor *ints = kl_arange(KL_I64, 2, 8, 3);
  CHECK(ints && ints->numel == 2 && kl_dtype_load_i64(KL_I64, ints->data, 1) == 5);

  error_log log = {0};
  kl_set_error_handler(log_error, &log);
  CHECK(kl_arange(KL_F32, 0, 1, 0) == NULL);
  CHECK(strstr(log.last, "kl_arange") && strstr(log.last, "step is 0"));
  CHECK(kl_arange(KL_F32, 0, INFINITY, 1) == NULL);
  CHECK(strstr(log.last, "finite"));
  CHECK(kl_arange(KL_F32, 0, NAN, 1) == NULL);
  CHECK(kl_zeros(KL_F32, KL_SHAPE(2, -1)) == NULL);
  CHECK(strstr(log.last, "kl_zeros"));
  CHECK(kl_ones((kl_dtype)99, KL_SHAPE(2)) == NULL);
  CHECK(strstr(log.last, "not a dtype"));
  CHECK(kl_from_buffer(KL_F32, KL_SHAPE(2), NULL) == NULL);
  CHECK(strstr(log.last, "kl_from_buffer"));
  CHECK(kl_from_buffer_borrowed(KL_F32, KL_SHAPE(2), NULL) == NULL);
  CHECK(strstr(log.last, "kl_from_buffer_borrowed"));
  CHECK_EQ_INT(log.calls, 7);
  kl_set_error_handler(NULL, NULL);
  kl_clear_error();
  kl_scope_end();
}

static void test_generator(void) {
  kl_generator a, b, c;
  kl_generator_init(&a, 42);
  kl_generator_init(&b, 42);
  kl_generator_init(&c, 43);
  /* splitmix64's first output for seed 0 is a published constant: the seeding is splitmix64. */
  kl_generator zero;
  kl_generator_init(&zero, 0);
  CHECK(zero.s[0] == 0xE220A8397B1DCDAFull);
  bool same = true, differs = false;
  for (int i = 0; i < 100; i++) {
    double x = kl_generator_uniform(&a), y = kl_generator_uniform(&b), z = kl_generator_uniform(&c);
    same = same && x == y;
    differs = differs || x != z;
  }
  CHECK(same);
  CHECK(differs);

  kl_scope_begin();
  kl_generator_init(&a, 7);
  kl_generator_init(&b, 7);
  kl_tensor *r1 = kl_rand(&a, KL_F32, KL_SHAPE(100, 100));
  kl_tensor *r2 = kl_rand(&b, KL_F32, KL_SHAPE(100, 100));
  CHECK(r1 && r2 && memcmp(r1->data, r2->data, r1->nbytes) == 0);
  kl_tensor *r3 = kl_rand(&a, KL_F32, KL_SHAPE(100, 100)); /* the stream goes on */
  CHECK(r3 && memcmp(r1->data, r3->data, r1->nbytes) != 0);
  double lo = 1, hi = 0, sum = 0;
  for (int64_t i = 0; r1 && i < r1->numel; i++) {
    double v = at(r1, i);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    sum += v;
  }
  CHECK(lo >= 0 && lo < 0.01);
  CHECK(hi < 1 && hi > 0.99);
  CHECK(fabs(sum / 10000 - 0.5) < 0.02);

  kl_tensor *n = kl_randn(&a, KL_F64, KL_SHAPE(10000));
  double mean = 0, var = 0;
  for (int64_t i = 0; n && i < n->numel; i++)
    mean += at(n, i) / 10000;
  for (int64_t i = 0; n && i < n->numel; i++)
    var += (at(n, i) - mean) * (at(n, i) - mean) / 10000;
  CHECK(fabs(mean) < 0.05);
  CHECK(fabs(sqrt(var) - 1) < 0.05);

  error_log log = {0};
  kl_set_error_handler(log_error, &log);
  CHECK(kl_rand(&a, KL_I32, KL_SHAPE(2)) == NULL);
  CHECK(strstr(log.last, "kl_rand") && strstr(log.last, "Int"));
  CHECK(kl_randn(&a, KL_BOOL, KL_SHAPE(2)) == NULL);
  CHECK(strstr(log.last, "kl_randn") && strstr(log.last, "Bool"));
  CHECK(kl_rand(NULL, KL_F32, KL_SHAPE(2)) == NULL);
  CHECK_EQ_INT(log.calls, 3);
  kl_set_error_handler(NULL, NULL);
  kl_clear_error();
  kl_scope_end();
}

/* ---- ops against the interpreter ----------------------------------------------------- */

static void test_ops_vs_ir(void) {
  kl_scope_begin();
  kl_tensor *x23 = wave(KL_F32, KL_SHAPE(2, 3), 0.0, 2.0, 0.0);
  kl_tensor *y23 = wave(KL_F32, KL_SHAPE(2, 3), 1.0, 2.0, 0.0);
  kl_tensor *v3 = wave(KL_F32, KL_SHAPE(3), 2.0, 1.5, 0.0);
  kl_tensor *pos23 = wave(KL_F32, KL_SHAPE(2, 3), 0.5, 1.0, 1.5); /* in [0.5, 2.5] */

  /* matrix products and convolution */
  kl_tensor *w43 = wave(KL_F32, KL_SHAPE(4, 3), 0.3, 1.0, 0.0);
  kl_tensor *b4 = wave(KL_F32, KL_SHAPE(4), 0.9, 1.0, 0.0);
  VS_IR("aten::linear(%a, %b, %c)", kl_linear(x23, w43, b4), x23, w43, b4);
  VS_IR("aten::linear(%a, %b)", kl_linear(x23, w43, NULL), x23, w43);
  kl_tensor *m34 = wave(KL_F32, KL_SHAPE(3, 4), 0.2, 1.0, 0.0);
  VS_IR("aten::matmul(%a, %b)", kl_matmul(x23, m34), x23, m34);

  kl_tensor *img = wave(KL_F32, KL_SHAPE(1, 2, 7, 7), 0.1, 1.0, 0.0);
  kl_tensor *wg = wave(KL_F32, KL_SHAPE(4, 1, 3, 3), 0.4, 1.0, 0.0);
  kl_tensor *wc = wave(KL_F32, KL_SHAPE(4, 2, 3, 3), 0.6, 1.0, 0.0);
  kl_conv2d_opts all = {.stride = {2, 1}, .padding = {1, 2}, .dilation = {1, 2}, .groups = 2};
  VS_IR("aten::conv2d[stride=[2, 1], padding=[1, 2], dilation=[1, 2], groups=2](%a, %b, %c)",
        kl_conv2d(img, wg, b4, &all), img, wg, b4);
  kl_conv2d_opts none = {0};
  VS_IR("aten::conv2d(%a, %b)", kl_conv2d(img, wc, NULL, &none), img, wc);
  VS_IR("aten::conv2d(%a, %b)", kl_conv2d(img, wc, NULL, NULL), img, wc);
  kl_conv2d_opts half = {.stride = {2, 0}}; /* a zero entry is the default of 1 */
  VS_IR("aten::conv2d[stride=[2, 1]](%a, %b)", kl_conv2d(img, wc, NULL, &half), img, wc);

  /* normalization */
  kl_tensor *bn_x = wave(KL_F32, KL_SHAPE(2, 3, 2, 2), 0.0, 1.0, 0.0);
  kl_tensor *c_w = wave(KL_F32, KL_SHAPE(3), 0.1, 1.0, 0.0);
  kl_tensor *c_b = wave(KL_F32, KL_SHAPE(3), 0.2, 1.0, 0.0);
  kl_tensor *c_m = wave(KL_F32, KL_SHAPE(3), 0.3, 1.0, 0.0);
  kl_tensor *c_v = wave(KL_F32, KL_SHAPE(3), 0.4, 0.5, 1.0);
  VS_IR("aten::batch_norm[eps=0.001](%a, %b, %c, %d, %e)",
        kl_batch_norm(bn_x, c_w, c_b, c_m, c_v, 1e-3), bn_x, c_w, c_b, c_m, c_v);
  VS_IR("aten::batch_norm[eps=1e-05](%a, %b, %c, %d, %e)",
        kl_batch_norm(bn_x, NULL, NULL, c_m, c_v, 1e-5), bn_x, kl_ones(KL_F32, KL_SHAPE(3)),
        kl_zeros(KL_F32, KL_SHAPE(3)), c_m, c_v);
  kl_tensor *ln_x = wave(KL_F32, KL_SHAPE(2, 3, 4), 0.0, 1.0, 0.0);
  kl_tensor *ln_w = wave(KL_F32, KL_SHAPE(3, 4), 0.5, 1.0, 0.0);
  kl_tensor *ln_b = wave(KL_F32, KL_SHAPE(3, 4), 0.7, 1.0, 0.0);
  VS_IR("aten::layer_norm[normalized_shape=[3, 4], eps=1e-05](%a, %b, %c)",
        kl_layer_norm(ln_x, 2, ln_w, ln_b, 1e-5), ln_x, ln_w, ln_b);
  VS_IR("aten::layer_norm[normalized_shape=[4], eps=0.01](%a)",
        kl_layer_norm(ln_x, 1, NULL, NULL, 0.01), ln_x);
  VS_IR("aten::layer_norm[normalized_shape=[3, 4], eps=1e-05](%a, %b, %c)",
        kl_layer_norm(ln_x, 2, NULL, ln_b, 1e-5), ln_x, kl_ones(KL_F32, KL_SHAPE(3, 4)), ln_b);
  VS_IR("aten::softmax[dim=-1](%a)", kl_softmax(x23, -1), x23);
  VS_IR("aten::log_softmax[dim=0](%a)", kl_log_softmax(x23, 0), x23);

  /* pooling */
  kl_tensor *pool_x = wave(KL_F32, KL_SHAPE(1, 2, 6, 6), 0.0, 1.0, 0.0);
  kl_pool2d_opts mp = {.kernel_size = {3, 3}, .stride = {2, 2}, .padding = {1, 1},
                       .dilation = {1, 1}, .ceil_mode = true};
  VS_IR("aten::max_pool2d[kernel_size=[3, 3], stride=[2, 2], padding=[1, 1], dilation=[1, 1], "
        "ceil_mode=1](%a)",
        kl_max_pool2d(pool_x, &mp), pool_x);
  kl_pool2d_opts k2 = {.kernel_size = {2, 2}};
  VS_IR("aten::max_pool2d[kernel_size=[2, 2]](%a)", kl_max_pool2d(pool_x, &k2), pool_x);
  VS_IR("aten::max_pool2d[kernel_size=[2, 2], stride=[2, 2]](%a)", kl_max_pool2d(pool_x, &k2),
        pool_x);
  kl_pool2d_opts k3 = {.kernel_size = {3, 2}, .stride = {0, 1}};
  VS_IR("aten::max_pool2d[kernel_size=[3, 2], stride=[3, 1]](%a)", kl_max_pool2d(pool_x, &k3),
        pool_x);
  kl_pool2d_opts ap = {.kernel_size = {3, 3}, .stride = {1, 1}, .padding = {1, 1},
                       .exclude_pad = true};
  kl_tensor *avg_ex = kl_avg_pool2d(pool_x, &ap);
  VS_IR("aten::avg_pool2d[kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], "
        "count_include_pad=0](%a)",
        avg_ex, pool_x);
  ap.exclude_pad = false;
  kl_tensor *avg_in = kl_avg_pool2d(pool_x, &ap);
  VS_IR("aten::avg_pool2d[kernel_size=[3, 3], stride=[1, 1], padding=[1, 1]](%a)", avg_in,
        pool_x);
  CHECK(avg_ex && avg_in && at(avg_ex, 0) != at(avg_in, 0)); /* the corner sees padding */
  VS_IR("aten::adaptive_avg_pool2d[output_size=[2, 3]](%a)",
        kl_adaptive_avg_pool2d(pool_x, 2, 3), pool_x);

  /* elementwise, one input */
  VS_IR("aten::relu(%a)", kl_relu(x23), x23);
  kl_tensor *sevens = kl_full(KL_F32, KL_SHAPE(2), 7);
  VS_IR("aten::relu6(%a)", kl_relu6(sevens), sevens);
  VS_IR("aten::hardtanh[min_val=-0.5, max_val=0.5](%a)", kl_hardtanh(x23, -0.5, 0.5), x23);
  VS_IR("aten::clamp[max=0.3](%a)", kl_clamp(x23, -INFINITY, 0.3), x23);
  VS_IR("aten::clamp[min=-0.2](%a)", kl_clamp(x23, -0.2, INFINITY), x23);
  VS_IR("aten::clamp[min=-0.2, max=0.3](%a)", kl_clamp(x23, -0.2, 0.3), x23);
  VS_IR("aten::clamp(%a)", kl_clamp(x23, -INFINITY, INFINITY), x23);
  VS_IR("aten::leaky_relu[negative_slope=0.2](%a)", kl_leaky_relu(x23, 0.2), x23);
  VS_IR("aten::sigmoid(%a)", kl_sigmoid(x23), x23);
  VS_IR("aten::hardsigmoid(%a)", kl_hardsigmoid(x23), x23);
  VS_IR("aten::hardswish(%a)", kl_hardswish(x23), x23);
  VS_IR("aten::tanh(%a)", kl_tanh(x23), x23);
  kl_tensor *gelu_exact = kl_gelu(x23, false), *gelu_tanh = kl_gelu(x23, true);
  VS_IR("aten::gelu(%a)", gelu_exact, x23);
  VS_IR("aten::gelu[approximate=\"tanh\"](%a)", gelu_tanh, x23);
  CHECK(gelu_exact && gelu_tanh && memcmp(gelu_exact->data, gelu_tanh->data, 24) != 0);
  VS_IR("aten::silu(%a)", kl_silu(x23), x23);
  VS_IR("aten::sqrt(%a)", kl_sqrt(pos23), pos23);
  VS_IR("aten::rsqrt(%a)", kl_rsqrt(pos23), pos23);
  VS_IR("aten::reciprocal(%a)", kl_reciprocal(pos23), pos23);
  VS_IR("aten::exp(%a)", kl_exp(x23), x23);
  VS_IR("aten::log(%a)", kl_log(pos23), pos23);
  VS_IR("aten::erf(%a)", kl_erf(x23), x23);
  VS_IR("aten::neg(%a)", kl_neg(x23), x23);
  VS_IR("aten::abs(%a)", kl_abs(x23), x23);
  kl_tensor *dropped = kl_dropout(x23, 0.5);
  VS_IR("aten::dropout[p=0.5](%a)", dropped, x23);
  CHECK(dropped && memcmp(dropped->data, x23->data, x23->nbytes) == 0); /* inference */
  VS_IR("aten::to[dtype=Int](%a)", kl_to(x23, KL_I32), x23);
  VS_IR("aten::to[dtype=Half](%a)", kl_to(x23, KL_F16), x23);

  /* elementwise with broadcasting */
  VS_IR("aten::add(%a, %b)", kl_add(x23, v3), x23, v3);
  VS_IR("aten::sub(%a, %b)", kl_sub(x23, y23), x23, y23);
  VS_IR("aten::mul(%a, %b)", kl_mul(v3, x23), v3, x23);
  VS_IR("aten::div(%a, %b)", kl_div(x23, pos23), x23, pos23);
  VS_IR("aten::pow(%a, %b)", kl_pow(pos23, v3), pos23, v3);
  VS_IR("aten::maximum(%a, %b)", kl_maximum(x23, y23), x23, y23);
  VS_IR("aten::minimum(%a, %b)", kl_minimum(x23, y23), x23, y23);
  VS_IR("aten::eq(%a, %b)", kl_eq(x23, x23), x23, x23);
  VS_IR("aten::ne(%a, %b)", kl_ne(x23, y23), x23, y23);
  VS_IR("aten::lt(%a, %b)", kl_lt(x23, y23), x23, y23);
  VS_IR("aten::le(%a, %b)", kl_le(x23, v3), x23, v3);
  VS_IR("aten::gt(%a, %b)", kl_gt(x23, y23), x23, y23);
  VS_IR("aten::ge(%a, %b)", kl_ge(x23, y23), x23, y23);
  kl_tensor *cond = kl_gt(x23, y23);
  VS_IR("aten::where(%a, %b, %c)", kl_where(cond, x23, v3), cond, x23, v3);

  /* data movement */
  kl_tensor *x234 = wave(KL_F32, KL_SHAPE(2, 3, 4), 0.0, 1.0, 0.0);
  VS_IR("aten::reshape[shape=[3, -1]](%a)", kl_reshape(x23, KL_SHAPE(3, -1)), x23);
  VS_IR("aten::flatten[start_dim=1, end_dim=-1](%a)", kl_flatten(x234, 1, -1), x234);
  kl_tensor *ones131 = wave(KL_F32, KL_SHAPE(1, 3, 1), 0.0, 1.0, 0.0);
  VS_IR("aten::squeeze(%a)", kl_squeeze(ones131, 0, NULL), ones131);
  VS_IR("aten::squeeze[dim=[-1]](%a)", kl_squeeze(ones131, KL_INTS(-1)), ones131);
  VS_IR("aten::unsqueeze[dim=1](%a)", kl_unsqueeze(x23, 1), x23);
  VS_IR("aten::transpose[dim0=0, dim1=2](%a)", kl_transpose(x234, 0, 2), x234);
  VS_IR("aten::permute[dims=[2, 0, 1]](%a)", kl_permute(x234, KL_INTS(2, 0, 1)), x234);
  kl_tensor *col = wave(KL_F32, KL_SHAPE(3, 1), 0.0, 1.0, 0.0);
  VS_IR("aten::expand[size=[-1, 4]](%a)", kl_expand(col, KL_SHAPE(-1, 4)), col);
  VS_IR("aten::expand[size=[2, 3, 4]](%a)", kl_expand(col, KL_SHAPE(2, 3, 4)), col);
  kl_tensor *x22 = wave(KL_F32, KL_SHAPE(2, 2), 0.0, 1.0, 0.0);
  kl_tensor *parts[] = {x23, x22};
  VS_IR("aten::cat[dim=1](%a, %b)", kl_cat(2, parts, 1), x23, x22);
  VS_IR("aten::cat[dim=-1](%a, %b)", kl_cat(2, parts, -1), x23, x22);
  VS_IR("aten::slice[dim=1, start=1, end=100, step=2](%a)", kl_slice(x234, 1, 1, 100, 2), x234);
  VS_IR("aten::slice[dim=-1, start=-1, end=-100, step=-1](%a)",
        kl_slice(x234, -1, -1, -100, -1), x234);
  VS_IR("aten::constant_pad_nd[pad=[1, 2], value=9.](%a)",
        kl_constant_pad(x23, KL_INTS(1, 2), 9.0), x23);
  VS_IR("aten::constant_pad_nd[pad=[0, 1, 2, 0]](%a)", kl_constant_pad(x23, KL_INTS(0, 1, 2, 0), 0),
        x23);
  kl_tensor *table = wave(KL_F32, KL_SHAPE(5, 3), 0.0, 1.0, 0.0);
  kl_tensor *idx22 = longs(KL_SHAPE(2, 2), (const int64_t[]){4, 0, 2, 2});
  kl_tensor *idx2 = longs(KL_SHAPE(2), (const int64_t[]){2, 0});
  VS_IR("aten::embedding(%a, %b)", kl_embedding(table, idx22), table, idx22);
  VS_IR("aten::index_select[dim=1](%a, %b)", kl_index_select(table, 1, idx2), table, idx2);
  VS_IR("onnx::Gather[axis=0](%a, %b)", kl_gather(table, idx22, 0), table, idx22);
  VS_IR("onnx::Gather[axis=-1](%a, %b)", kl_gather(table, idx2, -1), table, idx2);

  /* reductions */
  VS_IR("aten::sum(%a)", kl_sum(x234, 0, NULL, false), x234);
  VS_IR("aten::mean[dim=[1], keepdim=1](%a)", kl_mean(x234, KL_INTS(1), true), x234);
  VS_IR("aten::amax[dim=[-1]](%a)", kl_amax(x234, KL_INTS(-1), false), x234);
  VS_IR("aten::amin[dim=[0, 2]](%a)", kl_amin(x234, KL_INTS(0, 2), false), x234);
  VS_IR("aten::sum[keepdim=1](%a)", kl_sum(x234, 0, NULL, true), x234);
  kl_scope_end();
}

/* ---- ops against hand-computed values ------------------------------------------------ */

static bool values_are(const kl_tensor *t, int n, const double *want) {
  if (!t || t->numel != n)
    return false;
  for (int i = 0; i < n; i++)
    if (fabs(at(t, i) - want[i]) > 1e-5)
      return false;
  return true;
}
#define VALUES(t, ...)                                                               \
  values_are((t), (int)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)), \
             (const double[]){__VA_ARGS__})

static void test_ops_values(void) {
  kl_scope_begin();
  float xs[6] = {-1, 2, -3, 4, -5, 6};
  kl_tensor *x = kl_from_buffer(KL_F32, KL_SHAPE(2, 3), xs);
  kl_tensor *row = kl_arange(KL_F32, 10, 40, 10); /* [10, 20, 30] */
  CHECK(VALUES(kl_relu(x), 0, 2, 0, 4, 0, 6));
  CHECK(VALUES(kl_add(x, row), 9, 22, 27, 14, 15, 36));
  CHECK(VALUES(kl_clamp(x, -2, INFINITY), -1, 2, -2, 4, -2, 6));
  CHECK(VALUES(kl_clamp(x, -INFINITY, 3), -1, 2, -3, 3, -5, 3));
  CHECK(VALUES(kl_hardtanh(x, -2, 2), -1, 2, -2, 2, -2, 2));
  CHECK(VALUES(kl_leaky_relu(x, 0.5), -0.5, 2, -1.5, 4, -2.5, 6));
  CHECK(VALUES(kl_sum(x, 0, NULL, false), 3));
  CHECK(VALUES(kl_sum(x, KL_INTS(1), false), -2, 5));
  CHECK(VALUES(kl_amax(x, KL_INTS(0), false), 4, 2, 6));
  CHECK(VALUES(kl_mean(x, KL_INTS(0, 1), false), 0.5));
  kl_tensor *kept = kl_sum(x, KL_INTS(1), true);
  CHECK(kept && kept->rank == 2 && kept->shape[1] == 1);
  CHECK(VALUES(kl_matmul(x, kl_ones(KL_F32, KL_SHAPE(3, 1))), -2, 5));
  CHECK(VALUES(kl_transpose(x, 0, 1), -1, 4, 2, -5, -3, 6));
  CHECK(VALUES(kl_slice(x, 1, 1, 3, 1), 2, -3, -5, 6));
  CHECK(VALUES(kl_to(kl_full(KL_F32, KL_SHAPE(2), -2.7), KL_I64), -2, -2));
  kl_tensor *pieces[2];
  kl_tensor *wide = kl_reshape(kl_arange(KL_F32, 0, 10, 1), KL_SHAPE(2, 5));
  CHECK(kl_split(wide, 2, (const int64_t[]){2, 3}, 1, pieces));
  CHECK(VALUES(pieces[0], 0, 1, 5, 6));
  CHECK(VALUES(pieces[1], 2, 3, 4, 7, 8, 9));
  CHECK(pieces[1] && pieces[1]->shape[1] == 3 && pieces[1]->refcount == 1);
  kl_tensor *both[] = {pieces[1], pieces[0]};
  CHECK(VALUES(kl_cat(2, both, 1), 2, 3, 4, 0, 1, 7, 8, 9, 5, 6));
  kl_tensor *sm = kl_softmax(x, 1);
  CHECK(sm && fabs(at(sm, 0) + at(sm, 1) + at(sm, 2) - 1) < 1e-6);
  CHECK(sm && fabs(at(sm, 1) - exp(2) / (exp(-1) + exp(2) + exp(-3))) < 1e-6);
  kl_tensor *cond = kl_gt(x, kl_scalar(KL_F32, 0));
  CHECK(cond && cond->dtype == KL_BOOL);
  CHECK(VALUES(kl_where(cond, x, kl_scalar(KL_F32, 100)), 100, 2, 100, 4, 100, 6));
  CHECK(VALUES(kl_linear(x, kl_ones(KL_F32, KL_SHAPE(1, 3)), kl_full(KL_F32, KL_SHAPE(1), 10)),
               8, 15));
  kl_pool2d_opts k2 = {.kernel_size = {2, 2}};
  kl_tensor *grid = kl_reshape(kl_arange(KL_F32, 0, 16, 1), KL_SHAPE(1, 1, 4, 4));
  CHECK(VALUES(kl_max_pool2d(grid, &k2), 5, 7, 13, 15));
  CHECK(VALUES(kl_avg_pool2d(grid, &k2), 2.5, 4.5, 10.5, 12.5));
  CHECK(VALUES(kl_constant_pad(kl_ones(KL_F32, KL_SHAPE(2)), KL_INTS(1, 2), 7), 7, 1, 1, 7, 7));
  kl_tensor *gelu = kl_gelu(kl_scalar(KL_F64, 1.0), false);
  CHECK(gelu && fabs(kl_item(gelu) - 0.5 * (1 + erf(1 / sqrt(2)))) < 1e-12);
  kl_tensor *layer = kl_layer_norm(kl_arange(KL_F64, 0, 4, 1), 1, NULL, NULL, 0);
  /* (x - 1.5) / sqrt(1.25) */
  CHECK(VALUES(layer, -1.5 / sqrt(1.25), -0.5 / sqrt(1.25), 0.5 / sqrt(1.25), 1.5 / sqrt(1.25)));
  kl_tensor *idx = longs(KL_SHAPE(2), (const int64_t[]){1, 0});
  CHECK(VALUES(kl_embedding(x, idx), 4, -5, 6, -1, 2, -3));
  CHECK(VALUES(kl_index_select(x, 1, idx), 2, -1, -5, 4));
  CHECK(VALUES(kl_flatten(kl_unsqueeze(x, 0), 0, -1), -1, 2, -3, 4, -5, 6));
  CHECK(VALUES(kl_expand(kl_scalar(KL_F32, 3), KL_SHAPE(2)), 3, 3));
  CHECK(kl_last_error() == NULL);
  kl_scope_end();
}

/* ---- errors -------------------------------------------------------------------------- */

/* expr must give NULL with exactly one report whose message holds both substrings. */
#define ERR_CASE(expr, sub1, sub2)                                                           \
  do {                                                                                       \
    int err_before_ = log.calls;                                                             \
    const void *err_result_ = (expr);                                                        \
    CHECK(err_result_ == NULL);                                                              \
    CHECK_EQ_INT(log.calls, err_before_ + 1);                                                \
    bool err_ok_ = strstr(log.last, (sub1)) && strstr(log.last, (sub2));                     \
    CHECK(err_ok_);                                                                          \
    if (!err_ok_)                                                                            \
      fprintf(stderr, "  message \"%s\" lacks \"%s\" or \"%s\"\n", log.last, (sub1), (sub2)); \
  } while (0)

static void test_errors(void) {
  kl_scope_begin();
  error_log log = {0};
  kl_set_error_handler(log_error, &log);
  kl_tensor *a = kl_ones(KL_F32, KL_SHAPE(2, 3));
  kl_tensor *b = kl_ones(KL_F32, KL_SHAPE(4));

  /* A chain whose first op fails reports once, and every later op returns NULL. */
  kl_tensor *y = kl_relu(kl_mul(kl_add(a, b), a));
  CHECK(y == NULL);
  CHECK_EQ_INT(log.calls, 1);
  CHECK(strstr(log.last, "aten::add") != NULL);
  CHECK(strstr(log.last, "Float(2, 3)") != NULL);
  CHECK(strstr(log.last, "Float(4)") != NULL);
  CHECK(kl_last_error() != NULL);
  CHECK_STREQ(kl_status_message(kl_last_error()), log.last);
  CHECK_EQ_INT(kl_status_code_of(kl_last_error()), KL_ERR_INVALID_ARGUMENT);
  CHECK(isnan(kl_item(y)));
  CHECK(kl_data(y) == NULL);
  kl_tensor *none[2] = {NULL, a};
  CHECK(kl_cat(2, none, 0) == NULL);
  kl_tensor *pieces[2] = {a, a};
  CHECK(!kl_split(NULL, 2, (const int64_t[]){1, 1}, 0, pieces));
  CHECK(pieces[0] == NULL && pieces[1] == NULL);
  CHECK(kl_batch_norm(NULL, NULL, NULL, b, b, 1e-5) == NULL);
  CHECK(kl_layer_norm(NULL, 1, NULL, NULL, 1e-5) == NULL);
  CHECK_EQ_INT(log.calls, 1);

  /* Each of these fails with exactly one report naming the op and what was wrong. */
  kl_tensor *i64 = kl_ones(KL_I64, KL_SHAPE(2, 3));
  kl_tensor *i32 = kl_ones(KL_I32, KL_SHAPE(2));
  kl_tensor *far = longs(KL_SHAPE(1), (const int64_t[]){7});
  ERR_CASE(kl_matmul(a, a), "aten::matmul", "Float(2, 3), Float(2, 3)");
  ERR_CASE(kl_add(a, i64), "aten::add", "Long(2, 3)");
  ERR_CASE(kl_reshape(a, KL_SHAPE(4, 2)), "aten::reshape", "Float(2, 3)");
  ERR_CASE(kl_softmax(a, 2), "aten::softmax", "Float(2, 3)");
  ERR_CASE(kl_conv2d(a, a, NULL, NULL), "aten::conv2d", "Float(2, 3)");
  ERR_CASE(kl_sqrt(i32), "aten::sqrt", "Int(2)");
  ERR_CASE(kl_to(a, (kl_dtype)77), "kl_to", "77 is not a dtype");
  ERR_CASE(kl_layer_norm(a, 3, NULL, NULL, 1e-5), "kl_layer_norm", "n_dims 3");
  ERR_CASE(kl_max_pool2d(a, NULL), "kl_max_pool2d", "kernel_size");
  ERR_CASE(kl_cat(0, NULL, 0), "kl_cat", "at least one");
  ERR_CASE(kl_permute(a, -1, NULL), "kl_permute", "count -1");
  ERR_CASE(kl_sum(a, 2, NULL, false), "kl_sum", "NULL");
  ERR_CASE(kl_index_select(a, 0, far), "index", "7");
  ERR_CASE(kl_split(a, 2, (const int64_t[]){1, 1}, 1, pieces) ? a : NULL, "aten::split", "3");
  CHECK(pieces[0] == NULL && pieces[1] == NULL);
  ERR_CASE(kl_item(a) == 0 ? a : NULL, "kl_item", "6 elements");
  kl_set_error_handler(NULL, NULL);
  kl_clear_error();
  kl_scope_end();
}

/* ---- warnings ------------------------------------------------------------------------ */

typedef struct warning_log {
  int calls;
  char file[256], message[512];
  int line;
} warning_log;

static void log_warning(void *ctx, const char *file, int line, const char *message) {
  warning_log *log = ctx;
  log->calls++;
  snprintf(log->file, sizeof log->file, "%s", file);
  snprintf(log->message, sizeof log->message, "%s", message);
  log->line = line;
}

static void test_warnings(void) {
  warning_log log = {0};
  kl_set_warning_handler(log_warning, &log);
  kl_fe_warn("net.c", 12, "branch on %s", "kl_item");
  CHECK_EQ_INT(log.calls, 1);
  CHECK_STREQ(log.file, "net.c");
  CHECK_EQ_INT(log.line, 12);
  CHECK_STREQ(log.message, "branch on kl_item");
  /* A message longer than the formatting buffer arrives whole. */
  char long_text[2000];
  memset(long_text, 'w', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  kl_fe_warn("net.c", 13, "%s!", long_text);
  CHECK_EQ_INT(log.calls, 2);
  CHECK_EQ_INT((long long)strlen(log.message), (long long)sizeof log.message - 1);
  /* Reading tensors outside a trace warns about nothing. */
  kl_scope_begin();
  kl_tensor *t = kl_scalar(KL_F32, 1.5);
  CHECK(kl_item(t) == 1.5);
  CHECK(kl_data(t) == t->data);
  kl_scope_end();
  CHECK_EQ_INT(log.calls, 2);
  kl_set_warning_handler(NULL, NULL);
}

/* ---- threads ------------------------------------------------------------------------- */

typedef struct thread_result {
  bool failed_alone;  /* its error stayed in its thread */
  bool scope_private; /* its scope did not see the main thread's */
} thread_result;

static void *thread_main(void *arg) {
  thread_result *r = arg;
  CHECK(kl_last_error() == NULL); /* the main thread's error is not visible here */
  kl_scope_begin();
  kl_tensor *y = kl_add(kl_ones(KL_F32, KL_SHAPE(2)), kl_ones(KL_F32, KL_SHAPE(3)));
  r->failed_alone = y == NULL && kl_last_error() != NULL;
  kl_tensor *kept = kl_keep(kl_ones(KL_F32, KL_SHAPE(1)));
  kl_scope_end();
  r->scope_private = kept->refcount == 1;
  kl_tensor_release(kept);
  kl_clear_error();
  return NULL;
}

static void quiet(void *ctx, kl_status error) { (void)ctx, (void)error; }

static void test_threads(void) {
  kl_set_error_handler(quiet, NULL);
  kl_scope_begin(); /* open in the main thread while the other one works */
  CHECK(kl_reshape(kl_ones(KL_F32, KL_SHAPE(2)), KL_SHAPE(3)) == NULL);
  kl_status mine = kl_last_error();
  thread_result r = {0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, thread_main, &r) == 0);
  pthread_join(th, NULL);
  CHECK(r.failed_alone);
  CHECK(r.scope_private);
  CHECK(kl_last_error() == mine);
  kl_scope_end();
  kl_clear_error();
  kl_set_error_handler(NULL, NULL);
}

/* ---- the op call while tracing ------------------------------------------------------- */

/* kl_fe_call builds nodes in the trace graph: options left at their defaults leave no
 * attribute, a failed op leaves no node behind, and reading a value warns with our line. */
static void test_trace_hooks(void) {
  kl_scope_begin();
  warning_log warnings = {0};
  error_log errors = {0};
  kl_set_warning_handler(log_warning, &warnings);
  kl_set_error_handler(log_error, &errors);
  kl_tensor *x = wave(KL_F32, KL_SHAPE(1, 2, 4, 4), 0.0, 1.0, 0.0);
  CHECK_OK(kl_trace_begin(NULL, 1, &x, NULL));
  kl_tensor *bad = kl_add(x, kl_ones(KL_F32, KL_SHAPE(3)));
  CHECK(bad == NULL);
  CHECK_EQ_INT(errors.calls, 1);
  kl_pool2d_opts k2 = {.kernel_size = {2, 2}};
  kl_tensor *y = kl_clamp(kl_gelu(kl_max_pool2d(x, &k2), true), -INFINITY, 0.5);
  kl_tensor *z = kl_sum(y, 0, NULL, false);
  int item_line = __LINE__ + 1;
  double value = kl_item(z);
  CHECK(!isnan(value));
  CHECK_EQ_INT(warnings.calls, 1);
  CHECK(strstr(warnings.file, "test_eager.c") != NULL);
  CHECK_EQ_INT(warnings.line, item_line);
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_trace_end(1, &z, &g));
  if (g) {
    CHECK_OK(kl_ir_verify(g));
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(kl_ir_print(g, NULL, &text, &len));
    if (text) {
      CHECK(strstr(text, "aten::add") == NULL);
      CHECK(strstr(text, "aten::max_pool2d[kernel_size=[2, 2]](") != NULL);
      CHECK(strstr(text, "aten::gelu[approximate=\"tanh\"](") != NULL);
      CHECK(strstr(text, "aten::clamp[max=0.5](") != NULL);
      CHECK(strstr(text, "aten::sum(") != NULL);
    }
    /* The traced graph computes what the eager ops did. */
    kl_tensor *out = NULL;
    CHECK_OK(kl_interp_run(g, &x, 1, &out));
    CHECK(out && kl_dtype_load_f64(out->dtype, out->data, 0) == value);
    kl_tensor_release(out);
    free(text);
    kl_ir_graph_destroy(g);
  }
  CHECK(!kl_tracing());
  CHECK(kl_item(z) == value);
  CHECK_EQ_INT(warnings.calls, 1); /* no trace, no warning */
  kl_set_warning_handler(NULL, NULL);
  kl_set_error_handler(NULL, NULL);
  kl_clear_error();
  kl_scope_end();
}

/* ---- printing ------------------------------------------------------------------------ */

static void test_print(void) {
  kl_scope_begin();
  char out[4096];
  float v[2] = {0.1234f, -1.5f};
  capture_print(kl_from_buffer(KL_F32, KL_SHAPE(1, 2), v), out, sizeof out);
  CHECK_STREQ(out, "tensor([[ 0.1234, -1.5000]], shape=(1, 2), dtype=Float)\n"); /* kiln.h */
  capture_print(kl_arange(KL_I64, 0, 4, 1), out, sizeof out);
  CHECK_STREQ(out, "tensor([0, 1, 2, 3], shape=(4,), dtype=Long)\n");
  capture_print(kl_scalar(KL_F64, 2), out, sizeof out);
  CHECK_STREQ(out, "tensor(2., shape=(), dtype=Double)\n");
  capture_print(kl_zeros(KL_F16, KL_SHAPE(0, 3)), out, sizeof out);
  CHECK_STREQ(out, "tensor([], shape=(0, 3), dtype=Half)\n");
  capture_print(kl_gt(kl_arange(KL_F32, 0, 3, 1), kl_scalar(KL_F32, 0.5)), out, sizeof out);
  CHECK_STREQ(out, "tensor([False,  True,  True], shape=(3,), dtype=Bool)\n");
  capture_print(kl_ones(KL_F32, KL_SHAPE(2, 2)), out, sizeof out);
  CHECK_STREQ(out, "tensor([[1., 1.],\n        [1., 1.]], shape=(2, 2), dtype=Float)\n");
  capture_print(kl_arange(KL_F32, 0, 2000, 1), out, sizeof out);
  CHECK(strstr(out, "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,") == out ||
        strstr(out, "tensor([   0.,    1.,    2.,  ...") == out);
  CHECK(strstr(out, "...") != NULL);
  CHECK(strstr(out, "shape=(2000,), dtype=Float)\n") != NULL);
  capture_print(NULL, out, sizeof out);
  CHECK_STREQ(out, "tensor(NULL)\n");
  kl_scope_end();
}

/* ---- recurrent (issue 4) ---- */
/* With W = R = 0 and no bias every gate sees 0: i = f = o = sigmoid(0) = 0.5 and the candidate
 * tanh(0) = 0, so C = 0.5 * c0 and H = 0.5 * tanh(C); omitted b, seq_lens and h0 before the
 * given c0 become the size-0 placeholders. */
static void test_rnn_ops(void) {
  kl_scope_begin();
  float c0v[2] = {1.0f, -2.0f};
  kl_tensor *x = kl_ones(KL_F32, KL_SHAPE(3, 2, 1));
  kl_tensor *w = kl_zeros(KL_F32, KL_SHAPE(1, 4, 1)), *r = kl_zeros(KL_F32, KL_SHAPE(1, 4, 1));
  kl_tensor *c0 = kl_from_buffer(KL_F32, KL_SHAPE(1, 2, 1), c0v);
  kl_rnn_opts o = {.hidden_size = 1};
  kl_tensor *y = NULL, *h = NULL, *c = NULL;
  CHECK(kl_lstm(x, w, r, NULL, NULL, NULL, c0, NULL, &o, &y, &h, &c));
  if (y && h && c) {
    CHECK(y->rank == 4 && y->shape[0] == 3 && y->shape[2] == 2);
    for (int b = 0; b < 2; b++) {
      double cell = c0v[b] * 0.125; /* three steps of C *= 0.5 */
      CHECK(fabs(at(c, b) - cell) < 1e-6);
      CHECK(fabs(at(h, b) - 0.5 * tanh(cell)) < 1e-6);
      CHECK(fabs(at(y, 2 * 2 + b) - at(h, b)) < 1e-7); /* last step of Y is Y_h */
    }
  }
  /* RNN, reverse, Relu, with lengths: h = relu(w x + b) for each step a row runs */
  float wv[1] = {2.0f}, bv[2] = {0.5f, 0.0f}, xv[3] = {1.0f, 2.0f, 3.0f};
  int32_t lens[1] = {2};
  const char *relu[] = {"Relu"};
  kl_rnn_opts ro = {.hidden_size = 1, .direction = "reverse", .n_activations = 1,
                    .activations = relu};
  kl_tensor *yr = NULL, *hr = NULL;
  CHECK(kl_rnn(kl_from_buffer(KL_F32, KL_SHAPE(3, 1, 1), xv),
               kl_from_buffer(KL_F32, KL_SHAPE(1, 1, 1), wv), kl_zeros(KL_F32, KL_SHAPE(1, 1, 1)),
               kl_from_buffer(KL_F32, KL_SHAPE(1, 2), bv),
               kl_from_buffer(KL_I32, KL_SHAPE(1), lens), NULL, &ro, &yr, &hr));
  if (yr && hr) {
    CHECK(at(yr, 0) == 2.5 && at(yr, 1) == 4.5 && at(yr, 2) == 0.0); /* step 3 is past len */
    CHECK(at(hr, 0) == 2.5); /* reverse ends at t = 0 */
  }
  /* a bad hidden_size is reported, naming the shape check */
  kl_rnn_opts bad = {.hidden_size = 2};
  CHECK(!kl_gru(x, w, r, NULL, NULL, NULL, &bad, &y, NULL));
  CHECK(y == NULL && kl_last_error() != NULL);
  if (kl_last_error())
    CHECK(strstr(kl_status_message(kl_last_error()), "input 1 (W)") != NULL);
  kl_clear_error();
  kl_scope_end();
}

/* ---- elementwise math (issue 4) ---- */
static void test_math_ops(void) {
  kl_scope_begin();
  kl_tensor *x23 = wave(KL_F32, KL_SHAPE(2, 3), 0.0, 2.0, 0.0);   /* in [-2, 2] */
  kl_tensor *u23 = wave(KL_F32, KL_SHAPE(2, 3), 0.4, 0.9, 0.0);   /* in (-1, 1) */
  kl_tensor *big23 = wave(KL_F32, KL_SHAPE(2, 3), 1.0, 1.0, 2.5); /* in [1.5, 3.5] */
  kl_tensor *v3 = wave(KL_F32, KL_SHAPE(3), 2.0, 1.5, 0.0);
  VS_IR("aten::sin(%a)", kl_sin(x23), x23);
  VS_IR("aten::cos(%a)", kl_cos(x23), x23);
  VS_IR("aten::tan(%a)", kl_tan(u23), u23);
  VS_IR("aten::asin(%a)", kl_asin(u23), u23);
  VS_IR("aten::acos(%a)", kl_acos(u23), u23);
  VS_IR("aten::atan(%a)", kl_atan(x23), x23);
  VS_IR("aten::sinh(%a)", kl_sinh(x23), x23);
  VS_IR("aten::cosh(%a)", kl_cosh(x23), x23);
  VS_IR("aten::asinh(%a)", kl_asinh(x23), x23);
  VS_IR("aten::acosh(%a)", kl_acosh(big23), big23);
  VS_IR("aten::atanh(%a)", kl_atanh(u23), u23);
  VS_IR("aten::floor(%a)", kl_floor(x23), x23);
  VS_IR("aten::ceil(%a)", kl_ceil(x23), x23);
  VS_IR("aten::round(%a)", kl_round(big23), big23);
  VS_IR("aten::sign(%a)", kl_sign(x23), x23);
  VS_IR("aten::remainder(%a, %b)", kl_remainder(x23, v3), x23, v3);
  VS_IR("aten::fmod(%a, %b)", kl_fmod(x23, v3), x23, v3);
  int64_t iv[4] = {-7, 7, 200, 1}, sv[4] = {1, 2, 3, 63};
  kl_tensor *ai = longs(KL_SHAPE(4), iv), *si = longs(KL_SHAPE(4), sv);
  VS_IR("aten::bitwise_left_shift(%a, %b)", kl_bitwise_left_shift(ai, si), ai, si);
  VS_IR("aten::bitwise_right_shift(%a, %b)", kl_bitwise_right_shift(ai, si), ai, si);
  /* values: Python's % and C's fmod differ in sign */
  int64_t minus7 = -7, two = 2;
  kl_tensor *m7 = longs(KL_SHAPE(1), &minus7), *d2 = longs(KL_SHAPE(1), &two);
  kl_tensor *rem = kl_remainder(m7, d2), *fm = kl_fmod(m7, d2);
  CHECK(rem && fm && at(rem, 0) == 1 && at(fm, 0) == -1);
  /* a float shift is refused by the shape check, as an error, not a crash */
  CHECK(kl_bitwise_left_shift(x23, x23) == NULL && kl_last_error() != NULL);
  kl_clear_error();
  /* bitwise (issue 4) */
  VS_IR("aten::bitwise_and(%a, %b)", kl_bitwise_and(ai, si), ai, si);
  VS_IR("aten::bitwise_or(%a, %b)", kl_bitwise_or(ai, si), ai, si);
  VS_IR("aten::bitwise_xor(%a, %b)", kl_bitwise_xor(ai, si), ai, si);
  VS_IR("aten::bitwise_not(%a)", kl_bitwise_not(ai), ai);
  kl_tensor *band = kl_bitwise_and(m7, d2), *bnot = kl_bitwise_not(m7);
  CHECK(band && bnot && at(band, 0) == 0 && at(bnot, 0) == 6); /* -7 = ...11001 */
  CHECK(kl_bitwise_xor(x23, x23) == NULL && kl_last_error() != NULL);
  kl_clear_error();
  kl_scope_end();
}

int main(void) {
  test_scopes();
  test_creation();
  test_generator();
  test_ops_vs_ir();
  test_ops_values();
  test_errors();
  test_warnings();
  test_threads();
  test_trace_hooks();
  test_print();
  test_rnn_ops(); /* issue 4 */
  test_math_ops(); /* issue 4 */
  CHECK(kl_last_error() == NULL);
  return check_finish();
}
