/* `kiln run FILE --input NAME=x.npy ... [-o out.npy | -o NAME=out.npy ...]`: runs a model with
 * the reference interpreter on inputs read from .npy files, then writes the outputs to .npy
 * files or prints them as PyTorch would.
 *
 * Everything the command line says is checked against the model before anything runs: each
 * input name, each output name, that every input has a file and none has two, so a mistake is
 * reported at once and names what the model actually has. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/interp.h"
#include "runtime/npy.h"
#include "kiln_internal.h"

static const kl_cli_option run_options[] = {
    {"input", 'i', "[NAME=]FILE", "a .npy file for the model input NAME (repeatable); the name "
                                  "may be left out when the model has one input"},
    {"output", 'o', "[NAME=]FILE", "write output NAME to a .npy file (repeatable); the name may be "
                                   "left out when the model has one output"},
    {"full", 0, NULL, "print every value instead of summarizing large outputs with '...'"},
};

/* What the command line asked for, resolved against the model. */
typedef struct run_plan {
  const char *model_path;
  kl_ir_graph *g;
  kl_tensor **inputs;        /* one per graph input, NULL until read */
  const char **input_files;  /* one per graph input */
  const char **output_files; /* one per graph output, NULL: not written */
  bool any_output_file;
} run_plan;

/* "x (Float(1, 10)), y (Long(4))" into a malloc'd string. */
static char *describe_values(const kl_ir_graph *g, kl_ir_value *const *values, int n) {
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
    kl_ir_type_format(g, &values[i]->type, type, sizeof type);
    size_t need = strlen(values[i]->name) + strlen(type) + 8;
    if (len + need >= cap) {
      while (len + need >= cap)
        cap *= 2;
      char *grown = realloc(s, cap);
      if (!grown)
        kl_fatal_oom();
      s = grown;
    }
    len += (size_t)snprintf(s + len, cap - len, "%s%s (%s)", i ? ", " : "", values[i]->name, type);
  }
  return s;
}

/* Replaces s by a status with the same code whose message ends with the model's inputs (or
 * outputs), so a name mistake shows at once what the right names are. s is destroyed. */
static kl_status list_values(const run_plan *plan, kl_status s, bool inputs) {
  const kl_ir_block *top = plan->g->top;
  char *list = inputs ? describe_values(plan->g, top->params, top->n_params)
                      : describe_values(plan->g, top->returns, top->n_returns);
  kl_status listed = kl_status_create(kl_status_code_of(s), "%s; model has %s: %s",
                                      kl_status_message(s), inputs ? "inputs" : "outputs", list);
  free(list);
  kl_status_destroy(s);
  return listed;
}

static kl_status list_inputs(const run_plan *plan, kl_status s) { return list_values(plan, s, true); }
static kl_status list_outputs(const run_plan *plan, kl_status s) { return list_values(plan, s, false); }

static int find_named(kl_ir_value *const *values, int n, const char *name, size_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(values[i]->name) == len && strncmp(values[i]->name, name, len) == 0)
      return i;
  return -1;
}

/* Binds one --input argument "[NAME=]FILE" to a graph input (the file is read later). */
static kl_status bind_input(run_plan *plan, const char *arg) {
  const kl_ir_block *top = plan->g->top;
  const char *eq = strchr(arg, '=');
  int index;
  const char *file;
  if (eq) {
    index = find_named(top->params, top->n_params, arg, (size_t)(eq - arg));
    if (index < 0)
      return list_inputs(plan, kl_status_create(KL_ERR_NOT_FOUND, "no input named '%.*s'",
                                                (int)(eq - arg), arg));
    file = eq + 1;
  } else {
    if (top->n_params != 1)
      return list_inputs(plan, kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                                "--input %s has no input name, which needs a model "
                                                "with one input (use --input NAME=FILE)",
                                                arg));
    index = 0;
    file = arg;
  }
  if (plan->input_files[index])
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "input '%s' given twice (%s and %s)",
                            top->params[index]->name, plan->input_files[index], file);
  if (!*file)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "input '%s': empty file name",
                            top->params[index]->name);
  plan->input_files[index] = file;
  return NULL;
}

