/* Tests for ir/kir.c: save/load round trips (same text, same weights, weights borrowed from the
 * mapping), big constants stored as {@N} blobs, the header readable as text, a newer format
 * version refused, and every truncation and every single-byte change of a file refused without
 * a crash. The corpus of hand-broken files is in tests/malformed. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "ir/kir.h"
#include "ir/text.h"

static char tmp_path[64];

/* A graph with weights of several dtypes and ranks (rank 0, an empty one, bf16), one big
 * constant (20 elements: goes to a blob) and one small one (5: stays inline). */
static kl_ir_graph *make_graph(void) {
  char text[4096];
  int n = snprintf(text, sizeof text,
                   "graph(%%x : Float(4, 5)):\n"
                   "  %%w : Float(5, 5) = prim::Param[name=\"w\"]()\n"
                   "  %%b : BFloat16(3) = prim::Param[name=\"fc.b16\"]()\n"
                   "  %%s : Long() = prim::Param[name=\"scalar\"]()\n"
                   "  %%e : Float(0, 3) = prim::Param[name=\"empty\"]()\n"
                   "  %%1 : Float(4, 5) = aten::matmul(%%x, %%w)\n"
                   "  %%c : Float(4, 5) = prim::Constant[value=Float(4, 5){");
  for (int i = 0; i < 20; i++)
    n += snprintf(text + n, sizeof text - (size_t)n, "%s%d.5", i ? ", " : "", i - 10);
  snprintf(text + n, sizeof text - (size_t)n,
           "}]()\n"
           "  %%d : Float(5) = prim::Constant[value=Float(5){1.0, 2.0, 3.0, 4.0, 5.0}]()\n"
           "  %%2 : Float(4, 5) = aten::add(%%1, %%c)\n"
           "  %%3 : Float(4, 5) = aten::add(%%2, %%d)\n"
           "  return (%%3)\n");
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &g));
  if (!g)
    return NULL;
  const struct {
    const char *name;
    kl_dtype dtype;
    int rank;
    int64_t shape[2];
  } ws[] = {{"w", KL_F32, 2, {5, 5}},
            {"fc.b16", KL_BF16, 1, {3}},
            {"scalar", KL_I64, 0, {0}},
            {"empty", KL_F32, 2, {0, 3}}};
  for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
    kl_tensor *t = NULL;
    CHECK_OK(kl_tensor_create(ws[i].dtype, ws[i].rank, ws[i].shape, &t));
    if (!t)
      continue;
    for (size_t b = 0; b < t->nbytes; b++)
      ((unsigned char *)t->data)[b] = (unsigned char)(b * 7 + i);
    kl_ir_graph_set_weight(g, ws[i].name, t);
    kl_tensor_release(t);
  }
  return g;
}

static char *print_graph(const kl_ir_graph *g) {
  char *text = NULL;
  size_t len;
  CHECK_OK(kl_ir_print(g, NULL, &text, &len));
  return text;
}

static unsigned char *read_file(const char *path, size_t *out_size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  /* 64-aligned, with room for a misaligned copy */
  unsigned char *buf = aligned_alloc(64, ((size_t)size + 64) / 64 * 64 + 64);
  if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *out_size = (size_t)size;
  return buf;
}

static const kl_tensor *constant_of(const kl_ir_graph *g, const char *value_name) {
  kl_ir_value *v = kl_ir_graph_find_value(g, value_name);
  const kl_ir_attr *a = v && v->node ? kl_ir_node_attr(v->node, "value") : NULL;
  return a && a->kind == KL_ATTR_TENSOR ? a->u.t : NULL;
}

/* Same weights (names, types, bytes) and same constants in both graphs. */
static void check_same_contents(const kl_ir_graph *a, const kl_ir_graph *b) {
  CHECK_EQ_INT(b->n_weights, a->n_weights);
  for (int i = 0; i < a->n_weights; i++) {
    const kl_tensor *ta = a->weights[i].tensor;
    const kl_tensor *tb = kl_ir_graph_weight(b, a->weights[i].name);
    CHECK(tb != NULL);
    if (!tb)
      continue;
    CHECK_EQ_INT(tb->dtype, ta->dtype);
    CHECK(kl_tensor_same_shape(ta, tb));
    CHECK(tb->nbytes == ta->nbytes && (!ta->nbytes || !memcmp(ta->data, tb->data, ta->nbytes)));
  }
  const char *consts[] = {"c", "d"};
  for (int i = 0; i < 2; i++) {
    const kl_tensor *ca = constant_of(a, consts[i]), *cb = constant_of(b, consts[i]);
    CHECK(ca && cb);
    if (ca && cb)
      CHECK(ca->nbytes == cb->nbytes && !memcmp(ca->data, cb->data, ca->nbytes));
  }
}

