/* The conformance report and the op behind each case (see report.h). The op is read from the
 * model's own nodes, not guessed from the case name, except for the "_expanded" function
 * tests, whose model holds the function's body: they take their twin case's op. Reasons are
 * grouped with paths, names and numbers taken out, so the most common ones can be counted. */
#include "report.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

const char *const result_names[RESULT_KINDS] = {"pass", "fail", "unsupported", "error", "crash"};
const char *const compiled_names[COMPILED_KINDS] = {"-", "pass", "fail", "not compilable"};

/* ---- the op a case tests, read from model.onnx --------------------------------------- */

/* Only the wire format is needed: ModelProto.graph (7) -> GraphProto.node (1) ->
 * NodeProto.op_type (4) and .domain (7). Every length is checked against the buffer. */
typedef struct pb_reader {
  const uint8_t *p, *end;
} pb_reader;

static bool pb_varint(pb_reader *r, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end)
      return false;
    uint8_t byte = *r->p++;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

/* Reads the next field; for length-delimited ones (wire type 2) out_sub is its payload. */
static bool pb_field(pb_reader *r, uint32_t *out_number, pb_reader *out_sub) {
  uint64_t key, len;
  if (!pb_varint(r, &key))
    return false;
  *out_number = (uint32_t)(key >> 3);
  out_sub->p = out_sub->end = NULL;
  switch (key & 7) {
  case 0:
    return pb_varint(r, &len);
  case 1:
    if (r->end - r->p < 8)
      return false;
    r->p += 8;
    return true;
  case 5:
    if (r->end - r->p < 4)
      return false;
    r->p += 4;
    return true;
  case 2:
    if (!pb_varint(r, &len) || len > (uint64_t)(r->end - r->p))
      return false;
    out_sub->p = r->p;
    out_sub->end = r->p + len;
    r->p += len;
    return true;
  default:
    return false; /* groups are not used by onnx.proto */
  }
}

void op_list_add(op_list *l, const char *domain, size_t domain_len, const char *op,
                        size_t op_len) {
  bool default_domain = domain_len == 0 || (domain_len == 7 && !memcmp(domain, "ai.onnx", 7));
  size_t n = op_len + (default_domain ? 0 : domain_len + 1) + 1;
  char *s = malloc(n);
  if (!s)
    kl_fatal_oom();
  if (default_domain)
    snprintf(s, n, "%.*s", (int)op_len, op);
  else
    snprintf(s, n, "%.*s:%.*s", (int)domain_len, domain, (int)op_len, op);
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 4;
    l->ops = realloc(l->ops, (size_t)l->cap * sizeof *l->ops);
    if (!l->ops)
      kl_fatal_oom();
  }
  l->ops[l->n++] = s;
}

void op_list_free(op_list *l) {
  free_names(l->ops, l->n);
  l->ops = NULL;
  l->n = l->cap = 0;
}

/* The op types of the top-level nodes of the model at path, in order. */
bool read_model_ops(const char *path, op_list *out) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return false;
  uint8_t *buf = NULL;
  size_t size = 0;
  bool ok = fseek(f, 0, SEEK_END) == 0;
  long end = ok ? ftell(f) : -1;
  ok = ok && end >= 0 && end < (1L << 30) && fseek(f, 0, SEEK_SET) == 0;
  if (ok) {
    size = (size_t)end;
    buf = malloc(size ? size : 1);
    if (!buf)
      kl_fatal_oom();
    ok = fread(buf, 1, size, f) == size;
  }
  fclose(f);
  pb_reader model = {buf, buf + size}, field;
  uint32_t number;
  while (ok && model.p < model.end) {
    if (!(ok = pb_field(&model, &number, &field)))
      break;
    if (number != 7 || !field.p)
      continue;
    pb_reader graph = field, node;
    while (ok && graph.p < graph.end) {
      if (!(ok = pb_field(&graph, &number, &node)))
        break;
      if (number != 1 || !node.p)
        continue;
      const char *op = "", *domain = "";
      size_t op_len = 0, domain_len = 0;
      pb_reader attr;
      while (ok && node.p < node.end) {
        if (!(ok = pb_field(&node, &number, &attr)))
          break;
        if (number == 4 && attr.p) {
          op = (const char *)attr.p;
          op_len = (size_t)(attr.end - attr.p);
        } else if (number == 7 && attr.p) {
          domain = (const char *)attr.p;
          domain_len = (size_t)(attr.end - attr.p);
        }
      }
      if (ok)
        op_list_add(out, domain, domain_len, op, op_len);
    }
  }
  free(buf);
  return ok;
}

