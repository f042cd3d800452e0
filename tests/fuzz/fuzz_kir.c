/* libFuzzer target: the .kir loader from memory (header, section table, blob directory, the
 * text section through the parser, weight references), on a 64-aligned copy as a mapped file
 * would be. Any status is fine; a crash, a sanitizer report or a leak is a finding. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "ir/kir.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  kl_fuzz_set_limits();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* exactly size bytes past a 64-aligned start, so ASan sees any read past the end */
  unsigned char *copy = aligned_alloc(64, (size | 63) + 1);
  if (!copy)
    return 0;
  if (size)
    memcpy(copy, data, size);
  kl_ir_graph *g = NULL;
  kl_status s = kl_kir_load_buffer(copy, size, "fuzz.kir", &g);
  if (s && !*kl_status_message(s))
    __builtin_trap(); /* every refusal must say why */
  kl_status_destroy(s);
  kl_ir_graph_destroy(g); /* the graph may borrow copy: destroy it first */
  free(copy);
  return 0;
}
