/* Compiled models end to end, through the kiln command: `kiln compile` with --header, the
 * libraries' dynamic dependencies and exports, two models in one C program, one model run from
 * eight threads, `kiln run` on a library and with --compiled (the cache: a hit, then a damaged
 * entry detected and rebuilt), `kiln bench`, an aarch64 object, and the example program
 * tools/examples/use_artifact.c built against its generated header. Results are compared with
 * the reference interpreter.
 *
 * Skipped (exit 77) only while the backend refuses every compile (KL_ERR_UNSUPPORTED).
 * Usage: test_artifact_e2e KILN SOURCE_ROOT */
#include <elf.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "codegen/codegen.h"
#include "codegen/codegen_internal.h"
#include "ir/kir.h"
#include "ir/text.h"
#include "runtime/artifact_load.h"
#include "runtime/interp.h"
#include "runtime/npy.h"

static const char *kiln, *root;
static char tmp[256];

static char *tmp_path(const char *name) {
  static char bufs[32][512];
  static int next;
  char *b = bufs[next++ % 32];
  snprintf(b, 512, "%s/%s", tmp, name);
  return b;
}

static char *src_path(const char *name) {
  static char bufs[8][512];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, 512, "%s/%s", root, name);
  return b;
}

static kl_status run_prog(const char *first, ...) {
  const char *argv[40];
  int n = 0;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a && n < 39; a = va_arg(ap, const char *))
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  return kl_codegen_run_program(argv);
}

/* Runs a shell command (test-made paths only) and returns stdout and stderr together. */
static char *shell(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
  FILE *p = popen(cmd, "r");
  size_t cap = 8192, len = 0, n;
  char *s = malloc(cap);
  while (p && (n = fread(s + len, 1, cap - len - 1, p)) > 0) {
    len += n;
    if (cap - len < 2)
      s = realloc(s, cap *= 2);
  }
  s[len] = '\0';
  if (p)
    pclose(p);
  return s;
}

static kl_tensor *read_npy(const char *path) {
  kl_tensor *t = NULL;
  CHECK_OK(kl_npy_read(path, &t));
  return t;
}

/* |a - b| <= atol + rtol * |b| elementwise (float32 tensors of one shape). */
static bool close_enough(const float *a, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (!(fabsf(a[i] - b[i]) <= 1e-5f + 1e-4f * fabsf(b[i]))) {
      fprintf(stderr, "element %lld: %.9g vs %.9g\n", (long long)i, a[i], b[i]);
      return false;
    }
  }
  return true;
}

static const char add_relu_ir[] = "graph(%x : Float(2, 2), %y : Float(2, 2)):\n"
                                  "  %sum : Float(2, 2) = aten::add(%x, %y)\n"
                                  "  %out : Float(2, 2) = aten::relu(%sum)\n"
                                  "  return (%out)\n";

/* The backend's answer on the simplest model: 77 when it is not there yet. */
static int probe_backend(void) {
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_ir_parse(add_relu_ir, sizeof add_relu_ir - 1, NULL, &g));
  kl_compile_options o = {.name = "probe"};
  kl_status s = kl_codegen_llvm_object(g, &o, tmp_path("probe.o"));
  if (kl_status_code_of(s) == KL_ERR_UNSUPPORTED) {
    printf("SKIP: the LLVM backend refuses to compile (%s)\n", kl_status_message(s));
    kl_status_destroy(s);
    kl_ir_graph_destroy(g);
    return 77;
  }
  CHECK_OK(s);
  /* The stand-alone header writer takes NET_WORKSPACE_SIZE from the object it emits. */
  kl_artifact_file_info info;
  CHECK_OK(kl_artifact_peek(tmp_path("probe.o"), &info));
  CHECK_OK(kl_codegen_write_header(g, &o, tmp_path("probe.h")));
  FILE *f = fopen(tmp_path("probe.h"), "r");
  char line[256], want[128];
  snprintf(want, sizeof want, "#define PROBE_WORKSPACE_SIZE UINT64_C(%llu)\n",
           (unsigned long long)info.workspace_size);
  bool found = false;
  while (f && fgets(line, sizeof line, f))
    found = found || strcmp(line, want) == 0;
  if (f)
    fclose(f);
  CHECK(found);
  kl_ir_graph_destroy(g);
  return 0;
}

