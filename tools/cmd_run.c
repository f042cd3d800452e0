/* `kiln run FILE --input NAME=x.npy ... [-o out.npy | -o NAME=out.npy ...]`: runs a model on
 * inputs read from .npy files, then writes the outputs to .npy files or prints them as PyTorch
 * would.
 *
 * FILE is a model (run by the reference interpreter, or with --compiled compiled through the
 * compile cache and run as an artifact) or an artifact written by `kiln compile` (an ELF
 * shared library, run through its descriptor). Both are described the same way here, as
 * input and output names with types, so the binding of files to names, the checks and the
 * printing are the same code for both.
 *
 * Everything the command line says is checked against the model before anything runs: each
 * input name, each output name, that every input has a file and none has two, so a mistake is
 * reported at once and names what the model actually has. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile_cache.h"
#include "runtime/artifact_load.h"
#include "runtime/interp.h"
#include "runtime/npy.h"
#include "kiln_internal.h"

static const kl_cli_option run_options[] = {
    {"input", 'i', "[NAME=]FILE", "a .npy file for the model input NAME (repeatable); the name "
                                  "may be left out when the model has one input"},
    {"output", 'o', "[NAME=]FILE", "write output NAME to a .npy file (repeatable); the name may be "
                                   "left out when the model has one output"},
    {"full", 0, NULL, "print every value instead of summarizing large outputs with '...'"},
    {"compiled", 0, NULL,
     "compile the model (through the compile cache) and run the compiled library"},
    {"level", 'O', "N", "with --compiled: the optimization level 0..3 (default -O2)"},
    {"threads", 't', "N", "threads a compiled library runs with (default 1)"},
    {"cache-dir", 0, "DIR",
     "with --compiled: the compile cache (default $XDG_CACHE_HOME/kiln or ~/.cache/kiln)"},
    {"verbose", 'v', NULL, "say on stderr whether the compiled library came from the cache"},
    KL_CLI_BIND_OPTION,
};

/* What the command line asked for, resolved against the model's inputs and outputs. */
typedef struct run_plan {
  const char *model_path;
  const kl_ir_graph *g; /* the interpreted model; NULL for an artifact */
  const kl_artifact_descriptor *desc; /* the artifact; NULL for an interpreted model */
  int n_in, n_out;
  const char **in_names, **out_names;
  kl_ir_type *in_types, *out_types;
  const kl_cli_bind *binds;  /* inputs bound at compile time (--bind): not inputs any more */
  int n_binds;
  kl_tensor **inputs;        /* one per input, NULL until read */
  const char **input_files;  /* one per input */
  const char **output_files; /* one per output, NULL: not written */
  bool any_output_file;
} run_plan;

/* "x (Float(1, 10)), y (Long(4))" into a malloc'd string. */
static char *describe_values(const kl_ir_graph *g, const char *const *names,
                             const kl_ir_type *types, int n) {
  size_t cap = 64, len = 0;
  char *s = malloc(cap);
  if (!s)
    kl_fatal_oom();
  s[0] = '\0';
  if (n == 0) {
    snprintf(s, cap, "(none)");
    return s;
  }
  for (int i = 0; i < n; i++) {
    char type[256];
    kl_ir_type_format(g, &types[i], type, sizeof type);
    size_t need = strlen(names[i]) + strlen(type) + 8;
    if (len + need >= cap) {
      while (len + need >= cap)
        cap *= 2;
      char *grown = realloc(s, cap);
      if (!grown)
        kl_fatal_oom();
      s = grown;
    }
    len += (size_t)snprintf(s + len, cap - len, "%s%s (%s)", i ? ", " : "", names[i], type);
  }
  return s;
}

/* Replaces s by a status with the same code whose message ends with the model's inputs (or
 * outputs), so a name mistake shows at once what the right names are. s is destroyed. */
