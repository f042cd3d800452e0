/* `kiln check FILE [-O3 | --passes=a,b,c] [--input NAME=x.npy ...]`: runs a model twice with the
 * reference interpreter, as loaded and after optimization, on the same inputs, and compares the
 * two runs value by value so that a pass that changes what a model computes is caught at the
 * node where it first shows.
 *
 * Values are matched by name (passes keep the names of values that survive) among those
 * computed at top level, fusion group outputs included. When the graph outputs differ beyond
 * the tolerance, prefixes of the pass list are rerun (a binary search from "no pass: agrees" to
 * "all passes: differs") to name the first pass whose output breaks them. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/pass.h"
#include "runtime/interp.h"
#include "runtime/npy.h"
#include "kiln_internal.h"

static const kl_cli_option check_options[] = {
    {"input", 'i', "[NAME=]FILE", "a .npy file for the model input NAME (repeatable); inputs "
                                  "not given are random (floats uniform in [-1, 1))"},
    {"level", 'O', "N", "optimize with the -O0..-O3 pass list (default -O3)"},
    {"passes", 'p', "A,B,C", "optimize with exactly these passes, in this order, instead of a level"},
    {"rtol", 0, "R", "relative tolerance (default 1e-4)"},
    {"atol", 0, "A", "absolute tolerance (default 1e-5)"},
    {"seed", 0, "S", "seed of the random inputs and weights (default 0)"},
};

/* What one check compares against: the reference graph, its inputs and its recorded values. */
typedef struct check_config {
  const char *path;
  const kl_pass_info **passes;
  int n_passes;
  double rtol, atol;
  uint64_t rng;
  kl_ir_graph *ref;        /* the model as loaded */
  kl_tensor **inputs;      /* one per graph input */
  const char **input_files; /* one per graph input, NULL: random */
  kl_ir_weight *random_weights; /* Params the file has no tensor for (text IR): random */
  int n_random_weights;
  kl_tensor **ref_values;  /* by reference value id: what the unoptimized run computed */
  kl_tensor **ref_outputs; /* the unoptimized run's graph outputs */
} check_config;

/* How one value of the optimized run differs from the reference. */
typedef struct diff {
  double max_abs, max_rel; /* max rel over elements whose reference is not 0 */
  uint64_t max_ulp;        /* UINT64_MAX: not comparable (dtypes or NaN differ) */
  int64_t n_bad;           /* elements beyond the tolerance */
  bool shape_differs;
} diff;

typedef struct row {
  const char *name, *op; /* the optimized graph's strings; valid while it lives */
  diff d;
} row;

/* One optimized run: its rows in program order and its outputs' verdict. */
typedef struct outcome {
  row *rows;
  int n_rows, cap_rows;
  int n_bad_rows;
  diff *outputs; /* one per graph output */
  int n_bad_outputs;
  const check_config *cfg;
} outcome;

/* ---- random inputs -------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *state) { /* splitmix64 */
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* A tensor of the declared type with random values: floats uniform in [-1, 1), integers 0..3,
 * Bool alternating. A symbolic dim takes 3, clamped to its symbol's bounds. */