/* The demo image: a fixed pattern, as .npy and as raw floats. */
static float image[784];
static void write_image(void) {
  for (int i = 0; i < 784; i++)
    image[i] = (float)((i * 37) % 256) / 255.0f;
  int64_t shape[4] = {1, 1, 28, 28};
  kl_tensor *t = NULL;
  CHECK_OK(kl_tensor_wrap(KL_F32, 4, shape, image, sizeof image, &t));
  CHECK_OK(kl_npy_write(tmp_path("image.npy"), t));
  kl_tensor_release(t);
  FILE *f = fopen(tmp_path("image.raw"), "wb");
  fwrite(image, sizeof image, 1, f);
  fclose(f);
  float x[4] = {1, -2, 3.5f, -0.25f}, y[4] = {0.5f, 1, -4, 0.125f};
  int64_t s2[2] = {2, 2};
  CHECK_OK(kl_tensor_wrap(KL_F32, 2, s2, x, sizeof x, &t));
  CHECK_OK(kl_npy_write(tmp_path("x.npy"), t));
  kl_tensor_release(t);
  CHECK_OK(kl_tensor_wrap(KL_F32, 2, s2, y, sizeof y, &t));
  CHECK_OK(kl_npy_write(tmp_path("y.npy"), t));
  kl_tensor_release(t);
}

/* The demo model's probabilities by the interpreter. */
static float reference[10];
static void interpret_demo(void) {
  kl_ir_graph *g = NULL;
  CHECK_OK(kl_kir_load(src_path("tools/examples/demo.kir"), &g));
  if (!g)
    return;
  int64_t shape[4] = {1, 1, 28, 28};
  kl_tensor *in = NULL, *out = NULL;
  CHECK_OK(kl_tensor_wrap(KL_F32, 4, shape, image, sizeof image, &in));
  CHECK_OK(kl_interp_run(g, &in, 1, &out));
  if (out && out->numel == 10)
    memcpy(reference, out->data, sizeof reference);
  kl_tensor_release(in);
  kl_tensor_release(out);
  kl_ir_graph_destroy(g);
}

/* True when text (lines) has a line equal to name. */
static bool has_line(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = text; *p;) {
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && memcmp(p, name, n) == 0)
      return true;
    p += len + (end ? 1 : 0);
  }
  return false;
}

static void test_compile_and_inspect(void) {
  CHECK_OK(run_prog(kiln, "compile", src_path("tests/cli/data/add_relu.ir"), "-o",
                    tmp_path("liba.so"), "--name", "a", "--header", tmp_path("a.h"), NULL));
  CHECK_OK(run_prog(kiln, "compile", src_path("tools/examples/demo.kir"), "-O3", "-o",
                    tmp_path("libb.so"), "--name", "b", "--header", tmp_path("b.h"), NULL));
  for (int k = 0; k < 2; k++) {
    char *needed = shell("readelf -d %s | grep NEEDED", tmp_path(k ? "libb.so" : "liba.so"));
    CHECK(strstr(needed, "libc.so.6") != NULL);
    for (char *line = needed; *line;) {
      char *end = strchr(line, '\n');
      if (end)
        *end = '\0';
      bool ok = strstr(line, "libc.so") || strstr(line, "libm.so") ||
                strstr(line, "libpthread.so") || strstr(line, "ld-linux");
      if (!ok)
        fprintf(stderr, "unexpected dependency: %s\n", line);
      CHECK(ok);
      line = end ? end + 1 : line + strlen(line);
    }
    free(needed);
  }
  char *exports_a = shell("nm -D --defined-only %s | awk '{print $3}'", tmp_path("liba.so"));
  char *exports_b = shell("nm -D --defined-only %s | awk '{print $3}'", tmp_path("libb.so"));
  CHECK(strstr(exports_a, "kiln_model_a\n") && strstr(exports_a, "a_run\n"));
  CHECK(strstr(exports_b, "kiln_model_b\n") && strstr(exports_b, "b_run\n"));
  for (char *line = exports_a; *line;) {
    char *end = strchr(line, '\n');
    if (end)
      *end = '\0';
    CHECK(strncmp(line, "a_", 2) == 0 || strcmp(line, "kiln_model_a") == 0);
    CHECK(!has_line(exports_b, line));
    line = end ? end + 1 : line + strlen(line);
  }
  for (char *line = exports_b; *line;) {
    char *end = strchr(line, '\n');
    if (end)
      *end = '\0';
    CHECK(strncmp(line, "b_", 2) == 0 || strcmp(line, "kiln_model_b") == 0);
    line = end ? end + 1 : line + strlen(line);
  }
  free(exports_a);
  free(exports_b);
}

