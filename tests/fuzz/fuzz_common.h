/* Shared set-up of the libFuzzer targets: tighter limits than a user's, so that an input
 * that asks for gigabytes is refused by a limit (the behaviour under test) rather than
 * reported by libFuzzer's -rss_limit_mb / -malloc_limit_mb as an out-of-memory "crash", and
 * so that a 1 KB model cannot legitimately make a 50 MB constant whose printing as text takes
 * longer than libFuzzer's timeout (regress/onnx/constant_of_shape_56mb.onnx). */
#ifndef KL_TESTS_FUZZ_COMMON_H
#define KL_TESTS_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include "runtime/limits.h"

/* max_nodes: 100,000 for the readers; fuzz_compile takes fewer, since the passes and LLVM
 * do more work per node than a reader does. */
static inline void kl_fuzz_set_limits_nodes(uint64_t max_nodes) {
  kl_limits l;
  kl_limits_defaults(&l);
  l.max_tensor_bytes = (uint64_t)16 << 20;
  l.max_total_bytes = (uint64_t)1 << 20;
  l.max_fold_bytes = (uint64_t)1 << 20;
  l.max_nodes = max_nodes;
  kl_status s = kl_limits_set(&l);
  if (s) {
    fprintf(stderr, "fuzz: %s\n", kl_status_message(s));
    abort();
  }
}

static inline void kl_fuzz_set_limits(void) { kl_fuzz_set_limits_nodes(100000); }

#endif
