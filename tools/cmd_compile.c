/* `kiln compile MODEL -o libnet.so [--name net] [--header net.h] [-O0..-O3] ...`: optimizes a
 * model with the pass pipeline of the -O level and compiles it with the LLVM CPU backend into a
 * standalone shared library (and, with --header, its typed C header).
 *
 * The model name defaults to the output file's stem without a "lib" prefix, made into an
 * identifier; a --name given explicitly must already be one. Progress goes to stderr, and only
 * when stderr is a terminal, so scripts and logs see nothing but errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compile_cache.h"
#include "kiln_internal.h"

static const kl_cli_option compile_options[] = {
    {"output", 'o', "LIB.so", "the shared library to write"},
    {"name", 0, "NAME",
     "the model's C name, prefix of every exported symbol (default: the output's stem without "
     "'lib')"},
    {"header", 0, "NET.h", "also write the typed C header for the library"},
    KL_CLI_BIND_OPTION,
    {"level", 'O', "N", "optimization level 0..3 for the graph passes and LLVM (default -O2)"},
    {"target-triple", 0, "TRIPLE",
     "compile for another target (aarch64-linux-gnu); linking then needs a cross linker "
     "($KILN_CROSS_CC) and runtime ($KILN_RUNTIME_ARCHIVE)"},
    {"cpu", 0, "CPU", "the CPU to tune and select instructions for (default: the host's)"},
    {"features", 0, "F", "LLVM target features such as +avx2,+fma (default: the host's)"},
    {"no-winograd", 0, NULL,
     "compute 3x3 convolutions as GEMMs only, never by Winograd's F(2x2, 3x3) (which reorders "
     "their sums: results differ from the interpreter's in the last bits)"},
    {"no-fuse-epilogue", 0, NULL,
     "run a residual add and activation after a convolution as a pass of their own instead of "
     "applying them as the convolution stores its output (for comparing the two)"},
    {"emit-llvm", 0, "OUT.ll", "also write the optimized LLVM IR"},
    {"emit-obj", 0, "OUT.o", "also write (keep) the object file; without -o only the object"},
    {"time-passes", 0, NULL, "print the time of each pass and compile stage to stderr"},
    /* ---- CUDA target ---- */
    {"target", 0, "T", "cpu (default) or cuda (NVRTC-compiled kernels, driven through libcuda)"},
    {"arch", 0, "sm_XX", "with --target cuda: the GPU architecture (default sm_80)"},
    /* ---- end CUDA target ---- */
};

/* The default model name: "build/libnet.so" -> "net", "my-model.so" -> "my_model"; NULL when
 * nothing usable is left (the caller then asks for --name). */
