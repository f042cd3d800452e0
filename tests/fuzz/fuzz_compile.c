/* libFuzzer target: an ONNX model from memory through what `kiln compile -O3` does short of
 * writing files: the import (as fuzz_onnx, external data refused), the -O3 pass pipeline, and
 * the LLVM CPU backend's lowering, LLVM's module verifier and its default<O0> pipeline
 * (kl_codegen_llvm_ir: no object is emitted, nothing is linked). Graphs are capped at
 * KL_FUZZ_COMPILE_MAX_NODES nodes so that each input takes milliseconds, not seconds. Any
 * status is fine if it says why; a crash, a sanitizer report or a leak is a finding. With
 * KILN_FUZZ_VERBOSE set, each input's outcome is printed (to see how far the seeds get). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "codegen/codegen.h"
#include "frontend/onnx/onnx.h"
#include "fuzz_common.h"
#include "passes/pass.h"

#define KL_FUZZ_COMPILE_MAX_NODES 2000

static int verbose;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  kl_fuzz_set_limits_nodes(KL_FUZZ_COMPILE_MAX_NODES);
  verbose = getenv("KILN_FUZZ_VERBOSE") != NULL;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kl_onnx_import_options opts;
  kl_onnx_import_options_init(&opts);
  kl_ir_graph *g = NULL;
  kl_status s = kl_onnx_import_buffer(data, size, NULL, "fuzz.onnx", &opts, &g);
  if (!s) {
    kl_pass_options popts;
    kl_pass_options_init(&popts);
    s = kl_pass_run_level(g, 3, &popts);
  }
  if (!s) {
    /* The host's CPU, as `kiln compile` without --cpu; LLVM at O0 (its verifier runs first). */
    kl_compile_options co = {.name = "net", .target = KL_TARGET_CPU, .opt_level = 0};
    s = kl_codegen_llvm_ir(g, &co, NULL, NULL);
  }
  if (verbose)
    fprintf(stderr, "fuzz_compile: %s\n", s ? kl_status_message(s) : "compiled");
  if (s && !*kl_status_message(s))
    __builtin_trap(); /* every refusal must say why */
  kl_status_destroy(s);
  kl_ir_graph_destroy(g);
  return 0;
}
