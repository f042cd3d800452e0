/* The ONNX backend node test harness: conformance CASES_DIR [options].
 *
 * Each case folder (model.onnx, test_data_set_N holding input_K.pb, output_K.pb) is imported
 * with kl_onnx_import_file, run with the interpreter and compared with the expected outputs
 * under ONNX's own tolerances (rtol 1e-3, atol 1e-7, or the case's data.json). Every case runs
 * in a forked child with a time limit, so a crash in imported code is counted as a crash and
 * the run goes on. Graph inputs an op reads as values (a Reshape's shape) are fed like any
 * other: the importer keeps such nodes as onnx::Deferred and the interpreter reads the values
 * at run time. --freeze-inputs (for comparison only: its pass rate is not the honest one)
 * turns those inputs into initializers instead (freeze_inputs.c); --report writes
 * tests/onnx/REPORT.md (report.c).
 *
 * The compiled path (unless --no-compiled): every case the interpreter passes is imported
 * again, optimized at -O3 (kl_pass_run_level), compiled by the LLVM CPU backend (kl_compile) to
 * a .so in a temporary folder, loaded with kl_artifact_open and run on every data set; its
 * outputs must match the interpreter's (rtol 1e-4, atol 1e-5) and ONNX's expected ones (the
 * case's tolerances). A graph with onnx::Deferred nodes (shapes that depend on the values of
 * graph inputs: a Reshape's shape, a ReduceSum's axes) is compiled as `kiln compile --bind`
 * would: just the inputs whose values decide shapes (kl_onnx_shape_inputs) are bound to the
 * data set's values (kl_pass_bind_input), the others stay inputs of the library, and a library
 * is compiled per data set where the bound values differ. A graph still not static after that,
 * or with an op the backend does not handle, is "not compilable", with the reason. The child
 * sends the interpreter's verdict before it compiles, so a crash or timeout in the compiled
 * path fails only the compiled column. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "freeze_inputs.h"
#include "report.h"
#include "codegen/codegen.h"
#include "frontend/onnx/onnx.h"
#include "passes/pass.h"
#include "runtime/artifact_load.h"
#include "runtime/interp.h"

#define MAX_JOBS 64

typedef struct options {
  const char *cases_dir;
  const char *report_path;
  const char *filter;
  bool verbose;
  bool no_fork;
  bool freeze_inputs;
  bool compiled;  /* also compile each case the interpreter passes (default) */
  int min_pass;   /* -1: no floor */
  int min_compiled; /* -1: no floor for the compiled passes */
  int max_not_compilable; /* -1: no ceiling for the cases passed but not compilable */
  int timeout_s;
  int jobs;
} options;

/* ---- small helpers --------------------------------------------------------------------- */

static char *path_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *path = malloc(n);
  if (!path)
    kl_fatal_oom();
  snprintf(path, n, "%s/%s", dir, name);
  return path;
}

static bool file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool dir_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Reasons travel through a pipe as one line and end up in a Markdown table cell. */
static void set_reason(case_result *r, int kind, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->reason, sizeof r->reason, fmt, ap);
  va_end(ap);
  r->kind = kind;
  /* Multi-line messages (an importer lists every bad node) become one line. */
  char *out = r->reason;
  for (const char *c = r->reason; *c; c++) {
    bool space = *c == ' ' || *c == '\n' || *c == '\t' || *c == '\r';
    if (space && out > r->reason && out[-1] == ' ')
      continue;
    *out++ = space ? ' ' : *c;
  }
  *out = '\0';
}

/* The names in dir for which keep(dir, name) holds, sorted; *out_n gets the count. */
static char **list_dir(const char *dir, bool (*keep)(const char *dir, const char *name),
                       int *out_n) {
  *out_n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return NULL;
  char **names = NULL;
  int n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !keep(dir, e->d_name))
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      names = realloc(names, (size_t)cap * sizeof *names);
      if (!names)
        kl_fatal_oom();
    }
    names[n++] = xstrdup(e->d_name);
  }
  closedir(d);
  if (n)
    qsort(names, (size_t)n, sizeof *names, compare_strings);
  *out_n = n;
  return names;
}

static bool is_case_dir(const char *dir, const char *name) {
  char *sub = path_join(dir, name);
  char *model = path_join(sub, "model.onnx");
  bool yes = dir_exists(sub) && file_exists(model);
  free(model);
  free(sub);
  return yes;
}

static bool is_data_set_dir(const char *dir, const char *name) {
  if (strncmp(name, "test_data_set_", 14) != 0)
    return false;
  char *sub = path_join(dir, name);
  bool yes = dir_exists(sub);
  free(sub);
  return yes;
}

/* ---- running one case ---------------------------------------------------------------- */

/* The case's tolerances: ONNX's defaults, or the "rtol"/"atol" of its data.json. */
static void case_tolerances(const char *case_dir, double *rtol, double *atol) {
  *rtol = 1e-3;
  *atol = 1e-7;
  char *path = path_join(case_dir, "data.json");
  FILE *f = fopen(path, "rb");
  free(path);
  if (!f)
    return;
  char text[4096];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  const char *keys[2] = {"\"rtol\"", "\"atol\""};
  double *dest[2] = {rtol, atol};
  for (int i = 0; i < 2; i++) {
    const char *at = strstr(text, keys[i]);
    if (!at)
      continue;
    at = strchr(at, ':');
    if (!at)
      continue;
    char *end;
    double v = strtod(at + 1, &end);
    if (end != at + 1 && isfinite(v) && v >= 0)
      *dest[i] = v;
  }
}

static void format_value(const kl_tensor *t, int64_t i, char *buf, size_t size) {
  if (kl_dtype_is_float(t->dtype))
    snprintf(buf, size, "%.9g", kl_dtype_load_f64(t->dtype, t->data, (size_t)i));
  else
    snprintf(buf, size, "%" PRId64, kl_dtype_load_i64(t->dtype, t->data, (size_t)i));
}

/* Like numpy.testing.assert_allclose: |got - want| <= atol + rtol * |want|, NaN only where
 * NaN is expected, infinities equal only to themselves; bool compared exactly. */
static bool values_close(const kl_tensor *got, const kl_tensor *want, int64_t i, double rtol,
                         double atol) {
  if (!kl_dtype_is_float(want->dtype)) {
    int64_t a = kl_dtype_load_i64(got->dtype, got->data, (size_t)i);
    int64_t b = kl_dtype_load_i64(want->dtype, want->data, (size_t)i);
    if (a == b)
      return true;
    if (want->dtype == KL_BOOL)
      return false;
    return fabs((double)a - (double)b) <= atol + rtol * fabs((double)b);
  }
  double a = kl_dtype_load_f64(got->dtype, got->data, (size_t)i);
  double b = kl_dtype_load_f64(want->dtype, want->data, (size_t)i);
  if (isnan(a) || isnan(b))
    return isnan(a) && isnan(b);
  if (a == b)
    return true;
  if (isinf(a) || isinf(b))
    return false;
  return fabs(a - b) <= atol + rtol * fabs(b);
}