/* Tensors of g that are borrowed lie in [lo, hi) and are 64-aligned. */
static void check_borrowed(const kl_ir_graph *g, const void *lo, const void *hi) {
  for (int i = 0; i < g->n_weights; i++) {
    const kl_tensor *t = g->weights[i].tensor;
    CHECK(!t->owns_data);
    if (t->nbytes) {
      CHECK((uintptr_t)t->data % 64 == 0);
      if (lo)
        CHECK((const char *)t->data >= (const char *)lo &&
              (const char *)t->data + t->nbytes <= (const char *)hi);
    }
  }
  const kl_tensor *c = constant_of(g, "c");
  CHECK(c && !c->owns_data && (uintptr_t)c->data % 64 == 0);
  if (c && lo)
    CHECK((const char *)c->data >= (const char *)lo && (const char *)c->data < (const char *)hi);
}

static void test_round_trip(void) {
  kl_ir_graph *g = make_graph();
  if (!g)
    return;
  CHECK_OK(kl_kir_save(g, tmp_path));
  kl_ir_graph *back = NULL;
  CHECK_OK(kl_kir_load(tmp_path, &back));
  if (back) {
    char *ta = print_graph(g), *tb = print_graph(back);
    CHECK(ta && tb);
    if (ta && tb)
      CHECK_STREQ(tb, ta);
    free(ta);
    free(tb);
    check_same_contents(g, back);
    check_borrowed(back, NULL, NULL);
    const kl_tensor *d = constant_of(back, "d"); /* small: parsed inline, owned */
    CHECK(d && d->owns_data);
    CHECK_OK(kl_ir_verify(back));
  }
  kl_ir_graph_destroy(back);

  /* The file: a text header line, then the text IR; big constants as {@N}, small inline. */
  size_t size = 0;
  unsigned char *file = read_file(tmp_path, &size);
  CHECK(file != NULL);
  if (file) {
    CHECK(kl_kir_is_kir(file, size));
    CHECK(size > 256 && memcmp(file, "KILNIR 1 text=256+", 18) == 0 && file[255] == '\n');
    CHECK(memchr(file, '\0', 256) == NULL);
    CHECK(memcmp(file + 256, "graph(", 6) == 0);
    CHECK_EQ_INT(size % 64, 0);
    char *text = strndup((const char *)file + 256, size - 256);
    CHECK(strstr(text, "prim::Constant[value=Float(4, 5){@4}]()") != NULL);
    CHECK(strstr(text, "Float(5){1.0, 2.0, 3.0, 4.0, 5.0}") != NULL);
    CHECK(strstr(text, "-9.5") == NULL);
    free(text);

    /* an aligned buffer is borrowed from, a misaligned one copied */
    CHECK_OK(kl_kir_load_buffer(file, size, "aligned.kir", &back));
    if (back) {
      check_borrowed(back, file, file + size);
      check_same_contents(g, back);
    }
    kl_ir_graph_destroy(back);
    back = NULL;
    memmove(file + 1, file, size);
    CHECK_OK(kl_kir_load_buffer(file + 1, size, "misaligned.kir", &back));
    if (back) {
      check_same_contents(g, back);
      CHECK(kl_ir_graph_weight(back, "w") && kl_ir_graph_weight(back, "w")->owns_data);
      const kl_tensor *c = constant_of(back, "c");
      CHECK(c && c->owns_data && (uintptr_t)c->data % 64 == 0);
    }
    kl_ir_graph_destroy(back);
    back = NULL;
  }
  free(file);
  kl_ir_graph_destroy(g);
}

/* Big constants inside sub-blocks and fusion-group bodies become blobs too, and symbolic
 * dims survive the trip. */
