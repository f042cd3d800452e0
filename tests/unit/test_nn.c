/* Tests for frontend/nn.c: full parameter names built from nested children, bad and duplicate
 * names refused with a report, PyTorch's init bounds and determinism, layer output shapes, and
 * loading values from a directory of .npy files and from a traced .kir file, with the errors
 * a user meets there (missing file, wrong shape, a name that would leave the directory). */
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "frontend/kiln.h"
#include "runtime/npy.h"

/* Reports arrive here: counted, and the last code and message kept for the checks. */
static int n_reports;
static kl_status_code last_code;
static char last_message[1024];

static void on_error(void *ctx, kl_status error) {
  (void)ctx;
  n_reports++;
  last_code = kl_status_code_of(error);
  snprintf(last_message, sizeof last_message, "%s", kl_status_message(error));
}

/* Checks that exactly one report came since the last call, with code and a message holding
 * substr. */
#define CHECK_REPORTED(code, substr)                                                   \
  do {                                                                                 \
    CHECK_EQ_INT(n_reports, 1);                                                        \
    CHECK_EQ_INT(last_code, (code));                                                   \
    if (!strstr(last_message, (substr))) {                                             \
      fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", last_message, (substr));      \
      CHECK(strstr(last_message, (substr)) != NULL);                                   \
    }                                                                                  \
    n_reports = 0;                                                                     \
  } while (0)

static bool all_equal(const kl_tensor *t, float v) {
  const float *d = t->data;
  for (int64_t i = 0; i < t->numel; i++)
    if (d[i] != v)
      return false;
  return true;
}

/* Largest |value| of an f32 tensor. */
static double max_abs(const kl_tensor *t) {
  const float *d = t->data;
  double m = 0;
  for (int64_t i = 0; i < t->numel; i++)
    if (fabs(d[i]) > m)
      m = fabs(d[i]);
  return m;
}

static bool same_values(const kl_tensor *a, const kl_tensor *b) {
  return a && b && a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0;
}

static void test_names(void) {
  kl_generator gen;
  kl_generator_init(&gen, 1);
  kl_module *root = kl_module_create();
  kl_module *layer1 = kl_module_child(root, "layer1");
  kl_module *block = kl_module_child(layer1, "0");
  CHECK(block != NULL);
  CHECK(kl_module_child(layer1, "0") == block); /* asked twice: the same module */
  kl_nn_conv2d conv;
  CHECK(kl_nn_conv2d_init(&conv, block, "conv1", 4, 8, 3, 3, NULL, true, &gen));
  kl_nn_linear fc;
  CHECK(kl_nn_linear_init(&fc, root, "fc", 8, 2, false, &gen));
  CHECK(fc.bias == NULL);
  CHECK_EQ_INT(kl_module_param_count(root), 3);
  CHECK_STREQ(kl_module_param_name(root, conv.weight), "layer1.0.conv1.weight");
  CHECK_STREQ(kl_module_param_name(root, conv.bias), "layer1.0.conv1.bias");
  CHECK_STREQ(kl_module_param_name(block, fc.weight), "fc.weight"); /* any module of the tree */
  kl_tensor *t = NULL;
  CHECK_STREQ(kl_module_param_at(root, 0, &t), "layer1.0.conv1.weight");
  CHECK(t == conv.weight);
  CHECK_STREQ(kl_module_param_at(root, 2, &t), "fc.weight");
  CHECK(t == fc.weight);
  CHECK(kl_module_param_at(root, 3, &t) == NULL && t == NULL);
  CHECK(kl_module_param_at(root, -1, NULL) == NULL);

  /* A tensor the module does not hold has no name. */
  kl_tensor *stray = kl_zeros(KL_F32, KL_SHAPE(2));
  CHECK(kl_module_param_name(root, stray) == NULL);

  /* The module retains what it registers: the caller's reference can go. */
  CHECK(kl_module_param(kl_module_child(root, "extra"), "scale", stray) == stray);
  CHECK_EQ_INT(stray->refcount, 2);
  kl_tensor_release(stray);
  CHECK_STREQ(kl_module_param_name(root, stray), "extra.scale");

  /* Names are strings: anything without a '.' is kept as given. */
  kl_module *odd = kl_module_child(root, "a b/\"c\"");
  CHECK(odd != NULL);
  kl_tensor *w = kl_ones(KL_F32, KL_SHAPE(1));
  CHECK(kl_module_param(odd, "w\xc3\xbc", w) == w);
  CHECK_STREQ(kl_module_param_name(root, w), "a b/\"c\".w\xc3\xbc");
  kl_tensor_release(w);

  CHECK_EQ_INT(n_reports, 0);
  kl_module_destroy(block); /* a child: refused, nothing freed */
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "destroy its root");
  CHECK_EQ_INT(kl_module_param_count(root), 5);
  kl_module_destroy(root);
  kl_module_destroy(NULL);
}

static void test_bad_names(void) {
  kl_module *root = kl_module_create();
  kl_module *child = kl_module_child(root, "enc");
  kl_tensor *t = kl_zeros(KL_F32, KL_SHAPE(3));

  CHECK(kl_module_child(root, "") == NULL);
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "empty child name");
  CHECK(kl_module_child(root, "a.b") == NULL);
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "'a.b'");
  CHECK(kl_module_child(root, "..") == NULL);
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "contains '.'");
  CHECK(kl_module_child(root, NULL) == NULL);
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "NULL child name");
  CHECK(kl_module_child(NULL, "x") == NULL);
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "NULL parent");
  CHECK(kl_module_param(child, "", t) == NULL);
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "empty parameter name in module enc");
  CHECK(kl_module_param(child, "w.x", t) == NULL);
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "'w.x'");

  /* Duplicates by full name, whichever module registers them. */
  CHECK(kl_module_param(child, "w", t) == t);
  CHECK(kl_module_param(child, "w", t) == NULL);
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "'enc.w' is already registered");
  kl_nn_linear enc;
  kl_generator gen;
  kl_generator_init(&gen, 0);
  CHECK(kl_nn_linear_init(&enc, root, "enc2", 2, 2, true, &gen));
  CHECK(!kl_nn_linear_init(&enc, root, "enc2", 2, 2, true, &gen));
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "'enc2.weight' is already registered");
  CHECK_EQ_INT(kl_module_param_count(root), 3);

  /* A NULL value failed where it was made (and reported there): no second report. */
  CHECK(kl_module_param(child, "v", NULL) == NULL);
  CHECK_EQ_INT(n_reports, 0);
  CHECK_EQ_INT(kl_module_param_count(root), 3);
  kl_tensor_release(t);
  kl_module_destroy(root);
}