/* "BatchNormalization" -> "batch_normalization" (snake) and "batchnormalization" (flat):
 * the two ways ONNX spells an op in its test names. */
static void op_spellings(const char *op, char *snake, char *flat, size_t size) {
  const char *colon = strrchr(op, ':');
  if (colon)
    op = colon + 1;
  size_t s = 0, f = 0;
  for (size_t i = 0; op[i] && s + 2 < size && f + 1 < size; i++) {
    unsigned char c = (unsigned char)op[i];
    if (isupper(c) && i > 0 && (islower((unsigned char)op[i - 1]) ||
                                (op[i + 1] && islower((unsigned char)op[i + 1]))))
      snake[s++] = '_';
    snake[s++] = (char)tolower(c);
    flat[f++] = (char)tolower(c);
  }
  snake[s] = flat[f] = '\0';
}

/* How many characters of the case name (after "test_") op accounts for: 0 when the name does
 * not start with one of its spellings followed by '_' or the end. */
static size_t op_match_length(const char *case_name, const char *op) {
  char snake[256], flat[256];
  op_spellings(op, snake, flat, sizeof snake);
  const char *name = strncmp(case_name, "test_", 5) == 0 ? case_name + 5 : case_name;
  size_t best = 0;
  const char *forms[2] = {snake, flat};
  for (int i = 0; i < 2; i++) {
    size_t n = strlen(forms[i]);
    if (n && strncmp(name, forms[i], n) == 0 && (name[n] == '\0' || name[n] == '_') && n > best)
      best = n;
  }
  return best;
}

/* The op a case tests: for a function test expanded into its body
 * ("test_softmax_axis_0_expanded") the op of its twin ("test_softmax_axis_0"); else a
 * one-node model's op; else the longest op, of the model's or any one-node case's, that the
 * case name starts with; else the model's first op. names (sorted) and ops hold every case. */
char *case_op_label(int index, char *const *names, const op_list *ops, int n,
                           const op_list *known_ops) {
  const char *name = names[index];
  const op_list *model_ops = &ops[index];
  const char *expanded = strstr(name, "_expanded");
  if (expanded) {
    char *twin = xstrdup(name);
    twin[expanded - name] = '\0';
    char *const *found = bsearch(&twin, names, (size_t)n, sizeof *names, compare_strings);
    free(twin);
    if (found && ops[found - names].n == 1)
      return xstrdup(ops[found - names].ops[0]);
  }
  if (model_ops->n == 1)
    return xstrdup(model_ops->ops[0]);
  const char *best = NULL;
  size_t best_len = 0;
  const op_list *lists[2] = {model_ops, known_ops};
  for (int l = 0; l < 2; l++)
    for (int i = 0; i < lists[l]->n; i++) {
      size_t len = op_match_length(name, lists[l]->ops[i]);
      if (len > best_len) {
        best_len = len;
        best = lists[l]->ops[i];
      }
    }
  if (best)
    return xstrdup(best);
  return xstrdup(model_ops->n ? model_ops->ops[0] : "(no nodes)");
}

/* ---- the report ---------------------------------------------------------------------- */

typedef struct op_row {
  const char *op;
  int count[RESULT_KINDS];
  int total;
  int frozen; /* passes that needed --freeze-inputs */
  int compiled[COMPILED_KINDS];
  int bound;  /* compiled passes with inputs bound at compile time */
} op_row;

static int compare_results_by_op(const void *a, const void *b) {
  const case_result *x = a, *y = b;
  int c = strcmp(x->op, y->op);
  return c ? c : strcmp(x->name, y->name);
}

/* Markdown table cells must not hold '|'; reasons are cut at 120 characters. */
static void write_cell(FILE *f, const char *text, size_t max) {
  size_t n = 0;
  for (; text[n] && n < max; n++)
    if (text[n] == '|')
      fputs("\\|", f);
    else
      fputc(text[n], f);
  if (text[n])
    fputs("...", f);
}

/* A reason with paths and numbers taken out, so that cases failing the same way count
 * together: "/x/test_a/model.onnx: node 3 ..." -> "node # ...". */