static void test_nested_constants(void) {
  char text[4096], vals[512];
  int n = 0;
  for (int i = 0; i < 20; i++)
    n += snprintf(vals + n, sizeof vals - (size_t)n, "%s%d.25", i ? ", " : "", i);
  snprintf(text, sizeof text,
           "graph<N=1..64>(%%x : Float(N, 20), %%c : Bool()):\n"
           "  %%w : Float(20, 20) = prim::Param[name=\"fc.w\"]()\n"
           "  %%1 : Float(N, 20) = aten::matmul(%%x, %%w)\n"
           "  %%2 : Float(N, 20) = prim::FusionGroup_0(%%1)\n"
           "  %%3 : Float(N, 20) = prim::If(%%c)\n"
           "    block0():\n"
           "      %%k : Float(20) = prim::Constant[value=Float(20){%s}]()\n"
           "      %%a : Float(N, 20) = aten::add(%%2, %%k)\n"
           "      -> (%%a)\n"
           "    block1():\n"
           "      -> (%%2)\n"
           "  return (%%3)\n"
           "with prim::FusionGroup_0 = graph(%%g.a : Float(N, 20)):\n"
           "  %%g.k : Long(20) = prim::Constant[value=Long(20){%s}]()\n"
           "  %%g.f : Float(20) = aten::to[dtype=Float](%%g.k)\n"
           "  %%g.b : Float(N, 20) = aten::mul(%%g.a, %%g.f)\n"
           "  return (%%g.b)\n",
           vals, "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20");
  kl_ir_graph *g = NULL, *back = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &g));
  if (!g)
    return;
  kl_tensor *w = NULL;
  const int64_t wshape[2] = {20, 20};
  CHECK_OK(kl_tensor_create(KL_F32, 2, wshape, &w));
  kl_ir_graph_set_weight(g, "fc.w", w);
  kl_tensor_release(w);
  CHECK_OK(kl_kir_save(g, tmp_path));
  CHECK_OK(kl_kir_load(tmp_path, &back));
  if (back) {
    char *ta = print_graph(g), *tb = print_graph(back);
    CHECK(ta && tb && strcmp(ta, tb) == 0);
    free(ta);
    free(tb);
    const kl_tensor *k = constant_of(back, "k"), *gk = constant_of(back, "g.k");
    CHECK(k && !k->owns_data && ((const float *)k->data)[19] == 19.25f);
    CHECK(gk && !gk->owns_data && gk->dtype == KL_I64 && ((const int64_t *)gk->data)[19] == 20);
  }
  kl_ir_graph_destroy(back);
  size_t size = 0;
  unsigned char *file = read_file(tmp_path, &size);
  if (file) {
    char *body = strndup((const char *)file + 256, size - 256);
    CHECK(body && strstr(body, "Float(20){@1}") && strstr(body, "Long(20){@2}"));
    CHECK(body && !strstr(body, "19.25"));
    free(body);
  }
  free(file);
  kl_ir_graph_destroy(g);
}

/* A graph whose Param has no weight (text IR with no weights) saves and loads as it was. */
static void test_missing_weight(void) {
  const char *text = "graph(%x : Float(2)):\n"
                     "  %w : Float(2) = prim::Param[name=\"w\"]()\n"
                     "  %1 : Float(2) = aten::add(%x, %w)\n"
                     "  return (%1)\n";
  kl_ir_graph *g = NULL, *back = NULL;
  CHECK_OK(kl_ir_parse(text, strlen(text), NULL, &g));
  if (!g)
    return;
  CHECK_OK(kl_kir_save(g, tmp_path));
  CHECK_OK(kl_kir_load(tmp_path, &back));
  CHECK(back && back->n_weights == 0 && kl_ir_graph_weight(back, "w") == NULL);
  kl_ir_graph_destroy(back);
  CHECK_ERR(kl_kir_save(g, "/nonexistent-dir/x.kir"), KL_ERR_IO, "/nonexistent-dir/x.kir");
  CHECK_ERR(kl_kir_load("/nonexistent-dir/x.kir", &back), KL_ERR_IO, "cannot open");
  kl_ir_graph_destroy(g);
}