static void test_init(void) {
  kl_module *a = kl_module_create(), *b = kl_module_create(), *c = kl_module_create();
  kl_generator ga, gb, gc;
  kl_generator_init(&ga, 7);
  kl_generator_init(&gb, 7);
  kl_generator_init(&gc, 8);
  kl_nn_linear la, lb, lc;
  CHECK(kl_nn_linear_init(&la, a, "fc", 100, 30, true, &ga));
  CHECK(kl_nn_linear_init(&lb, b, "fc", 100, 30, true, &gb));
  CHECK(kl_nn_linear_init(&lc, c, "fc", 100, 30, true, &gc));
  CHECK(la.weight && la.weight->rank == 2 && la.weight->shape[0] == 30 &&
        la.weight->shape[1] == 100 && la.weight->dtype == KL_F32);
  CHECK(la.bias && la.bias->rank == 1 && la.bias->shape[0] == 30);
  double bound = 1.0 / sqrt(100.0);
  CHECK(max_abs(la.weight) <= bound);
  CHECK(max_abs(la.weight) > 0.9 * bound); /* 3000 draws reach near the bound */
  CHECK(max_abs(la.bias) <= bound);
  CHECK(max_abs(la.bias) > 0.5 * bound);
  CHECK(same_values(la.weight, lb.weight) && same_values(la.bias, lb.bias));
  CHECK(!same_values(la.weight, lc.weight));

  /* conv: bound from in/groups * kh * kw */
  kl_nn_conv2d conv;
  kl_conv2d_opts opts = {.groups = 2};
  CHECK(kl_nn_conv2d_init(&conv, a, "conv", 8, 16, 3, 5, &opts, true, &ga));
  CHECK(conv.weight && conv.weight->rank == 4 && conv.weight->shape[0] == 16 &&
        conv.weight->shape[1] == 4 && conv.weight->shape[2] == 3 && conv.weight->shape[3] == 5);
  double cbound = 1.0 / sqrt(4.0 * 3 * 5);
  CHECK(max_abs(conv.weight) <= cbound && max_abs(conv.weight) > 0.9 * cbound);
  CHECK(max_abs(conv.bias) <= cbound);
  CHECK_EQ_INT(conv.opts.groups, 2);

  kl_nn_batch_norm2d bn;
  CHECK(kl_nn_batch_norm2d_init(&bn, a, "bn", 6));
  CHECK(bn.weight && all_equal(bn.weight, 1.0f) && bn.weight->shape[0] == 6);
  CHECK(bn.bias && all_equal(bn.bias, 0.0f));
  CHECK(bn.running_mean && all_equal(bn.running_mean, 0.0f));
  CHECK(bn.running_var && all_equal(bn.running_var, 1.0f));
  CHECK(bn.eps == 1e-5);
  CHECK_STREQ(kl_module_param_name(a, bn.running_var), "bn.running_var");

  kl_nn_layer_norm ln;
  CHECK(kl_nn_layer_norm_init(&ln, a, "ln", KL_SHAPE(4, 8)));
  CHECK(ln.weight && ln.weight->rank == 2 && ln.weight->shape[1] == 8);
  CHECK(ln.weight && all_equal(ln.weight, 1.0f));
  CHECK(ln.bias && all_equal(ln.bias, 0.0f));
  CHECK(ln.n_dims == 2 && ln.eps == 1e-5);

  /* embedding: N(0, 1), so over 4000 draws mean near 0 and variance near 1 */
  kl_nn_embedding emb;
  CHECK(kl_nn_embedding_init(&emb, a, "emb", 100, 40, &ga));
  if (emb.weight) {
    const float *d = emb.weight->data;
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < emb.weight->numel; i++) {
      sum += d[i];
      sq += (double)d[i] * d[i];
    }
    double mean = sum / (double)emb.weight->numel;
    double var = sq / (double)emb.weight->numel - mean * mean;
    CHECK(fabs(mean) < 0.1);
    CHECK(var > 0.9 && var < 1.1);
  }
  CHECK_EQ_INT(n_reports, 0);

  /* Bad sizes: false, one report each, nothing registered. */
  int before = kl_module_param_count(a);
  kl_nn_linear bad;
  CHECK(!kl_nn_linear_init(&bad, a, "zero", 0, 3, true, &ga));
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "in_features must be positive, got 0");
  CHECK(bad.weight == NULL && bad.bias == NULL);
  CHECK(!kl_nn_linear_init(&bad, a, "nogen", 2, 3, true, NULL));
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "NULL generator");
  CHECK(!kl_nn_conv2d_init(&conv, a, "conv_g", 6, 4, 3, 3, &(kl_conv2d_opts){.groups = 4}, true,
                           &ga));
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "divisible by groups 4");
  CHECK(!kl_nn_batch_norm2d_init(&bn, a, "bn0", 0));
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "channels must be positive");
  CHECK(!kl_nn_layer_norm_init(&ln, a, "ln0", 0, NULL));
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "normalized shape needs 1 to");
  CHECK(!kl_nn_embedding_init(&emb, a, "bad.name", 4, 4, &ga));
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "contains '.'");
  CHECK_EQ_INT(kl_module_param_count(a), before);
  kl_module_destroy(a);
  kl_module_destroy(b);
  kl_module_destroy(c);
}