static kl_status list_values(const run_plan *plan, kl_status s, bool inputs) {
  char *list = inputs ? describe_values(plan->g, plan->in_names, plan->in_types, plan->n_in)
                      : describe_values(plan->g, plan->out_names, plan->out_types, plan->n_out);
  kl_status listed = kl_status_create(kl_status_code_of(s), "%s; model has %s: %s",
                                      kl_status_message(s), inputs ? "inputs" : "outputs", list);
  free(list);
  kl_status_destroy(s);
  return listed;
}

static kl_status list_inputs(const run_plan *plan, kl_status s) { return list_values(plan, s, true); }
static kl_status list_outputs(const run_plan *plan, kl_status s) { return list_values(plan, s, false); }

static int find_named(const char *const *names, int n, const char *name, size_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(names[i]) == len && strncmp(names[i], name, len) == 0)
      return i;
  return -1;
}

/* Binds one --input argument "[NAME=]FILE" to a model input (the file is read later). */
static kl_status bind_input(run_plan *plan, const char *arg) {
  const char *eq = strchr(arg, '=');
  int index;
  const char *file;
  if (eq) {
    index = find_named(plan->in_names, plan->n_in, arg, (size_t)(eq - arg));
    for (int k = 0; k < plan->n_binds && index < 0; k++)
      if (strlen(plan->binds[k].name) == (size_t)(eq - arg) &&
          strncmp(plan->binds[k].name, arg, (size_t)(eq - arg)) == 0)
        return kl_status_create(KL_ERR_INVALID_ARGUMENT, "input '%s' is bound at compile time "
                                "(--bind %s=%s), so the compiled model has no such input; drop "
                                "its --input", plan->binds[k].name, plan->binds[k].name,
                                plan->binds[k].path);
    if (index < 0)
      return list_inputs(plan, kl_status_create(KL_ERR_NOT_FOUND, "no input named '%.*s'",
                                                (int)(eq - arg), arg));
    file = eq + 1;
  } else {
    if (plan->n_in != 1)
      return list_inputs(plan, kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                                "--input %s has no input name, which needs a model "
                                                "with one input (use --input NAME=FILE)",
                                                arg));
    index = 0;
    file = arg;
  }
  if (plan->input_files[index])
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "input '%s' given twice (%s and %s)",
                            plan->in_names[index], plan->input_files[index], file);
  if (!*file)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "input '%s': empty file name",
                            plan->in_names[index]);
  plan->input_files[index] = file;
  return NULL;
}

/* Binds one -o argument "[NAME=]FILE" to the model outputs of that name. */
static kl_status bind_output(run_plan *plan, const char *arg) {
  const char *eq = strchr(arg, '=');
  const char *file = arg;
  int first = 0, found = 0;
  if (eq) {
    first = find_named(plan->out_names, plan->n_out, arg, (size_t)(eq - arg));
    if (first < 0)
      return list_outputs(plan, kl_status_create(KL_ERR_NOT_FOUND, "no output named '%.*s'",
                                                 (int)(eq - arg), arg));
    file = eq + 1;
  } else if (plan->n_out != 1) {
    return list_outputs(plan, kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                               "-o %s has no output name, which needs a model with "
                                               "one output (use -o NAME=FILE)",
                                               arg));
  }
  if (!*file)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "-o %s: empty file name", arg);
  /* A graph may return one value twice; every return of that name gets the file. */
  for (int i = first; i < plan->n_out; i++) {
    if (eq && strcmp(plan->out_names[i], plan->out_names[first]) != 0)
      continue;
    if (plan->output_files[i])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "output '%s' given twice (%s and %s)",
                              plan->out_names[i], plan->output_files[i], file);
    plan->output_files[i] = file;
    found++;
  }
  plan->any_output_file = plan->any_output_file || found > 0;
  return NULL;
}

static kl_status check_all_inputs_bound(const run_plan *plan) {
  int missing = 0;
  char names[512] = "";
  size_t len = 0;
  for (int i = 0; i < plan->n_in; i++) {
    if (plan->input_files[i])
      continue;
    if (len < sizeof names)
      len += (size_t)snprintf(names + len, sizeof names - len, "%s'%s'", missing ? ", " : "",
                              plan->in_names[i]);
    missing++;
  }
  if (!missing)
    return NULL;
  return list_inputs(plan, kl_status_create(KL_ERR_INVALID_ARGUMENT, "missing input%s %s (give "
                                                                      "each with --input NAME=FILE)",
                                            missing > 1 ? "s" : "", names));
}