static kl_status random_tensor(check_config *cfg, const kl_ir_type *type, kl_tensor **out) {
  int64_t shape[KL_MAX_RANK];
  for (int d = 0; d < type->rank; d++) {
    kl_ir_dim dim = type->dims[d];
    if (kl_ir_dim_is_static(dim)) {
      shape[d] = dim.size;
    } else if (dim.sym >= 0 && dim.sym < cfg->ref->n_symbols) {
      const kl_ir_symbol *s = &cfg->ref->symbols[dim.sym];
      shape[d] = 3 < s->min ? s->min : 3 > s->max ? s->max : 3;
    } else {
      return kl_status_create(KL_ERR_UNSUPPORTED, "dim %d is unknown ('*'); give the input "
                                                  "with --input",
                              d);
    }
  }
  KL_RETURN_IF_ERROR(kl_tensor_create(type->dtype, type->rank, shape, out));
  kl_tensor *t = *out;
  for (int64_t i = 0; i < t->numel; i++) {
    if (kl_dtype_is_float(t->dtype))
      kl_dtype_store_f64(t->dtype, t->data, (size_t)i,
                         (double)(rng_next(&cfg->rng) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    else if (t->dtype == KL_BOOL)
      kl_dtype_store_i64(t->dtype, t->data, (size_t)i, i % 2);
    else
      kl_dtype_store_i64(t->dtype, t->data, (size_t)i, (int64_t)(rng_next(&cfg->rng) % 4));
  }
  return NULL;
}

/* Binds --input arguments to graph inputs and reads them; the rest get random tensors. */
static kl_status bind_inputs(check_config *cfg, const kl_cli_command *cmd,
                             const kl_cli_args *args) {
  const kl_ir_block *top = cfg->ref->top;
  for (int m = 0; m < args->n_matches; m++) {
    if (!kl_cli_is(cmd, &args->matches[m], "input"))
      continue;
    const char *arg = args->matches[m].value, *eq = strchr(arg, '='), *file = arg;
    int index = -1;
    if (eq) {
      for (int i = 0; i < top->n_params && index < 0; i++)
        if (strlen(top->params[i]->name) == (size_t)(eq - arg) &&
            strncmp(top->params[i]->name, arg, (size_t)(eq - arg)) == 0)
          index = i;
      if (index < 0)
        return kl_status_create(KL_ERR_NOT_FOUND, "--input %s: the model has no input named '%.*s'",
                                arg, (int)(eq - arg), arg);
      file = eq + 1;
    } else if (top->n_params == 1) {
      index = 0;
    } else {
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "--input %s has no input name, which needs a model with one "
                              "input (use --input NAME=FILE)",
                              arg);
    }
    if (cfg->input_files[index])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "input '%s' given twice (%s and %s)",
                              top->params[index]->name, cfg->input_files[index], file);
    cfg->input_files[index] = file;
    kl_status s = kl_npy_read(file, &cfg->inputs[index]);
    if (s)
      return kl_status_annotate(s, "input '%s'", top->params[index]->name);
  }
  for (int i = 0; i < top->n_params; i++) {
    if (cfg->inputs[i])
      continue;
    kl_status s = random_tensor(cfg, &top->params[i]->type, &cfg->inputs[i]);
    if (s)
      return kl_status_annotate(s, "input '%s'", top->params[i]->name);
  }
  return NULL;
}

/* A text IR file declares prim::Params but holds no tensors: give each missing one a random
 * tensor, the same in every graph this check loads. */
static kl_status supply_weights(check_config *cfg, const kl_ir_block *b) {
  for (const kl_ir_node *n = b->first; n; n = n->next) {
    for (int i = 0; i < n->n_blocks; i++)
      KL_RETURN_IF_ERROR(supply_weights(cfg, n->blocks[i]));
    const char *name = n->op == KL_OP_PARAM ? kl_ir_node_string(n, "name", NULL) : NULL;
    if (!name || kl_ir_graph_weight(cfg->ref, name))
      continue;
    kl_tensor *t = NULL;
    kl_status s = random_tensor(cfg, &n->outputs[0]->type, &t);
    if (s)
      return kl_status_annotate(s, "parameter '%s'", name);
    kl_ir_graph_set_weight(cfg->ref, name, t);
    cfg->random_weights = realloc(cfg->random_weights,
                                  ((size_t)cfg->n_random_weights + 1) * sizeof *cfg->random_weights);
    if (!cfg->random_weights)
      kl_fatal_oom();
    cfg->random_weights[cfg->n_random_weights++] = (kl_ir_weight){name, t}; /* owns t */
  }
  return NULL;
}

/* ---- comparing ------------------------------------------------------------------------ */

/* Float bits mapped to integers that are ordered as the floats are, so that adjacent floats
 * are adjacent integers and -0.0 meets +0.0: the ULP distance is a difference of these. */
static int64_t ordered_bits(kl_dtype dt, const void *data, size_t i) {
  switch (dt) {
  case KL_F32: {
    int32_t b;
    memcpy(&b, (const char *)data + 4 * i, 4);
    return b < 0 ? (int64_t)INT32_MIN - b : b;
  }
  case KL_F64: {
    int64_t b;
    memcpy(&b, (const char *)data + 8 * i, 8);
    return b < 0 ? INT64_MIN - b : b;
  }
  default: { /* f16, bf16: 16-bit patterns */
    int16_t b;
    memcpy(&b, (const char *)data + 2 * i, 2);
    return b < 0 ? (int64_t)INT16_MIN - b : b;
  }
  }
}

