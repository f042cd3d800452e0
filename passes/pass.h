/* The pass manager: named passes over the graph IR, run in lists.
 *
 * A pass is one function in its own file in passes/ that rewrites a graph in place and says
 * whether it changed anything. passes.def lists every pass once; -O0..-O3 name default lists;
 * `kiln opt --passes=a,b,c` names any list. In tests the verifier runs after every pass.
 *
 * Passes keep value names where a value survives (so `kiln check` can match values of the
 * optimized graph with the unoptimized one by name) and keep the graph verifiable. */
#ifndef KL_PASSES_PASS_H
#define KL_PASSES_PASS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../ir/ir.h"

typedef struct kl_pass_options {
  bool verify_each;         /* kl_ir_verify after every pass; a failure names the pass */
  FILE *print_after_all;    /* when set: "# after NAME" and the text IR after every pass */
  FILE *time_passes;        /* when set: a table of per-pass wall times after the run */
  int64_t fold_max_bytes;   /* constant folding never creates a tensor larger than this */
} kl_pass_options;

/* Defaults: no verification, no printing, fold_max_bytes 1 MiB. */
void kl_pass_options_init(kl_pass_options *opts);

typedef kl_status (*kl_pass_fn)(kl_ir_graph *g, const kl_pass_options *opts, bool *out_changed);

typedef struct kl_pass_info {
  const char *name;    /* "fold-constants" */
  const char *summary; /* one line for `kiln opt --help` */
  kl_pass_fn run;
  bool test_only;      /* a deliberately wrong rewrite that tests use; never in -O lists */
} kl_pass_info;

int kl_pass_count(void);
const kl_pass_info *kl_pass_at(int index);
const kl_pass_info *kl_pass_find(const char *name); /* NULL when unknown */

/* The default list of -O<level> (0..3) as a NULL-terminated array of pass names. */
const char *const *kl_pass_pipeline(int level);

/* Parses a comma-separated list of pass names into a malloc'd array the caller frees. An
 * unknown name is an error that lists the known passes. */
kl_status kl_pass_parse_list(const char *list, const kl_pass_info ***out_passes, int *out_n);

/* Runs passes in order on g. An error names the pass that failed. */
kl_status kl_pass_run(kl_ir_graph *g, const kl_pass_info *const *passes, int n,
                      const kl_pass_options *opts);
/* Runs the -O<level> list. */
kl_status kl_pass_run_level(kl_ir_graph *g, int level, const kl_pass_options *opts);

/* Binds graph input `name` to value at compile time (bind_inputs.c; `kiln compile --bind`):
 * the input becomes a constant of that name holding value (the graph takes a reference) and
 * leaves g's inputs, so the passes run after it fold what it decides (an onnx::Deferred node
 * that read it expands into static ops in canonicalize). value must fit the input's declared
 * type: the same dtype and rank, equal sizes where a dim is static, sizes within the bounds
 * where it is a symbol, which then takes that size in every type of g. source names the value
 * in messages ("shape.npy"; NULL: "the value"). An unknown name is an error listing g's
 * inputs; a value that does not fit, one naming the input and both types. */
kl_status kl_pass_bind_input(kl_ir_graph *g, const char *name, kl_tensor *value,
                             const char *source);

#endif