static kl_status print_output(const run_plan *plan, int index, const kl_tensor *t, bool full) {
  char type[256];
  kl_ir_type tt = kl_ir_type_of_tensor(t);
  kl_ir_type_format(plan->g, &tt, type, sizeof type);
  printf("%s%%%s : %s\n", index ? "\n" : "", plan->out_names[index], type);
  kl_tensor_print_options opts = kl_tensor_print_defaults();
  if (full)
    opts.threshold = -1;
  return kl_tensor_print(t, &opts, stdout);
}

/* Makes sure a message about a file names it: loaders usually do, but not always. */
static kl_status name_file(kl_status s, const char *path) {
  if (s && !strstr(kl_status_message(s), path))
    s = kl_status_annotate(s, "%s", path);
  return s;
}

/* Runs the artifact once: each input file must hold exactly the dtype and shape the library
 * was compiled for (its shapes are static). */
static kl_status run_artifact(const run_plan *plan, int n_threads, kl_tensor **outputs) {
  const kl_artifact_descriptor *d = plan->desc;
  for (int i = 0; i < plan->n_in; i++) {
    kl_ir_type have = kl_ir_type_of_tensor(plan->inputs[i]);
    if (!kl_ir_type_equal(&have, &plan->in_types[i])) {
      char want_s[256], have_s[256];
      kl_ir_type_format(NULL, &plan->in_types[i], want_s, sizeof want_s);
      kl_ir_type_format(NULL, &have, have_s, sizeof have_s);
      return kl_status_create(KL_ERR_INVALID_ARGUMENT,
                              "input '%s': %s holds %s, but %s was compiled for %s",
                              plan->in_names[i], plan->input_files[i], have_s, plan->model_path,
                              want_s);
    }
  }
  for (int i = 0; i < plan->n_out; i++)
    KL_RETURN_IF_ERROR(kl_tensor_create(plan->out_types[i].dtype, d->outputs[i].rank,
                                        d->outputs[i].shape, &outputs[i]));
  size_t n_in = plan->n_in > 0 ? (size_t)plan->n_in : 1;
  size_t n_out = plan->n_out > 0 ? (size_t)plan->n_out : 1;
  const void **in_ptrs = calloc(n_in, sizeof *in_ptrs);
  void **out_ptrs = calloc(n_out, sizeof *out_ptrs);
  if (!in_ptrs || !out_ptrs)
    kl_fatal_oom();
  for (int i = 0; i < plan->n_in; i++)
    in_ptrs[i] = plan->inputs[i]->data;
  for (int i = 0; i < plan->n_out; i++)
    out_ptrs[i] = outputs[i]->data;
  kl_artifact_options opts = {.struct_size = sizeof opts, .n_threads = n_threads};
  void *ctx = NULL;
  kl_status s = NULL;
  int code = d->create(&opts, &ctx);
  if (code != 0 || !ctx) {
    s = kl_status_create(KL_ERR_INTERNAL, "%s: create failed: %s", plan->model_path,
                         d->status_message(code));
  } else {
    code = d->run(ctx, in_ptrs, out_ptrs, 0);
    if (code != 0)
      s = kl_status_create(code == KL_ARTIFACT_ERR_INVALID_ARGUMENT ? KL_ERR_INVALID_ARGUMENT
                                                                     : KL_ERR_INTERNAL,
                           "%s: run failed: %s: %s", plan->model_path, d->status_message(code),
                           d->error_message(ctx));
    d->destroy(ctx);
  }
  free(in_ptrs);
  free(out_ptrs);
  return s;
}

/* Reads the inputs, runs the model and delivers the outputs. Every error it returns already
 * names the file it is about (an input, the model or an output). */
