/* `kiln bench MODEL|LIB.so [--input NAME=x.npy ...] [--threads N] [--iters K] [--warmup W]
 * [--json]`: times a compiled model through its C API.
 *
 * A model is compiled first through the compile cache (so a second bench of the same model
 * starts at once); a library is used as it is. One context is created with N threads, run W
 * times untimed, then K times each timed on its own with a monotonic clock; the median and the
 * minimum are printed. Inputs not given are filled with seeded pseudo-random values (uniform in
 * [-1, 1) for floats, small non-negative integers otherwise, so index inputs stay in range for
 * small tables), so two benches see the same data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compile_cache.h"
#include "kiln_internal.h"
#include "runtime/artifact_load.h"
#include "runtime/npy.h"

static const kl_cli_option bench_options[] = {
    {"input", 'i', "[NAME=]FILE", "a .npy file for input NAME (repeatable); inputs not given are "
                                  "random (seeded)"},
    {"threads", 't', "N", "threads the library runs with (default 1)"},
    {"iters", 'n', "K", "timed runs (default 100)"},
    {"warmup", 'w', "W", "untimed runs first (default 10)"},
    {"json", 0, NULL, "print one JSON object instead of text"},
    {"level", 'O', "N", "when compiling a model: the optimization level 0..3 (default -O2)"},
    {"cache-dir", 0, "DIR", "the compile cache (default $XDG_CACHE_HOME/kiln or ~/.cache/kiln)"},
    KL_CLI_BIND_OPTION,
    {"seed", 0, "S", "the seed of the random inputs (default 0)"},
    {"verbose", 'v', NULL, "say on stderr whether the library came from the cache"},
};

static bool parse_int(const char *arg, long min, long max, long *out) {
  char *end;
  long v = strtol(arg, &end, 10);
  if (*arg == '\0' || *end != '\0' || v < min || v > max)
    return false;
  *out = v;
  return true;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* xorshift64*: small, seeded, the same on every machine. */
static uint64_t next_random(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

static void fill_random(kl_tensor *t, uint64_t *state) {
  for (int64_t i = 0; i < t->numel; i++) {
    uint64_t r = next_random(state);
    if (kl_dtype_is_float(t->dtype))
      kl_dtype_store_f64(t->dtype, t->data, (size_t)i, (double)(r >> 11) / 9007199254740992.0 * 2 - 1);
    else if (t->dtype == KL_BOOL)
      kl_dtype_store_i64(t->dtype, t->data, (size_t)i, (int64_t)(r >> 63));
    else
      kl_dtype_store_i64(t->dtype, t->data, (size_t)i, (int64_t)(r >> 61)); /* 0..7 */
  }
}

typedef struct bench_setup {
  const kl_artifact_descriptor *d;
  kl_tensor **inputs, **outputs;
} bench_setup;

/* Binds --input arguments to the descriptor's inputs and makes the rest random. */
static kl_status prepare_inputs(const kl_cli_command *cmd, const kl_cli_args *args,
                                const kl_cli_bind *binds, int n_binds, bench_setup *b,
                                uint64_t seed) {
  const kl_artifact_descriptor *d = b->d;
  for (int m = 0; m < args->n_matches; m++) {
    if (!kl_cli_is(cmd, &args->matches[m], "input"))
      continue;
    const char *arg = args->matches[m].value;
    const char *eq = strchr(arg, '=');
    int index = -1;
    const char *file = arg;
    if (eq) {
      for (int i = 0; i < d->n_inputs && index < 0; i++)
        if (strlen(d->inputs[i].name) == (size_t)(eq - arg) &&
            strncmp(d->inputs[i].name, arg, (size_t)(eq - arg)) == 0)
          index = i;
      for (int k = 0; k < n_binds && index < 0; k++)
        if (strlen(binds[k].name) == (size_t)(eq - arg) &&
            strncmp(binds[k].name, arg, (size_t)(eq - arg)) == 0)
          return kl_status_create(KL_ERR_INVALID_ARGUMENT, "input '%s' is bound at compile time "
                                  "(--bind %s=%s), so the library has no such input; drop its "
                                  "--input", binds[k].name, binds[k].name, binds[k].path);
      if (index < 0)
        return kl_status_create(KL_ERR_NOT_FOUND, "no input named '%.*s'", (int)(eq - arg), arg);
      file = eq + 1;
    } else if (d->n_inputs == 1) {
      index = 0;
    } else {
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "--input %s has no input name, which needs a model with one input",
                              arg);
    }
    if (b->inputs[index])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "input '%s' given twice",
                              d->inputs[index].name);
    KL_RETURN_IF_ERROR(
        kl_status_annotate(kl_npy_read(file, &b->inputs[index]), "input '%s'", d->inputs[index].name));
    const kl_tensor *t = b->inputs[index];
    bool same = t->dtype == (kl_dtype)d->inputs[index].dtype && t->rank == d->inputs[index].rank;
    for (int k = 0; same && k < t->rank; k++)
      same = t->shape[k] == d->inputs[index].shape[k];
    if (!same) {
      char have[128], want[128];
      kl_shape_format(t->shape, t->rank, have, sizeof have);
      kl_shape_format(d->inputs[index].shape, d->inputs[index].rank, want, sizeof want);
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "input '%s': %s holds %s %s, the library takes %s %s",
                              d->inputs[index].name, file, kl_dtype_short_name(t->dtype), have,
                              kl_dtype_short_name(d->inputs[index].dtype), want);
    }
  }
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
  for (int i = 0; i < d->n_inputs; i++) {
    if (b->inputs[i])
      continue;
    KL_RETURN_IF_ERROR(kl_tensor_create(d->inputs[i].dtype, d->inputs[i].rank,
                                        d->inputs[i].shape, &b->inputs[i]));
    fill_random(b->inputs[i], &state);
  }
  for (int i = 0; i < d->n_outputs; i++)
    KL_RETURN_IF_ERROR(kl_tensor_create(d->outputs[i].dtype, d->outputs[i].rank,
                                        d->outputs[i].shape, &b->outputs[i]));
  return NULL;
}