/* Compares output index `which`; on a difference fills r and returns false. */
static bool compare_output(int which, const kl_tensor *got, const kl_tensor *want, double rtol,
                           double atol, case_result *r) {
  if (got->dtype != want->dtype) {
    set_reason(r, RESULT_FAIL, "output %d: wrong dtype: got %s, want %s", which,
               kl_dtype_short_name(got->dtype), kl_dtype_short_name(want->dtype));
    return false;
  }
  if (!kl_tensor_same_shape(got, want)) {
    char g[256], w[256];
    kl_shape_format(got->shape, got->rank, g, sizeof g);
    kl_shape_format(want->shape, want->rank, w, sizeof w);
    set_reason(r, RESULT_FAIL, "output %d: wrong shape: got %s, want %s", which, g, w);
    return false;
  }
  int64_t first = -1, n_bad = 0;
  for (int64_t i = 0; i < want->numel; i++)
    if (!values_close(got, want, i, rtol, atol)) {
      if (first < 0)
        first = i;
      n_bad++;
    }
  if (first < 0)
    return true;
  char g[64], w[64];
  format_value(got, first, g, sizeof g);
  format_value(want, first, w, sizeof w);
  set_reason(r, RESULT_FAIL,
             "output %d: wrong value at index %" PRId64 " (got %s, want %s); %" PRId64
             " of %" PRId64 " differ",
             which, first, g, w, n_bad, want->numel);
  return false;
}

/* Reads prefix0.pb, prefix1.pb, ... from dir until one is missing. On a read error fills r
 * (unsupported for a dtype kiln lacks, error otherwise) and returns false. */
/* The dtype g declares for test input (or output) k, or -1 when it has none: frozen inputs
 * are initializers, and the others are g's inputs in order. */
static int declared_dtype(const kl_ir_graph *g, const bool *frozen, bool output, int k) {
  if (output)
    return k < g->top->n_returns ? (int)g->top->returns[k]->type.dtype : -1;
  if (frozen && frozen[k])
    return -1;
  int bound = 0;
  for (int i = 0; i < k; i++)
    bound += !frozen || !frozen[i];
  return bound < g->top->n_params ? (int)g->top->params[bound]->type.dtype : -1;
}

static bool read_tensors(const kl_ir_graph *g, const bool *frozen, const char *dir,
                         const char *prefix, kl_tensor ***out, int *out_n, case_result *r) {
  *out = NULL;
  *out_n = 0;
  for (int i = 0;; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s%d.pb", prefix, i);
    char *path = path_join(dir, name);
    if (!file_exists(path)) {
      free(path);
      return true;
    }
    kl_tensor *t = NULL;
    kl_status s = kl_onnx_read_tensor_file(path, &t);
    /* ONNX stores bfloat16 test data as uint16 bit patterns (numpy has no bfloat16). */
    if (kl_status_code_of(s) == KL_ERR_UNSUPPORTED &&
        declared_dtype(g, frozen, prefix[0] == 'o', i) == KL_BF16 &&
        read_uint16_tensor_as_bf16(path, &t)) {
      kl_status_destroy(s);
      s = NULL;
    }
    free(path);
    if (s) {
      set_reason(r, kl_status_code_of(s) == KL_ERR_UNSUPPORTED ? RESULT_UNSUPPORTED : RESULT_ERROR,
                 "reading %s: %s", name, kl_status_message(s));
      kl_status_destroy(s);
      return false;
    }
    kl_tensor **grown = realloc(*out, (size_t)(i + 1) * sizeof **out);
    if (!grown)
      kl_fatal_oom();
    *out = grown;
    (*out)[i] = t;
    *out_n = i + 1;
  }
}

static void release_tensors(kl_tensor **ts, int n) {
  for (int i = 0; i < n; i++)
    kl_tensor_release(ts[i]);
  free(ts);
}

/* Runs one data set of a case against an imported graph; false (with r filled) on any
 * difference. Inputs flagged in frozen (may be NULL) are initializers of g, not inputs. */
static bool run_data_set(const kl_ir_graph *g, const char *set_dir, const char *set_name,
                         const bool *frozen, double rtol, double atol, case_result *r,
                         kl_tensor ***keep_outputs) {
  kl_tensor **inputs = NULL, **expected = NULL, **outputs = NULL;
  int n_inputs = 0, n_expected = 0, n_bound = 0;
  bool ok = read_tensors(g, frozen, set_dir, "input_", &inputs, &n_inputs, r) &&
            read_tensors(g, frozen, set_dir, "output_", &expected, &n_expected, r);
  kl_tensor **bound = calloc((size_t)n_inputs + 1, sizeof *bound);
  if (!bound)
    kl_fatal_oom();
  for (int i = 0; ok && i < n_inputs; i++)
    if (!frozen || !frozen[i])
      bound[n_bound++] = inputs[i];
  if (ok && n_bound != g->top->n_params) {
    set_reason(r, RESULT_FAIL, "%s: the graph has %d inputs, the test gives %d", set_name,
               g->top->n_params, n_bound);
    ok = false;
  }
  if (ok && n_expected != g->top->n_returns) {
    set_reason(r, RESULT_FAIL, "%s: the graph has %d outputs, the test expects %d", set_name,
               g->top->n_returns, n_expected);
    ok = false;
  }
  if (ok) {
    outputs = calloc((size_t)n_expected + 1, sizeof *outputs);
    if (!outputs)
      kl_fatal_oom();
    kl_status s = kl_interp_run(g, bound, n_bound, outputs);
    if (s) {
      /* An onnx::Deferred node (a mapping that needed run-time values) may find only at run
       * time that kiln lacks what the values ask for (Dropout with training_mode true): that
       * is unsupported, as it would have been at import with constant inputs. */
      set_reason(r, kl_status_code_of(s) == KL_ERR_UNSUPPORTED ? RESULT_UNSUPPORTED : RESULT_FAIL,
                 "run: %s: %s", kl_status_code_name(kl_status_code_of(s)),
                 kl_status_message(s));
      kl_status_destroy(s);
      ok = false;
    }
    for (int i = 0; ok && i < n_expected; i++)
      ok = compare_output(i, outputs[i], expected[i], rtol, atol, r);
    if (!ok && n_expected > 0 && strstr(r->reason, "output ") == r->reason &&
        strcmp(set_name, "test_data_set_0") != 0) {
      char tmp[REASON_MAX];
      snprintf(tmp, sizeof tmp, "%.64s: %.900s", set_name, r->reason);
      memcpy(r->reason, tmp, sizeof tmp);
    }
  }
  free(bound);
  release_tensors(inputs, n_inputs);
  release_tensors(expected, n_expected);
  if (ok && keep_outputs) { /* the compiled path compares with them */
    *keep_outputs = outputs;
    outputs = NULL;
  }
  release_tensors(outputs, outputs ? n_expected : 0);
  return ok;
}