static kl_status execute(run_plan *plan, bool full, int n_threads) {
  for (int i = 0; i < plan->n_in; i++) {
    kl_status s = kl_npy_read(plan->input_files[i], &plan->inputs[i]);
    if (s)
      return kl_status_annotate(name_file(s, plan->input_files[i]), "input '%s'",
                                plan->in_names[i]);
  }
  int n_out = plan->n_out;
  kl_tensor **outputs = calloc(n_out > 0 ? (size_t)n_out : 1, sizeof *outputs);
  if (!outputs)
    kl_fatal_oom();
  kl_status s;
  if (plan->desc) {
    s = run_artifact(plan, n_threads, outputs);
  } else {
    s = kl_interp_run(plan->g, plan->inputs, plan->n_in, outputs);
    if (s && strncmp(kl_status_message(s), plan->model_path, strlen(plan->model_path)) != 0)
      s = kl_status_annotate(s, "%s", plan->model_path);
  }
  for (int i = 0; i < n_out && !s; i++) {
    if (plan->any_output_file) {
      if (plan->output_files[i])
        s = name_file(kl_npy_write(plan->output_files[i], outputs[i]), plan->output_files[i]);
    } else {
      s = print_output(plan, i, outputs[i], full);
    }
  }
  for (int i = 0; i < n_out; i++)
    kl_tensor_release(outputs[i]);
  free(outputs);
  return s;
}

/* True when the file starts with the ELF magic (an artifact rather than a model). */
static bool is_elf_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return false;
  unsigned char magic[4] = {0};
  size_t n = fread(magic, 1, sizeof magic, f);
  fclose(f);
  return n == 4 && memcmp(magic, "\x7f" "ELF", 4) == 0;
}

static void plan_alloc(run_plan *plan) {
  size_t n_in = plan->n_in > 0 ? (size_t)plan->n_in : 1;
  size_t n_out = plan->n_out > 0 ? (size_t)plan->n_out : 1;
  plan->in_names = calloc(n_in, sizeof *plan->in_names);
  plan->in_types = calloc(n_in, sizeof *plan->in_types);
  plan->out_names = calloc(n_out, sizeof *plan->out_names);
  plan->out_types = calloc(n_out, sizeof *plan->out_types);
  plan->inputs = calloc(n_in, sizeof *plan->inputs);
  plan->input_files = calloc(n_in, sizeof *plan->input_files);
  plan->output_files = calloc(n_out, sizeof *plan->output_files);
  if (!plan->in_names || !plan->in_types || !plan->out_names || !plan->out_types ||
      !plan->inputs || !plan->input_files || !plan->output_files)
    kl_fatal_oom();
}

static void plan_from_graph(run_plan *plan, const kl_ir_graph *g) {
  plan->g = g;
  plan->n_in = g->top->n_params;
  plan->n_out = g->top->n_returns;
  plan_alloc(plan);
  for (int i = 0; i < plan->n_in; i++) {
    plan->in_names[i] = g->top->params[i]->name;
    plan->in_types[i] = g->top->params[i]->type;
  }
  for (int i = 0; i < plan->n_out; i++) {
    plan->out_names[i] = g->top->returns[i]->name;
    plan->out_types[i] = g->top->returns[i]->type;
  }
}

static void plan_from_artifact(run_plan *plan, const kl_artifact_descriptor *d) {
  plan->desc = d;
  plan->n_in = d->n_inputs;
  plan->n_out = d->n_outputs;
  plan_alloc(plan);
  for (int i = 0; i < plan->n_in; i++) {
    plan->in_names[i] = d->inputs[i].name;
    plan->in_types[i] = kl_ir_type_make(d->inputs[i].dtype, d->inputs[i].rank, d->inputs[i].shape);
  }
  for (int i = 0; i < plan->n_out; i++) {
    plan->out_names[i] = d->outputs[i].name;
    plan->out_types[i] =
        kl_ir_type_make(d->outputs[i].dtype, d->outputs[i].rank, d->outputs[i].shape);
  }
}