static kl_status time_runs(const bench_setup *b, int n_threads, long iters, long warmup,
                           double *times) {
  const kl_artifact_descriptor *d = b->d;
  const void **in = calloc((size_t)d->n_inputs + 1, sizeof *in);
  void **out = calloc((size_t)d->n_outputs + 1, sizeof *out);
  if (!in || !out)
    kl_fatal_oom();
  for (int i = 0; i < d->n_inputs; i++)
    in[i] = b->inputs[i]->data;
  for (int i = 0; i < d->n_outputs; i++)
    out[i] = b->outputs[i]->data;
  kl_artifact_options opts = {.struct_size = sizeof opts, .n_threads = n_threads};
  void *ctx = NULL;
  kl_status s = NULL;
  int code = d->create(&opts, &ctx);
  if (code != 0 || !ctx) {
    s = kl_status_create(KL_ERR_INTERNAL, "create failed: %s", d->status_message(code));
  } else {
    for (long i = 0; i < warmup + iters && !s; i++) {
      double t0 = now_ms();
      code = d->run(ctx, in, out, 0);
      double t1 = now_ms();
      if (code != 0)
        s = kl_status_create(KL_ERR_INTERNAL, "run failed: %s: %s", d->status_message(code),
                             d->error_message(ctx));
      else if (i >= warmup)
        times[i - warmup] = t1 - t0;
    }
    d->destroy(ctx);
  }
  free(in);
  free(out);
  return s;
}