static void reason_pattern(const char *reason, char *out, size_t size) {
  size_t n = 0;
  for (const char *c = reason; *c && n + 2 < size;) {
    bool at_start = c == reason || !(isalnum((unsigned char)c[-1]) || c[-1] == '_');
    if (*c == '/' && (c == reason || c[-1] == ' ')) {
      const char *end = strstr(c, ": ");
      c = end ? end + 2 : c + strlen(c);
    } else if (*c == '[' && strspn(c + 1, "0123456789, ") == strcspn(c + 1, "]") &&
               c[1 + strcspn(c + 1, "]")] == ']') {
      c += 2 + strcspn(c + 1, "]");
      out[n++] = '[';
      out[n++] = '#';
      if (n + 1 < size)
        out[n++] = ']';
    } else if (*c == '\'' && strchr(c + 1, '\'')) {
      c = strchr(c + 1, '\'') + 1;
      out[n++] = '\'';
      out[n++] = '_';
      if (n + 1 < size)
        out[n++] = '\'';
    } else if (at_start && (isdigit((unsigned char)*c) ||
                            (*c == '-' && isdigit((unsigned char)c[1])))) {
      c++;
      while (isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == '+')
        c++;
      out[n++] = '#';
    } else if (isalnum((unsigned char)*c) || *c == '_') {
      while ((isalnum((unsigned char)*c) || *c == '_') && n + 1 < size)
        out[n++] = *c++;
    } else {
      out[n++] = *c++;
    }
  }
  out[n] = '\0';
}

typedef struct pattern_count {
  char text[160];
  int count;
} pattern_count;

static int compare_pattern_counts(const void *a, const void *b) {
  const pattern_count *x = a, *y = b;
  return x->count != y->count ? (y->count > x->count ? 1 : -1) : strcmp(x->text, y->text);
}

/* The 25 most common reasons among the cases that did not pass. */
static void write_common_reasons(FILE *f, const case_result *results, int n) {
  pattern_count *patterns = calloc((size_t)n + 1, sizeof *patterns);
  if (!patterns)
    kl_fatal_oom();
  int n_patterns = 0;
  for (int i = 0; i < n; i++) {
    if (results[i].kind == RESULT_PASS)
      continue;
    char text[160];
    int prefix = snprintf(text, sizeof text, "%s: ", result_names[results[i].kind]);
    reason_pattern(results[i].reason, text + prefix, sizeof text - (size_t)prefix);
    int j = 0;
    while (j < n_patterns && strcmp(patterns[j].text, text) != 0)
      j++;
    if (j == n_patterns)
      memcpy(patterns[n_patterns++].text, text, sizeof text);
    patterns[j].count++;
  }
  qsort(patterns, (size_t)n_patterns, sizeof *patterns, compare_pattern_counts);
  fprintf(f, "\n## Most common reasons\n\n| cases | reason (paths and numbers elided) |\n"
             "|---:|---|\n");
  for (int i = 0; i < n_patterns && i < 25; i++) {
    fprintf(f, "| %d | ", patterns[i].count);
    write_cell(f, patterns[i].text, 120);
    fputs(" |\n", f);
  }
  free(patterns);
}

/* The op name that ends just before `end` in text ("... op: ai.onnx.ml:Foo (opset"). */
static void op_name_before(const char *text, const char *end, char *out, size_t size) {
  const char *start = end;
  while (start > text && (isalnum((unsigned char)start[-1]) || strchr("_.:", start[-1])))
    start--;
  snprintf(out, size, "%.*s", (int)(end - start), start);
}

/* Ops the importer reports unsupported ("... unsupported op: GridSample (opset 16) in node
 * ..."), each with the number of cases it blocks: the order in which to add them. */
static void write_missing_ops(FILE *f, const case_result *results, int n) {
  pattern_count *ops = NULL;
  int n_ops = 0, cap = 0;
  for (int i = 0; i < n; i++) {
    const char *reason = results[i].reason;
    if (results[i].kind != RESULT_UNSUPPORTED || !strstr(reason, "unsupported op"))
      continue;
    char seen[32][160]; /* a case counts once per op, however many nodes use it */
    int n_seen = 0;
    for (const char *at = strstr(reason, " (opset "); at; at = strstr(at + 1, " (opset ")) {
      char name[160];
      op_name_before(reason, at, name, sizeof name);
      bool dup = !name[0];
      for (int k = 0; k < n_seen && !dup; k++)
        dup = strcmp(seen[k], name) == 0;
      if (dup || n_seen == 32)
        continue;
      memcpy(seen[n_seen++], name, sizeof name);
      int j = 0;
      while (j < n_ops && strcmp(ops[j].text, name) != 0)
        j++;
      if (j == n_ops) {
        if (n_ops == cap) {
          cap = cap ? 2 * cap : 64;
          ops = realloc(ops, (size_t)cap * sizeof *ops);
          if (!ops)
            kl_fatal_oom();
        }
        memcpy(ops[n_ops].text, name, sizeof name);
        ops[n_ops++].count = 0;
      }
      ops[j].count++;
    }
  }
  if (n_ops)
    qsort(ops, (size_t)n_ops, sizeof *ops, compare_pattern_counts);
  fprintf(f, "\n## Unsupported ops, by the cases they block\n\n");
  for (int i = 0; i < n_ops; i++)
    fprintf(f, "%s%s %d", i ? ", " : "", ops[i].text, ops[i].count);
  fprintf(f, "%s", n_ops ? "\n" : "(none)\n");
  free(ops);
}