static bool has_shape(const kl_tensor *t, int rank, const int64_t *shape) {
  if (!t || t->rank != rank)
    return false;
  for (int d = 0; d < rank; d++)
    if (t->shape[d] != shape[d])
      return false;
  return true;
}

static void test_forward(void) {
  kl_generator gen;
  kl_generator_init(&gen, 3);
  kl_module *m = kl_module_create();
  kl_nn_linear fc;
  kl_nn_conv2d conv;
  kl_nn_batch_norm2d bn;
  kl_nn_layer_norm ln;
  kl_nn_embedding emb;
  CHECK(kl_nn_linear_init(&fc, m, "fc", 10, 5, true, &gen));
  CHECK(kl_nn_conv2d_init(&conv, m, "conv", 3, 4, 3, 3,
                          &(kl_conv2d_opts){.stride = {2, 2}, .padding = {1, 1}}, true, &gen));
  CHECK(kl_nn_batch_norm2d_init(&bn, m, "bn", 4));
  CHECK(kl_nn_layer_norm_init(&ln, m, "ln", KL_SHAPE(5)));
  CHECK(kl_nn_embedding_init(&emb, m, "emb", 7, 6, &gen));

  kl_scope_begin();
  kl_tensor *x = kl_randn(&gen, KL_F32, KL_SHAPE(2, 10));
  kl_tensor *y = kl_nn_linear_forward(&fc, x);
  CHECK(has_shape(y, KL_SHAPE(2, 5)));
  if (y) {
    /* y[1][3] = b[3] + sum_k x[1][k] w[3][k] */
    const float *xd = x->data, *wd = fc.weight->data, *bd = fc.bias->data;
    double want = bd[3];
    for (int k = 0; k < 10; k++)
      want += (double)xd[10 + k] * wd[3 * 10 + k];
    CHECK(fabs(((const float *)y->data)[1 * 5 + 3] - want) < 1e-5);
  }
  kl_tensor *z = kl_nn_layer_norm_forward(&ln, y);
  CHECK(has_shape(z, KL_SHAPE(2, 5)));
  if (z) {
    double sum = 0;
    for (int i = 0; i < 5; i++)
      sum += ((const float *)z->data)[i];
    CHECK(fabs(sum) < 1e-5); /* weight ones, bias zeros: each row has mean 0 */
  }

  kl_tensor *img = kl_randn(&gen, KL_F32, KL_SHAPE(1, 3, 9, 9));
  kl_tensor *c = kl_nn_conv2d_forward(&conv, img);
  CHECK(has_shape(c, KL_SHAPE(1, 4, 5, 5)));
  kl_tensor *n = kl_nn_batch_norm2d_forward(&bn, c);
  CHECK(has_shape(n, KL_SHAPE(1, 4, 5, 5)));
  if (c && n) /* fresh statistics: x / sqrt(1 + eps) */
    CHECK(fabs(((const float *)n->data)[17] - ((const float *)c->data)[17] / sqrt(1 + 1e-5)) <
          1e-6);

  int64_t idx[] = {0, 6, 6};
  kl_tensor *ids = kl_from_buffer(KL_I64, KL_SHAPE(3), idx);
  kl_tensor *e = kl_nn_embedding_forward(&emb, ids);
  CHECK(has_shape(e, KL_SHAPE(3, 6)));
  if (e)
    CHECK(memcmp((const float *)e->data + 6, (const float *)emb.weight->data + 36,
                 6 * sizeof(float)) == 0);
  CHECK_EQ_INT(n_reports, 0);

  /* A wrong input shape is the op's error, reported once. */
  CHECK(kl_nn_linear_forward(&fc, img) == NULL);
  CHECK_EQ_INT(n_reports, 1);
  n_reports = 0;
  CHECK(kl_nn_linear_forward(NULL, x) == NULL);
  CHECK_REPORTED(KL_ERR_INVALID_ARGUMENT, "NULL layer");
  kl_scope_end();
  kl_module_destroy(m);
}