static bool needs_constant(kl_status s) {
  return kl_status_code_of(s) == KL_ERR_UNSUPPORTED &&
         strstr(kl_status_message(s), "needs a constant") != NULL;
}

/* --freeze-inputs: while the importer says an input needs a constant, freeze the inputs it
 * names (or, when it names none, every input but the first, then all) and import again with
 * the values of set_dir. On success *out_frozen holds the flags, r->frozen the names. */
static kl_status import_frozen(const char *model_path, const char *set_dir, kl_status first,
                               case_result *r, char ***out_names, int *out_n, bool **out_frozen,
                               kl_ir_graph **out_graph) {
  kl_status s = freeze_read_input_names(model_path, out_names, out_n);
  if (s) {
    kl_status_destroy(s);
    return first;
  }
  int n = *out_n;
  bool *frozen = calloc((size_t)n + 1, sizeof *frozen);
  if (!frozen)
    kl_fatal_oom();
  *out_frozen = frozen;
  s = first;
  for (int round = 0; round < 8 && needs_constant(s); round++) {
    int added = freeze_mark_named(kl_status_message(s), *out_names, n, frozen);
    for (int k = n > 1 ? 1 : 0; !added && k < n; k++)
      if (!frozen[k])
        frozen[k] = true, added++;
    for (int k = 0; !added && k < n; k++)
      if (!frozen[k])
        frozen[k] = true, added++;
    if (!added)
      break;
    kl_status_destroy(s);
    s = freeze_import(model_path, set_dir, n, frozen, out_graph);
  }
  size_t used = 0;
  r->frozen[0] = '\0';
  for (int k = 0; k < n && used < sizeof r->frozen; k++)
    if (frozen[k])
      used += (size_t)snprintf(r->frozen + used, sizeof r->frozen - used, "%s%s",
                               used ? ", " : "", (*out_names)[k]);
  return s;
}

/* ---- the compiled path ----------------------------------------------------------------- */