static uint64_t ulp_distance(kl_dtype dt, const kl_tensor *a, const kl_tensor *b, size_t i) {
  if (!kl_dtype_is_float(dt)) {
    int64_t x = kl_dtype_load_i64(dt, a->data, i), y = kl_dtype_load_i64(dt, b->data, i);
    return x > y ? (uint64_t)x - (uint64_t)y : (uint64_t)y - (uint64_t)x;
  }
  int64_t x = ordered_bits(dt, a->data, i), y = ordered_bits(dt, b->data, i);
  return x > y ? (uint64_t)x - (uint64_t)y : (uint64_t)y - (uint64_t)x;
}

/* Compares got against the reference ref: |got - ref| <= atol + rtol * |ref| elementwise, as
 * numpy.allclose does; NaN matches only NaN. */
static diff compare(const kl_tensor *ref, const kl_tensor *got, double rtol, double atol) {
  diff d = {0};
  if (!kl_tensor_same_shape(ref, got)) {
    d.shape_differs = true;
    d.max_abs = d.max_rel = INFINITY;
    d.max_ulp = UINT64_MAX;
    d.n_bad = ref->numel > got->numel ? ref->numel : got->numel;
    return d;
  }
  bool same_dtype = ref->dtype == got->dtype;
  for (int64_t k = 0; k < ref->numel; k++) {
    size_t i = (size_t)k;
    double a = kl_dtype_load_f64(ref->dtype, ref->data, i);
    double b = kl_dtype_load_f64(got->dtype, got->data, i);
    double err, rel;
    uint64_t ulp;
    if (isnan(a) || isnan(b)) {
      bool both = isnan(a) && isnan(b);
      err = rel = both ? 0 : INFINITY;
      ulp = both ? 0 : UINT64_MAX;
    } else if (a == b) { /* equal infinities too */
      err = rel = 0;
      ulp = 0;
    } else {
      err = fabs(a - b);
      rel = a != 0 ? err / fabs(a) : 0;
      ulp = same_dtype ? ulp_distance(ref->dtype, ref, got, i) : UINT64_MAX;
    }
    if (!(err <= atol + rtol * fabs(a)))
      d.n_bad++;
    if (err > d.max_abs || isnan(err))
      d.max_abs = err;
    if (rel > d.max_rel)
      d.max_rel = rel;
    if (ulp > d.max_ulp)
      d.max_ulp = ulp;
  }
  return d;
}

static void format_ulp(uint64_t ulp, char *buf, size_t size) {
  if (ulp == UINT64_MAX)
    snprintf(buf, size, "-");
  else
    snprintf(buf, size, "%" PRIu64, ulp);
}

/* The interpreter's hook for the reference run: keep every value computed at top level. */
static kl_status record_value(void *ctx, const kl_ir_node *node, kl_tensor *const *outputs) {
  check_config *cfg = ctx;
  if (node->op == KL_OP_PARAM) /* weights are the same tensors in both runs */
    return NULL;
  for (int i = 0; i < node->n_outputs; i++) {
    kl_tensor_release(cfg->ref_values[node->outputs[i]->id]);
    cfg->ref_values[node->outputs[i]->id] = kl_tensor_retain(outputs[i]);
  }
  return NULL;
}

/* The hook for an optimized run: compare each value with the reference value of its name. */
static kl_status compare_value(void *ctx, const kl_ir_node *node, kl_tensor *const *outputs) {
  outcome *out = ctx;
  const check_config *cfg = out->cfg;
  if (node->op == KL_OP_PARAM)
    return NULL;
  for (int i = 0; i < node->n_outputs; i++) {
    const kl_ir_value *ref = kl_ir_graph_find_value(cfg->ref, node->outputs[i]->name);
    if (!ref || !cfg->ref_values[ref->id])
      continue;
    if (out->n_rows == out->cap_rows) {
      out->cap_rows = out->cap_rows ? 2 * out->cap_rows : 64;
      out->rows = realloc(out->rows, (size_t)out->cap_rows * sizeof *out->rows);
      if (!out->rows)
        kl_fatal_oom();
    }
    row *r = &out->rows[out->n_rows++];
    r->name = node->outputs[i]->name;
    r->op = kl_ir_node_op_name(node);
    r->d = compare(cfg->ref_values[ref->id], outputs[i], cfg->rtol, cfg->atol);
    out->n_bad_rows += r->d.n_bad > 0;
  }
  return NULL;
}