static void test_version(void) {
  kl_ir_graph *g = make_graph();
  if (!g)
    return;
  CHECK_OK(kl_kir_save(g, tmp_path));
  kl_ir_graph_destroy(g);
  size_t size = 0;
  unsigned char *file = read_file(tmp_path, &size);
  if (!file)
    return;
  kl_ir_graph *back = NULL;
  file[7] = '9';
  CHECK_ERR(kl_kir_load_buffer(file, size, "new.kir", &back), KL_ERR_VERSION,
            "new.kir: written by a newer kiln: format version 9, this kiln reads up to 1");
  /* a longer version number (and so a header laid out differently) is still a version error */
  memmove(file + 8, file + 7, size - 8);
  memcpy(file + 7, "12", 2);
  CHECK_ERR(kl_kir_load_buffer(file, size, "new.kir", &back), KL_ERR_VERSION, "format version 12");
  CHECK_ERR(kl_kir_load_buffer(file, 10, "new.kir", &back), KL_ERR_VERSION, "format version 12");
  CHECK(back == NULL);
  free(file);
}

/* Every truncation and every one-byte change of a valid file is refused: the header checks
 * and the checksum leave nothing that could slip through. */
static void test_damage(void) {
  kl_ir_graph *g = make_graph();
  if (!g)
    return;
  CHECK_OK(kl_kir_save(g, tmp_path));
  kl_ir_graph_destroy(g);
  size_t size = 0;
  unsigned char *file = read_file(tmp_path, &size);
  if (!file)
    return;
  int accepted = 0;
  for (size_t n = 0; n < size; n++) {
    kl_ir_graph *back = NULL;
    kl_status s = kl_kir_load_buffer(file, n, "cut.kir", &back);
    if (!s || kl_status_code_of(s) != KL_ERR_FORMAT || !strstr(kl_status_message(s), "cut.kir"))
      accepted++;
    kl_status_destroy(s);
    kl_ir_graph_destroy(back);
  }
  CHECK_EQ_INT(accepted, 0);
  accepted = 0;
  for (size_t i = 0; i < size; i++) {
    for (int bit = 0; bit < 8; bit += 7) {
      file[i] ^= (unsigned char)(1 << bit);
      kl_ir_graph *back = NULL;
      kl_status s = kl_kir_load_buffer(file, size, "flip.kir", &back);
      if (!s) {
        fprintf(stderr, "byte %zu ^ 0x%x (now 0x%02x) was accepted\n", i, 1u << bit, file[i]);
        accepted++;
      }
      kl_status_destroy(s);
      kl_ir_graph_destroy(back);
      file[i] ^= (unsigned char)(1 << bit);
    }
  }
  CHECK_EQ_INT(accepted, 0);
  /* truncated files on disk go through the mmap path */
  const size_t cuts[] = {0, 5, 255, 256, size / 2, size - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    FILE *f = fopen(tmp_path, "wb");
    CHECK(f != NULL);
    if (!f)
      break;
    CHECK_EQ_INT(fwrite(file, 1, cuts[i], f), cuts[i]);
    fclose(f);
    kl_ir_graph *back = NULL;
    CHECK_ERR(kl_kir_load(tmp_path, &back), KL_ERR_FORMAT, tmp_path);
    CHECK(back == NULL);
  }
  CHECK(!kl_kir_is_kir(file, 6));
  CHECK(!kl_kir_is_kir("\x93NUMPY", 6));
  free(file);
}

/* The checksum as kir.c documents it, so that the test can damage a file and re-seal it: the
 * header up to "sum=" and everything after the header, as little-endian 8-byte words. */
static void reseal(unsigned char *file, size_t size) {
  const char *sum = strstr((const char *)file, " sum=");
  if (!sum || size < 256)
    return;
  size_t prefix = (size_t)(sum + 5 - (const char *)file);
  uint64_t h = 0x6b696c6e2e6b6972ull, total = prefix + size - 256, word = 0;
  int nbytes = 0;
  for (size_t i = 0; i < total; i++) {
    unsigned char b = i < prefix ? file[i] : file[256 + i - prefix];
    word |= (uint64_t)b << (8 * nbytes);
    if (++nbytes == 8 || i + 1 == total) {
      h = (h ^ word) * 0x9e3779b97f4a7c15ull;
      h ^= h >> 29;
      word = 0;
      nbytes = 0;
    }
  }
  h = (h ^ total) * 0x9e3779b97f4a7c15ull;
  h ^= h >> 29;
  char digits[17];
  snprintf(digits, sizeof digits, "%016llx", (unsigned long long)h);
  memcpy(file + prefix, digits, 16);
}