/* Like set_reason, for the compiled verdict. */
static void set_compiled(case_result *r, int kind, const char *fmt, ...) {
  case_result tmp;
  char text[REASON_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  set_reason(&tmp, RESULT_PASS, "%s", text);
  memcpy(r->compiled_reason, tmp.reason, sizeof tmp.reason);
  r->compiled = kind;
}

/* The first onnx::Deferred node in b or its sub-blocks (its mapping needs input values, so the
 * graph's shapes are not static), or NULL. */
static const kl_ir_node *find_deferred(const kl_ir_block *b) {
  for (const kl_ir_node *n = b->first; n; n = n->next) {
    if (n->op == KL_OP_ONNX_DEFERRED)
      return n;
    for (int i = 0; i < n->n_blocks; i++) {
      const kl_ir_node *d = find_deferred(n->blocks[i]);
      if (d)
        return d;
    }
  }
  return NULL;
}

/* The names of the inputs flagged in bound (inputs of g), "a, b", into out. */
static void bound_names(const kl_ir_graph *g, const bool *bound, char *out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  for (int k = 0; bound && k < g->top->n_params && used < size; k++)
    if (bound[k])
      used += (size_t)snprintf(out + used, size - used, "%s%s", used ? ", " : "",
                               g->top->params[k]->name);
}

/* Binds every input of compiled (a fresh import of the model) that bound flags, by its index
 * among the inputs of g (the interpreter's graph, whose inputs are the data set's), to the
 * data set's value: what `kiln compile --bind NAME=input_K.npy` does. */
static bool bind_set_values(const kl_ir_graph *g, kl_ir_graph *compiled, const bool *bound,
                            const char *set_dir, case_result *r) {
  kl_tensor **inputs = NULL;
  int n_inputs = 0;
  case_result tmp = {0};
  bool ok = read_tensors(g, NULL, set_dir, "input_", &inputs, &n_inputs, &tmp);
  if (!ok)
    set_compiled(r, COMPILED_FAIL, "binding: %s", tmp.reason);
  for (int k = 0; ok && k < g->top->n_params; k++) {
    if (!bound[k])
      continue;
    char source[64];
    snprintf(source, sizeof source, "input_%d.pb", k);
    kl_status s = k < n_inputs ? kl_pass_bind_input(compiled, g->top->params[k]->name, inputs[k],
                                                     source)
                               : kl_status_create(KL_ERR_NOT_FOUND, "no %s", source);
    if (s) {
      set_compiled(r, COMPILED_FAIL, "--bind %s=%s: %s", g->top->params[k]->name, source,
                   kl_status_message(s));
      kl_status_destroy(s);
      ok = false;
    }
  }
  release_tensors(inputs, n_inputs);
  return ok;
}

/* Flags in bound the inputs of g whose values still decide shapes in compiled (optimized,
 * with the inputs bound so far), found by name; returns how many were new. */
static int bind_more(const kl_ir_graph *g, kl_ir_graph *compiled, bool *bound) {
  int n = compiled->top->n_params, added = 0;
  bool *decide = calloc((size_t)n + 1, sizeof *decide);
  if (!decide)
    kl_fatal_oom();
  kl_onnx_shape_inputs(compiled, decide);
  for (int i = 0; i < n; i++)
    for (int k = 0; decide[i] && k < g->top->n_params; k++)
      if (!bound[k] && strcmp(g->top->params[k]->name, compiled->top->params[i]->name) == 0) {
        bound[k] = true;
        added++;
      }
  free(decide);
  return added;
}

/* Imports the model again (with set_dir's values frozen where frozen says, or bound at compile
 * time where bound says), optimizes it at -O3 and compiles it to so_path. A graph that keeps
 * onnx::Deferred nodes after -O3 gets the inputs whose values decide its shapes added to bound
 * (when bound is given), and goes again. False, with the verdict in r, when it cannot. */
static bool compile_case(const char *model_path, const char *set_dir, const bool *frozen,
                         int n_names, const kl_ir_graph *g_interp, bool *bound,
                         const char *so_path, case_result *r) {
  for (int round = 0;; round++) {
    kl_ir_graph *g = NULL;
    kl_status s = frozen ? freeze_import(model_path, set_dir, n_names, frozen, &g)
                         : kl_onnx_import_file(model_path, NULL, &g);
    if (s) {
      set_compiled(r, COMPILED_FAIL, "import: %s", kl_status_message(s));
      kl_status_destroy(s);
      return false;
    }
    if (bound && !bind_set_values(g_interp, g, bound, set_dir, r)) {
      kl_ir_graph_destroy(g);
      return false;
    }
    kl_pass_options popts;
    kl_pass_options_init(&popts);
    s = kl_pass_run_level(g, 3, &popts);
    if (s) {
      set_compiled(r, COMPILED_FAIL, "-O3 passes: %s: %s",
                   kl_status_code_name(kl_status_code_of(s)), kl_status_message(s));
      kl_status_destroy(s);
      kl_ir_graph_destroy(g);
      return false;
    }
    kl_ir_node *deferred = (kl_ir_node *)find_deferred(g->top);
    if (deferred && bound && round < 8 && bind_more(g_interp, g, bound) > 0) {
      kl_ir_graph_destroy(g); /* bind those too, from a fresh import */
      continue;
    }
    if (deferred) {
      char names[256];
      bound_names(g_interp, bound, names, sizeof names);
      /* The expander says what the node still lacks (it fails here, as it did in canonicalize). */
      kl_ir_expand_fn expand = kl_ir_expander(KL_OP_ONNX_DEFERRED);
      kl_status why = expand ? expand(deferred) : NULL;
      set_compiled(r, COMPILED_NOT_COMPILABLE,
                   "shapes not static%s%s%s: onnx::Deferred %s node: %s",
                   names[0] ? " after binding " : "", names, names[0] ? " at compile time" : "",
                   kl_ir_node_string(deferred, "op_type", "?"),
                   why ? kl_status_message(why) : "its output shapes depend on input values");
      kl_status_destroy(why);
      kl_ir_graph_destroy(g);
      return false;
    }
    kl_compile_options co = {.name = "net", .target = KL_TARGET_CPU, .opt_level = 3};
    s = kl_compile(g, &co, so_path, NULL);
    if (s) {
      bool unsupported = kl_status_code_of(s) == KL_ERR_UNSUPPORTED;
      set_compiled(r, unsupported ? COMPILED_NOT_COMPILABLE : COMPILED_FAIL, "compile: %s: %s",
                   kl_status_code_name(kl_status_code_of(s)), kl_status_message(s));
    }
    bool ok = s == NULL;
    kl_status_destroy(s);
    kl_ir_graph_destroy(g);
    return ok;
  }
}

/* Runs the artifact d on the data set's inputs (those not frozen or bound) and compares its
 * outputs with the interpreter's (rtol 1e-4, atol 1e-5) and ONNX's expected ones (rtol, atol). */
static bool run_compiled_set(const kl_ir_graph *g, const kl_artifact_descriptor *d,
                             const char *set_dir, const char *set_name, const bool *frozen,
                             const bool *bound, kl_tensor **interp_out, double rtol, double atol,
                             case_result *r) {
  kl_tensor **inputs = NULL, **expected = NULL;
  int n_inputs = 0, n_expected = 0, n_bound = 0;
  case_result tmp = {0};
  bool ok = read_tensors(g, frozen, set_dir, "input_", &inputs, &n_inputs, &tmp) &&
            read_tensors(g, frozen, set_dir, "output_", &expected, &n_expected, &tmp);
  if (!ok)
    set_compiled(r, COMPILED_FAIL, "%s", tmp.reason);
  const void **in_ptrs = calloc((size_t)n_inputs + 1, sizeof *in_ptrs);
  void **out_ptrs = calloc((size_t)n_expected + 1, sizeof *out_ptrs);
  kl_tensor **outputs = calloc((size_t)n_expected + 1, sizeof *outputs);
  if (!in_ptrs || !out_ptrs || !outputs)
    kl_fatal_oom();
  for (int i = 0; ok && i < n_inputs; i++) {
    if ((frozen && frozen[i]) || (bound && bound[i]))
      continue; /* an initializer, or a constant of the library */
    if (n_bound >= d->n_inputs) {
      n_bound++;
      continue;
    }
    const kl_artifact_tensor_info *info = &d->inputs[n_bound];
    const kl_tensor *t = inputs[i];
    bool same = (int)t->dtype == info->dtype && t->rank == info->rank && t->nbytes == info->nbytes;
    for (int k = 0; same && k < t->rank; k++)
      same = t->shape[k] == info->shape[k];
    if (!same) {
      char have[256], want[256];
      kl_shape_format(t->shape, t->rank, have, sizeof have);
      kl_shape_format(info->shape, info->rank, want, sizeof want);
      set_compiled(r, COMPILED_FAIL, "%s: input %d is %s%s, the artifact was compiled for %s%s",
                   set_name, n_bound, kl_dtype_short_name(t->dtype), have,
                   kl_dtype_short_name((kl_dtype)info->dtype), want);
      ok = false;
    }
    in_ptrs[n_bound++] = t->data;
  }
  if (ok && (n_bound != d->n_inputs || n_expected != d->n_outputs)) {
    set_compiled(r, COMPILED_FAIL, "%s: the artifact has %d inputs and %d outputs, the test "
                 "gives %d and expects %d", set_name, d->n_inputs, d->n_outputs, n_bound,
                 n_expected);
    ok = false;
  }
  for (int i = 0; ok && i < n_expected; i++) {
    kl_status s = kl_tensor_create((kl_dtype)d->outputs[i].dtype, d->outputs[i].rank,
                                   d->outputs[i].shape, &outputs[i]);
    if (s) {
      set_compiled(r, COMPILED_FAIL, "%s: output %d: %s", set_name, i, kl_status_message(s));
      kl_status_destroy(s);
      ok = false;
    } else {
      out_ptrs[i] = outputs[i]->data;
    }
  }
  if (ok) {
    void *ctx = NULL;
    int code = d->create(NULL, &ctx);
    if (code != 0 || !ctx) {
      set_compiled(r, COMPILED_FAIL, "%s: create: %s", set_name, d->status_message(code));
      ok = false;
    } else {
      code = d->run(ctx, in_ptrs, out_ptrs, 0);
      if (code != 0) {
        set_compiled(r, COMPILED_FAIL, "%s: run: %s: %s", set_name, d->status_message(code),
                     d->error_message(ctx));
        ok = false;
      }
      d->destroy(ctx);
    }
  }
  for (int i = 0; ok && i < n_expected; i++) {
    if (!compare_output(i, outputs[i], interp_out[i], 1e-4, 1e-5, &tmp)) {
      set_compiled(r, COMPILED_FAIL, "%s: vs the interpreter: %s", set_name, tmp.reason);
      ok = false;
    } else if (!compare_output(i, outputs[i], expected[i], rtol, atol, &tmp)) {
      set_compiled(r, COMPILED_FAIL, "%s: vs ONNX: %s", set_name, tmp.reason);
      ok = false;
    }
  }
  free(in_ptrs);
  free(out_ptrs);
  release_tensors(outputs, n_expected);
  release_tensors(inputs, n_inputs);
  release_tensors(expected, n_expected);
  return ok;
}

/* Whether data sets a and b of a case hold the same values for the inputs flagged in bound,
 * so that one library compiled with them bound serves both. */
static bool same_bound_values(const kl_ir_graph *g, const bool *bound, const char *dir_a,
                              const char *dir_b) {
  kl_tensor **a = NULL, **b = NULL;
  int n_a = 0, n_b = 0;
  case_result tmp = {0};
  bool same = read_tensors(g, NULL, dir_a, "input_", &a, &n_a, &tmp) &&
              read_tensors(g, NULL, dir_b, "input_", &b, &n_b, &tmp) && n_a == n_b;
  for (int k = 0; same && k < n_a; k++)
    same = !bound[k] || (a[k]->dtype == b[k]->dtype && kl_tensor_same_shape(a[k], b[k]) &&
                         a[k]->nbytes == b[k]->nbytes &&
                         memcmp(a[k]->data, b[k]->data, a[k]->nbytes) == 0);
  release_tensors(a, n_a);
  release_tensors(b, n_b);
  return same;
}

/* The compiled path of a case the interpreter passed (interp_out: its outputs per data set).
 * A graph with value-dependent shapes is compiled with the inputs that decide them bound to
 * the data set's values (kl_onnx_shape_inputs, then kl_pass_bind_input); the other inputs stay
 * inputs of the library. One library serves every data set with the same bound values. */
static void run_compiled(const char *model_path, const char *case_dir, char **sets, int n_sets,
                         const kl_ir_graph *g, const bool *frozen, int n_names,
                         kl_tensor ***interp_out, double rtol, double atol, case_result *r) {
  /* A crash here must fail only the compiled column (checked by hand with this variable). */
  const char *crash = getenv("CONFORMANCE_SELFTEST_CRASH_COMPILED");
  if (crash && strcmp(crash, r->name) == 0)
    raise(SIGSEGV);
  r->compiled_bound[0] = '\0';
  bool *bound = NULL;
  if (!frozen) {
    kl_ir_graph *probe = NULL;
    kl_status s = kl_onnx_import_file(model_path, NULL, &probe);
    if (!s && find_deferred(probe->top)) {
      bound = calloc((size_t)probe->top->n_params + 1, sizeof *bound);
      if (!bound)
        kl_fatal_oom();
      if (probe->top->n_params == g->top->n_params)
        kl_onnx_shape_inputs(probe, bound);
    }
    kl_status_destroy(s);
    kl_ir_graph_destroy(probe);
  }
  const char *tmp_root = getenv("TMPDIR");
  char *dir = path_join(tmp_root && tmp_root[0] ? tmp_root : "/tmp", "kiln-conformance.XXXXXX");
  if (!mkdtemp(dir)) {
    set_compiled(r, COMPILED_FAIL, "cannot make a temporary folder %s: %s", dir, strerror(errno));
    free(dir);
    free(bound);
    return;
  }
  char *so_path = path_join(dir, "libnet.so");
  kl_artifact_handle *handle = NULL;
  const kl_artifact_descriptor *d = NULL;
  bool ok = true;
  int n_compiles = 0;
  char *compiled_from = NULL; /* the data set the library was compiled with */
  for (int i = 0; ok && i < n_sets; i++) {
    char *set_dir = path_join(case_dir, sets[i]);
    /* Frozen values differ per data set: one library each; bound ones, when they differ. */
    bool again = !handle || frozen ||
                 (bound && !same_bound_values(g, bound, compiled_from, set_dir));
    if (again) {
      kl_artifact_close(handle);
      handle = NULL;
      unlink(so_path);
      ok = compile_case(model_path, set_dir, frozen, n_names, g, bound, so_path, r);
      n_compiles++;
      free(compiled_from);
      compiled_from = xstrdup(set_dir);
      if (ok) {
        kl_status s = kl_artifact_open(so_path, &handle, &d);
        if (s) {
          set_compiled(r, COMPILED_FAIL, "load: %s", kl_status_message(s));
          kl_status_destroy(s);
          ok = false;
        }
      }
    }
    if (ok)
      ok = run_compiled_set(g, d, set_dir, sets[i], frozen, bound, interp_out[i], rtol, atol, r);
    free(set_dir);
  }
  char names[200];
  bound_names(g, bound, names, sizeof names);
  if (names[0] && n_compiles > 1)
    snprintf(r->compiled_bound, sizeof r->compiled_bound, "%s (a library per data set: %d)",
             names, n_compiles);
  else
    snprintf(r->compiled_bound, sizeof r->compiled_bound, "%s", names);
  if (ok)
    set_compiled(r, COMPILED_PASS, "");
  kl_artifact_close(handle);
  unlink(so_path);
  rmdir(dir);
  free(compiled_from);
  free(so_path);
  free(dir);
  free(bound);
}

/* The child's report of a verdict: "I" (the interpreter's) or "C" (the compiled path's). */
static void send_line(int fd, const char *line, int n) {
  if (fd < 0)
    return;
  if (n >= (int)REASON_MAX * 2 + 300 || n < 0) /* cut short by snprintf */
    n = (int)strlen(line);
  if (write(fd, line, (size_t)n) != n)
    _exit(3);
}

static void run_case(const options *o, case_result *r, int fd) {
  char *case_dir = path_join(o->cases_dir, r->name);
  char *model_path = path_join(case_dir, "model.onnx");
  double rtol, atol;
  case_tolerances(case_dir, &rtol, &atol);
  int n_sets = 0, n_names = 0;
  char **sets = list_dir(case_dir, is_data_set_dir, &n_sets);
  char **names = NULL;
  bool *frozen = NULL;
  kl_ir_graph *g = NULL;
  kl_tensor ***interp_out = NULL;
  int n_ret = 0;
  kl_status s = kl_onnx_import_file(model_path, NULL, &g);
  if (o->freeze_inputs && n_sets > 0 && needs_constant(s)) {
    char *set_dir = path_join(case_dir, sets[0]);
    s = import_frozen(model_path, set_dir, s, r, &names, &n_names, &frozen, &g);
    free(set_dir);
  }
  if (s) {
    if (kl_status_code_of(s) == KL_ERR_UNSUPPORTED)
      set_reason(r, RESULT_UNSUPPORTED, "%s", kl_status_message(s));
    else
      set_reason(r, RESULT_ERROR, "import: %s: %s", kl_status_code_name(kl_status_code_of(s)),
                 kl_status_message(s));
    kl_status_destroy(s);
  } else {
    bool ok = true;
    n_ret = g->top->n_returns;
    interp_out = calloc((size_t)n_sets + 1, sizeof *interp_out);
    if (!interp_out)
      kl_fatal_oom();
    if (n_sets == 0) {
      set_reason(r, RESULT_ERROR, "no test_data_set_* folder");
      ok = false;
    }
    for (int i = 0; ok && i < n_sets; i++) {
      char *set_dir = path_join(case_dir, sets[i]);
      if (frozen && i > 0) { /* each data set freezes its own values */
        kl_ir_graph_destroy(g);
        g = NULL;
        s = freeze_import(model_path, set_dir, n_names, frozen, &g);
        if (s) {
          set_reason(r, RESULT_ERROR, "%s: import with frozen inputs: %s", sets[i],
                     kl_status_message(s));
          kl_status_destroy(s);
          ok = false;
        }
      }
      if (ok)
        ok = run_data_set(g, set_dir, sets[i], frozen, rtol, atol, r, &interp_out[i]);
      free(set_dir);
    }
    if (ok)
      set_reason(r, RESULT_PASS, "");
  }
  char line[REASON_MAX * 2 + 300];
  int n = snprintf(line, sizeof line, "I\t%d\t%s\t%s\n", r->kind, r->frozen, r->reason);
  send_line(fd, line, n);
  r->compiled = COMPILED_NONE;
  r->compiled_reason[0] = '\0';
  r->compiled_bound[0] = '\0';
  if (o->compiled && r->kind == RESULT_PASS) {
    run_compiled(model_path, case_dir, sets, n_sets, g, frozen, n_names, interp_out, rtol, atol,
                 r);
    n = snprintf(line, sizeof line, "C\t%d\t%s\t%s\n", r->compiled, r->compiled_bound,
                 r->compiled_reason);
    send_line(fd, line, n);
  }
  for (int i = 0; interp_out && i < n_sets; i++)
    release_tensors(interp_out[i], interp_out[i] ? n_ret : 0);
  free(interp_out);
  kl_ir_graph_destroy(g);
  free(frozen);
  freeze_free_input_names(names, n_names);
  free_names(sets, n_sets);
  free(model_path);
  free(case_dir);
}

/* ---- running cases in children ------------------------------------------------------- */

typedef struct child {
  pid_t pid;
  int fd;
  int index;
} child;

static void start_child(const options *o, case_result *r, int index, child *out) {
  int fds[2];
  if (pipe(fds) != 0) {
    perror("conformance: pipe");
    exit(2);
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("conformance: fork");
    exit(2);
  }
  if (pid == 0) {
    close(fds[0]);
    alarm((unsigned)o->timeout_s);
    /* Node tests are tiny; a runaway size must not take the machine's memory. */
    kl_tensor_set_max_bytes((size_t)1 << 30);
    /* selftest.py checks that a crash and a hang are caught and counted. */
    const char *crash = getenv("CONFORMANCE_SELFTEST_CRASH");
    const char *hang = getenv("CONFORMANCE_SELFTEST_HANG");
    if (crash && strcmp(crash, r->name) == 0)
      raise(SIGSEGV);
    if (hang && strcmp(hang, r->name) == 0)
      for (;;)
        pause();
    run_case(o, r, fds[1]);
    close(fds[1]);
    /* exit, not _exit: a sanitizer's leak check runs at exit and fails the child. */
    exit(0);
  }
  close(fds[1]);
  out->pid = pid;
  out->fd = fds[0];
  out->index = index;
}

/* What a child sent: "I\tKIND\tFROZEN\tREASON\n" (the interpreter's verdict), then for a pass
 * "C\tKIND\tREASON\n" (the compiled path's). A child that dies after the first line keeps the
 * interpreter's verdict; its compiled path fails with the cause. */
static void finish_child(const options *o, const child *c, int wstatus, case_result *r) {
  char line[REASON_MAX * 2 + 600];
  size_t n = 0;
  ssize_t got;
  while (n < sizeof line - 1 && (got = read(c->fd, line + n, sizeof line - 1 - n)) > 0)
    n += (size_t)got;
  line[n] = '\0';
  close(c->fd);
  char *compiled_line = NULL;
  char *nl = strchr(line, '\n');
  if (nl) {
    *nl = '\0';
    if (nl[1] == 'C' && nl[2] == '\t') {
      compiled_line = nl + 3;
      char *end = strchr(compiled_line, '\n');
      if (end)
        *end = '\0';
      else
        compiled_line = NULL; /* cut short */
    }
  }
  char *tab = line[0] == 'I' && line[1] == '\t' && nl ? line + 1 : NULL;
  int kind = tab ? atoi(tab + 1) : -1;
  char *fields = tab ? strchr(tab + 1, '\t') : NULL;
  if (!fields || kind < 0 || kind >= RESULT_KINDS)
    tab = NULL;
  char cause[160] = "";
  if (WIFSIGNALED(wstatus)) {
    int sig = WTERMSIG(wstatus);
    if (sig == SIGALRM)
      snprintf(cause, sizeof cause, "timed out after %d s", o->timeout_s);
    else
      snprintf(cause, sizeof cause, "killed by signal %d (%s)", sig, strsignal(sig));
  } else if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    snprintf(cause, sizeof cause, "exited with status %d %s",
             WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1,
             tab ? "after the interpreter's verdict (a sanitizer report on stderr?)"
                 : "before giving a result (a sanitizer report on stderr?)");
  }
  r->compiled = COMPILED_NONE;
  r->compiled_reason[0] = '\0';
  r->compiled_bound[0] = '\0';
  if (!tab) {
    set_reason(r, RESULT_CRASH, "%s", cause[0] ? cause : "gave no result");
    return;
  }
  char *reason = strchr(fields + 1, '\t');
  if (reason)
    *reason++ = '\0';
  snprintf(r->frozen, sizeof r->frozen, "%s", fields + 1);
  bool wants_compiled = o->compiled && kind == RESULT_PASS;
  if (cause[0] && (!wants_compiled || compiled_line)) {
    /* the whole case ran, then the exit failed: a sanitizer found a leak or an error */
    set_reason(r, RESULT_CRASH, "%s", cause);
    return;
  }
  set_reason(r, kind, "%s", reason ? reason : "");
  if (!wants_compiled)
    return;
  if (!compiled_line) {
    set_compiled(r, COMPILED_FAIL, "crashed in the compiled path: %s",
                 cause[0] ? cause : "no verdict");
    return;
  }
  int ckind = atoi(compiled_line);
  char *cbound = strchr(compiled_line, '\t');
  char *creason = cbound ? strchr(cbound + 1, '\t') : NULL;
  if (ckind <= COMPILED_NONE || ckind >= COMPILED_KINDS || !creason) {
    set_compiled(r, COMPILED_FAIL, "a malformed compiled verdict");
  } else {
    *creason = '\0';
    snprintf(r->compiled_bound, sizeof r->compiled_bound, "%s", cbound + 1);
    set_compiled(r, ckind, "%s", creason + 1);
  }
}