/* ---- runs ----------------------------------------------------------------------------- */

static kl_status load(const check_config *cfg, kl_ir_graph **out_graph) {
  KL_RETURN_IF_ERROR(kl_cli_load_graph(cfg->path, out_graph));
  for (int i = 0; i < cfg->n_random_weights; i++)
    kl_ir_graph_set_weight(*out_graph, cfg->random_weights[i].name,
                           cfg->random_weights[i].tensor);
  return NULL;
}

static void outcome_deinit(outcome *o) {
  free(o->rows);
  free(o->outputs);
  memset(o, 0, sizeof *o);
}

/* Loads the model fresh, runs the first n_passes passes on it and interprets it, comparing every
 * matched value and each graph output with the reference. *out_graph keeps the optimized graph
 * alive for the row strings; the caller destroys it. */
static kl_status run_optimized(const check_config *cfg, int n_passes, outcome *out,
                               kl_ir_graph **out_graph) {
  memset(out, 0, sizeof *out);
  out->cfg = cfg;
  KL_RETURN_IF_ERROR(load(cfg, out_graph));
  kl_ir_graph *g = *out_graph;
  kl_pass_options opts;
  kl_pass_options_init(&opts);
  opts.verify_each = true;
  KL_RETURN_IF_ERROR(kl_pass_run(g, cfg->passes, n_passes, &opts));
  int n_out = cfg->ref->top->n_returns;
  if (g->top->n_returns != n_out)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                            "the optimized graph has %d outputs, the model %d", g->top->n_returns,
                            n_out);
  kl_tensor **outputs = calloc((size_t)n_out + 1, sizeof *outputs);
  out->outputs = calloc((size_t)n_out + 1, sizeof *out->outputs);
  if (!outputs || !out->outputs)
    kl_fatal_oom();
  kl_status s = kl_interp_run_observed(g, cfg->inputs, g->top->n_params, outputs, compare_value,
                                       out);
  if (s)
    s = kl_status_annotate(s, "running the optimized model");
  for (int i = 0; !s && i < n_out; i++) {
    out->outputs[i] = compare(cfg->ref_outputs[i], outputs[i], cfg->rtol, cfg->atol);
    out->n_bad_outputs += out->outputs[i].n_bad > 0;
  }
  for (int i = 0; i < n_out; i++)
    kl_tensor_release(outputs[i]);
  free(outputs);
  return s;
}

/* ---- the report ----------------------------------------------------------------------- */

static void print_header(const check_config *cfg, const char *pipeline) {
  const kl_ir_block *top = cfg->ref->top;
  printf("model:      %s\n", cfg->path);
  printf("passes:     %s, %d pass%s%s", pipeline, cfg->n_passes, cfg->n_passes == 1 ? "" : "es",
         cfg->n_passes ? ":" : "");
  for (int i = 0; i < cfg->n_passes; i++)
    printf("%s %s", i ? "," : "", cfg->passes[i]->name);
  printf("\n");
  for (int i = 0; i < top->n_params; i++) {
    char type[256];
    kl_ir_type t = kl_ir_type_of_tensor(cfg->inputs[i]);
    kl_ir_type_format(cfg->ref, &t, type, sizeof type);
    printf("input:      %%%s : %s from %s\n", top->params[i]->name, type,
           cfg->input_files[i] ? cfg->input_files[i] : "random values");
  }
  if (cfg->n_random_weights)
    printf("weights:    %d parameter%s without a tensor in the file: random values\n",
           cfg->n_random_weights, cfg->n_random_weights == 1 ? "" : "s");
  printf("tolerance:  |optimized - reference| <= atol + rtol * |reference|, rtol %g, atol %g\n",
         cfg->rtol, cfg->atol);
}

static void print_row(const char *name, const char *op, const diff *d, int width) {
  char ulp[32], abs_err[32], rel_err[32];
  format_ulp(d->max_ulp, ulp, sizeof ulp);
  snprintf(abs_err, sizeof abs_err, "%.3g", d->max_abs);
  snprintf(rel_err, sizeof rel_err, "%.3g", d->max_rel);
  printf("  %%%-*s %-24s %10s %10s %12s", width, name, op, abs_err, rel_err, ulp);
  if (d->shape_differs)
    printf("  SHAPE DIFFERS");
  else if (d->n_bad)
    printf("  BEYOND TOLERANCE (%" PRId64 " element%s)", d->n_bad, d->n_bad == 1 ? "" : "s");
  printf("\n");
}

