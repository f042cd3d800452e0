/* Tests of what surrounds the backend, with no LLVM involved: model and field names, the
 * generated header, linking (kl_codegen_link_shared) and the artifact loader.
 *
 * The artifacts here are hand-written: a C file that defines a model's typed API and its
 * descriptor exactly as the backend would, compiled with the system compiler and linked by
 * kl_codegen_link_shared against a small stand-in runtime archive whose one function the models
 * call (so the test also sees that archive code is linked in but not exported). Two such models
 * named a and b are then linked into one C program through their generated headers.
 *
 * Usage: test_artifact SOURCE_ROOT (for runtime/artifact.h). Needs cc, ar, readelf and nm. */
#include <dirent.h>
#include <elf.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "codegen/codegen.h"
#include "codegen/codegen_internal.h"
#include "runtime/artifact_load.h"

static const char *source_root;
static char tmp[256];

static char *path_in_tmp(const char *name) {
  static char bufs[16][512];
  static int next;
  char *b = bufs[next++ % 16];
  snprintf(b, 512, "%s/%s", tmp, name);
  return b;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(1);
  }
  fputs(text, f);
  fclose(f);
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (fread(s, 1, (size_t)n, f) != (size_t)n)
    n = 0;
  s[n] = '\0';
  fclose(f);
  return s;
}

/* Runs a command through the shell for the test's own checks; returns its stdout. */
static char *command_output(const char *cmd) {
  FILE *p = popen(cmd, "r");
  if (!p)
    return NULL;
  size_t cap = 4096, len = 0;
  char *s = malloc(cap);
  size_t n;
  while ((n = fread(s + len, 1, cap - len - 1, p)) > 0) {
    len += n;
    if (cap - len < 2) {
      cap *= 2;
      s = realloc(s, cap);
    }
  }
  s[len] = '\0';
  pclose(p);
  return s;
}

/* Runs a program (NULL-terminated arguments) without a shell; fails on a non-zero exit. */
static kl_status run_prog(const char *first, ...) {
  const char *argv[32];
  int n = 0;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a && n < 31; a = va_arg(ap, const char *))
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  return kl_codegen_run_program(argv);
}

/* ---- names ---------------------------------------------------------------------------- */

static kl_ir_graph *graph_with(const char *const *in_names, int n_in,
                               const char *const *out_names, int n_out) {
  kl_ir_graph *g = kl_ir_graph_create();
  int64_t dims[2] = {2, 3};
  kl_ir_type t = kl_ir_type_make(KL_F32, 2, dims);
  kl_ir_value *first = NULL;
  for (int i = 0; i < n_in; i++) {
    kl_ir_value *v = kl_ir_block_add_param(g->top, in_names[i], &t);
    if (!first)
      first = v;
  }
  for (int i = 0; i < n_out; i++) {
    kl_ir_value *v = kl_ir_block_add_param(g->top, NULL, &t); /* placeholder value */
    kl_ir_value_set_name(v, out_names[i]);
    kl_ir_block_add_return(g->top, v);
  }
  /* The returned values were made as parameters only to have values; drop them from the
   * parameter list by count (the struct is open for reading; tests only). */
  g->top->n_params = n_in;
  return g;
}

static void test_model_names(void) {
  CHECK(kl_codegen_valid_model_name("net"));
  CHECK(kl_codegen_valid_model_name("_x9"));
  CHECK(kl_codegen_valid_model_name("a"));
  CHECK(!kl_codegen_valid_model_name(""));
  CHECK(!kl_codegen_valid_model_name(NULL));
  CHECK(!kl_codegen_valid_model_name("9net"));
  CHECK(!kl_codegen_valid_model_name("my-net"));
  CHECK(!kl_codegen_valid_model_name("int"));
  CHECK(!kl_codegen_valid_model_name("_Bool"));
  CHECK(!kl_codegen_valid_model_name("kiln_x"));
  CHECK(!kl_codegen_valid_model_name("kl_x"));
  CHECK(!kl_codegen_valid_model_name("n\xc3\xa9t"));
  char long_name[80];
  memset(long_name, 'a', 64);
  long_name[64] = '\0';
  CHECK(kl_codegen_valid_model_name(long_name));
  long_name[64] = 'a';
  long_name[65] = '\0';
  CHECK(!kl_codegen_valid_model_name(long_name));
}