/* The compiled path's verdicts that are not passes: the most common reasons, then each case. */
static void write_compiled_section(FILE *f, const case_result *results, int n) {
  pattern_count *patterns = calloc((size_t)n + 1, sizeof *patterns);
  if (!patterns)
    kl_fatal_oom();
  int n_patterns = 0;
  for (int i = 0; i < n; i++) {
    if (results[i].compiled != COMPILED_FAIL && results[i].compiled != COMPILED_NOT_COMPILABLE)
      continue;
    char text[160];
    int prefix = snprintf(text, sizeof text, "%s: ", compiled_names[results[i].compiled]);
    reason_pattern(results[i].compiled_reason, text + prefix, sizeof text - (size_t)prefix);
    int j = 0;
    while (j < n_patterns && strcmp(patterns[j].text, text) != 0)
      j++;
    if (j == n_patterns)
      memcpy(patterns[n_patterns++].text, text, sizeof text);
    patterns[j].count++;
  }
  qsort(patterns, (size_t)n_patterns, sizeof *patterns, compare_pattern_counts);
  fprintf(f, "\n## Compiled path: most common reasons\n\n| cases | reason (paths and numbers "
             "elided) |\n|---:|---|\n");
  for (int i = 0; i < n_patterns && i < 25; i++) {
    fprintf(f, "| %d | ", patterns[i].count);
    write_cell(f, patterns[i].text, 120);
    fputs(" |\n", f);
  }
  free(patterns);
  fprintf(f, "\n## Compiled path: cases the interpreter passes that do not pass compiled, "
             "by op\n");
  const char *current = NULL;
  for (int i = 0; i < n; i++) {
    const case_result *r = &results[i];
    if (r->compiled != COMPILED_FAIL && r->compiled != COMPILED_NOT_COMPILABLE)
      continue;
    if (!current || strcmp(current, r->op) != 0) {
      current = r->op;
      fprintf(f, "\n### %s\n\n", current);
    }
    fprintf(f, "- `%s`: %s: ", r->name, compiled_names[r->compiled]);
    write_cell(f, r->compiled_reason, 160);
    fputc('\n', f);
  }
  if (!current)
    fprintf(f, "\n(none)\n");
  fprintf(f, "\n## Compiled path: cases compiled with inputs bound, by op\n\n"
             "Each passed compiled with the named inputs bound to its data set's values at "
             "compile time.\n");
  current = NULL;
  for (int i = 0; i < n; i++) {
    const case_result *r = &results[i];
    if (r->compiled != COMPILED_PASS || !r->compiled_bound[0])
      continue;
    if (!current || strcmp(current, r->op) != 0) {
      current = r->op;
      fprintf(f, "\n### %s\n\n", current);
    }
    fprintf(f, "- `%s`: ", r->name);
    write_cell(f, r->compiled_bound, 200);
    fputc('\n', f);
  }
  if (!current)
    fprintf(f, "\n(none)\n");
}