static void print_rows(const check_config *cfg, const outcome *o) {
  int width = 5;
  for (int i = 0; i < o->n_rows; i++) {
    int len = (int)strlen(o->rows[i].name);
    width = len > width ? (len < 40 ? len : 40) : width;
  }
  printf("\n  %-*s %-24s %10s %10s %12s\n", width + 1, "value", "op (optimized)", "max abs",
         "max rel", "max ulp");
  for (int i = 0; i < o->n_rows; i++)
    print_row(o->rows[i].name, o->rows[i].op, &o->rows[i].d, width);
  int n_ref = 0;
  for (int id = 0; id < cfg->ref->next_value_id; id++)
    n_ref += cfg->ref_values[id] != NULL;
  printf("\ncompared:   %d value%s computed in both runs (of %d in the reference run), %d beyond "
         "tolerance\n",
         o->n_rows, o->n_rows == 1 ? "" : "s", n_ref, o->n_bad_rows);
}

static void print_outputs(const check_config *cfg, const outcome *o) {
  const kl_ir_block *top = cfg->ref->top;
  for (int i = 0; i < top->n_returns; i++) {
    const diff *d = &o->outputs[i];
    char ulp[32];
    format_ulp(d->max_ulp, ulp, sizeof ulp);
    printf("output:     %%%s: ", top->returns[i]->name);
    if (d->shape_differs)
      printf("shape differs\n");
    else
      printf("%s (max abs %.3g, max rel %.3g, max ulp %s%s", d->n_bad ? "DIFFERS" : "agrees",
             d->max_abs, d->max_rel, ulp, d->n_bad ? "" : ")\n");
    if (!d->shape_differs && d->n_bad)
      printf(", %" PRId64 " of %" PRId64 " elements beyond tolerance)\n", d->n_bad,
             cfg->ref_outputs[i]->numel);
  }
}

/* Binary search over prefixes of the pass list: no pass agrees (the reference itself), all
 * passes differ; the first prefix that differs ends with the pass to blame. */
static kl_status bisect(const check_config *cfg) {
  int good = 0, bad = cfg->n_passes;
  while (bad - good > 1) {
    int mid = good + (bad - good) / 2;
    outcome o;
    kl_ir_graph *g = NULL;
    kl_status s = run_optimized(cfg, mid, &o, &g);
    bool differs = o.n_bad_outputs > 0;
    outcome_deinit(&o);
    kl_ir_graph_destroy(g);
    if (s)
      return kl_status_annotate(s, "bisecting (the first %d passes)", mid);
    printf("bisect:     the first %d pass%s: outputs %s\n", mid, mid == 1 ? "" : "es",
           differs ? "differ" : "agree");
    if (differs)
      bad = mid;
    else
      good = mid;
  }
  /* Rerun the guilty prefix to name the first value it gets wrong. */
  outcome o;
  kl_ir_graph *g = NULL;
  kl_status s = run_optimized(cfg, bad, &o, &g);
  if (!s) {
    printf("first bad pass: %s (pass %d of %d)\n", cfg->passes[bad - 1]->name, bad,
           cfg->n_passes);
    for (int i = 0; i < o.n_rows; i++) {
      if (o.rows[i].d.n_bad) {
        printf("first value it changed: %%%s (%s), max abs %.3g\n", o.rows[i].name, o.rows[i].op,
               o.rows[i].d.max_abs);
        break;
      }
    }
  }
  outcome_deinit(&o);
  kl_ir_graph_destroy(g);
  return s;
}

/* ---- the command ---------------------------------------------------------------------- */

static bool parse_double(const char *text, double *out) {
  char *end;
  errno = 0;
  *out = strtod(text, &end);
  return *text && !*end && !errno && *out >= 0 && isfinite(*out);
}