/* Messages name files by the path the harness gave; the case's folder is left out, so that
 * the report reads the same on every machine ("model.onnx: node ..."). */
static void strip_case_dir(const options *o, case_result *r) {
  char *case_dir = path_join(o->cases_dir, r->name);
  size_t n = strlen(case_dir);
  char *at;
  char *texts[2] = {r->reason, r->compiled_reason};
  for (int t = 0; t < 2; t++)
    while ((at = strstr(texts[t], case_dir)) && at[n] == '/')
      memmove(at, at + n + 1, strlen(at + n + 1) + 1);
  free(case_dir);
}

static void print_case(const options *o, const case_result *r) {
  if (o->verbose || r->kind == RESULT_CRASH)
    printf("%-11s %s [%s]%s%s%s%s%s\n", result_names[r->kind], r->name, r->op,
           r->frozen[0] ? " (inputs frozen: " : "", r->frozen, r->frozen[0] ? ")" : "",
           r->reason[0] ? ": " : "", r->reason);
  /* The compiled path's verdict on its own line, for the failures (all with --verbose). */
  if (r->compiled == COMPILED_FAIL || (o->verbose && r->compiled != COMPILED_NONE))
    printf("  compiled: %-14s %s [%s]%s%s%s%s%s\n", compiled_names[r->compiled], r->name, r->op,
           r->compiled_bound[0] ? " (bound: " : "", r->compiled_bound,
           r->compiled_bound[0] ? ")" : "", r->compiled_reason[0] ? ": " : "",
           r->compiled_reason);
}