static void test_two_models_one_program(void) {
  char *c = tmp_path("two.c");
  FILE *f = fopen(c, "w");
  fputs("#include <stdio.h>\n#include \"a.h\"\n#include \"b.h\"\n"
        "int main(int argc, char **argv) {\n"
        "  static float image[784]; float probs[10];\n"
        "  float x[4] = {1, -2, 3.5f, -0.25f}, y[4] = {0.5f, 1, -4, 0.125f}, out[4];\n"
        "  FILE *f = fopen(argv[1], \"rb\");\n"
        "  if (argc < 3 || !f || fread(image, sizeof image, 1, f) != 1) return 9;\n"
        "  fclose(f);\n"
        "  a_ctx *ca; b_ctx *cb;\n"
        "  if (a_create(&ca, 0) != A_OK || b_create(&cb, 2) != B_OK) return 2;\n"
        "  a_inputs ia = {x, y}; a_outputs oa = {out};\n"
        "  b_inputs ib = {image}; b_outputs ob = {probs};\n"
        "  if (a_run(ca, &ia, &oa) != A_OK) return 3;\n"
        "  if (b_run(cb, &ib, &ob) != B_OK) { fprintf(stderr, \"%s\\n\", b_error_message(cb)); return 4; }\n"
        "  for (int i = 0; i < 4; i++) if (out[i] != (x[i] + y[i] > 0 ? x[i] + y[i] : 0)) return 5;\n"
        "  f = fopen(argv[2], \"wb\"); fwrite(probs, sizeof probs, 1, f); fclose(f);\n"
        "  a_destroy(ca); b_destroy(cb);\n"
        "  return 0;\n}\n",
        f);
  fclose(f);
  char inc[300], rpath[320];
  snprintf(inc, sizeof inc, "-I%s", tmp);
  snprintf(rpath, sizeof rpath, "-Wl,-rpath,%s", tmp);
  CHECK_OK(run_prog("cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", inc, "-o",
                    tmp_path("two"), c, tmp_path("liba.so"), tmp_path("libb.so"), rpath, NULL));
  CHECK_OK(run_prog(tmp_path("two"), tmp_path("image.raw"), tmp_path("two_out.raw"), NULL));
  float probs[10] = {0};
  f = fopen(tmp_path("two_out.raw"), "rb");
  CHECK(f && fread(probs, sizeof probs, 1, f) == 1);
  if (f)
    fclose(f);
  CHECK(close_enough(probs, reference, 10));
}

typedef struct job {
  const kl_artifact_descriptor *d;
  float probs[10];
  int failures;
} job;

static void *job_main(void *arg) {
  job *j = arg;
  const void *in[1] = {image};
  void *out[1] = {j->probs};
  void *ctx = NULL;
  if (j->d->create(NULL, &ctx) != 0) {
    j->failures++;
    return NULL;
  }
  for (int i = 0; i < 50; i++)
    j->failures += j->d->run(ctx, in, out, 0) != 0;
  j->d->destroy(ctx);
  return NULL;
}