/* Reads -O, --passes, --rtol, --atol and --seed into cfg; returns an exit code, OK to go on. */
static int parse_settings(const kl_cli_command *cmd, const kl_cli_args *args, check_config *cfg,
                          char *pipeline, size_t pipeline_size) {
  const char *level = kl_cli_value(cmd, args, "level");
  const char *list = kl_cli_value(cmd, args, "passes");
  if (level && list)
    return kl_cli_usage_error(cmd, "give -O or --passes, not both");
  if (list) {
    kl_status s = kl_pass_parse_list(list, &cfg->passes, &cfg->n_passes);
    if (s) {
      kl_cli_usage_error(cmd, "--passes: %s", kl_status_message(s));
      kl_status_destroy(s);
      return KL_EXIT_USAGE;
    }
    snprintf(pipeline, pipeline_size, "--passes");
  } else {
    if (!level)
      level = "3";
    const char *const *names = NULL;
    if (strlen(level) == 1 && level[0] >= '0' && level[0] <= '3')
      names = kl_pass_pipeline(level[0] - '0');
    if (!names)
      return kl_cli_usage_error(cmd, "-O%s: the levels are 0, 1, 2 and 3", level);
    int n = 0;
    while (names[n])
      n++;
    cfg->passes = calloc((size_t)n + 1, sizeof *cfg->passes);
    if (!cfg->passes)
      kl_fatal_oom();
    for (int i = 0; i < n; i++) {
      cfg->passes[i] = kl_pass_find(names[i]);
      if (!cfg->passes[i])
        return kl_cli_usage_error(cmd, "-O%s names pass '%s', which is not registered", level,
                                  names[i]);
    }
    cfg->n_passes = n;
    snprintf(pipeline, pipeline_size, "-O%s", level);
  }
  const char *rtol = kl_cli_value(cmd, args, "rtol"), *atol = kl_cli_value(cmd, args, "atol");
  if (rtol && !parse_double(rtol, &cfg->rtol))
    return kl_cli_usage_error(cmd, "--rtol %s: expected a number >= 0", rtol);
  if (atol && !parse_double(atol, &cfg->atol))
    return kl_cli_usage_error(cmd, "--atol %s: expected a number >= 0", atol);
  const char *seed = kl_cli_value(cmd, args, "seed");
  if (seed) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(seed, &end, 10);
    if (!*seed || *end || errno || seed[0] == '-')
      return kl_cli_usage_error(cmd, "--seed %s: expected a non-negative integer", seed);
    cfg->rng = v;
  }
  return KL_EXIT_OK;
}

/* Runs the reference, then the optimized model; prints the report. */
static kl_status check_model(check_config *cfg, const kl_cli_command *cmd,
                             const kl_cli_args *args, const char *pipeline, bool *out_agree) {
  *out_agree = false;
  KL_RETURN_IF_ERROR(kl_cli_load_graph(cfg->path, &cfg->ref));
  const kl_ir_block *top = cfg->ref->top;
  size_t n_in = (size_t)top->n_params + 1, n_out = (size_t)top->n_returns + 1;
  cfg->inputs = calloc(n_in, sizeof *cfg->inputs);
  cfg->input_files = calloc(n_in, sizeof *cfg->input_files);
  cfg->ref_outputs = calloc(n_out, sizeof *cfg->ref_outputs);
  cfg->ref_values = calloc((size_t)cfg->ref->next_value_id + 1, sizeof *cfg->ref_values);
  if (!cfg->inputs || !cfg->input_files || !cfg->ref_outputs || !cfg->ref_values)
    kl_fatal_oom();
  KL_RETURN_IF_ERROR(bind_inputs(cfg, cmd, args));
  KL_RETURN_IF_ERROR(supply_weights(cfg, cfg->ref->top));
  print_header(cfg, pipeline);
  fflush(stdout);

  kl_status s = kl_interp_run_observed(cfg->ref, cfg->inputs, top->n_params, cfg->ref_outputs,
                                       record_value, cfg);
  if (s)
    return kl_status_annotate(s, "running the model as loaded");
  outcome o;
  kl_ir_graph *g = NULL;
  s = run_optimized(cfg, cfg->n_passes, &o, &g);
  if (!s) {
    print_rows(cfg, &o);
    print_outputs(cfg, &o);
    *out_agree = o.n_bad_outputs == 0;
    if (*out_agree)
      printf("result:     the optimized model agrees with the model as loaded\n");
    else
      printf("result:     %d of %d output%s differ%s beyond tolerance\n", o.n_bad_outputs,
             top->n_returns, top->n_returns == 1 ? "" : "s", o.n_bad_outputs == 1 ? "s" : "");
  }
  outcome_deinit(&o);
  kl_ir_graph_destroy(g);
  if (!s && !*out_agree && cfg->n_passes > 0) {
    fflush(stdout);
    s = bisect(cfg);
  }
  return s;
}

