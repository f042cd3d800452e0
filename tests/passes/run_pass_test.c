/* The pass test runner: run_pass_test FILE.ir
 *
 * A test file is a text IR graph with directives in comment lines (the IR parser skips them):
 *
 *   # passes: canonicalize,dce          the passes to run, in order (required)
 *   # compare: rtol=1e-6 atol=1e-7      run input and output graphs on the same seeded random
 *                                       inputs and compare every graph output (optional)
 *   # expect:                           the exact printed output follows, each line "# "-prefixed
 *   # CHECK: text                       text that must appear, in order, in the printed output
 *   # CHECK-NOT: text                   text that must not appear between the previous CHECK
 *                                       match and the next one (or the end)
 *
 * The passes run with verify_each on; the result must also print and parse back. A test must
 * assert something (expect, CHECK or compare), so that it can fail. Failure messages show the
 * first line where the output and the expectation differ, then the whole output. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx/onnx.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/interp.h"

typedef struct check_line {
  bool negated; /* CHECK-NOT */
  char *text;
  int line; /* in the test file */
} check_line;

typedef struct test_spec {
  char *passes;
  bool compare;
  double rtol, atol;
  bool has_expect;
  char *expect; /* malloc'd, '\n'-terminated lines */
  size_t expect_len;
  check_line *checks;
  int n_checks;
} test_spec;

static const char *test_path;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: FAIL: ", test_path);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static char *read_file(const char *path, size_t *out_len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, len = 0, got;
  char *buf = malloc(cap);
  if (!buf)
    kl_fatal_oom();
  while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (len + 1 == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      if (!buf)
        kl_fatal_oom();
    }
  }
  fclose(f);
  buf[len] = '\0';
  *out_len = len;
  return buf;
}

static void append(char **buf, size_t *len, const char *text, size_t n) {
  char *bigger = realloc(*buf, *len + n + 2);
  if (!bigger)
    kl_fatal_oom();
  memcpy(bigger + *len, text, n);
  *len += n;
  bigger[*len] = '\0';
  *buf = bigger;
}

static bool starts_with(const char *s, size_t len, const char *prefix) {
  size_t n = strlen(prefix);
  return len >= n && strncmp(s, prefix, n) == 0;
}

/* Reads the directives out of the comment lines. Returns false (after saying why) when the
 * file is not a usable test. */
static bool parse_spec(const char *text, test_spec *spec) {
  memset(spec, 0, sizeof *spec);
  spec->rtol = 1e-6;
  spec->atol = 1e-7;
  bool in_expect = false;
  int line_no = 0;
  for (const char *p = text; *p;) {
    size_t len = strcspn(p, "\n");
    line_no++;
    const char *line = p;
    p += len + (p[len] == '\n');
    bool directive = starts_with(line, len, "# passes:") || starts_with(line, len, "# compare:") ||
                     starts_with(line, len, "# expect:") || starts_with(line, len, "# CHECK");
    if (in_expect && !directive && (starts_with(line, len, "# ") || (len == 1 && line[0] == '#'))) {
      size_t skip = len == 1 ? 1 : 2;
      append(&spec->expect, &spec->expect_len, line + skip, len - skip);
      append(&spec->expect, &spec->expect_len, "\n", 1);
      continue;
    }
    in_expect = false;
    if (starts_with(line, len, "# passes:")) {
      const char *v = line + 9;
      size_t vlen = len - 9;
      while (vlen > 0 && *v == ' ')
        v++, vlen--;
      spec->passes = strndup(v, vlen);
    } else if (starts_with(line, len, "# compare:")) {
      spec->compare = true;
      char *args = strndup(line + 10, len - 10);
      for (char *tok = strtok(args, " \t"); tok; tok = strtok(NULL, " \t")) {
        char *end = NULL;
        if (strncmp(tok, "rtol=", 5) == 0)
          spec->rtol = strtod(tok + 5, &end);
        else if (strncmp(tok, "atol=", 5) == 0)
          spec->atol = strtod(tok + 5, &end);
        if (!end || *end != '\0') {
          fail("line %d: bad compare argument '%s' (expected rtol=X or atol=X)", line_no, tok);
          free(args);
          return false;
        }
      }
      free(args);
    } else if (starts_with(line, len, "# expect:")) {
      if (spec->has_expect) {
        fail("line %d: a second '# expect:' section", line_no);
        return false;
      }
      spec->has_expect = true;
      in_expect = true;
      append(&spec->expect, &spec->expect_len, "", 0);
    } else if (starts_with(line, len, "# CHECK-NOT:") || starts_with(line, len, "# CHECK:")) {
      bool negated = starts_with(line, len, "# CHECK-NOT:");
      size_t skip = negated ? 12 : 8;
      while (skip < len && line[skip] == ' ')
        skip++;
      check_line *grown = realloc(spec->checks, (size_t)(spec->n_checks + 1) * sizeof *grown);
      if (!grown)
        kl_fatal_oom();
      spec->checks = grown;
      spec->checks[spec->n_checks++] = (check_line){negated, strndup(line + skip, len - skip),
                                                    line_no};
    }
  }
  if (!spec->passes) {
    fail("no '# passes: a,b,c' line");
    return false;
  }
  if (!spec->has_expect && spec->n_checks == 0 && !spec->compare) {
    fail("the test asserts nothing: give '# expect:', '# CHECK:' or '# compare:'");
    return false;
  }
  return true;
}