static void test_threads(void) {
  kl_artifact_handle *h = NULL;
  const kl_artifact_descriptor *d = NULL;
  CHECK_OK(kl_artifact_open(tmp_path("libb.so"), &h, &d));
  if (!d)
    return;
  CHECK_EQ_INT(d->n_inputs, 1);
  CHECK_EQ_INT(d->inputs[0].nbytes, sizeof image);
  job one = {.d = d}, jobs[8];
  job_main(&one);
  CHECK_EQ_INT(one.failures, 0);
  CHECK(close_enough(one.probs, reference, 10));
  pthread_t t[8];
  for (int i = 0; i < 8; i++) {
    jobs[i] = (job){.d = d};
    CHECK_EQ_INT(pthread_create(&t[i], NULL, job_main, &jobs[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    CHECK_EQ_INT(jobs[i].failures, 0);
    CHECK(memcmp(jobs[i].probs, one.probs, sizeof one.probs) == 0);
  }
  kl_artifact_close(h);
}

static void test_kiln_run(void) {
  /* A library and its model give the same outputs through `kiln run`. */
  CHECK_OK(run_prog(kiln, "run", tmp_path("libb.so"), "--input", tmp_path("image.npy"), "-o",
                    tmp_path("b_lib.npy"), "--threads", "2", NULL));
  kl_tensor *t = read_npy(tmp_path("b_lib.npy"));
  CHECK(t && t->numel == 10 && close_enough(t->data, reference, 10));
  kl_tensor_release(t);
  char *printed = shell("%s run %s --input x=%s --input y=%s", kiln, tmp_path("liba.so"),
                        tmp_path("x.npy"), tmp_path("y.npy"));
  char *interp = shell("%s run %s --input x=%s --input y=%s", kiln,
                       src_path("tests/cli/data/add_relu.ir"), tmp_path("x.npy"),
                       tmp_path("y.npy"));
  CHECK_STREQ(printed, interp);
  free(printed);
  free(interp);
  /* A wrong shape and an unknown name are clear errors. */
  char *err = shell("%s run %s --input x=%s --input y=%s", kiln, tmp_path("liba.so"),
                    tmp_path("image.npy"), tmp_path("y.npy"));
  CHECK(strstr(err, "input 'x'") && strstr(err, "compiled for Float(2, 2)"));
  free(err);
  err = shell("%s run %s --input z=%s", kiln, tmp_path("liba.so"), tmp_path("x.npy"));
  CHECK(strstr(err, "no input named 'z'") && strstr(err, "model has inputs: x (Float(2, 2))"));
  free(err);
}

static void test_cache(void) {
  const char *model = src_path("tests/cli/data/add_relu.ir");
  char *cache = tmp_path("cache");
  char *out = shell("%s run %s --compiled -v --cache-dir %s --input x=%s --input y=%s -o %s",
                    kiln, model, cache, tmp_path("x.npy"), tmp_path("y.npy"), tmp_path("c1.npy"));
  CHECK(strstr(out, "kiln: compiled ") && !strstr(out, "(cached)"));
  free(out);
  out = shell("%s run %s --compiled -v --cache-dir %s --input x=%s --input y=%s -o %s", kiln,
              model, cache, tmp_path("x.npy"), tmp_path("y.npy"), tmp_path("c2.npy"));
  CHECK(strstr(out, "kiln: compiled (cached) ") != NULL);
  free(out);
  /* Truncate the cached library: detected, deleted and rebuilt, never loaded. */
  out = shell("for f in %s/*.so; do head -c 3000 \"$f\" > \"$f.cut\" && mv \"$f.cut\" \"$f\"; done",
              cache);
  free(out);
  out = shell("%s run %s --compiled -v --cache-dir %s --input x=%s --input y=%s -o %s", kiln,
              model, cache, tmp_path("x.npy"), tmp_path("y.npy"), tmp_path("c3.npy"));
  CHECK(strstr(out, "damaged; rebuilding") && strstr(out, "kiln: compiled ") &&
        !strstr(out, "(cached)"));
  free(out);
  out = shell("%s run %s --compiled -v --cache-dir %s --input x=%s --input y=%s -o %s", kiln,
              model, cache, tmp_path("x.npy"), tmp_path("y.npy"), tmp_path("c4.npy"));
  CHECK(strstr(out, "(cached)") != NULL);
  free(out);
  /* A missing side file is damage too. */
  out = shell("rm %s/*.sum && %s run %s --compiled -v --cache-dir %s --input x=%s --input y=%s",
              cache, kiln, model, cache, tmp_path("x.npy"), tmp_path("y.npy"));
  CHECK(strstr(out, "damaged; rebuilding") != NULL);
  free(out);
  kl_tensor *c1 = read_npy(tmp_path("c1.npy")), *c3 = read_npy(tmp_path("c3.npy"));
  CHECK(c1 && c3 && c1->nbytes == 16 && memcmp(c1->data, c3->data, 16) == 0);
  if (c1) {
    const float *o = c1->data;
    CHECK(o[0] == 1.5f && o[1] == 0 && o[2] == 0 && o[3] == 0);
  }
  kl_tensor_release(c1);
  kl_tensor_release(c3);
  /* Without --cache-dir: $XDG_CACHE_HOME/kiln. */
  out = shell("XDG_CACHE_HOME=%s %s run %s --compiled --input x=%s --input y=%s && ls %s/kiln",
              tmp_path("xdg"), kiln, model, tmp_path("x.npy"), tmp_path("y.npy"), tmp_path("xdg"));
  CHECK(strstr(out, ".so\n") && strstr(out, ".sum\n") && !strstr(out, "compiled"));
  free(out);
  /* An ONNX model through the cache gives what the interpreter gives. */
  out = shell("%s run %s --compiled --cache-dir %s --input x=%s -o %s", kiln,
              src_path("tests/cli/data/tiny.onnx"), cache, tmp_path("x.npy"), tmp_path("o1.npy"));
  free(out);
  out = shell("%s run %s --input x=%s -o %s", kiln, src_path("tests/cli/data/tiny.onnx"),
              tmp_path("x.npy"), tmp_path("o2.npy"));
  free(out);
  kl_tensor *o1 = read_npy(tmp_path("o1.npy")), *o2 = read_npy(tmp_path("o2.npy"));
  CHECK(o1 && o2 && o1->numel == 6 && o2->numel == 6 &&
        close_enough(o1->data, o2->data, 6));
  kl_tensor_release(o1);
  kl_tensor_release(o2);
  /* Another -O level is another entry. */
  out = shell("%s run %s --compiled -O1 -v --cache-dir %s --input x=%s --input y=%s", kiln,
              model, cache, tmp_path("x.npy"), tmp_path("y.npy"));
  CHECK(strstr(out, "kiln: compiled ") && !strstr(out, "(cached)"));
  free(out);
}

static void test_bench(void) {
  char *out = shell("%s bench %s --iters 5 --warmup 1 --json", kiln, tmp_path("libb.so"));
  CHECK(strstr(out, "\"median_ms\": ") && strstr(out, "\"min_ms\": ") &&
        strstr(out, "\"iters\": 5") && strstr(out, "\"threads\": 1"));
  free(out);
  out = shell("%s bench %s --cache-dir %s --iters 3 --threads 2 --input y=%s", kiln,
              src_path("tests/cli/data/add_relu.ir"), tmp_path("cache"), tmp_path("y.npy"));
  CHECK(strstr(out, "median ") && strstr(out, "2 threads"));
  free(out);
}

static void test_aarch64(void) {
  CHECK_OK(run_prog(kiln, "compile", src_path("tests/cli/data/add_relu.ir"), "--target-triple",
                    "aarch64-linux-gnu", "--emit-obj", tmp_path("arm.o"), NULL));
  unsigned char hdr[20] = {0};
  FILE *f = fopen(tmp_path("arm.o"), "rb");
  CHECK(f && fread(hdr, 1, sizeof hdr, f) == sizeof hdr);
  if (f)
    fclose(f);
  CHECK(memcmp(hdr, ELFMAG, SELFMAG) == 0);
  CHECK_EQ_INT(hdr[18] | hdr[19] << 8, EM_AARCH64);
  kl_artifact_file_info info;
  CHECK_OK(kl_artifact_peek(tmp_path("arm.o"), &info));
  CHECK_EQ_INT(info.machine, EM_AARCH64);
  CHECK_STREQ(info.symbol, "kiln_model_arm");
}

static void test_example(void) {
  CHECK_OK(run_prog("mkdir", "-p", tmp_path("ex"), NULL));
  CHECK_OK(run_prog(kiln, "compile", src_path("tools/examples/demo.kir"), "-o",
                    tmp_path("ex/libnet.so"), "--header", tmp_path("ex/net.h"), NULL));
  char inc[300], rpath[320];
  snprintf(inc, sizeof inc, "-I%s/ex", tmp);
  snprintf(rpath, sizeof rpath, "-Wl,-rpath,%s/ex", tmp);
  CHECK_OK(run_prog("cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", inc, "-o",
                    tmp_path("ex/use_artifact"), src_path("tools/examples/use_artifact.c"),
                    tmp_path("ex/libnet.so"), rpath, NULL));
  char *out = shell("%s 2 %s", tmp_path("ex/use_artifact"), tmp_path("image.raw"));
  float probs[10];
  int n = 0;
  for (char *p = out; n < 10 && *p; n++) {
    char *end;
    probs[n] = strtof(p, &end);
    if (end == p)
      break;
    p = end;
  }
  CHECK_EQ_INT(n, 10);
  if (n == 10)
    CHECK(close_enough(probs, reference, 10));
  free(out);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_artifact_e2e KILN SOURCE_ROOT\n");
    return 2;
  }
  kiln = argv[1];
  root = argv[2];
  const char *base = getenv("TMPDIR");
  snprintf(tmp, sizeof tmp, "%s/kiln-e2e-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 1;
  }
  int rc = probe_backend();
  if (rc == 0 && !check_failures) {
    write_image();
    interpret_demo();
    test_compile_and_inspect();
    test_two_models_one_program();
    test_threads();
    test_kiln_run();
    test_cache();
    test_bench();
    test_aarch64();
    test_example();
  }
  if (!check_failures || rc == 77)
    free(shell("rm -rf %s", tmp));
  else
    fprintf(stderr, "files kept in %s\n", tmp);
  return rc == 77 ? 77 : check_finish();
}