/* Random damage behind a valid checksum reaches the directory and text checks: whatever the
 * bytes, loading gives a graph or a status, never a crash (ASan and UBSan watch this test). */
static void test_resealed_damage(void) {
  size_t size = 0;
  unsigned char *orig = read_file("../malformed/valid/net.kir", &size);
  unsigned char *file = read_file("../malformed/valid/net.kir", &size);
  if (!orig || !file) {
    CHECK(0);
    free(orig);
    free(file);
    return;
  }
  kl_ir_graph *g = NULL;
  memcpy(file, orig, size);
  reseal(file, size);
  CHECK(memcmp(file, orig, size) == 0); /* reseal computes what the writer wrote */
  CHECK_OK(kl_kir_load_buffer(file, size, "resealed.kir", &g));
  kl_ir_graph_destroy(g);
  uint64_t rng = 12345;
  int loaded = 0, refused = 0;
  for (int iter = 0; iter < 3000; iter++) {
    memcpy(file, orig, size);
    int n_changes = 1 + (int)(rng % 3);
    for (int k = 0; k < n_changes; k++) {
      rng = rng * 6364136223846793005ull + 1442695040888963407ull;
      size_t pos = 256 + (size_t)(rng >> 33) % (size - 256);
      unsigned char v = (unsigned char)(rng >> 20);
      /* small integers and 0xff are likelier to pass the first checks */
      file[pos] = (rng >> 60) < 4 ? (unsigned char)((rng >> 56) & 3) : (rng >> 60) < 6 ? 0xff : v;
    }
    reseal(file, size);
    kl_status s = kl_kir_load_buffer(file, size, "fuzz.kir", &g);
    if (s)
      refused++;
    else
      loaded++;
    if (s)
      CHECK(strstr(kl_status_message(s), "fuzz.kir") != NULL);
    kl_status_destroy(s);
    kl_ir_graph_destroy(g);
    g = NULL;
  }
  printf("resealed damage: %d loaded, %d refused\n", loaded, refused);
  CHECK(refused > 0);
  CHECK_EQ_INT(loaded + refused, 3000);
  free(orig);
  free(file);
}

/* tests/malformed/valid/net.kir was written by gen_corpus.py, a second implementation of the
 * format in Python: loading it and saving it again must give the same bytes. */
static void test_python_written_file(void) {
  const char *path = "../malformed/valid/net.kir";
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_kir_load(path, &g));
  if (!g)
    return;
  CHECK_EQ_INT(g->n_weights, 1);
  const kl_tensor *w = kl_ir_graph_weight(g, "w");
  CHECK(w && w->numel == 25 && ((const float *)w->data)[3] == 1.5f && !w->owns_data);
  const kl_tensor *c = constant_of(g, "c");
  CHECK(c && c->numel == 20 && ((const float *)c->data)[19] == -19.0f && !c->owns_data);
  CHECK_OK(kl_kir_save(g, tmp_path));
  kl_ir_graph_destroy(g);
  /* A graph whose weights are mapped from a file can be saved over that same file (a save that
   * truncated the file in place would make the mapped weights fault). */
  g = NULL;
  CHECK_OK(kl_kir_load(tmp_path, &g));
  if (g) {
    CHECK_OK(kl_kir_save(g, tmp_path));
    w = kl_ir_graph_weight(g, "w");
    CHECK(w && !w->owns_data && ((const float *)w->data)[24] == 12.0f);
    kl_ir_graph_destroy(g);
  }
  size_t a_size = 0, b_size = 0;
  unsigned char *a = read_file(path, &a_size), *b = read_file(tmp_path, &b_size);
  CHECK(a && b && a_size == b_size && memcmp(a, b, a_size) == 0);
  free(a);
  free(b);
}

int main(void) {
  strcpy(tmp_path, "/tmp/kiln_test_kir_XXXXXX");
  int fd = mkstemp(tmp_path);
  CHECK(fd >= 0);
  if (fd >= 0)
    close(fd);
  test_round_trip();
  test_nested_constants();
  test_missing_weight();
  test_version();
  test_damage();
  test_python_written_file();
  test_resealed_damage();
  unlink(tmp_path);
  return check_finish();
}