static void spec_deinit(test_spec *spec) {
  free(spec->passes);
  free(spec->expect);
  for (int i = 0; i < spec->n_checks; i++)
    free(spec->checks[i].text);
  free(spec->checks);
}

/* ---- checking the printed output ------------------------------------------------------ */

static void print_output(const char *got) {
  fprintf(stderr, "--- output:\n%s--- end of output\n", got);
}

/* Exact comparison; on a difference shows the first differing line of each side. */
static bool check_expect(const char *got, const char *want) {
  if (strcmp(got, want) == 0)
    return true;
  int line = 1;
  const char *g = got, *w = want;
  for (;;) {
    size_t gl = strcspn(g, "\n"), wl = strcspn(w, "\n");
    if (gl != wl || strncmp(g, w, gl) != 0 || (g[gl] == '\0') != (w[wl] == '\0')) {
      fail("output differs from '# expect:' at line %d\n  expected: %s%.*s\n  got:      %s%.*s",
           line, *w ? "" : "(end of expectation)", (int)wl, w, *g ? "" : "(end of output)",
           (int)gl, g);
      break;
    }
    g += gl + 1;
    w += wl + 1;
    line++;
  }
  print_output(got);
  return false;
}

static bool check_patterns(const char *got, const test_spec *spec) {
  const char *pos = got;
  for (int i = 0; i < spec->n_checks; i++) {
    const check_line *c = &spec->checks[i];
    if (c->negated)
      continue;
    const char *found = strstr(pos, c->text);
    /* Every CHECK-NOT since the previous CHECK applies to [pos, found). */
    const char *end = found ? found : got + strlen(got);
    for (int j = i - 1; j >= 0 && spec->checks[j].negated; j--) {
      const char *bad = strstr(pos, spec->checks[j].text);
      if (bad && bad < end) {
        fail("line %d: CHECK-NOT: '%s' found (before the CHECK of line %d)",
             spec->checks[j].line, spec->checks[j].text, c->line);
        print_output(got);
        return false;
      }
    }
    if (!found) {
      fail("line %d: CHECK: '%s' not found after the previous match", c->line, c->text);
      print_output(got);
      return false;
    }
    pos = found + strlen(c->text);
  }
  for (int j = spec->n_checks - 1; j >= 0 && spec->checks[j].negated; j--) {
    if (strstr(pos, spec->checks[j].text)) {
      fail("line %d: CHECK-NOT: '%s' found after the last CHECK", spec->checks[j].line,
           spec->checks[j].text);
      print_output(got);
      return false;
    }
  }
  return true;
}