static char *name_from_output(const char *out) {
  const char *base = strrchr(out, '/');
  base = base ? base + 1 : out;
  if (strncmp(base, "lib", 3) == 0 && base[3] != '\0' && base[3] != '.')
    base += 3;
  size_t n = strcspn(base, ".");
  if (n == 0 || n > 64)
    return NULL;
  char *name = malloc(n + 2);
  if (!name)
    kl_fatal_oom();
  size_t at = 0;
  if (base[0] >= '0' && base[0] <= '9')
    name[at++] = '_';
  for (size_t i = 0; i < n; i++) {
    char c = base[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    name[at++] = ok ? c : '_';
  }
  name[at] = '\0';
  if (!kl_codegen_valid_model_name(name)) {
    free(name);
    return NULL;
  }
  return name;
}

static int compile_run(const kl_cli_command *cmd, int argc, char **argv) {
  kl_cli_args args;
  int rc = KL_EXIT_OK;
  char *default_name = NULL;
  kl_cli_bind *binds = NULL;
  int n_binds = 0;
  if (!kl_cli_parse(cmd, argc, argv, &args)) {
    rc = KL_EXIT_USAGE;
    goto done;
  }
  if (args.help) {
    kl_cli_print_command_help(cmd, stdout);
    goto done;
  }
  const char *out = kl_cli_value(cmd, &args, "output");
  const char *name = kl_cli_value(cmd, &args, "name");
  const char *level = kl_cli_value(cmd, &args, "level");
  const char *emit_obj = kl_cli_value(cmd, &args, "emit-obj");
  if (args.n_positionals == 0) {
    rc = kl_cli_usage_error(cmd, "no model file given");
    goto done;
  }
  if (args.n_positionals > 1) {
    rc = kl_cli_usage_error(cmd, "expected one model file, got %d", args.n_positionals);
    goto done;
  }
  if (!out && !emit_obj) {
    rc = kl_cli_usage_error(cmd, "no output given (-o LIB.so, or --emit-obj OUT.o)");
    goto done;
  }
  if (level && (strlen(level) != 1 || level[0] < '0' || level[0] > '3')) {
    rc = kl_cli_usage_error(cmd, "optimization level must be -O0, -O1, -O2 or -O3, not '-O%s'",
                            level);
    goto done;
  }
  if (name && !kl_codegen_valid_model_name(name)) {
    rc = kl_cli_usage_error(cmd,
                            "--name '%s' is not a valid model name: it must be a C identifier "
                            "([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes) that is not a C keyword "
                            "and does not start with 'kiln_' or 'kl_'",
                            name);
    goto done;
  }
  if (!name) {
    default_name = name_from_output(out ? out : emit_obj);
    if (!default_name) {
      rc = kl_cli_usage_error(cmd, "cannot make a model name from '%s'; give --name",
                              out ? out : emit_obj);
      goto done;
    }
    name = default_name;
  }
  const char *header = kl_cli_value(cmd, &args, "header");
  if (header && !out) {
    rc = kl_cli_usage_error(cmd, "--header needs a library to describe (-o LIB.so)");
    goto done;
  }
  if ((rc = kl_cli_collect_binds(cmd, &args, &binds, &n_binds)) != KL_EXIT_OK)
    goto done;

  kl_tool_compile c = {0};
  c.model_path = args.positionals[0];
  c.binds = binds;
  c.n_binds = n_binds;
  c.level = level ? level[0] - '0' : 2;
  c.codegen.name = name;
  c.codegen.target = KL_TARGET_CPU;
  /* ---- CUDA target ---- */
  const char *target = kl_cli_value(cmd, &args, "target");
  const char *arch = kl_cli_value(cmd, &args, "arch");
  if (target && strcmp(target, "cuda") == 0) {
    c.codegen.target = KL_TARGET_CUDA;
  } else if (target && strcmp(target, "cpu") != 0) {
    rc = kl_cli_usage_error(cmd, "--target must be cpu or cuda, not '%s'", target);
    goto done;
  }
  if (arch && c.codegen.target != KL_TARGET_CUDA) {
    rc = kl_cli_usage_error(cmd, "--arch %s needs --target cuda", arch);
    goto done;
  }
  c.codegen.cuda_arch = arch;
  /* ---- end CUDA target ---- */
  c.codegen.triple = kl_cli_value(cmd, &args, "target-triple");
  c.codegen.cpu = kl_cli_value(cmd, &args, "cpu");
  c.codegen.features = kl_cli_value(cmd, &args, "features");
  c.codegen.no_winograd = kl_cli_flag(cmd, &args, "no-winograd");
  c.codegen.no_fuse_epilogue = kl_cli_flag(cmd, &args, "no-fuse-epilogue");
  c.codegen.emit_llvm_path = kl_cli_value(cmd, &args, "emit-llvm");
  c.codegen.emit_obj_path = emit_obj;
  c.time_passes = kl_cli_flag(cmd, &args, "time-passes") ? stderr : NULL;
  c.progress = isatty(STDERR_FILENO);
  kl_status s = kl_tool_compile_model(&c, out, header);
  if (s)
    rc = kl_cli_fail(s, c.model_path);
done:
  kl_cli_binds_free(binds, n_binds);
  free(default_name);
  kl_cli_args_deinit(&args);
  return rc;
}

const kl_cli_command kl_cmd_compile = {
    .name = "compile",
    .summary = "compile a model into a standalone shared library (and C header)",
    .synopsis = "MODEL -o LIB.so [--name NAME] [--header NET.h] [--bind NAME=FILE.npy ...] "
                "[-O0..-O3] [--target-triple T] "
                "[--cpu C] [--features F] [--no-winograd] [--no-fuse-epilogue] [--emit-llvm OUT.ll] "
                "[--emit-obj OUT.o] "
                "[--time-passes] "
                "[--target cuda [--arch sm_XX]]",
    .description =
        "Loads MODEL (a .kir model, an .onnx model or a text IR file), optimizes it with the\n"
        "pass pipeline of the -O level (as `kiln opt -ON` does), lowers it through LLVM and links\n"
        "it with kiln's artifact runtime into LIB.so. The library needs only libc, libm and\n"
        "libpthread and exports only NAME_create, NAME_run, ... and the descriptor\n"
        "kiln_model_NAME, which `kiln run LIB.so` and `kiln bench LIB.so` use.\n"
        "\n"
        "--header writes the typed C API: NAME_inputs and NAME_outputs structs with one pointer\n"
        "per tensor, NAME_WORKSPACE_SIZE, the status codes and the functions. Every input must\n"
        "have a static shape.\n"
        "\n"
        "--bind NAME=FILE.npy specializes the model for a value known at compile time: graph\n"
        "input NAME is replaced by a constant holding the .npy's tensor before the passes run,\n"
        "and the library has that input no more. The tensor must have the input's dtype and\n"
        "shape (a symbolic dim takes the tensor's size, within its bounds). This is how a model\n"
        "whose shapes depend on input values compiles: an ONNX Reshape whose shape, a ReduceSum\n"
        "whose axes, a Slice whose starts or a Resize whose sizes are graph inputs has no static\n"
        "shapes until those inputs are bound; without --bind the error names them. At -O0 no\n"
        "pass runs, so such nodes stay; use -O1 or higher.\n"
        "\n"
        "NAME defaults to the stem of LIB.so without 'lib' (libnet.so: net), with other bytes\n"
        "than letters, digits and '_' turned into '_'. For another --target-triple, give\n"
        "--emit-obj to keep the object; linking it needs $KILN_CROSS_CC (or TRIPLE-gcc) and an\n"
        "artifact runtime archive built for that target in $KILN_RUNTIME_ARCHIVE. $CC (default\n"
        "cc) links for the host.",
    .options = compile_options,
    .n_options = (int)(sizeof compile_options / sizeof compile_options[0]),
    .examples = "  kiln compile model.onnx -o libnet.so --header net.h\n"
                "  cc -o app app.c -L. -lnet -Wl,-rpath,'$ORIGIN'       (app.c includes net.h)\n"
                "  kiln compile net.kir -O3 -o build/libmlp.so --name mlp --time-passes\n"
                "  kiln compile reshape.onnx -o libr.so --bind shape=shape.npy   (shape: a graph "
                "input)\n"
                "  kiln compile net.kir --target-triple aarch64-linux-gnu --emit-obj net.o\n"
                "  kiln compile net.kir --target cuda --arch sm_90 -o libnet_gpu.so\n",
    .run = compile_run,
};