/* A two-layer model under its own module; seed decides the values. */
typedef struct mlp {
  kl_module *root;
  kl_nn_linear fc1, fc2;
} mlp;

static void mlp_init(mlp *net, uint64_t seed, int64_t hidden) {
  kl_generator gen;
  kl_generator_init(&gen, seed);
  net->root = kl_module_create();
  CHECK(kl_nn_linear_init(&net->fc1, net->root, "fc1", 4, hidden, true, &gen));
  CHECK(kl_nn_linear_init(&net->fc2, net->root, "fc2", hidden, 2, true, &gen));
}

static bool mlp_forward(void *ctx, kl_tensor *const *inputs, kl_tensor **outputs) {
  const mlp *net = ctx;
  outputs[0] = kl_nn_linear_forward(&net->fc2, kl_relu(kl_nn_linear_forward(&net->fc1, inputs[0])));
  return outputs[0] != NULL;
}

static bool mlp_equal(const mlp *a, const mlp *b) {
  return same_values(a->fc1.weight, b->fc1.weight) && same_values(a->fc1.bias, b->fc1.bias) &&
         same_values(a->fc2.weight, b->fc2.weight) && same_values(a->fc2.bias, b->fc2.bias);
}

static char tmp_dir[64];

static void write_params(const kl_module *root, const char *dir) {
  char path[512];
  for (int i = 0; i < kl_module_param_count(root); i++) {
    kl_tensor *t = NULL;
    const char *name = kl_module_param_at(root, i, &t);
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    CHECK_OK(kl_npy_write(path, t));
  }
}