static void run_all(const options *o, case_result *results, int n) {
  if (o->no_fork) {
    for (int i = 0; i < n; i++) {
      run_case(o, &results[i], -1);
      strip_case_dir(o, &results[i]);
      print_case(o, &results[i]);
    }
    return;
  }
  /* On the stack, not the heap: a child's leak check at its exit would count a heap array
   * it inherited by fork as its own leak. */
  child running[MAX_JOBS];
  int next = 0, n_running = 0;
  while (next < n || n_running > 0) {
    while (next < n && n_running < o->jobs) {
      start_child(o, &results[next], next, &running[n_running]);
      n_running++;
      next++;
    }
    int wstatus;
    pid_t pid = waitpid(-1, &wstatus, 0);
    if (pid < 0) {
      if (errno == EINTR)
        continue;
      perror("conformance: waitpid");
      exit(2);
    }
    for (int i = 0; i < n_running; i++) {
      if (running[i].pid != pid)
        continue;
      case_result *r = &results[running[i].index];
      finish_child(o, &running[i], wstatus, r);
      strip_case_dir(o, r);
      print_case(o, r);
      running[i] = running[--n_running];
      break;
    }
  }
}

/* ---- main ---------------------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: conformance CASES_DIR [--report OUT.md] [--filter SUBSTR] [--verbose]\n"
          "                   [--min-pass N] [--timeout SECONDS] [--jobs N] [--no-fork]\n"
          "                   [--freeze-inputs] [--no-compiled] [--min-compiled N]\n"
          "                   [--compiled-floor-from REPORT.md]\n");
}

static bool parse_int(const char *s, int min, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > 1000000)
    return false;
  *out = (int)v;
  return true;
}

/* The floor for the compiled passes: the count on the "compiled: N passed" line of a report,
 * less a margin of 5 (as run_conformance.sh does for the interpreter's passes); and the
 * ceiling for the cases not compilable: that line's "M not compilable", with no margin, since
 * each is a case the interpreter passes that the backend cannot take (a binding or an op that
 * regressed). */