static void test_io_names(void) {
  const char *ins[] = {"x", "input.1", "int", "x", "9lives", "__hidden", "INT8_MAX", "a*/b"};
  const char *outs[] = {"y", "y.0", "y_0", "linux"};
  kl_ir_graph *g = graph_with(ins, 8, outs, 4);
  char **names = NULL;
  int n = 0;
  CHECK_OK(kl_codegen_io_names(g, &names, &n));
  CHECK_EQ_INT(n, 12);
  if (n == 12) {
    CHECK_STREQ(names[0], "x");
    CHECK_STREQ(names[1], "input_1");
    CHECK_STREQ(names[2], "input2");     /* a keyword */
    CHECK_STREQ(names[3], "x_1");        /* the graph renamed the second x "x.1" */
    CHECK_STREQ(names[4], "input4");     /* starts with a digit */
    CHECK_STREQ(names[5], "input5");     /* reserved identifier */
    CHECK_STREQ(names[6], "input6");     /* a <stdint.h> macro */
    CHECK_STREQ(names[7], "a__b");
    CHECK_STREQ(names[8], "y");
    CHECK_STREQ(names[9], "y_0");
    CHECK_STREQ(names[10], "y_0_2"); /* duplicate of the mangled y.0 */
    CHECK_STREQ(names[11], "output3");
  }
  /* Whatever happened, the names are distinct identifiers. */
  for (int i = 0; i < n; i++) {
    CHECK(kl_codegen_valid_model_name(names[i]) || strncmp(names[i], "kl_", 3) == 0);
    for (int j = 0; j < i; j++)
      CHECK(strcmp(names[i], names[j]) != 0);
  }
  kl_codegen_free_names(names, n);
  kl_ir_graph_destroy(g);

  /* A name whose mangled form plus a suffix would pass 64 bytes is cut to fit. */
  char long_in[80];
  memset(long_in, 'q', 64);
  long_in[64] = '\0';
  char minus[80], plus[80];
  memcpy(minus, long_in, 63);
  strcpy(minus + 63, "-");
  memcpy(plus, long_in, 63);
  strcpy(plus + 63, "+");
  const char *ins2[] = {long_in, minus, plus};
  g = graph_with(ins2, 3, NULL, 0);
  CHECK_OK(kl_codegen_io_names(g, &names, &n));
  CHECK_EQ_INT(n, 3);
  for (int i = 0; i < n; i++)
    CHECK(strlen(names[i]) <= 64);
  if (n == 3) {
    CHECK_EQ_INT(strlen(names[1]), 64);
    CHECK_EQ_INT(strlen(names[2]), 64);
    CHECK(names[2][62] == '_' && names[2][63] == '2');
    CHECK(strcmp(names[1], names[2]) != 0);
  }
  kl_codegen_free_names(names, n);
  kl_ir_graph_destroy(g);
}

/* ---- header --------------------------------------------------------------------------- */

/* Lines that start with '#'. */
static int count_directives(const char *text) {
  int n = 0;
  for (const char *p = text; p && *p; p = strchr(p, '\n')) {
    if (*p == '\n')
      p++;
    if (*p == '#')
      n++;
  }
  return n;
}

