/* The pass manager: the registry of passes (passes.def expanded once), the -O pipelines, and
 * the loop that runs a list of passes with the options of pass.h (verify, print, time).
 *
 * The pipelines are flat lists of names so that they read top to bottom like QBE's func():
 * what -O2 does is the array below, nothing else. The manager itself never looks inside a
 * graph; verification and printing are the ir/ functions, called between passes. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../ir/text.h"
#include "../runtime/limits.h"
#include "pass.h"

#define KL_PASS(suffix, name, test_only, summary) \
  kl_status kl_pass_##suffix(kl_ir_graph *g, const kl_pass_options *opts, bool *out_changed);
#include "passes.def"
#undef KL_PASS

static const kl_pass_info registry[] = {
#define KL_PASS(suffix, name, test_only, summary) {name, summary, kl_pass_##suffix, test_only},
#include "passes.def"
#undef KL_PASS
};
enum { N_PASSES = (int)(sizeof registry / sizeof registry[0]) };

void kl_pass_options_init(kl_pass_options *opts) {
  memset(opts, 0, sizeof *opts);
  opts->fold_max_bytes = (int64_t)kl_limits_get()->max_fold_bytes; /* runtime/limits.h */
}

int kl_pass_count(void) { return N_PASSES; }

const kl_pass_info *kl_pass_at(int index) {
  return index >= 0 && index < N_PASSES ? &registry[index] : NULL;
}

const kl_pass_info *kl_pass_find(const char *name) {
  if (!name)
    return NULL;
  for (int i = 0; i < N_PASSES; i++)
    if (strcmp(registry[i].name, name) == 0)
      return &registry[i];
  return NULL;
}

/* ---- pipelines ------------------------------------------------------------------------ */

/* Shapes first so later passes may trust types; canonicalize before folding so folding sees
 * fewer, simpler nodes; recognize after cse so duplicated subexpressions of a decomposed
 * GELU or softmax are already one; fuse last, on the cleaned graph. */
static const char *const pipeline_o0[] = {NULL};
static const char *const pipeline_o1[] = {"infer-shapes", "canonicalize", "dce", NULL};
static const char *const pipeline_o2[] = {
    "infer-shapes",
    "canonicalize",
    "fold-constants",
    "dce",
    "cse",
    "fold-batch-norm",
    "recognize",
    "canonicalize",
    "dce",
    NULL,
};
/* -O2, then fusion and a last dce for what fusion leaves behind. */
static const char *const pipeline_o3[] = {
    "infer-shapes", "canonicalize", "fold-constants", "dce", "cse",  "fold-batch-norm",
    "recognize",    "canonicalize", "dce",            "fuse", "dce", NULL,
};

const char *const *kl_pass_pipeline(int level) {
  switch (level) {
  case 0: return pipeline_o0;
  case 1: return pipeline_o1;
  case 2: return pipeline_o2;
  case 3: return pipeline_o3;
  default: return NULL;
  }
}

/* ---- parsing lists -------------------------------------------------------------------- */

/* "a, b, c" into a malloc'd string for error messages; the caller frees it. */
static char *known_names(void) {
  size_t len = 1;
  for (int i = 0; i < N_PASSES; i++)
    len += strlen(registry[i].name) + 2;
  char *s = malloc(len);
  if (!s)
    kl_fatal_oom();
  s[0] = '\0';
  for (int i = 0; i < N_PASSES; i++) {
    if (i > 0)
      strcat(s, ", ");
    strcat(s, registry[i].name);
  }
  return s;
}