static void plan_free(run_plan *plan) {
  for (int i = 0; i < plan->n_in; i++)
    kl_tensor_release(plan->inputs[i]);
  free(plan->inputs);
  free(plan->input_files);
  free(plan->output_files);
  free(plan->in_names);
  free(plan->in_types);
  free(plan->out_names);
  free(plan->out_types);
}

/* "--threads N": 1..1024. */
static bool parse_threads(const char *arg, int *out) {
  char *end;
  long v = strtol(arg, &end, 10);
  if (*arg == '\0' || *end != '\0' || v < 1 || v > 1024)
    return false;
  *out = (int)v;
  return true;
}

static int run_model(const kl_cli_command *cmd, const kl_cli_args *args) {
  run_plan plan = {.model_path = args->positionals[0]};
  const char *level = kl_cli_value(cmd, args, "level");
  const char *threads = kl_cli_value(cmd, args, "threads");
  const char *cache_dir = kl_cli_value(cmd, args, "cache-dir");
  bool compiled = kl_cli_flag(cmd, args, "compiled");
  int n_threads = 1;
  if (threads && !parse_threads(threads, &n_threads))
    return kl_cli_usage_error(cmd, "--threads must be a number from 1 to 1024, not '%s'",
                              threads);
  if (level && (strlen(level) != 1 || level[0] < '0' || level[0] > '3'))
    return kl_cli_usage_error(cmd, "optimization level must be -O0, -O1, -O2 or -O3, not '-O%s'",
                              level);
  bool artifact = is_elf_file(plan.model_path);
  bool bind = kl_cli_value(cmd, args, "bind") != NULL;
  if ((level || cache_dir || bind) && !compiled)
    return kl_cli_usage_error(cmd, "-O, --cache-dir and --bind go with --compiled");
  if (compiled && artifact)
    return kl_cli_usage_error(cmd, "%s is already a compiled library; drop --compiled",
                              plan.model_path);
  if (threads && !compiled && !artifact)
    return kl_cli_usage_error(cmd, "--threads applies to compiled libraries (add --compiled)");

  kl_ir_graph *g = NULL;
  kl_artifact_handle *handle = NULL;
  const kl_artifact_descriptor *desc = NULL;
  char *cached = NULL;
  kl_status s = NULL;
  kl_cli_bind *binds = NULL;
  int n_binds = 0;
  int rc = kl_cli_collect_binds(cmd, args, &binds, &n_binds);
  if (rc != KL_EXIT_OK)
    return rc;
  plan.binds = binds;
  plan.n_binds = n_binds;
  if (compiled) {
    kl_tool_compile c = {0};
    c.model_path = plan.model_path;
    c.binds = binds;
    c.n_binds = n_binds;
    c.level = level ? level[0] - '0' : 2;
    c.codegen.name = "net";
    s = kl_compile_cache_get(&c, cache_dir, kl_cli_flag(cmd, args, "verbose"), &cached);
    if (!s)
      s = kl_artifact_open(cached, &handle, &desc);
  } else if (artifact) {
    s = kl_artifact_open(plan.model_path, &handle, &desc);
  } else {
    s = kl_cli_load_graph(plan.model_path, &g);
  }
  free(cached);
  if (s) {
    kl_artifact_close(handle);
    kl_cli_binds_free(binds, n_binds);
    return kl_cli_fail(s, plan.model_path);
  }
  if (desc)
    plan_from_artifact(&plan, desc);
  else
    plan_from_graph(&plan, g);

  for (int i = 0; i < args->n_matches && !s; i++) {
    const kl_cli_match *m = &args->matches[i];
    if (kl_cli_is(cmd, m, "input"))
      s = bind_input(&plan, m->value);
    else if (kl_cli_is(cmd, m, "output"))
      s = bind_output(&plan, m->value);
  }
  if (!s)
    s = check_all_inputs_bound(&plan);
  if (s)
    rc = kl_cli_fail(s, plan.model_path);
  else if ((s = execute(&plan, kl_cli_flag(cmd, args, "full"), n_threads)))
    rc = kl_cli_fail(s, NULL);

  plan_free(&plan);
  kl_ir_graph_destroy(g);
  kl_artifact_close(handle);
  kl_cli_binds_free(binds, n_binds);
  return rc;
}

