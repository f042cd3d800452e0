/* libFuzzer target: an ONNX model from memory through the whole import (the wire pre-walk,
 * protobuf-c unpacking, the model check, conversion with shape inference), then the text
 * printer on whatever imported. External data is refused (no base folder), so an input never
 * reads a file. Any status is fine; a crash, a sanitizer report or a leak is a finding. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "frontend/onnx/onnx.h"
#include "fuzz_common.h"
#include "ir/text.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  kl_fuzz_set_limits();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kl_onnx_import_options opts;
  kl_onnx_import_options_init(&opts);
  kl_ir_graph *g = NULL;
  kl_status s = kl_onnx_import_buffer(data, size, NULL, "fuzz.onnx", &opts, &g);
  if (!s) {
    char *text = NULL;
    size_t len = 0;
    kl_status_destroy(kl_ir_print(g, NULL, &text, &len));
    free(text);
  } else if (!*kl_status_message(s)) {
    __builtin_trap(); /* every refusal must say why */
  }
  kl_status_destroy(s);
  kl_ir_graph_destroy(g);
  return 0;
}