static bool compiled_floor_from(const char *path, int *out, int *out_max_not_compilable) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "conformance: cannot read %s: %s\n", path, strerror(errno));
    return false;
  }
  char line[1024];
  int passed = -1, not_compilable = -1;
  while (passed < 0 && fgets(line, sizeof line, f))
    if (sscanf(line, "compiled: %d passed", &passed) != 1)
      passed = -1;
  fclose(f);
  const char *at = passed >= 0 ? strstr(line, " not compilable") : NULL;
  if (at) {
    const char *start = at;
    while (start > line && start[-1] >= '0' && start[-1] <= '9')
      start--;
    if (start < at)
      not_compilable = atoi(start);
  }
  if (passed < 0 || not_compilable < 0) {
    fprintf(stderr, "conformance: no line 'compiled: N passed ... M not compilable' in %s\n",
            path);
    return false;
  }
  *out = passed > 5 ? passed - 5 : 0;
  *out_max_not_compilable = not_compilable;
  return true;
}

static bool parse_args(int argc, char **argv, options *o) {
  *o = (options){.min_pass = -1, .min_compiled = -1, .max_not_compilable = -1, .timeout_s = 60,
                 .jobs = 1,
                 .compiled = true};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (!strcmp(a, "--verbose") || !strcmp(a, "-v"))
      o->verbose = true;
    else if (!strcmp(a, "--no-fork"))
      o->no_fork = true;
    else if (!strcmp(a, "--freeze-inputs"))
      o->freeze_inputs = true;
    else if (!strcmp(a, "--no-compiled"))
      o->compiled = false;
    else if (!strcmp(a, "--min-compiled") && has_value) {
      if (!parse_int(argv[++i], 0, &o->min_compiled))
        return false;
    } else if (!strcmp(a, "--compiled-floor-from") && has_value) {
      if (!compiled_floor_from(argv[++i], &o->min_compiled, &o->max_not_compilable))
        return false;
    }
    else if (!strcmp(a, "--report") && has_value)
      o->report_path = argv[++i];
    else if (!strcmp(a, "--filter") && has_value)
      o->filter = argv[++i];
    else if (!strcmp(a, "--min-pass") && has_value) {
      if (!parse_int(argv[++i], 0, &o->min_pass))
        return false;
    } else if (!strcmp(a, "--timeout") && has_value) {
      if (!parse_int(argv[++i], 1, &o->timeout_s))
        return false;
    } else if ((!strcmp(a, "--jobs") || !strcmp(a, "-j")) && has_value) {
      if (!parse_int(argv[++i], 1, &o->jobs) || o->jobs > MAX_JOBS)
        return false;
    } else if (a[0] != '-' && !o->cases_dir)
      o->cases_dir = a;
    else
      return false;
  }
  return o->cases_dir != NULL;
}