static void test_header(void) {
  int weird_directives = -1;
  const char *ins[] = {"img*/#define X\n", "mask?\?/", "t\\"};
  const char *outs[] = {"out /* c */"};
  kl_ir_graph *g = graph_with(ins, 3, outs, 1);
  kl_compile_options o = {.name = "weird"};
  char *h = path_in_tmp("weird.h");
  CHECK_OK(kl_codegen_write_header_sized(g, &o, 4096, h));
  char *text = read_file(h);
  CHECK(text != NULL);
  if (text) {
    CHECK(strstr(text, "#define WEIRD_WORKSPACE_SIZE UINT64_C(4096)") != NULL);
    CHECK(strstr(text, "#define WEIRD_NUM_INPUTS 3") != NULL);
    CHECK(strstr(text, "#define WEIRD_OK 0") != NULL);
    CHECK(strstr(text, "#define WEIRD_ERR_INVALID_ARGUMENT 1") != NULL);
    CHECK(strstr(text, "const float *img___define_X_; /* img*\\/#define X\\x0a: Float(2, 3), 6 elements */") != NULL);
    CHECK(strstr(text, "float *out____c___; /* out /\\* c *\\/: Float(2, 3), 6 elements */") != NULL);
    CHECK(strstr(text, "img*\\/#define X\\x0a") != NULL);
    CHECK(strstr(text, "extern const struct kl_artifact_descriptor kiln_model_weird;") != NULL);
    CHECK(strstr(text, "int weird_run(weird_ctx *ctx, const weird_inputs *in, weird_outputs *out);") != NULL);
    /* No model byte sequence leaves its comment: the header has exactly the directives of a
     * header with plain names (compared below). */
    weird_directives = count_directives(text);
    free(text);
  }
  /* It compiles cleanly as strict C99 and as C++-compatible C. */
  char *c = path_in_tmp("use_weird.c");
  write_file(c, "#include \"weird.h\"\n"
                "int main(void) { weird_inputs in; weird_outputs out; (void)in; (void)out;\n"
                "  return (int)(WEIRD_WORKSPACE_SIZE != 4096u); }\n");
  char inc[300];
  snprintf(inc, sizeof inc, "-I%s", tmp);
  CHECK_OK(run_prog("cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", inc, "-o",
                    path_in_tmp("use_weird"), c, NULL));
  CHECK_OK(run_prog(path_in_tmp("use_weird"), NULL));
  if (system("command -v c++ >/dev/null 2>&1") == 0)
    CHECK_OK(run_prog("c++", "-x", "c++", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", inc,
                      c, NULL));
  else
    printf("note: no c++ compiler; the header's C++ check was left out\n");
  kl_ir_graph_destroy(g);

  /* An invalid name is refused; a graph with no inputs still gives valid C. */
  o.name = "int";
  CHECK_ERR(kl_codegen_write_header_sized(g = graph_with(NULL, 0, outs, 1), &o, 0, h),
            KL_ERR_INVALID_ARGUMENT, "not a valid model name");
  o.name = "noin";
  CHECK_OK(kl_codegen_write_header_sized(g, &o, 0, path_in_tmp("noin.h")));
  char *plain_text = read_file(path_in_tmp("noin.h"));
  CHECK(plain_text && count_directives(plain_text) == weird_directives);
  CHECK(plain_text && strstr(plain_text, "const void *reserved_;"));
  free(plain_text);
  write_file(c, "#include \"noin.h\"\nint main(void) { noin_inputs in = {0}; (void)in; return 0; }\n");
  CHECK_OK(run_prog("cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                    inc, c, NULL));
  kl_ir_graph_destroy(g);
}

/* ---- hand-written artifacts ----------------------------------------------------------- */

/* A model NAME: y = SCALE * x + kiln_test_rt_offset() over Float(2, 3), with its typed API and
 * descriptor. extra adds more definitions (a second descriptor, ...). */
static void write_hand_model(const char *path, const char *name, unsigned abi, int scale,
                             const char *extra) {
  FILE *f = fopen(path, "w");
  fprintf(f,
          "#include <stdint.h>\n#include <stdlib.h>\n#include \"runtime/artifact.h\"\n"
          "#define MODEL %s\n"
          "#define CAT2(a, b) a##b\n#define CAT(a, b) CAT2(a, b)\n#define F(x) CAT(MODEL, x)\n"
          "#define STR2(x) #x\n#define STR(x) STR2(x)\n"
          "float kiln_test_rt_offset(void);\n"
          "typedef struct F(_ctx) { int threads; } ctx_t;\n"
          "static const int64_t shape[2] = {2, 3};\n"
          "static const kl_artifact_tensor_info ins[1] = {{\"x\", \"x\", 0, 2, shape, 24}};\n"
          "static const kl_artifact_tensor_info outs[1] = {{\"y.out\", \"y_out\", 0, 2, shape, 24}};\n"
          "int F(_create_with)(ctx_t **out, const kl_artifact_options *o) {\n"
          "  *out = NULL; if (o && o->n_threads < 0) return 1;\n"
          "  ctx_t *c = malloc(sizeof *c); if (!c) return 2; c->threads = o ? o->n_threads : 0;\n"
          "  *out = c; return 0; }\n"
          "int F(_create)(ctx_t **out, int n) { kl_artifact_options o = {sizeof o, n, 0, 0};\n"
          "  return F(_create_with)(out, &o); }\n"
          "static int compute(const float *x, float *y) {\n"
          "  for (int i = 0; i < 6; i++) { y[i] = %d.0f * x[i] + kiln_test_rt_offset(); }\n"
          "  return 0; }\n"
          "int F(_run)(ctx_t *c, const void *in, void *out) { (void)c;\n"
          "  return compute(*(const float *const *)in, *(float **)out); }\n"
          "int F(_set_threads)(ctx_t *c, int n) { if (n < 0) return 1; c->threads = n; return 0; }\n"
          "void F(_destroy)(ctx_t *c) { free(c); }\n"
          "const char *F(_error_message)(const ctx_t *c) { (void)c; return \"\"; }\n"
          "const char *F(_status_message)(int code) { return code == 0 ? \"ok\" : \"failed\"; }\n"
          "static int d_create(const kl_artifact_options *o, void **out) {\n"
          "  return F(_create_with)((ctx_t **)out, o); }\n"
          "static int d_run(void *c, const void *const *in, void *const *out, uint32_t flags) {\n"
          "  (void)c; if (flags) return 5; return compute(in[0], out[0]); }\n"
          "static void d_destroy(void *c) { free(c); }\n"
          "static int d_set_threads(void *c, int32_t n) { return F(_set_threads)(c, n); }\n"
          "static const char *d_error(const void *c) { return F(_error_message)(c); }\n"
          "const kl_artifact_descriptor CAT(kiln_model_, MODEL) = {KL_ARTIFACT_MAGIC, %uu,\n"
          "  STR(MODEL), \"test\", 0, 1, 1, 0, ins, outs, 12345, 0, d_create, d_run, d_destroy,\n"
          "  d_set_threads, d_error, F(_status_message)};\n"
          "%s\n",
          name, scale, abi, extra ? extra : "");
  fclose(f);
}

static char archive[512];

/* The stand-in runtime archive: one function the hand models call. */
static void build_archive(void) {
  char *c = path_in_tmp("rt.c"), *o = path_in_tmp("rt.o");
  write_file(c, "float kiln_test_rt_offset(void) { return 0.5f; }\n");
  CHECK_OK(run_prog("cc", "-c", "-fPIC", "-O1", "-o", o, c, NULL));
  snprintf(archive, sizeof archive, "%s", path_in_tmp("libkilnrt_test.a"));
  CHECK_OK(run_prog("ar", "rcs", archive, o, NULL));
  setenv("KILN_RUNTIME_ARCHIVE", archive, 1);
}

static kl_status compile_object(const char *c, const char *o) {
  char inc[300];
  snprintf(inc, sizeof inc, "-I%s", source_root);
  return run_prog("cc", "-c", "-fPIC", "-O1", "-Wall", "-Werror", inc, "-o", o, c, NULL);
}

/* Compiles and links hand model name into tmp/libNAME.so. */
static kl_status build_hand(const char *name, unsigned abi, int scale, const char *extra,
                            char *out_so, size_t size) {
  char file[64];
  snprintf(file, sizeof file, "lib%s.so", name);
  snprintf(out_so, size, "%s", path_in_tmp(file));
  snprintf(file, sizeof file, "%s.c", name);
  char *c = path_in_tmp(file);
  write_hand_model(c, name, abi, scale, extra);
  snprintf(file, sizeof file, "%s.o", name);
  char *o = path_in_tmp(file);
  KL_RETURN_IF_ERROR(compile_object(c, o));
  kl_compile_options opts = {.name = name};
  return kl_codegen_link_shared(o, &opts, out_so);
}

static void check_runs(const kl_artifact_descriptor *d, float scale) {
  float x[6] = {1, -2, 3, 0.25f, -0.5f, 100}, y[6] = {0};
  const void *in[1] = {x};
  void *out[1] = {y};
  void *ctx = NULL;
  CHECK_EQ_INT(d->create(NULL, &ctx), 0);
  if (!ctx)
    return;
  CHECK_EQ_INT(d->run(ctx, in, out, 0), 0);
  for (int i = 0; i < 6; i++)
    CHECK(y[i] == scale * x[i] + 0.5f);
  CHECK_EQ_INT(d->run(ctx, in, out, KL_ARTIFACT_RUN_DEVICE_POINTERS), 5);
  d->destroy(ctx);
}

static void test_link_and_load(void) {
  char so_a[512], so_b[512];
  CHECK_OK(build_hand("a", 1, 2, NULL, so_a, sizeof so_a));
  CHECK_OK(build_hand("b", 1, 3, NULL, so_b, sizeof so_b));

  kl_artifact_handle *ha = NULL, *hb = NULL;
  const kl_artifact_descriptor *da = NULL, *db = NULL;
  CHECK_OK(kl_artifact_open(so_a, &ha, &da));
  CHECK_OK(kl_artifact_open(so_b, &hb, &db));
  if (da && db) {
    CHECK_STREQ(da->name, "a");
    CHECK_STREQ(db->name, "b");
    CHECK_EQ_INT(da->workspace_size, 12345);
    CHECK_STREQ(da->outputs[0].name, "y.out");
    check_runs(da, 2);
    check_runs(db, 3);
  }
  kl_artifact_close(ha);
  kl_artifact_close(hb);

  /* Paths with spaces, commas, quotes and '$' (no shell, no -Wl, splitting): temporary files
   * and the output both. */
  char *odd = path_in_tmp("odd, 'dir' $HOME");
  CHECK_EQ_INT(mkdir(odd, 0700), 0);
  char odd_so[600];
  snprintf(odd_so, sizeof odd_so, "%s/lib a,b.so", odd);
  const char *saved_tmpdir = getenv("TMPDIR");
  char *saved = saved_tmpdir ? strdup(saved_tmpdir) : NULL;
  setenv("TMPDIR", odd, 1);
  kl_compile_options oa_opts = {.name = "a"};
  CHECK_OK(kl_codegen_link_shared(path_in_tmp("a.o"), &oa_opts, odd_so));
  if (saved)
    setenv("TMPDIR", saved, 1);
  else
    unsetenv("TMPDIR");
  free(saved);
  CHECK_OK(kl_artifact_open(odd_so, &ha, &da));
  if (da)
    check_runs(da, 2);
  kl_artifact_close(ha);
  unlink(odd_so);
  CHECK_EQ_INT(rmdir(odd), 0); /* the version script was removed */

  kl_artifact_file_info info;
  CHECK_OK(kl_artifact_peek(so_a, &info));
  CHECK_STREQ(info.symbol, "kiln_model_a");
  CHECK_EQ_INT(info.type, ET_DYN);
  CHECK_EQ_INT(info.workspace_size, 12345);
  CHECK_EQ_INT(info.n_inputs, 1);
  /* The object file is read too (the header writer's source of NET_WORKSPACE_SIZE). */
  CHECK_OK(kl_artifact_peek(path_in_tmp("a.o"), &info));
  CHECK_EQ_INT(info.type, ET_REL);
  CHECK_EQ_INT(info.workspace_size, 12345);
  CHECK_EQ_INT(info.magic, KL_ARTIFACT_MAGIC);

  /* NEEDED: the C library family only. */
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "readelf -d '%s' | grep NEEDED", so_a);
  char *needed = command_output(cmd);
  CHECK(needed && strstr(needed, "libc.so"));
  for (char *line = needed; line && *line;) {
    char *end = strchr(line, '\n');
    if (end)
      *end = '\0';
    CHECK(strstr(line, "libc.so") || strstr(line, "libm.so") || strstr(line, "libpthread.so") ||
          strstr(line, "ld-linux"));
    if (!strstr(line, "libc.so") && !strstr(line, "libm.so") && !strstr(line, "libpthread.so"))
      fprintf(stderr, "unexpected NEEDED: %s\n", line);
    line = end ? end + 1 : NULL;
  }
  free(needed);

  /* Exports: only the model's symbols; the archive's function stays local. */
  snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s' | awk '{print $3}'", so_a);
  char *exports_a = command_output(cmd);
  snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s' | awk '{print $3}'", so_b);
  char *exports_b = command_output(cmd);
  CHECK(exports_a && strstr(exports_a, "kiln_model_a\n") && strstr(exports_a, "a_run\n"));
  CHECK(exports_a && !strstr(exports_a, "kiln_test_rt_offset"));
  int n_exports = 0;
  for (char *line = exports_a; line && *line;) {
    char *end = strchr(line, '\n');
    if (end)
      *end = '\0';
    n_exports++;
    CHECK(strncmp(line, "a_", 2) == 0 || strcmp(line, "kiln_model_a") == 0);
    /* No symbol of a is exported by b. */
    char probe[256];
    snprintf(probe, sizeof probe, "\n%s\n", line);
    char *b_list = malloc(strlen(exports_b) + 2);
    b_list[0] = '\n';
    strcpy(b_list + 1, exports_b);
    CHECK(strstr(b_list, probe) == NULL);
    free(b_list);
    line = end ? end + 1 : NULL;
  }
  CHECK_EQ_INT(n_exports, 8); /* 7 typed functions and the descriptor */
  free(exports_a);
  free(exports_b);

  /* Both libraries in one C program, through their generated headers. */
  const char *ins[] = {"x"}, *outs[] = {"y.out"};
  kl_ir_graph *g = graph_with(ins, 1, outs, 1);
  kl_compile_options oa = {.name = "a"}, ob = {.name = "b"};
  CHECK_OK(kl_codegen_write_header_sized(g, &oa, 12345, path_in_tmp("a.h")));
  CHECK_OK(kl_codegen_write_header_sized(g, &ob, 12345, path_in_tmp("b.h")));
  kl_ir_graph_destroy(g);
  char *main_c = path_in_tmp("two.c");
  write_file(main_c,
             "#include <stdio.h>\n#include \"a.h\"\n#include \"b.h\"\n"
             "int main(void) {\n"
             "  float x[6] = {1, 2, 3, 4, 5, 6}, ya[6], yb[6];\n"
             "  a_ctx *ca; b_ctx *cb;\n"
             "  a_inputs ia = {x}; a_outputs oa = {ya}; b_inputs ib = {x}; b_outputs ob = {yb};\n"
             "  if (a_create(&ca, 1) != A_OK || b_create(&cb, 2) != B_OK) return 2;\n"
             "  if (a_run(ca, &ia, &oa) != A_OK || b_run(cb, &ib, &ob) != B_OK) return 3;\n"
             "  for (int i = 0; i < 6; i++)\n"
             "    if (ya[i] != 2 * x[i] + 0.5f || yb[i] != 3 * x[i] + 0.5f) return 4;\n"
             "  a_destroy(ca); b_destroy(cb);\n"
             "  printf(\"ok %d %d\\n\", (int)A_WORKSPACE_SIZE, A_NUM_OUTPUTS);\n"
             "  return 0;\n}\n");
  char inc[300], rpath[320];
  snprintf(inc, sizeof inc, "-I%s", tmp);
  snprintf(rpath, sizeof rpath, "-Wl,-rpath,%s", tmp);
  const char *argv[] = {"cc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", inc,
                        "-o", path_in_tmp("two"), main_c, so_a, so_b, rpath, NULL};
  CHECK_OK(kl_codegen_run_program(argv));
  char *out = command_output(path_in_tmp("two"));
  CHECK(out && strcmp(out, "ok 12345 1\n") == 0);
  free(out);
}

/* ---- threads -------------------------------------------------------------------------- */

typedef struct thread_job {
  const kl_artifact_descriptor *d;
  float y[6];
  int failures;
} thread_job;

static void *thread_main(void *arg) {
  thread_job *job = arg;
  float x[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  const void *in[1] = {x};
  void *out[1] = {job->y};
  void *ctx = NULL;
  if (job->d->create(NULL, &ctx) != 0) {
    job->failures++;
    return NULL;
  }
  for (int i = 0; i < 50; i++)
    job->failures += job->d->run(ctx, in, out, 0) != 0;
  job->d->destroy(ctx);
  return NULL;
}

static void test_threads(void) {
  kl_artifact_handle *h = NULL;
  const kl_artifact_descriptor *d = NULL;
  CHECK_OK(kl_artifact_open(path_in_tmp("liba.so"), &h, &d));
  if (!d)
    return;
  thread_job one = {d, {0}, 0}, jobs[8];
  thread_main(&one);
  pthread_t threads[8];
  for (int i = 0; i < 8; i++) {
    jobs[i] = (thread_job){d, {0}, 0};
    CHECK_EQ_INT(pthread_create(&threads[i], NULL, thread_main, &jobs[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(threads[i], NULL);
    CHECK_EQ_INT(jobs[i].failures, 0);
    CHECK(memcmp(jobs[i].y, one.y, sizeof one.y) == 0);
  }
  kl_artifact_close(h);
}

/* ---- loader and linker errors --------------------------------------------------------- */

static void test_errors(void) {
  kl_artifact_handle *h = NULL;
  const kl_artifact_descriptor *d = NULL;
  CHECK_ERR(kl_artifact_open(tmp, &h, &d), KL_ERR_INVALID_ARGUMENT, "not a regular file");
  CHECK_ERR(kl_artifact_open(path_in_tmp("missing.so"), &h, &d), KL_ERR_NOT_FOUND, "missing.so");
  char *text = path_in_tmp("text.so");
  write_file(text, "not an elf file at all\n");
  CHECK_ERR(kl_artifact_open(text, &h, &d), KL_ERR_FORMAT, "not an ELF file");
  write_file(text, "");
  CHECK_ERR(kl_artifact_open(text, &h, &d), KL_ERR_FORMAT, "not an ELF file");

  /* Truncated: the ELF header survives, the section headers do not. */
  char cmd[1200];
  char *cut = path_in_tmp("cut.so");
  snprintf(cmd, sizeof cmd, "head -c 2000 '%s' > '%s'", path_in_tmp("liba.so"), cut);
  CHECK_EQ_INT(system(cmd), 0);
  CHECK_ERR(kl_artifact_open(cut, &h, &d), KL_ERR_FORMAT, "section headers");
  snprintf(cmd, sizeof cmd, "head -c 40 '%s' > '%s'", path_in_tmp("liba.so"), cut);
  CHECK_EQ_INT(system(cmd), 0);
  CHECK_ERR(kl_artifact_open(cut, &h, &d), KL_ERR_FORMAT, "truncated ELF header");

  /* Damaged section header table: every byte after the ELF header flipped in turn must give
   * an error or a loadable file, never a crash (peek only: nothing is loaded). */
  char *bytes = NULL;
  {
    FILE *f = fopen(path_in_tmp("liba.so"), "rb");
    CHECK(f != NULL);
    if (!f)
      return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    bytes = malloc((size_t)n);
    CHECK(fread(bytes, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    char *fuzz = path_in_tmp("fuzz.so");
    for (int k = 0; k < 200; k++) {
      long at = 16 + (long)((unsigned)(k * 2654435761u) % (unsigned)(n - 16));
      if (k < 48)
        at = 16 + k; /* every byte of the ELF header after e_ident */
      char saved = bytes[at];
      bytes[at] = (char)(bytes[at] ^ 0xff);
      FILE *w = fopen(fuzz, "wb");
      fwrite(bytes, 1, (size_t)n, w);
      fclose(w);
      kl_artifact_file_info info;
      kl_status_destroy(kl_artifact_peek(fuzz, &info));
      bytes[at] = saved;
    }
    free(bytes);
  }

  /* Another machine's library is refused by name before dlopen sees it. */
  {
    char *arm = path_in_tmp("libarm.so");
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && printf '\\267\\000' | dd of='%s' bs=1 seek=18 conv=notrunc 2>/dev/null",
             path_in_tmp("liba.so"), arm, arm);
    CHECK_EQ_INT(system(cmd), 0);
    CHECK_ERR(kl_artifact_open(arm, &h, &d), KL_ERR_UNSUPPORTED, "built for aarch64");
  }

  /* No descriptor: an ordinary shared library. */
  char *plain_c = path_in_tmp("plain.c"), *plain = path_in_tmp("libplain.so");
  write_file(plain_c, "int plain_function(void) { return 1; }\n");
  CHECK_OK(run_prog("cc", "-shared", "-fPIC", "-o", plain, plain_c, NULL));
  CHECK_ERR(kl_artifact_open(plain, &h, &d), KL_ERR_NOT_FOUND, "no kiln descriptor");

  /* Two descriptors: linked without the version script. */
  char *two_c = path_in_tmp("twodesc.c"), *two_o = path_in_tmp("twodesc.o");
  write_hand_model(two_c, "tw", 1, 1,
                   "const kl_artifact_descriptor kiln_model_other = {KL_ARTIFACT_MAGIC, 1};\n"
                   "float kiln_test_rt_offset(void) { return 0.5f; }\n");
  CHECK_OK(compile_object(two_c, two_o));
  char *two_so = path_in_tmp("libtwo.so");
  CHECK_OK(run_prog("cc", "-shared", "-o", two_so, two_o, NULL));
  CHECK_ERR(kl_artifact_open(two_so, &h, &d), KL_ERR_FORMAT, "two kiln descriptors");

  /* A newer ABI version is refused before the library is loaded. */
  char so[512];
  CHECK_OK(build_hand("future", 99, 1, NULL, so, sizeof so));
  CHECK_ERR(kl_artifact_open(so, &h, &d), KL_ERR_VERSION, "ABI version 99");
  /* An object file is not loadable. */
  CHECK_ERR(kl_artifact_open(path_in_tmp("a.o"), &h, &d), KL_ERR_INVALID_ARGUMENT,
            "object file");
  CHECK(h == NULL && d == NULL);

  /* Linking: a bad name, a missing object, a missing archive, a compiler error. */
  kl_compile_options o = {.name = "9x"};
  CHECK_ERR(kl_codegen_link_shared(path_in_tmp("a.o"), &o, path_in_tmp("x.so")),
            KL_ERR_INVALID_ARGUMENT, "not a valid model name");
  o.name = "a";
  CHECK_ERR(kl_codegen_link_shared(path_in_tmp("none.o"), &o, path_in_tmp("x.so")),
            KL_ERR_NOT_FOUND, "none.o");
  setenv("KILN_RUNTIME_ARCHIVE", path_in_tmp("nope.a"), 1);
  CHECK_ERR(kl_codegen_link_shared(path_in_tmp("a.o"), &o, path_in_tmp("x.so")),
            KL_ERR_NOT_FOUND, "nope.a");
  setenv("KILN_RUNTIME_ARCHIVE", archive, 1);
  /* An object with an undefined symbol: the linker's own message is in the error. */
  char *undef_c = path_in_tmp("undef.c"), *undef_o = path_in_tmp("undef.o");
  write_file(undef_c, "int no_such_function_anywhere(void);\n"
                      "int a_f(void) { return no_such_function_anywhere(); }\n");
  CHECK_OK(compile_object(undef_c, undef_o));
  CHECK_ERR(kl_codegen_link_shared(undef_o, &o, path_in_tmp("x.so")), KL_ERR_IO,
            "no_such_function_anywhere");
  /* $CC that does not exist. */
  setenv("CC", "/nonexistent/cc", 1);
  CHECK_ERR(kl_codegen_link_shared(path_in_tmp("a.o"), &o, path_in_tmp("x.so")), KL_ERR_IO,
            "cannot run /nonexistent/cc");
  unsetenv("CC");
  /* Another target without a cross linker names the object and what is missing. */
  o.triple = "riscv64-unknown-elf";
  setenv("PATH", "/nonexistent", 1);
  CHECK_ERR(kl_codegen_link_shared(path_in_tmp("a.o"), &o, path_in_tmp("x.so")),
            KL_ERR_UNSUPPORTED, "needs a cross linker");
  setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1);
  /* $KILN_CROSS_CC links for another target, with the archive from $KILN_RUNTIME_ARCHIVE
   * (here the host's compiler and archive stand in for a cross tool chain). */
  o.triple = "aarch64-linux-gnu";
  setenv("KILN_CROSS_CC", "cc", 1);
  CHECK_OK(kl_codegen_link_shared(path_in_tmp("a.o"), &o, path_in_tmp("cross.so")));
  CHECK(access(path_in_tmp("cross.so"), F_OK) == 0);
  unsetenv("KILN_RUNTIME_ARCHIVE");
  if (!kl_codegen_triple_is_host(o.triple))
    CHECK_ERR(kl_codegen_link_shared(path_in_tmp("a.o"), &o, path_in_tmp("cross.so")),
              KL_ERR_UNSUPPORTED, "artifact runtime built for aarch64-linux-gnu");
  setenv("KILN_RUNTIME_ARCHIVE", archive, 1);
  unsetenv("KILN_CROSS_CC");
  CHECK(kl_codegen_triple_is_host(NULL));
  CHECK(!kl_codegen_triple_is_host("aarch64-linux-gnu") || !kl_codegen_triple_is_host("x86_64-linux-gnu"));
}

static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

int main(int argc, char **argv) {
  source_root = argc > 1 ? argv[1] : ".";
  const char *base = getenv("TMPDIR");
  snprintf(tmp, sizeof tmp, "%s/kiln-artifact-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 1;
  }
  /* The compilers run here must not inherit the test binary's sanitizer runtime settings. */
  unsetenv("LD_PRELOAD");
  test_model_names();
  test_io_names();
  test_header();
  build_archive();
  test_link_and_load();
  test_threads();
  test_errors();
  if (!check_failures)
    remove_tree(tmp);
  else
    fprintf(stderr, "files kept in %s\n", tmp);
  return check_finish();
}
