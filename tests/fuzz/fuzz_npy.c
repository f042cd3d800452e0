/* libFuzzer target: the .npy reader from memory (preamble, header dict, dtype, shape, data
 * size). Any status is fine; a crash, a sanitizer report or a leak is a finding. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "runtime/npy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  kl_fuzz_set_limits();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kl_tensor *t = NULL;
  kl_status s = kl_npy_read_buffer(data, size, "fuzz.npy", &t);
  if (s && !*kl_status_message(s))
    __builtin_trap(); /* every refusal must say why */
  kl_status_destroy(s);
  kl_tensor_release(t);
  return 0;
}