static void test_load_npy_dir(void) {
  char dir[128], path[256];
  snprintf(dir, sizeof dir, "%s/npy", tmp_dir);
  CHECK(mkdir(dir, 0700) == 0);
  mlp a, b;
  mlp_init(&a, 1, 3);
  mlp_init(&b, 2, 3);
  write_params(a.root, dir);
  CHECK(!mlp_equal(&a, &b));
  kl_tensor *b_weight = b.fc1.weight;
  CHECK_OK(kl_module_load_npy_dir(b.root, dir));
  CHECK(mlp_equal(&a, &b));
  CHECK(b.fc1.weight == b_weight); /* copied in place */

  /* Errors name the parameter; a failed load changes nothing. */
  mlp c;
  mlp_init(&c, 3, 3);
  mlp c0;
  mlp_init(&c0, 3, 3);
  snprintf(path, sizeof path, "%s/fc2.bias.npy", dir);
  CHECK(unlink(path) == 0);
  CHECK_ERR(kl_module_load_npy_dir(c.root, dir), KL_ERR_IO, "fc2.bias");
  CHECK(mlp_equal(&c, &c0));
  CHECK_OK(kl_npy_write(path, a.fc1.bias)); /* (3) where (2) belongs */
  CHECK_ERR(kl_module_load_npy_dir(c.root, dir), KL_ERR_INVALID_ARGUMENT,
            "parameter 'fc2.bias' is Float[2] in the module but Float[3] in the file");
  CHECK(mlp_equal(&c, &c0));
  kl_tensor *as_i64 = kl_zeros(KL_I64, KL_SHAPE(2));
  CHECK_OK(kl_npy_write(path, as_i64));
  CHECK_ERR(kl_module_load_npy_dir(c.root, dir), KL_ERR_INVALID_ARGUMENT, "but Long[2]");
  kl_tensor_release(as_i64);
  CHECK(mlp_equal(&c, &c0));
  CHECK_ERR(kl_module_load_npy_dir(c.root, "/nonexistent/kiln-dir"), KL_ERR_IO, "fc1.weight");

  /* A name that would leave the directory is refused before any file is opened ('.' cannot
   * appear in a part, so a '/' is the only way out). */
  kl_module *hostile = kl_module_create();
  kl_tensor *t = kl_zeros(KL_F32, KL_SHAPE(2));
  CHECK(kl_module_param(kl_module_child(hostile, "up/"), "x", t) == t);
  kl_tensor_release(t);
  CHECK_ERR(kl_module_load_npy_dir(hostile, dir), KL_ERR_INVALID_ARGUMENT,
            "parameter name 'up/.x' cannot name a file in the directory");
  kl_module *absolute = kl_module_create();
  t = kl_zeros(KL_F32, KL_SHAPE(2));
  CHECK(kl_module_param(absolute, "/etc/passwd", t) == t);
  kl_tensor_release(t);
  CHECK_ERR(kl_module_load_npy_dir(absolute, dir), KL_ERR_INVALID_ARGUMENT, "'/etc/passwd'");
  CHECK_ERR(kl_module_load_npy_dir(NULL, dir), KL_ERR_INVALID_ARGUMENT, "NULL module");
  kl_module_destroy(hostile);
  kl_module_destroy(absolute);
  kl_module_destroy(a.root);
  kl_module_destroy(b.root);
  kl_module_destroy(c.root);
  kl_module_destroy(c0.root);
  CHECK_EQ_INT(n_reports, 0);
}