static int bench_run(const kl_cli_command *cmd, int argc, char **argv) {
  kl_cli_args args;
  int rc = KL_EXIT_OK;
  if (!kl_cli_parse(cmd, argc, argv, &args)) {
    kl_cli_args_deinit(&args);
    return KL_EXIT_USAGE;
  }
  if (args.help) {
    kl_cli_print_command_help(cmd, stdout);
    kl_cli_args_deinit(&args);
    return KL_EXIT_OK;
  }
  long n_threads = 1, iters = 100, warmup = 10, seed = 0;
  const char *v;
  const char *level = kl_cli_value(cmd, &args, "level");
  if (args.n_positionals != 1)
    rc = args.n_positionals == 0
             ? kl_cli_usage_error(cmd, "no model or library given")
             : kl_cli_usage_error(cmd, "expected one model or library, got %d",
                                  args.n_positionals);
  else if ((v = kl_cli_value(cmd, &args, "threads")) && !parse_int(v, 1, 1024, &n_threads))
    rc = kl_cli_usage_error(cmd, "--threads must be a number from 1 to 1024, not '%s'", v);
  else if ((v = kl_cli_value(cmd, &args, "iters")) && !parse_int(v, 1, 10000000, &iters))
    rc = kl_cli_usage_error(cmd, "--iters must be a number from 1 to 10000000, not '%s'", v);
  else if ((v = kl_cli_value(cmd, &args, "warmup")) && !parse_int(v, 0, 10000000, &warmup))
    rc = kl_cli_usage_error(cmd, "--warmup must be a number from 0 to 10000000, not '%s'", v);
  else if ((v = kl_cli_value(cmd, &args, "seed")) && !parse_int(v, 0, 2147483647L, &seed))
    rc = kl_cli_usage_error(cmd, "--seed must be a non-negative number, not '%s'", v);
  else if (level && (strlen(level) != 1 || level[0] < '0' || level[0] > '3'))
    rc = kl_cli_usage_error(cmd, "optimization level must be -O0, -O1, -O2 or -O3, not '-O%s'",
                            level);
  kl_cli_bind *binds = NULL;
  int n_binds = 0;
  if (rc == KL_EXIT_OK)
    rc = kl_cli_collect_binds(cmd, &args, &binds, &n_binds);
  if (rc != KL_EXIT_OK) {
    kl_cli_args_deinit(&args);
    return rc;
  }

  const char *path = args.positionals[0];
  char *so_path = NULL;
  kl_status s = NULL;
  FILE *f = fopen(path, "rb");
  unsigned char magic[4] = {0};
  bool elf = f && fread(magic, 1, 4, f) == 4 && memcmp(magic, "\x7f" "ELF", 4) == 0;
  if (f)
    fclose(f);
  if (elf && n_binds > 0) {
    rc = kl_cli_usage_error(cmd, "%s is already a compiled library; --bind applies when "
                            "compiling a model", path);
    kl_cli_binds_free(binds, n_binds);
    kl_cli_args_deinit(&args);
    return rc;
  }
  if (!elf) {
    kl_tool_compile c = {0};
    c.model_path = path;
    c.binds = binds;
    c.n_binds = n_binds;
    c.level = level ? level[0] - '0' : 2;
    c.codegen.name = "net";
    s = kl_compile_cache_get(&c, kl_cli_value(cmd, &args, "cache-dir"),
                             kl_cli_flag(cmd, &args, "verbose"), &so_path);
  }
  kl_artifact_handle *handle = NULL;
  bench_setup b = {0};
  double *times = NULL;
  if (!s)
    s = kl_artifact_open(so_path ? so_path : path, &handle, &b.d);
  if (!s) {
    b.inputs = calloc((size_t)b.d->n_inputs + 1, sizeof *b.inputs);
    b.outputs = calloc((size_t)b.d->n_outputs + 1, sizeof *b.outputs);
    times = calloc((size_t)iters, sizeof *times);
    if (!b.inputs || !b.outputs || !times)
      kl_fatal_oom();
    s = prepare_inputs(cmd, &args, binds, n_binds, &b, (uint64_t)seed);
  }
  if (!s)
    s = time_runs(&b, (int)n_threads, iters, warmup, times);
  if (!s) {
    qsort(times, (size_t)iters, sizeof *times, compare_doubles);
    double median = iters % 2 ? times[iters / 2] : (times[iters / 2 - 1] + times[iters / 2]) / 2;
    double min = times[0];
    if (kl_cli_flag(cmd, &args, "json"))
      printf("{\"median_ms\": %.6f, \"min_ms\": %.6f, \"iters\": %ld, \"threads\": %ld}\n",
             median, min, iters, n_threads);
    else
      printf("%s: median %.3f ms, min %.3f ms (%ld runs after %ld warm-up, %ld thread%s)\n", path,
             median, min, iters, warmup, n_threads, n_threads == 1 ? "" : "s");
  } else {
    rc = kl_cli_fail(s, path);
  }
  if (b.d) {
    for (int i = 0; i < b.d->n_inputs; i++)
      kl_tensor_release(b.inputs[i]);
    for (int i = 0; i < b.d->n_outputs; i++)
      kl_tensor_release(b.outputs[i]);
  }
  free(b.inputs);
  free(b.outputs);
  free(times);
  kl_artifact_close(handle);
  free(so_path);
  kl_cli_binds_free(binds, n_binds);
  kl_cli_args_deinit(&args);
  return rc;
}

const kl_cli_command kl_cmd_bench = {
    .name = "bench",
    .summary = "time a compiled model (compiling it through the cache if needed)",
    .synopsis = "MODEL|LIB.so [--input [NAME=]x.npy ...] [--threads N] [--iters K] [--warmup W] "
                "[--json] [-O0..-O3] [--cache-dir DIR] [--bind NAME=FILE.npy ...] [--seed S]",
    .description =
        "Times the run function of a compiled library. MODEL (.kir, .onnx or text IR) is first\n"
        "compiled through the compile cache, as `kiln run --compiled` does; a library written\n"
        "by `kiln compile` is used as it is. One context with N threads runs W untimed warm-up\n"
        "calls, then K timed calls; the median and minimum latency are printed in milliseconds.\n"
        "Inputs without --input get seeded random values (floats uniform in [-1, 1), integers\n"
        "in 0..7). --json prints {\"median_ms\", \"min_ms\", \"iters\", \"threads\"}.\n"
        "\n"
        "--bind NAME=FILE.npy compiles MODEL with graph input NAME replaced by the .npy's\n"
        "tensor, as `kiln compile --bind` does (the cache keeps one library per set of bound\n"
        "values); the library then has no input NAME, so it takes no --input for it. A model\n"
        "whose shapes depend on input values compiles only with those inputs bound.\n"
        "\n"
        "With KILN_PROFILE=1 in the environment the library also times each of its steps and\n"
        "elementwise regions (warm-up calls included) and prints, on stderr, their time per run\n"
        "slowest first.",
    .options = bench_options,
    .n_options = (int)(sizeof bench_options / sizeof bench_options[0]),
    .examples = "  kiln bench model.onnx --threads 4\n"
                "  kiln bench libnet.so --input x=x.npy --iters 1000 --json\n"
                "  kiln bench reshape.onnx --bind shape=shape.npy --input x=x.npy\n"
                "  KILN_PROFILE=1 kiln bench libnet.so --iters 20\n",
    .run = bench_run,
};