/* ---- comparing results ---------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng_next(void) { /* xorshift64 */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Uniform in [-1, 1) for floats, 0..3 for integers, alternating for Bool. */
static void fill_random(kl_tensor *t) {
  for (int64_t i = 0; i < t->numel; i++) {
    if (kl_dtype_is_float(t->dtype))
      kl_dtype_store_f64(t->dtype, t->data, (size_t)i,
                         (double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    else if (t->dtype == KL_BOOL)
      kl_dtype_store_i64(t->dtype, t->data, (size_t)i, i % 2);
    else
      kl_dtype_store_i64(t->dtype, t->data, (size_t)i, (int64_t)(rng_next() % 4));
  }
}

/* A concrete tensor for a declared type: a symbolic dim takes 3 clamped to its bounds. */
static kl_status random_tensor(const kl_ir_graph *g, const kl_ir_type *type, kl_tensor **out) {
  int64_t shape[KL_MAX_RANK];
  for (int d = 0; d < type->rank; d++) {
    kl_ir_dim dim = type->dims[d];
    if (kl_ir_dim_is_static(dim)) {
      shape[d] = dim.size;
    } else if (dim.sym >= 0 && dim.sym < g->n_symbols) {
      const kl_ir_symbol *s = &g->symbols[dim.sym];
      shape[d] = 3 < s->min ? s->min : 3 > s->max ? s->max : 3;
    } else {
      shape[d] = 3;
    }
  }
  KL_RETURN_IF_ERROR(kl_tensor_create(type->dtype, type->rank, shape, out));
  fill_random(*out);
  return NULL;
}

/* prim::Param nodes of a text test have no weights: give each name one random tensor, the
 * same in both graphs. Params inside sub-blocks are found too. */
static kl_status supply_weights(kl_ir_block *b, kl_ir_graph *before, kl_ir_graph *after) {
  for (kl_ir_node *n = b->first; n; n = n->next) {
    for (int i = 0; i < n->n_blocks; i++)
      KL_RETURN_IF_ERROR(supply_weights(n->blocks[i], before, after));
    if (n->op != KL_OP_PARAM)
      continue;
    const char *name = kl_ir_node_string(n, "name", NULL);
    if (!name || kl_ir_graph_weight(before, name) || kl_ir_graph_weight(after, name))
      continue;
    kl_tensor *t = NULL;
    KL_RETURN_IF_ERROR(random_tensor(before, &n->outputs[0]->type, &t));
    kl_ir_graph_set_weight(before, name, t);
    kl_ir_graph_set_weight(after, name, t);
    kl_tensor_release(t);
  }
  return NULL;
}

static bool compare_outputs(kl_tensor **want, kl_tensor **got, int n, const test_spec *spec) {
  for (int o = 0; o < n; o++) {
    if (want[o]->dtype != got[o]->dtype || !kl_tensor_same_shape(want[o], got[o])) {
      char ws[64], gs[64];
      kl_shape_format(want[o]->shape, want[o]->rank, ws, sizeof ws);
      kl_shape_format(got[o]->shape, got[o]->rank, gs, sizeof gs);
      fail("output %d: before the passes %s%s, after %s%s", o,
           kl_dtype_short_name(want[o]->dtype), ws, kl_dtype_short_name(got[o]->dtype), gs);
      return false;
    }
    for (int64_t i = 0; i < want[o]->numel; i++) {
      double w = kl_dtype_load_f64(want[o]->dtype, want[o]->data, (size_t)i);
      double g = kl_dtype_load_f64(got[o]->dtype, got[o]->data, (size_t)i);
      /* equal infinities are close too: their difference is nan */
      bool close = w == g || fabs(w - g) <= spec->atol + spec->rtol * fabs(w) ||
                   (isnan(w) && isnan(g));
      if (!close) {
        fail("output %d element %lld: before the passes %.9g, after %.9g (rtol=%g atol=%g)", o,
             (long long)i, w, g, spec->rtol, spec->atol);
        return false;
      }
    }
  }
  return true;
}

/* Runs both graphs on the same inputs, three times with different seeds. */
static bool compare_graphs(kl_ir_graph *before, kl_ir_graph *after, const test_spec *spec) {
  kl_status s = supply_weights(before->top, before, after);
  if (s) {
    fail("making weights: %s", kl_status_message(s));
    kl_status_destroy(s);
    return false;
  }
  int n_in = before->top->n_params, n_out = before->top->n_returns;
  if (after->top->n_params != n_in || after->top->n_returns != n_out) {
    fail("the passes changed the graph's signature: %d inputs, %d outputs became %d, %d", n_in,
         n_out, after->top->n_params, after->top->n_returns);
    return false;
  }
  bool ok = true;
  for (int round = 0; round < 3 && ok; round++) {
    kl_tensor **inputs = calloc((size_t)n_in + 1, sizeof *inputs);
    kl_tensor **want = calloc((size_t)n_out + 1, sizeof *want);
    kl_tensor **got = calloc((size_t)n_out + 1, sizeof *got);
    if (!inputs || !want || !got)
      kl_fatal_oom();
    for (int i = 0; i < n_in && !s; i++)
      s = random_tensor(before, &before->top->params[i]->type, &inputs[i]);
    if (!s && (s = kl_interp_run(before, inputs, n_in, want)))
      s = kl_status_annotate(s, "running the input graph");
    if (!s && (s = kl_interp_run(after, inputs, n_in, got))) {
      for (int o = 0; o < n_out; o++) /* want was filled */
        kl_tensor_release(want[o]), want[o] = NULL;
      s = kl_status_annotate(s, "running the optimized graph");
    }
    if (s) {
      fail("%s", kl_status_message(s));
      kl_status_destroy(s);
      s = NULL;
      ok = false;
    } else {
      ok = compare_outputs(want, got, n_out, spec);
      for (int o = 0; o < n_out; o++) {
        kl_tensor_release(want[o]);
        kl_tensor_release(got[o]);
      }
    }
    for (int i = 0; i < n_in; i++)
      kl_tensor_release(inputs[i]);
    free(inputs);
    free(want);
    free(got);
  }
  return ok;
}

/* ---- main ----------------------------------------------------------------------------- */

static bool run_test(const char *text, size_t len, const test_spec *spec) {
  kl_ir_parse_options popts = {.filename = test_path};
  kl_ir_graph *g = NULL, *original = NULL;
  const kl_pass_info **passes = NULL;
  int n_passes = 0;
  char *printed = NULL;
  size_t printed_len = 0;
  bool ok = false;
  kl_status s = kl_ir_parse(text, len, &popts, &g);
  if (!s && spec->compare)
    s = kl_ir_parse(text, len, &popts, &original);
  if (!s)
    s = kl_pass_parse_list(spec->passes, &passes, &n_passes);
  if (!s) {
    kl_pass_options opts;
    kl_pass_options_init(&opts);
    opts.verify_each = true;
    s = kl_pass_run(g, passes, n_passes, &opts);
  }
  if (!s)
    s = kl_ir_print(g, NULL, &printed, &printed_len);
  if (s) {
    fail("%s", kl_status_message(s));
    kl_status_destroy(s);
    goto done;
  }
  /* What the passes leave must be a graph the text form can carry. */
  kl_ir_graph *reparsed = NULL;
  s = kl_ir_parse(printed, printed_len, NULL, &reparsed);
  kl_ir_graph_destroy(reparsed);
  if (s) {
    fail("the output does not parse back: %s", kl_status_message(s));
    kl_status_destroy(s);
    print_output(printed);
    goto done;
  }
  ok = true;
  if (spec->has_expect)
    ok = check_expect(printed, spec->expect) && ok;
  if (ok && spec->n_checks > 0)
    ok = check_patterns(printed, spec);
  if (ok && spec->compare)
    ok = compare_graphs(original, g, spec);
done:
  free(printed);
  free(passes);
  kl_ir_graph_destroy(g);
  kl_ir_graph_destroy(original);
  return ok;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: run_pass_test FILE.ir\n");
    return 2;
  }
  test_path = argv[1];
  kl_onnx_register_expanders(); /* graphs may hold onnx::Deferred nodes */
  size_t len = 0;
  char *text = read_file(test_path, &len);
  if (!text) {
    fprintf(stderr, "%s: cannot read\n", test_path);
    return 2;
  }
  test_spec spec;
  bool ok = parse_spec(text, &spec) && run_test(text, len, &spec);
  spec_deinit(&spec);
  free(text);
  if (ok)
    printf("%s: ok\n", test_path);
  return ok ? 0 : 1;
}