bool write_report(const char *path, bool freeze_inputs, bool compiled, const char *summary,
                  case_result *results, int n) {
  qsort(results, (size_t)n, sizeof *results, compare_results_by_op);
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "conformance: cannot write %s: %s\n", path, strerror(errno));
    return false;
  }
  fprintf(f, "# ONNX backend node tests: conformance report\n\n"
             "Generated by `tests/onnx/conformance`; do not edit. Regenerate with\n"
             "`ninja -C build onnx-report` (it runs `conformance NODE_DIR%s --report "
             "tests/onnx/REPORT.md`,\nNODE_DIR being the onnx package's "
             "`onnx/backend/test/data/node` in `.venv`).\n"
             "Each case is imported, run by the interpreter and compared with ONNX's tolerances "
             "(rtol 1e-3, atol 1e-7).\n",
          freeze_inputs ? " --freeze-inputs" : "");
  if (freeze_inputs)
    fprintf(f, "This run used --freeze-inputs: inputs the importer needs as values (a Reshape's "
               "shape, a ReduceSum's\naxes) were frozen into initializers holding the data "
               "set's values, so the pass rate below is\nNOT the honest one (the report "
               "without --freeze-inputs is); column \"frozen\" counts the passes\nthat "
               "needed it.\n");
  else
    fprintf(f, "Every graph input is fed as an ordinary tensor: inputs an op reads as values (a "
               "Reshape's shape, a\nReduceSum's axes, a Resize's sizes) are read at run time "
               "(onnx::Deferred nodes, expanded by the\ninterpreter). A run-time \"unsupported"
               "\" (Dropout with training_mode true) counts as unsupported.\n");
  if (compiled)
    fprintf(f, "Each case the interpreter passes is also optimized at -O3, compiled by the LLVM "
               "CPU backend into a\nshared library, loaded and run on every data set: column "
               "\"compiled\" counts those whose outputs\nmatch the interpreter's (rtol 1e-4, "
               "atol 1e-5) and ONNX's (the case's tolerances). A graph whose shapes\ndepend on "
               "the values of graph inputs (onnx::Deferred nodes: a Reshape's shape, a "
               "ReduceSum's axes, a\nSlice's starts) is compiled with just those inputs bound "
               "to the data set's values at compile time,\nas `kiln compile --bind "
               "NAME=FILE.npy` does (the other inputs stay inputs of the library; one\nlibrary "
               "per data set where the bound values differ): column \"bound\" counts the "
               "compiled passes\nthat needed it, and the section \"cases compiled with inputs "
               "bound\" names the inputs. \"not\ncompilable\" are graphs still not static "
               "after that, or with ops the backend does not handle; each\nsays why below.\n");
  fprintf(f, "\n%s\n\n", summary);
  if (freeze_inputs)
    fprintf(f, "## By op\n\n| op | cases | passed | frozen | failed | unsupported | errors | "
               "crashed |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
  else if (compiled)
    fprintf(f, "## By op\n\n| op | cases | passed | failed | unsupported | errors | "
               "crashed | compiled | bound | compiled failed | not compilable |\n"
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  else
    fprintf(f, "## By op\n\n| op | cases | passed | failed | unsupported | errors | "
               "crashed |\n|---|---:|---:|---:|---:|---:|---:|\n");
  for (int i = 0; i < n;) {
    op_row row = {results[i].op, {0}, 0, 0, {0}, 0};
    int j = i;
    for (; j < n && strcmp(results[j].op, row.op) == 0; j++) {
      row.count[results[j].kind]++;
      row.total++;
      row.frozen += results[j].kind == RESULT_PASS && results[j].frozen[0];
      row.compiled[results[j].compiled]++;
      row.bound += results[j].compiled == COMPILED_PASS && results[j].compiled_bound[0];
    }
    if (freeze_inputs)
      fprintf(f, "| %s | %d | %d | %d | %d | %d | %d | %d |\n", row.op, row.total,
              row.count[RESULT_PASS], row.frozen, row.count[RESULT_FAIL],
              row.count[RESULT_UNSUPPORTED], row.count[RESULT_ERROR], row.count[RESULT_CRASH]);
    else if (compiled)
      fprintf(f, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n", row.op,
              row.total, row.count[RESULT_PASS], row.count[RESULT_FAIL],
              row.count[RESULT_UNSUPPORTED], row.count[RESULT_ERROR], row.count[RESULT_CRASH],
              row.compiled[COMPILED_PASS], row.bound, row.compiled[COMPILED_FAIL],
              row.compiled[COMPILED_NOT_COMPILABLE]);
    else
      fprintf(f, "| %s | %d | %d | %d | %d | %d | %d |\n", row.op, row.total,
              row.count[RESULT_PASS], row.count[RESULT_FAIL], row.count[RESULT_UNSUPPORTED],
              row.count[RESULT_ERROR], row.count[RESULT_CRASH]);
    i = j;
  }
  write_common_reasons(f, results, n);
  write_missing_ops(f, results, n);
  fprintf(f, "\n## Cases that do not pass, by op\n");
  const char *current = NULL;
  for (int i = 0; i < n; i++) {
    const case_result *r = &results[i];
    if (r->kind == RESULT_PASS)
      continue;
    if (!current || strcmp(current, r->op) != 0) {
      current = r->op;
      fprintf(f, "\n### %s\n\n", current);
    }
    fprintf(f, "- `%s`: %s: ", r->name, result_names[r->kind]);
    if (r->frozen[0])
      fprintf(f, "(inputs frozen: %s) ", r->frozen);
    write_cell(f, r->reason, 120);
    fputc('\n', f);
  }
  if (compiled)
    write_compiled_section(f, results, n);
  bool ok = fclose(f) == 0;
  if (!ok)
    fprintf(stderr, "conformance: error writing %s\n", path);
  return ok;
}