int main(int argc, char **argv) {
  options o;
  if (!parse_args(argc, argv, &o)) {
    usage();
    return 2;
  }
  int n_all = 0;
  char **names = list_dir(o.cases_dir, is_case_dir, &n_all);
  if (n_all == 0) {
    fprintf(stderr, "conformance: no case folders (with model.onnx) in %s\n", o.cases_dir);
    free_names(names, n_all);
    return 2;
  }
  /* The ops of every model first: "_expanded" cases are named after an op they lack. */
  op_list *model_ops = calloc((size_t)n_all, sizeof *model_ops);
  op_list known = {0};
  bool *readable = calloc((size_t)n_all, sizeof *readable);
  if (!model_ops || !readable)
    kl_fatal_oom();
  for (int i = 0; i < n_all; i++) {
    char *case_dir = path_join(o.cases_dir, names[i]);
    char *model = path_join(case_dir, "model.onnx");
    readable[i] = read_model_ops(model, &model_ops[i]);
    if (!readable[i])
      op_list_free(&model_ops[i]);
    if (model_ops[i].n == 1)
      op_list_add(&known, "", 0, model_ops[i].ops[0], strlen(model_ops[i].ops[0]));
    free(model);
    free(case_dir);
  }
  case_result *results = calloc((size_t)n_all, sizeof *results);
  if (!results)
    kl_fatal_oom();
  int n = 0;
  for (int i = 0; i < n_all; i++) {
    if (o.filter && !strstr(names[i], o.filter))
      continue;
    results[n].name = xstrdup(names[i]);
    results[n].op = readable[i] ? case_op_label(i, names, model_ops, n_all, &known)
                                : xstrdup("(unreadable model)");
    n++;
  }
  for (int i = 0; i < n_all; i++)
    op_list_free(&model_ops[i]);
  free(model_ops);
  free(readable);
  op_list_free(&known);
  free_names(names, n_all);

  run_all(&o, results, n);

  int count[RESULT_KINDS] = {0};
  for (int i = 0; i < n; i++)
    count[results[i].kind]++;
  int n_frozen = 0;
  for (int i = 0; i < n; i++)
    n_frozen += results[i].kind == RESULT_PASS && results[i].frozen[0];
  char summary[512];
  int len = snprintf(summary, sizeof summary,
                     "%d cases: %d passed, %d failed, %d unsupported, %d errors, %d crashed "
                     "(%d/%d = %.1f%%)",
                     n, count[RESULT_PASS], count[RESULT_FAIL], count[RESULT_UNSUPPORTED],
                     count[RESULT_ERROR], count[RESULT_CRASH], count[RESULT_PASS], n,
                     n ? 100.0 * count[RESULT_PASS] / n : 0.0);
  if (o.freeze_inputs && len > 0 && (size_t)len < sizeof summary)
    snprintf(summary + len, sizeof summary - (size_t)len,
             "\n%d of the passes froze inputs into initializers (--freeze-inputs)", n_frozen);
  int ccount[COMPILED_KINDS] = {0}, n_value_dependent = 0, n_bound = 0;
  for (int i = 0; i < n; i++) {
    ccount[results[i].compiled]++;
    n_bound += results[i].compiled == COMPILED_PASS && results[i].compiled_bound[0];
    n_value_dependent += results[i].compiled == COMPILED_NOT_COMPILABLE &&
                         strstr(results[i].compiled_reason, "onnx::Deferred") != NULL;
  }
  len = (int)strlen(summary);
  if (o.compiled && len > 0 && (size_t)len < sizeof summary) {
    int tried = count[RESULT_PASS];
    snprintf(summary + len, sizeof summary - (size_t)len,
             "\ncompiled: %d passed (%d of them with inputs bound at compile time), %d failed, "
             "%d not compilable (%d with onnx::Deferred nodes left) of the %d cases the "
             "interpreter passes (%d/%d = %.1f%%)",
             ccount[COMPILED_PASS], n_bound, ccount[COMPILED_FAIL],
             ccount[COMPILED_NOT_COMPILABLE], n_value_dependent, tried, ccount[COMPILED_PASS],
             tried, tried ? 100.0 * ccount[COMPILED_PASS] / tried : 0.0);
  }
  printf("%s\n", summary);
  int rc = 0;
  if (o.report_path &&
      !write_report(o.report_path, o.freeze_inputs, o.compiled, summary, results, n))
    rc = 2;
  if (ccount[COMPILED_FAIL] > 0) {
    fprintf(stderr, "conformance: %d case(s) the interpreter passes failed compiled\n",
            ccount[COMPILED_FAIL]);
    rc = 1;
  }
  if (o.compiled && o.max_not_compilable >= 0 &&
      ccount[COMPILED_NOT_COMPILABLE] > o.max_not_compilable) {
    fprintf(stderr,
            "conformance: %d cases the interpreter passes are not compilable, more than the %d "
            "of the report given to --compiled-floor-from\n",
            ccount[COMPILED_NOT_COMPILABLE], o.max_not_compilable);
    rc = 1;
  }
  if (o.compiled && o.min_compiled >= 0 && ccount[COMPILED_PASS] < o.min_compiled) {
    fprintf(stderr,
            "conformance: %d cases passed compiled, fewer than the floor --min-compiled %d\n",
            ccount[COMPILED_PASS], o.min_compiled);
    rc = 1;
  }
  if (count[RESULT_CRASH] > 0) {
    fprintf(stderr, "conformance: %d case(s) crashed\n", count[RESULT_CRASH]);
    rc = 1;
  }
  if (o.min_pass >= 0 && count[RESULT_PASS] < o.min_pass) {
    fprintf(stderr, "conformance: %d cases passed, fewer than the floor --min-pass %d\n",
            count[RESULT_PASS], o.min_pass);
    rc = 1;
  }
  for (int i = 0; i < n; i++) {
    free(results[i].name);
    free(results[i].op);
  }
  free(results);
  return rc;
}
