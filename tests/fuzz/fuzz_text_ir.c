/* libFuzzer target: the text IR parser (lexer, parser, type inference, verifier) on arbitrary
 * bytes, then the printer on whatever parsed. Any status is fine; a crash, a sanitizer report
 * or a leak is a finding. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
  kl_ir_parse_options opts = {"fuzz.ir", NULL, NULL};
  kl_ir_graph *g = NULL;
  kl_status s = kl_ir_parse((const char *)data, size, &opts, &g);
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