/* Binds one -o argument "[NAME=]FILE" to the graph outputs of that name. */
static kl_status bind_output(run_plan *plan, const char *arg) {
  const kl_ir_block *top = plan->g->top;
  const char *eq = strchr(arg, '=');
  const char *file = arg;
  int first = 0, found = 0;
  if (eq) {
    first = find_named(top->returns, top->n_returns, arg, (size_t)(eq - arg));
    if (first < 0)
      return list_outputs(plan, kl_status_create(KL_ERR_NOT_FOUND, "no output named '%.*s'",
                                                 (int)(eq - arg), arg));
    file = eq + 1;
  } else if (top->n_returns != 1) {
    return list_outputs(plan, kl_status_create(KL_ERR_INVALID_ARGUMENT,
                                               "-o %s has no output name, which needs a model with "
                                               "one output (use -o NAME=FILE)",
                                               arg));
  }
  if (!*file)
    return kl_status_create(KL_ERR_INVALID_ARGUMENT, "-o %s: empty file name", arg);
  /* A graph may return one value twice; every return of that name gets the file. */
  for (int i = first; i < top->n_returns; i++) {
    if (eq && strcmp(top->returns[i]->name, top->returns[first]->name) != 0)
      continue;
    if (plan->output_files[i])
      return kl_status_create(KL_ERR_INVALID_ARGUMENT, "output '%s' given twice (%s and %s)",
                              top->returns[i]->name, plan->output_files[i], file);
    plan->output_files[i] = file;
    found++;
  }
  plan->any_output_file = plan->any_output_file || found > 0;
  return NULL;
}

static kl_status check_all_inputs_bound(const run_plan *plan) {
  const kl_ir_block *top = plan->g->top;
  int missing = 0;
  char names[512] = "";
  size_t len = 0;
  for (int i = 0; i < top->n_params; i++) {
    if (plan->input_files[i])
      continue;
    if (len < sizeof names)
      len += (size_t)snprintf(names + len, sizeof names - len, "%s'%s'", missing ? ", " : "",
                              top->params[i]->name);
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
  printf("%s%%%s : %s\n", index ? "\n" : "", plan->g->top->returns[index]->name, type);
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

/* Reads the inputs, runs the graph and delivers the outputs. Every error it returns already
 * names the file it is about (an input, the model or an output). */
static kl_status execute(run_plan *plan, bool full) {
  const kl_ir_block *top = plan->g->top;
  for (int i = 0; i < top->n_params; i++) {
    kl_status s = kl_npy_read(plan->input_files[i], &plan->inputs[i]);
    if (s)
      return kl_status_annotate(name_file(s, plan->input_files[i]), "input '%s'",
                                top->params[i]->name);
  }
  int n_out = top->n_returns;
  kl_tensor **outputs = calloc(n_out > 0 ? (size_t)n_out : 1, sizeof *outputs);
  if (!outputs)
    kl_fatal_oom();
  kl_status s = kl_interp_run(plan->g, plan->inputs, top->n_params, outputs);
  if (s && strncmp(kl_status_message(s), plan->model_path, strlen(plan->model_path)) != 0)
    s = kl_status_annotate(s, "%s", plan->model_path);
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

static int run_model(const kl_cli_command *cmd, const kl_cli_args *args) {
  run_plan plan = {.model_path = args->positionals[0]};
  kl_status s = kl_cli_load_graph(plan.model_path, &plan.g);
  if (s)
    return kl_cli_fail(s, plan.model_path);
  const kl_ir_block *top = plan.g->top;
  size_t n_in = top->n_params > 0 ? (size_t)top->n_params : 1;
  size_t n_out = top->n_returns > 0 ? (size_t)top->n_returns : 1;
  plan.inputs = calloc(n_in, sizeof *plan.inputs);
  plan.input_files = calloc(n_in, sizeof *plan.input_files);
  plan.output_files = calloc(n_out, sizeof *plan.output_files);
  if (!plan.inputs || !plan.input_files || !plan.output_files)
    kl_fatal_oom();

  for (int i = 0; i < args->n_matches && !s; i++) {
    const kl_cli_match *m = &args->matches[i];
    if (kl_cli_is(cmd, m, "input"))
      s = bind_input(&plan, m->value);
    else if (kl_cli_is(cmd, m, "output"))
      s = bind_output(&plan, m->value);
  }
  if (!s)
    s = check_all_inputs_bound(&plan);
  int rc = KL_EXIT_OK;
  if (s)
    rc = kl_cli_fail(s, plan.model_path);
  else if ((s = execute(&plan, kl_cli_flag(cmd, args, "full"))))
    rc = kl_cli_fail(s, NULL);

  for (int i = 0; i < top->n_params; i++)
    kl_tensor_release(plan.inputs[i]);
  free(plan.inputs);
  free(plan.input_files);
  free(plan.output_files);
  kl_ir_graph_destroy(plan.g);
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
    .summary = "run a model with the reference interpreter on .npy inputs",
    .synopsis = "FILE --input [NAME=]x.npy ... [-o [NAME=]out.npy ...] [--full]",
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
        "are summarized with '...' unless --full is given).",
    .options = run_options,
    .n_options = (int)(sizeof run_options / sizeof run_options[0]),
    .examples = "  kiln run net.kir --input x.npy\n"
                "  kiln run net.kir --input x=x.npy --input mask=mask.npy -o logits=logits.npy\n"
                "  kiln run model.ir -i x.npy -o y.npy\n",
    .run = run_run,
};