static void test_load_kir(void) {
  char path[256];
  snprintf(path, sizeof path, "%s/mlp.kir", tmp_dir);
  mlp a;
  mlp_init(&a, 11, 3);
  kl_generator gen;
  kl_generator_init(&gen, 5);
  kl_scope_begin();
  kl_tensor *x = kl_randn(&gen, KL_F32, KL_SHAPE(1, 4));
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_trace_fn(mlp_forward, &a, a.root, 1, &x, 1, &g));
  kl_scope_end();
  if (!g)
    return;
  CHECK_OK(kl_graph_save(g, path));
  kl_ir_graph_destroy(g);

  mlp b;
  mlp_init(&b, 12, 3);
  CHECK(!mlp_equal(&a, &b));
  CHECK_OK(kl_module_load_kir(b.root, path));
  CHECK(mlp_equal(&a, &b));

  /* wrong shape: the hidden layer is 4 wide here */
  mlp c, c0;
  mlp_init(&c, 13, 4);
  mlp_init(&c0, 13, 4);
  CHECK_ERR(kl_module_load_kir(c.root, path), KL_ERR_INVALID_ARGUMENT,
            "parameter 'fc1.weight' is Float[4, 4] in the module but Float[3, 4] in the file");
  CHECK(mlp_equal(&c, &c0));

  /* missing: a parameter the file lacks, with the names it has that look alike */
  kl_module *d = kl_module_create();
  kl_nn_linear fc3;
  CHECK(kl_nn_linear_init(&fc3, d, "fc3", 4, 3, true, &gen));
  CHECK_ERR(kl_module_load_kir(d, path), KL_ERR_NOT_FOUND, "no weight named 'fc3.weight'");
  CHECK_ERR(kl_module_load_kir(d, path), KL_ERR_NOT_FOUND, "close names in the file:");
  CHECK_ERR(kl_module_load_kir(d, path), KL_ERR_NOT_FOUND, "'fc1.weight'");

  char missing[256];
  snprintf(missing, sizeof missing, "%s/none.kir", tmp_dir);
  CHECK_ERR(kl_module_load_kir(b.root, missing), KL_ERR_IO, "none.kir");
  kl_module_destroy(a.root);
  kl_module_destroy(b.root);
  kl_module_destroy(c.root);
  kl_module_destroy(c0.root);
  kl_module_destroy(d);
  CHECK_EQ_INT(n_reports, 0);
}

/* Removes what the tests wrote under tmp_dir (two levels, known names only). */
static void remove_tmp(void) {
  char path[256];
  const char *files[] = {"npy/fc1.weight.npy", "npy/fc1.bias.npy", "npy/fc2.weight.npy",
                         "npy/fc2.bias.npy", "mlp.kir"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmp_dir, files[i]);
    unlink(path);
  }
  snprintf(path, sizeof path, "%s/npy", tmp_dir);
  rmdir(path);
  rmdir(tmp_dir);
}

int main(void) {
  kl_set_error_handler(on_error, NULL);
  snprintf(tmp_dir, sizeof tmp_dir, "%s", "/tmp/kiln-test-nn.XXXXXX");
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_names();
  test_bad_names();
  test_init();
  test_forward();
  test_load_npy_dir();
  test_load_kir();
  remove_tmp();
  return check_finish();
}