static int run_run(const kl_cli_command *cmd, int argc, char **argv) {
  kl_cli_args args;
  int rc;
  if (!kl_cli_parse(cmd, argc, argv, &args))
    rc = KL_EXIT_USAGE;
  else if (args.help) {
    kl_cli_print_command_help(cmd, stdout);
    rc = KL_EXIT_OK;
  } else if (args.n_positionals == 0)
    rc = kl_cli_usage_error(cmd, "no model file given");
  else if (args.n_positionals > 1)
    rc = kl_cli_usage_error(cmd, "expected one model file, got %d (inputs go after --input)",
                            args.n_positionals);
  else
    rc = run_model(cmd, &args);
  kl_cli_args_deinit(&args);
  return rc;
}

const kl_cli_command kl_cmd_run = {
    .name = "run",
    .summary = "run a model (interpreted or compiled) or a compiled library on .npy inputs",
    .synopsis = "FILE --input [NAME=]x.npy ... [-o [NAME=]out.npy ...] [--full] [--compiled "
                "[-O0..-O3] [--cache-dir DIR] [--bind NAME=FILE.npy ...] [-v]] [--threads N]",
    .description =
        "Loads FILE (a .kir model, an .onnx model or a text IR file), reads each model input\n"
        "from a .npy file, runs the model with the reference interpreter and delivers its\n"
        "outputs.\n"
        "\n"
        "Every model input needs one --input NAME=FILE, NAME being the input's name in the IR\n"
        "(graph(%x : ...) is input x); a model with one input also takes --input FILE. The\n"
        "file's dtype and shape must match the input's declared type (symbolic dims take any\n"
        "size within their bounds).\n"
        "\n"
        "With -o the outputs named are written as .npy files and nothing is printed; -o FILE\n"
        "alone needs a model with one output. Without -o every output is printed: its name,\n"
        "dtype and shape, then its values laid out as PyTorch prints a tensor (large tensors\n"
        "are summarized with '...' unless --full is given).\n"
        "\n"
        "FILE may also be a library written by `kiln compile` (libnet.so): it is loaded and run\n"
        "through its descriptor, with the same input names, and each input file must have the\n"
        "exact dtype and shape it was compiled for. With --compiled a model is compiled first,\n"
        "through the compile cache ($XDG_CACHE_HOME/kiln, default ~/.cache/kiln; a second run of\n"
        "the same model, kiln and options reuses the library, and -v says which happened).\n"
        "--threads N runs a compiled library with N threads.\n"
        "\n"
        "With --compiled, --bind NAME=FILE.npy compiles the model with graph input NAME\n"
        "replaced by the .npy's tensor, as `kiln compile --bind` does (the cache keeps one\n"
        "library per set of bound values); the compiled model then has no input NAME and takes\n"
        "no --input for it. A model whose shapes depend on input values (a Reshape whose shape\n"
        "is an input) compiles only with those inputs bound; the interpreter needs no --bind.\n"
        "\n"
        "A wrong or missing input name is an error that lists the inputs the model has, with\n"
        "their types ('kiln show --stats FILE' lists them too).\n"
        "\n"
        "Exit status: 0 on success, 1 when the model or an input cannot be read or the run\n"
        "fails, 2 on a usage error.",
    .options = run_options,
    .n_options = (int)(sizeof run_options / sizeof run_options[0]),
    .examples = "  kiln run net.kir --input x.npy\n"
                "  kiln run net.kir --input x=x.npy --input mask=mask.npy -o logits=logits.npy\n"
                "  kiln run model.ir -i x.npy -o y.npy\n"
                "  kiln run model.onnx -i input=x.npy --full\n"
                "  kiln run libnet.so -i x=x.npy -o y.npy --threads 4\n"
                "  kiln run model.onnx --compiled -v -i input=x.npy\n"
                "  kiln run reshape.onnx --compiled --bind shape=shape.npy -i x=x.npy\n",
    .run = run_run,
};