kl_status kl_pass_parse_list(const char *list, const kl_pass_info ***out_passes, int *out_n) {
  *out_passes = NULL;
  *out_n = 0;
  if (!list)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "no pass list given");
  /* A list of k names has at most k-1 commas; size the array by commas, then fill it. */
  int cap = 1;
  for (const char *p = list; *p; p++)
    cap += *p == ',';
  const kl_pass_info **passes = calloc((size_t)cap, sizeof *passes);
  if (!passes)
    kl_fatal_oom();
  int n = 0;
  const char *p = list;
  /* An empty or all-blank list is no passes at all (`--passes=` runs nothing). */
  bool blank = strspn(list, " \t") == strlen(list);
  while (!blank) {
    size_t len = strcspn(p, ",");
    const char *start = p, *end = p + len;
    while (start < end && (*start == ' ' || *start == '\t'))
      start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
      end--;
    size_t name_len = (size_t)(end - start);
    if (name_len == 0) {
      free(passes);
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "empty pass name at position %d of the list \"%s\"", n + 1, list);
    }
    const kl_pass_info *found = NULL;
    for (int i = 0; i < N_PASSES && !found; i++)
      if (strlen(registry[i].name) == name_len && strncmp(registry[i].name, start, name_len) == 0)
        found = &registry[i];
    if (!found) {
      char *known = known_names();
      kl_status s = kl_status_create(KL_ERR_NOT_FOUND, "unknown pass '%.*s'; known passes: %s",
                                     (int)name_len, start, known);
      free(known);
      free(passes);
      return s;
    }
    passes[n++] = found;
    if (p[len] == '\0')
      break;
    p += len + 1;
  }
  *out_passes = passes;
  *out_n = n;
  return NULL;
}

/* ---- running -------------------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct pass_time {
  const char *name;
  double ms;
  bool changed;
} pass_time;

static void print_times(FILE *f, const pass_time *times, int n) {
  double total = 0;
  int width = 4; /* "pass" */
  for (int i = 0; i < n; i++) {
    total += times[i].ms;
    int len = (int)strlen(times[i].name);
    width = len > width ? len : width;
  }
  fprintf(f, "# %-*s %10s  %s\n", width, "pass", "ms", "changed");
  for (int i = 0; i < n; i++)
    fprintf(f, "# %-*s %10.3f  %s\n", width, times[i].name, times[i].ms,
            times[i].changed ? "yes" : "no");
  fprintf(f, "# %-*s %10.3f\n", width, "total", total);
}

/* Runs one pass with what the options ask for around it. */
static kl_status run_one(kl_ir_graph *g, const kl_pass_info *pass, const kl_pass_options *opts,
                         pass_time *out_time) {
  bool changed = false;
  double start = now_ms();
  kl_status s = pass->run(g, opts, &changed);
  out_time->name = pass->name;
  out_time->ms = now_ms() - start;
  out_time->changed = changed;
  if (s)
    return kl_status_annotate(s, "pass %s", pass->name);
  if (opts->verify_each) {
    s = kl_ir_verify(g);
    if (s)
      return kl_status_annotate(s, "after pass %s", pass->name);
  }
  if (opts->print_after_all) {
    fprintf(opts->print_after_all, "# after %s (%s)\n", pass->name,
            changed ? "changed" : "unchanged");
    KL_RETURN_IF_ERROR(kl_ir_print_file(g, opts->print_after_all));
  }
  return NULL;
}

kl_status kl_pass_run(kl_ir_graph *g, const kl_pass_info *const *passes, int n,
                      const kl_pass_options *opts) {
  kl_pass_options defaults;
  if (!opts) {
    kl_pass_options_init(&defaults);
    opts = &defaults;
  }
  if (n < 0 || (n > 0 && !passes))
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "invalid pass list (%d passes)", n);
  pass_time *times = calloc(n > 0 ? (size_t)n : 1, sizeof *times);
  if (!times)
    kl_fatal_oom();
  kl_status s = NULL;
  int done = 0;
  for (; done < n && !s; done++)
    s = run_one(g, passes[done], opts, &times[done]);
  /* The table covers the passes that ran, the failing one included: that is where time went. */
  if (opts->time_passes)
    print_times(opts->time_passes, times, done);
  free(times);
  return s;
}

kl_status kl_pass_run_level(kl_ir_graph *g, int level, const kl_pass_options *opts) {
  const char *const *names = kl_pass_pipeline(level);
  if (!names)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "optimization level %d is not 0..3", level);
  const kl_pass_info *passes[32];
  int n = 0;
  for (; names[n]; n++) {
    KL_ASSERT(n < 32);
    passes[n] = kl_pass_find(names[n]);
    if (!passes[n])
      return kl_status_create(KL_ERR_INTERNAL, "-O%d names unknown pass '%s'", level, names[n]);
  }
  return kl_pass_run(g, passes, n, opts);
}