static void config_deinit(check_config *cfg) {
  if (cfg->ref) {
    for (int i = 0; i < cfg->ref->top->n_params; i++)
      kl_tensor_release(cfg->inputs ? cfg->inputs[i] : NULL);
    for (int i = 0; i < cfg->ref->top->n_returns; i++)
      kl_tensor_release(cfg->ref_outputs ? cfg->ref_outputs[i] : NULL);
    for (int id = 0; cfg->ref_values && id <= cfg->ref->next_value_id; id++)
      kl_tensor_release(cfg->ref_values[id]);
  }
  for (int i = 0; i < cfg->n_random_weights; i++)
    kl_tensor_release(cfg->random_weights[i].tensor);
  free(cfg->random_weights);
  free(cfg->inputs);
  free(cfg->input_files);
  free(cfg->ref_outputs);
  free(cfg->ref_values);
  free(cfg->passes);
  kl_ir_graph_destroy(cfg->ref);
}

static int check_run(const kl_cli_command *cmd, int argc, char **argv) {
  kl_cli_args args;
  int rc = KL_EXIT_OK;
  check_config cfg = {.rtol = 1e-4, .atol = 1e-5};
  char pipeline[32] = "";
  if (!kl_cli_parse(cmd, argc, argv, &args)) {
    rc = KL_EXIT_USAGE;
  } else if (args.help) {
    kl_cli_print_command_help(cmd, stdout);
  } else if (args.n_positionals != 1) {
    rc = args.n_positionals ? kl_cli_usage_error(cmd, "expected one model file, got %d",
                                                 args.n_positionals)
                            : kl_cli_usage_error(cmd, "no model file given");
  } else if ((rc = parse_settings(cmd, &args, &cfg, pipeline, sizeof pipeline)) == KL_EXIT_OK) {
    cfg.path = args.positionals[0];
    bool agree = false;
    kl_status s = check_model(&cfg, cmd, &args, pipeline, &agree);
    if (s)
      rc = kl_cli_fail(s, cfg.path);
    else
      rc = agree ? KL_EXIT_OK : KL_EXIT_ERROR;
  }
  config_deinit(&cfg);
  kl_cli_args_deinit(&args);
  return rc;
}

const kl_cli_command kl_cmd_check = {
    .name = "check",
    .summary = "compare a model optimized and as loaded, value by value",
    .synopsis = "FILE [-O0..-O3 | --passes=A,B,C] [--input [NAME=]x.npy ...] [--rtol R] [--atol A] "
                "[--seed S]",
    .description =
        "Loads FILE (a .kir, .onnx or text IR model) twice, optimizes one copy with the -O list\n"
        "(-O3 unless told otherwise) or the passes named by --passes, and runs both with the\n"
        "reference interpreter on the same inputs: those given with --input, random ones for\n"
        "the rest (floats uniform in [-1, 1), integers 0..3, Bool alternating; a symbolic dim\n"
        "takes 3 within its bounds; the same --seed gives the same values). Parameters that a\n"
        "text IR file has no tensor for get random values too.\n"
        "\n"
        "Every value computed in both runs (same name, computed at top level or as a fusion\n"
        "group output) is compared and listed in program order of the optimized graph with its\n"
        "largest absolute error, relative error (over elements whose reference is not 0) and\n"
        "distance in units in the last place; a value with an element beyond\n"
        "|optimized - reference| <= atol + rtol * |reference| is marked. Then each graph output\n"
        "is judged. When an output differs, prefixes of the pass list are rerun to find the first\n"
        "pass that breaks the outputs, and the first value that pass changes is named.\n"
        "\n"
        "Exit status: 0 when every output agrees, 1 when one differs (after the report) or the\n"
        "model fails to load or run, 2 on a usage error.",
    .options = check_options,
    .n_options = (int)(sizeof check_options / sizeof check_options[0]),
    .examples = "  kiln check net.kir -O3\n"
                "  kiln check net.kir --input x=x.npy --rtol 1e-3 --atol 1e-4\n"
                "  kiln check model.ir --passes=canonicalize,fold-constants,dce\n",
    .run = check_run,
};
